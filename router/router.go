// Package router decides what happens to each instant message and owns the
// delivery guarantees: every message gets exactly one final result, nothing
// accepted is lost, nothing is delivered twice.
//
// # Routes
//
// A message from a local client (Send) to a user of a domain served here is
// delivered locally, to every session of the recipient, and never through a
// server connection (draft §2 requirement 6). A message to any other domain
// is sent through federation (Remote) at once, and its result answers the
// SEND: on this fast path nothing is written to the store, because the
// sender's client holds the message until it has the result (a client
// that lost its connection repeats the SEND with the same id, and the
// message id is derived from it, so the receiving domain drops the copy).
// When the first attempt gets no final result (the remote domain cannot be
// reached, or is busy), the message is written to the outbox before it is
// retried, with the same id, for Config.RetryFor, so that a restart of
// this server still sends it; it leaves the outbox with its final result.
// A message from another domain (Receive) is checked again (the receiving
// server trusts no peer), dropped if its (origin domain, id) was seen
// before (the first result is answered again), and delivered locally. Its
// claim is written before the delivery; the result is recorded after it,
// without holding up the answer (Wait waits for those writes).
//
// # Results
//
// delivered (with the number of sessions reached), stored (offline, kept
// because the domain enables offline messages), offline, unknown-user,
// refused, rate-limited, too-large, unreachable, no-service, bad-request.
//
// # Blocks
//
// A message to a local user who blocked its sender, by address or by the
// sender's whole domain (Config.Blocks), is not delivered, stored or
// counted: it is answered refused, with no text, the same answer for a
// block by address or by domain. Blocks act on delivery, so they apply to
// local senders and to senders of other domains alike.
//
// router declares the interfaces it needs (Local, Remote, Users, Dedup,
// Outbox, Offline); package server wires c2s, s2s and the store to them.
package router

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/discovery"
	"github.com/imxproject/imx/message"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// Local delivers to the sessions of local users (c2s implements it).
type Local interface {
	// Deliver hands m to every session of to and returns how many took
	// it; 0 means the user is offline.
	Deliver(ctx context.Context, to addr.Address, m *wire.Message) int
}

// Remote sends requests to other domains (s2s implements it).
type Remote interface {
	Request(ctx context.Context, local, remote string, rec wire.Record) (wire.Record, error)
}

// Users says whether a local user exists (store.Accounts has it).
type Users interface {
	AccountExists(ctx context.Context, a addr.Address) (bool, error)
}

// Blocks says whether a local user blocked an address, by itself or by its
// domain (store.Blocks has it).
type Blocks interface {
	IsBlocked(ctx context.Context, owner, a addr.Address) (bool, error)
}

// Dedup remembers the messages received, so that none is delivered twice
// (store.Dedup has it).
type Dedup interface {
	Claim(ctx context.Context, origin string, id []byte, now time.Time) (store.ClaimState, store.Result, error)
	SettleClaim(ctx context.Context, origin string, id []byte, r store.Result) error
	ReleaseClaim(ctx context.Context, origin string, id []byte) error
	LookupClaim(ctx context.Context, origin string, id []byte) (store.ClaimState, store.Result, error)
	RecordClaim(ctx context.Context, origin string, id []byte, now time.Time, r store.Result, done func(error))
}

// Outbox keeps the messages sent to other domains until their final result
// (store.Outbox has it).
type Outbox interface {
	PutOutbox(ctx context.Context, e store.OutboxEntry) error
	DoneOutbox(ctx context.Context, id []byte) error
	RescheduleOutbox(ctx context.Context, id []byte, next time.Time, lastErr string) error
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxEntry, error)
}

// Offline keeps messages for offline users of domains that enable it
// (store.Offline has it).
type Offline interface {
	StoreOffline(ctx context.Context, m store.OfflineMessage, max int) error
}

// Attrs gives the attributes that ride along on messages (§4.6.1). The
// presence service implements it.
type Attrs interface {
	// Outgoing returns the attributes of the local sender from that go
	// with a message to to: none unless to may see them.
	Outgoing(ctx context.Context, from, to addr.Address) []wire.Attr
	// Incoming takes the attributes that came with a message from
	// another domain to the local user to, and returns those to show to
	// to's sessions.
	Incoming(from, to addr.Address, attrs []wire.Attr) []wire.Attr
}

