// Package server is imxd as a library: it wires the store, discovery,
// federation (s2s), the client listener (c2s), the message router and the
// admin API together from a config.Config, starts them in order and stops
// them in reverse.
//
// Start order: data directory and dial-back key, store (and the release of
// deliveries a crashed run left half done), resolver, router, s2s, c2s,
// then the listeners (server, client, admin), then the resend of messages
// left in the outbox. Shutdown order: stop accepting clients and tell the
// sessions (CLOSE shutting-down), close the server connections in an
// orderly way, stop the admin API, close the resolver and the store.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/admin"
	"github.com/imxproject/imx/c2s"
	"github.com/imxproject/imx/config"
	"github.com/imxproject/imx/dialback"
	"github.com/imxproject/imx/discovery"
	"github.com/imxproject/imx/internal/link"
	"github.com/imxproject/imx/presence"
	"github.com/imxproject/imx/router"
	"github.com/imxproject/imx/s2s"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/sqlite"
	"github.com/imxproject/imx/wire"
)

// Software is what imxd announces in HELLO.
const Software = "imxd/0.1"

// Server is one imxd.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	started  time.Time
	store    *sqlite.Store
	resolver *discovery.Resolver
	router   *router.Router
	presence *presence.Service
	s2s      *s2s.Server
	c2s      *c2s.Handler
	admin    http.Handler
	frames   frameCounters

	mu    sync.Mutex
	addrs map[string]net.Addr // listener name → its address, once listening

	drainMu sync.Mutex
	drains  map[addr.Address]*sync.Mutex // one offline drain at a time per user
}

// Options are what a caller may set besides the configuration file.
type Options struct {
	// Password overrides the argon2id parameters of new password hashes
	// (tests and demos use cheap ones); zero: store.DefaultPasswordParams.
	Password store.PasswordParams
	// Dial overrides how server connections are opened (the demo binds
	// each domain's own loopback address).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// PresenceRetry, if not zero, is the first delay of the retries of a
	// contact whose domain could not be reached, ten times it their
	// longest (tests; zero: presence.DefaultRetryMin and DefaultRetryMax).
	PresenceRetry time.Duration
}

