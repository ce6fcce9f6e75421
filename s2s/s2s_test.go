package s2s_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/s2s"
	"github.com/imxproject/imx/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func message(from, to, text string) *wire.Message {
	return &wire.Message{From: from, To: to, ID: []byte(text), MIME: []byte("From: " + from + "\r\nTo: " + to + "\r\n\r\n" + text)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustDeliver(t *testing.T, n *imxtest.Node, local, remote string, m *wire.Message) {
	t.Helper()
	resp, err := n.Server.Request(ctx(t), local, remote, m)
	if err != nil {
		t.Fatalf("%s → %s: %v", local, remote, err)
	}
	if r, ok := resp.(*wire.Result); !ok || r.Code != wire.StatusDelivered {
		t.Fatalf("%s → %s: response %#v", local, remote, resp)
	}
}

func refusedWith(t *testing.T, resp wire.Record, err error, want wire.Status) {
	t.Helper()
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	if r, ok := resp.(*wire.Result); !ok || r.Code != want {
		t.Fatalf("response %#v, want RESULT %v", resp, want)
	}
}

// TestFederationBothWays: two domains find each other through DNS,
// authenticate once by dial-back, and exchange records in both directions;
// both connections of the dial-back carry traffic without a second
// dial-back.
func TestFederationBothWays(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})

	mustDeliver(t, alpha, "alpha.example", "beta.example", message("alice@alpha.example", "bob@beta.example", "hi bob"))
	got := beta.Recorder.WaitLen(t, 1, 5*time.Second)
	if got[0].From != "alpha.example" || got[0].To != "beta.example" || got[0].Record.(*wire.Message).From != "alice@alpha.example" {
		t.Errorf("beta received %+v", got[0])
	}
	mustDeliver(t, beta, "beta.example", "alpha.example", message("bob@beta.example", "alice@alpha.example", "hi alice"))
	alpha.Recorder.WaitLen(t, 1, 5*time.Second)

	// One dial-back, by beta as the receiving server; the reply direction
	// reused the trusted connections.
	if ok, failed := beta.Server.Stats.AuthOK.Load(), beta.Server.Stats.AuthFailed.Load(); ok != 1 || failed != 0 {
		t.Errorf("beta dial-backs: %d ok, %d failed; want 1, 0", ok, failed)
	}
	if ok := alpha.Server.Stats.AuthOK.Load(); ok != 0 {
		t.Errorf("alpha ran %d dial-backs as receiver, want 0", ok)
	}
	// Connection 1 (alpha dialled) and connection 2 (beta dialled) are
	// both authenticated for the pair.
	conns := alpha.Server.Conns()
	if len(conns) != 2 {
		t.Fatalf("alpha has %d connections, want 2: %+v", len(conns), conns)
	}
	for _, c := range conns {
		if len(c.Pairs) != 1 || c.Pairs[0] != "alpha.example beta.example" {
			t.Errorf("connection %+v: pairs %v", c, c.Pairs)
		}
	}
	// Traffic goes over either: close one and keep going without a new
	// dial-back.
	for i := range 20 {
		mustDeliver(t, alpha, "alpha.example", "beta.example", message("alice@alpha.example", "bob@beta.example", fmt.Sprint("n", i)))
	}
	if ok := beta.Server.Stats.AuthOK.Load(); ok != 1 {
		t.Errorf("beta ran %d dial-backs, want still 1", ok)
	}
}

// TestSpooferRefused: a server that claims alpha.example, while alpha's
// IMX record points elsewhere, fails dial-back, and nothing of it gets
// through.
func TestSpooferRefused(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	spoofer := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}, NoPublish: true})

	_, err := spoofer.Server.Request(ctx(t), "alpha.example", "beta.example", message("alice@alpha.example", "bob@beta.example", "forged"))
	if !errors.Is(err, s2s.ErrAuth) {
		t.Fatalf("spoofer's request: %v, want a dial-back failure", err)
	}
	if n := beta.Recorder.Len(); n != 0 {
		t.Errorf("beta accepted %d records from the spoofer", n)
	}
	if f := beta.Server.Stats.AuthFailed.Load(); f == 0 {
		t.Error("beta counted no failed dial-back")
	}
	// The real alpha is unaffected.
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("alice@alpha.example", "bob@beta.example", "real"))
	got := beta.Recorder.WaitLen(t, 1, 5*time.Second)
	if string(got[0].Record.(*wire.Message).ID) != "real" {
		t.Errorf("beta received %+v", got)
	}
}

