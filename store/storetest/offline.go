package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// offlineMsg returns a message from from to to with the id id.
func offlineMsg(from, to addr.Address, id string, received time.Time) store.OfflineMessage {
	return store.OfflineMessage{
		ID:       []byte(id),
		From:     from,
		To:       to,
		MIME:     []byte("From: " + from.String() + "\r\nTo: " + to.String() + "\r\n\r\n" + id + "\r\n"),
		Received: received,
	}
}

// offlineIDs returns the ids of ms, checking on the way that every message
// is addressed to to and that the Seqs increase.
func offlineIDs(t *testing.T, to addr.Address, ms []store.OfflineMessage) []string {
	t.Helper()
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = string(m.ID)
		if m.To != to {
			t.Fatalf("message %s is for %s, want %s", m.ID, m.To, to)
		}
		if i > 0 && m.Seq <= ms[i-1].Seq {
			t.Fatalf("Seq %d follows %d: not increasing", m.Seq, ms[i-1].Seq)
		}
	}
	return ids
}

func wantOffline(t *testing.T, s store.Store, to addr.Address, want int) {
	t.Helper()
	if n, err := s.CountOffline(t.Context(), to); err != nil || n != want {
		t.Fatalf("CountOffline(%s) = %d, %v; want %d", to, n, err, want)
	}
}

