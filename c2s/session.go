package c2s

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/internal/link"
	"github.com/imxproject/imx/wire"
)

// Limits of the SESSION record (docs/client-api.md).
const (
	minToken, maxToken = 16, 64
	maxSessionID       = 64
)

// session is one client connection and, after LOGIN, the session of its
// user.
type session struct {
	h      *Handler
	remote string
	lc     *link.Conn   // set under h.mu once the handshake is done
	log    *slog.Logger // reader goroutine only (copied into goroutines)

	// Reader goroutine only; user and id are fixed before the session
	// is registered, and read by others after that.
	user   addr.Address
	id     string
	failed int

	inflight atomic.Int32 // SENDs waiting for the router
	unacked  atomic.Int32 // MESSAGEs waiting for the client's RESULT

	ackMu      sync.Mutex
	acks       []pendingAck
	ackRunning bool
	ended      bool // no more ack waiters
	ackWG      sync.WaitGroup
}

// pendingAck is a MESSAGE sent to the client that waits for its RESULT.
type pendingAck struct {
	call     *link.Call
	deadline time.Time
}

// serve runs the connection on fc until it ends. The reader of an idle
// connection waits inside lc.Run, called from here: serve's own frame is
// kept small (the handshake and the end are in functions of their own), so
// that the stack of an idle connection stays under a quarter of 8 KiB and
// the runtime shrinks it to 4 KiB (BenchmarkIdleSessions).
func (s *session) serve(fc *FrameConn) {
	defer s.recoverConn(fc)
	lc := s.accept(fc)
	if lc == nil {
		return
	}
	err := lc.Run(s.h.ctx, s.handle)
	s.end(fc, err)
}

// recoverConn, deferred, drops the connection after a panic.
func (s *session) recoverConn(fc *FrameConn) {
	if r := recover(); r != nil {
		s.h.log.Error("panic in client connection; dropped", "remote", s.remote, "panic", r, "stack", string(debug.Stack()))
		if s.lc != nil {
			s.lc.Abort(fmt.Errorf("c2s: panic: %v", r))
		} else {
			_ = fc.Close()
		}
	}
}

// accept runs the handshake; nil: it failed.
func (s *session) accept(fc *FrameConn) *link.Conn {
	h := s.h
	lc, err := link.Accept(h.ctx, fc, h.cfg.Link)
	if err != nil {
		if fc.Violation() != nil {
			h.Stats.FramingError.Add(1)
		}
		h.log.Debug("client handshake failed", "remote", s.remote, "err", err)
		return nil
	}
	h.mu.Lock()
	s.lc = lc
	closed := h.closed
	h.mu.Unlock()
	if closed {
		lc.Close(wire.StatusShuttingDown, "server shutting down")
	}
	s.log = lc.Logger()
	s.log.Debug("client connected")
	return lc
}

// end unregisters the session after its connection ended with err.
func (s *session) end(fc *FrameConn, err error) {
	h := s.h
	if fc.Violation() != nil {
		h.Stats.FramingError.Add(1)
	}
	if !s.user.IsZero() {
		h.unregister(s)
		s.log.Info("session ended", "err", err)
	}
	s.ackMu.Lock()
	s.ended = true
	s.ackMu.Unlock()
	s.ackWG.Wait()
}