// rawConn is imxtest's hand-driven connection, whose reads skip the
// keepalive PINGs.
type rawConn struct{ *imxtest.RawConn }

func dialRaw(t *testing.T, n *imxtest.Node) *rawConn {
	t.Helper()
	r := imxtest.DialRaw(t, n.Addr.String())
	r.SkipPings = true
	return &rawConn{r}
}

func (r *rawConn) send(rec wire.Record)                      { r.Send(rec) }
func (r *rawConn) recv() wire.Record                         { return r.Recv() }
func (r *rawConn) expectResult(tag uint32, want wire.Status) { r.ExpectResult(tag, want) }

// TestDataBeforeAuthRefused: records on a connection that has not
// authenticated their pair are refused, however they are dressed up.
func TestDataBeforeAuthRefused(t *testing.T) {
	w := imxtest.NewWorld(t)
	w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	r := dialRaw(t, beta)

	m := message("alice@alpha.example", "bob@beta.example", "early")
	m.Tag = 5
	r.send(m)
	r.expectResult(5, wire.StatusNotAuthorized)

	// An unsolicited DB-SECRET authenticates nothing.
	r.send(&wire.DBSecret{From: "alpha.example", To: "beta.example", Secret: make([]byte, 32)})
	m.Tag = 6
	r.send(m)
	r.expectResult(6, wire.StatusNotAuthorized)

	// A DB-VERIFY with a token beta never issued is refused.
	r.send(&wire.DBVerify{Head: wire.Head{Tag: 7}, From: "alpha.example", To: "beta.example", Token: make([]byte, 49), Secret: make([]byte, 32)})
	r.expectResult(7, wire.StatusNotAuthorized)
	m.Tag = 8
	r.send(m)
	r.expectResult(8, wire.StatusNotAuthorized)

	// A DB-TOKEN for alpha from this raw connection: beta dials the real
	// alpha, which does not know the token: dial-back fails.
	r.send(&wire.DBToken{Head: wire.Head{Tag: 9}, From: "alpha.example", To: "beta.example", Token: []byte("not alpha's token")})
	rec := r.recv()
	out, ok := rec.(*wire.DBOutcome)
	if !ok || out.Tag != 9 || out.Code == wire.StatusOK {
		t.Fatalf("got %#v, want a failed DB-OUTCOME", rec)
	}
	m.Tag = 10
	r.send(m)
	r.expectResult(10, wire.StatusNotAuthorized)
	if n := beta.Recorder.Len(); n != 0 {
		t.Errorf("beta accepted %d records", n)
	}
}

// TestTwoPairsOnOneConnection: a server with two domains authenticates each
// pair on the same connection; a pair that fails leaves the other working.
func TestTwoPairsOnOneConnection(t *testing.T) {
	w := imxtest.NewWorld(t)
	multi := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example", "gamma.example", "ghost.example"}})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	// ghost.example publishes no IMX service: beta cannot verify it.
	w.DNS.SetNoService("ghost.example")

	mustDeliver(t, multi, "alpha.example", "beta.example", message("a@alpha.example", "bob@beta.example", "1"))
	mustDeliver(t, multi, "gamma.example", "beta.example", message("g@gamma.example", "bob@beta.example", "2"))
	_, err := multi.Server.Request(ctx(t), "ghost.example", "beta.example", message("x@ghost.example", "bob@beta.example", "3"))
	if !errors.Is(err, s2s.ErrAuth) {
		t.Fatalf("ghost pair: %v, want a dial-back failure", err)
	}
	mustDeliver(t, multi, "alpha.example", "beta.example", message("a@alpha.example", "bob@beta.example", "4"))

	var outbound []s2s.ConnInfo
	for _, c := range multi.Server.Conns() {
		if c.Outbound && c.Remote == "beta.example" {
			outbound = append(outbound, c)
		}
	}
	if len(outbound) != 1 {
		t.Fatalf("%d outbound connections to beta, want 1: %+v", len(outbound), outbound)
	}
	if got := strings.Join(outbound[0].Pairs, ","); got != "alpha.example beta.example,gamma.example beta.example" {
		t.Errorf("pairs on the connection: %s", got)
	}
	recs := beta.Recorder.WaitLen(t, 3, 5*time.Second)
	for _, r := range recs {
		if r.From == "ghost.example" {
			t.Errorf("beta accepted a record from ghost: %+v", r)
		}
	}
}

