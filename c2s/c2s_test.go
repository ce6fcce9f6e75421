package c2s

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testDomain = "alpha.example"

var (
	alice = addr.MustParse("alice@alpha.example")
	bob   = addr.MustParse("bob@alpha.example")
	carol = addr.MustParse("carol@alpha.example")
)

// testAuth is a real in-memory Authenticator: passwords and session
// tokens in maps.
type testAuth struct {
	mu        sync.Mutex
	passwords map[addr.Address]string
	tokens    map[string]addr.Address
}

func newTestAuth() *testAuth {
	return &testAuth{
		passwords: map[addr.Address]string{alice: "alice pw", bob: "bob pw", carol: "carol pw"},
		tokens:    map[string]addr.Address{},
	}
}

func (a *testAuth) Login(ctx context.Context, c Credentials) (Grant, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.Password != "" {
		if pw, ok := a.passwords[c.User]; !ok || pw != c.Password {
			return Grant{}, fmt.Errorf("test: wrong password: %w", wire.StatusAuthFailed)
		}
	} else if u, ok := a.tokens[string(c.Token)]; !ok || u != c.User {
		return Grant{}, fmt.Errorf("test: unknown token: %w", wire.StatusAuthFailed)
	}
	if !c.Remember {
		return Grant{}, nil
	}
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	a.tokens[string(tok)] = c.User
	return Grant{Token: tok, TTL: 30 * 24 * time.Hour}, nil
}

// testRouter is a real in-process router for one domain: it builds the
// MIME message, delivers it through the handler's own registry, and
// answers delivered, offline or unknown-user.
type testRouter struct {
	h     *Handler
	users map[addr.Address]bool
	gate  chan struct{} // if set, each Send waits for a value first
	ids   atomic.Uint64
}

func (r *testRouter) Send(ctx context.Context, from addr.Address, s *wire.Send) *wire.Result {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return &wire.Result{Code: wire.StatusTimeout}
		}
	}
	to, err := addr.Parse(s.To)
	if err != nil {
		return &wire.Result{Code: wire.StatusBadRequest, Text: "invalid address"}
	}
	if !r.users[to] {
		return &wire.Result{Code: wire.StatusUnknownUser, Text: "no such user"}
	}
	ct := s.ContentType
	if ct == "" {
		ct = "text/plain"
	}
	id := fmt.Appendf(nil, "m%d", r.ids.Add(1))
	mime := fmt.Sprintf("From: %s\r\nTo: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nContent-Type: %s; charset=utf-8\r\n\r\n%s",
		from, to, time.Now().Format(time.RFC1123Z), id, from.Domain(), ct, s.Body)
	n := r.h.Deliver(ctx, to, &wire.Message{From: from.String(), To: to.String(), ID: id, MIME: []byte(mime)})
	if n == 0 {
		return &wire.Result{Code: wire.StatusOffline}
	}
	return &wire.Result{Code: wire.StatusDelivered, Count: uint32(n)}
}

type testServer struct {
	h      *Handler
	auth   *testAuth
	router *testRouter
	url    string // ws://…/imx
}

// startServer runs a Handler behind httptest on loopback; edit changes
// its Config before New.
func startServer(t testing.TB, edit func(*Config)) *testServer {
	t.Helper()
	auth := newTestAuth()
	router := &testRouter{users: map[addr.Address]bool{alice: true, bob: true, carol: true}}
	cfg := Config{
		Domains: []string{testDomain},
		Auth:    auth,
		Router:  router,
		Logger:  testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	router.h = h
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = h.Close()
		srv.Close()
	})
	return &testServer{h: h, auth: auth, router: router, url: "ws" + strings.TrimPrefix(srv.URL, "http") + Path}
}

// testLogger writes to the test log when -v, else discards.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// rawClient speaks the client API frame by frame over a WebSocket.
type rawClient struct {
	t   testing.TB
	ws  *websocket.Conn
	ctx context.Context
}

func dialRaw(t testing.TB, url string) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(ReadLimit)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &rawClient{t: t, ws: ws, ctx: ctx}
}

