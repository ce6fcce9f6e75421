package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

var accountTests = []subtest{
	{"CreateAndAuthenticate", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		must(t, "Authenticate with the right password", s.Authenticate(ctx, alice, "pw-alice"))
		wantErr(t, "Authenticate with a wrong password", s.Authenticate(ctx, alice, "pw-bob"), store.ErrBadPassword)
		wantErr(t, "Authenticate with an empty password", s.Authenticate(ctx, alice, ""), store.ErrBadPassword)
		wantErr(t, "Authenticate an unknown account", s.Authenticate(ctx, bob, "pw-alice"), store.ErrNotFound)
		// The same local part on another domain is another account.
		wantErr(t, "Authenticate alice on another domain",
			s.Authenticate(ctx, addr.MustParse("alice@beta.example"), "pw-alice"), store.ErrNotFound)
		// Authenticating twice works: a rehash, if any, kept the password.
		must(t, "Authenticate again", s.Authenticate(ctx, alice, "pw-alice"))
	}},
	{"CreateExisting", func(t *testing.T, h *harness) {
		s := h.store(t)
		mustCreate(t, s, alice)
		wantErr(t, "CreateAccount twice", s.CreateAccount(t.Context(), alice, "other"), store.ErrExists)
		// The failed create did not change the password.
		must(t, "Authenticate", s.Authenticate(t.Context(), alice, "pw-alice"))
	}},
	{"Invalid", func(t *testing.T, h *harness) {
		s := h.store(t)
		wantErr(t, "CreateAccount of the zero address", s.CreateAccount(t.Context(), addr.Address{}, "pw"), store.ErrInvalid)
		wantErr(t, "CreateAccount with an empty password", s.CreateAccount(t.Context(), alice, ""), store.ErrInvalid)
		mustCreate(t, s, alice)
		wantErr(t, "SetPassword to an empty password", s.SetPassword(t.Context(), alice, ""), store.ErrInvalid)
		must(t, "Authenticate after a refused SetPassword", s.Authenticate(t.Context(), alice, "pw-alice"))
	}},
	{"PasswordsAreExact", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		// Passwords are compared as given: no trimming, no case folding,
		// no Unicode normalisation.
		pw := "Correct Horse\u00e9 "
		must(t, "CreateAccount", s.CreateAccount(ctx, alice, pw))
		must(t, "Authenticate", s.Authenticate(ctx, alice, pw))
		for _, wrong := range []string{"Correct Horse\u00e9", "correct horse\u00e9 ", "Correct Horsee\u0301 "} {
			wantErr(t, "Authenticate with "+wrong, s.Authenticate(ctx, alice, wrong), store.ErrBadPassword)
		}
	}},
	{"UnknownUserDoesTheHashWork", func(t *testing.T, h *harness) {
		s := h.store(t)
		mustCreate(t, s, alice)
		for _, c := range []struct {
			name string
			a    addr.Address
			err  error
		}{
			{"known account, wrong password", alice, store.ErrBadPassword},
			{"unknown account", bob, store.ErrNotFound},
			{"unknown domain", carol, store.ErrNotFound},
		} {
			before := store.HashCount()
			wantErr(t, "Authenticate "+c.name, s.Authenticate(t.Context(), c.a, "guess"), c.err)
			if store.HashCount() == before {
				t.Errorf("Authenticate (%s) computed no argon2 hash: its time tells the account does not exist", c.name)
			}
		}
	}},
	{"SetPassword", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		tokA, _, err := s.CreateSession(ctx, store.Session{User: alice, Created: t0, Expires: at(time.Hour)})
		must(t, "CreateSession(alice)", err)
		tokB, _, err := s.CreateSession(ctx, store.Session{User: bob, Created: t0, Expires: at(time.Hour)})
		must(t, "CreateSession(bob)", err)

		must(t, "SetPassword", s.SetPassword(ctx, alice, "new secret"))
		must(t, "Authenticate with the new password", s.Authenticate(ctx, alice, "new secret"))
		wantErr(t, "Authenticate with the old password", s.Authenticate(ctx, alice, "pw-alice"), store.ErrBadPassword)
		_, err = s.LookupSession(ctx, tokA, t0)
		wantErr(t, "LookupSession of alice after her password changed", err, store.ErrNotFound)
		_, err = s.LookupSession(ctx, tokB, t0)
		must(t, "LookupSession of bob after alice's password changed", err)
		must(t, "Authenticate bob", s.Authenticate(ctx, bob, "pw-bob"))

		wantErr(t, "SetPassword of an unknown account", s.SetPassword(ctx, carol, "x"), store.ErrNotFound)
	}},
	{"Delete", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		tok, _, err := s.CreateSession(ctx, store.Session{User: alice, Created: t0, Expires: at(time.Hour)})
		must(t, "CreateSession", err)
		must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(bob, alice, "m1", t0), 10))
		must(t, "PutOutbox", s.PutOutbox(ctx, outboxEntry("o1", alice, carol, t0)))

		must(t, "DeleteAccount", s.DeleteAccount(ctx, alice))
		wantErr(t, "Authenticate a deleted account", s.Authenticate(ctx, alice, "pw-alice"), store.ErrNotFound)
		if ok, err := s.AccountExists(ctx, alice); err != nil || ok {
			t.Fatalf("AccountExists after DeleteAccount = %v, %v; want false", ok, err)
		}
		_, err = s.LookupSession(ctx, tok, t0)
		wantErr(t, "LookupSession of a deleted account", err, store.ErrNotFound)
		if n, err := s.CountOffline(ctx, alice); err != nil || n != 0 {
			t.Fatalf("CountOffline of a deleted account = %d, %v; want 0", n, err)
		}
		if n, err := s.CountOutbox(ctx); err != nil || n != 1 {
			t.Fatalf("CountOutbox after deleting the sender = %d, %v; want 1: accepted messages stay", n, err)
		}
		wantErr(t, "DeleteAccount twice", s.DeleteAccount(ctx, alice), store.ErrNotFound)
		must(t, "Authenticate bob", s.Authenticate(ctx, bob, "pw-bob"))

		// The address can be taken again, and starts empty.
		mustCreate(t, s, alice)
		if n, err := s.CountOffline(ctx, alice); err != nil || n != 0 {
			t.Fatalf("CountOffline of a re-created account = %d, %v; want 0", n, err)
		}
		_, err = s.LookupSession(ctx, tok, t0)
		wantErr(t, "LookupSession of the old session of a re-created account", err, store.ErrNotFound)
	}},
	{"Exists", func(t *testing.T, h *harness) {
		s := h.store(t)
		mustCreate(t, s, alice)
		for a, want := range map[addr.Address]bool{alice: true, bob: false, carol: false} {
			if ok, err := s.AccountExists(t.Context(), a); err != nil || ok != want {
				t.Errorf("AccountExists(%s) = %v, %v; want %v", a, ok, err, want)
			}
		}
	}},
	{"List", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		// Created out of order; "émile" sorts after "zed" in byte order.
		var alpha []addr.Address
		for _, local := range []string{"zed", "bob", "émile", "alice", "mallory", "0day"} {
			a := addr.MustParse(local + "@alpha.example")
			mustCreate(t, s, a)
			alpha = append(alpha, a)
		}
		mustCreate(t, s, carol, addr.MustParse("zed@beta.example"))
		slices.SortFunc(alpha, func(a, b addr.Address) int {
			switch {
			case a.Local() < b.Local():
				return -1
			case a.Local() > b.Local():
				return 1
			}
			return 0
		})

		all, err := s.ListAccounts(ctx, "alpha.example", "", 0)
		must(t, "ListAccounts", err)
		if !slices.Equal(all, alpha) {
			t.Fatalf("ListAccounts(alpha.example) = %v, want %v", all, alpha)
		}
		var paged []addr.Address
		after := ""
		for range len(alpha) {
			page, err := s.ListAccounts(ctx, "alpha.example", after, 4)
			must(t, "ListAccounts page", err)
			if len(page) > 4 {
				t.Fatalf("ListAccounts with limit 4 returned %d", len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Local()
		}
		if !slices.Equal(paged, alpha) {
			t.Fatalf("ListAccounts in pages of 4 = %v, want %v", paged, alpha)
		}
		beta, err := s.ListAccounts(ctx, "beta.example", "", -1)
		must(t, "ListAccounts(beta.example)", err)
		if want := []addr.Address{carol, addr.MustParse("zed@beta.example")}; !slices.Equal(beta, want) {
			t.Fatalf("ListAccounts(beta.example) = %v, want %v", beta, want)
		}
		none, err := s.ListAccounts(ctx, "gamma.example", "", 0)
		if err != nil || len(none) != 0 {
			t.Fatalf("ListAccounts(gamma.example) = %v, %v; want none", none, err)
		}
	}},
}