// TestRelayAndSpoofedSenderRefused: on an authenticated connection, a record
// for a domain beta does not serve is a relay attempt, and a record whose
// sender is in a domain not authenticated there is refused.
func TestRelayAndSpoofedSenderRefused(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example", "gamma.example"}})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	w.StartNode(imxtest.NodeConfig{Domains: []string{"delta.example"}})
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "ok"))

	resp, err := alpha.Server.Request(ctx(t), "alpha.example", "beta.example", message("a@alpha.example", "d@delta.example", "relay me"))
	refusedWith(t, resp, err, wire.StatusRelayDenied)
	// gamma is served by the same node but not authenticated with beta:
	// sent over the alpha pair's connection it is a spoofed sender.
	resp, err = alpha.Server.Request(ctx(t), "alpha.example", "beta.example", message("g@gamma.example", "b@beta.example", "spoof"))
	refusedWith(t, resp, err, wire.StatusNotAuthorized)
	if n := beta.Recorder.Len(); n != 1 {
		t.Errorf("beta accepted %d records, want 1", n)
	}
	if r := beta.Server.Stats.Refused.Load(); r != 2 {
		t.Errorf("beta refused %d records, want 2", r)
	}
}

// TestRepeatedViolationsClose: a connection that keeps sending refused
// records is closed.
func TestRepeatedViolationsClose(t *testing.T) {
	w := imxtest.NewWorld(t)
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Configure: func(c *s2s.Config) { c.MaxViolations = 3 }})
	r := dialRaw(t, beta)
	m := message("a@alpha.example", "b@beta.example", "x")
	for i := range 3 {
		m.Tag = uint32(i + 1)
		r.send(m)
	}
	for {
		rec := r.recv()
		if c, ok := rec.(*wire.Close); ok {
			if c.Code != wire.StatusNotAuthorized {
				t.Errorf("CLOSE %v", c.Code)
			}
			return
		}
	}
}

// TestCloseBothWays: when one side shuts down, the other learns it, and the
// next request reconnects on demand once the peer is back.
func TestCloseBothWays(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "1"))

	beta.Stop()
	imxtest.WaitFor(t, 5*time.Second, 5*time.Millisecond, func() bool { return len(alpha.Server.Conns()) == 0 })
	if _, err := alpha.Server.Request(ctx(t), "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "2")); !errors.Is(err, s2s.ErrUnreachable) {
		t.Fatalf("request to a stopped peer: %v, want unreachable", err)
	}
	// beta restarts on the same address: alpha reconnects on demand
	// (after its back-off).
	beta2 := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Port: beta.Addr.Port()})
	imxtest.WaitFor(t, 5*time.Second, 20*time.Millisecond, func() bool {
		_, err := alpha.Server.Request(ctx(t), "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "3"))
		return err == nil
	})
	beta2.Recorder.WaitLen(t, 1, 5*time.Second)

	// Now alpha closes: beta's connections end too.
	alpha.Stop()
	imxtest.WaitFor(t, 5*time.Second, 5*time.Millisecond, func() bool { return len(beta2.Server.Conns()) == 0 })
}

