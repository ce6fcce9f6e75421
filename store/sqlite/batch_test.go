package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// TestBatchIsolation runs one group commit by hand: a duplicate insert
// fails alone, a canceled request is skipped, the rest commit together.
func TestBatchIsolation(t *testing.T) {
	s := newStore(t, Options{})
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	put := func(ctx context.Context, id string) *batchReq {
		return &batchReq{ctx: ctx, stmt: stmtOutboxPut, done: make(chan batchRes, 1),
			args: []any{[]byte(id), "alice@alpha.example", "carol@beta.example", []byte{}, int64(0), 0, int64(0), ""}}
	}
	batch := []*batchReq{
		put(t.Context(), "a"),
		put(t.Context(), "a"),
		put(t.Context(), "b"),
		{ctx: t.Context(), stmt: stmtClaim, args: []any{"beta.example", []byte("m"), int64(0)}, done: make(chan batchRes, 1)},
		put(canceled, "c"),
		{ctx: t.Context(), stmt: stmtOutboxDone, args: []any{[]byte("nope")}, done: make(chan batchRes, 1)},
	}
	s.runBatch(batch)
	want := []struct {
		n   int64
		err func(error) bool
	}{
		{1, func(err error) bool { return err == nil }},
		{0, isUnique},
		{1, func(err error) bool { return err == nil }},
		{1, func(err error) bool { return err == nil }},
		{0, func(err error) bool { return errors.Is(err, context.Canceled) }},
		{0, func(err error) bool { return err == nil }},
	}
	for i, req := range batch {
		res := <-req.done
		if res.n != want[i].n || !want[i].err(res.err) {
			t.Errorf("request %d: %d rows, %v", i, res.n, res.err)
		}
	}
	if n, err := s.CountOutbox(t.Context()); err != nil || n != 2 {
		t.Fatalf("CountOutbox = %d, %v; want 2 (a and b)", n, err)
	}
	st, _, err := s.Claim(t.Context(), "beta.example", []byte("m"), t0())
	if err != nil || st != store.InFlight {
		t.Fatalf("Claim of the batched claim = %v, %v; want in flight", st, err)
	}
}

// TestBatchRecordsClaimsTogether runs one group commit by hand with a run
// of 45 RecordClaims, which go as statements of 32 and 8 rows and as
// single ones: each is recorded with its own result, a repeat of an id
// in the run leaves the first result, a canceled one ends a run, and a
// row that SQLite refuses fails alone (its statement runs again one row
// at a time).
func TestBatchRecordsClaimsTogether(t *testing.T) {
	ctx := t.Context()
	for _, bad := range []int{-1, 17} {
		s := newStore(t, Options{})
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		results := make([]batchRes, 45)
		var batch []*batchReq
		for i := range results {
			id := fmt.Appendf(nil, "m%02d", i)
			var received any = int64(1000 + i)
			reqCtx := ctx
			switch {
			case i == bad:
				received = []byte("not a time") // a STRICT INTEGER column refuses it
			case i == 40:
				reqCtx = canceled
			case i == 44:
				id = []byte("m03") // a repeat, with another result
			}
			s.claims.add("beta.example", id, 1000) // as RecordClaim does
			batch = append(batch, &batchReq{ctx: reqCtx, stmt: stmtRecordClaim, lazy: true,
				then: func(res batchRes) { results[i] = res },
				args: []any{"beta.example", id, received, int64(wire.StatusDelivered), int64(i)}})
		}
		s.runBatch(batch)
		for i, res := range results {
			switch {
			case i == bad:
				if !isConstraint(res.err) {
					t.Errorf("bad row %d: %v, want a constraint error", i, res.err)
				}
				continue
			case i == 40:
				if !errors.Is(res.err, context.Canceled) {
					t.Errorf("canceled row: %v", res.err)
				}
				continue
			case res.err != nil:
				t.Errorf("bad row %d, row %d: %v", bad, i, res.err)
				continue
			case i == 44:
				continue
			}
			state, got, err := s.LookupClaim(ctx, "beta.example", fmt.Appendf(nil, "m%02d", i))
			if err != nil || state != store.Settled || got != (store.Result{Status: wire.StatusDelivered, Count: uint32(i)}) {
				t.Errorf("bad row %d, claim %d: %v %+v %v", bad, i, state, got, err)
			}
		}
		for _, i := range []int{bad, 40} {
			if state, _, err := s.LookupClaim(ctx, "beta.example", fmt.Appendf(nil, "m%02d", i)); i >= 0 && (err != nil || state != 0) {
				t.Errorf("claim %d recorded: %v %v", i, state, err)
			}
		}
	}
}

