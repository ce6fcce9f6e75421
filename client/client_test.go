package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/c2s"
	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a real in-process server for the domain alpha.example: the c2s
// Handler, an in-memory Authenticator, and a router that delivers through
// the handler's registry.
type backend struct {
	h   *c2s.Handler
	url string

	mu        sync.Mutex
	passwords map[string]string
	tokens    map[string]addr.Address
}

func (b *backend) Login(ctx context.Context, c c2s.Credentials) (c2s.Grant, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.Password != "" {
		if pw, ok := b.passwords[c.User.String()]; !ok || pw != c.Password {
			return c2s.Grant{}, wire.StatusAuthFailed
		}
	} else if u, ok := b.tokens[string(c.Token)]; !ok || u != c.User {
		return c2s.Grant{}, wire.StatusAuthFailed
	}
	if !c.Remember {
		return c2s.Grant{}, nil
	}
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	b.tokens[string(tok)] = c.User
	return c2s.Grant{Token: tok, TTL: time.Hour}, nil
}

func (b *backend) Send(ctx context.Context, from addr.Address, s *wire.Send) *wire.Result {
	to, err := addr.Parse(s.To)
	if err != nil {
		return &wire.Result{Code: wire.StatusBadRequest}
	}
	b.mu.Lock()
	_, known := b.passwords[to.String()]
	b.mu.Unlock()
	if !known {
		return &wire.Result{Code: wire.StatusUnknownUser, Text: "no such user"}
	}
	ct := s.ContentType
	if ct == "" {
		ct = "text/plain"
	}
	mime := fmt.Sprintf("From: %s\r\nTo: %s\r\nDate: %s\r\nContent-Type: %s; charset=utf-8\r\nX-Test: yes\r\n\r\n%s",
		from, to, time.Now().Format(time.RFC1123Z), ct, s.Body)
	n := b.h.Deliver(ctx, to, &wire.Message{From: from.String(), To: to.String(), ID: s.ID, MIME: []byte(mime)})
	if n == 0 {
		return &wire.Result{Code: wire.StatusOffline}
	}
	return &wire.Result{Code: wire.StatusDelivered, Count: uint32(n)}
}

func startBackend(t testing.TB) *backend {
	t.Helper()
	b := &backend{
		passwords: map[string]string{"alice@alpha.example": "alice pw", "bob@alpha.example": "bob pw", "carol@alpha.example": "carol pw"},
		tokens:    map[string]addr.Address{},
	}
	h, err := c2s.New(c2s.Config{Domains: []string{"alpha.example"}, Auth: b, Router: b})
	if err != nil {
		t.Fatal(err)
	}
	b.h = h
	mux := http.NewServeMux()
	mux.Handle(c2s.Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = h.Close()
		srv.Close()
	})
	b.url = srv.URL
	return b
}

func dial(t testing.TB, b *backend) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, b.url, &Options{Software: "client-test/1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func receive(t *testing.T, c *Client) Incoming {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatal("Messages closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return Incoming{}
	}
}