func (c *rawClient) writeMsg(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	if err := c.ws.Write(c.ctx, typ, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) write(rec wire.Record) {
	c.t.Helper()
	b, err := rec.AppendBinary(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	c.writeMsg(websocket.MessageBinary, b)
}

// read returns the next record, or nil and the error that ended the
// connection.
func (c *rawClient) read() (wire.Record, error) {
	c.t.Helper()
	typ, b, err := c.ws.Read(c.ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		c.t.Fatalf("server sent a %v message", typ)
	}
	rec, err := wire.Parse(b)
	if err != nil {
		c.t.Fatalf("server sent a bad frame: %v", err)
	}
	return rec, nil
}

func (c *rawClient) mustRead() wire.Record {
	c.t.Helper()
	rec, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return rec
}

func (c *rawClient) expectResult(tag uint32, code wire.Status) *wire.Result {
	c.t.Helper()
	rec := c.mustRead()
	r, ok := rec.(*wire.Result)
	if !ok || r.Tag != tag || r.Code != code {
		c.t.Fatalf("got %s %+v, want RESULT %v for tag %d", rec.Type(), rec, code, tag)
	}
	return r
}

// expectClose reads until a CLOSE record, checks its code, and returns
// the error that then ends the connection (the server closes its
// WebSocket after CLOSE only when the connection failed; otherwise it
// waits for the client, as expectClosed does).
func (c *rawClient) expectClose(code wire.Status) error {
	c.t.Helper()
	for {
		rec, err := c.read()
		if err != nil {
			c.t.Fatalf("connection ended (%v) without CLOSE %v", err, code)
		}
		cl, ok := rec.(*wire.Close)
		if !ok {
			continue
		}
		if cl.Code != code {
			c.t.Fatalf("CLOSE %v (%q), want %v", cl.Code, cl.Text, code)
		}
		_, err = c.read()
		return err
	}
}

// expectClosed reads until a CLOSE record, checks its code, and closes the
// connection as a client does.
func (c *rawClient) expectClosed(code wire.Status) {
	c.t.Helper()
	for {
		rec, err := c.read()
		if err != nil {
			c.t.Fatalf("connection ended (%v) without CLOSE %v", err, code)
		}
		if cl, ok := rec.(*wire.Close); ok {
			if cl.Code != code {
				c.t.Fatalf("CLOSE %v (%q), want %v", cl.Code, cl.Text, code)
			}
			_ = c.ws.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

func (c *rawClient) hello() {
	c.t.Helper()
	c.write(&wire.Hello{Head: wire.Head{Tag: 1}, MinVersion: 1, MaxVersion: 1, Software: "raw-test"})
	if h, ok := c.mustRead().(*wire.Hello); !ok || !h.Flags.Has(wire.FlagResponse) {
		c.t.Fatalf("no HELLO response")
	}
}

func (c *rawClient) login(user addr.Address, password string, remember bool) *wire.Session {
	c.t.Helper()
	c.write(&wire.Login{Head: wire.Head{Tag: 2}, User: user.String(), Password: password, Remember: remember, Client: "raw-test"})
	rec := c.mustRead()
	s, ok := rec.(*wire.Session)
	if !ok || s.Tag != 2 {
		c.t.Fatalf("login: got %s %+v", rec.Type(), rec)
	}
	return s
}

// loggedIn dials and logs in.
func loggedIn(t testing.TB, srv *testServer, user addr.Address, password string) *rawClient {
	t.Helper()
	c := dialRaw(t, srv.url)
	c.hello()
	c.login(user, password, false)
	return c
}

func TestLoginPassword(t *testing.T) {
	srv := startServer(t, nil)
	c := dialRaw(t, srv.url)
	c.hello()
	s := c.login(addr.MustParse("Alice@Alpha.Example"), "alice pw", true)
	if s.User != "alice@alpha.example" || len(s.Session) != 32 || s.Expires != 30*24*3600 || s.ID == "" {
		t.Errorf("SESSION %+v", s)
	}
	testutil.WaitFor(t, "registration", func() bool { return srv.h.Online(alice) })
	if n := srv.h.Sessions(alice); n != 1 {
		t.Errorf("Sessions = %d", n)
	}
	// A second LOGIN on the same connection is refused.
	c.write(&wire.Login{Head: wire.Head{Tag: 3}, User: alice.String(), Password: "alice pw"})
	c.expectResult(3, wire.StatusBadRequest)
	// Without remember: no token.
	c2 := dialRaw(t, srv.url)
	c2.hello()
	if s := c2.login(alice, "alice pw", false); len(s.Session) != 0 || s.Expires != 0 {
		t.Errorf("SESSION without remember: %+v", s)
	}
	testutil.WaitFor(t, "two sessions", func() bool { return srv.h.Sessions(alice) == 2 })
	c.write(&wire.Close{Code: wire.StatusOK})
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	testutil.WaitFor(t, "the session to end", func() bool { return srv.h.Sessions(alice) == 1 })
}

func TestLoginFailuresClose(t *testing.T) {
	srv := startServer(t, nil)
	c := dialRaw(t, srv.url)
	c.hello()
	for i := range 3 {
		tag := uint32(10 + i)
		c.write(&wire.Login{Head: wire.Head{Tag: tag}, User: alice.String(), Password: "wrong"})
		c.expectResult(tag, wire.StatusAuthFailed)
	}
	c.expectClosed(wire.StatusAuthFailed)
	if srv.h.Online(alice) {
		t.Error("alice online after failed logins")
	}
	if got := srv.h.Stats.LoginFailures.Load(); got != 3 {
		t.Errorf("LoginFailures = %d", got)
	}
}

func TestLoginRefusals(t *testing.T) {
	srv := startServer(t, nil)
	c := dialRaw(t, srv.url)
	c.hello()
	// A user of a domain not served here.
	c.write(&wire.Login{Head: wire.Head{Tag: 5}, User: "alice@beta.example", Password: "alice pw"})
	c.expectResult(5, wire.StatusAuthFailed)
	// An unknown user: the same answer.
	c.write(&wire.Login{Head: wire.Head{Tag: 6}, User: "dave@alpha.example", Password: "x"})
	c.expectResult(6, wire.StatusAuthFailed)
	// Not an address.
	c.write(&wire.Login{Head: wire.Head{Tag: 7}, User: "not an address", Password: "x"})
	c.expectResult(7, wire.StatusBadRequest)
	// Still open: the right password works.
	c.login(alice, "alice pw", false)
}

func TestLoginToken(t *testing.T) {
	srv := startServer(t, nil)
	c := dialRaw(t, srv.url)
	c.hello()
	s := c.login(alice, "alice pw", true)

	c2 := dialRaw(t, srv.url)
	c2.hello()
	c2.write(&wire.Login{Head: wire.Head{Tag: 2}, User: alice.String(), Session: s.Session})
	if r, ok := c2.mustRead().(*wire.Session); !ok || r.User != alice.String() {
		t.Fatalf("resume: %+v", r)
	}
	// Another user's token, and a made-up token, fail.
	c3 := dialRaw(t, srv.url)
	c3.hello()
	c3.write(&wire.Login{Head: wire.Head{Tag: 2}, User: bob.String(), Session: s.Session})
	c3.expectResult(2, wire.StatusAuthFailed)
	c3.write(&wire.Login{Head: wire.Head{Tag: 3}, User: alice.String(), Session: bytes.Repeat([]byte{7}, 32)})
	c3.expectResult(3, wire.StatusAuthFailed)
	testutil.WaitFor(t, "two sessions", func() bool { return srv.h.Sessions(alice) == 2 })
}

// TestBeforeLogin: before LOGIN only HELLO, LOGIN, PING and CLOSE are
// served.
func TestBeforeLogin(t *testing.T) {
	srv := startServer(t, nil)
	c := dialRaw(t, srv.url)
	c.hello()
	c.write(&wire.Send{Head: wire.Head{Tag: 3}, To: bob.String(), Body: "hi"})
	c.expectResult(3, wire.StatusNotAuthorized)
	c.write(&wire.Message{Head: wire.Head{Tag: 4}, From: alice.String(), To: bob.String(), ID: []byte{1}, MIME: []byte("x")})
	c.expectResult(4, wire.StatusNotAuthorized)
	c.write(&wire.Ping{Head: wire.Head{Tag: 5}, Data: []byte("p")})
	if p, ok := c.mustRead().(*wire.Pong); !ok || p.Tag != 5 {
		t.Fatalf("no PONG: %+v", p)
	}
	c.login(alice, "alice pw", false)
	// After LOGIN a server-only record is unsupported.
	c.write(&wire.Message{Head: wire.Head{Tag: 6}, From: alice.String(), To: bob.String(), ID: []byte{1}, MIME: []byte("x")})
	c.expectResult(6, wire.StatusUnsupported)
	if got := srv.router.ids.Load(); got != 0 {
		t.Errorf("the router saw %d messages", got)
	}
}

// TestDeliverToSessions: a message to a user reaches all of their sessions,
// the sender's RESULT counts them, and each session's RESULT ok is seen.
func TestDeliverToSessions(t *testing.T) {
	srv := startServer(t, nil)
	a1 := loggedIn(t, srv, alice, "alice pw")
	a2 := loggedIn(t, srv, alice, "alice pw")
	b := loggedIn(t, srv, bob, "bob pw")
	testutil.WaitFor(t, "two sessions", func() bool { return srv.h.Sessions(alice) == 2 })

	b.write(&wire.Send{Head: wire.Head{Tag: 9}, To: alice.String(), ContentType: "text/plain", Body: "Hello Alice!", ID: []byte("c1")})
	for _, a := range []*rawClient{a1, a2} {
		m, ok := a.mustRead().(*wire.Message)
		if !ok {
			t.Fatalf("no MESSAGE: %+v", m)
		}
		if m.From != bob.String() || m.To != alice.String() || !bytes.Contains(m.MIME, []byte("\r\n\r\nHello Alice!")) || m.Tag == 0 {
			t.Errorf("MESSAGE %+v", m)
		}
		a.write(&wire.Result{Head: wire.Head{Tag: m.Tag}, Code: wire.StatusOK})
	}
	r := b.expectResult(9, wire.StatusDelivered)
	if r.Count != 2 {
		t.Errorf("delivered to %d sessions, want 2", r.Count)
	}
	testutil.WaitFor(t, "two acknowledgements", func() bool { return srv.h.Stats.Acked.Load() == 2 })

	// Offline, unknown, invalid.
	b.write(&wire.Send{Head: wire.Head{Tag: 10}, To: carol.String(), Body: "x"})
	b.expectResult(10, wire.StatusOffline)
	b.write(&wire.Send{Head: wire.Head{Tag: 11}, To: "dave@alpha.example", Body: "x"})
	b.expectResult(11, wire.StatusUnknownUser)
	b.write(&wire.Send{Head: wire.Head{Tag: 12}, To: "dave", Body: "x"})
	b.expectResult(12, wire.StatusBadRequest)

	// Deliver directly, as the router does.
	n := srv.h.Deliver(context.Background(), alice, &wire.Message{From: carol.String(), To: alice.String(), ID: []byte{1}, MIME: []byte("From: carol@alpha.example\r\n\r\nx")})
	if n != 2 {
		t.Errorf("Deliver = %d, want 2", n)
	}
	if n := srv.h.Deliver(context.Background(), carol, &wire.Message{From: bob.String(), To: carol.String(), ID: []byte{1}, MIME: []byte("x")}); n != 0 {
		t.Errorf("Deliver to an offline user = %d", n)
	}
}

// TestSendsInFlight: a session may have MaxSendsInFlight SENDs waiting for
// the router; one more is answered busy without blocking the reader.
func TestSendsInFlight(t *testing.T) {
	gate := make(chan struct{})
	srv := startServer(t, func(c *Config) {
		c.MaxSendsInFlight = 2
		c.Router.(*testRouter).gate = gate
	})
	b := loggedIn(t, srv, bob, "bob pw")
	for tag := uint32(20); tag < 23; tag++ {
		b.write(&wire.Send{Head: wire.Head{Tag: tag}, To: carol.String(), Body: "x"})
	}
	b.expectResult(22, wire.StatusBusy)
	// The reader still answers.
	b.write(&wire.Ping{Head: wire.Head{Tag: 30}})
	if p, ok := b.mustRead().(*wire.Pong); !ok || p.Tag != 30 {
		t.Fatalf("no PONG: %+v", p)
	}
	gate <- struct{}{}
	gate <- struct{}{}
	got := map[uint32]bool{}
	for range 2 {
		r, ok := b.mustRead().(*wire.Result)
		if !ok || r.Code != wire.StatusOffline {
			t.Fatalf("got %+v", r)
		}
		got[r.Tag] = true
	}
	if !got[20] || !got[21] {
		t.Errorf("results for %v", got)
	}
}

// TestFraming: a WebSocket message that is not exactly one frame closes
// the connection with CLOSE protocol-error, and the frame it holds is not
// acted on.
func TestFraming(t *testing.T) {
	ping := func(tag uint32) []byte {
		b, _ := (&wire.Ping{Head: wire.Head{Tag: tag}, Data: []byte("data")}).AppendBinary(nil)
		return b
	}
	for _, tc := range []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
	}{
		{"two frames", websocket.MessageBinary, append(ping(40), ping(41)...)},
		{"trailing byte", websocket.MessageBinary, append(ping(40), 0)},
		{"truncated frame", websocket.MessageBinary, ping(40)[:wire.HeaderLen+3]},
		{"short header", websocket.MessageBinary, ping(40)[:5]},
		{"empty", websocket.MessageBinary, nil},
		{"text", websocket.MessageText, []byte("hello")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, nil)
			c := loggedIn(t, srv, alice, "alice pw")
			c.writeMsg(tc.typ, tc.msg)
			err := c.expectClose(wire.StatusProtocolError)
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Errorf("websocket closed with %v, want policy violation", err)
			}
			testutil.WaitFor(t, "the session to end", func() bool { return !srv.h.Online(alice) })
			if got := srv.h.Stats.FramingError.Load(); got != 1 {
				t.Errorf("FramingError = %d", got)
			}
		})
	}
	// During the handshake: the answer is CLOSE protocol-error too.
	t.Run("handshake", func(t *testing.T) {
		srv := startServer(t, nil)
		c := dialRaw(t, srv.url)
		b, _ := (&wire.Hello{Head: wire.Head{Tag: 1}, MinVersion: 1, MaxVersion: 1}).AppendBinary(nil)
		c.writeMsg(websocket.MessageBinary, append(b, b...))
		if err := c.expectClose(wire.StatusProtocolError); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Errorf("websocket closed with %v, want policy violation", err)
		}
	})
}

