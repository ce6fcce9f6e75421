package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/config"
	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/message"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// These tests run whole servers in process, each serving one domain on its
// own loopback address, published in the in-process DNS server of an
// imxtest World: real sockets, real DNS, real dial-back, real SQLite files.

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// publish points domain's _imx._tcp record at serverAddr.
func publish(dns *imxtest.DNS, domain, serverAddr string) {
	ap := netip.MustParseAddrPort(serverAddr)
	dns.SetA("imx."+domain, ap.Addr())
	dns.SetSRV(domain, imxtest.SRV{Priority: 10, Weight: 10, Port: ap.Port(), Target: "imx." + domain})
}

// startDomain runs a server for domain, listening for servers on
// serverAddr, and publishes it. prepare, if set, runs on the store before
// the server listens.
func startDomain(t *testing.T, dns *imxtest.DNS, domain, serverAddr string, logger *slog.Logger, opts Options, prepare func(store.Store)) *Server {
	t.Helper()
	ip := netip.MustParseAddrPort(serverAddr).Addr().String()
	cfg, err := config.Parse(fmt.Appendf(nil, `
data_dir = %q
[listen]
server = %q
client = "%s:0"
admin = "off"
[dns]
server = %q
[federation]
min_backoff = "20ms"
max_backoff = "200ms"
retry_for = "5s"
[[domain]]
name = %q
`, t.TempDir(), serverAddr, ip, dns.Addr(), domain))
	if err != nil {
		t.Fatal(err)
	}
	if logger == nil {
		logger = imxtest.TestLogger(t)
	}
	opts.Password = store.PasswordParams{Memory: 64, Time: 1, Threads: 1}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, logger, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(s.Store())
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", domain, err)
		}
	})
	waitFor(t, 10*time.Second, "the listeners of "+domain, func() bool { return s.Addr("server") != nil && s.Addr("client") != nil })
	publish(dns, domain, s.Addr("server").String())
	return s
}

func addUser(t *testing.T, st store.Store, a string) string {
	t.Helper()
	if err := st.CreateAccount(context.Background(), addr.MustParse(a), "password1"); err != nil {
		t.Fatal(err)
	}
	return a
}

func loginTo(t *testing.T, s *Server, user string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+s.Addr("client").String()+"/imx", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Login(ctx, user, "password1", false); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// event waits for an event of type T on c that satisfies ok, and fails the
// test if one of type T matching bad comes first.
func event[T wire.Record](t *testing.T, c *client.Client, ok, bad func(T) bool) T {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			x, is := ev.(T)
			if is && bad != nil && bad(x) {
				t.Fatalf("unwanted event before the expected one: %+v", x)
			}
			if is && ok(x) {
				return x
			}
		case <-deadline:
			var zero T
			t.Fatalf("no %T event came", zero)
			return zero
		}
	}
}

// settled makes sure that whatever the server pushed to c before now has
// reached c's Events: a request's answer comes after the records queued
// before it on the same connection. It returns those events.
func settled(t *testing.T, c *client.Client) []wire.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Contacts(ctx); err != nil {
		t.Fatal(err)
	}
	var out []wire.Record
	for {
		select {
		case ev := <-c.Events():
			out = append(out, ev)
		default:
			return out
		}
	}
}

// presenceOf returns the NOTIFYs about presentity among recs.
func presenceOf(recs []wire.Record, presentity string) []*wire.Notify {
	var out []*wire.Notify
	for _, r := range recs {
		if n, ok := r.(*wire.Notify); ok && n.Presentity == presentity {
			out = append(out, n)
		}
	}
	return out
}

func hasAttr(attrs []wire.Attr, name string) bool {
	for _, a := range attrs {
		if a.Name == name {
			return true
		}
	}
	return false
}

