package storetest

import (
	"fmt"
	"testing"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

func wantBlocked(t *testing.T, s store.Store, owner, a addr.Address, want bool) {
	t.Helper()
	got, err := s.IsBlocked(t.Context(), owner, a)
	must(t, "IsBlocked", err)
	if got != want {
		t.Fatalf("IsBlocked(%s, %s) = %v, want %v", owner, a, got, want)
	}
}

func wantBlocks(t *testing.T, s store.Store, owner addr.Address, want ...string) {
	t.Helper()
	got, err := s.ListBlocks(t.Context(), owner)
	must(t, "ListBlocks", err)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ListBlocks(%s) = %q, want %q", owner, got, want)
	}
}

var blockTests = []subtest{
	{"AddressAndDomain", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		must(t, "AddBlock address", s.AddBlock(ctx, alice, "dave@beta.example"))
		must(t, "AddBlock domain", s.AddBlock(ctx, alice, "@gamma.example"))

		wantBlocked(t, s, alice, dave, true)
		wantBlocked(t, s, alice, carol, false) // same domain as dave, another user
		wantBlocked(t, s, alice, erin, true)   // by domain
		wantBlocked(t, s, alice, addr.MustParse("zed@gamma.example"), true)
		wantBlocked(t, s, alice, addr.MustParse("erin@sub.gamma.example"), false) // no subdomains
		wantBlocked(t, s, alice, addr.MustParse("erin@gamma.example.org"), false)
		wantBlocked(t, s, bob, dave, false)   // another owner's list
		wantBlocked(t, s, carol, dave, false) // no such account

		wantBlocks(t, s, alice, "@gamma.example", "dave@beta.example")
		wantBlocks(t, s, bob)
	}},
	{"Normalised", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		must(t, "AddBlock", s.AddBlock(ctx, alice, "Dave@BETA.example."))
		must(t, "AddBlock", s.AddBlock(ctx, alice, "@Bücher.Example"))
		wantBlocks(t, s, alice, "@xn--bcher-kva.example", "dave@beta.example")
		wantBlocked(t, s, alice, dave, true)
		wantBlocked(t, s, alice, addr.MustParse("x@bücher.example"), true)
		wantErr(t, "AddBlock of the same address spelt otherwise", s.AddBlock(ctx, alice, "DAVE@beta.example"), store.ErrExists)
		must(t, "RemoveBlock spelt otherwise", s.RemoveBlock(ctx, alice, "@BÜCHER.example"))
		wantBlocks(t, s, alice, "dave@beta.example")
	}},
	{"Invalid", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		for _, p := range []string{"", "@", "dave", "dave@", "@@beta.example", "a@b@c", " dave@beta.example", "@-bad-.example"} {
			wantErr(t, fmt.Sprintf("AddBlock(%q)", p), s.AddBlock(ctx, alice, p), store.ErrInvalid)
			wantErr(t, fmt.Sprintf("RemoveBlock(%q)", p), s.RemoveBlock(ctx, alice, p), store.ErrInvalid)
			if _, err := store.ParseBlockPattern(p); err == nil {
				t.Errorf("ParseBlockPattern(%q) accepted it", p)
			}
		}
		wantErr(t, "AddBlock for a zero owner", s.AddBlock(ctx, addr.Address{}, "dave@beta.example"), store.ErrInvalid)
		wantErr(t, "AddBlock for an unknown owner", s.AddBlock(ctx, bob, "dave@beta.example"), store.ErrNotFound)
		wantBlocks(t, s, alice)
	}},
	{"AddRemove", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		must(t, "AddBlock", s.AddBlock(ctx, alice, "@beta.example"))
		wantErr(t, "AddBlock twice", s.AddBlock(ctx, alice, "@beta.example"), store.ErrExists)
		wantBlocked(t, s, alice, dave, true)
		must(t, "RemoveBlock", s.RemoveBlock(ctx, alice, "@beta.example"))
		wantErr(t, "RemoveBlock twice", s.RemoveBlock(ctx, alice, "@beta.example"), store.ErrNotFound)
		wantErr(t, "RemoveBlock for an unknown owner", s.RemoveBlock(ctx, bob, "@beta.example"), store.ErrNotFound)
		wantBlocked(t, s, alice, dave, false)
		wantBlocks(t, s, alice)
	}},
	{"CascadeOnAccountDeletion", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		must(t, "AddBlock", s.AddBlock(ctx, alice, "@beta.example"))
		must(t, "DeleteAccount", s.DeleteAccount(ctx, alice))
		mustCreate(t, s, alice)
		wantBlocks(t, s, alice)
		wantBlocked(t, s, alice, dave, false)
	}},
}
