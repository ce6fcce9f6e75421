package router_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/router"
	"github.com/imxproject/imx/s2s"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/sqlite"
	"github.com/imxproject/imx/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sessions is a real, in-process local delivery target: users with a
// number of open sessions, and the messages each received.
type sessions struct {
	mu   sync.Mutex
	open map[addr.Address]int
	got  map[addr.Address][]*wire.Message
}

func newSessions() *sessions {
	return &sessions{open: map[addr.Address]int{}, got: map[addr.Address][]*wire.Message{}}
}

func (s *sessions) Deliver(_ context.Context, to addr.Address, m *wire.Message) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.open[to]
	if n > 0 {
		kept := &wire.Message{From: m.From, To: m.To, ID: append([]byte(nil), m.ID...), MIME: append([]byte(nil), m.MIME...)}
		s.got[to] = append(s.got[to], kept)
	}
	return n
}

func (s *sessions) login(a addr.Address, n int) {
	s.mu.Lock()
	s.open[a] = n
	s.mu.Unlock()
}

func (s *sessions) received(a addr.Address) []*wire.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*wire.Message(nil), s.got[a]...)
}

// domain is one IMX domain of a test: a router, its SQLite store, its local
// sessions and its s2s node, all real.
type domain struct {
	name     string
	router   *router.Router
	store    *sqlite.Store
	sessions *sessions
	node     *imxtest.Node
	outbox   *countingOutbox
}

// countingOutbox is the real store's outbox, counting the entries put.
type countingOutbox struct {
	*sqlite.Store
	puts atomic.Int64
}

func (o *countingOutbox) PutOutbox(ctx context.Context, e store.OutboxEntry) error {
	o.puts.Add(1)
	return o.Store.PutOutbox(ctx, e)
}