// code returns the status of an answer to a request sent through s2s.
func code(t *testing.T, resp wire.Record, err error) wire.Status {
	t.Helper()
	if err != nil {
		var st wire.Status
		if errors.As(err, &st) {
			return st
		}
		t.Fatalf("request failed: %v", err)
	}
	res, ok := resp.(*wire.Result)
	if !ok {
		t.Fatalf("answer %#v, want a RESULT", resp)
	}
	return res.Code
}

// federation is alpha.example (alice, dave) and beta.example (carol), two
// servers, with gamma.example, an honest s2s node of a third domain that
// sends whatever the test tells it to.
type federation struct {
	w                  *imxtest.World
	alpha, beta        *Server
	gamma              *imxtest.Node
	alice, dave, carol string
	ca, cd, cc         *client.Client
}

func newFederation(t *testing.T) *federation {
	t.Helper()
	f := &federation{w: imxtest.NewWorld(t)}
	f.alpha = startDomain(t, f.w.DNS, "alpha.example", freeAddr(t, "127.0.0.2"), nil, Options{}, nil)
	f.beta = startDomain(t, f.w.DNS, "beta.example", freeAddr(t, "127.0.0.3"), nil, Options{}, nil)
	f.gamma = f.w.StartNode(imxtest.NodeConfig{Domains: []string{"gamma.example"}, IP: netip.MustParseAddr("127.0.0.4")})
	f.alice = addUser(t, f.alpha.Store(), "alice@alpha.example")
	f.dave = addUser(t, f.alpha.Store(), "dave@alpha.example")
	f.carol = addUser(t, f.beta.Store(), "carol@beta.example")
	f.ca, f.cd, f.cc = loginTo(t, f.alpha, f.alice), loginTo(t, f.alpha, f.dave), loginTo(t, f.beta, f.carol)
	return f
}

// watch makes alice an approved watcher of carol.
func (f *federation) watch(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if res, err := f.ca.AddContact(ctx, f.carol, ""); err != nil || res.Code != wire.StatusPending {
		t.Fatalf("alice adds carol: %v %v", res, err)
	}
	event(t, f.cc, func(r *wire.Request) bool { return r.Watcher == f.alice }, nil)
	if res, err := f.cc.Approve(ctx, f.alice, true); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("carol approves alice: %v %v", res, err)
	}
	event(t, f.ca, func(n *wire.Notify) bool { return n.Presentity == f.carol && n.Presence == wire.PresenceOnline }, nil)
}

