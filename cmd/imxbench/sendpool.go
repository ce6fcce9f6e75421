package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/c2s"
)

// sendLoop is a sending session's share of e2e's closed loop and paced
// phase. The frames and xmpp drivers' sessions embed it.
type sendLoop struct {
	slots    chan struct{} // a token per paced message waiting for its result
	loopWant atomic.Int32  // closed-loop messages to keep in flight
	loopOut  atomic.Int32  // closed-loop messages in flight
}

func newSendLoop() sendLoop {
	return sendLoop{slots: make(chan struct{}, c2s.DefaultMaxSendsInFlight)}
}

// loopSession is a sending session of a driver.
type loopSession interface {
	comparable
	// send queues one message; false if it could not (counted as
	// failed).
	send(phase int, sched time.Time, loop bool) bool
	state() *sendLoop
	// ended is closed when the session has ended.
	ended() <-chan struct{}
}

// sendPool runs e2e's closed loop and paced phase over a driver's
// sending sessions, each with at most c2s.DefaultMaxSendsInFlight
// messages waiting for their results, as imxd allows.
type sendPool[S loopSession] struct {
	s       *e2eState
	ctx     context.Context
	senders []S
	next    atomic.Uint64 // round robin over the senders
	sem     chan struct{} // a token per paced message waiting for its result
}

func newSendPool[S loopSession](ctx context.Context, s *e2eState, n int) sendPool[S] {
	return sendPool[S]{s: s, ctx: ctx, senders: make([]S, n), sem: make(chan struct{}, n*c2s.DefaultMaxSendsInFlight)}
}

func (d *sendPool[S]) grow(n int) {
	for i, x := range d.senders {
		// Sender i has the messages j < n with j mod senders = i.
		want := int32((n - i + len(d.senders) - 1) / len(d.senders))
		l := x.state()
		for l.loopWant.Load() < want {
			l.loopWant.Add(1)
			l.loopOut.Add(1)
			if !x.send(int(d.s.phase.Load()), time.Now(), true) {
				l.loopOut.Add(-1)
			}
		}
	}
}

func (d *sendPool[S]) stopLoop() {
	for _, x := range d.senders {
		x.state().loopWant.Store(0)
	}
	for _, x := range d.senders {
		l := x.state()
		for l.loopOut.Load() > 0 {
			select {
			case <-x.ended():
				l.loopOut.Store(0)
			case <-d.ctx.Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
	}
}

// answered is a sender's side of the result of one of x's messages (the
// closed loop's, if loop): it counts it and, in the closed loop, sends the
// next message at once, unless the loop is shrinking (stopLoop).
func (d *sendPool[S]) answered(x S, loop bool) {
	l := x.state()
	if !loop {
		<-l.slots
		<-d.sem
		return
	}
	if l.loopOut.Load() <= l.loopWant.Load() && x.send(int(d.s.phase.Load()), time.Now(), true) {
		return
	}
	l.loopOut.Add(-1)
}

// pace sends each job on the next sender with room: at most inFlight
// messages in all, and the sessions' own limit each, wait for their
// results.
func (d *sendPool[S]) pace(jobs <-chan time.Time, inFlight int) {
	// The tokens beyond inFlight are taken for the phase.
	for range cap(d.sem) - min(inFlight, cap(d.sem)) {
		d.sem <- struct{}{}
	}
	for sched := range jobs {
		select {
		case d.sem <- struct{}{}:
		case <-d.ctx.Done():
			return
		}
		x, ok := d.pick()
		if !ok {
			return
		}
		if !x.send(phasePaced, sched, false) {
			<-x.state().slots
			<-d.sem
		}
	}
	// Every result has come when every token is back.
	for range min(inFlight, cap(d.sem)) {
		select {
		case d.sem <- struct{}{}:
		case <-d.ctx.Done():
			return
		}
	}
}

// pick takes a slot on the next sender in turn that has one, or waits for
// one on the sender whose turn it is.
func (d *sendPool[S]) pick() (S, bool) {
	n := uint64(len(d.senders))
	first := d.next.Add(1)
	for k := range n {
		x := d.senders[(first+k)%n]
		select {
		case x.state().slots <- struct{}{}:
			return x, true
		default:
		}
	}
	x := d.senders[first%n]
	select {
	case x.state().slots <- struct{}{}:
		return x, true
	case <-d.ctx.Done():
		var none S
		return none, false
	}
}