func TestSendAndReceive(t *testing.T) {
	b := startBackend(t)
	ctx := testCtx(t)
	alice, bob := dial(t, b), dial(t, b)
	s, err := alice.Login(ctx, "Alice@alpha.example", "alice pw", false)
	if err != nil {
		t.Fatal(err)
	}
	if s.User != "alice@alpha.example" || s.ID == "" || s.Token != nil {
		t.Errorf("session %+v", s)
	}
	if _, err := bob.Login(ctx, "bob@alpha.example", "bob pw", false); err != nil {
		t.Fatal(err)
	}
	res, err := bob.Send(ctx, "alice@alpha.example", "", "Hello Alice!\nSecond line.")
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != wire.StatusDelivered || res.Count != 1 || res.Err() != nil {
		t.Errorf("result %+v", res)
	}
	m := receive(t, alice)
	if m.From != "bob@alpha.example" || m.To != "alice@alpha.example" || m.ContentType != "text/plain" ||
		m.Body != "Hello Alice!\nSecond line." || m.Date.IsZero() || m.Header.Get("X-Test") != "yes" || len(m.ID) != 16 {
		t.Errorf("incoming %+v", m)
	}
	testutil.WaitFor(t, "the acknowledgement", func() bool { return b.h.Stats.Acked.Load() == 1 })

	// html-lite, and a message id chosen by the caller.
	sm := &wire.Send{To: "alice@alpha.example", ContentType: "text/html-lite", Body: "<b>hi</b>", ID: []byte("retry-1")}
	if res, err := bob.SendMessage(ctx, sm); err != nil || res.Code != wire.StatusDelivered {
		t.Fatalf("SendMessage: %+v, %v", res, err)
	}
	if m := receive(t, alice); m.ContentType != "text/html-lite" || m.Body != "<b>hi</b>" || string(m.ID) != "retry-1" {
		t.Errorf("incoming %+v", m)
	}
	// Results that are failures come back as results.
	if res, err := bob.Send(ctx, "carol@alpha.example", "", "x"); err != nil || res.Code != wire.StatusOffline || !errors.Is(res.Err(), wire.StatusOffline) {
		t.Errorf("to an offline user: %+v, %v", res, err)
	}
	if res, err := bob.Send(ctx, "dave@alpha.example", "", "x"); err != nil || res.Code != wire.StatusUnknownUser {
		t.Errorf("to an unknown user: %+v, %v", res, err)
	}
	if err := alice.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestResume(t *testing.T) {
	b := startBackend(t)
	ctx := testCtx(t)
	c := dial(t, b)
	s, err := c.Login(ctx, "alice@alpha.example", "alice pw", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Token) != 32 || s.Expires != time.Hour {
		t.Fatalf("session %+v", s)
	}
	c2 := dial(t, b)
	if _, err := c2.Resume(ctx, "alice@alpha.example", s.Token); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	testutil.WaitFor(t, "two sessions", func() bool { return b.h.Sessions(addr.MustParse("alice@alpha.example")) == 2 })
	c3 := dial(t, b)
	if _, err := c3.Resume(ctx, "bob@alpha.example", s.Token); !errors.Is(err, wire.StatusAuthFailed) {
		t.Errorf("Resume with alice's token as bob: %v", err)
	}
}

// TestLoginFailures: three failed logins end the connection; the client
// reports why.
func TestLoginFailures(t *testing.T) {
	b := startBackend(t)
	ctx := testCtx(t)
	c := dial(t, b)
	for range 3 {
		if _, err := c.Login(ctx, "alice@alpha.example", "wrong", false); !errors.Is(err, wire.StatusAuthFailed) {
			t.Fatalf("Login: %v", err)
		}
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("connection still open")
	}
	if err := c.Err(); !errors.Is(err, ErrClosed) || !errors.Is(err, wire.StatusAuthFailed) {
		t.Errorf("Err: %v", err)
	}
	if _, err := c.Login(ctx, "alice@alpha.example", "alice pw", false); !errors.Is(err, ErrClosed) {
		t.Errorf("Login after the end: %v", err)
	}
	if _, ok := <-c.Messages(); ok {
		t.Error("Messages not closed")
	}
}

// TestServerShutdown: the server's CLOSE shutting-down ends the client's
// connection, after the messages that came before it are handed over.
func TestServerShutdown(t *testing.T) {
	b := startBackend(t)
	ctx := testCtx(t)
	alice, bob := dial(t, b), dial(t, b)
	if _, err := alice.Login(ctx, "alice@alpha.example", "alice pw", false); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Login(ctx, "bob@alpha.example", "bob pw", false); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice@alpha.example", "", "before the end"); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-alice.Done()
	if err := alice.Err(); !errors.Is(err, wire.StatusShuttingDown) {
		t.Errorf("Err: %v", err)
	}
	if m := receive(t, alice); m.Body != "before the end" {
		t.Errorf("message %+v", m)
	}
	if _, ok := <-alice.Messages(); ok {
		t.Error("Messages not closed")
	}
	if _, err := bob.Send(ctx, "alice@alpha.example", "", "late"); !errors.Is(err, ErrClosed) || !errors.Is(err, wire.StatusShuttingDown) {
		t.Errorf("Send after shutdown: %v", err)
	}
}

// aliceAndBob logs alice in with opts, and bob with the defaults.
func aliceAndBob(t *testing.T, b *backend, opts *Options) (alice, bob *Client) {
	t.Helper()
	ctx := testCtx(t)
	alice, err := Dial(ctx, b.url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = alice.Close() })
	bob = dial(t, b)
	if _, err := alice.Login(ctx, "alice@alpha.example", "alice pw", false); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Login(ctx, "bob@alpha.example", "bob pw", false); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// TestMessagesNotRead: messages wait for the reader up to MessageBuffer;
// more are refused busy, and the server does not count them as
// acknowledged.
func TestMessagesNotRead(t *testing.T) {
	b := startBackend(t)
	ctx := testCtx(t)
	alice, bob := aliceAndBob(t, b, &Options{MessageBuffer: 1})
	// alice reads nothing yet: her client stops reading from the server
	// when its one-message buffer is full, and refuses nothing.
	for i := range 4 {
		if _, err := bob.Send(ctx, "alice@alpha.example", "", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	var bodies []string
	for range 4 {
		select {
		case m := <-alice.Messages():
			bodies = append(bodies, m.Body)
		case <-ctx.Done():
			t.Fatalf("received only %q", bodies)
		}
	}
	if strings.Join(bodies, ",") != "0,1,2,3" {
		t.Errorf("received %q, want all four in order", bodies)
	}
	testutil.WaitFor(t, "every message acknowledged", func() bool { return b.h.Stats.Acked.Load() == 4 })
	if n := b.h.Stats.Unacked.Load(); n != 0 {
		t.Errorf("%d messages refused or unacknowledged", n)
	}
}

func TestDialErrors(t *testing.T) {
	ctx := testCtx(t)
	for _, u := range []string{"ftp://x", "http://", "::"} {
		if _, err := Dial(ctx, u, nil); err == nil {
			t.Errorf("Dial(%q) succeeded", u)
		}
	}
	// A web server that is not an imx server.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := Dial(ctx, srv.URL, nil); err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Errorf("Dial to a plain web server: %v", err)
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:7480":      "http://127.0.0.1:7480/imx",
		"https://imx.example/":       "https://imx.example/imx",
		"ws://imx.example/other/imx": "ws://imx.example/other/imx",
	} {
		u, err := endpoint(in)
		if err != nil || u.String() != want {
			t.Errorf("endpoint(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
}

func TestParseIncoming(t *testing.T) {
	m := parseIncoming(&wire.Message{From: "a@x.example", To: "b@x.example", ID: []byte{1}, MIME: []byte("not a mime message")})
	if m.Header != nil || m.Body != "not a mime message" {
		t.Errorf("unparsable MIME: %+v", m)
	}
	m = parseIncoming(&wire.Message{MIME: []byte("From: a@x.example\r\nContent-Type: Text/Plain; charset=utf-8\r\n\r\nhi\r\n")})
	if m.ContentType != "text/plain" || m.Body != "hi\r\n" || !m.Date.IsZero() {
		t.Errorf("parsed %+v", m)
	}
	for _, d := range []string{"Thu, 26 Nov 2026 10:04:05 +0100", "26 Nov 2026 09:04:05 GMT", "Thu, 26 Nov 2026 09:04:05 UTC"} {
		if got := parseDate(d); !got.Equal(time.Date(2026, 11, 26, 9, 4, 5, 0, time.UTC)) {
			t.Errorf("parseDate(%q) = %v", d, got)
		}
	}
	if !parseDate("yesterday").IsZero() {
		t.Error("parseDate of junk is not zero")
	}
}

// TestNewMessageIDOrdered: ids start with the time in milliseconds, so
// that later ids sort after earlier ones (the servers' dedup indexes grow
// at their end), and differ in the rest.
func TestNewMessageIDOrdered(t *testing.T) {
	before := time.Now().UnixMilli()
	a := NewMessageID()
	time.Sleep(2 * time.Millisecond)
	b := NewMessageID()
	ms := func(id []byte) int64 {
		var v int64
		for _, c := range id[:6] {
			v = v<<8 | int64(c)
		}
		return v
	}
	if len(a) != 16 || ms(a) < before || ms(a) > time.Now().UnixMilli() {
		t.Fatalf("id %x: time %d, want about %d", a, ms(a), before)
	}
	if bytes.Compare(a, b) >= 0 {
		t.Errorf("later id %x sorts before %x", b, a)
	}
	if c := NewMessageID(); bytes.Equal(c[6:], a[6:]) {
		t.Error("random parts repeat")
	}
}

// Acknowledgements wait up to AckDelay to share a write: a full batch goes
// at once, Close sends what waits, and a negative delay sends each at once.
func TestAckDelay(t *testing.T) {
	b := startBackend(t)
	ctx := testCtx(t)
	alice, bob := aliceAndBob(t, b, &Options{AckDelay: time.Hour})
	sendTo := func(to string, n int) {
		t.Helper()
		for i := range n {
			if res, err := bob.Send(ctx, to, "", fmt.Sprint(i)); err != nil || res.Code != wire.StatusDelivered {
				t.Fatalf("send %d: %+v, %v", i, res, err)
			}
		}
	}
	sendTo("alice@alpha.example", 3)
	for range 3 {
		receive(t, alice)
	}
	// A PING queued now would go behind any acknowledgement queued before.
	if err := alice.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.h.Stats.Acked.Load(); n != 0 {
		t.Fatalf("%d acknowledgements sent before the delay", n)
	}
	sendTo("alice@alpha.example", maxAckBatch-3+1)
	for range maxAckBatch - 3 + 1 {
		receive(t, alice)
	}
	testutil.WaitFor(t, "a full batch acknowledged", func() bool { return b.h.Stats.Acked.Load() == maxAckBatch })
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the last one acknowledged at Close", func() bool { return b.h.Stats.Acked.Load() == maxAckBatch+1 })

	carol, err := Dial(ctx, b.url, &Options{AckDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	if _, err := carol.Login(ctx, "carol@alpha.example", "carol pw", false); err != nil {
		t.Fatal(err)
	}
	sendTo("carol@alpha.example", 1)
	receive(t, carol)
	testutil.WaitFor(t, "an acknowledgement without delay", func() bool { return b.h.Stats.Acked.Load() == maxAckBatch+2 })
	if n := b.h.Stats.Unacked.Load(); n != 0 {
		t.Errorf("%d messages unacknowledged", n)
	}
}
