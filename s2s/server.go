package s2s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/dialback"
	"github.com/imxproject/imx/discovery"
	"github.com/imxproject/imx/internal/link"
	"github.com/imxproject/imx/internal/workers"
	"github.com/imxproject/imx/wire"
)

// Errors.
var (
	// ErrServerClosed is returned by Serve and Request after Shutdown.
	ErrServerClosed = errors.New("s2s: server closed")
	// ErrUnreachable: no server of the remote domain could be reached
	// and authenticated; it wraps the last failure.
	ErrUnreachable = errors.New("s2s: remote domain unreachable")
	// ErrNotLocal: the local side of a pair is not a domain served here.
	ErrNotLocal = errors.New("s2s: domain not served here")
	// ErrAuth: dial-back for a pair failed.
	ErrAuth = errors.New("s2s: dial-back failed")
)

// Defaults of Config.
const (
	DefaultMaxConnsPerDomain   = 2
	DefaultMaxInboundPerDomain = 8
	DefaultMaxInbound          = 10000
	DefaultIdleTimeout         = 10 * time.Minute
	DefaultDialTimeout         = 5 * time.Second
	DefaultRequestTimeout      = 30 * time.Second
	DefaultAuthTimeout         = 10 * time.Second
	DefaultMinBackoff          = time.Second
	DefaultMaxBackoff          = 5 * time.Minute
	DefaultMaxViolations       = 10
	DefaultMaxConcurrent       = 256
	// MaxRedirects is how many REDIRECTs in a row are followed.
	MaxRedirects = 3
	// requestRetries is how many times Request sends again when the
	// connection it used dies before the response.
	requestRetries = 2
)

// Config configures a Server. Zero values give the documented defaults.
type Config struct {
	// Domains are the local domains, normalised (addr.ParseDomain).
	Domains []string
	// Node names this node within its domains, for multi-node domains
	// (§4.4.8); empty for a single node.
	Node string
	// Resolver finds the servers of remote domains.
	Resolver discovery.Lookuper
	// Key is the dial-back key (dialback.NewKey, at least 32 bytes).
	Key []byte
	// MaxConnsPerDomain bounds the outbound connections to one remote
	// domain (§4.3.1).
	MaxConnsPerDomain int
	// MaxInboundPerDomain bounds the inbound connections that claim one
	// remote domain (§4.3.1).
	MaxInboundPerDomain int
	// MaxInbound bounds all inbound connections.
	MaxInbound int
	// IdleTimeout closes an inbound connection without records for this
	// long (the domain attribute idle-timeout). Negative disables.
	IdleTimeout time.Duration
	// DialTimeout bounds one TCP connect and handshake.
	DialTimeout time.Duration
	// RequestTimeout bounds Request when its context has no deadline.
	RequestTimeout time.Duration
	// AuthTimeout bounds one dial-back.
	AuthTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before a remote domain that
	// failed is tried again; it doubles with each failure.
	MinBackoff, MaxBackoff time.Duration
	// MaxViolations is how many refused records a connection may send
	// before it is closed.
	MaxViolations int
	// RedirectAllow lists hosts that a REDIRECT may send us to besides
	// those of the remote domain's IMX record.
	RedirectAllow []string
	// Link is the base configuration of every connection (software,
	// capabilities, frame and queue limits, timeouts). Its Requests,
	// AcceptResponse, IdleTimeout and Logger are set by the Server.
	Link link.Config
	// Dial opens TCP connections; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Handler receives the authorized records; nil answers every request
	// with unsupported.
	Handler Handler
	// Inline runs the Handler on the connection's reader goroutine, one
	// record at a time in the order they came, without the copy and the
	// hand-off to a worker of the default. It suits a Handler that never
	// blocks (one that counts, or queues the record elsewhere): a Handler
	// that waits (for a store, a client) would hold up every record behind
	// it.
	Inline bool
	// MaxConcurrent bounds the records of one connection that are being
	// handled or waiting for the one before them of their key
	// (asynchronous tagged requests, §4.4.8); when that many are, the
	// connection is not read until one ends. Default DefaultMaxConcurrent.
	MaxConcurrent int
	// WorkerIdle is how long a handler goroutine (a worker, shared by the
	// connections) waits for another record before it exits. Workers
	// are kept so that their stacks, grown by a deep Handler, serve the
	// next records; an idle server holds none. Default DefaultWorkerIdle.
	WorkerIdle time.Duration
	// Logger receives log lines; nil discards them.
	Logger *slog.Logger
}