// handle receives the records that link does not handle itself, on the
// reader goroutine.
func (s *session) handle(c *link.Conn, rec wire.Record) {
	select {
	case <-c.Closing():
		return // closing: nothing more is answered, nor acted on
	default:
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic handling a client record; dropping the connection", "type", rec.Type(), "panic", r, "stack", string(debug.Stack()))
			c.Abort(fmt.Errorf("c2s: panic: %v", r))
		}
	}()
	switch r := rec.(type) {
	case *wire.Login:
		s.login(r)
		return
	case *wire.Send:
		s.send(r)
		return
	case *wire.ContactAdd, *wire.ContactRemove, *wire.Contacts, *wire.Approve, *wire.PresenceSet, *wire.Block, *wire.GetAttrs, *wire.AttrsSet:
		if s.h.cfg.Presence != nil {
			s.presence(rec)
			return
		}
	}
	hd := rec.FrameHead()
	if hd.Tag == 0 {
		s.log.Debug("ignoring a notice", "type", rec.Type())
		return
	}
	switch {
	case rec.Type() == wire.TypeHello:
		s.reply(hd.Tag, wire.StatusBadRequest, "HELLO after the handshake")
	case s.user.IsZero():
		s.reply(hd.Tag, wire.StatusNotAuthorized, "log in first")
	default:
		s.reply(hd.Tag, wire.StatusUnsupported, rec.Type().String()+" is not served on client connections")
	}
}

// reply queues a RESULT for the request with tag. It may wait for room in
// the queue, at most the write timeout: a client that does not read its
// answers is not read either.
func (s *session) reply(tag uint32, code wire.Status, text string) {
	s.queue(&wire.Result{Head: wire.Head{Tag: tag}, Code: code, Text: text})
}

func (s *session) queue(rec wire.Record) {
	d := s.h.cfg.Link.WriteTimeout
	if d <= 0 {
		d = link.DefaultWriteTimeout
	}
	if err := s.lc.SendWithin(s.h.ctx, rec, d); err != nil && !errors.Is(err, link.ErrClosed) {
		s.log.Warn("client not reading; dropping the connection", "err", err)
		s.lc.Abort(fmt.Errorf("c2s: queue full: %w", err))
	}
}

