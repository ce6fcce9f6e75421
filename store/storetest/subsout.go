package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

func sameSubOut(a, b store.SubOut) bool {
	return a.Watcher == b.Watcher && a.Presentity == b.Presentity && a.Expires.Equal(b.Expires) && a.RenewAt.Equal(b.RenewAt)
}

// subOut returns a subscription of watcher to presentity granted for d from
// t0, renewed at 80% of it.
func subOut(watcher, presentity addr.Address, d time.Duration) store.SubOut {
	return store.SubOut{Watcher: watcher, Presentity: presentity, Expires: at(d), RenewAt: at(d * 8 / 10)}
}

// subOutNames returns "watcher>presentity" for each subscription.
func subOutNames(subs []store.SubOut) []string {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.Watcher.Local() + ">" + s.Presentity.String()
	}
	return names
}

func dueSubsOut(t *testing.T, s store.Store, now time.Time, limit int) []string {
	t.Helper()
	subs, err := s.DueSubsOut(t.Context(), now, limit)
	must(t, "DueSubsOut", err)
	return subOutNames(subs)
}

var subsOutTests = []subtest{
	{"PutGetDelete", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		sub := store.SubOut{Watcher: alice, Presentity: dave, Expires: at(30*time.Minute + 3*time.Microsecond), RenewAt: at(24*time.Minute + 2*time.Microsecond)}
		must(t, "PutSubOut", s.PutSubOut(ctx, sub))
		got, err := s.GetSubOut(ctx, alice, dave)
		if err != nil || !sameSubOut(got, sub) || got.Expires.Location() != time.UTC || got.RenewAt.Location() != time.UTC {
			t.Fatalf("GetSubOut = %+v, %v; want %+v in UTC", got, err, sub)
		}
		// A renewal's grant replaces the times.
		sub = store.SubOut{Watcher: alice, Presentity: dave, Expires: at(time.Hour), RenewAt: at(time.Hour)}
		must(t, "PutSubOut again", s.PutSubOut(ctx, sub))
		if got, err := s.GetSubOut(ctx, alice, dave); err != nil || !sameSubOut(got, sub) {
			t.Fatalf("GetSubOut after renewal = %+v, %v; want %+v", got, err, sub)
		}
		_, err = s.GetSubOut(ctx, alice, erin)
		wantErr(t, "GetSubOut of an unknown presentity", err, store.ErrNotFound)
		must(t, "DeleteSubOut", s.DeleteSubOut(ctx, alice, dave))
		wantErr(t, "DeleteSubOut twice", s.DeleteSubOut(ctx, alice, dave), store.ErrNotFound)
		_, err = s.GetSubOut(ctx, alice, dave)
		wantErr(t, "GetSubOut after DeleteSubOut", err, store.ErrNotFound)
	}},
	{"Invalid", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		for name, sub := range map[string]store.SubOut{
			"zero watcher":         {Presentity: dave, Expires: at(time.Hour), RenewAt: t0},
			"zero presentity":      {Watcher: alice, Expires: at(time.Hour), RenewAt: t0},
			"renewal after expiry": {Watcher: alice, Presentity: dave, Expires: at(time.Hour), RenewAt: at(time.Hour + time.Microsecond)},
		} {
			wantErr(t, "PutSubOut with "+name, s.PutSubOut(ctx, sub), store.ErrInvalid)
		}
		wantErr(t, "PutSubOut for an unknown watcher", s.PutSubOut(ctx, subOut(bob, dave, time.Hour)), store.ErrNotFound)
	}},
	{"List", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		for _, p := range []addr.Address{erin, bob, dave, carol} {
			must(t, "PutSubOut", s.PutSubOut(ctx, subOut(alice, p, time.Hour)))
		}
		must(t, "PutSubOut", s.PutSubOut(ctx, subOut(bob, dave, time.Hour)))
		got, err := s.ListSubsOut(ctx, alice)
		must(t, "ListSubsOut", err)
		wantIDs(t, "ListSubsOut", subOutNames(got),
			"alice>bob@alpha.example", "alice>carol@beta.example", "alice>dave@beta.example", "alice>erin@gamma.example")
		if !sameSubOut(got[2], subOut(alice, dave, time.Hour)) {
			t.Fatalf("ListSubsOut[2] = %+v, want %+v", got[2], subOut(alice, dave, time.Hour))
		}
		none, err := s.ListSubsOut(ctx, carol)
		if err != nil || len(none) != 0 {
			t.Fatalf("ListSubsOut of an unknown watcher = %v, %v; want none", none, err)
		}
		// SubsOutTo: the watchers of one domain that hold a subscription
		// to one presentity (an incoming NOTIFY's lookup).
		everyone := []addr.Address{bob, carol, alice, addr.MustParse("nobody@alpha.example")}
		got, err = s.SubsOutTo(ctx, dave, everyone)
		must(t, "SubsOutTo", err)
		wantIDs(t, "SubsOutTo(dave)", subOutNames(got), "alice>dave@beta.example", "bob>dave@beta.example")
		if !sameSubOut(got[1], subOut(bob, dave, time.Hour)) {
			t.Fatalf("SubsOutTo[1] = %+v, want %+v", got[1], subOut(bob, dave, time.Hour))
		}
		for _, sub := range got {
			if sub.Contact != "" {
				t.Fatalf("SubsOutTo without contact entries: %+v has contact state %q", sub, sub.Contact)
			}
		}
		// With bob's contact entry for dave, its state comes along.
		must(t, "PutContact", s.PutContact(ctx, store.Contact{Owner: bob, Contact: dave, State: store.ContactApproved}))
		got, err = s.SubsOutTo(ctx, dave, []addr.Address{bob})
		must(t, "SubsOutTo", err)
		wantIDs(t, "SubsOutTo(dave, bob)", subOutNames(got), "bob>dave@beta.example")
		if got[0].Contact != store.ContactApproved {
			t.Fatalf("SubsOutTo(dave, bob)[0].Contact = %q, want approved", got[0].Contact)
		}
		got, err = s.SubsOutTo(ctx, erin, everyone)
		must(t, "SubsOutTo", err)
		wantIDs(t, "SubsOutTo(erin)", subOutNames(got), "alice>erin@gamma.example")
		for _, q := range []struct {
			p addr.Address
			w []addr.Address
		}{{dave, nil}, {dave, []addr.Address{carol}}, {addr.MustParse("nobody@beta.example"), everyone}} {
			if got, err := s.SubsOutTo(ctx, q.p, q.w); err != nil || len(got) != 0 {
				t.Fatalf("SubsOutTo(%s, %v) = %v, %v; want none", q.p, q.w, got, err)
			}
		}
	}},
	{"DueForRenewal", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		// Renewals at 8, 16, 24 and 40 minutes; two at 24, ordered by
		// watcher, then presentity.
		for _, sub := range []store.SubOut{
			subOut(bob, erin, 30*time.Minute),
			subOut(alice, erin, 30*time.Minute),
			subOut(alice, dave, 30*time.Minute),
			subOut(alice, carol, 10*time.Minute),
			subOut(bob, dave, 50*time.Minute),
			subOut(alice, bob, 20*time.Minute),
		} {
			must(t, "PutSubOut", s.PutSubOut(ctx, sub))
		}
		wantIDs(t, "DueSubsOut before any", dueSubsOut(t, s, at(8*time.Minute-time.Microsecond), 0))
		wantIDs(t, "DueSubsOut at the first", dueSubsOut(t, s, at(8*time.Minute), 0), "alice>carol@beta.example")
		all := []string{"alice>carol@beta.example", "alice>bob@alpha.example",
			"alice>dave@beta.example", "alice>erin@gamma.example", "bob>erin@gamma.example"}
		wantIDs(t, "DueSubsOut at 30 minutes", dueSubsOut(t, s, at(30*time.Minute), 0), all...)
		wantIDs(t, "DueSubsOut with a limit", dueSubsOut(t, s, at(30*time.Minute), 2), all[:2]...)

		// Listing does not take; a renewal moves a subscription out.
		wantIDs(t, "DueSubsOut again", dueSubsOut(t, s, at(30*time.Minute), 0), all...)
		renewed := store.SubOut{Watcher: alice, Presentity: carol, Expires: at(40 * time.Minute), RenewAt: at(32 * time.Minute)}
		must(t, "PutSubOut renewal", s.PutSubOut(ctx, renewed))
		wantIDs(t, "DueSubsOut after a renewal", dueSubsOut(t, s, at(30*time.Minute), 0), all[1:]...)
		wantIDs(t, "DueSubsOut later", dueSubsOut(t, s, at(40*time.Minute), 0),
			"alice>bob@alpha.example", "alice>dave@beta.example", "alice>erin@gamma.example",
			"bob>erin@gamma.example", "alice>carol@beta.example", "bob>dave@beta.example")
	}},
	{"Prune", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		for i, d := range []time.Duration{time.Minute, time.Hour, 2 * time.Hour} {
			for _, w := range []addr.Address{alice, bob} {
				p := addr.MustParse(fmt.Sprintf("p%d@beta.example", i))
				must(t, "PutSubOut", s.PutSubOut(ctx, subOut(w, p, d)))
			}
		}
		if n, err := s.PruneSubsOut(ctx, at(time.Hour)); err != nil || n != 4 {
			t.Fatalf("PruneSubsOut = %d, %v; want 4", n, err)
		}
		got, err := s.ListSubsOut(ctx, bob)
		must(t, "ListSubsOut", err)
		wantIDs(t, "ListSubsOut after PruneSubsOut", subOutNames(got), "bob>p2@beta.example")
		if n, err := s.PruneSubsOut(ctx, at(time.Hour)); err != nil || n != 0 {
			t.Fatalf("PruneSubsOut again = %d, %v; want 0", n, err)
		}
	}},
	{"CascadeOnAccountDeletion", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		must(t, "PutSubOut", s.PutSubOut(ctx, subOut(alice, dave, time.Hour)))
		must(t, "PutSubOut", s.PutSubOut(ctx, subOut(bob, alice, time.Hour)))
		must(t, "DeleteAccount", s.DeleteAccount(ctx, alice))
		wantIDs(t, "DueSubsOut after the watcher's deletion", dueSubsOut(t, s, at(time.Hour), 0), "bob>alice@alpha.example")
		mustCreate(t, s, alice)
		if got, err := s.ListSubsOut(ctx, alice); err != nil || len(got) != 0 {
			t.Fatalf("ListSubsOut of a recreated account = %v, %v; want none", got, err)
		}
	}},
}
