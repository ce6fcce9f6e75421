package s2s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imxproject/imx/discovery"
	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/internal/workers"
	"github.com/imxproject/imx/wire"
)

// noDNS is a Resolver for tests that dial nothing.
type noDNS struct{}

func (noDNS) Lookup(context.Context, string) ([]discovery.Endpoint, error) {
	return nil, errors.New("no DNS in this test")
}

// reader is a Server with one connection, authenticated for (beta.example,
// alpha.example), whose records come from a goroutine that stands for the
// connection's reader: the worker pool without the network, so that a test
// sees exactly when records are dispatched and handled.
type reader struct {
	s    *Server
	c    *sconn
	recs chan wire.Record
	stop func() // ends the reader and closes the Server
}

func newReader(t *testing.T, cfg Config, h HandlerFunc) *reader {
	t.Helper()
	cfg.Domains = []string{"beta.example"}
	cfg.Resolver = noDNS{}
	cfg.Key = bytes.Repeat([]byte{7}, 32)
	cfg.Handler = h
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &sconn{
		srv:      s,
		handling: make(chan struct{}, s.cfg.MaxConcurrent),
		ordered:  map[orderKey][]queued{},
		authed:   map[pair]struct{}{{"beta.example", "alpha.example"}: {}},
	}
	r := &reader{s: s, c: c, recs: make(chan wire.Record)}
	s.wg.Go(func() {
		for rec := range r.recs {
			s.dispatch(c, rec)
		}
	})
	r.stop = sync.OnceFunc(func() {
		close(r.recs)
		_ = s.Close()
		if n := s.Stats.Workers.Load(); n != 0 {
			t.Errorf("%d workers after Close", n)
		}
	})
	t.Cleanup(r.stop)
	return r
}

// gate holds handlers until it is opened, at the latest when the test ends
// (before the Server closes, which waits for them).
type gate struct {
	ch   chan struct{}
	open func()
}

func newGate() *gate {
	g := &gate{ch: make(chan struct{})}
	g.open = sync.OnceFunc(func() { close(g.ch) })
	return g
}

func (g *gate) openAtEnd(t *testing.T) { t.Cleanup(g.open) }

// msg returns a MESSAGE with the given id.
func msg(id string) *wire.Message {
	return &wire.Message{Head: wire.Head{Tag: 1}, From: "a@alpha.example", To: "b@beta.example", ID: []byte(id), MIME: []byte("hello")}
}

// idleWorkers returns how many workers are idle.
func (s *Server) idleWorkers() int { return s.workers.Idle() }

// TestWorkersBoundPerConnection: at most MaxConcurrent records of a
// connection are handled at once, the reader stops while that many are,
// and there are never more workers than that, even when the slots turn
// over fast (a worker is idle before its slot is free).
func TestWorkersBoundPerConnection(t *testing.T) {
	const bound = 4
	release := newGate()
	var running, most, mostWorkers, handled atomic.Int64
	var r *reader
	r = newReader(t, Config{MaxConcurrent: bound}, func(ctx context.Context, in Inbound) wire.Record {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		for w, m := r.s.Stats.Workers.Load(), mostWorkers.Load(); w > m && !mostWorkers.CompareAndSwap(m, w); m = mostWorkers.Load() {
		}
		<-release.ch
		if rand.IntN(4) == 0 {
			runtime.Gosched()
		}
		handled.Add(1)
		return nil
	})
	release.openAtEnd(t)
	const total = 3000
	sent := make(chan int, 1)
	go func() {
		for i := range total {
			r.recs <- msg(fmt.Sprint(i))
		}
		sent <- total
	}()
	testutil.WaitFor(t, "the slots to fill", func() bool { return running.Load() == bound })
	time.Sleep(20 * time.Millisecond) // the reader, blocked, must dispatch no more
	if n := running.Load(); n != bound {
		t.Fatalf("%d records handled at once, bound %d", n, bound)
	}
	if n := r.s.Stats.Workers.Load(); n != bound {
		t.Fatalf("%d workers, want %d", n, bound)
	}
	release.open()
	<-sent
	testutil.WaitFor(t, "every record", func() bool { return handled.Load() == total })
	if n := most.Load(); n != bound {
		t.Errorf("at most %d records handled at once, want %d", n, bound)
	}
	if n := mostWorkers.Load(); n > bound {
		t.Errorf("%d workers at once, bound %d", n, bound)
	}
	if n := r.s.Stats.Workers.Load(); n > bound {
		t.Errorf("%d workers left, bound %d", n, bound)
	}
}