// login handles LOGIN: with a password or a session token, once per
// connection.
func (s *session) login(r *wire.Login) {
	h := s.h
	if !s.user.IsZero() {
		s.reply(r.Tag, wire.StatusBadRequest, "already logged in")
		return
	}
	user, err := addr.Parse(r.User)
	if err != nil {
		s.reply(r.Tag, wire.StatusBadRequest, "invalid user address")
		return
	}
	if (r.Password == "") == (len(r.Session) == 0) {
		s.reply(r.Tag, wire.StatusBadRequest, "exactly one of password and session")
		return
	}
	var grant Grant
	if !h.local[user.Domain()] {
		err = fmt.Errorf("c2s: domain %s not served here: %w", user.Domain(), wire.StatusAuthFailed)
	} else {
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.LoginTimeout)
		grant, err = h.cfg.Auth.Login(ctx, Credentials{
			User:     user,
			Password: r.Password,
			Token:    append([]byte(nil), r.Session...),
			Remember: r.Remember,
			Client:   r.Client,
			Remote:   s.remote,
		})
		cancel()
	}
	if err == nil && r.Remember && (len(grant.Token) < minToken || len(grant.Token) > maxToken) {
		err = fmt.Errorf("c2s: authenticator returned a session token of %d bytes", len(grant.Token))
	}
	if err == nil && len(grant.SessionID) > maxSessionID {
		err = fmt.Errorf("c2s: authenticator returned a session id of %d bytes", len(grant.SessionID))
	}
	if err != nil {
		switch code := wire.StatusOf(err); code {
		case wire.StatusAuthFailed:
			s.failed++
			h.Stats.LoginFailures.Add(1)
			s.log.Info("login failed", "user", user.String(), "token", len(r.Session) > 0, "failures", s.failed)
			s.reply(r.Tag, wire.StatusAuthFailed, "authentication failed")
			if s.failed >= h.cfg.MaxFailedLogins {
				s.log.Warn("too many failed logins; closing", "user", user.String())
				s.lc.Close(wire.StatusAuthFailed, "too many failed logins")
			}
		case wire.StatusRateLimited:
			s.log.Info("login rate-limited", "user", user.String())
			s.reply(r.Tag, code, "too many logins; try later")
		default:
			s.log.Error("login failed: authenticator error", "user", user.String(), "err", err)
			s.reply(r.Tag, wire.StatusInternal, "login failed; try later")
		}
		return
	}
	s.user, s.id = user, grant.SessionID
	if s.id == "" {
		s.id = newSessionID()
	}
	resp := &wire.Session{Head: wire.Head{Tag: r.Tag}, User: user.String(), ID: s.id}
	if r.Remember {
		resp.Session = grant.Token
		resp.Expires = uint32(min(max(grant.TTL/time.Second, 0), math.MaxUint32))
	}
	s.log = link.WithAttrs(s.log, slog.String("user", user.String()), slog.Any("session", s.id))
	h.register(s, resp)
	h.Stats.Logins.Add(1)
	if h.cfg.OnLogin != nil {
		h.wg.Go(func() { h.cfg.OnLogin(user) })
	}
	if p := h.cfg.Presence; p != nil {
		n := h.Sessions(user)
		h.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(h.ctx), h.cfg.SendTimeout)
			defer cancel()
			p.SessionsChanged(ctx, user, n)
			p.LoggedIn(ctx, user)
		})
	}
	s.log.Info("logged in", "client", r.Client, "token", len(r.Session) > 0, "remember", r.Remember)
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// send handles SEND: it hands the message to the router on a worker of
// the Handler's pool and answers with the router's result.
func (s *session) send(r *wire.Send) {
	h := s.h
	if s.user.IsZero() {
		s.reply(r.Tag, wire.StatusNotAuthorized, "log in first")
		return
	}
	if int(s.inflight.Add(1)) > h.cfg.MaxSendsInFlight {
		s.inflight.Add(-1)
		h.Stats.SendsBusy.Add(1)
		s.reply(r.Tag, wire.StatusBusy, "too many messages waiting for their result")
		return
	}
	if !h.startSend() {
		s.inflight.Add(-1)
		s.reply(r.Tag, wire.StatusShuttingDown, "server shutting down")
		return
	}
	kept, err := wire.Clone(r)
	if err != nil { // a record that parsed always re-encodes
		h.endSend()
		s.inflight.Add(-1)
		s.reply(r.Tag, wire.StatusInternal, "")
		return
	}
	h.Stats.Sends.Add(1)
	// The session's own connection is counted in h.wg until this returns,
	// so a worker the pool starts for it is counted before h.wg can reach 0.
	h.sends.Go(sendJob{s: s, m: kept.(*wire.Send), log: s.log, tag: r.Tag})
}

// sendJob is a SEND for a worker of Handler.sends: a value, so that
// handing it over allocates nothing.
type sendJob struct {
	s   *session
	m   *wire.Send
	log *slog.Logger
	tag uint32
}

// runSend is the Run function of Handler.sends.
func runSend(j *sendJob) { j.s.route(j.tag, j.m, j.log) }

// route runs one SEND through the router and queues its result.
func (s *session) route(tag uint32, m *wire.Send, log *slog.Logger) {
	h := s.h
	defer h.endSend() // after the result is queued: Shutdown's CLOSE comes behind it
	res := func() (res *wire.Result) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in the router", "panic", r, "stack", string(debug.Stack()))
				res = &wire.Result{Code: wire.StatusInternal}
			}
		}()
		return h.cfg.Router.Send(h.sendCtx.get(), s.user, m)
	}()
	if res == nil {
		log.Error("the router returned no result", "to", m.To)
		res = &wire.Result{Code: wire.StatusInternal}
	}
	out := *res
	out.Head = wire.Head{Tag: tag}
	log.Debug("message routed", "to", m.To, "result", out.Code, "count", out.Count)
	// Counted out before the result goes: a client that keeps
	// MaxSendsInFlight SENDs in flight, sending the next as soon as a
	// result comes, never sees busy.
	s.inflight.Add(-1)
	s.queue(&out)
}

