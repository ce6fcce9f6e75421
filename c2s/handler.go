package c2s

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/internal/link"
	"github.com/imxproject/imx/internal/workers"
	"github.com/imxproject/imx/wire"
)

// ErrServerClosed is the reason of the connections that Close or an
// expired Shutdown cut.
var ErrServerClosed = errors.New("c2s: server closed")

// Defaults of Config.
const (
	DefaultMaxConns         = 10000
	DefaultMaxSendsInFlight = 64
	DefaultMaxFailedLogins  = 3
	DefaultLoginTimeout     = 10 * time.Second
	DefaultSendTimeout      = 2 * time.Minute
	DefaultAckTimeout       = time.Minute
	DefaultMaxUnacked       = 1024
	DefaultDeliverTimeout   = 2 * time.Second
	DefaultWorkerIdle       = workers.DefaultMaxIdle
	// DefaultQueueLen and DefaultReadBuffer are the link defaults for
	// client connections: many, mostly idle, with small records.
	DefaultQueueLen   = 128
	DefaultReadBuffer = 512
)

// Config configures a Handler. Zero values give the documented defaults.
type Config struct {
	// Domains are the local domains, normalised (addr.ParseDomain): only
	// their users may log in.
	Domains []string
	// Auth checks logins; Router routes the messages clients send. Both
	// are required.
	Auth   Authenticator
	Router Router
	// Link is the base configuration of every client connection
	// (software, capabilities, frame limit, timeouts, keepalive).
	// FramePerWrite, IdleTimeout (0: client connections end only when
	// their keepalive fails), Requests (one table per connection) and
	// Logger are set by the Handler; QueueLen defaults to DefaultQueueLen
	// and ReadBuffer to DefaultReadBuffer.
	Link link.Config
	// MaxConns bounds the client connections open at once; more are
	// answered HTTP 503. Default DefaultMaxConns.
	MaxConns int
	// MaxSendsInFlight bounds the SENDs of one session waiting for their
	// result; more are answered busy.
	MaxSendsInFlight int
	// MaxFailedLogins is how many failed logins close a connection with
	// auth-failed.
	MaxFailedLogins int
	// LoginTimeout bounds one Authenticator.Login.
	LoginTimeout time.Duration
	// SendTimeout bounds one Router.Send. SENDs that start within the
	// same 64th of it (at most a second) share one deadline, so a SEND
	// gets between 63/64 of it and all of it.
	SendTimeout time.Duration
	// AckTimeout is how long a delivered MESSAGE waits for the client's
	// RESULT before it is logged as unacknowledged. Answers are accounted
	// in the order the messages were sent (one waiter per session, and
	// only while there are answers to wait for).
	AckTimeout time.Duration
	// MaxUnacked bounds the MESSAGEs of one session waiting for the
	// client's RESULT; a session over it, or whose send queue stays full
	// for DeliverTimeout, is a slow consumer: it is not counted as reached
	// and is closed with CLOSE busy.
	MaxUnacked     int
	DeliverTimeout time.Duration
	// OriginPatterns lists the other origins whose web pages may open
	// client connections (websocket.AcceptOptions); the listener's own
	// host is always allowed.
	OriginPatterns []string
	// OnLogin, if set, is called on a goroutine of its own after each
	// login, once the session can receive messages (the server delivers
	// the messages kept while the user was offline).
	OnLogin func(user addr.Address)
	// Presence serves contacts and presence; nil answers them unsupported.
	Presence Presence
	// WorkerIdle is how long a goroutine that routes SENDs, or writes to
	// the sessions (a worker, shared by the sessions), waits for more work
	// before it exits. Workers are kept so that their stacks, grown by a
	// deep Router or by the write path, serve the next SENDs and writes;
	// an idle server holds none. Default DefaultWorkerIdle (5 s).
	WorkerIdle time.Duration
	// Logger receives log lines; nil discards them.
	Logger *slog.Logger
}

// Stats are counters of a Handler, for metrics and tests.
type Stats struct {
	Conns, Sessions             atomic.Int64  // open now: WebSocket connections, logged-in sessions
	Logins, LoginFailures       atomic.Uint64 // LOGINs accepted, refused auth-failed
	Sends, SendsBusy            atomic.Uint64 // SENDs routed, refused busy
	Delivered, Acked, Unacked   atomic.Uint64 // MESSAGEs queued to sessions, acknowledged ok, not acknowledged
	SlowConsumers, FramingError atomic.Uint64 // sessions closed as too slow, connections failed for framing
	Workers                     atomic.Int64  // goroutines that route SENDs, busy or idle
}