// Handler handles the records that arrive from remote domains after
// authorization.
type Handler interface {
	// HandleS2S is called for each authorized request or notice on a
	// handler goroutine of the Server's (up to Config.MaxConcurrent at
	// once per connection), so that one slow record does not hold up the
	// others. MESSAGE and GET-ATTRIBUTES may be handled in any order.
	// SUBSCRIBE, UNSUBSCRIBE and NOTIFY are handled in the order they
	// came among those of the same key (a NOTIFY's presentity and
	// watchers' domain; a subscription's watcher and presentity), because
	// presence is state and a later change must not be overtaken by an
	// earlier one.
	// HandleS2S returns the response for a request (its tag is set by the
	// Server), or nil, in which case a request's response must come later
	// through Inbound.Reply. in.Record is valid only during the call;
	// wire.Clone it to keep it.
	HandleS2S(ctx context.Context, in Inbound) wire.Record
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, in Inbound) wire.Record

// HandleS2S calls f.
func (f HandlerFunc) HandleS2S(ctx context.Context, in Inbound) wire.Record { return f(ctx, in) }

// Inbound is one authorized record from a remote domain.
type Inbound struct {
	// From is the authenticated remote domain that sent the record; To is
	// the local domain it is for.
	From, To string
	Record   wire.Record
	tag      uint32
	node     string
	conn     *sconn
}

// Reply sends rec as the response to the request, later than HandleS2S
// returned. It may be called once, from any goroutine.
func (in Inbound) Reply(ctx context.Context, rec wire.Record) error {
	return in.conn.respond(ctx, in.tag, in.node, rec)
}

// Stats are counters of a Server, for metrics and tests.
type Stats struct {
	InboundConns, OutboundConns atomic.Int64  // open now
	AuthOK, AuthFailed          atomic.Uint64 // dial-backs as the receiving server
	Refused                     atomic.Uint64 // records refused by authorization
	Redirects                   atomic.Uint64 // REDIRECTs followed
	Workers                     atomic.Int64  // handler goroutines, busy or idle
}

// Server is the federation side of an imx node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	local    map[string]bool
	issuer   *dialback.Issuer
	verifier *dialback.Verifier
	reqs     *link.Requests
	dial     func(ctx context.Context, network, address string) (net.Conn, error)
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup     // connections and their helpers, workers included
	workers  *workers.Pool[job] // the goroutines that run the Handler

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	peers     map[string]*peer // by remote domain
	byID      map[uint64]*sconn
	inbound   int
	claimed   map[string]int // inbound connections per claimed remote domain

	Stats   Stats
	metrics *metrics
}

// peer is the state kept for one remote domain.
type peer struct {
	domain   string
	conns    []*sconn      // connections authenticated for some pair with this domain
	dialing  chan struct{} // closed when the dial in progress ends
	failures int
	retryAt  time.Time
	lastErr  error
}

