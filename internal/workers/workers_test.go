package workers

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imxproject/imx/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gate holds jobs until it is opened.
type gate struct {
	ch   chan struct{}
	open func()
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	g.open = sync.OnceFunc(func() { close(g.ch) })
	t.Cleanup(g.open)
	return g
}

// job is the job of the tests: it records the goroutine that ran it, and
// waits for its gate if it has one.
type job struct {
	id   string
	gate *gate
}

// recorder runs jobs and remembers on which goroutine each ran.
type recorder struct {
	mu   sync.Mutex
	ran  map[string]string // job id → goroutine
	busy atomic.Int64
}

func (r *recorder) run(j *job) {
	r.busy.Add(1)
	defer r.busy.Add(-1)
	r.mu.Lock()
	if r.ran == nil {
		r.ran = map[string]string{}
	}
	r.ran[j.id] = testutil.Goid()
	r.mu.Unlock()
	if j.gate != nil {
		<-j.gate.ch
	}
}

func (r *recorder) on(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ran[id]
}

// newPool returns a pool of recorder jobs, closed and waited for when the
// test ends, and checks that no worker is left then.
func newPool(t *testing.T, cfg Config[job]) (*Pool[job], *recorder) {
	t.Helper()
	r := &recorder{}
	cfg.Run = r.run
	p := New(cfg)
	t.Cleanup(func() {
		p.Close()
		p.Wait()
		if n := p.Live(); n != 0 {
			t.Errorf("%d workers after Close and Wait", n)
		}
		if cfg.Live != nil && cfg.Live.Load() != 0 {
			t.Errorf("Live counter %d after Close and Wait", cfg.Live.Load())
		}
	})
	return p, r
}

// burst runs n jobs at once, so that n workers start, and lets them end.
func burst(t *testing.T, p *Pool[job], r *recorder, n int) {
	t.Helper()
	g := newGate(t)
	for i := range n {
		p.Go(job{id: fmt.Sprint("burst", i), gate: g})
	}
	testutil.WaitFor(t, "the burst", func() bool { return r.busy.Load() == int64(n) })
	g.open()
	testutil.WaitFor(t, "the burst's workers to be idle", func() bool { return p.Idle() == n })
}

// TestReusedLastInFirstOut: a job goes to the worker that became idle
// last, so jobs one after another use one worker.
func TestReusedLastInFirstOut(t *testing.T) {
	var live atomic.Int64
	p, r := newPool(t, Config[job]{Live: &live})
	gates := map[string]*gate{"a": newGate(t), "b": newGate(t), "c": newGate(t)}
	for _, id := range []string{"a", "b", "c"} {
		p.Go(job{id: id, gate: gates[id]})
	}
	testutil.WaitFor(t, "three jobs running", func() bool { return r.busy.Load() == 3 })
	if n, m := p.Live(), live.Load(); n != 3 || m != 3 {
		t.Fatalf("Live() = %d, counter %d, want 3", n, m)
	}
	// They become idle in the order b, c, a.
	for i, id := range []string{"b", "c", "a"} {
		gates[id].open()
		testutil.WaitFor(t, "a worker to be idle", func() bool { return p.Idle() == i+1 })
	}
	for i := range 5 {
		id := fmt.Sprint("next", i)
		p.Go(job{id: id})
		testutil.WaitFor(t, id, func() bool { return r.on(id) != "" && p.Idle() == 3 })
		if got, want := r.on(id), r.on("a"); got != want {
			t.Fatalf("%s ran on goroutine %s, want %s (the last idle)", id, got, want)
		}
	}
	if n := p.Live(); n != 3 {
		t.Errorf("Live() = %d, want 3: jobs one after another need no new worker", n)
	}
}

