package s2s

import (
	"github.com/imxproject/imx/internal/workers"
	"github.com/imxproject/imx/wire"
)

// DefaultWorkerIdle is how long an idle handler goroutine waits for another
// record before it exits (Config.WorkerIdle): 5 s.
const DefaultWorkerIdle = workers.DefaultMaxIdle

// job is one record for a worker: handled, and if it is ordered, followed
// by the records of its key that queued up behind it.
type job struct {
	c       *sconn
	in      Inbound
	hd      wire.Head
	key     orderKey
	ordered bool
}

// newWorkers returns the Server's pool of handler goroutines, shared by
// its connections. The bound per connection (MaxConcurrent) is kept by the
// connection's slots, before a job reaches the pool, so the pool needs no
// bound of its own: it holds at most as many workers as records were
// handled at once, and an idle one exits after WorkerIdle, or at once when
// the Server shuts down. An idle server holds none. A worker keeps its
// stack, as deep as the Handler made it, where a goroutine per record would
// start small and grow (copy) its stack for every record.
//
// A worker is idle before its last record's slot is free (Parked): a record
// that takes the slot finds it, rather than starting another worker while
// this one is on its way back. So every busy worker holds a slot, and a
// connection never has more than MaxConcurrent.
//
// The workers are counted in s.wg, like the connections that hand them
// records: a Handler that starts a connection (Server.Send to a new
// domain) does so while s.wg is above zero.
func newWorkers(s *Server) *workers.Pool[job] {
	return workers.New(workers.Config[job]{
		Run:     s.runJob,
		Parked:  func(j *job) { j.c.release() },
		MaxIdle: s.cfg.WorkerIdle,
		Group:   &s.wg,
		Live:    &s.Stats.Workers,
		Deep:    true, // router, message parsing, store
	})
}

// runJob handles j's record and, if it is ordered, those of its key that
// came while it was handled, one after another in the order they came. It
// frees the slot of each record it handled but the last: the worker does,
// once it is idle (Parked).
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