// TestIdleCloseAndReconnect: beta closes the idle connection; the next
// request makes a new one.
func TestIdleCloseAndReconnect(t *testing.T) {
	w := imxtest.NewWorld(t)
	idle := func(c *s2s.Config) { c.IdleTimeout = 150 * time.Millisecond }
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}, Configure: idle})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Configure: idle})
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "1"))
	// Each side closes the connection the other dialled once it is idle.
	imxtest.WaitFor(t, 5*time.Second, 10*time.Millisecond, func() bool { return len(alpha.Server.Conns()) == 0 })
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "2"))
	if ok := beta.Server.Stats.AuthOK.Load(); ok != 2 {
		t.Errorf("beta ran %d dial-backs, want 2 (one per connection)", ok)
	}
	beta.Recorder.WaitLen(t, 2, 5*time.Second)
}

// TestRedirectMovesTraffic: beta's first node redirects its peers to a
// second node listed in beta's IMX record; alpha follows, authenticates
// again, and its traffic lands on the second node. A redirect to a host
// outside the record is ignored.
func TestRedirectMovesTraffic(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	beta1 := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	beta2 := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, NoPublish: true})
	rogue := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, NoPublish: true})
	w.DNS.SetSRV("beta.example",
		imxtest.SRV{Priority: 10, Weight: 1, Port: beta1.Addr.Port(), Target: beta1.Name},
		imxtest.SRV{Priority: 20, Weight: 1, Port: beta2.Addr.Port(), Target: beta2.Name})

	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "1"))
	if n := beta1.Recorder.Len(); n != 1 {
		t.Fatalf("beta1 got %d", n)
	}
	// A redirect to a host that is not in beta's record is ignored.
	beta1.Server.Redirect(rogue.Addr.Addr().String()+".invalid", rogue.Addr.Port(), "go away")
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "2"))
	if rogue.Recorder.Len() != 0 || alpha.Server.Stats.Redirects.Load() != 0 {
		t.Fatal("followed a redirect to a host outside the IMX record")
	}

	if n := beta1.Server.Redirect(beta2.Name, beta2.Addr.Port(), "draining"); n == 0 {
		t.Fatal("no connection to redirect")
	}
	imxtest.WaitFor(t, 5*time.Second, 5*time.Millisecond, func() bool { return alpha.Server.Stats.Redirects.Load() == 1 })
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "3"))
	beta2.Recorder.WaitLen(t, 1, 5*time.Second)
	if n := beta1.Recorder.Len(); n != 2 {
		t.Errorf("beta1 got %d records after the redirect, want still 2", n)
	}
}

// TestInboundCap: beta accepts one inbound connection per remote domain; a
// second server of alpha is refused with busy.
func TestInboundCap(t *testing.T) {
	w := imxtest.NewWorld(t)
	// A second server of alpha that alpha's record does not list: beta
	// refuses it on the cap before it would try to verify it.
	alpha1 := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	alpha2 := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}, NoPublish: true})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Configure: func(c *s2s.Config) { c.MaxInboundPerDomain = 1 }})

	mustDeliver(t, alpha1, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "1"))
	_, err := alpha2.Server.Request(ctx(t), "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "2"))
	if !errors.Is(err, s2s.ErrAuth) || !errors.Is(err, wire.StatusBusy) {
		t.Fatalf("second server of alpha: %v, want dial-back refused with busy", err)
	}
	if n := beta.Recorder.Len(); n != 1 {
		t.Errorf("beta accepted %d records, want 1", n)
	}
}

// TestOutboundPoolBounded: many concurrent requests use at most
// MaxConnsPerDomain outbound connections.
func TestOutboundPoolBounded(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}, Configure: func(c *s2s.Config) { c.MaxConnsPerDomain = 2 }})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			_, err := alpha.Server.Request(ctx(t), "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", fmt.Sprint(i)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	out := 0
	for _, c := range alpha.Server.Conns() {
		if c.Outbound {
			out++
		}
	}
	if out > 2 {
		t.Errorf("%d outbound connections, cap 2", out)
	}
	beta.Recorder.WaitLen(t, 100, 5*time.Second)
}