// TestExitWhenIdle: a worker without a job for MaxIdle exits, and so does
// the reaper with the last one: an idle pool holds no goroutine. Under a
// trickle of jobs one worker stays, and those of an earlier burst exit.
func TestExitWhenIdle(t *testing.T) {
	const idle = 50 * time.Millisecond
	var live atomic.Int64
	p, r := newPool(t, Config[job]{MaxIdle: idle, Live: &live})
	burst(t, p, r, 8)
	if n := p.Live(); n != 8 {
		t.Fatalf("%d workers after a burst of 8", n)
	}
	// A job every 3 ms, one after another: one worker is enough, and the
	// burst's others time out. (Handed out in turn, 8 workers would each
	// get one every 24 ms, and none would time out.)
	for deadline := time.Now().Add(6 * idle); time.Now().Before(deadline); {
		p.Go(job{id: "trickle"})
		time.Sleep(3 * time.Millisecond)
	}
	if n := p.Live(); n > 1 {
		t.Errorf("%d workers under a trickle, want 1", n)
	}
	// Wait on an open pool returns once every worker has timed out.
	p.Wait()
	if n, m, g := p.Live(), live.Load(), Goroutines(); n != 0 || m != 0 || g != 0 {
		t.Fatalf("idle pool: Live() = %d, counter %d, %d goroutines", n, m, g)
	}
	// The pool starts again.
	p.Go(job{id: "again"})
	testutil.WaitFor(t, "a new worker to be idle", func() bool { return p.Idle() == 1 })
	testutil.WaitFor(t, "it to exit", func() bool { return p.Live() == 0 && Goroutines() == 0 })
}

// TestClose: Close makes the idle workers exit at once whatever MaxIdle,
// and a busy one after its job; a job handed over after Close runs, on a
// goroutine that exits after it.
func TestClose(t *testing.T) {
	var live atomic.Int64
	p, r := newPool(t, Config[job]{MaxIdle: time.Hour, Live: &live})
	burst(t, p, r, 8)
	busy := newGate(t)
	p.Go(job{id: "busy", gate: busy})
	testutil.WaitFor(t, "the busy job", func() bool { return r.busy.Load() == 1 })
	start := time.Now()
	p.Close()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Close took %v: it must not wait", d)
	}
	testutil.WaitFor(t, "the idle workers to exit", func() bool { return Goroutines() == 1 })
	if n, m := p.Live(), live.Load(); n != 1 || m != 1 {
		t.Errorf("after Close: Live() = %d, counter %d, want the busy one", n, m)
	}
	waited := make(chan struct{})
	go func() { p.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Wait returned while a job runs")
	case <-time.After(20 * time.Millisecond):
	}
	busy.open()
	<-waited
	if n, g := p.Live(), Goroutines(); n != 0 || g != 0 {
		t.Fatalf("after the busy job: Live() = %d, %d goroutines", n, g)
	}

	// After Close: the job runs, on a goroutine of its own that exits.
	late := newGate(t)
	p.Go(job{id: "late", gate: late})
	testutil.WaitFor(t, "the late job", func() bool { return r.busy.Load() == 1 })
	if n := p.Live(); n != 1 {
		t.Errorf("Live() = %d while the late job runs", n)
	}
	late.open()
	p.Wait()
	if n, m, g := p.Live(), live.Load(), Goroutines(); n != 0 || m != 0 || g != 0 {
		t.Errorf("after the late job: Live() = %d, counter %d, %d goroutines", n, m, g)
	}
	p.Close() // a second Close does nothing
}