// New returns a Server. It does not listen: call Serve.
func New(cfg Config) (*Server, error) {
	if len(cfg.Domains) == 0 {
		return nil, errors.New("s2s: no local domains")
	}
	if cfg.Resolver == nil {
		return nil, errors.New("s2s: no resolver")
	}
	local := map[string]bool{}
	for _, d := range cfg.Domains {
		n, err := addr.ParseDomain(d)
		if err != nil || n != d {
			return nil, fmt.Errorf("s2s: local domain %q is not a normalised domain (%v)", d, err)
		}
		local[d] = true
	}
	issuer, err := dialback.NewIssuer(cfg.Key, dialback.IssuerConfig{})
	if err != nil {
		return nil, fmt.Errorf("s2s: %w", err)
	}
	verifier, err := dialback.NewVerifier(dialback.VerifierConfig{})
	if err != nil {
		return nil, fmt.Errorf("s2s: %w", err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.DialTimeout, DefaultDialTimeout)
	def(&cfg.RequestTimeout, DefaultRequestTimeout)
	def(&cfg.AuthTimeout, DefaultAuthTimeout)
	def(&cfg.MinBackoff, DefaultMinBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.WorkerIdle, DefaultWorkerIdle)
	if cfg.MaxConnsPerDomain <= 0 {
		cfg.MaxConnsPerDomain = DefaultMaxConnsPerDomain
	}
	if cfg.MaxInboundPerDomain <= 0 {
		cfg.MaxInboundPerDomain = DefaultMaxInboundPerDomain
	}
	if cfg.MaxInbound <= 0 {
		cfg.MaxInbound = DefaultMaxInbound
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxViolations <= 0 {
		cfg.MaxViolations = DefaultMaxViolations
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !slices.Contains(cfg.Link.Capabilities, "dialback") {
		cfg.Link.Capabilities = append(slices.Clone(cfg.Link.Capabilities), "dialback")
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "s2s"),
		local:     local,
		issuer:    issuer,
		verifier:  verifier,
		reqs:      new(link.Requests),
		dial:      cfg.Dial,
		listeners: map[net.Listener]struct{}{},
		peers:     map[string]*peer{},
		byID:      map[uint64]*sconn{},
		claimed:   map[string]int{},
	}
	if s.dial == nil {
		d := &net.Dialer{}
		s.dial = d.DialContext
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.workers = newWorkers(s)
	s.metrics = newMetrics(s)
	return s, nil
}

// IsLocal reports whether the domain is served here.
func (s *Server) IsLocal(domain string) bool { return s.local[domain] }

func (s *Server) linkConfig(inbound bool) link.Config {
	lc := s.cfg.Link
	if lc.ReadBuffer == 0 {
		lc.ReadBuffer = 64 << 10 // server connections are few and busy
	}
	lc.Requests = s.reqs
	lc.AcceptResponse = s.acceptResponse
	lc.IdleTimeout = 0
	if inbound && s.cfg.IdleTimeout > 0 {
		lc.IdleTimeout = s.cfg.IdleTimeout
	}
	lc.Logger = s.log
	return lc
}

// Serve accepts server connections on ln until Shutdown. It always returns
// a non-nil error: ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	s.log.Info("listening for servers", "addr", ln.Addr().String(), "domains", s.cfg.Domains)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || s.ctx.Err() != nil {
				return ErrServerClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.ctx.Done():
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		backoff = 0
		s.mu.Lock()
		full := s.inbound >= s.cfg.MaxInbound
		if !full {
			s.inbound++
		}
		s.mu.Unlock()
		if full {
			s.log.Warn("too many inbound connections; refusing", "remote", nc.RemoteAddr().String(), "max", s.cfg.MaxInbound)
			_ = nc.Close()
			continue
		}
		s.wg.Go(func() { s.serveInbound(nc) })
	}
}

func (s *Server) serveInbound(nc net.Conn) {
	defer func() {
		s.mu.Lock()
		s.inbound--
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Link.HandshakeTimeout+time.Second)
	lc, err := link.Accept(ctx, nc, s.linkConfig(true))
	cancel()
	if err != nil {
		s.log.Info("inbound handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	c := s.newConn(lc, false, "", "", netip.AddrPort{}, nil)
	s.Stats.InboundConns.Add(1)
	defer s.Stats.InboundConns.Add(-1)
	s.runConn(c)
}

// runConn runs c until it ends and then forgets it.
func (s *Server) runConn(c *sconn) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in connection; dropped", "conn", c.ID(), "panic", r)
			c.Abort(fmt.Errorf("panic: %v", r))
		}
		s.forget(c)
	}()
	_ = c.Run(s.ctx, c.handle)
}