func startDomain(t *testing.T, w *imxtest.World, name string, policy router.Policy) *domain {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "imx.db"), sqlite.Options{Password: store.PasswordParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := &domain{name: name, store: st, sessions: newSessions(), outbox: &countingOutbox{Store: st}}
	var rt *router.Router
	d.node = w.StartNode(imxtest.NodeConfig{Domains: []string{name}, Handler: s2s.HandlerFunc(func(ctx context.Context, in s2s.Inbound) wire.Record {
		if m, ok := in.Record.(*wire.Message); ok {
			return rt.Receive(ctx, in.From, in.To, m)
		}
		return &wire.Result{Code: wire.StatusUnsupported}
	})})
	rt, err = router.New(router.Config{
		Domains:  map[string]router.Policy{name: policy},
		Local:    d.sessions,
		Remote:   d.node.Server,
		Users:    st,
		Dedup:    st,
		Outbox:   d.outbox,
		Offline:  st,
		Blocks:   st,
		RetryFor: 300 * time.Millisecond,
		Logger:   imxtest.TestLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	d.router = rt
	t.Cleanup(rt.Wait) // runs before the store closes (cleanups run last first)
	return d
}

func (d *domain) user(t *testing.T, local string) addr.Address {
	t.Helper()
	a := addr.MustParse(local + "@" + d.name)
	if err := d.store.CreateAccount(context.Background(), a, "pw"); err != nil {
		t.Fatal(err)
	}
	return a
}

var open = router.Policy{MaxMessageSize: 64 << 10, RateLimit: 6000, RateBurst: 1000, OfflineLimit: 2}

func send(t *testing.T, d *domain, from addr.Address, to, body string) *wire.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.router.Send(ctx, from, &wire.Send{To: to, Body: body})
}

func expect(t *testing.T, res *wire.Result, code wire.Status, count uint32) {
	t.Helper()
	if res.Code != code || res.Count != count {
		t.Fatalf("result %v (count %d, %q), want %v (count %d)", res.Code, res.Count, res.Text, code, count)
	}
}

func TestLocalDeliveryStaysLocal(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := startDomain(t, w, "alpha.example", open)
	alice, bob := alpha.user(t, "alice"), alpha.user(t, "bob")
	alpha.sessions.login(bob, 2)

	expect(t, send(t, alpha, alice, "bob@alpha.example", "hi"), wire.StatusDelivered, 2)
	got := alpha.sessions.received(bob)
	if len(got) != 1 || !strings.Contains(string(got[0].MIME), "\r\n\r\nhi") || !strings.Contains(string(got[0].MIME), "From: alice@alpha.example\r\n") {
		t.Fatalf("bob got %+v", got)
	}
	if n := len(alpha.node.Server.Conns()); n != 0 {
		t.Errorf("local delivery opened %d server connections", n)
	}
	expect(t, send(t, alpha, alice, "nobody@alpha.example", "hi"), wire.StatusUnknownUser, 0)
	expect(t, send(t, alpha, alice, "not an address", "hi"), wire.StatusBadRequest, 0)
}

func TestRemoteDelivery(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := startDomain(t, w, "alpha.example", open)
	beta := startDomain(t, w, "beta.example", open)
	alice, bob := alpha.user(t, "alice"), beta.user(t, "bob")
	beta.sessions.login(bob, 1)

	expect(t, send(t, alpha, alice, "bob@beta.example", "hello across"), wire.StatusDelivered, 1)
	got := beta.sessions.received(bob)
	if len(got) != 1 || got[0].From != "alice@alpha.example" || !strings.Contains(string(got[0].MIME), "hello across") {
		t.Fatalf("bob got %+v", got)
	}
	expect(t, send(t, beta, bob, "alice@alpha.example", "back"), wire.StatusOffline, 0)
	expect(t, send(t, alpha, alice, "carol@beta.example", "?"), wire.StatusUnknownUser, 0)
	if n, _ := alpha.store.CountOutbox(context.Background()); n != 0 {
		t.Errorf("%d messages left in the outbox", n)
	}
	// Each had its final result at the first attempt: the fast path
	// writes nothing to the outbox.
	if n := alpha.outbox.puts.Load(); n != 0 {
		t.Errorf("%d outbox writes for messages answered at once", n)
	}
}

func TestOfflineStored(t *testing.T) {
	w := imxtest.NewWorld(t)
	p := open
	p.OfflineMessages = true
	alpha := startDomain(t, w, "alpha.example", p)
	alice, bob := alpha.user(t, "alice"), alpha.user(t, "bob")
	expect(t, send(t, alpha, alice, "bob@alpha.example", "1"), wire.StatusStored, 0)
	expect(t, send(t, alpha, alice, "bob@alpha.example", "2"), wire.StatusStored, 0)
	// The box holds 2: the third is refused as offline.
	expect(t, send(t, alpha, alice, "bob@alpha.example", "3"), wire.StatusOffline, 0)
	if n, _ := alpha.store.CountOffline(context.Background(), bob); n != 2 {
		t.Errorf("%d offline messages, want 2", n)
	}
}

func TestTooLarge(t *testing.T) {
	w := imxtest.NewWorld(t)
	p := open
	p.MaxMessageSize = 512
	alpha := startDomain(t, w, "alpha.example", p)
	alice := alpha.user(t, "alice")
	alpha.user(t, "bob")
	expect(t, send(t, alpha, alice, "bob@alpha.example", strings.Repeat("x", 600)), wire.StatusTooLarge, 0)
}

// TestReceiverChecksAgain: the receiving server trusts no peer: a message
// whose MIME From differs from the envelope is refused, and html-lite is
// sanitized again.
func TestReceiverChecksAgain(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := startDomain(t, w, "alpha.example", open)
	beta := startDomain(t, w, "beta.example", open)
	bob := beta.user(t, "bob")
	beta.sessions.login(bob, 1)
	ctx := context.Background()
	raw := func(from, header, ctype, body string, id byte) *wire.Result {
		mime := "From: " + header + "\r\nTo: bob@beta.example\r\nContent-Type: " + ctype + "; charset=utf-8\r\n\r\n" + body
		resp, err := alpha.node.Server.Request(ctx, "alpha.example", "beta.example", &wire.Message{From: from, To: "bob@beta.example", ID: []byte{id}, MIME: []byte(mime)})
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*wire.Result)
	}
	if res := raw("alice@alpha.example", "mallory@alpha.example", "text/plain", "x", 1); res.Code.Success() {
		t.Errorf("a From header that differs from the envelope was accepted: %v", res.Code)
	}
	res := raw("alice@alpha.example", "alice@alpha.example", "text/html-lite", `<b onclick="steal()">hi</b><script>alert(1)</script>`, 2)
	expect(t, res, wire.StatusDelivered, 1)
	got := beta.sessions.received(bob)
	body := string(got[len(got)-1].MIME)
	if strings.Contains(body, "script") || strings.Contains(body, "onclick") || !strings.Contains(body, "<b>hi</b>") {
		t.Errorf("html-lite not sanitized at the receiver: %q", body)
	}
}