// deliver queues m to the client as a MESSAGE request, waiting at most
// Config.DeliverTimeout (and ctx) for room, and reports whether it was
// queued.
func (s *session) deliver(ctx context.Context, m *wire.Message) bool {
	h := s.h
	if int(s.unacked.Add(1)) > h.cfg.MaxUnacked {
		s.unacked.Add(-1)
		s.slow("too many messages not acknowledged")
		return false
	}
	call := s.lc.Requests().Start()
	cp := *m
	cp.Head = wire.Head{Tag: call.Tag()}
	if err := s.lc.SendWithin(ctx, &cp, h.cfg.DeliverTimeout); err != nil { // full: it waited a little
		call.Cancel()
		s.unacked.Add(-1)
		if !errors.Is(err, link.ErrClosed) {
			s.slow("send queue full")
		}
		return false
	}
	h.Stats.Delivered.Add(1)
	s.track(call)
	return true
}

// slow closes a session that does not keep up with its messages.
func (s *session) slow(why string) {
	select {
	case <-s.lc.Closing():
		return
	default:
	}
	s.h.Stats.SlowConsumers.Add(1)
	s.lc.Logger().Warn("slow client; closing its session", "user", s.user.String(), "session", s.id, "why", why)
	s.lc.Close(wire.StatusBusy, "too slow: "+why)
}

// ackWindow is how many MESSAGEs deliverAcked has waiting for their
// acknowledgements on one session: enough that a client which acknowledges
// in batches (client.Options.AckDelay) fills a batch, and a long link is
// not paid once per message.
const ackWindow = 128

// deliverAcked sends ms to the session in order, with up to ackWindow of
// them waiting for the client's RESULT at once, and returns how many, from
// the first, the client acknowledged (RESULT ok). It stops sending at the
// first that it did not.
func (s *session) deliverAcked(ctx context.Context, ms []*wire.Message) int {
	calls := make([]*link.Call, 0, min(len(ms), ackWindow))
	acked, failed := 0, false
	// await waits for the oldest MESSAGE's answer.
	await := func() {
		call := calls[0]
		calls = calls[1:]
		if failed {
			call.Cancel()
			return
		}
		rec, err := call.Wait(ctx, s.lc.Done())
		if r, ok := rec.(*wire.Result); err == nil && ok && r.Code == wire.StatusOK {
			s.h.Stats.Acked.Add(1)
			acked++
			return
		}
		s.h.Stats.Unacked.Add(1)
		failed = true
	}
	for _, m := range ms {
		if len(calls) == ackWindow {
			await()
		}
		if failed {
			break
		}
		call := s.lc.Requests().Start()
		cp := *m
		cp.Head = wire.Head{Tag: call.Tag()}
		if err := s.lc.Send(ctx, &cp); err != nil {
			call.Cancel()
			failed = true
			break
		}
		s.h.Stats.Delivered.Add(1)
		calls = append(calls, call)
	}
	for len(calls) > 0 {
		await()
	}
	return acked
}

// track waits for the client's RESULT to a MESSAGE, on one goroutine per
// session that runs only while there are answers to wait for.
func (s *session) track(call *link.Call) {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	if s.ended {
		call.Cancel()
		s.unacked.Add(-1)
		return
	}
	s.acks = append(s.acks, pendingAck{call: call, deadline: time.Now().Add(s.h.cfg.AckTimeout)})
	if !s.ackRunning {
		s.ackRunning = true
		s.ackWG.Add(1)
		go s.waitAcks()
	}
}