// TestWorkersReusedLastInFirstOut: a record goes to the worker that became
// idle last, so records one after another use one worker.
func TestWorkersReusedLastInFirstOut(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]string{} // record id → goroutine
	hold := map[string]*gate{} // record id → its release
	for _, id := range []string{"a", "b", "c"} {
		hold[id] = newGate()
	}
	r := newReader(t, Config{}, func(ctx context.Context, in Inbound) wire.Record {
		id := string(in.Record.(*wire.Message).ID)
		mu.Lock()
		ids[id] = testutil.Goid()
		g := hold[id]
		mu.Unlock()
		if g != nil {
			<-g.ch
		}
		return nil
	})
	for _, g := range hold {
		g.openAtEnd(t)
	}
	seen := func(id string) string {
		mu.Lock()
		defer mu.Unlock()
		return ids[id]
	}
	// Three at once: three workers.
	for _, id := range []string{"a", "b", "c"} {
		r.recs <- msg(id)
	}
	testutil.WaitFor(t, "three records being handled", func() bool { return seen("c") != "" && seen("b") != "" && seen("a") != "" })
	if n := r.s.Stats.Workers.Load(); n != 3 {
		t.Fatalf("%d workers, want 3", n)
	}
	// They become idle in the order b, c, a.
	for i, id := range []string{"b", "c", "a"} {
		hold[id].open()
		testutil.WaitFor(t, "a worker to be idle", func() bool { return r.s.idleWorkers() == i+1 })
	}
	// The next ones, one after another, go to a's worker.
	for i := range 5 {
		id := fmt.Sprint("next", i)
		r.recs <- msg(id)
		testutil.WaitFor(t, id, func() bool { return seen(id) != "" })
		if got, want := seen(id), seen("a"); got != want {
			t.Fatalf("%s handled on goroutine %s, want %s (the last idle)", id, got, want)
		}
		testutil.WaitFor(t, "the worker to be idle", func() bool { return r.s.idleWorkers() == 3 })
	}
	if n := r.s.Stats.Workers.Load(); n != 3 {
		t.Errorf("%d workers, want 3: records one after another need no new one", n)
	}
}

// burst has n records handled at once, so that n workers start.
func burst(t *testing.T, r *reader, g *gate, running *atomic.Int64, n int) {
	t.Helper()
	for i := range n {
		r.recs <- msg(fmt.Sprint("burst", i))
	}
	testutil.WaitFor(t, "the burst", func() bool { return running.Load() == int64(n) })
	g.open()
	testutil.WaitFor(t, "the burst's workers to be idle", func() bool { return r.s.idleWorkers() == n })
}

// TestWorkersExitWhenIdle: a worker that gets no record for WorkerIdle
// exits, and so does the reaper with the last one: an idle server holds no
// goroutine for its handlers. Under a trickle of records, one worker stays
// and those of an earlier burst exit.
func TestWorkersExitWhenIdle(t *testing.T) {
	const idle = 50 * time.Millisecond
	g := newGate()
	var running atomic.Int64
	r := newReader(t, Config{WorkerIdle: idle}, func(ctx context.Context, in Inbound) wire.Record {
		if strings.HasPrefix(string(in.Record.(*wire.Message).ID), "burst") {
			running.Add(1)
			<-g.ch
		}
		return nil
	})
	g.openAtEnd(t)
	burst(t, r, g, &running, 8)
	if n := r.s.Stats.Workers.Load(); n != 8 {
		t.Fatalf("%d workers after a burst of 8", n)
	}
	// A record every 3 ms, one after another: one worker is enough, and
	// the burst's others time out. (Handed out in turn, 8 workers would
	// each get one every 24 ms, and none would time out.)
	deadline := time.Now().Add(6 * idle)
	for time.Now().Before(deadline) {
		r.recs <- msg("trickle")
		time.Sleep(3 * time.Millisecond)
	}
	if n := r.s.Stats.Workers.Load(); n > 1 {
		t.Errorf("%d workers under a trickle, want 1", n)
	}
	testutil.WaitFor(t, "the workers to exit", func() bool { return r.s.Stats.Workers.Load() == 0 && workers.Goroutines() == 0 })
	// The pool starts again.
	r.recs <- msg("again")
	testutil.WaitFor(t, "a new worker to be idle", func() bool { return r.s.idleWorkers() == 1 })
	testutil.WaitFor(t, "it to exit", func() bool { return r.s.Stats.Workers.Load() == 0 && workers.Goroutines() == 0 })
}