// forget removes an ended connection from every table.
func (s *Server) forget(c *sconn) {
	s.verifier.Cancel(c.connKey())
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, c.ID())
	c.mu.Lock()
	claimed := slices.Collect(maps.Keys(c.claimed))
	remotes := map[string]bool{}
	for _, p := range c.pairs() {
		remotes[p.remote] = true
	}
	c.mu.Unlock()
	for _, d := range claimed {
		if s.claimed[d]--; s.claimed[d] <= 0 {
			delete(s.claimed, d)
		}
	}
	if c.remote != "" {
		remotes[c.remote] = true
	}
	for d := range remotes {
		if p := s.peers[d]; p != nil {
			p.conns = slices.DeleteFunc(p.conns, func(x *sconn) bool { return x == c })
		}
	}
}

// Shutdown stops accepting, lets the records being handled send their
// responses, closes every connection with CLOSE shutting-down, and waits
// for them to end or ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	conns := make([]*sconn, 0, len(s.byID))
	for _, c := range s.byID {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// The records being handled get their responses before the CLOSE.
	handled := make(chan struct{})
	go func() {
		for _, c := range conns {
			c.handlers.Wait()
		}
		close(handled)
	}()
	select {
	case <-handled:
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.Close(wire.StatusShuttingDown, "server shutting down")
	}
	// The idle workers exit now, the busy ones after their record.
	s.workers.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel() // aborts what is left
		<-done
		return ctx.Err()
	}
}

// Close ends every connection at once.
func (s *Server) Close() error {
	s.cancel()
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for _, c := range s.byID {
		c.Abort(ErrServerClosed)
	}
	s.mu.Unlock()
	s.workers.Close()
	s.wg.Wait()
	return nil
}

// Request sends rec, a request from the local domain local to the remote
// domain remote, over an authenticated connection (made on demand), and
// returns the response: RESULT, ATTRIBUTES or PONG. The tag is set by
// Request. If the connection dies before the response, rec is sent again
// on another connection.
func (s *Server) Request(ctx context.Context, local, remote string, rec wire.Record) (wire.Record, error) {
	if !s.local[local] {
		return nil, fmt.Errorf("%w: %s", ErrNotLocal, local)
	}
	defer s.metrics.request(rec.Type(), time.Now())
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
	}
	var lastErr error
	for range requestRetries + 1 {
		c, err := s.connFor(ctx, local, remote)
		if err != nil {
			return nil, err
		}
		call := s.reqs.StartScoped(pairScope{local: local, remote: remote})
		setHead(rec, call.Tag(), s.cfg.Node)
		if err := c.Send(ctx, rec); err != nil {
			call.Cancel()
			if errors.Is(err, link.ErrClosed) {
				lastErr = err
				continue
			}
			return nil, err
		}
		resp, err := call.Wait(ctx, c.Done())
		if errors.Is(err, link.ErrClosed) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("s2s: %s to %s: %w", rec.Type(), remote, err)
		}
		return resp, nil
	}
	return nil, fmt.Errorf("%w: %s: connections kept closing: %w", ErrUnreachable, remote, lastErr)
}

// Send sends rec, a notice (NOTIFY with tag 0, …) from local to remote,
// without waiting for a response.
func (s *Server) Send(ctx context.Context, local, remote string, rec wire.Record) error {
	if !s.local[local] {
		return fmt.Errorf("%w: %s", ErrNotLocal, local)
	}
	c, err := s.connFor(ctx, local, remote)
	if err != nil {
		return err
	}
	return c.Send(ctx, rec)
}

// setHead sets the tag and node of a request record.
func setHead(rec wire.Record, tag uint32, node string) {
	switch r := rec.(type) {
	case *wire.Message:
		r.Tag, r.Node = tag, node
	case *wire.Subscribe:
		r.Tag, r.Node = tag, node
	case *wire.Unsubscribe:
		r.Tag, r.Node = tag, node
	case *wire.Notify:
		r.Tag, r.Node = tag, node
	case *wire.GetAttrs:
		r.Tag, r.Node = tag, node
	case *wire.Ping:
		r.Tag, r.Node = tag, node
	}
}