// TestBackoff: an unreachable domain fails, and is not dialled again before
// its back-off passes.
func TestBackoff(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}, Configure: func(c *s2s.Config) {
		c.MinBackoff, c.MaxBackoff = time.Hour, time.Hour
	}})
	// dead.example points at a port where nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	w.DNS.SetA("dead.imxtest", alpha.Addr.Addr())
	w.DNS.SetSRV("dead.example", imxtest.SRV{Priority: 1, Port: uint16(port), Target: "dead.imxtest"})
	_, err = alpha.Server.Request(ctx(t), "alpha.example", "dead.example", message("a@alpha.example", "x@dead.example", "1"))
	if !errors.Is(err, s2s.ErrUnreachable) {
		t.Fatalf("first request: %v", err)
	}
	_, err = alpha.Server.Request(ctx(t), "alpha.example", "dead.example", message("a@alpha.example", "x@dead.example", "2"))
	if !errors.Is(err, s2s.ErrUnreachable) || !strings.Contains(err.Error(), "next try in") {
		t.Fatalf("second request: %v, want a fast failure during back-off", err)
	}
}

// TestResponseFromWrongDomainDropped: a response can only answer a request
// from a connection authenticated for that request's pair.
func TestResponseFromWrongDomainDropped(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	// beta answers late, so that a forged answer can race it.
	release := make(chan struct{})
	w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Handler: s2s.HandlerFunc(func(_ context.Context, in s2s.Inbound) wire.Record {
		go func() {
			<-release
			_ = in.Reply(context.Background(), &wire.Result{Code: wire.StatusDelivered, Count: 7})
		}()
		return nil
	})})
	// A raw connection to alpha, never authenticated, sprays responses
	// over the tag space.
	r := dialRaw(t, alpha)
	done := make(chan wire.Record, 1)
	go func() {
		resp, _ := alpha.Server.Request(context.Background(), "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "x"))
		done <- resp
	}()
	imxtest.WaitFor(t, 5*time.Second, 5*time.Millisecond, func() bool { return len(alpha.Server.Conns()) >= 2 })
	for tag := uint32(1); tag <= 64; tag++ {
		r.send(&wire.Result{Head: wire.Head{Tag: tag}, Code: wire.StatusDelivered, Count: 99})
	}
	close(release)
	resp := <-done
	if res, ok := resp.(*wire.Result); !ok || res.Count != 7 {
		t.Fatalf("alpha took %#v, want beta's own answer (count 7)", resp)
	}
}

// TestRedirectLoopIgnored: a redirect back to a host already on the chain
// is not followed.
func TestRedirectLoopIgnored(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	beta1 := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	beta2 := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, NoPublish: true})
	w.DNS.SetSRV("beta.example",
		imxtest.SRV{Priority: 10, Weight: 1, Port: beta1.Addr.Port(), Target: beta1.Name},
		imxtest.SRV{Priority: 20, Weight: 1, Port: beta2.Addr.Port(), Target: beta2.Name})
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "1"))
	beta1.Server.Redirect(beta2.Name, beta2.Addr.Port(), "go to 2")
	imxtest.WaitFor(t, 5*time.Second, 5*time.Millisecond, func() bool { return alpha.Server.Stats.Redirects.Load() == 1 })
	// beta2 sends alpha back where it came from: a loop.
	beta2.Server.Redirect(beta1.Name, beta1.Addr.Port(), "go to 1")
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "2"))
	imxtest.WaitFor(t, 5*time.Second, 5*time.Millisecond, func() bool {
		for _, c := range alpha.Server.Conns() {
			if c.Outbound && c.Endpoint == net.JoinHostPort(beta2.Name, fmt.Sprint(beta2.Addr.Port())) {
				return true
			}
		}
		return false
	})
	if n := alpha.Server.Stats.Redirects.Load(); n != 1 {
		t.Errorf("followed %d redirects, want 1 (the loop back must be ignored)", n)
	}
}

// rawDomain is a hand-driven server of a domain published in DNS: it
// accepts the dial-back connections (connection 2) of the server under test
// and answers each DB-VERIFY with RESULT ok, passing the secret on.
type rawDomain struct {
	ln      net.Listener
	secrets chan []byte
}