// Handler is the client listener's WebSocket endpoint and the registry of
// the sessions logged in through it. Mount it at Path.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	local   map[string]bool
	ctx     context.Context // ends at Close or when Shutdown gives up
	cancel  context.CancelFunc
	wg      sync.WaitGroup // connections, and the SENDs they started (sends' workers)
	sends   *workers.Pool[sendJob]
	sendCtx *sharedDeadline  // bounds each Router.Send by SendTimeout
	writers *link.WriterPool // the sessions' writers (link.Config.Writers)

	mu       sync.Mutex
	closed   bool // no new connections
	draining bool // no new SENDs
	conns    map[*session]struct{}
	sending  int           // SENDs waiting for the router
	idle     chan struct{} // closed when sending reaches 0 while draining

	regMu sync.RWMutex
	users map[addr.Address][]*session
	caps  map[*session][]string // the capabilities sessions declared (ATTRIBUTES-SET)

	Stats Stats
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if len(cfg.Domains) == 0 {
		return nil, errors.New("c2s: no local domains")
	}
	if cfg.Auth == nil || cfg.Router == nil {
		return nil, errors.New("c2s: Auth and Router are required")
	}
	local := map[string]bool{}
	for _, d := range cfg.Domains {
		n, err := addr.ParseDomain(d)
		if err != nil || n != d {
			return nil, fmt.Errorf("c2s: local domain %q is not a normalised domain (%v)", d, err)
		}
		local[d] = true
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.LoginTimeout, DefaultLoginTimeout)
	def(&cfg.SendTimeout, DefaultSendTimeout)
	def(&cfg.AckTimeout, DefaultAckTimeout)
	def(&cfg.DeliverTimeout, DefaultDeliverTimeout)
	def(&cfg.WorkerIdle, DefaultWorkerIdle)
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&cfg.MaxConns, DefaultMaxConns)
	defInt(&cfg.MaxSendsInFlight, DefaultMaxSendsInFlight)
	defInt(&cfg.MaxFailedLogins, DefaultMaxFailedLogins)
	defInt(&cfg.MaxUnacked, DefaultMaxUnacked)
	defInt(&cfg.Link.QueueLen, DefaultQueueLen)
	defInt(&cfg.Link.ReadBuffer, DefaultReadBuffer)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "c2s"),
		local: local,
		conns: map[*session]struct{}{},
		users: map[addr.Address][]*session{},
		caps:  map[*session][]string{},
	}
	h.cfg.Link.FramePerWrite = true
	h.cfg.Link.SharedFrames = true // client connections are many: no counters of their own
	h.cfg.Link.IdleTimeout = 0
	h.cfg.Link.Requests = nil
	h.cfg.Link.AcceptResponse = nil
	h.cfg.Link.Logger = h.log
	// The sessions' writers start again for every burst (a presence
	// change pushed to many sessions): pooled goroutines keep their
	// grown stacks. Closed once the connections have ended.
	h.writers = link.NewWriterPool(cfg.WorkerIdle)
	h.cfg.Link.Writers = h.writers
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.sendCtx = newSharedDeadline(h.ctx, cfg.SendTimeout)
	// The workers are counted in h.wg, like the sessions that hand them
	// SENDs, so that waiting for h.wg waits for the SENDs as before.
	h.sends = workers.New(workers.Config[sendJob]{
		Run:     runSend,
		MaxIdle: cfg.WorkerIdle,
		Group:   &h.wg,
		Live:    &h.Stats.Workers,
		Deep:    true, // router, message building, store, s2s
	})
	return h, nil
}

// ServeHTTP upgrades the request to a WebSocket with subprotocol imx.v1
// and starts the client connection on it; the connection runs until it
// ends, on a goroutine of its own.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	case len(h.conns) >= h.cfg.MaxConns:
		h.mu.Unlock()
		h.log.Warn("too many client connections; refusing", "remote", r.RemoteAddr, "max", h.cfg.MaxConns)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	s := &session{h: h, remote: r.RemoteAddr}
	h.conns[s] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	done := func() {
		h.mu.Lock()
		delete(h.conns, s)
		h.mu.Unlock()
		h.wg.Done()
	}

	sb := &smallBuffers{ResponseWriter: w}
	ws, err := websocket.Accept(sb, r, &websocket.AcceptOptions{
		Subprotocols:   []string{Subprotocol},
		OriginPatterns: h.cfg.OriginPatterns,
	})
	if err != nil {
		h.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		done()
		return
	}
	if ws.Subprotocol() != Subprotocol {
		h.log.Debug("client without subprotocol "+Subprotocol, "remote", r.RemoteAddr)
		_ = ws.Close(websocket.StatusPolicyViolation, "subprotocol "+Subprotocol+" required")
		done()
		return
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	fc := NewFrameConn(ws, local, parseAddr(r.RemoteAddr))
	fc.in, fc.wbr = sb.conn, sb.br       // for WaitRead
	fc.cork, fc.corkEach = sb.cork, true // the write buffer is wsWriteBuffer
	// The connection runs on a goroutine of its own, and net/http's
	// goroutine returns: its stack, grown by the HTTP request, and the
	// request itself are not kept for the life of a mostly idle client.
	go func() {
		defer done()
		h.Stats.Conns.Add(1)
		defer h.Stats.Conns.Add(-1)
		s.serve(fc)
	}()
}