// pairScope is the Scope of a request's Call: the pair it was sent for.
type pairScope struct{ local, remote string }

// connScope is the Scope of a dial-back request's Call: the connection it
// was sent on, which alone may answer it.
type connScope struct{ c *link.Conn }

// acceptResponse admits a response only from a connection authenticated for
// the pair its request was sent for (or, for dial-back, the connection the
// request went out on).
func (s *Server) acceptResponse(lc *link.Conn, call *link.Call) bool {
	switch sc := call.Scope.(type) {
	case pairScope:
		s.mu.Lock()
		c := s.byID[lc.ID()]
		s.mu.Unlock()
		if c != nil && c.isAuthed(sc.local, sc.remote) {
			return true
		}
		s.Stats.Refused.Add(1)
		s.metrics.refuse(wire.StatusNotAuthorized)
		lc.Logger().Warn("response from a connection not authenticated for its request's pair; dropped", "local", sc.local, "remote", sc.remote)
		return false
	case connScope:
		return sc.c == lc
	}
	return true // keepalive PING: any PONG will do
}

// connFor returns a connection authenticated for (local, remote), making and
// authenticating one if needed.
func (s *Server) connFor(ctx context.Context, local, remote string) (*sconn, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrServerClosed
		}
		p := s.peer(remote)
		if c := p.best(local); c != nil {
			s.mu.Unlock()
			return c, nil
		}
		// An outbound connection to the remote domain that is not yet
		// authenticated for this local domain: authenticate the pair on
		// it (§4.3: once per domain pair).
		if c := p.outbound(); c != nil {
			s.mu.Unlock()
			if err := s.authenticate(ctx, c, local, remote); err != nil {
				return nil, err
			}
			continue
		}
		if p.dialing != nil {
			ch := p.dialing
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if now := time.Now(); now.Before(p.retryAt) {
			err := p.lastErr
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: %s (next try in %v): %w", ErrUnreachable, remote, p.retryAt.Sub(now).Round(time.Millisecond), err)
		}
		p.dialing = make(chan struct{})
		s.mu.Unlock()

		c, err := s.dialDomain(ctx, remote, nil)
		if err == nil {
			err = s.authenticate(ctx, c, local, remote)
			if err != nil {
				c.Close(wire.StatusAuthFailed, "dial-back failed")
			}
		}
		s.mu.Lock()
		close(p.dialing)
		p.dialing = nil
		if err != nil && ctx.Err() == nil {
			p.failures++
			delay := s.cfg.MinBackoff << min(p.failures-1, 20)
			p.retryAt = time.Now().Add(min(delay, s.cfg.MaxBackoff))
			p.lastErr = err
			s.log.Warn("remote domain failed", "domain", remote, "err", err, "failures", p.failures, "retry_in", min(delay, s.cfg.MaxBackoff))
		} else if err == nil {
			p.failures, p.retryAt, p.lastErr = 0, time.Time{}, nil
		}
		s.mu.Unlock()
		if err != nil {
			if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrAuth) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, remote, err)
		}
		return c, nil
	}
}

// peer returns the state of a remote domain; s.mu is held.
func (s *Server) peer(domain string) *peer {
	p := s.peers[domain]
	if p == nil {
		p = &peer{domain: domain}
		s.peers[domain] = p
	}
	return p
}

// best returns the least loaded open connection authenticated for (local,
// p.domain); s.mu is held.
func (p *peer) best(local string) *sconn {
	var best *sconn
	for _, c := range p.conns {
		if c.usable() && c.isAuthed(local, p.domain) && (best == nil || c.QueueLen() < best.QueueLen()) {
			best = c
		}
	}
	return best
}

// outbound returns an open outbound connection to p.domain; s.mu is held.
func (p *peer) outbound() *sconn {
	for _, c := range p.conns {
		if c.outbound && c.usable() && c.remote == p.domain {
			return c
		}
	}
	return nil
}