// TestFrameTooLarge: a frame over the announced limit is answered
// too-large without being buffered, and the connection goes on.
func TestFrameTooLarge(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.Link.MaxBody = 4096 })
	c := dialRaw(t, srv.url)
	c.write(&wire.Hello{Head: wire.Head{Tag: 1}, MinVersion: 1, MaxVersion: 1})
	if h, ok := c.mustRead().(*wire.Hello); !ok || h.MaxFrame != 4096 {
		t.Fatalf("HELLO %+v", h)
	}
	c.login(alice, "alice pw", false)
	c.write(&wire.Send{Head: wire.Head{Tag: 50}, To: bob.String(), Body: strings.Repeat("x", 5000)})
	c.expectResult(50, wire.StatusTooLarge)
	c.write(&wire.Ping{Head: wire.Head{Tag: 51}})
	if p, ok := c.mustRead().(*wire.Pong); !ok || p.Tag != 51 {
		t.Fatalf("no PONG after too-large: %+v", p)
	}
	c.write(&wire.Send{Head: wire.Head{Tag: 52}, To: bob.String(), Body: "fits"})
	c.expectResult(52, wire.StatusOffline)
}

// TestSubprotocolRequired: a WebSocket without imx.v1 is closed.
func TestSubprotocolRequired(t *testing.T) {
	srv := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, _, err = ws.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("read: %v, want a policy-violation close", err)
	}
}

