// Package storetest is the conformance suite of package store: the
// behaviour every store.Store must show, whatever its backend, as subtests.
// A backend's tests run it with Run, the way a net.Conn implementation runs
// golang.org/x/net/nettest.TestConn:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "imx.db"), opts)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		}, storetest.Reopen(reopen))
//	}
//
// The suite covers accounts (passwords, the dummy hash for unknown users,
// listing), sessions (expiry, revocation), received-message claims
// (exactly one winner among concurrent claims, settle, release, pruning),
// the outbox (due order, rescheduling), offline messages (arrival order,
// the per-recipient bound under concurrency, atomic pops), contact lists
// (ordering, owners of a contact), approvals (pending requests, one winner
// among concurrent requests), block lists (by address and by domain),
// presence subscriptions in both directions (expiry, grouping by domain,
// renewal order), the deletion of all of it with its account, contexts,
// Close, and with Reopen, that everything survives a Close and an Open.
//
// Stores have no clock (see package store), so expiry is tested by passing
// times, never by waiting. The suite hashes a few dozen passwords: open
// should give the store cheap argon2 parameters.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// An Option changes how Run runs the suite.
type Option func(*config)

type config struct {
	reopen func(t *testing.T, s store.Store) store.Store
}

// Reopen gives Run a way to close s and open the same data again as a new
// store (for SQLite: open the same file). The persistence tests need it;
// without it they are skipped. The suite calls Close on s again afterwards,
// which a store must allow.
func Reopen(reopen func(t *testing.T, s store.Store) store.Store) Option {
	return func(c *config) { c.reopen = reopen }
}

// Run runs the conformance suite against the stores that open makes. open
// is called once per subtest and must return a new, empty store; the suite
// closes it at the end of the subtest and fails if Close fails.
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	h := &harness{open: open, reopen: c.reopen}
	groups := []struct {
		name  string
		tests []subtest
	}{
		{"Accounts", accountTests},
		{"Sessions", sessionTests},
		{"Dedup", dedupTests},
		{"Outbox", outboxTests},
		{"Offline", offlineTests},
		{"Contacts", contactTests},
		{"Approvals", approvalTests},
		{"Blocks", blockTests},
		{"SubsIn", subsInTests},
		{"SubsOut", subsOutTests},
		{"UserAttrs", userAttrTests},
		{"Store", storeTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, st := range g.tests {
				t.Run(st.name, func(t *testing.T) { st.fn(t, h) })
			}
		})
	}
}

type subtest struct {
	name string
	fn   func(t *testing.T, h *harness)
}

// harness opens the stores of the subtests.
type harness struct {
	open   func(t *testing.T) store.Store
	reopen func(t *testing.T, s store.Store) store.Store
}

// store opens a new, empty store that is closed when t ends.
func (h *harness) store(t *testing.T) store.Store {
	t.Helper()
	s := h.open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	closeAtEnd(t, s)
	return s
}

// again closes s and opens its data again, or skips t without Reopen.
func (h *harness) again(t *testing.T, s store.Store) store.Store {
	t.Helper()
	if h.reopen == nil {
		t.Skip("no storetest.Reopen given")
	}
	s2 := h.reopen(t, s)
	if s2 == nil {
		t.Fatal("reopen returned a nil store")
	}
	closeAtEnd(t, s2)
	return s2
}

func closeAtEnd(t *testing.T, s store.Store) {
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// t0 is the suite's "now": the date of draft-aol-imx-00.
var t0 = time.Date(2000, 6, 15, 12, 0, 0, 0, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// Addresses of the suite.
var (
	alice = addr.MustParse("alice@alpha.example")
	bob   = addr.MustParse("bob@alpha.example")
	carol = addr.MustParse("carol@beta.example")
)

// mustCreate creates accounts with the password "pw-" + local part.
func mustCreate(t *testing.T, s store.Store, as ...addr.Address) {
	t.Helper()
	for _, a := range as {
		if err := s.CreateAccount(t.Context(), a, password(a)); err != nil {
			t.Fatalf("CreateAccount(%s): %v", a, err)
		}
	}
}

func password(a addr.Address) string { return "pw-" + a.Local() }

// wantErr fails t unless err wraps want (or is nil when want is nil).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: %v, want success", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	wantErr(t, what, err, nil)
}

// storeTests are about the Store as a whole.
var storeTests = []subtest{
	{"CloseTwice", func(t *testing.T, h *harness) {
		s := h.open(t)
		must(t, "Close", s.Close())
		must(t, "second Close", s.Close())
	}},
	{"CanceledContext", func(t *testing.T, h *harness) {
		s := h.store(t)
		mustCreate(t, s, alice)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		checks := map[string]error{
			"CreateAccount": s.CreateAccount(ctx, bob, "pw"),
			"AccountExists": func() error { _, err := s.AccountExists(ctx, alice); return err }(),
			"PutOutbox": s.PutOutbox(ctx, store.OutboxEntry{ID: []byte("m1"), From: alice, To: carol,
				Created: t0, NextAttempt: t0}),
			"Claim": func() error { _, _, err := s.Claim(ctx, "beta.example", []byte("m1"), t0); return err }(),
			"PopOffline": func() error {
				_, err := s.PopOffline(ctx, alice, 0)
				return err
			}(),
			"PutContact": s.PutContact(ctx, store.Contact{Owner: alice, Contact: carol, State: store.ContactAsked}),
			"IsBlocked": func() error {
				_, err := s.IsBlocked(ctx, alice, carol)
				return err
			}(),
			"ActiveSubsIn": func() error {
				_, err := s.ActiveSubsIn(ctx, alice, t0)
				return err
			}(),
		}
		for op, err := range checks {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a canceled context: %v, want an error wrapping context.Canceled", op, err)
			}
		}
		if ok, err := s.AccountExists(t.Context(), bob); err != nil || ok {
			t.Errorf("AccountExists(bob) after a canceled CreateAccount = %v, %v; want false", ok, err)
		}
		if n, err := s.CountOutbox(t.Context()); err != nil || n != 0 {
			t.Errorf("CountOutbox after a canceled PutOutbox = %d, %v; want 0", n, err)
		}
		if n, err := s.CountContacts(t.Context(), alice); err != nil || n != 0 {
			t.Errorf("CountContacts after a canceled PutContact = %d, %v; want 0", n, err)
		}
	}},
	{"Persistence", testPersistence},
}