// TestDuplicatesDropped: a MESSAGE sent twice with the same id is delivered
// once, and the repeat gets the first result; a client's SEND repeated with
// the same client id likewise.
func TestDuplicatesDropped(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := startDomain(t, w, "alpha.example", open)
	beta := startDomain(t, w, "beta.example", open)
	alice, bob := alpha.user(t, "alice"), beta.user(t, "bob")
	beta.sessions.login(bob, 3)
	ctx := context.Background()
	s := &wire.Send{To: "bob@beta.example", Body: "once", ID: []byte("client-1")}
	expect(t, alpha.router.Send(ctx, alice, s), wire.StatusDelivered, 3)
	again := alpha.router.Send(ctx, alice, &wire.Send{To: "bob@beta.example", Body: "once", ID: []byte("client-1")})
	expect(t, again, wire.StatusDelivered, 3)
	if n := len(beta.sessions.received(bob)); n != 1 {
		t.Errorf("bob received %d copies, want 1", n)
	}
	// Straight at the receiver: the same MESSAGE twice.
	mime := "From: alice@alpha.example\r\nTo: bob@beta.example\r\n\r\nraw"
	for range 2 {
		resp, err := alpha.node.Server.Request(ctx, "alpha.example", "beta.example", &wire.Message{From: "alice@alpha.example", To: "bob@beta.example", ID: []byte("same"), MIME: []byte(mime)})
		if err != nil {
			t.Fatal(err)
		}
		expect(t, resp.(*wire.Result), wire.StatusDelivered, 3)
	}
	if n := len(beta.sessions.received(bob)); n != 2 {
		t.Errorf("bob received %d messages, want 2", n)
	}
}

func TestRateLimited(t *testing.T) {
	w := imxtest.NewWorld(t)
	p := open
	p.RateLimit, p.RateBurst = 1, 3
	alpha := startDomain(t, w, "alpha.example", p)
	alice, bob := alpha.user(t, "alice"), alpha.user(t, "bob")
	alpha.sessions.login(bob, 1)
	for range 3 {
		expect(t, send(t, alpha, alice, "bob@alpha.example", "x"), wire.StatusDelivered, 1)
	}
	expect(t, send(t, alpha, alice, "bob@alpha.example", "x"), wire.StatusRateLimited, 0)
}

func TestUnreachable(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := startDomain(t, w, "alpha.example", open)
	alice := alpha.user(t, "alice")
	w.DNS.SetNoService("nowhere.example")
	expect(t, send(t, alpha, alice, "x@nowhere.example", "?"), wire.StatusNoService, 0)
	// A domain whose server is down: retried, then unreachable.
	w.DNS.SetA("down.imxtest", alpha.node.Addr.Addr())
	w.DNS.SetSRV("down.example", imxtest.SRV{Priority: 1, Port: 1, Target: "down.imxtest"})
	// While it is retried, the message is in the outbox (a restart would
	// send it).
	held := make(chan int, 1)
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if n, _ := alpha.store.CountOutbox(context.Background()); n > 0 {
				held <- n
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		held <- 0
	}()
	expect(t, send(t, alpha, alice, "x@down.example", "?"), wire.StatusUnreachable, 0)
	if n := <-held; n != 1 {
		t.Errorf("the outbox held %d messages during the retries, want 1", n)
	}
	if n, _ := alpha.store.CountOutbox(context.Background()); n != 0 {
		t.Errorf("%d messages left in the outbox after their final result", n)
	}
}

// TestResendAfterRestart: a message left in the outbox (the sender's server
// died before the result) is sent by Resend, and delivered once.
func TestResendAfterRestart(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := startDomain(t, w, "alpha.example", open)
	beta := startDomain(t, w, "beta.example", open)
	alice, bob := alpha.user(t, "alice"), beta.user(t, "bob")
	beta.sessions.login(bob, 1)
	ctx := context.Background()
	mime := "From: alice@alpha.example\r\nTo: bob@beta.example\r\n\r\nleft over"
	earlier := time.Now().Add(-time.Minute) // left by a run before this router started
	if err := alpha.store.PutOutbox(ctx, store.OutboxEntry{ID: []byte("left"), From: alice, To: bob, MIME: []byte(mime), Created: earlier, NextAttempt: earlier}); err != nil {
		t.Fatal(err)
	}
	if err := alpha.router.Resend(ctx); err != nil {
		t.Fatal(err)
	}
	if got := beta.sessions.received(bob); len(got) != 1 || !strings.Contains(string(got[0].MIME), "left over") {
		t.Fatalf("bob got %+v", got)
	}
	if n, _ := alpha.store.CountOutbox(ctx); n != 0 {
		t.Errorf("outbox still holds %d", n)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := router.New(router.Config{}); err == nil || !errors.Is(err, err) {
		t.Error("a router without domains was made")
	}
}