// TestSlowConsumer: a session that does not acknowledge its messages is
// not counted once over MaxUnacked, and is closed with busy.
func TestSlowConsumer(t *testing.T) {
	srv := startServer(t, func(c *Config) { c.MaxUnacked = 2 })
	a := loggedIn(t, srv, alice, "alice pw")
	testutil.WaitFor(t, "alice", func() bool { return srv.h.Online(alice) })
	m := &wire.Message{From: bob.String(), To: alice.String(), ID: []byte{1}, MIME: []byte("x")}
	for i, want := range []int{1, 1, 0} {
		if n := srv.h.Deliver(context.Background(), alice, m); n != want {
			t.Errorf("Deliver %d = %d, want %d", i, n, want)
		}
	}
	a.expectClosed(wire.StatusBusy)
	if got := srv.h.Stats.SlowConsumers.Load(); got != 1 {
		t.Errorf("SlowConsumers = %d", got)
	}
}

// TestDisconnect: Disconnect closes every session of a user.
func TestDisconnect(t *testing.T) {
	srv := startServer(t, nil)
	a1 := loggedIn(t, srv, alice, "alice pw")
	a2 := loggedIn(t, srv, alice, "alice pw")
	testutil.WaitFor(t, "two sessions", func() bool { return srv.h.Sessions(alice) == 2 })
	if n := srv.h.Disconnect(alice, wire.StatusNotAuthorized, "password changed"); n != 2 {
		t.Errorf("Disconnect = %d", n)
	}
	a1.expectClosed(wire.StatusNotAuthorized)
	a2.expectClosed(wire.StatusNotAuthorized)
	testutil.WaitFor(t, "no sessions", func() bool { return !srv.h.Online(alice) })
}