var offlineTests = []subtest{
	{"StoreListPop", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		in := []store.OfflineMessage{
			offlineMsg(carol, alice, "m1", at(time.Second)),
			offlineMsg(bob, alice, "m2", t0), // arrival order, not Received, decides
			offlineMsg(carol, alice, "m3", at(2*time.Second)),
		}
		for _, m := range in {
			must(t, "StoreOffline", s.StoreOffline(ctx, m, 10))
		}
		must(t, "StoreOffline for bob", s.StoreOffline(ctx, offlineMsg(carol, bob, "m1", t0), 10))
		wantOffline(t, s, alice, 3)
		wantOffline(t, s, bob, 1)
		wantOffline(t, s, carol, 0)

		ms, err := s.ListOffline(ctx, alice, 0)
		must(t, "ListOffline", err)
		wantIDs(t, "ListOffline", offlineIDs(t, alice, ms), "m1", "m2", "m3")
		for i, m := range ms {
			w := in[i]
			if m.From != w.From || !bytes.Equal(m.MIME, w.MIME) || !m.Received.Equal(w.Received) || m.Seq == 0 {
				t.Fatalf("ListOffline[%d] = %+v, want %+v with a Seq", i, m, w)
			}
		}
		ms, err = s.ListOffline(ctx, alice, 2)
		must(t, "ListOffline with limit 2", err)
		wantIDs(t, "ListOffline with limit 2", offlineIDs(t, alice, ms), "m1", "m2")
		wantOffline(t, s, alice, 3)

		ms, err = s.PopOffline(ctx, alice, 2)
		must(t, "PopOffline", err)
		wantIDs(t, "PopOffline with limit 2", offlineIDs(t, alice, ms), "m1", "m2")
		wantOffline(t, s, alice, 1)
		ms, err = s.PopOffline(ctx, alice, 0)
		must(t, "PopOffline", err)
		wantIDs(t, "PopOffline of the rest", offlineIDs(t, alice, ms), "m3")
		ms, err = s.PopOffline(ctx, alice, 0)
		if err != nil || len(ms) != 0 {
			t.Fatalf("PopOffline of nothing = %v, %v; want none", ms, err)
		}
		wantOffline(t, s, bob, 1)
		ms, err = s.ListOffline(ctx, carol, 0)
		if err != nil || len(ms) != 0 {
			t.Fatalf("ListOffline of an unknown account = %v, %v; want none", ms, err)
		}
	}},
	{"Refusals", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		wantErr(t, "StoreOffline for an unknown account", s.StoreOffline(ctx, offlineMsg(carol, bob, "m1", t0), 10), store.ErrNotFound)
		wantErr(t, "StoreOffline with bound 0", s.StoreOffline(ctx, offlineMsg(carol, alice, "m1", t0), 0), store.ErrInvalid)
		wantErr(t, "StoreOffline with an empty id", s.StoreOffline(ctx, offlineMsg(carol, alice, "", t0), 10), store.ErrInvalid)
		must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, alice, "m1", t0), 10))
		wantErr(t, "StoreOffline of the same message", s.StoreOffline(ctx, offlineMsg(carol, alice, "m1", at(time.Second)), 10), store.ErrExists)
		// Ids are unique per sender: another sender may use the same one.
		must(t, "StoreOffline of another sender's m1", s.StoreOffline(ctx, offlineMsg(bob, alice, "m1", t0), 10))
		wantOffline(t, s, alice, 2)
	}},
	{"Bound", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		for i := range 3 {
			must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, alice, fmt.Sprint(i), t0), 3))
		}
		wantErr(t, "StoreOffline over the bound", s.StoreOffline(ctx, offlineMsg(carol, alice, "x", t0), 3), store.ErrFull)
		wantOffline(t, s, alice, 3)
		// The bound is per recipient and per call.
		must(t, "StoreOffline for bob", s.StoreOffline(ctx, offlineMsg(carol, bob, "x", t0), 1))
		must(t, "StoreOffline under a larger bound", s.StoreOffline(ctx, offlineMsg(carol, alice, "x", t0), 4))
		wantErr(t, "StoreOffline under a smaller bound", s.StoreOffline(ctx, offlineMsg(carol, alice, "y", t0), 2), store.ErrFull)
		_, err := s.PopOffline(ctx, alice, 1)
		must(t, "PopOffline", err)
		must(t, "StoreOffline after a pop", s.StoreOffline(ctx, offlineMsg(carol, alice, "y", t0), 4))
		wantOffline(t, s, alice, 4)
	}},
	{"ConcurrentBound", func(t *testing.T, h *harness) {
		s := h.store(t)
		mustCreate(t, s, alice)
		const workers, bound = 20, 5
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			stored int
			full   int
			start  = make(chan struct{})
		)
		for i := range workers {
			wg.Go(func() {
				<-start
				err := s.StoreOffline(t.Context(), offlineMsg(carol, alice, fmt.Sprint(i), t0), bound)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					stored++
				case errors.Is(err, store.ErrFull):
					full++
				default:
					t.Errorf("StoreOffline: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if stored != bound || full != workers-bound {
			t.Fatalf("%d concurrent StoreOffline with bound %d: %d stored, %d full", workers, bound, stored, full)
		}
		wantOffline(t, s, alice, bound)
	}},
	{"ConcurrentPop", func(t *testing.T, h *harness) {
		s := h.store(t)
		mustCreate(t, s, alice)
		const n = 40
		for i := range n {
			must(t, "StoreOffline", s.StoreOffline(t.Context(), offlineMsg(carol, alice, fmt.Sprint(i), t0), n))
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			seen = map[string]int{}
		)
		for range 4 {
			wg.Go(func() {
				for {
					ms, err := s.PopOffline(t.Context(), alice, 3)
					if err != nil {
						t.Errorf("PopOffline: %v", err)
						return
					}
					if len(ms) == 0 {
						return
					}
					mu.Lock()
					for _, m := range ms {
						seen[string(m.ID)]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for i := range n {
			if c := seen[fmt.Sprint(i)]; c != 1 {
				t.Errorf("message %d popped %d times, want once", i, c)
			}
		}
		wantOffline(t, s, alice, 0)
	}},
	{"DeleteThrough", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		for _, id := range []string{"m1", "m2", "m3"} {
			must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, alice, id, t0), 10))
		}
		must(t, "StoreOffline for bob", s.StoreOffline(ctx, offlineMsg(carol, bob, "b1", t0), 10))
		ms, err := s.ListOffline(ctx, alice, 2)
		must(t, "ListOffline", err)
		// A message arrives between the list and the acknowledgement.
		must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, alice, "m4", t0), 10))
		n, err := s.DeleteOffline(ctx, alice, ms[1].Seq)
		if err != nil || n != 2 {
			t.Fatalf("DeleteOffline through m2 = %d, %v; want 2", n, err)
		}
		rest, err := s.ListOffline(ctx, alice, 0)
		must(t, "ListOffline", err)
		wantIDs(t, "ListOffline after DeleteOffline", offlineIDs(t, alice, rest), "m3", "m4")
		wantOffline(t, s, bob, 1)

		// Seqs are never reused: after everything is gone, a new message
		// still gets a Seq above the ones acknowledged before.
		last := rest[1].Seq
		if _, err := s.PopOffline(ctx, alice, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PopOffline(ctx, bob, 0); err != nil {
			t.Fatal(err)
		}
		must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, alice, "m5", t0), 10))
		if n, err := s.DeleteOffline(ctx, alice, last); err != nil || n != 0 {
			t.Fatalf("DeleteOffline through an old Seq = %d, %v; want 0: m5 must survive", n, err)
		}
		wantOffline(t, s, alice, 1)
	}},
	{"Prune", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, alice, "old", t0), 10))
		must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, bob, "old", at(time.Hour)), 10))
		must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, alice, "new", at(2*time.Hour)), 10))
		n, err := s.PruneOffline(ctx, at(2*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("PruneOffline = %d, %v; want 2", n, err)
		}
		ms, err := s.ListOffline(ctx, alice, 0)
		must(t, "ListOffline", err)
		wantIDs(t, "ListOffline after PruneOffline", offlineIDs(t, alice, ms), "new")
		wantOffline(t, s, bob, 0)
	}},
}