// TestSection6221Attacks runs the four attacks of §6.2.2.1 against real
// servers: each subtest fails if the protection it names is taken away.
func TestSection6221Attacks(t *testing.T) {
	// 1. Breach of presence privacy: a watcher carol did not approve, and
	// a third domain claiming to be a watcher she did approve, get
	// neither presence nor attributes. Protections: approval before a
	// subscription is active (presence), UserAttrs only for approved
	// watchers, s2s refusing a sender domain not authenticated on the
	// connection.
	t.Run("PresencePrivacy", func(t *testing.T) {
		f := newFederation(t)
		f.watch(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if res, err := f.cd.AddContact(ctx, f.carol, ""); err != nil || res.Code != wire.StatusPending {
			t.Fatalf("dave adds carol: %v %v", res, err)
		}
		event(t, f.cc, func(r *wire.Request) bool { return r.Watcher == f.dave }, nil)
		if _, err := f.cc.SetPresence(ctx, wire.PresenceBusy, "secret meeting"); err != nil {
			t.Fatal(err)
		}
		event(t, f.ca, func(n *wire.Notify) bool { return n.Presentity == f.carol && n.Presence == wire.PresenceBusy }, nil)
		f.beta.presence.Wait() // every NOTIFY carol's change made has its answer
		for _, n := range presenceOf(settled(t, f.cd), f.carol) {
			if n.Presence != wire.PresenceOffline || n.Status != "" {
				t.Errorf("dave, not approved, got carol's presence %v %q", n.Presence, n.Status)
			}
		}
		attrs, err := f.cd.Attributes(ctx, f.carol)
		if err != nil || hasAttr(attrs, "presence") || hasAttr(attrs, "status") {
			t.Errorf("dave's whois of carol: %v %v", attrs, err)
		}
		if attrs, err := f.ca.Attributes(ctx, f.carol); err != nil || !hasAttr(attrs, "presence") {
			t.Fatalf("alice, approved, does not see carol's attributes (%v %v): the test proves nothing", attrs, err)
		}

		// gamma claims to be alice, whom carol approved.
		resp, err := f.gamma.Server.Request(ctx, "gamma.example", "beta.example", &wire.GetAttrs{Requester: f.alice, Target: f.carol})
		if attrs, ok := resp.(*wire.Attrs); ok {
			t.Fatalf("gamma, claiming alice, got carol's attributes %v", attrs.Attrs)
		}
		if c := code(t, resp, err); c != wire.StatusNotAuthorized {
			t.Errorf("GET-ATTRIBUTES as alice from gamma: %v, want not-authorized", c)
		}
		resp, err = f.gamma.Server.Request(ctx, "gamma.example", "beta.example", &wire.Subscribe{Watcher: f.alice, Presentity: f.carol, Expires: 600})
		if res, ok := resp.(*wire.Result); ok && res.Presence != 0 {
			t.Fatalf("gamma, claiming alice, got carol's presence %v", res.Presence)
		}
		if c := code(t, resp, err); c != wire.StatusNotAuthorized {
			t.Errorf("SUBSCRIBE as alice from gamma: %v, want not-authorized", c)
		}
		// gamma as itself: a request to approve, nothing more.
		resp, err = f.gamma.Server.Request(ctx, "gamma.example", "beta.example", &wire.Subscribe{Watcher: "mallory@gamma.example", Presentity: f.carol, Expires: 600})
		if res, ok := resp.(*wire.Result); !ok || err != nil || res.Code != wire.StatusPending || res.Presence != 0 || len(res.Attrs) != 0 {
			t.Errorf("SUBSCRIBE from gamma as mallory: %#v %v, want pending and nothing else", resp, err)
		}
		resp, err = f.gamma.Server.Request(ctx, "gamma.example", "beta.example", &wire.GetAttrs{Requester: "mallory@gamma.example", Target: f.carol})
		if a, ok := resp.(*wire.Attrs); !ok || err != nil || len(a.Attrs) != 0 {
			t.Errorf("GET-ATTRIBUTES from gamma as mallory: %#v %v, want no attributes", resp, err)
		}
		active, err := f.beta.Store().ActiveSubsIn(ctx, addr.MustParse(f.carol), time.Now())
		if err != nil || len(active) != 1 || active[0].Watcher.String() != f.alice {
			t.Errorf("carol's active subscriptions: %+v %v, want alice's only", active, err)
		}
	})

	// 2. False presence: presence of carol from a domain that is not
	// carol's is refused at s2s (not-authorized), and presence from
	// carol's domain for a subscription alpha does not hold is answered
	// not-subscribed; neither reaches a client.
	t.Run("FalsePresence", func(t *testing.T) {
		f := newFederation(t)
		f.watch(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		forged := func(presentity, watcher string) *wire.Notify {
			return &wire.Notify{Presentity: presentity, Watchers: []string{watcher}, Presence: wire.PresenceAway, Status: "forged"}
		}
		resp, err := f.gamma.Server.Request(ctx, "gamma.example", "alpha.example", forged(f.carol, f.alice))
		if c := code(t, resp, err); c != wire.StatusNotAuthorized {
			t.Errorf("NOTIFY about carol from gamma: %v, want not-authorized", c)
		}
		resp, err = f.beta.S2S().Request(ctx, "beta.example", "alpha.example", forged(f.carol, f.dave))
		if c := code(t, resp, err); c != wire.StatusNotSubscribed {
			t.Errorf("NOTIFY about carol to dave, who did not subscribe: %v, want not-subscribed", c)
		}
		resp, err = f.beta.S2S().Request(ctx, "beta.example", "alpha.example", forged("ghost@beta.example", f.alice))
		if c := code(t, resp, err); c != wire.StatusNotSubscribed {
			t.Errorf("NOTIFY about a user alice does not watch: %v, want not-subscribed", c)
		}
		// carol's real change comes after the forged ones: alice sees it,
		// and nothing forged before it.
		if _, err := f.cc.SetPresence(ctx, wire.PresenceAway, "real"); err != nil {
			t.Fatal(err)
		}
		event(t, f.ca, func(n *wire.Notify) bool { return n.Status == "real" }, func(n *wire.Notify) bool { return n.Status == "forged" })
		for _, ev := range settled(t, f.cd) {
			if n, ok := ev.(*wire.Notify); ok {
				t.Errorf("dave got a NOTIFY: %+v", n)
			}
		}
	})

	// 3. Spoofed sender: a MESSAGE or SUBSCRIBE whose sender's domain is
	// not the domain authenticated on the connection is refused at s2s,
	// and nothing reaches carol.
	t.Run("SpoofedSender", func(t *testing.T) {
		f := newFederation(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		from, to := addr.MustParse(f.alice), addr.MustParse(f.carol)
		mime, err := message.Build(message.Draft{From: from, To: to, Body: "forged", ID: []byte("forged-1")}, 0)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := f.gamma.Server.Request(ctx, "gamma.example", "beta.example", &wire.Message{From: f.alice, To: f.carol, ID: []byte("forged-1"), MIME: mime})
		if c := code(t, resp, err); c != wire.StatusNotAuthorized {
			t.Errorf("MESSAGE from alice sent by gamma: %v, want not-authorized", c)
		}
		resp, err = f.gamma.Server.Request(ctx, "gamma.example", "beta.example", &wire.Subscribe{Watcher: f.dave, Presentity: f.carol, Expires: 600})
		if c := code(t, resp, err); c != wire.StatusNotAuthorized {
			t.Errorf("SUBSCRIBE of dave sent by gamma: %v, want not-authorized", c)
		}
		// The real alice writes after the forgery: hers is the first
		// message carol gets.
		if res, err := f.ca.Send(ctx, f.carol, "text/plain", "real"); err != nil || res.Code != wire.StatusDelivered {
			t.Fatalf("alice → carol: %v %v", res, err)
		}
		select {
		case m := <-f.cc.Messages():
			if m.From != f.alice || m.Body != "real" {
				t.Errorf("carol's first message: %q from %s, want alice's real one", m.Body, m.From)
			}
		case <-ctx.Done():
			t.Fatal("carol got no message")
		}
		for _, ev := range settled(t, f.cc) {
			if r, ok := ev.(*wire.Request); ok {
				t.Errorf("carol was asked by a forged SUBSCRIBE: %+v", r)
			}
		}
		if _, err := f.beta.Store().GetApproval(ctx, to, addr.MustParse(f.dave)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("beta recorded a request from dave: %v", err)
		}
	})

	// 4. Stolen data: a connection that claims alpha.example fails
	// dial-back (beta verifies the claim through alpha's own IMX record),
	// and nothing meant for alpha — messages, presence — is ever sent on
	// it, although it stays open and is the first connection beta has
	// that names alpha.
	t.Run("StolenData", func(t *testing.T) {
		f := newFederation(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		thief := imxtest.DialRaw(t, f.beta.Addr("server").String())
		thief.Send(&wire.DBToken{Head: wire.Head{Tag: 5}, From: "alpha.example", To: "beta.example", Token: []byte("not alpha's token")})
		rec := thief.Recv()
		if o, ok := rec.(*wire.DBOutcome); !ok || o.Tag != 5 || o.Code == wire.StatusOK {
			t.Fatalf("thief's dial-back: %#v, want a failed DB-OUTCOME", rec)
		}
		// Now beta has things to send to alpha.
		if res, err := f.cc.Send(ctx, f.alice, "text/plain", "for alice only"); err != nil || res.Code != wire.StatusDelivered {
			t.Fatalf("carol → alice: %v %v", res, err)
		}
		if m := <-f.ca.Messages(); m.Body != "for alice only" {
			t.Errorf("alice got %q", m.Body)
		}
		f.watch(t) // beta sends alice carol's presence
		if _, err := f.cc.SetPresence(ctx, wire.PresenceAway, "for alice only"); err != nil {
			t.Fatal(err)
		}
		event(t, f.ca, func(n *wire.Notify) bool { return n.Status == "for alice only" }, nil)
		f.beta.presence.Wait()
		// PING: beta answers it on the thief's connection after anything
		// it had sent there before.
		thief.Send(&wire.Ping{Head: wire.Head{Tag: 77}})
		for {
			rec := thief.Recv()
			if p, ok := rec.(*wire.Pong); ok && p.Tag == 77 {
				break
			}
			if _, ok := rec.(*wire.Ping); ok {
				continue
			}
			t.Errorf("the thief's connection received %s: %#v", rec.Type(), rec)
		}
		if n := f.beta.S2S().Stats.AuthFailed.Load(); n == 0 {
			t.Error("beta counted no failed dial-back")
		}
	})
}

// countingHandler counts the log records whose message starts with prefix.
type countingHandler struct {
	slog.Handler
	prefix string
	n      *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	if h.Handler.Enabled(ctx, r.Level) {
		return h.Handler.Handle(ctx, r)
	}
	return nil
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.prefix, h.n}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(name), h.prefix, h.n}
}

// TestPresenceRetryUnreachable: beta is down when alice adds carol; alpha
// keeps subscribing again while alice stays online, and when beta comes up
// alice sees carol's presence without logging in again.
func TestPresenceRetryUnreachable(t *testing.T) {
	w := imxtest.NewWorld(t)
	betaAddr := freeAddr(t, "127.0.0.3")
	publish(w.DNS, "beta.example", betaAddr) // published, nobody listening
	var failures atomic.Int64
	logger := slog.New(countingHandler{imxtest.TestLogger(t).Handler(), "subscribe failed", &failures})
	alpha := startDomain(t, w.DNS, "alpha.example", freeAddr(t, "127.0.0.2"), logger, Options{PresenceRetry: 100 * time.Millisecond}, nil)
	alice, carol := addUser(t, alpha.Store(), "alice@alpha.example"), "carol@beta.example"
	ca := loginTo(t, alpha, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if res, err := ca.AddContact(ctx, carol, "Carol"); err != nil || res.Code != wire.StatusUnreachable {
		t.Fatalf("alice adds carol while beta is down: %v %v, want unreachable", res, err)
	}
	// Retried while beta stays down.
	waitFor(t, 10*time.Second, "two failed retries", func() bool { return failures.Load() >= 3 })

	// beta comes up, where carol approved alice before.
	beta := startDomain(t, w.DNS, "beta.example", betaAddr, nil, Options{}, func(st store.Store) {
		addUser(t, st, carol)
		err := st.SetApproval(context.Background(), store.Approval{Presentity: addr.MustParse(carol), Watcher: addr.MustParse(alice), State: store.ApprovalApproved, Asked: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	})
	cc := loginTo(t, beta, carol)
	if _, err := cc.SetPresence(ctx, wire.PresenceAway, "back"); err != nil {
		t.Fatal(err)
	}
	n := event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceAway }, nil)
	if n.Status != "back" {
		t.Errorf("status %q", n.Status)
	}
	list, err := ca.Contacts(ctx)
	if err != nil || len(list) != 1 || list[0] != carol+" approved Carol" {
		t.Errorf("alice's contacts: %q %v", list, err)
	}
}
