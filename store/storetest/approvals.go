package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

func sameApproval(a, b store.Approval) bool {
	return a.Presentity == b.Presentity && a.Watcher == b.Watcher && a.State == b.State && a.Asked.Equal(b.Asked)
}

func wantApprovals(t *testing.T, s store.Store, presentity addr.Address, state store.ApprovalState, want ...store.Approval) {
	t.Helper()
	got, err := s.ListApprovals(t.Context(), presentity, state)
	must(t, "ListApprovals", err)
	if len(got) != len(want) {
		t.Fatalf("ListApprovals(%s, %q) = %+v, want %+v", presentity, state, got, want)
	}
	for i := range got {
		if !sameApproval(got[i], want[i]) {
			t.Fatalf("ListApprovals(%s, %q)[%d] = %+v, want %+v", presentity, state, i, got[i], want[i])
		}
	}
}

var approvalTests = []subtest{
	{"SetGetList", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		// Asked out of the order of the watchers' addresses; two at the
		// same time, ordered by watcher.
		as := []store.Approval{
			{Presentity: bob, Watcher: erin, State: store.ApprovalPending, Asked: at(-time.Hour)},
			{Presentity: bob, Watcher: dave, State: store.ApprovalApproved, Asked: at(-2 * time.Hour)},
			{Presentity: bob, Watcher: carol, State: store.ApprovalPending, Asked: at(-time.Hour)},
			{Presentity: bob, Watcher: alice, State: store.ApprovalDenied, Asked: at(123 * time.Microsecond)},
		}
		for _, a := range as {
			must(t, "SetApproval", s.SetApproval(ctx, a))
		}
		wantApprovals(t, s, bob, "", as[1], as[2], as[0], as[3])
		wantApprovals(t, s, bob, store.ApprovalPending, as[2], as[0])
		wantApprovals(t, s, bob, store.ApprovalApproved, as[1])
		wantApprovals(t, s, bob, store.ApprovalDenied, as[3])
		wantApprovals(t, s, alice, "")

		got, err := s.GetApproval(ctx, bob, dave)
		must(t, "GetApproval", err)
		if !sameApproval(got, as[1]) || got.Asked.Location() != time.UTC {
			t.Fatalf("GetApproval = %+v, want %+v in UTC", got, as[1])
		}
		_, err = s.GetApproval(ctx, alice, dave)
		wantErr(t, "GetApproval of another presentity", err, store.ErrNotFound)

		// The presentity answers: SetApproval replaces.
		as[0].State = store.ApprovalApproved
		must(t, "SetApproval approved", s.SetApproval(ctx, as[0]))
		wantApprovals(t, s, bob, store.ApprovalPending, as[2])
		wantApprovals(t, s, bob, store.ApprovalApproved, as[1], as[0])

		_, err = s.ListApprovals(ctx, bob, "maybe")
		wantErr(t, "ListApprovals with a bad state", err, store.ErrInvalid)
	}},
	{"Invalid", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		for name, a := range map[string]store.Approval{
			"zero presentity": {Watcher: dave, State: store.ApprovalPending, Asked: t0},
			"zero watcher":    {Presentity: alice, State: store.ApprovalPending, Asked: t0},
			"no state":        {Presentity: alice, Watcher: dave, Asked: t0},
			"bad state":       {Presentity: alice, Watcher: dave, State: "asked", Asked: t0},
		} {
			wantErr(t, "SetApproval with "+name, s.SetApproval(ctx, a), store.ErrInvalid)
		}
		wantErr(t, "SetApproval for an unknown presentity",
			s.SetApproval(ctx, store.Approval{Presentity: bob, Watcher: dave, State: store.ApprovalPending, Asked: t0}), store.ErrNotFound)
		_, _, err := s.RequestApproval(ctx, bob, dave, t0)
		wantErr(t, "RequestApproval for an unknown presentity", err, store.ErrNotFound)
		_, _, err = s.RequestApproval(ctx, alice, addr.Address{}, t0)
		wantErr(t, "RequestApproval of a zero watcher", err, store.ErrInvalid)
		wantApprovals(t, s, alice, "")
	}},
	{"Request", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, bob)
		a, created, err := s.RequestApproval(ctx, bob, dave, t0)
		must(t, "RequestApproval", err)
		want := store.Approval{Presentity: bob, Watcher: dave, State: store.ApprovalPending, Asked: t0}
		if !created || !sameApproval(a, want) {
			t.Fatalf("RequestApproval = %+v, %v; want %+v, created", a, created, want)
		}
		// A repeat changes nothing, not even the time asked.
		a, created, err = s.RequestApproval(ctx, bob, dave, at(time.Hour))
		must(t, "RequestApproval again", err)
		if created || !sameApproval(a, want) {
			t.Fatalf("repeated RequestApproval = %+v, %v; want %+v, not created", a, created, want)
		}
		// A request never undoes a decision.
		want.State = store.ApprovalDenied
		must(t, "SetApproval", s.SetApproval(ctx, want))
		a, created, err = s.RequestApproval(ctx, bob, dave, at(2*time.Hour))
		must(t, "RequestApproval after a denial", err)
		if created || !sameApproval(a, want) {
			t.Fatalf("RequestApproval after a denial = %+v, %v; want %+v, not created", a, created, want)
		}
	}},
	{"RequestConcurrent", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, bob)
		const n = 16
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created int
		)
		for i := range n {
			wg.Go(func() {
				_, c, err := s.RequestApproval(ctx, bob, dave, at(time.Duration(i)*time.Second))
				if err != nil {
					t.Errorf("RequestApproval: %v", err)
				}
				if c {
					mu.Lock()
					created++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if created != 1 {
			t.Fatalf("%d of %d concurrent requests created the approval, want 1", created, n)
		}
		got, err := s.ListApprovals(ctx, bob, store.ApprovalPending)
		if err != nil || len(got) != 1 {
			t.Fatalf("ListApprovals = %+v, %v; want one pending", got, err)
		}
	}},
	{"Delete", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, bob)
		_, _, err := s.RequestApproval(ctx, bob, dave, t0)
		must(t, "RequestApproval", err)
		must(t, "DeleteApproval", s.DeleteApproval(ctx, bob, dave))
		wantErr(t, "DeleteApproval twice", s.DeleteApproval(ctx, bob, dave), store.ErrNotFound)
		_, err = s.GetApproval(ctx, bob, dave)
		wantErr(t, "GetApproval after DeleteApproval", err, store.ErrNotFound)
		// Asking again after a deletion is a new request.
		if _, created, err := s.RequestApproval(ctx, bob, dave, at(time.Hour)); err != nil || !created {
			t.Fatalf("RequestApproval after DeleteApproval: created %v, %v; want created", created, err)
		}
	}},
	{"CascadeOnAccountDeletion", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		_, _, err := s.RequestApproval(ctx, bob, dave, t0)
		must(t, "RequestApproval", err)
		kept := store.Approval{Presentity: alice, Watcher: bob, State: store.ApprovalApproved, Asked: t0}
		must(t, "SetApproval", s.SetApproval(ctx, kept))
		must(t, "DeleteAccount", s.DeleteAccount(ctx, bob))
		mustCreate(t, s, bob)
		wantApprovals(t, s, bob, "")
		wantApprovals(t, s, alice, "", kept)
	}},
}