// wsBuffer is the size of the read buffer of the WebSocket under a client
// connection.
const wsBuffer = 1 << 10

// wsWriteBuffer is the size of the WebSocket's write buffer: the least
// bufio allows. FrameConn corks the connection underneath around every
// message it writes (CorkConn, whose buffer is pooled and held only while
// corked), so the bytes the library writes in small pieces still leave in
// one system call, and an idle session keeps no write buffer.
const wsWriteBuffer = 16

// smallBuffers gives the WebSocket library a read buffer of wsBuffer bytes
// and a write buffer of wsWriteBuffer instead of the 4 KiB ones net/http
// hands over with a hijacked connection: client connections are many,
// mostly idle, and their frames small (BenchmarkIdleSessions measures the
// difference). It keeps the connection and the read buffer for
// FrameConn.WaitRead, and the CorkConn under them.
type smallBuffers struct {
	http.ResponseWriter
	conn *waitConn     // set by Hijack
	cork *CorkConn     // under conn
	br   *bufio.Reader // the WebSocket's read buffer, on conn
}

// Unwrap gives http.ResponseController the ResponseWriter underneath.
func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hijacks the connection underneath; bytes that net/http had read
// ahead are read first.
func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	w.cork = NewCorkConn(nc)
	wc := &waitConn{Conn: w.cork}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		wc.prefix = bytes.Clone(b)
	}
	w.conn, w.br = wc, bufio.NewReaderSize(wc, wsBuffer)
	return wc, bufio.NewReadWriter(w.br, bufio.NewWriterSize(wc, wsWriteBuffer)), nil
}

// parseAddr turns an http.Request's RemoteAddr into a net.Addr.
func parseAddr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return wsAddr(s)
}

// Deliver hands m to every session of the local user to, each as a MESSAGE
// request with a tag of its own, and returns how many sessions took it
// (0: the user is offline). A session whose queue is full is waited for,
// at most Config.DeliverTimeout and while ctx lasts; then it is a slow
// consumer, left out and closed. The sessions encode m later, so m must
// not be changed after Deliver.
func (h *Handler) Deliver(ctx context.Context, to addr.Address, m *wire.Message) int {
	var buf [8]*session
	n := 0
	for _, s := range h.sessionsOf(to, buf[:0]) {
		if s.deliver(ctx, m) {
			n++
		}
	}
	return n
}

// DeliverAcked hands ms, in order, to every session of to, like Deliver,
// and waits until the clients acknowledge them (RESULT ok) or ctx ends. It
// returns how many of ms, from the first, at least one session
// acknowledged. Each session has up to 128 of them unacknowledged at once,
// and the sessions are served side by side. The server uses it for
// messages it must not lose, such as those kept while the user was
// offline.
func (h *Handler) DeliverAcked(ctx context.Context, to addr.Address, ms ...*wire.Message) int {
	var buf [8]*session
	sessions := h.sessionsOf(to, buf[:0])
	if len(sessions) == 1 {
		return sessions[0].deliverAcked(ctx, ms)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		most int
	)
	for _, s := range sessions {
		wg.Go(func() {
			n := s.deliverAcked(ctx, ms)
			mu.Lock()
			most = max(most, n)
			mu.Unlock()
		})
	}
	wg.Wait()
	return most
}

// Push sends rec, a notice (NOTIFY, REQUEST) that asks no answer, to every
// session of user and returns how many queued it. rec must not be changed
// afterwards: the sessions encode it later.
func (h *Handler) Push(ctx context.Context, user addr.Address, rec wire.Record) int {
	var buf [8]*session
	n := 0
	for _, s := range h.sessionsOf(user, buf[:0]) {
		if s.lc.SendWithin(ctx, rec, h.cfg.DeliverTimeout) == nil {
			n++
		}
	}
	return n
}

// Online reports whether the user has at least one session.
func (h *Handler) Online(user addr.Address) bool { return h.Sessions(user) > 0 }

// Sessions returns the number of sessions of the user.
func (h *Handler) Sessions(user addr.Address) int {
	h.regMu.RLock()
	defer h.regMu.RUnlock()
	return len(h.users[user])
}

// Disconnect closes every session of the user with CLOSE code and text
// (for example not-authorized after a password change) and returns how
// many there were.
func (h *Handler) Disconnect(user addr.Address, code wire.Status, text string) int {
	var buf [8]*session
	ss := h.sessionsOf(user, buf[:0])
	for _, s := range ss {
		s.lc.Close(code, text)
	}
	return len(ss)
}

