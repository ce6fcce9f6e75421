package link

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/imxproject/imx/wire"
)

// ErrRequestCanceled is returned by Call.Wait after Call.Cancel.
var ErrRequestCanceled = errors.New("link: request canceled")

// Requests is the table of a node's requests that wait for a response. It
// is shared by all of the node's connections: a tag is unique for the node,
// not only per connection, so that a response arriving on any connection
// between two domains finds its request (§4.4.7, §4.4.8). Safe for
// concurrent use; the zero value is ready.
type Requests struct {
	mu      sync.Mutex
	next    uint32
	pending map[uint32]*Call
}

// Call is one request waiting for its response.
type Call struct {
	reqs *Requests
	tag  uint32
	ch   chan wire.Record // buffered 1: the response
	// Scope is the caller's note of whom the request went to. A
	// connection's Config.AcceptResponse uses it to refuse a response that
	// arrives from a peer that had no business answering.
	Scope any
}

// Tag returns the tag to put in the request's header.
func (c *Call) Tag() uint32 { return c.tag }

// Start reserves a fresh tag and registers a call for it. The caller sets
// the tag on its request, sends it, and then Waits or Cancels.
func (r *Requests) Start() *Call { return r.StartScoped(nil) }

// StartScoped is Start with the Call's Scope set before the call becomes
// visible to responses.
func (r *Requests) StartScoped(scope any) *Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = make(map[uint32]*Call)
	}
	for {
		r.next++
		if r.next == 0 {
			continue // 0 means "no response wanted"
		}
		if _, busy := r.pending[r.next]; !busy {
			break
		}
	}
	c := &Call{reqs: r, tag: r.next, ch: make(chan wire.Record, 1), Scope: scope}
	r.pending[c.tag] = c
	return c
}

// Deliver hands a response (a record with wire.FlagResponse) to the call
// waiting for its tag, and reports whether one was. The record is cloned,
// since it may come from a connection's wire.Decoder. A response without a
// waiting call (late, after a timeout, or forged) is dropped.
func (r *Requests) Deliver(rec wire.Record) bool {
	return r.DeliverIf(rec, nil)
}

// DeliverIf is Deliver, but only if accept (when not nil) approves the
// waiting call; a refused response leaves the call waiting.
func (r *Requests) DeliverIf(rec wire.Record, accept func(*Call) bool) bool {
	tag := rec.FrameHead().Tag
	r.mu.Lock()
	c, ok := r.pending[tag]
	if ok && accept != nil && !accept(c) {
		ok = false
	}
	if ok {
		delete(r.pending, tag)
	}
	r.mu.Unlock()
	if !ok {
		return false
	}
	kept, err := wire.Clone(rec)
	if err != nil {
		// A record that parsed always re-encodes; keep it as it is.
		kept = rec
	}
	c.ch <- kept
	return true
}

// Pending returns the number of calls waiting.
func (r *Requests) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Wait blocks until the response arrives, ctx ends (its deadline is the
// request's timeout), or done is closed (pass the connection's Done to fail
// fast when the connection that carried the request dies; nil to wait on).
// On any error the call is cancelled.
func (c *Call) Wait(ctx context.Context, done <-chan struct{}) (wire.Record, error) {
	return c.wait(ctx, nil, done)
}

// WaitUntil is Wait that gives up at deadline (unless it is zero), with
// context.DeadlineExceeded. A response already there is taken at once, and
// a timer is started only to wait: a context.WithDeadline for every
// acknowledgement a server waits for was 3% of its CPU under load.
func (c *Call) WaitUntil(ctx context.Context, deadline time.Time, done <-chan struct{}) (wire.Record, error) {
	select {
	case rec := <-c.ch:
		return rec, nil
	default:
	}
	if deadline.IsZero() {
		return c.wait(ctx, nil, done)
	}
	d := time.Until(deadline)
	if d <= 0 {
		c.Cancel()
		return c.late(context.DeadlineExceeded)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	return c.wait(ctx, t.C, done)
}

// wait is Wait, which also gives up when expired (nil: never) delivers.
func (c *Call) wait(ctx context.Context, expired <-chan time.Time, done <-chan struct{}) (wire.Record, error) {
	select {
	case rec := <-c.ch:
		return rec, nil
	case <-ctx.Done():
		c.Cancel()
		return c.late(ctx.Err())
	case <-done:
		c.Cancel()
		return c.late(ErrClosed)
	case <-expired:
		c.Cancel()
		return c.late(context.DeadlineExceeded)
	}
}

// late returns a response that raced with the failure, if there is one.
func (c *Call) late(err error) (wire.Record, error) {
	select {
	case rec := <-c.ch:
		return rec, nil
	default:
		return nil, err
	}
}

// Cancel forgets the call; a response arriving later is dropped.
func (c *Call) Cancel() {
	c.reqs.mu.Lock()
	if c.reqs.pending[c.tag] == c {
		delete(c.reqs.pending, c.tag)
	}
	c.reqs.mu.Unlock()
}
