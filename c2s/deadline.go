package c2s

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// sharedDeadline hands every SEND that starts within the same slice of
// time one context, derived from the Handler's (so Shutdown still ends
// them) with a deadline d after the slice began: a SEND gets between
// d-slice and d. A context.WithTimeout for every SEND cost 7% of a
// server's CPU under load, most of it registering the child with the
// Handler's context under that context's lock, which every SEND worker
// shares. Each slot's timer cancels it at its deadline and removes it from
// the parent; at most d/slice slots are alive.
type sharedDeadline struct {
	parent   context.Context
	d, slice time.Duration

	cur atomic.Pointer[deadlineSlot]
	mu  sync.Mutex // held to make a new slot
}

type deadlineSlot struct {
	ctx    context.Context
	cancel context.CancelFunc // its timer calls it; kept for vet's sake
	until  time.Time          // handed out until then
}

// newSharedDeadline returns contexts with deadlines d (less up to a
// 64th of d, and at most a second) from now.
func newSharedDeadline(parent context.Context, d time.Duration) *sharedDeadline {
	return &sharedDeadline{parent: parent, d: d, slice: min(d/64, time.Second)}
}

// get returns the context for a SEND starting now. It is not to be
// cancelled by the caller: other SENDs share it.
func (s *sharedDeadline) get() context.Context {
	now := time.Now()
	if c := s.cur.Load(); c != nil && now.Before(c.until) {
		return c.ctx
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cur.Load(); c != nil && now.Before(c.until) {
		return c.ctx
	}
	ctx, cancel := context.WithDeadline(s.parent, now.Add(s.d))
	s.cur.Store(&deadlineSlot{ctx: ctx, cancel: cancel, until: now.Add(s.slice)})
	return ctx
}