// sessionsOf appends the sessions of user to buf.
func (h *Handler) sessionsOf(user addr.Address, buf []*session) []*session {
	h.regMu.RLock()
	defer h.regMu.RUnlock()
	return append(buf, h.users[user]...)
}

// register adds s to the registry and queues its SESSION answer, at once
// for Deliver: the client gets SESSION before any MESSAGE, and once it has
// SESSION, messages to its user reach it.
func (h *Handler) register(s *session, resp *wire.Session) {
	h.regMu.Lock()
	queued := s.lc.TrySend(resp)
	h.users[s.user] = append(h.users[s.user], s)
	h.regMu.Unlock()
	if !queued { // the queue is full (answers to a burst of requests): wait
		s.queue(resp)
	}
	h.Stats.Sessions.Add(1)
}

func (h *Handler) unregister(s *session) {
	h.regMu.Lock()
	ss := h.users[s.user]
	for i, x := range ss {
		if x == s {
			ss = append(ss[:i:i], ss[i+1:]...)
			break
		}
	}
	if len(ss) == 0 {
		delete(h.users, s.user)
	} else {
		h.users[s.user] = ss
	}
	delete(h.caps, s)
	n := len(ss)
	h.regMu.Unlock()
	h.Stats.Sessions.Add(-1)
	if p := h.cfg.Presence; p != nil && !s.user.IsZero() {
		user := s.user
		h.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(h.ctx), h.cfg.SendTimeout)
			defer cancel()
			p.SessionsChanged(ctx, user, n)
		})
	}
}

// setCaps records the capabilities that s declared, if s is still
// registered.
func (h *Handler) setCaps(s *session, caps []string) {
	h.regMu.Lock()
	defer h.regMu.Unlock()
	if !slices.Contains(h.users[s.user], s) {
		return // the session ended meanwhile
	}
	if len(caps) == 0 {
		delete(h.caps, s)
		return
	}
	h.caps[s] = slices.Clone(caps)
}

// Capabilities returns the capabilities that the live sessions of user
// declared with ATTRIBUTES-SET: the union, sorted, each once.
func (h *Handler) Capabilities(user addr.Address) []string {
	h.regMu.RLock()
	defer h.regMu.RUnlock()
	var out []string
	for _, s := range h.users[user] {
		out = append(out, h.caps[s]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// startSend counts a SEND about to be routed, unless the handler drains.
func (h *Handler) startSend() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining {
		return false
	}
	h.sending++
	return true
}

func (h *Handler) endSend() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sending--
	if h.sending == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
}

// Shutdown drains the handler: new connections are refused (HTTP 503) and
// new SENDs answered shutting-down; once the SENDs in flight have their
// results, every connection gets CLOSE shutting-down, and Shutdown waits
// for them to end. If ctx ends first, what is left is cut (ErrServerClosed)
// and Shutdown returns ctx's error. It does not close the HTTP listener:
// shut the http.Server down after it.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed, h.draining = true, true
	idle := make(chan struct{})
	if h.sending == 0 {
		close(idle)
	} else {
		h.idle = idle
	}
	h.mu.Unlock()
	h.log.Info("shutting down client connections")

	forced := false
	select {
	case <-idle:
	case <-ctx.Done():
		forced = true
	}
	for _, s := range h.snapshot() {
		s.lc.Close(wire.StatusShuttingDown, "server shutting down")
	}
	// The idle workers exit now, the busy ones (a SEND cut by ctx) after
	// their SEND.
	h.sends.Close()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	if !forced {
		select {
		case <-done:
			h.cancel()
			h.endWriters()
			return nil
		case <-ctx.Done():
		}
	}
	h.abortAll()
	<-done
	h.endWriters()
	return ctx.Err()
}

// endWriters ends the writer pool, once every connection has ended (their
// writers have finished).
func (h *Handler) endWriters() {
	h.writers.Close()
	h.writers.Wait()
}

// Close cuts every connection at once and waits for them to end.
func (h *Handler) Close() error {
	h.mu.Lock()
	h.closed, h.draining = true, true
	h.mu.Unlock()
	h.abortAll()
	h.sends.Close()
	h.wg.Wait()
	h.endWriters()
	return nil
}

// abortAll ends the handler's context (the router calls of SENDs in
// flight) and every connection.
func (h *Handler) abortAll() {
	h.cancel()
	for _, s := range h.snapshot() {
		s.lc.Abort(ErrServerClosed)
	}
}

// snapshot returns the sessions whose connection is established.
func (h *Handler) snapshot() []*session {
	h.mu.Lock()
	defer h.mu.Unlock()
	ss := make([]*session, 0, len(h.conns))
	for s := range h.conns {
		if s.lc != nil {
			ss = append(ss, s)
		}
	}
	return ss
}
