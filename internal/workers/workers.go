// Package workers is a pool of long-lived goroutines that run jobs of one
// type, for servers whose jobs run deep code.
//
// A job handed to a new goroutine starts on a small stack, and a deep job
// (router, store, message parsing) grows it, copying it each time it
// doubles: in the imx servers, runtime.newstack and copystack took 10–18%
// of the CPU. A worker of a Pool keeps its stack between jobs, as deep as
// its jobs made it, so the next job finds it grown. The garbage collector
// halves the stack of a parked goroutine that uses less than a quarter of
// it, though, so a pool of deep jobs (Config.Deep) runs its workers below
// a frame of 8 KiB: a stack of up to 32 KiB survives the collections.
//
// A Pool has no bound of its own: [Pool.Go] never waits, and hands the job
// to an idle worker or starts a new one. The owner bounds its jobs (slots
// per connection, jobs in flight per session), and the pool then holds at
// most as many workers as jobs ran at once. Idle workers are reused last
// in, first out: under a steady load the same few stay busy and warm, and
// those a burst left behind reach MaxIdle and exit, where a shared queue
// would hand out jobs in turn and keep every one of them alive. A reaper
// goroutine ends them; it runs only while there are workers, so an idle
// pool holds no goroutine at all.
//
// [Pool.Close] makes the idle workers exit at once and the busy ones after
// their job; a job handed to a closed pool still runs, on a goroutine that
// exits after it. [Pool.Wait] waits for every goroutine of the pool to end.
//
// Jobs are passed by value through a channel, so a job costs no
// allocation: the pool is generic over the job type, with the function
// that runs it given once, rather than taking a closure per job. A Pool of
// func() (Run calls it) is the closure form where that is simpler.
package workers

import (
	"bytes"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxIdle is how long an idle worker waits for a job before it
// exits (Config.MaxIdle).
const DefaultMaxIdle = 5 * time.Second

// Config configures a Pool.
type Config[J any] struct {
	// Run runs one job, on a worker. Required.
	Run func(j *J)
	// Parked, if set, is called on the worker with the job that Run ran,
	// after the worker became idle again (or, the pool closed, after it
	// was counted out), and before the job is dropped. The worker may
	// already have been handed its next job, which it runs once Parked
	// returns. An owner that gives each job a slot frees it here: a job
	// that takes the slot then finds the worker idle instead of starting
	// another, so that there are never more workers than slots.
	Parked func(j *J)
	// MaxIdle is how long an idle worker waits for a job before it exits.
	// Default DefaultMaxIdle.
	MaxIdle time.Duration
	// Group, if set, counts the pool's goroutines as well (Add before
	// each starts, Done as it ends), so that an owner that waits for its
	// goroutines with Group waits for the workers too, and a job that
	// starts goroutines in Group does so while Group is above zero. The
	// owner then calls Close before Group.Wait, and calls Go only from
	// goroutines that Group counts (the usual rule of sync.WaitGroup).
	Group *sync.WaitGroup
	// Live, if set, is kept equal to Live() (an owner's statistics).
	Live *atomic.Int64
	// Deep says that the jobs run deep code. A worker then runs its jobs
	// below a frame of parkFrame bytes, which costs that much stack but
	// keeps a stack of up to 4 × parkFrame (jobs up to 3 × parkFrame
	// deep) from being halved at every garbage collection while the
	// worker is idle, and grown again, copied each time, by the next job:
	// 6–9% of the CPU of an imxd process under the e2e load
	// (docs/benchmarks.md). Leave it false for shallow jobs, such as a
	// session's writes.
	Deep bool
}

// parkFrame is the frame that the workers of a deep pool run below.
const parkFrame = 8 << 10

// Pool runs jobs of type J on long-lived worker goroutines. Its methods may
// be called from any goroutine.
type Pool[J any] struct {
	run, parked func(*J)
	deep        bool
	maxIdle     time.Duration
	group       *sync.WaitGroup
	count       *atomic.Int64

	quit chan struct{} // closed by Close, for the reaper

	mu      sync.Mutex
	idle    []*worker[J]  // oldest first, since each is appended when it becomes idle
	live    int           // workers started and not yet told to exit
	running int           // goroutines (workers, reaper) that have not returned
	done    chan struct{} // made by Wait, closed when running drops to 0
	closed  bool
	reaping bool // a reaper goroutine runs
}

// worker is one long-lived goroutine of a Pool.
type worker[J any] struct {
	jobs chan J    // capacity 1: Go never waits
	idle time.Time // since when it waits for a job; under Pool.mu
}

// New returns a Pool. It starts no goroutine until the first job.
func New[J any](cfg Config[J]) *Pool[J] {
	if cfg.Run == nil {
		panic("workers: Config.Run is nil")
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = DefaultMaxIdle
	}
	return &Pool[J]{
		run:     cfg.Run,
		parked:  cfg.Parked,
		deep:    cfg.Deep,
		maxIdle: cfg.MaxIdle,
		group:   cfg.Group,
		count:   cfg.Live,
		quit:    make(chan struct{}),
	}
}

// Go runs j on the worker that became idle last, or on a new one. It never
// waits. After Close, j runs on a goroutine of its own that exits after it.
func (p *Pool[J]) Go(j J) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.jobs <- j
		return
	}
	p.live++
	reap := !p.reaping && !p.closed
	p.reaping = p.reaping || reap
	p.running++
	if reap {
		p.running++
	}
	p.mu.Unlock()
	p.add(1)
	if reap {
		p.spawn(p.reap)
	}
	w := &worker[J]{jobs: make(chan J, 1)}
	w.jobs <- j // not captured by a closure, which would move every j to the heap
	if p.deep {
		p.spawn(func() { p.workDeep(w) })
	} else {
		p.spawn(func() { p.work(w) })
	}
}