func startRawDomain(t *testing.T, w *imxtest.World, domain string) *rawDomain {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rd := &rawDomain{ln: ln, secrets: make(chan []byte, 16)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				bw, in := bufio.NewWriter(nc), wire.NewReader(nc, 0)
				for {
					_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
					rec, err := in.ReadRecord()
					if err != nil {
						return
					}
					var out wire.Record
					switch m := rec.(type) {
					case *wire.Hello:
						out = &wire.Hello{Head: wire.Head{Tag: m.Tag, Flags: wire.FlagResponse}, MinVersion: 1, MaxVersion: 1, Capabilities: []string{"dialback"}}
					case *wire.DBVerify:
						rd.secrets <- append([]byte(nil), m.Secret...)
						out = &wire.Result{Head: wire.Head{Tag: m.Tag}, Code: wire.StatusOK}
					case *wire.Ping:
						out = &wire.Pong{Head: wire.Head{Tag: m.Tag}}
					default:
						continue
					}
					if wire.WriteRecord(bw, out) != nil || bw.Flush() != nil {
						return
					}
				}
			})
		}
	})
	ap := ln.Addr().(*net.TCPAddr)
	w.DNS.SetA("raw."+domain, ap.AddrPort().Addr())
	w.DNS.SetSRV(domain, imxtest.SRV{Priority: 1, Port: uint16(ap.Port), Target: "raw." + domain})
	return rd
}

// TestReplayedSecretRefused: a secret that authenticated one connection
// does not authenticate another, even for the same pair.
func TestReplayedSecretRefused(t *testing.T) {
	w := imxtest.NewWorld(t)
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	raw := startRawDomain(t, w, "raw.example")
	outcome := func(r *rawConn, tag uint32) *wire.DBOutcome {
		t.Helper()
		rec := r.recv()
		o, ok := rec.(*wire.DBOutcome)
		if !ok || o.Tag != tag {
			t.Fatalf("got %#v, want DB-OUTCOME for tag %d", rec, tag)
		}
		return o
	}
	// Connection 1: a real dial-back, with the secret relayed by hand.
	c1 := dialRaw(t, beta)
	c1.send(&wire.DBToken{Head: wire.Head{Tag: 5}, From: "raw.example", To: "beta.example", Token: []byte("token-1")})
	secret := <-raw.secrets
	c1.send(&wire.DBSecret{From: "raw.example", To: "beta.example", Secret: secret})
	if o := outcome(c1, 5); o.Code != wire.StatusOK {
		t.Fatalf("honest dial-back failed: %v %s", o.Code, o.Text)
	}
	// Another connection replays that secret instead of its own.
	c2 := dialRaw(t, beta)
	c2.send(&wire.DBToken{Head: wire.Head{Tag: 6}, From: "raw.example", To: "beta.example", Token: []byte("token-2")})
	<-raw.secrets // the fresh secret, withheld
	c2.send(&wire.DBSecret{From: "raw.example", To: "beta.example", Secret: secret})
	if o := outcome(c2, 6); o.Code == wire.StatusOK {
		t.Fatal("a replayed secret authenticated a second connection")
	}
	m := message("x@raw.example", "b@beta.example", "after replay")
	m.Tag = 7
	c2.send(m)
	c2.expectResult(7, wire.StatusNotAuthorized)
	// The honest connection still works.
	m.Tag = 8
	c1.send(m)
	c1.expectResult(8, wire.StatusDelivered)
}

