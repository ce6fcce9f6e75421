package s2s

import (
	"slices"
	"sync"
	"time"

	"github.com/imxproject/imx/wire"
)

// DefaultWorkerIdle is how long an idle handler goroutine waits for another
// record before it exits (Config.WorkerIdle).
const DefaultWorkerIdle = 5 * time.Second

// job is one record for a worker: handled, and if it is ordered, followed
// by the records of its key that queued up behind it.
type job struct {
	c       *sconn
	in      Inbound
	hd      wire.Head
	key     orderKey
	ordered bool
}

// worker is a long-lived handler goroutine. Its stack stays as deep as the
// Handler made it, where a goroutine per record would start small and grow
// (copy) its stack for every record.
type worker struct {
	jobs chan job  // capacity 1: the dispatcher never waits
	idle time.Time // since when it waits for a job; under workers.mu
}

// workers is the Server's pool of handler goroutines, shared by its
// connections. The bound per connection (MaxConcurrent) is kept by the
// connection's slots, before a job reaches the pool, so the pool needs no
// bound of its own: it holds at most as many workers as records were
// handled at once, and an idle one exits after maxIdle, or at once when the
// Server shuts down. An idle server holds none.
//
// Idle workers are reused last in, first out: under a steady load the same
// few stay busy and warm, and those a burst left behind reach maxIdle and
// exit, where a shared queue would hand out jobs in turn and keep every
// one of them alive.
type workers struct {
	srv     *Server
	maxIdle time.Duration

	quit chan struct{} // closed by close, for the reaper

	mu      sync.Mutex
	idle    []*worker // oldest first, since each is appended when it becomes idle
	live    int       // workers started and not yet told to exit
	closed  bool
	reaping bool // a reaper goroutine runs
}

// start hands j to an idle worker, or starts a new one. It never waits.
func (p *workers) start(j job) {
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
	p.srv.Stats.Workers.Add(1)
	reap := !p.reaping && !p.closed
	p.reaping = p.reaping || reap
	p.mu.Unlock()
	// The caller is a connection's reader, itself counted in srv.wg, so
	// these Adds cannot race with a Wait that has seen zero.
	if reap {
		p.srv.wg.Go(p.reap)
	}
	w := &worker{jobs: make(chan job, 1)}
	w.jobs <- j // not captured by the closure, which would move every j to the heap
	p.srv.wg.Go(func() { p.work(w) })
}

// work runs jobs until the worker is told to exit.
func (p *workers) work(w *worker) {
	for {
		j, ok := <-w.jobs
		if !ok {
			return
		}
		p.srv.runJob(&j)
		c := j.c
		j = job{} // keep nothing alive while idle
		// The worker is idle before its last record's slot is free: a
		// record that takes the slot finds it, rather than starting
		// another worker while this one is on its way back. So every
		// busy worker holds a slot, and a connection never has more
		// than MaxConcurrent.
		parked := p.park(w)
		c.release()
		if !parked {
			return
		}
	}
}

// park puts w with the idle workers, or reports that it must exit.
func (p *workers) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.live--
		p.srv.Stats.Workers.Add(-1)
		return false
	}
	w.idle = time.Now() // under mu, so that idle stays oldest first
	p.idle = append(p.idle, w)
	return true
}

// reap tells the workers idle for maxIdle to exit. It runs while there are
// workers, and ends with the last one or when the pool is closed.
func (p *workers) reap() {
	every := max(p.maxIdle/2, time.Millisecond)
	t := time.NewTicker(every)
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
		p.srv.Stats.Workers.Add(int64(-n))
		if p.live == 0 {
			p.idle = nil // let a burst's long slice go
			p.reaping = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// close tells the idle workers to exit, and the busy ones to exit after
// their job. A record dispatched afterwards (a connection still reading
// while it closes) gets a worker of its own that exits after it.
func (p *workers) close() {
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
	p.srv.Stats.Workers.Add(int64(-len(p.idle)))
	p.idle = nil
}

// runJob handles j's record and, if it is ordered, those of its key that
// came while it was handled, one after another in the order they came. It
// frees the slot of each record it handled but the last: the worker does.
func (s *Server) runJob(j *job) {
	c := j.c
	s.handleOne(c, j.in, j.hd)
	if !j.ordered {
		return
	}
	for {
		c.mu.Lock()
		q := c.ordered[j.key]
		if len(q) == 0 {
			delete(c.ordered, j.key)
			c.mu.Unlock()
			return
		}
		next := q[0]
		q[0] = queued{}
		c.ordered[j.key] = q[1:]
		c.mu.Unlock()
		c.release()
		s.handleOne(c, next.in, next.hd)
	}
}
