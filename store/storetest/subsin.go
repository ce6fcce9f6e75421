package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

func sameSubIn(a, b store.SubIn) bool {
	return a.Presentity == b.Presentity && a.Watcher == b.Watcher && a.Expires.Equal(b.Expires) && a.Active == b.Active
}

// activeWatchers returns the watchers ActiveSubsIn returns, in its order.
func activeWatchers(t *testing.T, s store.Store, presentity addr.Address, now time.Time) []string {
	t.Helper()
	subs, err := s.ActiveSubsIn(t.Context(), presentity, now)
	must(t, "ActiveSubsIn", err)
	ws := make([]string, len(subs))
	for i, sub := range subs {
		if sub.Presentity != presentity || !sub.Active {
			t.Fatalf("ActiveSubsIn returned %+v", sub)
		}
		ws[i] = sub.Watcher.String()
	}
	return ws
}

var subsInTests = []subtest{
	{"PutGet", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, bob)
		sub := store.SubIn{Presentity: bob, Watcher: dave, Expires: at(30*time.Minute + 7*time.Microsecond)}
		must(t, "PutSubIn", s.PutSubIn(ctx, sub))
		got, err := s.GetSubIn(ctx, bob, dave)
		if err != nil || !sameSubIn(got, sub) || got.Expires.Location() != time.UTC {
			t.Fatalf("GetSubIn = %+v, %v; want %+v in UTC", got, err, sub)
		}
		// A renewal replaces the expiry and the state.
		sub.Expires, sub.Active = at(time.Hour), true
		must(t, "PutSubIn again", s.PutSubIn(ctx, sub))
		if got, err := s.GetSubIn(ctx, bob, dave); err != nil || !sameSubIn(got, sub) {
			t.Fatalf("GetSubIn after renewal = %+v, %v; want %+v", got, err, sub)
		}
		// An approval withdrawn keeps the expiry.
		must(t, "SetSubInActive", s.SetSubInActive(ctx, bob, dave, false))
		sub.Active = false
		if got, err := s.GetSubIn(ctx, bob, dave); err != nil || !sameSubIn(got, sub) {
			t.Fatalf("GetSubIn after SetSubInActive = %+v, %v; want %+v", got, err, sub)
		}
		// GetSubIn returns an expired subscription as stored.
		if got, err := s.GetSubIn(ctx, bob, dave); err != nil || !got.Expires.Before(at(2*time.Hour)) {
			t.Fatalf("GetSubIn = %+v, %v", got, err)
		}
		_, err = s.GetSubIn(ctx, bob, erin)
		wantErr(t, "GetSubIn of an unknown watcher", err, store.ErrNotFound)
		wantErr(t, "SetSubInActive of an unknown watcher", s.SetSubInActive(ctx, bob, erin, true), store.ErrNotFound)

		must(t, "DeleteSubIn", s.DeleteSubIn(ctx, bob, dave))
		wantErr(t, "DeleteSubIn twice", s.DeleteSubIn(ctx, bob, dave), store.ErrNotFound)
		_, err = s.GetSubIn(ctx, bob, dave)
		wantErr(t, "GetSubIn after DeleteSubIn", err, store.ErrNotFound)
	}},
	{"Invalid", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, bob)
		wantErr(t, "PutSubIn with a zero presentity", s.PutSubIn(ctx, store.SubIn{Watcher: dave, Expires: t0}), store.ErrInvalid)
		wantErr(t, "PutSubIn with a zero watcher", s.PutSubIn(ctx, store.SubIn{Presentity: bob, Expires: t0}), store.ErrInvalid)
		wantErr(t, "PutSubIn for an unknown presentity", s.PutSubIn(ctx, store.SubIn{Presentity: alice, Watcher: dave, Expires: t0}), store.ErrNotFound)
	}},
	{"ActiveGroupedByDomain", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		for _, sub := range []store.SubIn{
			{Watcher: addr.MustParse("zed@beta.example"), Expires: at(time.Hour), Active: true},
			{Watcher: erin, Expires: at(time.Hour), Active: true},
			{Watcher: alice, Expires: at(time.Hour), Active: true},
			{Watcher: dave, Expires: at(time.Hour), Active: true},
			{Watcher: carol, Expires: at(time.Hour), Active: false}, // not approved
			{Watcher: addr.MustParse("amy@beta.example"), Expires: at(time.Minute), Active: true},
			{Watcher: addr.MustParse("bea@beta.example"), Expires: at(-time.Minute), Active: true}, // expired
		} {
			sub.Presentity = bob
			must(t, "PutSubIn", s.PutSubIn(ctx, sub))
		}
		// Another presentity's watcher.
		must(t, "PutSubIn", s.PutSubIn(ctx, store.SubIn{Presentity: alice, Watcher: dave, Expires: at(time.Hour), Active: true}))

		wantIDs(t, "ActiveSubsIn at t0", activeWatchers(t, s, bob, t0),
			"alice@alpha.example", "amy@beta.example", "dave@beta.example", "zed@beta.example", "erin@gamma.example")
		wantIDs(t, "ActiveSubsIn at the expiry of amy", activeWatchers(t, s, bob, at(time.Minute)),
			"alice@alpha.example", "dave@beta.example", "zed@beta.example", "erin@gamma.example")
		wantIDs(t, "ActiveSubsIn just before the expiry of amy", activeWatchers(t, s, bob, at(time.Minute-time.Microsecond)),
			"alice@alpha.example", "amy@beta.example", "dave@beta.example", "zed@beta.example", "erin@gamma.example")
		wantIDs(t, "ActiveSubsIn when all have expired", activeWatchers(t, s, bob, at(time.Hour)))

		// An approval activates the waiting subscription.
		must(t, "SetSubInActive", s.SetSubInActive(ctx, bob, carol, true))
		wantIDs(t, "ActiveSubsIn after an approval", activeWatchers(t, s, bob, at(30*time.Minute)),
			"alice@alpha.example", "carol@beta.example", "dave@beta.example", "zed@beta.example", "erin@gamma.example")
		wantIDs(t, "ActiveSubsIn of an unknown presentity", activeWatchers(t, s, carol, t0))
	}},
	{"Prune", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		for i, exp := range []time.Duration{-time.Hour, time.Minute, time.Hour, 2 * time.Hour} {
			for _, p := range []addr.Address{alice, bob} {
				w := addr.MustParse(fmt.Sprintf("w%d@beta.example", i))
				must(t, "PutSubIn", s.PutSubIn(ctx, store.SubIn{Presentity: p, Watcher: w, Expires: at(exp), Active: i%2 == 0}))
			}
		}
		if n, err := s.PruneSubsIn(ctx, at(time.Hour-time.Microsecond)); err != nil || n != 4 {
			t.Fatalf("PruneSubsIn = %d, %v; want 4", n, err)
		}
		if n, err := s.PruneSubsIn(ctx, at(time.Hour)); err != nil || n != 2 {
			t.Fatalf("PruneSubsIn at the expiry of two = %d, %v; want 2", n, err)
		}
		for _, p := range []addr.Address{alice, bob} {
			if _, err := s.GetSubIn(ctx, p, addr.MustParse("w1@beta.example")); err == nil {
				t.Fatalf("GetSubIn of a pruned subscription of %s succeeded", p)
			}
			must(t, "GetSubIn of a live subscription", func() error {
				_, err := s.GetSubIn(ctx, p, addr.MustParse("w3@beta.example"))
				return err
			}())
		}
	}},
	{"CascadeOnAccountDeletion", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		must(t, "PutSubIn", s.PutSubIn(ctx, store.SubIn{Presentity: bob, Watcher: dave, Expires: at(time.Hour), Active: true}))
		must(t, "PutSubIn", s.PutSubIn(ctx, store.SubIn{Presentity: alice, Watcher: bob, Expires: at(time.Hour), Active: true}))
		must(t, "DeleteAccount", s.DeleteAccount(ctx, bob))
		mustCreate(t, s, bob)
		wantIDs(t, "ActiveSubsIn of a recreated account", activeWatchers(t, s, bob, t0))
		// Bob as the watcher of alice is an address: the row stays.
		wantIDs(t, "ActiveSubsIn of alice", activeWatchers(t, s, alice, t0), "bob@alpha.example")
	}},
	{"Concurrent", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, bob)
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				w := addr.MustParse(fmt.Sprintf("w%02d@d%d.example", i, i%4))
				if err := s.PutSubIn(ctx, store.SubIn{Presentity: bob, Watcher: w, Expires: at(time.Hour), Active: true}); err != nil {
					t.Errorf("PutSubIn: %v", err)
				}
			})
		}
		wg.Wait()
		got := activeWatchers(t, s, bob, t0)
		if len(got) != n {
			t.Fatalf("%d active subscriptions after %d concurrent puts", len(got), n)
		}
		for i := 1; i < len(got); i++ {
			a, b := addr.MustParse(got[i-1]), addr.MustParse(got[i])
			if a.Domain() > b.Domain() || a.Domain() == b.Domain() && a.Local() >= b.Local() {
				t.Fatalf("ActiveSubsIn not ordered by domain, then local part: %q", got)
			}
		}
	}},
}