// TestMessagesHandledConcurrently: a MESSAGE whose delivery is slow does not
// hold up the next ones on the same connection (asynchronous tagged
// requests), and a shutdown lets the slow one send its result first.
func TestMessagesHandledConcurrently(t *testing.T) {
	w := imxtest.NewWorld(t)
	release := make(chan struct{})
	started := make(chan struct{})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Handler: s2s.HandlerFunc(func(ctx context.Context, in s2s.Inbound) wire.Record {
		if string(in.Record.(*wire.Message).ID) == "slow" {
			close(started)
			<-release
		}
		return &wire.Result{Code: wire.StatusDelivered, Count: 1}
	})})
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}, Configure: func(c *s2s.Config) { c.MaxConnsPerDomain = 1 }})
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("alice@alpha.example", "bob@beta.example", "first"))
	slow := make(chan error, 1)
	go func() {
		resp, err := alpha.Server.Request(ctx(t), "alpha.example", "beta.example", message("alice@alpha.example", "bob@beta.example", "slow"))
		if err == nil {
			if r, ok := resp.(*wire.Result); !ok || r.Code != wire.StatusDelivered {
				err = fmt.Errorf("response %#v", resp)
			}
		}
		slow <- err
	}()
	<-started
	for i := range 20 {
		mustDeliver(t, alpha, "alpha.example", "beta.example", message("alice@alpha.example", "bob@beta.example", fmt.Sprint("fast ", i)))
	}
	if n := alpha.Server.Stats.OutboundConns.Load(); n != 1 {
		t.Fatalf("%d outbound connections, want 1 (the test needs one connection)", n)
	}
	select {
	case err := <-slow:
		t.Fatalf("the slow message ended before it was released: %v", err)
	default:
	}
	// beta shuts down while the slow one is being handled: its result
	// still goes out before the CLOSE.
	shut := make(chan error, 1)
	go func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- beta.Server.Shutdown(c)
	}()
	// Shutdown has begun when its listener is closed; it then waits for
	// the held handler.
	imxtest.WaitFor(t, 5*time.Second, 5*time.Millisecond, func() bool {
		nc, err := net.Dial("tcp", beta.Addr.String())
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	close(release)
	if err := <-slow; err != nil {
		t.Errorf("slow message: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestPresenceRecordsOrderedPerKey: on one connection, NOTIFYs of one
// presentity to one domain are handled in the order they came, one at a
// time, while a NOTIFY of another presentity does not wait for them.
func TestPresenceRecordsOrderedPerKey(t *testing.T) {
	w := imxtest.NewWorld(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // a failure below must not leave the handler blocked
	started := make(chan struct{}, 1)
	var mu sync.Mutex
	var seen []string
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Handler: s2s.HandlerFunc(func(ctx context.Context, in s2s.Inbound) wire.Record {
		n, ok := in.Record.(*wire.Notify)
		if !ok {
			return &wire.Result{Code: wire.StatusUnsupported}
		}
		if n.Status == "first" {
			started <- struct{}{}
			<-release
		}
		mu.Lock()
		seen = append(seen, n.Presentity+" "+n.Status)
		mu.Unlock()
		return &wire.Result{Code: wire.StatusOK}
	})})
	raw := startRawDomain(t, w, "raw.example")
	c := dialRaw(t, beta)
	c.send(&wire.DBToken{Head: wire.Head{Tag: 1}, From: "raw.example", To: "beta.example", Token: []byte("token")})
	c.send(&wire.DBSecret{From: "raw.example", To: "beta.example", Secret: <-raw.secrets})
	if o, ok := c.recv().(*wire.DBOutcome); !ok || o.Code != wire.StatusOK {
		t.Fatalf("dial-back: %#v", o)
	}
	notify := func(tag uint32, presentity, status string) {
		c.send(&wire.Notify{Head: wire.Head{Tag: tag}, Presentity: presentity, Watchers: []string{"bob@beta.example"}, Presence: wire.PresenceOnline, Status: status})
	}
	notify(10, "alice@raw.example", "first")
	<-started
	notify(11, "alice@raw.example", "second") // waits behind the first
	notify(12, "carol@raw.example", "other")  // does not
	c.expectResult(12, wire.StatusOK)
	mu.Lock()
	early := fmt.Sprint(seen)
	mu.Unlock()
	if early != "[carol@raw.example other]" {
		t.Fatalf("while alice's first NOTIFY was held, handled %s", early)
	}
	unblock()
	c.expectResult(10, wire.StatusOK)
	c.expectResult(11, wire.StatusOK)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[carol@raw.example other alice@raw.example first alice@raw.example second]" {
		t.Errorf("handled in the order %v", seen)
	}
}

// TestInlineHandler: with Config.Inline the records reach the Handler on
// the reader, in the order they came.
func TestInlineHandler(t *testing.T) {
	w := imxtest.NewWorld(t)
	var mu sync.Mutex
	var ids []string
	w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Configure: func(c *s2s.Config) { c.Inline = true },
		Handler: s2s.HandlerFunc(func(ctx context.Context, in s2s.Inbound) wire.Record {
			mu.Lock()
			ids = append(ids, string(in.Record.(*wire.Message).ID))
			mu.Unlock()
			return &wire.Result{Code: wire.StatusDelivered, Count: 1}
		})})
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	var want []string
	for i := range 20 {
		id := fmt.Sprint("m", i)
		want = append(want, id)
		mustDeliver(t, alpha, "alpha.example", "beta.example", message("alice@alpha.example", "bob@beta.example", id))
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("handled %v, want %v", ids, want)
	}
}