// TestShutdown: Shutdown refuses new SENDs, lets those in flight finish
// with their results, then closes every session with shutting-down.
func TestShutdown(t *testing.T) {
	gate := make(chan struct{})
	srv := startServer(t, func(c *Config) { c.Router.(*testRouter).gate = gate })
	b := loggedIn(t, srv, bob, "bob pw")
	a := loggedIn(t, srv, alice, "alice pw")
	b.write(&wire.Send{Head: wire.Head{Tag: 60}, To: alice.String(), Body: "in flight"})
	testutil.WaitFor(t, "the SEND to reach the router", func() bool { return srv.h.Stats.Sends.Load() == 1 })

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.h.Shutdown(ctx)
	}()
	testutil.WaitFor(t, "draining", func() bool {
		srv.h.mu.Lock()
		defer srv.h.mu.Unlock()
		return srv.h.draining
	})
	b.write(&wire.Send{Head: wire.Head{Tag: 61}, To: alice.String(), Body: "late"})
	b.expectResult(61, wire.StatusShuttingDown)
	// New connections are refused.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, srv.url, &websocket.DialOptions{Subprotocols: []string{Subprotocol}}); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial during shutdown: %v", err)
	}

	gate <- struct{}{}
	m, ok := a.mustRead().(*wire.Message)
	if !ok {
		t.Fatalf("alice got %+v", m)
	}
	b.expectResult(60, wire.StatusDelivered)
	a.expectClosed(wire.StatusShuttingDown)
	b.expectClosed(wire.StatusShuttingDown)
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestShutdownForced: a Shutdown whose context ends cuts what is left.
func TestShutdownForced(t *testing.T) {
	gate := make(chan struct{})
	srv := startServer(t, func(c *Config) { c.Router.(*testRouter).gate = gate })
	b := loggedIn(t, srv, bob, "bob pw")
	b.write(&wire.Send{Head: wire.Head{Tag: 70}, To: alice.String(), Body: "stuck"})
	testutil.WaitFor(t, "the SEND to reach the router", func() bool { return srv.h.Stats.Sends.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
	for {
		if _, err := b.read(); err != nil {
			break // cut
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{Auth: newTestAuth(), Router: &testRouter{}},
		{Domains: []string{"Alpha.Example"}, Auth: newTestAuth(), Router: &testRouter{}},
		{Domains: []string{testDomain}, Router: &testRouter{}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// DeliverAcked keeps up to ackWindow MESSAGEs unacknowledged per session,
// serves the sessions side by side, and returns how many, from the first,
// some session acknowledged.
func TestDeliverAcked(t *testing.T) {
	srv := startServer(t, nil)
	a1 := loggedIn(t, srv, alice, "alice pw")
	a2 := loggedIn(t, srv, alice, "alice pw")
	testutil.WaitFor(t, "two sessions", func() bool { return srv.h.Sessions(alice) == 2 })
	msgs := func(to addr.Address, n int) []*wire.Message {
		ms := make([]*wire.Message, n)
		for i := range ms {
			ms[i] = &wire.Message{From: carol.String(), To: to.String(), ID: []byte{byte(i >> 8), byte(i)}, MIME: fmt.Appendf(nil, "From: carol@alpha.example\r\n\r\n%d", i)}
		}
		return ms
	}
	const total = 300
	got := make(chan int, 1)
	go func() { got <- srv.h.DeliverAcked(context.Background(), alice, msgs(alice, total)...) }()
	readMsg := func(c *rawClient, want int) *wire.Message {
		t.Helper()
		m, ok := c.mustRead().(*wire.Message)
		if !ok || !bytes.HasSuffix(m.MIME, fmt.Appendf(nil, "\r\n\r\n%d", want)) {
			t.Fatalf("want MESSAGE %d, got %+v", want, m)
		}
		return m
	}
	// refuseNth acknowledges the first n-1 MESSAGEs and refuses the nth.
	refuseNth := func(c *rawClient, n int) {
		t.Helper()
		for i := range n {
			m := readMsg(c, i)
			code := wire.StatusOK
			if i == n-1 {
				code = wire.StatusBadRequest
			}
			c.write(&wire.Result{Head: wire.Head{Tag: m.Tag}, Code: code})
		}
	}
	// a1 gets a whole window before it acknowledges anything.
	window := make([]*wire.Message, ackWindow)
	for i := range window {
		window[i] = readMsg(a1, i)
	}
	// a2 acknowledges ten and refuses the eleventh: its delivery stops.
	refuseNth(a2, 11)
	for _, m := range window {
		a1.write(&wire.Result{Head: wire.Head{Tag: m.Tag}, Code: wire.StatusOK})
	}
	for i := ackWindow; i < total; i++ {
		m := readMsg(a1, i)
		a1.write(&wire.Result{Head: wire.Head{Tag: m.Tag}, Code: wire.StatusOK})
	}
	select {
	case n := <-got:
		if n != total {
			t.Errorf("DeliverAcked = %d, want %d (a1 acknowledged them all)", n, total)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DeliverAcked did not return")
	}
	if a, u := srv.h.Stats.Acked.Load(), srv.h.Stats.Unacked.Load(); a != total+10 || u != 1 {
		t.Errorf("acked %d, unacked %d; want %d and 1", a, u, total+10)
	}

	// One session that refuses the sixth: five, and no more are sent
	// once the refusal is seen.
	b := loggedIn(t, srv, bob, "bob pw")
	go func() { got <- srv.h.DeliverAcked(context.Background(), bob, msgs(bob, 50)...) }()
	refuseNth(b, 6)
	select {
	case n := <-got:
		if n != 5 {
			t.Errorf("DeliverAcked = %d, want 5", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DeliverAcked did not return")
	}
	if n := srv.h.DeliverAcked(context.Background(), carol, msgs(carol, 3)...); n != 0 {
		t.Errorf("DeliverAcked to a user without sessions = %d", n)
	}
}