// TestWorkersExitAtClose: idle workers do not wait for WorkerIdle when the
// server closes.
func TestWorkersExitAtClose(t *testing.T) {
	g := newGate()
	var running atomic.Int64
	r := newReader(t, Config{WorkerIdle: time.Hour}, func(ctx context.Context, in Inbound) wire.Record {
		running.Add(1)
		<-g.ch
		return nil
	})
	g.openAtEnd(t)
	burst(t, r, g, &running, 8)
	if n := workers.Goroutines(); n != 8+1 {
		t.Fatalf("%d goroutines of the pool, want 8 workers and the reaper", n)
	}
	start := time.Now()
	r.stop()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if n, g := r.s.Stats.Workers.Load(), workers.Goroutines(); n != 0 || g != 0 {
		t.Errorf("after Close: %d workers counted, %d goroutines", n, g)
	}
}

// TestOrderPerKeyUnderLoad: presence records of one key are handled one at
// a time in the order they came, with records of many keys and messages
// interleaved and handlers of random length; records of different keys are
// handled side by side.
func TestOrderPerKeyUnderLoad(t *testing.T) {
	type key struct{ kind, a string }
	var mu sync.Mutex
	last := map[key]int{}
	inKey := map[key]bool{}
	var bad []string
	var running, most atomic.Int64
	r := newReader(t, Config{MaxConcurrent: 16}, func(ctx context.Context, in Inbound) wire.Record {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		var k key
		var seq string
		switch x := in.Record.(type) {
		case *wire.Notify:
			k, seq = key{"n", x.Presentity}, x.Status
		case *wire.Subscribe:
			k, seq = key{"s", x.Watcher}, fmt.Sprint(x.Expires)
		case *wire.Unsubscribe:
			k, seq = key{"s", x.Watcher}, x.Node
		default:
			time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
			return nil
		}
		var i int
		fmt.Sscan(seq, &i)
		mu.Lock()
		if inKey[k] {
			bad = append(bad, fmt.Sprint(k, ": two at once"))
		}
		inKey[k] = true
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		mu.Lock()
		inKey[k] = false
		if i != last[k]+1 {
			bad = append(bad, fmt.Sprintf("%v: %d after %d", k, i, last[k]))
		}
		last[k] = i
		mu.Unlock()
		return nil
	})
	next := map[key]int{}
	const keys, total = 6, 3000
	for i := range total {
		j := rand.IntN(keys + 2)
		switch {
		case j < keys/2:
			k := key{"n", fmt.Sprintf("p%d@alpha.example", j)}
			next[k]++
			r.recs <- &wire.Notify{Presentity: k.a, Watchers: []string{"w@beta.example"}, Presence: wire.PresenceOnline, Status: fmt.Sprint(next[k])}
		case j < keys:
			// SUBSCRIBE and UNSUBSCRIBE of one watcher and presentity
			// share a key.
			k := key{"s", fmt.Sprintf("w%d@alpha.example", j)}
			next[k]++
			if rand.IntN(2) == 0 {
				r.recs <- &wire.Subscribe{Head: wire.Head{Tag: uint32(i + 1)}, Watcher: k.a, Presentity: "p@beta.example", Expires: uint32(next[k])}
			} else {
				r.recs <- &wire.Unsubscribe{Head: wire.Head{Tag: uint32(i + 1), Node: fmt.Sprint(next[k])}, Watcher: k.a, Presentity: "p@beta.example"}
			}
		default:
			r.recs <- msg(fmt.Sprint(i))
		}
	}
	testutil.WaitFor(t, "every presence record", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for k, n := range next {
			if last[k] != n {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("out of order: %v", bad[:min(len(bad), 10)])
	}
	if n := most.Load(); n < 2 {
		t.Errorf("at most %d records handled at once: keys must not wait for each other", n)
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if len(r.c.ordered) != 0 {
		t.Errorf("keys left waiting: %v", r.c.ordered)
	}
}

// TestCloseCancelsHandlers: Close cancels the context of the handlers
// being run, and their workers exit when they return.
func TestCloseCancelsHandlers(t *testing.T) {
	var running atomic.Int64
	r := newReader(t, Config{WorkerIdle: time.Hour}, func(ctx context.Context, in Inbound) wire.Record {
		running.Add(1)
		<-ctx.Done()
		return nil
	})
	for i := range 5 {
		r.recs <- msg(fmt.Sprint(i))
	}
	testutil.WaitFor(t, "the handlers", func() bool { return running.Load() == 5 })
	r.stop()
	if n, g := r.s.Stats.Workers.Load(), workers.Goroutines(); n != 0 || g != 0 {
		t.Errorf("after Close: %d workers counted, %d goroutines", n, g)
	}
}