// TestBatchedAfterClose checks that the batched writes fail after Close
// instead of waiting for a committer that is gone.
func TestBatchedAfterClose(t *testing.T) {
	s := openAt(t, t.TempDir()+"/imx.db", Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Claim(t.Context(), "beta.example", []byte("m"), t0())
	if !errors.Is(err, errClosed) {
		t.Fatalf("Claim after Close: %v, want errClosed", err)
	}
	if err := s.DoneOutbox(t.Context(), []byte("m")); !errors.Is(err, errClosed) {
		t.Fatalf("DoneOutbox after Close: %v, want errClosed", err)
	}
	done := make(chan error, 1)
	s.RecordClaim(t.Context(), "beta.example", []byte("m"), t0(), store.Result{}, func(err error) { done <- err })
	if err := <-done; !errors.Is(err, errClosed) {
		t.Fatalf("RecordClaim after Close: %v, want errClosed", err)
	}
}

// TestRecordsAnsweredAtClose: records handed over just before Close are
// all answered, written or failed, and none is left without its answer.
func TestRecordsAnsweredAtClose(t *testing.T) {
	s := openAt(t, t.TempDir()+"/imx.db", Options{})
	const n = 500
	answers := make(chan error, n)
	for i := range n {
		s.RecordClaim(t.Context(), "beta.example", []byte{byte(i >> 8), byte(i)}, t0(), store.Result{}, func(err error) { answers <- err })
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case err := <-answers:
			if err != nil && !errors.Is(err, errClosed) {
				t.Fatalf("record %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d records answered", i, n)
		}
	}
}

// TestCloseWhileWriting closes the store while writers are busy: every
// write either succeeds or fails, none hangs, and nothing leaks.
func TestCloseWhileWriting(t *testing.T) {
	s := openAt(t, t.TempDir()+"/imx.db", Options{})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			<-start
			for i := range 50 {
				_, _, err := s.Claim(t.Context(), "beta.example", []byte{byte(w), byte(i)}, t0())
				if err != nil {
					return
				}
			}
		})
	}
	close(start)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// TestLinger: a batch of lazy writes takes in the lazy writes that come
// while it waits, and stops waiting when a write that is not lazy comes;
// a batch with any other write does not wait at all (committer).
func TestLinger(t *testing.T) {
	s := &Store{reqs: make(chan *batchReq, maxBatch), quit: make(chan struct{})}
	req := func(lazy bool) *batchReq { return &batchReq{lazy: lazy} }

	first := []*batchReq{req(true)}
	for range 3 {
		s.reqs <- req(true)
	}
	if got := s.linger(first); len(got) != 4 || !allLazy(got) {
		t.Fatalf("lazy writes only: batch of %d, want the 4 lazy ones", len(got))
	}

	for range 2 {
		s.reqs <- req(true)
	}
	s.reqs <- req(false)
	s.reqs <- req(true) // after the eager one: left for the next batch
	if got := s.linger([]*batchReq{req(true)}); len(got) != 4 || allLazy(got) {
		t.Fatalf("with an eager write: batch of %d, want 4 ending with it", len(got))
	}
	if len(s.reqs) != 1 {
		t.Fatalf("%d writes left waiting, want 1", len(s.reqs))
	}
	if allLazy([]*batchReq{req(true), req(false)}) || !allLazy([]*batchReq{req(true)}) {
		t.Fatal("allLazy is wrong")
	}
	<-s.reqs

	// A full batch does not wait.
	full := make([]*batchReq, maxBatch)
	for i := range full {
		full[i] = req(true)
	}
	s.reqs <- req(true)
	if got := s.linger(full); len(got) != maxBatch || len(s.reqs) != 1 {
		t.Fatalf("full batch grew to %d", len(got))
	}
}