// dialDomain connects to a server of remote, trying the endpoints of its
// IMX record in order (§4.2.3), and starts the connection. chain is the
// redirect chain that led here, if any.
func (s *Server) dialDomain(ctx context.Context, remote string, chain []string) (*sconn, error) {
	eps, err := s.cfg.Resolver.Lookup(ctx, remote)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, remote, err)
	}
	var lastErr error
	for _, ep := range eps {
		for _, a := range ep.Addrs {
			c, err := s.dialAddr(ctx, remote, ep.Host, netip.AddrPortFrom(a, ep.Port), chain)
			if err == nil {
				return c, nil
			}
			lastErr = err
			s.log.Info("server of remote domain did not answer; trying the next", "domain", remote, "endpoint", ep.String(), "addr", a.String(), "err", err)
		}
	}
	return nil, fmt.Errorf("%w: %s: every server failed: %w", ErrUnreachable, remote, lastErr)
}

func (s *Server) dialAddr(ctx context.Context, remote, host string, ap netip.AddrPort, chain []string) (*sconn, error) {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	nc, err := s.dial(dctx, "tcp", ap.String())
	if err != nil {
		return nil, err
	}
	lc, err := link.Initiate(dctx, nc, s.linkConfig(false))
	if err != nil {
		return nil, err
	}
	c := s.newConn(lc, true, remote, net.JoinHostPort(host, fmt.Sprint(ap.Port())), ap, chain)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		lc.Abort(ErrServerClosed)
		return nil, ErrServerClosed
	}
	p := s.peer(remote)
	p.conns = append(p.conns, c)
	s.mu.Unlock()
	s.Stats.OutboundConns.Add(1)
	s.wg.Go(func() {
		defer s.Stats.OutboundConns.Add(-1)
		s.runConn(c)
	})
	s.log.Info("connected to remote domain", "domain", remote, "endpoint", c.endpoint, "conn", c.ID())
	return c, nil
}

// Redirect sends REDIRECT to host:port on every inbound connection (to
// drain this node before a shutdown, or to balance load) and stops using
// those connections for new requests. Connections this node dialled cannot
// carry a REDIRECT; they are closed once their queued records are sent, so
// that peers stop using them too. It returns the number of peers told.
func (s *Server) Redirect(host string, port uint16, text string) int {
	s.mu.Lock()
	conns := make([]*sconn, 0, len(s.byID))
	for _, c := range s.byID {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		c.setDraining()
		if c.outbound {
			c.Close(wire.StatusShuttingDown, "node draining")
			continue
		}
		if c.TrySend(&wire.Redirect{Host: host, Port: port, Text: text}) {
			n++
		}
	}
	return n
}

// domainOf returns the domain of an address, or s itself for a bare domain.
func domainOf(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// ConnInfo describes one server connection, for diagnostics.
type ConnInfo struct {
	ID         uint64
	Outbound   bool
	Remote     string   // the remote domain dialled (outbound only)
	Endpoint   string   // host:port dialled (outbound only)
	RemoteAddr string   // the peer's address
	Pairs      []string // authenticated pairs, "local remote"
	Draining   bool
}

// Conns describes the open connections, sorted by ID.
func (s *Server) Conns() []ConnInfo {
	s.mu.Lock()
	conns := make([]*sconn, 0, len(s.byID))
	for _, c := range s.byID {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	out := make([]ConnInfo, 0, len(conns))
	for _, c := range conns {
		select {
		case <-c.Done():
			continue
		default:
		}
		ci := ConnInfo{ID: c.ID(), Outbound: c.outbound, Remote: c.remote, Endpoint: c.endpoint, RemoteAddr: c.RemoteAddr().String()}
		c.mu.Lock()
		for _, p := range c.pairs() {
			ci.Pairs = append(ci.Pairs, p.local+" "+p.remote)
		}
		ci.Draining = c.draining
		c.mu.Unlock()
		slices.Sort(ci.Pairs)
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b ConnInfo) int { return int(a.ID) - int(b.ID) })
	return out
}