func (s *session) waitAcks() {
	defer s.ackWG.Done()
	h := s.h
	log := func() *slog.Logger { return s.lc.Logger().With("user", s.user.String(), "session", s.id) }
	for {
		s.ackMu.Lock()
		if len(s.acks) == 0 {
			s.acks = nil
			s.ackRunning = false
			s.ackMu.Unlock()
			return
		}
		a := s.acks[0]
		s.acks = s.acks[1:]
		s.ackMu.Unlock()

		rec, err := a.call.WaitUntil(h.ctx, a.deadline, s.lc.Done())
		s.unacked.Add(-1)
		switch r, _ := rec.(*wire.Result); {
		case err == nil && r != nil && r.Code == wire.StatusOK:
			h.Stats.Acked.Add(1)
		case err == nil:
			h.Stats.Unacked.Add(1)
			code := wire.StatusBadRequest // an answer that is not a RESULT
			if r != nil {
				code = r.Code
			}
			log().Info("client refused a message", "tag", a.call.Tag(), "code", code)
		case errors.Is(err, link.ErrClosed) || h.ctx.Err() != nil:
			h.Stats.Unacked.Add(1) // the connection or the server ended
		default:
			h.Stats.Unacked.Add(1)
			log().Warn("client did not acknowledge a message", "tag", a.call.Tag(), "err", err)
		}
	}
}

// presence handles a contact or presence record on a goroutine of its own
// (it may wait for another domain), bounded like SENDs.
func (s *session) presence(rec wire.Record) {
	h := s.h
	tag := rec.FrameHead().Tag
	if s.user.IsZero() {
		s.reply(tag, wire.StatusNotAuthorized, "log in first")
		return
	}
	if int(s.inflight.Add(1)) > h.cfg.MaxSendsInFlight {
		s.inflight.Add(-1)
		s.reply(tag, wire.StatusBusy, "too many requests waiting")
		return
	}
	kept, err := wire.Clone(rec)
	if err != nil {
		s.inflight.Add(-1)
		s.reply(tag, wire.StatusInternal, "")
		return
	}
	user, p := s.user, h.cfg.Presence
	h.wg.Go(func() {
		defer s.inflight.Add(-1)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(h.ctx), h.cfg.SendTimeout)
		defer cancel()
		parse := func(a string) (addr.Address, bool) {
			x, err := addr.Parse(a)
			if err != nil {
				s.reply(tag, wire.StatusBadRequest, "invalid address")
				return addr.Address{}, false
			}
			return x, true
		}
		switch r := kept.(type) {
		case *wire.ContactAdd:
			if c, ok := parse(r.Address); ok {
				s.reply(tag, p.AddContact(ctx, user, c, r.Alias), "")
			}
		case *wire.ContactRemove:
			if c, ok := parse(r.Address); ok {
				s.reply(tag, p.RemoveContact(ctx, user, c), "")
			}
		case *wire.Contacts:
			list, err := p.ContactList(ctx, user)
			if err != nil {
				s.log.Error("contact list failed", "err", err)
				s.reply(tag, wire.StatusInternal, "")
				return
			}
			s.queue(&wire.ContactList{Head: wire.Head{Tag: tag}, Contacts: list})
		case *wire.Approve:
			if w, ok := parse(r.Address); ok {
				s.reply(tag, p.Approve(ctx, user, w, r.Approve), "")
			}
		case *wire.PresenceSet:
			p.SetPresence(ctx, user, r.Presence, r.Status)
			s.reply(tag, wire.StatusOK, "")
		case *wire.Block:
			s.reply(tag, p.Block(ctx, user, r.Pattern, r.Block), "")
		case *wire.GetAttrs:
			switch a := p.Attributes(ctx, user, r.Target, r.Names).(type) {
			case *wire.Attrs:
				a.Tag, a.Flags = tag, wire.FlagResponse
				s.queue(a)
			case *wire.Result:
				s.reply(tag, a.Code, a.Text)
			default:
				s.reply(tag, wire.StatusInternal, "")
			}
		case *wire.AttrsSet:
			res := p.SetAttributes(ctx, user, r.Attrs, func(caps []string) { h.setCaps(s, caps) })
			s.reply(tag, res.Code, res.Text)
		}
	})
}
