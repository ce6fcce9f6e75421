package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// outboxEntry returns a new entry, due at created.
func outboxEntry(id string, from, to addr.Address, created time.Time) store.OutboxEntry {
	return store.OutboxEntry{
		ID:          []byte(id),
		From:        from,
		To:          to,
		MIME:        []byte("From: " + from.String() + "\r\nTo: " + to.String() + "\r\n\r\nhello " + id + "\r\n"),
		Created:     created,
		NextAttempt: created,
	}
}

func sameEntry(a, b store.OutboxEntry) bool {
	return bytes.Equal(a.ID, b.ID) && a.From == b.From && a.To == b.To && bytes.Equal(a.MIME, b.MIME) &&
		a.Created.Equal(b.Created) && a.Attempts == b.Attempts && a.NextAttempt.Equal(b.NextAttempt) &&
		a.LastError == b.LastError
}

// dueIDs returns the ids of the entries DueOutbox returns.
func dueIDs(t *testing.T, s store.Store, now time.Time, limit int) []string {
	t.Helper()
	es, err := s.DueOutbox(t.Context(), now, limit)
	must(t, "DueOutbox", err)
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = string(e.ID)
	}
	return ids
}

func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func wantCount(t *testing.T, s store.Store, want int) {
	t.Helper()
	if n, err := s.CountOutbox(t.Context()); err != nil || n != want {
		t.Fatalf("CountOutbox = %d, %v; want %d", n, err, want)
	}
}