// New prepares a server: it opens the store and makes every part, but
// listens on nothing until Run.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts Options) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: logger, started: time.Now(), addrs: map[string]net.Addr{}, drains: map[addr.Address]*sync.Mutex{}}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	}
	key, err := dialback.LoadOrCreateKey(filepath.Join(cfg.DataDir, "dialback.key"))
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.store, err = sqlite.Open(ctx, filepath.Join(cfg.DataDir, "imx.db"), sqlite.Options{Password: opts.Password})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	fail := func(err error) (*Server, error) {
		s.store.Close()
		if s.resolver != nil {
			s.resolver.Close()
		}
		return nil, fmt.Errorf("server: %w", err)
	}
	// Deliveries that a crashed run claimed but did not finish may be
	// delivered again when their sender repeats them.
	if n, err := s.store.ReleaseClaims(ctx, s.started); err != nil {
		return fail(err)
	} else if n > 0 {
		s.log.Warn("released deliveries left unfinished by the last run", "count", n)
	}
	s.resolver, err = discovery.New(discovery.Config{Server: cfg.DNS.Server})
	if err != nil {
		return fail(err)
	}

	domains := cfg.DomainNames()
	policies := map[string]router.Policy{}
	for _, d := range cfg.Domains {
		policies[d.Name] = router.Policy{
			OfflineMessages: d.OfflineMessages, OfflineLimit: d.OfflineLimit,
			MaxMessageSize: d.MaxMessageSize, RateLimit: d.RateLimit, RateBurst: d.RateBurst,
		}
	}
	f := cfg.Federation
	s.s2s, err = s2s.New(s2s.Config{
		Domains:             domains,
		Node:                f.Node,
		Resolver:            s.resolver,
		Key:                 key,
		MaxConnsPerDomain:   f.MaxConnsPerDomain,
		MaxInboundPerDomain: f.MaxInboundPerDomain,
		MaxInbound:          f.MaxInbound,
		IdleTimeout:         f.IdleTimeout.D(),
		DialTimeout:         f.DialTimeout.D(),
		RequestTimeout:      f.RequestTimeout.D(),
		AuthTimeout:         f.AuthTimeout.D(),
		MinBackoff:          f.MinBackoff.D(),
		MaxBackoff:          f.MaxBackoff.D(),
		RedirectAllow:       f.RedirectAllow,
		Link:                link.Config{Software: Software, Frames: &s.frames.server},
		Dial:                opts.Dial,
		Handler:             s2s.HandlerFunc(s.fromServer),
		Logger:              logger,
	})
	if err != nil {
		return fail(err)
	}
	var clients lateClients
	ppolicies := map[string]presence.Policy{}
	for _, d := range cfg.Domains {
		ppolicies[d.Name] = presence.Policy{SubscriptionTimeout: d.SubscriptionTimeout.D(), MaxMessageSize: d.MaxMessageSize}
	}
	s.presence, err = presence.New(presence.Config{
		Domains: ppolicies,
		Store:   s.store,
		Remote:  s.s2s,
		Local:   &clients,
		Logger:  logger,
		// The capabilities of a user are those its sessions declared.
		Capabilities: clients.Capabilities,

		RetryMin: opts.PresenceRetry,
		RetryMax: 10 * opts.PresenceRetry,
	})
	if err != nil {
		return fail(err)
	}
	s.router, err = router.New(router.Config{
		Domains:  policies,
		Local:    &clients,
		Remote:   s.s2s,
		Users:    s.store,
		Dedup:    s.store,
		Outbox:   s.store,
		Offline:  s.store,
		Blocks:   s.store,
		Attrs:    s.presence,
		RetryFor: f.RetryFor.D(),
		Logger:   logger,
	})
	if err != nil {
		return fail(err)
	}
	s.c2s, err = c2s.New(c2s.Config{
		Domains:  domains,
		Auth:     &authenticator{store: s.store, lifetime: cfg.Clients.SessionLifetime.D()},
		Router:   s.router,
		Link:     link.Config{Software: Software, Frames: &s.frames.client},
		MaxConns: cfg.Clients.MaxConnections,
		OnLogin:  s.deliverOffline,
		Presence: clientPresence{Service: s.presence, srv: s},
		Logger:   logger,
	})
	if err != nil {
		return fail(err)
	}
	clients.h = s.c2s
	s.admin = admin.New(admin.Config{
		Accounts:   s.store,
		Domains:    domains,
		Ready:      s.ready,
		Federation: func() any { return s.s2s.Conns() },
		// A changed password or a deleted account ends the user's
		// sessions.
		Disconnect: func(user addr.Address) { s.c2s.Disconnect(user, wire.StatusNotAuthorized, "credentials changed") },
		Metrics:    s.newMetrics(),
		Pprof:      cfg.Admin.Pprof,
		Logger:     logger,
	})
	return s, nil
}

// lateClients lets the router and the presence service be made before the
// c2s handler that they deliver and push to.
type lateClients struct{ h *c2s.Handler }

func (l *lateClients) Deliver(ctx context.Context, to addr.Address, m *wire.Message) int {
	return l.h.Deliver(ctx, to, m)
}

func (l *lateClients) Push(ctx context.Context, user addr.Address, rec wire.Record) int {
	return l.h.Push(ctx, user, rec)
}

func (l *lateClients) Capabilities(user addr.Address) []string { return l.h.Capabilities(user) }

// deliverOffline hands the messages kept while user was offline to the
// sessions that just logged in, 100 at a time and pipelined
// (c2s.Handler.DeliverAcked), and forgets those a client
// acknowledged (at least once: a crash between the two delivers them
// again).
func (s *Server) deliverOffline(user addr.Address) {
	s.drainMu.Lock()
	mu := s.drains[user]
	if mu == nil {
		mu = new(sync.Mutex)
		s.drains[user] = mu
	}
	s.drainMu.Unlock()
	mu.Lock()
	defer func() {
		mu.Unlock()
		s.drainMu.Lock()
		delete(s.drains, user) // the next login makes a new one
		s.drainMu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		msgs, err := s.store.ListOffline(ctx, user, 100)
		if err != nil {
			s.log.Error("reading offline messages failed", "user", user.String(), "err", err)
			return
		}
		if len(msgs) == 0 {
			return
		}
		recs := make([]*wire.Message, len(msgs))
		for i, m := range msgs {
			recs[i] = &wire.Message{From: m.From.String(), To: m.To.String(), ID: m.ID, MIME: m.MIME}
		}
		// Those acknowledged, from the first; the rest are kept (the
		// sessions left, or a client refused one).
		n := s.c2s.DeliverAcked(ctx, user, recs...)
		if n == 0 {
			return
		}
		last := msgs[n-1].Seq
		if _, err := s.store.DeleteOffline(ctx, user, last); err != nil {
			s.log.Error("forgetting delivered offline messages failed", "user", user.String(), "err", err)
			return
		}
		s.log.Info("delivered offline messages", "user", user.String(), "through", last)
	}
}