// TestParked: Parked runs after the worker is idle again, so that a job
// handed over from Parked (a slot it frees, taken at once) goes to the same
// worker instead of a new one; after Close, Parked runs after the worker is
// counted out.
func TestParked(t *testing.T) {
	type step struct {
		n     int
		ids   chan string
		after chan int // Idle() and Live() seen by Parked, twice each
	}
	var p *Pool[step]
	p = New(Config[step]{
		Run: func(j *step) { j.ids <- testutil.Goid() },
		Parked: func(j *step) {
			j.after <- p.Idle()
			j.after <- p.Live()
			if j.n > 0 {
				p.Go(step{n: j.n - 1, ids: j.ids, after: j.after})
			}
		},
	})
	defer p.Wait()
	defer p.Close()
	ids, after := make(chan string, 10), make(chan int, 20)
	p.Go(step{n: 4, ids: ids, after: after})
	first := <-ids
	for i := range 5 {
		if i > 0 {
			if id := <-ids; id != first {
				t.Errorf("step %d on goroutine %s, want %s", i, id, first)
			}
		}
		if idle, live := <-after, <-after; idle != 1 || live != 1 {
			t.Errorf("step %d: Parked saw %d idle of %d workers, want the one, idle", i, idle, live)
		}
	}
	if n := p.Live(); n != 1 {
		t.Errorf("Live() = %d after a chain of jobs handed over from Parked", n)
	}
	testutil.WaitFor(t, "the worker to be idle", func() bool { return p.Idle() == 1 })
	p.Close()
	p.Go(step{ids: ids, after: after})
	<-ids
	if idle, live := <-after, <-after; idle != 0 || live != 0 {
		t.Errorf("after Close: Parked saw %d idle of %d workers, want none", idle, live)
	}
}

// TestGroup: the owner's WaitGroup counts the workers and the reaper, so
// that waiting for it after Close waits for the busy jobs too.
func TestGroup(t *testing.T) {
	var wg sync.WaitGroup
	var ran atomic.Int64
	g := newGate(t)
	p := New(Config[*gate]{Group: &wg, Run: func(j **gate) {
		<-(*j).ch
		ran.Add(1)
	}})
	wg.Add(1) // the owner's own goroutine, which hands out the jobs
	for range 3 {
		p.Go(g)
	}
	testutil.WaitFor(t, "three workers", func() bool { return p.Live() == 3 })
	p.Close()
	wg.Done()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("the group's Wait returned while jobs run")
	case <-time.After(20 * time.Millisecond):
	}
	g.open()
	<-waited
	if n := ran.Load(); n != 3 {
		t.Errorf("%d jobs ran", n)
	}
	p.Wait() // returns at once: the group's Wait saw the pool's goroutines end
	if g := Goroutines(); g != 0 {
		t.Errorf("%d goroutines after the group's Wait", g)
	}
}

// TestConcurrent hands out jobs from many goroutines while workers time
// out, and closes the pool halfway: every job runs exactly once, and the
// counts add up (run with -race).
func TestConcurrent(t *testing.T) {
	const senders, each = 8, 2000
	var live atomic.Int64
	var ran atomic.Int64
	seen := make([]atomic.Int32, senders*each)
	p := New(Config[int]{MaxIdle: time.Millisecond, Live: &live, Run: func(j *int) {
		seen[*j].Add(1)
		if *j%7 == 0 {
			runtime.Gosched()
		}
		ran.Add(1)
	}})
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				p.Go(s*each + i)
				if i == each/2 && s == 0 {
					p.Close()
				}
				if i%100 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	p.Wait()
	if n := ran.Load(); n != senders*each {
		t.Errorf("%d jobs ran, want %d", n, senders*each)
	}
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Fatalf("job %d ran %d times", i, n)
		}
	}
	if n, m, g := p.Live(), live.Load(), Goroutines(); n != 0 || m != 0 || g != 0 {
		t.Errorf("Live() = %d, counter %d, %d goroutines", n, m, g)
	}
}

// TestNoAllocs: a job handed to an idle worker costs no allocation.
func TestNoAllocs(t *testing.T) {
	type big struct {
		a, b, c string
		n       [8]int
		done    chan struct{}
	}
	done := make(chan struct{})
	p := New(Config[big]{
		Run:    func(j *big) {},
		Parked: func(j *big) { j.done <- struct{}{} },
	})
	defer p.Wait()
	defer p.Close()
	p.Go(big{done: done}) // the worker
	<-done
	a := testing.AllocsPerRun(1000, func() {
		p.Go(big{a: "a", b: "b", c: "c", done: done})
		<-done
	})
	if a != 0 {
		t.Errorf("%v allocations per job", a)
	}
}

var sink atomic.Int64