var outboxTests = []subtest{
	{"RoundTrip", func(t *testing.T, h *harness) {
		s := h.store(t)
		e := store.OutboxEntry{
			ID:          []byte{0, 0xff, 'm'},
			From:        alice,
			To:          carol,
			MIME:        []byte("From: alice@alpha.example\r\nTo: carol@beta.example\r\n\r\n\x00\xff binary-safe"),
			Created:     at(-time.Hour + 123*time.Microsecond),
			Attempts:    3,
			NextAttempt: at(-time.Second),
			LastError:   "unreachable: no route",
		}
		must(t, "PutOutbox", s.PutOutbox(t.Context(), e))
		es, err := s.DueOutbox(t.Context(), t0, 0)
		must(t, "DueOutbox", err)
		if len(es) != 1 || !sameEntry(es[0], e) {
			t.Fatalf("DueOutbox = %+v, want [%+v]", es, e)
		}
		if es[0].Created.Location() != time.UTC {
			t.Errorf("Created in %v, want UTC", es[0].Created.Location())
		}
		wantCount(t, s, 1)
	}},
	{"PutDuplicate", func(t *testing.T, h *harness) {
		s := h.store(t)
		must(t, "PutOutbox", s.PutOutbox(t.Context(), outboxEntry("m1", alice, carol, t0)))
		wantErr(t, "PutOutbox twice", s.PutOutbox(t.Context(), outboxEntry("m1", bob, carol, at(time.Second))), store.ErrExists)
		wantErr(t, "PutOutbox with an empty id", s.PutOutbox(t.Context(), outboxEntry("", bob, carol, t0)), store.ErrInvalid)
		wantCount(t, s, 1)
		es, err := s.DueOutbox(t.Context(), at(time.Hour), 0)
		must(t, "DueOutbox", err)
		if len(es) != 1 || es[0].From != alice {
			t.Fatalf("DueOutbox after a refused duplicate = %+v, want alice's entry", es)
		}
	}},
	{"DueOrder", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		// Put out of order; b1 and b2 share their creation time and keep
		// their insertion order.
		for _, e := range []store.OutboxEntry{
			outboxEntry("c", alice, carol, at(3*time.Second)),
			outboxEntry("b1", alice, carol, at(2*time.Second)),
			outboxEntry("a", bob, carol, at(time.Second)),
			outboxEntry("b2", bob, carol, at(2*time.Second)),
			outboxEntry("later", bob, carol, at(time.Hour)),
		} {
			must(t, "PutOutbox", s.PutOutbox(ctx, e))
		}
		wantIDs(t, "DueOutbox at t0", dueIDs(t, s, t0, 0))
		wantIDs(t, "DueOutbox at t0+2s", dueIDs(t, s, at(2*time.Second), 0), "a", "b1", "b2")
		wantIDs(t, "DueOutbox at t0+1m", dueIDs(t, s, at(time.Minute), 0), "a", "b1", "b2", "c")
		wantIDs(t, "DueOutbox with limit 2", dueIDs(t, s, at(time.Minute), 2), "a", "b1")
		wantIDs(t, "DueOutbox with limit -1", dueIDs(t, s, at(time.Hour), -1), "a", "b1", "b2", "c", "later")
		// Due does not take: the same entries are due again.
		wantIDs(t, "DueOutbox again", dueIDs(t, s, at(time.Minute), 2), "a", "b1")
		wantCount(t, s, 5)
	}},
	{"Reschedule", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		must(t, "PutOutbox", s.PutOutbox(ctx, outboxEntry("a", alice, carol, t0)))
		must(t, "PutOutbox", s.PutOutbox(ctx, outboxEntry("b", alice, carol, at(time.Second))))
		must(t, "RescheduleOutbox", s.RescheduleOutbox(ctx, []byte("a"), at(time.Minute), "timeout"))
		wantIDs(t, "DueOutbox after rescheduling a", dueIDs(t, s, at(time.Second), 0), "b")
		must(t, "RescheduleOutbox", s.RescheduleOutbox(ctx, []byte("a"), at(2*time.Minute), "unreachable"))
		wantIDs(t, "DueOutbox at t0+1m", dueIDs(t, s, at(time.Minute), 0), "b")
		es, err := s.DueOutbox(ctx, at(2*time.Minute), 0)
		must(t, "DueOutbox", err)
		want := outboxEntry("a", alice, carol, t0)
		want.Attempts, want.NextAttempt, want.LastError = 2, at(2*time.Minute), "unreachable"
		if len(es) != 2 || !sameEntry(es[0], want) {
			t.Fatalf("DueOutbox = %+v, want a first as %+v", es, want)
		}
		wantErr(t, "RescheduleOutbox of an unknown id", s.RescheduleOutbox(ctx, []byte("x"), t0, ""), store.ErrNotFound)
	}},
	{"Done", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		must(t, "PutOutbox", s.PutOutbox(ctx, outboxEntry("a", alice, carol, t0)))
		must(t, "PutOutbox", s.PutOutbox(ctx, outboxEntry("b", alice, carol, t0)))
		must(t, "DoneOutbox", s.DoneOutbox(ctx, []byte("a")))
		wantCount(t, s, 1)
		wantIDs(t, "DueOutbox after DoneOutbox", dueIDs(t, s, at(time.Hour), 0), "b")
		wantErr(t, "DoneOutbox twice", s.DoneOutbox(ctx, []byte("a")), store.ErrNotFound)
		wantErr(t, "RescheduleOutbox of a done entry", s.RescheduleOutbox(ctx, []byte("a"), t0, ""), store.ErrNotFound)
		// The id may be queued again once done.
		must(t, "PutOutbox again", s.PutOutbox(ctx, outboxEntry("a", alice, carol, t0)))
		wantCount(t, s, 2)
	}},
	{"Concurrent", func(t *testing.T, h *harness) {
		s := h.store(t)
		const workers, each = 8, 25
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("w%d-%d", w, i)
					if err := s.PutOutbox(t.Context(), outboxEntry(id, alice, carol, t0)); err != nil {
						t.Errorf("PutOutbox(%s): %v", id, err)
						return
					}
					if i%2 == 0 {
						if err := s.DoneOutbox(t.Context(), []byte(id)); err != nil {
							t.Errorf("DoneOutbox(%s): %v", id, err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		wantCount(t, s, workers*(each/2))
	}},
}