// fromServer handles the authorized records from other domains.
func (s *Server) fromServer(ctx context.Context, in s2s.Inbound) wire.Record {
	switch r := in.Record.(type) {
	case *wire.Message:
		return s.router.Receive(ctx, in.From, in.To, r)
	case *wire.Subscribe:
		return s.presence.HandleSubscribe(ctx, in.From, r)
	case *wire.Unsubscribe:
		return s.presence.HandleUnsubscribe(ctx, in.From, r)
	case *wire.Notify:
		return s.presence.HandleNotify(ctx, in.From, r)
	case *wire.GetAttrs:
		if target, err := addr.Parse(r.Target); err == nil {
			return &wire.Attrs{Target: r.Target, Attrs: s.presence.UserAttrs(ctx, r.Requester, target, r.Names)}
		}
		return s.domainAttrs(in.To, r)
	}
	return &wire.Result{Code: wire.StatusUnsupported, Text: in.Record.Type().String() + " is not supported yet"}
}

// domainAttrs answers GET-ATTRIBUTES for the domain itself (§4.4.6); user
// attributes come with presence (issue 5).
func (s *Server) domainAttrs(domain string, r *wire.GetAttrs) wire.Record {
	if r.Target != domain {
		return &wire.Result{Code: wire.StatusUnsupported, Text: "user attributes are not served yet"}
	}
	var d config.Domain
	for _, x := range s.cfg.Domains {
		if x.Name == domain {
			d = x
		}
	}
	all := []wire.Attr{
		{Name: "software", Value: Software},
		{Name: "max-message-size", Value: fmt.Sprint(d.MaxMessageSize)},
		{Name: "subscription-timeout", Value: fmt.Sprint(int(d.SubscriptionTimeout.D().Seconds()))},
		{Name: "idle-timeout", Value: fmt.Sprint(int(s.cfg.Federation.IdleTimeout.D().Seconds()))},
		{Name: "max-connections", Value: fmt.Sprint(s.cfg.Federation.MaxInboundPerDomain)},
		{Name: "rate-limit", Value: fmt.Sprint(d.RateLimit)},
		{Name: "capabilities", Value: "dialback"},
	}
	out := &wire.Attrs{Target: domain}
	for _, a := range all {
		if len(r.Names) == 0 || slices.Contains(r.Names, a.Name) {
			out.Attrs = append(out.Attrs, a)
		}
	}
	return out
}

// ready reports whether the server serves: listening, store reachable.
func (s *Server) ready(ctx context.Context) error {
	s.mu.Lock()
	n := len(s.addrs)
	s.mu.Unlock()
	if n == 0 {
		return errors.New("not listening yet")
	}
	_, err := s.store.CountOutbox(ctx)
	return err
}

// Addr returns the address a listener ("server", "client", "admin") is
// bound to, or nil.
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[name]
}

// Store returns the server's store, for tools and tests.
func (s *Server) Store() store.Store { return s.store }

// S2S returns the federation server, for diagnostics and tests.
func (s *Server) S2S() *s2s.Server { return s.s2s }

