package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

func wantUserAttrs(t *testing.T, s store.Store, owner addr.Address, want ...wire.Attr) {
	t.Helper()
	got, err := s.GetUserAttrs(t.Context(), owner)
	must(t, "GetUserAttrs", err)
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
		t.Fatalf("GetUserAttrs(%s) = %q, want %q", owner, got, want)
	}
}

var userAttrTests = []subtest{
	{"SetReplaceRemove", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		wantUserAttrs(t, s, alice)
		must(t, "SetUserAttr alias", s.SetUserAttr(ctx, alice, "alias", "Alice Liddell"))
		must(t, "SetUserAttr max-message-length", s.SetUserAttr(ctx, alice, "max-message-length", "4096"))
		wantUserAttrs(t, s, alice, wire.Attr{Name: "alias", Value: "Alice Liddell"}, wire.Attr{Name: "max-message-length", Value: "4096"})
		must(t, "SetUserAttr alias again", s.SetUserAttr(ctx, alice, "alias", "Alice"))
		wantUserAttrs(t, s, alice, wire.Attr{Name: "alias", Value: "Alice"}, wire.Attr{Name: "max-message-length", Value: "4096"})
		wantUserAttrs(t, s, bob) // another account's are its own
		must(t, "SetUserAttr empty removes", s.SetUserAttr(ctx, alice, "alias", ""))
		must(t, "SetUserAttr empty when absent", s.SetUserAttr(ctx, alice, "alias", ""))
		wantUserAttrs(t, s, alice, wire.Attr{Name: "max-message-length", Value: "4096"})
		wantUserAttrs(t, s, carol) // no such account: none
	}},
	{"Invalid", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		wantErr(t, "SetUserAttr for no account", s.SetUserAttr(ctx, carol, "alias", "C"), store.ErrNotFound)
		wantErr(t, "SetUserAttr empty for no account", s.SetUserAttr(ctx, carol, "alias", ""), store.ErrNotFound)
		wantErr(t, "SetUserAttr of the zero address", s.SetUserAttr(ctx, addr.Address{}, "alias", "x"), store.ErrInvalid)
		for _, name := range []string{"", "Alias", "al ias", strings.Repeat("a", 65)} {
			wantErr(t, fmt.Sprintf("SetUserAttr name %q", name), s.SetUserAttr(ctx, alice, name, "x"), store.ErrInvalid)
		}
		wantErr(t, "SetUserAttr too long", s.SetUserAttr(ctx, alice, "alias", strings.Repeat("x", store.MaxUserAttrLen+1)), store.ErrInvalid)
		wantErr(t, "SetUserAttr not UTF-8", s.SetUserAttr(ctx, alice, "alias", "\xff"), store.ErrInvalid)
		must(t, "SetUserAttr at the limit", s.SetUserAttr(ctx, alice, "alias", strings.Repeat("ü", store.MaxUserAttrLen/2)))
		wantUserAttrs(t, s, alice, wire.Attr{Name: "alias", Value: strings.Repeat("ü", store.MaxUserAttrLen/2)})
	}},
	{"CascadeOnAccountDeletion", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		must(t, "SetUserAttr", s.SetUserAttr(ctx, alice, "alias", "Alice"))
		must(t, "DeleteAccount", s.DeleteAccount(ctx, alice))
		mustCreate(t, s, alice)
		wantUserAttrs(t, s, alice)
	}},
}