// BenchmarkJob compares a goroutine per job with the pool, for a shallow
// job and for one that uses 32 KiB of stack, with jobs of a struct type
// (no allocation) and of func() (a closure per job), 16 jobs in flight
// at once.
func BenchmarkJob(b *testing.B) {
	for _, depth := range []int{0, 64} {
		name := "shallow"
		if depth > 0 {
			name = "deep"
		}
		do := func(n int, wg *sync.WaitGroup) {
			sink.Add(int64(testutil.Deep(n)))
			wg.Done()
		}
		type job struct {
			n  int
			wg *sync.WaitGroup
		}
		b.Run(name+"/goroutine", func(b *testing.B) {
			b.ReportAllocs()
			var wg sync.WaitGroup
			for i := 0; b.Loop(); i++ {
				wg.Add(1)
				go do(depth, &wg)
				if i%16 == 15 {
					wg.Wait()
				}
			}
			wg.Wait()
		})
		b.Run(name+"/pool-struct", func(b *testing.B) {
			b.ReportAllocs()
			p := New(Config[job]{Run: func(j *job) { do(j.n, j.wg) }})
			defer p.Wait()
			defer p.Close()
			var wg sync.WaitGroup
			for i := 0; b.Loop(); i++ {
				wg.Add(1)
				p.Go(job{n: depth, wg: &wg})
				if i%16 == 15 {
					wg.Wait()
				}
			}
			wg.Wait()
		})
		b.Run(name+"/pool-func", func(b *testing.B) {
			b.ReportAllocs()
			p := New(Config[func()]{Run: func(f *func()) { (*f)() }})
			defer p.Wait()
			defer p.Close()
			var wg sync.WaitGroup
			for i := 0; b.Loop(); i++ {
				wg.Add(1)
				p.Go(func() { do(depth, &wg) }) // a closure per job
				if i%16 == 15 {
					wg.Wait()
				}
			}
			wg.Wait()
		})
	}
}

func stackInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.StackInuse
}

// TestDeepKeepsStacks: the idle workers of a deep pool keep the stacks
// their jobs grew (20 KiB used, so 32 KiB) through garbage collections;
// those of a shallow pool have theirs halved by each collection.
func TestDeepKeepsStacks(t *testing.T) {
	const workers = 16
	shrunk := map[bool]int64{}
	for _, deep := range []bool{true, false} {
		// Stacks freed by goroutines that ended before (earlier tests,
		// the other pool) go back at collections: let them go first.
		runtime.GC()
		runtime.GC()
		var started sync.WaitGroup
		started.Add(workers)
		all := make(chan struct{})
		var ran sync.WaitGroup
		p := New(Config[int]{Deep: deep, Run: func(n *int) {
			started.Done()
			<-all // every job on a worker of its own
			testutil.Deep(*n)
			ran.Done()
		}})
		ran.Add(workers)
		for range workers {
			p.Go(40) // 20 KiB of stack
		}
		started.Wait()
		close(all)
		ran.Wait()
		testutil.WaitFor(t, "the workers to park", func() bool { return p.Idle() == workers })
		time.Sleep(10 * time.Millisecond) // parked in the channel receive
		before := stackInuse()
		runtime.GC()
		runtime.GC()
		shrunk[deep] = int64(before) - int64(stackInuse())
		p.Close()
		p.Wait()
	}
	t.Logf("stack given back by two collections: shallow %d KiB, deep %d KiB", shrunk[false]>>10, shrunk[true]>>10)
	// Two collections halve a 32 KiB stack twice (24 KiB back); at least
	// once even if a collection of its own ran just before (8 KiB).
	if shrunk[false] < workers*8<<10 {
		t.Errorf("a shallow pool's idle workers gave back %d bytes of stack, want their stacks halved (at least %d)", shrunk[false], workers*8<<10)
	}
	if shrunk[true] > workers*4<<10 {
		t.Errorf("a deep pool's idle workers gave back %d bytes of stack, want them kept", shrunk[true])
	}
}
