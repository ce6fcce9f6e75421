package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// claimIs fails t unless Claim returns the state (and, when settled, the
// result) wanted.
func claimIs(t *testing.T, s store.Store, origin string, id []byte, now time.Time, want store.ClaimState, wantR store.Result) {
	t.Helper()
	got, r, err := s.Claim(t.Context(), origin, id, now)
	must(t, "Claim", err)
	if got != want || (want == store.Settled && r != wantR) || (want != store.Settled && r != (store.Result{})) {
		t.Fatalf("Claim(%s, %x) = %v, %+v; want %v, %+v", origin, id, got, r, want, wantR)
	}
}

var delivered2 = store.Result{Status: wire.StatusDelivered, Count: 2}

// record calls RecordClaim and waits for its outcome.
func record(ctx context.Context, s store.Store, origin string, id []byte, now time.Time, r store.Result) error {
	done := make(chan error, 1)
	s.RecordClaim(ctx, origin, id, now, r, func(err error) { done <- err })
	return <-done
}

var dedupTests = []subtest{
	{"ClaimSettle", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		id := []byte{0, 1, 2, 0xff} // ids are bytes, zeros included
		claimIs(t, s, "beta.example", id, t0, store.Claimed, store.Result{})
		claimIs(t, s, "beta.example", id, at(time.Second), store.InFlight, store.Result{})
		must(t, "SettleClaim", s.SettleClaim(ctx, "beta.example", id, delivered2))
		claimIs(t, s, "beta.example", id, at(time.Minute), store.Settled, delivered2)
		wantErr(t, "SettleClaim twice", s.SettleClaim(ctx, "beta.example", id, store.Result{Status: wire.StatusStored}), store.ErrExists)
		claimIs(t, s, "beta.example", id, at(time.Minute), store.Settled, delivered2)

		// Every status survives, including StatusOK (0) and the unknown.
		for i, st := range []wire.Status{wire.StatusOK, wire.StatusUnknownUser, wire.StatusStored, 0xfffe} {
			id := []byte{byte(i), 'x'}
			r := store.Result{Status: st, Count: uint32(i) << 30}
			claimIs(t, s, "beta.example", id, t0, store.Claimed, store.Result{})
			must(t, "SettleClaim", s.SettleClaim(ctx, "beta.example", id, r))
			claimIs(t, s, "beta.example", id, t0, store.Settled, r)
		}
		wantErr(t, "SettleClaim of an unclaimed id", s.SettleClaim(ctx, "beta.example", []byte("nope"), delivered2), store.ErrNotFound)
	}},
	{"LookupRecord", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		lookupIs := func(origin string, id []byte, want store.ClaimState, wantR store.Result) {
			t.Helper()
			got, r, err := s.LookupClaim(ctx, origin, id)
			must(t, "LookupClaim", err)
			if got != want || r != wantR {
				t.Fatalf("LookupClaim(%s, %x) = %v, %+v; want %v, %+v", origin, id, got, r, want, wantR)
			}
		}
		// Nothing known: 0, and the lookup claims nothing.
		lookupIs("beta.example", []byte("r-1"), 0, store.Result{})
		lookupIs("beta.example", []byte("r-1"), 0, store.Result{})
		// Recorded in one step: settled at once.
		must(t, "RecordClaim", record(ctx, s, "beta.example", []byte("r-1"), t0, delivered2))
		lookupIs("beta.example", []byte("r-1"), store.Settled, delivered2)
		lookupIs("gamma.example", []byte("r-1"), 0, store.Result{})
		claimIs(t, s, "beta.example", []byte("r-1"), at(time.Second), store.Settled, delivered2)
		// A second record does not change the first result.
		must(t, "RecordClaim again", record(ctx, s, "beta.example", []byte("r-1"), t0, store.Result{Status: wire.StatusStored}))
		lookupIs("beta.example", []byte("r-1"), store.Settled, delivered2)
		// An in-flight claim shows as such, and a record settles it.
		claimIs(t, s, "beta.example", []byte("r-2"), t0, store.Claimed, store.Result{})
		lookupIs("beta.example", []byte("r-2"), store.InFlight, store.Result{})
		must(t, "RecordClaim of an in-flight claim", record(ctx, s, "beta.example", []byte("r-2"), t0, delivered2))
		lookupIs("beta.example", []byte("r-2"), store.Settled, delivered2)
		// Recorded claims are pruned by their time like the others.
		if n, err := s.PruneClaims(ctx, at(time.Microsecond)); err != nil || n != 2 {
			t.Fatalf("PruneClaims = %d, %v; want 2", n, err)
		}
		lookupIs("beta.example", []byte("r-1"), 0, store.Result{})
		_, _, err := s.LookupClaim(ctx, "", []byte("m"))
		wantErr(t, "LookupClaim with an empty origin", err, store.ErrInvalid)
		wantErr(t, "RecordClaim with an empty id", record(ctx, s, "beta.example", nil, t0, delivered2), store.ErrInvalid)
	}},
	{"Namespaces", func(t *testing.T, h *harness) {
		s := h.store(t)
		id := []byte("m-1")
		claimIs(t, s, "beta.example", id, t0, store.Claimed, store.Result{})
		claimIs(t, s, "gamma.example", id, t0, store.Claimed, store.Result{})
		claimIs(t, s, "alice@alpha.example", id, t0, store.Claimed, store.Result{})
		claimIs(t, s, "beta.example", []byte("m-1\x00"), t0, store.Claimed, store.Result{})
		claimIs(t, s, "beta.example", []byte("m-"), t0, store.Claimed, store.Result{})
		claimIs(t, s, "beta.example", id, t0, store.InFlight, store.Result{})
	}},
	{"Invalid", func(t *testing.T, h *harness) {
		s := h.store(t)
		_, _, err := s.Claim(t.Context(), "", []byte("m"), t0)
		wantErr(t, "Claim with an empty origin", err, store.ErrInvalid)
		_, _, err = s.Claim(t.Context(), "beta.example", nil, t0)
		wantErr(t, "Claim with an empty id", err, store.ErrInvalid)
	}},
	{"Release", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		id := []byte("m-1")
		claimIs(t, s, "beta.example", id, t0, store.Claimed, store.Result{})
		must(t, "ReleaseClaim", s.ReleaseClaim(ctx, "beta.example", id))
		wantErr(t, "ReleaseClaim twice", s.ReleaseClaim(ctx, "beta.example", id), store.ErrNotFound)
		wantErr(t, "SettleClaim of a released claim", s.SettleClaim(ctx, "beta.example", id, delivered2), store.ErrNotFound)
		claimIs(t, s, "beta.example", id, t0, store.Claimed, store.Result{})
		must(t, "SettleClaim", s.SettleClaim(ctx, "beta.example", id, delivered2))
		wantErr(t, "ReleaseClaim of a settled claim", s.ReleaseClaim(ctx, "beta.example", id), store.ErrNotFound)
		claimIs(t, s, "beta.example", id, t0, store.Settled, delivered2)
	}},
	{"ReleaseStale", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		claimIs(t, s, "beta.example", []byte("old"), t0, store.Claimed, store.Result{})
		claimIs(t, s, "beta.example", []byte("old-settled"), t0, store.Claimed, store.Result{})
		must(t, "SettleClaim", s.SettleClaim(ctx, "beta.example", []byte("old-settled"), delivered2))
		claimIs(t, s, "beta.example", []byte("new"), at(time.Minute), store.Claimed, store.Result{})

		n, err := s.ReleaseClaims(ctx, at(time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("ReleaseClaims = %d, %v; want 1", n, err)
		}
		claimIs(t, s, "beta.example", []byte("old"), at(time.Minute), store.Claimed, store.Result{})
		claimIs(t, s, "beta.example", []byte("old-settled"), at(time.Minute), store.Settled, delivered2)
		claimIs(t, s, "beta.example", []byte("new"), at(time.Minute), store.InFlight, store.Result{})
	}},
	{"Prune", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		for i, d := range []time.Duration{0, time.Hour, 23 * time.Hour, 25 * time.Hour} {
			id := []byte{byte(i)}
			claimIs(t, s, "beta.example", id, at(d), store.Claimed, store.Result{})
			if i%2 == 0 {
				must(t, "SettleClaim", s.SettleClaim(ctx, "beta.example", id, delivered2))
			}
		}
		// Prune the claims made up to t0+1h: the first two, settled or not.
		n, err := s.PruneClaims(ctx, at(time.Hour+time.Microsecond))
		if err != nil || n != 2 {
			t.Fatalf("PruneClaims = %d, %v; want 2", n, err)
		}
		claimIs(t, s, "beta.example", []byte{0}, at(25*time.Hour), store.Claimed, store.Result{})
		claimIs(t, s, "beta.example", []byte{1}, at(25*time.Hour), store.Claimed, store.Result{})
		claimIs(t, s, "beta.example", []byte{2}, at(25*time.Hour), store.Settled, delivered2)
		claimIs(t, s, "beta.example", []byte{3}, at(25*time.Hour), store.InFlight, store.Result{})
	}},
	{"ManyPrune", func(t *testing.T, h *harness) {
		// More claims than a backend is likely to delete in one batch.
		s := h.store(t)
		ctx := t.Context()
		const n = 1500
		for i := range n {
			id := []byte{byte(i >> 8), byte(i)}
			claimIs(t, s, "beta.example", id, at(time.Duration(i)*time.Millisecond), store.Claimed, store.Result{})
		}
		got, err := s.PruneClaims(ctx, at(1100*time.Millisecond))
		if err != nil || got != 1100 {
			t.Fatalf("PruneClaims = %d, %v; want 1100", got, err)
		}
		got, err = s.PruneClaims(ctx, at(time.Hour))
		if err != nil || got != n-1100 {
			t.Fatalf("second PruneClaims = %d, %v; want %d", got, err, n-1100)
		}
	}},
	{"ConcurrentClaims", func(t *testing.T, h *harness) {
		s := h.store(t)
		const workers = 16
		id := []byte("contended")
		claimAll := func() map[store.ClaimState]int {
			var (
				mu     sync.Mutex
				states = map[store.ClaimState]int{}
				wg     sync.WaitGroup
				start  = make(chan struct{})
			)
			for range workers {
				wg.Go(func() {
					<-start
					st, r, err := s.Claim(t.Context(), "beta.example", id, t0)
					if err != nil {
						t.Errorf("Claim: %v", err)
						return
					}
					if st == store.Settled && r != delivered2 {
						t.Errorf("Claim returned the result %+v, want %+v", r, delivered2)
					}
					mu.Lock()
					states[st]++
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()
			return states
		}
		if got := claimAll(); got[store.Claimed] != 1 || got[store.InFlight] != workers-1 {
			t.Fatalf("%d concurrent Claims: %v, want exactly one claimed and the rest in flight", workers, got)
		}
		must(t, "SettleClaim", s.SettleClaim(t.Context(), "beta.example", id, delivered2))
		if got := claimAll(); got[store.Settled] != workers {
			t.Fatalf("%d concurrent Claims after settling: %v, want all settled", workers, got)
		}
	}},
}