// spawn runs f on a new goroutine of the pool; running counts it already.
func (p *Pool[J]) spawn(f func()) {
	if p.group != nil {
		p.group.Add(1)
	}
	go func() {
		defer p.exited()
		f()
	}()
}

// exited counts out a goroutine of the pool that returns.
func (p *Pool[J]) exited() {
	p.mu.Lock()
	p.running--
	if p.running == 0 && p.done != nil {
		close(p.done)
		p.done = nil
	}
	p.mu.Unlock()
	if p.group != nil {
		p.group.Done()
	}
}

// add adds n to the owner's count of live workers, if it keeps one.
func (p *Pool[J]) add(n int) {
	if p.count != nil && n != 0 {
		p.count.Add(int64(n))
	}
}

// work runs jobs until the worker is told to exit.
func (p *Pool[J]) work(w *worker[J]) {
	// One variable for every job: the job's address goes to Run, so it
	// lives on the heap, allocated once per worker rather than per job.
	var j, zero J
	for {
		var ok bool
		j, ok = <-w.jobs
		if !ok {
			return
		}
		p.run(&j)
		parked := p.park(w)
		if p.parked != nil {
			p.parked(&j)
		}
		j = zero // keep nothing alive while idle
		if !parked {
			return
		}
	}
}

// workDeep runs work below a frame of parkFrame bytes, which the runtime
// counts as stack in use whenever the worker is parked (runtime.shrinkstack
// halves a stack only when less than a quarter of it is in use). The frame
// is zeroed once, as the worker starts, not at every job.
//
//go:noinline
func (p *Pool[J]) workDeep(w *worker[J]) {
	var frame [parkFrame]byte
	keepFrame(&frame)
	p.work(w)
}

// keepFrame makes the compiler keep the frame of workDeep.
//
//go:noinline
func keepFrame(*[parkFrame]byte) {}

// park puts w with the idle workers, or reports that it must exit.
func (p *Pool[J]) park(w *worker[J]) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.live--
		p.add(-1)
		return false
	}
	w.idle = time.Now() // under mu, so that idle stays oldest first
	p.idle = append(p.idle, w)
	return true
}

// reap tells the workers idle for maxIdle to exit. It runs while there are
// workers, and ends with the last one or when the pool is closed.
func (p *Pool[J]) reap() {
	t := time.NewTicker(max(p.maxIdle/2, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.quit:
		}
		p.mu.Lock()
		if p.closed {
			p.reaping = false
			p.mu.Unlock()
			return
		}
		old := time.Now().Add(-p.maxIdle)
		n := 0
		for n < len(p.idle) && !p.idle[n].idle.After(old) {
			close(p.idle[n].jobs)
			n++
		}
		p.idle = slices.Delete(p.idle, 0, n)
		p.live -= n
		p.add(-n)
		if p.live == 0 {
			p.idle = nil // let a burst's long slice go
			p.reaping = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// Close tells the idle workers to exit now, and the busy ones to exit
// after their job. It does not wait for them (Wait does). Jobs handed to
// Go afterwards run on goroutines of their own that exit after them.
// Closing a closed Pool does nothing.
func (p *Pool[J]) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	close(p.quit)
	for _, w := range p.idle {
		close(w.jobs)
	}
	p.live -= len(p.idle)
	p.add(-len(p.idle))
	p.idle = nil
}

// Wait waits until no goroutine of the pool runs: after Close, until the
// busy workers have finished their jobs; on an open pool, until every
// worker has been idle for MaxIdle. A job handed to Go meanwhile may or may
// not be waited for.
func (p *Pool[J]) Wait() {
	p.mu.Lock()
	if p.running == 0 {
		p.mu.Unlock()
		return
	}
	if p.done == nil {
		p.done = make(chan struct{})
	}
	done := p.done
	p.mu.Unlock()
	<-done
}

// Live returns the number of workers, busy or idle, that have not been told
// to exit.
func (p *Pool[J]) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live
}

// Idle returns the number of idle workers.
func (p *Pool[J]) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Goroutines counts the goroutines of every Pool in the process (workers
// and reapers), from their stacks: what goleak would find. It is for the
// tests of the pools' owners.
func Goroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("internal/workers.(*Pool[...]).work(")) + bytes.Count(buf, []byte("internal/workers.(*Pool[...]).reap("))
}