// TestHandlerBoundPerConnection: with a flood of MESSAGEs on one
// connection, no more than MaxConcurrent are handled at once, and the
// workers that handle them are no more than that either.
func TestHandlerBoundPerConnection(t *testing.T) {
	const bound, total = 4, 10000
	w := imxtest.NewWorld(t)
	var running, most, handled atomic.Int64
	var beta *imxtest.Node
	var mostWorkers atomic.Int64
	beta = w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Configure: func(c *s2s.Config) { c.MaxConcurrent = bound },
		Handler: s2s.HandlerFunc(func(ctx context.Context, in s2s.Inbound) wire.Record {
			n := running.Add(1)
			defer running.Add(-1)
			raise(&most, n)
			raise(&mostWorkers, beta.Server.Stats.Workers.Load())
			handled.Add(1)
			return nil
		})})
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}, Configure: func(c *s2s.Config) {
		c.MaxConnsPerDomain = 1
		c.Link.QueueLen = 8192
	}})
	if _, err := alpha.Server.Request(ctx(t), "alpha.example", "beta.example", &wire.Ping{}); err != nil {
		t.Fatal(err)
	}
	m := message("alice@alpha.example", "bob@beta.example", "flood")
	m.Tag = 1
	for range total {
		if err := alpha.Server.Send(ctx(t), "alpha.example", "beta.example", m); err != nil {
			t.Fatal(err)
		}
	}
	imxtest.WaitFor(t, 10*time.Second, time.Millisecond, func() bool { return handled.Load() == total })
	if n := most.Load(); n > bound {
		t.Errorf("%d records handled at once, bound %d", n, bound)
	}
	// Two connections may carry the records: the dial-back made one each
	// way.
	if n := mostWorkers.Load(); n > 2*bound {
		t.Errorf("%d workers, bound %d per connection", n, bound)
	}
}

// raise sets m to n if n is more.
func raise(m *atomic.Int64, n int64) {
	for old := m.Load(); n > old && !m.CompareAndSwap(old, n); old = m.Load() {
	}
}

// TestIdleWorkersExit: the handler goroutines exit after WorkerIdle without
// records while the server runs, and at once when it shuts down, however
// long WorkerIdle is.
func TestIdleWorkersExit(t *testing.T) {
	w := imxtest.NewWorld(t)
	quick := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Configure: func(c *s2s.Config) { c.WorkerIdle = 20 * time.Millisecond }})
	slow := w.StartNode(imxtest.NodeConfig{Domains: []string{"gamma.example"}, Configure: func(c *s2s.Config) { c.WorkerIdle = time.Hour }})
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}})
	for i := range 5 {
		mustDeliver(t, alpha, "alpha.example", "beta.example", message("alice@alpha.example", "bob@beta.example", fmt.Sprint(i)))
		mustDeliver(t, alpha, "alpha.example", "gamma.example", message("alice@alpha.example", "carol@gamma.example", fmt.Sprint(i)))
	}
	imxtest.WaitFor(t, 5*time.Second, 5*time.Millisecond, func() bool { return quick.Server.Stats.Workers.Load() == 0 })
	if n := slow.Server.Stats.Workers.Load(); n == 0 {
		t.Fatal("no idle worker kept for an hour")
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := slow.Server.Shutdown(c); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if n := slow.Server.Stats.Workers.Load(); n != 0 {
		t.Errorf("%d workers after shutdown", n)
	}
	// goleak (TestMain) finds any goroutine left.
}