// Policy is what a local domain decides about messages.
type Policy struct {
	OfflineMessages bool
	OfflineLimit    int
	MaxMessageSize  int
	RateLimit       int // messages per minute per sender
	RateBurst       int
}

// Config configures a Router.
type Config struct {
	Domains map[string]Policy // the local domains and their policies
	Local   Local
	Remote  Remote
	Users   Users
	Dedup   Dedup
	Outbox  Outbox
	Offline Offline // nil: no domain keeps offline messages
	Blocks  Blocks  // nil: nobody blocks anybody
	// Attrs, if set, attaches the sender's attributes to the messages of
	// local senders and takes those that come with messages from other
	// domains; nil: none ride along.
	Attrs Attrs
	// Builder builds the MIME messages of local senders.
	Builder *message.Builder
	// RetryFor is how long a message to an unreachable domain is retried.
	RetryFor time.Duration
	// Now is the clock; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Router routes messages.
type Router struct {
	cfg     Config
	log     *slog.Logger
	started time.Time // entries of the outbox older than this are an earlier run's

	mu       sync.Mutex
	limiters map[addr.Address]*rate.Limiter

	settles  sync.WaitGroup // results of received messages being recorded
	settleMu sync.Mutex
	settling map[string]*receiving // received messages being delivered or recorded, by origin and id

	metrics *metrics
}

// maxLimiters bounds the per-sender rate limiters kept in memory; beyond
// it the table starts over (a sender gains at most one fresh burst).
const maxLimiters = 100000

// New returns a Router.
func New(cfg Config) (*Router, error) {
	switch {
	case len(cfg.Domains) == 0:
		return nil, errors.New("router: no local domains")
	case cfg.Local == nil || cfg.Remote == nil || cfg.Users == nil || cfg.Dedup == nil || cfg.Outbox == nil:
		return nil, errors.New("router: Local, Remote, Users, Dedup and Outbox are required")
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Builder == nil {
		cfg.Builder = &message.Builder{Now: cfg.Now}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Router{cfg: cfg, log: cfg.Logger.With("component", "router"), started: cfg.Now(), limiters: map[addr.Address]*rate.Limiter{}, metrics: newMetrics()}, nil
}

func result(code wire.Status, text string) *wire.Result {
	return &wire.Result{Code: code, Text: text}
}

// IsLocal reports whether domain is served here.
func (r *Router) IsLocal(domain string) bool {
	_, ok := r.cfg.Domains[domain]
	return ok
}

// allow applies the sender's rate limit (§6.4 item 4).
func (r *Router) allow(from addr.Address) bool {
	p := r.cfg.Domains[from.Domain()]
	if p.RateLimit <= 0 {
		return true
	}
	r.mu.Lock()
	l := r.limiters[from]
	if l == nil {
		if len(r.limiters) >= maxLimiters {
			clear(r.limiters)
		}
		l = rate.NewLimiter(rate.Limit(float64(p.RateLimit)/60), max(p.RateBurst, 1))
		r.limiters[from] = l
	}
	r.mu.Unlock()
	return l.AllowN(r.cfg.Now(), 1)
}

// messageID returns the id of a message: derived from the client's id when
// it gave one (so that a retried SEND is recognised as the same message),
// random otherwise. Its first 6 bytes are a time in milliseconds (the
// client's id's first 6 bytes, which the client package fills so, or this
// server's clock), so that the receiving server's dedup index grows at
// its end rather than at a random place: one page written per batch of
// claims instead of one per claim. The other 10 are a hash of the sender
// and the whole client id (or random): two senders' ids collide only by
// an 80-bit collision.
func messageID(from addr.Address, clientID []byte, now time.Time) []byte {
	id := make([]byte, 16)
	if len(clientID) > 0 {
		copy(id[:6], clientID)
		// The hash of from, a zero octet and clientID, written into a
		// buffer on the stack (clientID is at most wire.MaxMessageIDLen).
		var buf [addr.MaxLen + 1 + wire.MaxMessageIDLen]byte
		sum := sha256.Sum256(append(append(append(buf[:0], from.String()...), 0), clientID...))
		copy(id[6:], sum[:])
		return id
	}
	putMillis(id, now)
	_, _ = rand.Read(id[6:]) // crypto/rand.Read never fails
	return id
}

// putMillis writes t as 48-bit big-endian Unix milliseconds into b[:6].
func putMillis(b []byte, t time.Time) {
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
}

// deliverLocal delivers a message to a local user: to their sessions, or to
// their offline box, or nowhere.
func (r *Router) deliverLocal(ctx context.Context, m *wire.Message, to addr.Address) *wire.Result {
	ok, err := r.cfg.Users.AccountExists(ctx, to)
	if err != nil {
		r.log.Error("user lookup failed", "user", to.String(), "err", err)
		return result(wire.StatusInternal, "")
	}
	if !ok {
		return result(wire.StatusUnknownUser, "no such user")
	}
	from, _ := addr.Parse(m.From) // checked by the callers
	if r.cfg.Blocks != nil {
		blocked, err := r.cfg.Blocks.IsBlocked(ctx, to, from)
		switch {
		case err != nil:
			r.log.Error("block lookup failed", "user", to.String(), "err", err)
			return result(wire.StatusInternal, "")
		case blocked:
			r.log.Debug("refused a message from a blocked sender", "from", m.From, "to", m.To)
			return result(wire.StatusRefused, "")
		}
	}
	if n := r.cfg.Local.Deliver(ctx, to, m); n > 0 {
		return &wire.Result{Code: wire.StatusDelivered, Count: uint32(n)}
	}
	p := r.cfg.Domains[to.Domain()]
	if !p.OfflineMessages || r.cfg.Offline == nil {
		return result(wire.StatusOffline, "recipient offline")
	}
	om := store.OfflineMessage{ID: m.ID, From: from, To: to, MIME: m.MIME, Received: r.cfg.Now()}
	switch err := r.cfg.Offline.StoreOffline(ctx, om, p.OfflineLimit); {
	case errors.Is(err, store.ErrExists):
		return result(wire.StatusStored, "")
	case errors.Is(err, store.ErrFull):
		return result(wire.StatusOffline, "recipient offline and their box is full")
	case err != nil:
		r.log.Error("offline store failed", "user", to.String(), "err", err)
		return result(wire.StatusInternal, "")
	}
	return result(wire.StatusStored, "")
}

// Send routes a message from a local client and returns its final result.
// It blocks until the result is known (for a remote recipient, at most
// RetryFor plus a request timeout).
func (r *Router) Send(ctx context.Context, from addr.Address, s *wire.Send) (res *wire.Result) {
	defer func() { r.metrics.result("sent", res) }()
	to, err := addr.Parse(s.To)
	if err != nil {
		return result(wire.StatusBadRequest, "invalid recipient address")
	}
	if !r.IsLocal(from.Domain()) {
		return result(wire.StatusNotAuthorized, "sender not served here")
	}
	if !r.allow(from) {
		return result(wire.StatusRateLimited, "slow down")
	}
	id := messageID(from, s.ID, r.cfg.Now())
	if len(s.ID) > 0 && r.IsLocal(to.Domain()) {
		// A client that repeats a SEND (after a reconnect) gets the first
		// copy's result: the message is not delivered twice. (To another
		// domain, the id derived from the client's id does the same at
		// the receiving server.)
		state, prior, err := r.cfg.Dedup.Claim(ctx, from.String(), id, r.cfg.Now())
		switch {
		case err != nil:
			r.log.Error("dedup failed", "err", err)
			return result(wire.StatusInternal, "")
		case state == store.Settled:
			return &wire.Result{Code: prior.Status, Count: prior.Count, Text: "duplicate"}
		case state == store.InFlight:
			return result(wire.StatusBusy, "the first copy is still being sent")
		}
		res = r.send(ctx, from, to, s, id)
		r.settle(ctx, from.String(), id, res)
		return res
	}
	return r.send(ctx, from, to, s, id)
}

// settle records a claimed message's outcome; a temporary failure releases
// the claim so that a repeat is tried again.
func (r *Router) settle(ctx context.Context, origin string, id []byte, res *wire.Result) {
	ctx = context.WithoutCancel(ctx)
	var err error
	if res.Code.Temporary() && res.Code != wire.StatusOffline || res.Code == wire.StatusInternal {
		err = r.cfg.Dedup.ReleaseClaim(ctx, origin, id)
	} else {
		err = r.cfg.Dedup.SettleClaim(ctx, origin, id, store.Result{Status: res.Code, Count: res.Count})
	}
	if err != nil {
		r.log.Error("dedup settle failed", "origin", origin, "err", err)
	}
}

func (r *Router) send(ctx context.Context, from, to addr.Address, s *wire.Send, id []byte) *wire.Result {
	policy := r.cfg.Domains[from.Domain()]
	draft := message.Draft{From: from, To: to, ContentType: s.ContentType, Body: s.Body, ID: id}
	for _, a := range s.Attrs {
		draft.XHeaders = append(draft.XHeaders, message.Header{Name: a.Name, Value: a.Value})
	}
	mime, err := r.cfg.Builder.Build(draft, policy.MaxMessageSize)
	if err != nil {
		return result(message.Status(err), err.Error())
	}
	m := &wire.Message{From: from.String(), To: to.String(), ID: id, MIME: mime}
	if r.cfg.Attrs != nil {
		m.Attrs = r.cfg.Attrs.Outgoing(ctx, from, to)
	}
	if r.IsLocal(to.Domain()) {
		// Local traffic stays local (draft §2 item 6).
		defer since(r.metrics.local, time.Now())
		return r.deliverLocal(ctx, m, to)
	}
	defer since(r.metrics.remote, time.Now())
	now := r.cfg.Now()
	queued := false
	// Before the first retry, the message goes to the outbox.
	queue := func() error {
		e := store.OutboxEntry{ID: id, From: from, To: to, MIME: mime, Created: now, NextAttempt: r.cfg.Now()}
		if err := r.cfg.Outbox.PutOutbox(ctx, e); err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
		queued = true
		return nil
	}
	res := r.sendRemote(ctx, m, from.Domain(), to.Domain(), queue)
	if queued {
		if err := r.cfg.Outbox.DoneOutbox(context.WithoutCancel(ctx), id); err != nil {
			r.log.Error("outbox delete failed", "err", err)
		}
	}
	return res
}

// sendRemote sends m through federation, retrying while the remote domain
// cannot be reached, and returns the final result. Before the first retry
// it calls queue (if not nil); if queue fails, the sender gets internal.
func (r *Router) sendRemote(ctx context.Context, m *wire.Message, local, remote string, queue func() error) *wire.Result {
	deadline := r.cfg.Now().Add(r.cfg.RetryFor)
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		resp, err := r.cfg.Remote.Request(ctx, local, remote, m)
		if err == nil {
			res, ok := resp.(*wire.Result)
			if !ok {
				return result(wire.StatusInternal, "unexpected answer "+resp.Type().String())
			}
			if !res.Code.Temporary() || res.Code == wire.StatusOffline {
				return &wire.Result{Code: res.Code, Count: res.Count, Text: res.Text}
			}
			err = res.Code // busy, rate-limited, shutting down …: try again
		}
		if s := remoteStatus(err); s.Permanent() {
			return result(s, err.Error())
		}
		if ctx.Err() != nil || r.cfg.Now().Add(wait).After(deadline) {
			r.log.Info("giving up on a message", "to", m.To, "attempts", attempt, "err", err)
			return result(remoteStatus(err), fmt.Sprintf("gave up after %d attempts", attempt))
		}
		if attempt == 1 && queue != nil {
			if err := queue(); err != nil {
				r.log.Error("outbox write failed; the message is not retried", "to", m.To, "err", err)
				return result(wire.StatusInternal, "")
			}
		}
		r.log.Debug("retrying a message", "to", m.To, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// Receive handles a MESSAGE from another domain, whose domain s2s has
// authenticated as fromDomain, for the local domain toDomain.
func (r *Router) Receive(ctx context.Context, fromDomain, toDomain string, m *wire.Message) (res *wire.Result) {
	defer func() { r.metrics.result("received", res) }()
	from, err := addr.Parse(m.From)
	if err != nil || from.String() != m.From || from.Domain() != fromDomain {
		return result(wire.StatusBadRequest, "invalid sender address")
	}
	to, err := addr.Parse(m.To)
	if err != nil || to.String() != m.To || to.Domain() != toDomain || !r.IsLocal(toDomain) {
		return result(wire.StatusBadRequest, "invalid recipient address")
	}
	// A repeat of a message being delivered or recorded right now is
	// caught in memory; one delivered before, by the recorded result.
	// Delivery does not wait for a store write: the result is recorded
	// afterwards, in the group commit, and until then kept in memory.
	// After a crash between the delivery and that write, a repeat is
	// delivered again, as it was when the claim was written first
	// (the claim of a process that died was released at the start).
	key := settleKey(fromDomain, m.ID)
	r.settleMu.Lock()
	if r.settling == nil {
		r.settling = map[string]*receiving{}
	}
	if p, ok := r.settling[key]; ok {
		prior := *p
		r.settleMu.Unlock()
		if prior.done {
			return &wire.Result{Code: prior.res.Code, Count: prior.res.Count, Text: "duplicate"}
		}
		return result(wire.StatusBusy, "the first copy is still being delivered")
	}
	rc := &receiving{}
	r.settling[key] = rc
	r.settleMu.Unlock()
	forget := func() {
		r.settleMu.Lock()
		delete(r.settling, key)
		r.settleMu.Unlock()
	}
	state, prior, err := r.cfg.Dedup.LookupClaim(ctx, fromDomain, m.ID)
	switch {
	case err != nil:
		forget()
		r.log.Error("dedup failed", "err", err)
		return result(wire.StatusInternal, "")
	case state == store.Settled:
		forget()
		return &wire.Result{Code: prior.Status, Count: prior.Count, Text: "duplicate"}
	case state == store.InFlight:
		forget()
		return result(wire.StatusBusy, "the first copy is still being delivered")
	}
	id := append([]byte(nil), m.ID...) // m is the caller's, reused after return
	res = r.receive(ctx, from, to, m, id)
	if res.Code.Temporary() && res.Code != wire.StatusOffline || res.Code == wire.StatusInternal {
		forget() // not delivered: a repeat is delivered
		return res
	}
	settled := store.Result{Status: res.Code, Count: res.Count}
	now := r.cfg.Now()
	r.settleMu.Lock()
	rc.res, rc.done = *res, true
	r.settleMu.Unlock()
	r.settles.Add(1)
	r.cfg.Dedup.RecordClaim(context.WithoutCancel(ctx), fromDomain, id, now, settled, func(err error) {
		if err != nil {
			r.log.Error("dedup record failed", "origin", fromDomain, "err", err)
		}
		forget()
		r.settles.Done()
	})
	return res
}

// receiving is a received message being delivered (done false) or whose
// result is being recorded (done true, res).
type receiving struct {
	done bool
	res  wire.Result
}

func settleKey(origin string, id []byte) string { return origin + "\x00" + string(id) }

// Wait waits until the results of the messages received so far are
// recorded; call it before closing the store.
func (r *Router) Wait() { r.settles.Wait() }

// receive checks m and delivers it; id is a copy of m.ID, for the message
// kept.
func (r *Router) receive(ctx context.Context, from, to addr.Address, m *wire.Message, id []byte) *wire.Result {
	policy := r.cfg.Domains[to.Domain()]
	clean, err := message.Canonical(m.MIME, message.Envelope{From: from, To: to}, from.Domain(), policy.MaxMessageSize)
	if err != nil {
		r.log.Info("refused a message from another domain", "from", from.String(), "to", to.String(), "err", err)
		return result(message.Status(err), err.Error())
	}
	kept := &wire.Message{From: m.From, To: m.To, ID: id, MIME: clean}
	if r.cfg.Attrs != nil && len(m.Attrs) > 0 {
		kept.Attrs = r.cfg.Attrs.Incoming(from, to, m.Attrs) // copies what it keeps
	}
	return r.deliverLocal(ctx, kept, to)
}

// Resend sends the messages left in the outbox by an earlier run (a crash
// or a restart), so that nothing accepted is lost. Their senders' clients
// are gone; the results are logged.
func (r *Router) Resend(ctx context.Context) error {
	pending, err := r.cfg.Outbox.DueOutbox(ctx, r.started, 0)
	if err != nil {
		return fmt.Errorf("router: outbox: %w", err)
	}
	for _, p := range pending {
		if !p.Created.Before(r.started) {
			continue // this run's own messages have senders waiting for them
		}
		m := &wire.Message{From: p.From.String(), To: p.To.String(), ID: p.ID, MIME: p.MIME}
		res := r.sendRemote(ctx, m, p.From.Domain(), p.To.Domain(), nil)
		r.log.Info("re-sent a message left in the outbox", "from", m.From, "to", m.To, "result", res.Code.String())
		if err := r.cfg.Outbox.DoneOutbox(ctx, p.ID); err != nil {
			return fmt.Errorf("router: outbox: %w", err)
		}
	}
	return nil
}

// remoteStatus is the result for a failure to get an answer from another
// domain.
func remoteStatus(err error) wire.Status {
	var s wire.Status
	switch {
	case errors.Is(err, discovery.ErrNoService):
		return wire.StatusNoService
	case errors.As(err, &s) && !s.Success():
		return s
	}
	return wire.StatusUnreachable
}
