package imxtest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/dialback"
	"github.com/imxproject/imx/discovery"
	"github.com/imxproject/imx/s2s"
	"github.com/imxproject/imx/wire"
)

// World is a set of IMX servers in one process: each listens on loopback
// and publishes its domains' _imx._tcp records in the World's DNS server,
// so that federation runs over real sockets and real DNS.
type World struct {
	t   testing.TB
	DNS *DNS

	mu    sync.Mutex
	nodes int
}

// NewWorld starts a DNS server for a new world; everything stops when the
// test ends.
func NewWorld(t testing.TB) *World {
	t.Helper()
	return &World{t: t, DNS: StartDNS(t)}
}

// NodeConfig configures a node of a World.
type NodeConfig struct {
	// Domains served by the node.
	Domains []string
	// IP and Port to listen on; zero: 127.0.0.1 and a random port.
	IP   netip.Addr
	Port uint16
	// Publish controls whether the node's domains get SRV records
	// pointing at it (default true: set NoPublish to skip).
	NoPublish bool
	// Configure, if set, adjusts the s2s configuration before the server
	// is made.
	Configure func(*s2s.Config)
	// Handler overrides the default recording handler.
	Handler s2s.Handler
}

// Node is one running s2s server of a World.
type Node struct {
	Name     string // host name published in DNS: nodeN.imxtest
	Domains  []string
	Addr     netip.AddrPort
	Server   *s2s.Server
	Resolver *discovery.Resolver
	Recorder *Recorder
	ln       net.Listener
	served   chan error
}

// StartNode starts a server for cfg.Domains and publishes it.
func (w *World) StartNode(cfg NodeConfig) *Node {
	t := w.t
	t.Helper()
	w.mu.Lock()
	w.nodes++
	name := fmt.Sprintf("node%d.imxtest", w.nodes)
	w.mu.Unlock()

	ip := cfg.IP
	if !ip.IsValid() {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, cfg.Port).String())
	if err != nil {
		t.Fatalf("imxtest: listen: %v", err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	res, err := discovery.New(discovery.Config{Server: w.DNS.Addr(), QueryTimeout: 500 * time.Millisecond, LookupTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("imxtest: resolver: %v", err)
	}
	key, err := dialback.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder()
	sc := s2s.Config{
		Domains:    cfg.Domains,
		Resolver:   res,
		Key:        key,
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond,
		Logger:     TestLogger(t),
		Handler:    rec,
	}
	sc.Link.Software = "imx/imxtest"
	if cfg.Handler != nil {
		sc.Handler = cfg.Handler
	}
	if cfg.Configure != nil {
		cfg.Configure(&sc)
	}
	srv, err := s2s.New(sc)
	if err != nil {
		t.Fatalf("imxtest: %v", err)
	}
	n := &Node{Name: name, Domains: cfg.Domains, Addr: ap, Server: srv, Resolver: res, Recorder: rec, ln: ln, served: make(chan error, 1)}
	go func() { n.served <- srv.Serve(ln) }()
	w.DNS.SetA(name, ap.Addr())
	if !cfg.NoPublish {
		for _, d := range cfg.Domains {
			w.DNS.SetSRV(d, SRV{Priority: 10, Weight: 10, Port: ap.Port(), Target: name})
		}
	}
	t.Cleanup(n.Stop)
	return n
}

// Stop shuts the node down and waits for it; safe to call twice.
func (n *Node) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.Server.Shutdown(ctx)
	if n.served != nil {
		<-n.served
		n.served = nil
	}
	n.Resolver.Close()
}

// Recorder is an s2s.Handler that keeps a copy of every record it gets and
// answers requests: MESSAGE delivered to 1 session, SUBSCRIBE granted for
// the requested time (at most 1800 s), UNSUBSCRIBE and NOTIFY ok,
// GET-ATTRIBUTES with no attributes.
type Recorder struct {
	mu   sync.Mutex
	recs []Received
	ch   chan struct{} // closed and replaced on every record
}

// Received is a record a Recorder got, with the authenticated domains.
type Received struct {
	From, To string
	Record   wire.Record
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{ch: make(chan struct{})} }

// HandleS2S implements s2s.Handler.
func (r *Recorder) HandleS2S(_ context.Context, in s2s.Inbound) wire.Record {
	kept, err := wire.Clone(in.Record)
	if err != nil {
		return &wire.Result{Code: wire.StatusInternal}
	}
	r.mu.Lock()
	r.recs = append(r.recs, Received{From: in.From, To: in.To, Record: kept})
	close(r.ch)
	r.ch = make(chan struct{})
	r.mu.Unlock()
	switch m := in.Record.(type) {
	case *wire.Message:
		return &wire.Result{Code: wire.StatusDelivered, Count: 1}
	case *wire.Subscribe:
		return &wire.Result{Code: wire.StatusOK, Expires: min(m.Expires, 1800)}
	case *wire.GetAttrs:
		return &wire.Attrs{Target: m.Target}
	}
	return &wire.Result{Code: wire.StatusOK}
}

// Records returns a copy of what was received so far.
func (r *Recorder) Records() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.recs...)
}

// Len returns how many records were received.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs)
}

// WaitLen waits until at least n records were received, or fails the test
// after timeout.
func (r *Recorder) WaitLen(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		if len(r.recs) >= n {
			out := append([]Received(nil), r.recs...)
			r.mu.Unlock()
			return out
		}
		ch := r.ch
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("imxtest: %d records after %v, want %d", r.Len(), timeout, n)
		}
	}
}

// WaitFor polls cond every poll until it is true, or fails the test after
// total.
func WaitFor(t testing.TB, total, poll time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("imxtest: condition not met within %v", total)
		}
		time.Sleep(poll)
	}
}

// TestLogger returns a logger that writes through t.Log when IMX_TEST_LOG is
// set, and discards otherwise.
func TestLogger(t testing.TB) *slog.Logger {
	if os.Getenv("IMX_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