// Run listens and serves until ctx ends, then shuts down in order within
// grace (0: the configuration's shutdown_timeout), and releases everything. It returns the first error that stopped
// it, or nil after a clean shutdown.
func (s *Server) Run(ctx context.Context, grace time.Duration) error {
	defer s.resolver.Close()
	defer s.store.Close()
	listen := func(name, address string) (net.Listener, error) {
		if address == "off" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", address)
		if err != nil {
			return nil, fmt.Errorf("server: listen %s on %s: %w", name, address, err)
		}
		s.mu.Lock()
		s.addrs[name] = ln.Addr()
		s.mu.Unlock()
		s.log.Info("listening", "listener", name, "addr", ln.Addr().String())
		return ln, nil
	}
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	srvLn, err := listen("server", s.cfg.Listen.Server)
	if err != nil {
		return err
	}
	lns = append(lns, srvLn)
	cliLn, err := listen("client", s.cfg.Listen.Client)
	if err != nil {
		closeAll()
		return err
	}
	lns = append(lns, cliLn)
	admLn, err := listen("admin", s.cfg.Listen.Admin)
	if err != nil {
		closeAll()
		return err
	}

	errc := make(chan error, 3)
	var wg sync.WaitGroup
	if srvLn != nil {
		wg.Go(func() {
			if err := s.s2s.Serve(srvLn); !errors.Is(err, s2s.ErrServerClosed) {
				errc <- err
			}
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/imx", s.c2s)
	mux.HandleFunc("/", s.home)
	cliHTTP := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	admHTTP := &http.Server{Handler: s.admin, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	for _, p := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{cliHTTP, cliLn}, {admHTTP, admLn}} {
		if p.ln == nil {
			continue
		}
		wg.Go(func() {
			if err := p.srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	rctx, stopResend := context.WithCancel(ctx)
	wg.Go(func() {
		if err := s.router.Resend(rctx); err != nil && rctx.Err() == nil {
			s.log.Error("resending the outbox failed", "err", err)
		}
	})
	wg.Go(func() { s.maintain(rctx) })
	// Presence runs until the clients are gone, so that their going
	// offline still reaches the watchers.
	pctx, stopPresence := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPresence()
	wg.Go(func() {
		if err := s.presence.Run(pctx); err != nil && pctx.Err() == nil {
			s.log.Error("presence stopped", "err", err)
		}
	})
	s.log.Info("imxd running", "domains", s.cfg.DomainNames(), "software", Software)

	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down", "grace", grace)
	case runErr = <-errc:
		s.log.Error("a listener failed; shutting down", "err", runErr)
	}
	stopResend()
	if grace <= 0 {
		grace = s.cfg.ShutdownTimeout.D()
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// Clients first, while the router, s2s and the store still serve the
	// SENDs in flight; http.Server does not track the hijacked WebSockets.
	if err := s.c2s.Shutdown(sctx); err != nil {
		s.log.Warn("client sessions did not all close in time", "err", err)
	}
	_ = cliHTTP.Shutdown(sctx)
	// The sessions that ended made their users offline: let those
	// NOTIFYs go out before the server connections close.
	flushed := make(chan struct{})
	go func() { s.presence.Wait(); close(flushed) }()
	select {
	case <-flushed:
	case <-sctx.Done():
	}
	stopPresence()
	if to := s.cfg.Federation.DrainTo; to != "" {
		s.redirectPeers(sctx, to)
	}
	if err := s.s2s.Shutdown(sctx); err != nil {
		s.log.Warn("server connections did not all close in time", "err", err)
	}
	s.router.Wait() // the results of received messages, before the store closes
	_ = admHTTP.Shutdown(sctx)
	wg.Wait()
	s.log.Info("stopped")
	return runErr
}

// redirectPeers sends the peers connected to this node to another node of
// its domains (§4.4.4) and waits, up to half of what is left of ctx, for
// them to go.
func (s *Server) redirectPeers(ctx context.Context, target string) {
	host, portText, _ := net.SplitHostPort(target) // config checked it
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		s.log.Warn("drain_to has no usable port; closing instead", "drain_to", target)
		return
	}
	n := s.s2s.Redirect(host, uint16(port), "node draining")
	s.log.Info("redirected peers to another node", "to", target, "peers", n)
	wait := time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl) / 2
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		inbound := 0
		for _, c := range s.s2s.Conns() {
			if !c.Outbound {
				inbound++
			}
		}
		if inbound == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// maintain prunes what the store keeps only for a while.
func (s *Server) maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		if _, err := s.store.PruneClaims(ctx, now.Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning delivery records failed", "err", err)
		}
		if _, err := s.store.PruneSessions(ctx, now); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning sessions failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s serving %v\nclients connect with a WebSocket at /imx (see docs/client-api.md), for example:\n  imx login ws://%s/imx USER\n", Software, s.cfg.DomainNames(), r.Host)
}
