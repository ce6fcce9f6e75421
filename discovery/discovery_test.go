package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imxproject/imx/discovery"
	"github.com/imxproject/imx/imxtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable clock for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newResolver returns a Resolver that asks d, with the clock clk, configured
// further by mod, and closed when the test ends.
func newResolver(t testing.TB, d *imxtest.DNS, clk *clock, mod func(*discovery.Config)) *discovery.Resolver {
	t.Helper()
	cfg := discovery.Config{Server: d.Addr(), Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	r, err := discovery.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func lookup(t testing.TB, r *discovery.Resolver, domain string) []discovery.Endpoint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eps, err := r.Lookup(ctx, domain)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", domain, err)
	}
	return eps
}

func lookupErr(t testing.TB, r *discovery.Resolver, domain string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eps, err := r.Lookup(ctx, domain)
	if err == nil {
		t.Fatalf("Lookup(%s) = %v, want an error", domain, eps)
	}
	return err
}

var (
	lo4  = netip.MustParseAddr("127.0.0.1")
	lo4b = netip.MustParseAddr("127.0.0.2")
	lo6  = netip.MustParseAddr("::1")
)

func equal(a, b []discovery.Endpoint) bool {
	return slices.EqualFunc(a, b, func(x, y discovery.Endpoint) bool {
		return x.Host == y.Host && x.Port == y.Port && x.Priority == y.Priority && x.Weight == y.Weight && slices.Equal(x.Addrs, y.Addrs)
	})
}

func TestLookupPriorityOrder(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetSRV("example.com",
		imxtest.SRV{Priority: 20, Weight: 1, Port: 7001, Target: "b.example.net"},
		imxtest.SRV{Priority: 10, Weight: 1, Port: 7000, Target: "a.example.net"},
		imxtest.SRV{Priority: 30, Weight: 1, Port: 7002, Target: "c.example.net"})
	d.SetA("a.example.net", lo4, lo6)
	d.SetA("b.example.net", lo4b)
	d.SetA("c.example.net", lo6)
	r := newResolver(t, d, newClock(), nil)

	want := []discovery.Endpoint{
		{Host: "a.example.net", Port: 7000, Priority: 10, Weight: 1, Addrs: []netip.Addr{lo6, lo4}},
		{Host: "b.example.net", Port: 7001, Priority: 20, Weight: 1, Addrs: []netip.Addr{lo4b}},
		{Host: "c.example.net", Port: 7002, Priority: 30, Weight: 1, Addrs: []netip.Addr{lo6}},
	}
	for range 20 {
		if got := lookup(t, r, "example.com"); !equal(got, want) {
			t.Fatalf("Lookup = %v, want %v", got, want)
		}
	}
	if got, want := want[0].String(), "a.example.net:7000"; got != want {
		t.Errorf("Endpoint.String() = %q, want %q", got, want)
	}
}

// TestLookupWeighted checks the weighted choice within a priority over many
// lookups with a seeded random source: each entry comes first with the
// chance RFC 2782 gives it, weight 0 included.
func TestLookupWeighted(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetSRV("example.com",
		imxtest.SRV{Priority: 10, Weight: 0, Port: 1, Target: "z.example.net"},
		imxtest.SRV{Priority: 10, Weight: 10, Port: 1, Target: "a.example.net"},
		imxtest.SRV{Priority: 10, Weight: 30, Port: 1, Target: "b.example.net"},
		imxtest.SRV{Priority: 10, Weight: 60, Port: 1, Target: "c.example.net"},
		imxtest.SRV{Priority: 20, Weight: 50, Port: 1, Target: "backup.example.net"})
	for _, h := range []string{"z", "a", "b", "c", "backup"} {
		d.SetA(h+".example.net", lo4)
	}
	rnd := rand.New(rand.NewPCG(2026, 6)).Uint64N
	r := newResolver(t, d, newClock(), func(c *discovery.Config) { c.Rand = rnd })

	// The weight-0 entry is placed first, so it alone wins a draw of 0; the
	// others win in proportion to their weight: 1, 10, 30 and 60 in 101.
	want := map[string]float64{"z": 1.0 / 101, "a": 10.0 / 101, "b": 30.0 / 101, "c": 60.0 / 101}
	const n = 20000
	first := map[string]int{}
	for range n {
		eps := lookup(t, r, "example.com")
		first[strings.TrimSuffix(eps[0].Host, ".example.net")]++
		if len(eps) != 5 || eps[4].Host != "backup.example.net" {
			t.Fatalf("priority 20 not last: %v", eps)
		}
	}
	for h, p := range want {
		f := float64(first[h]) / n
		// 4.5 standard deviations of a binomial share: a sound band for a
		// seeded run, and still far below the weights' differences.
		band := 4.5 * math.Sqrt(p*(1-p)/n)
		if f < p-band || f > p+band {
			t.Errorf("%s first in %.4f of the lookups, want %.4f ± %.4f", h, f, p, band)
		}
	}
	if got := d.Queries("_imx._tcp.example.com"); got != 1 {
		t.Errorf("%d SRV queries for %d lookups, want 1 (cached)", got, n)
	}
}

// TestLookupInjectedRand checks the order produced by fixed random sources:
// always 0 keeps the listed order, always the top takes the last entry each
// time.
func TestLookupInjectedRand(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetSRV("example.com",
		imxtest.SRV{Priority: 1, Weight: 5, Port: 1, Target: "a.example.net"},
		imxtest.SRV{Priority: 1, Weight: 5, Port: 2, Target: "b.example.net"},
		imxtest.SRV{Priority: 1, Weight: 5, Port: 3, Target: "c.example.net"},
		imxtest.SRV{Priority: 2, Weight: 5, Port: 4, Target: "d.example.net"})
	for _, h := range []string{"a", "b", "c", "d"} {
		d.SetA(h+".example.net", lo4)
	}
	for _, tt := range []struct {
		name  string
		rnd   func(uint64) uint64
		ports []uint16
	}{
		{"lowest", func(uint64) uint64 { return 0 }, []uint16{1, 2, 3, 4}},
		{"highest", func(n uint64) uint64 { return n - 1 }, []uint16{3, 2, 1, 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newResolver(t, d, newClock(), func(c *discovery.Config) { c.Rand = tt.rnd })
			var ports []uint16
			for _, e := range lookup(t, r, "example.com") {
				ports = append(ports, e.Port)
			}
			if !slices.Equal(ports, tt.ports) {
				t.Errorf("ports %v, want %v", ports, tt.ports)
			}
		})
	}
}

func TestLookupFallback(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("example.com", lo4, lo6)
	d.SetA("nodata.example.com", lo4)
	d.SetA("_imx._tcp.nodata.example.com", lo4b) // the SRV name exists, without SRV
	r := newResolver(t, d, newClock(), nil)

	for _, tt := range []struct{ name, domain string }{
		{"NXDOMAIN for the SRV name", "example.com"},
		{"NODATA for the SRV name", "nodata.example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := []discovery.Endpoint{{Host: tt.domain, Port: discovery.DefaultPort, Addrs: d4or6(tt.domain)}}
			if got := lookup(t, r, tt.domain); !equal(got, want) {
				t.Errorf("Lookup = %v, want %v", got, want)
			}
		})
	}
}

func d4or6(domain string) []netip.Addr {
	if domain == "example.com" {
		return []netip.Addr{lo6, lo4}
	}
	return []netip.Addr{lo4}
}

func TestLookupNegative(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("example.com", lo4)
	d.SetNoService("example.com")
	d.SetA("host.empty.example", lo4) // empty.example exists, without address
	d.SetSRV("port0.example", imxtest.SRV{Port: 0, Target: "imx.example.com"})
	d.SetA("imx.example.com", lo4)
	d.SetSRV("deadtargets.example",
		imxtest.SRV{Port: 1, Target: "gone.example.net"},
		imxtest.SRV{Port: 2, Target: "empty.example"})
	r := newResolver(t, d, newClock(), nil)

	for _, tt := range []struct {
		domain string
		want   error
		msg    string
	}{
		{"example.com", discovery.ErrNoService,
			`discovery: lookup _imx._tcp.example.com: no IMX service (the SRV record's target is ".")`},
		{"port0.example", discovery.ErrNoService,
			"discovery: lookup _imx._tcp.port0.example: no IMX service (no SRV record has a port)"},
		{"nowhere.example", discovery.ErrNoSuchDomain,
			"discovery: lookup _imx._tcp.nowhere.example: no SRV record, and nowhere.example does not exist (NXDOMAIN)"},
		{"empty.example", discovery.ErrNoAddress,
			"discovery: lookup _imx._tcp.empty.example: no SRV record, and no A or AAAA record for empty.example"},
		{"deadtargets.example", discovery.ErrNoAddress,
			"discovery: lookup _imx._tcp.deadtargets.example: no SRV target has an address: gone.example.net: NXDOMAIN; empty.example: no A or AAAA record"},
	} {
		t.Run(tt.domain, func(t *testing.T) {
			err := lookupErr(t, r, tt.domain)
			if !errors.Is(err, tt.want) || err.Error() != tt.msg {
				t.Errorf("err = %q, want %q (%v)", err, tt.msg, tt.want)
			}
		})
	}
}

func TestLookupTLS(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetSRVTLS("example.com", imxtest.SRV{Port: 7001, Target: "imx.example.com"})
	d.SetSRV("example.com", imxtest.SRV{Port: 7000, Target: "imx.example.com"})
	d.SetA("imx.example.com", lo4)
	d.SetA("plain.example", lo4)
	r := newResolver(t, d, newClock(), nil)
	ctx := context.Background()

	eps, err := r.LookupService(ctx, discovery.ServiceIMXS, "example.com")
	if err != nil || len(eps) != 1 || eps[0].Port != 7001 {
		t.Errorf("IMXS example.com: %v, %v; want port 7001", eps, err)
	}
	eps, err = r.LookupService(ctx, discovery.ServiceIMX, "example.com")
	if err != nil || len(eps) != 1 || eps[0].Port != 7000 {
		t.Errorf("IMX example.com: %v, %v; want port 7000", eps, err)
	}
	// No _imxs record: no fallback for direct TLS, but one for plain IMX.
	_, err = r.LookupService(ctx, discovery.ServiceIMXS, "plain.example")
	if !errors.Is(err, discovery.ErrNoService) || !strings.HasPrefix(err.Error(), "discovery: lookup _imxs._tcp.plain.example: ") {
		t.Errorf("IMXS plain.example: %v, want ErrNoService", err)
	}
	eps, err = r.Lookup(ctx, "plain.example")
	if err != nil || len(eps) != 1 || eps[0].Port != discovery.DefaultPort {
		t.Errorf("IMX plain.example: %v, %v; want the fallback", eps, err)
	}
}

func TestLookupTargets(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("a.example.net", lo4, lo6)
	d.SetSRV("example.com",
		imxtest.SRV{Priority: 1, Port: 7000, Target: "a.example.net"},
		imxtest.SRV{Priority: 2, Port: 7001, Target: "a.example.net"}, // same host, another port
		imxtest.SRV{Priority: 3, Port: 7002, Target: "noaddr.example.net"})
	want := []discovery.Endpoint{
		{Host: "a.example.net", Port: 7000, Priority: 1, Addrs: []netip.Addr{lo6, lo4}},
		{Host: "a.example.net", Port: 7001, Priority: 2, Addrs: []netip.Addr{lo6, lo4}},
	}

	for _, tt := range []struct {
		name    string
		glue    bool
		queries int // of a.example.net
	}{
		{"with glue", true, 0},
		{"without glue", false, 2}, // A and AAAA, once for both endpoints
	} {
		t.Run(tt.name, func(t *testing.T) {
			d.SetGlue(tt.glue)
			before := d.Queries("a.example.net")
			r := newResolver(t, d, newClock(), nil)
			if got := lookup(t, r, "example.com"); !equal(got, want) {
				t.Errorf("Lookup = %v, want %v", got, want)
			}
			if got := d.Queries("a.example.net") - before; got != tt.queries {
				t.Errorf("%d queries for a.example.net, want %d", got, tt.queries)
			}
		})
	}
}

func TestLookupPartialFailure(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetGlue(false)
	d.SetA("good.example.net", lo4)
	d.SetA("bad.example.net", lo4b)
	d.SetFault("bad.example.net", imxtest.FaultServFail)
	d.SetSRV("example.com",
		imxtest.SRV{Priority: 1, Port: 1, Target: "bad.example.net"},
		imxtest.SRV{Priority: 2, Port: 2, Target: "good.example.net"})
	clk := newClock()
	r := newResolver(t, d, clk, nil)

	eps := lookup(t, r, "example.com")
	if len(eps) != 1 || eps[0].Host != "good.example.net" {
		t.Fatalf("Lookup = %v, want good.example.net only", eps)
	}
	// Kept only for the failure TTL, so that bad.example.net is retried soon.
	q := d.TotalQueries()
	clk.Advance(4 * time.Second)
	lookup(t, r, "example.com")
	if d.TotalQueries() != q {
		t.Error("queries within the failure TTL")
	}
	d.SetFault("bad.example.net", imxtest.FaultNone)
	clk.Advance(2 * time.Second)
	if eps := lookup(t, r, "example.com"); len(eps) != 2 || eps[0].Host != "bad.example.net" {
		t.Errorf("after the failure TTL: %v, want both targets", eps)
	}

	// Every target failing is a failure, not "no address".
	d.SetFault("good.example.net", imxtest.FaultServFail)
	d.SetFault("bad.example.net", imxtest.FaultServFail)
	clk.Advance(time.Hour)
	err := lookupErr(t, r, "example.com")
	if !errors.Is(err, discovery.ErrServerFailure) || errors.Is(err, discovery.ErrNoAddress) {
		t.Errorf("all targets SERVFAIL: %v, want ErrServerFailure", err)
	}
}

// TestCacheTTL checks that a result is cached for the smallest TTL of the
// records it used, bounded by MinTTL (30 s) and MaxTTL (1 h): within it a
// lookup sends no query, after it one does.
func TestCacheTTL(t *testing.T) {
	for _, tt := range []struct {
		name             string
		srvTTL, addrTTL  time.Duration
		glue             bool
		cachedFor        time.Duration
		fallbackToDomain bool
	}{
		{name: "SRV TTL smallest", srvTTL: 120 * time.Second, addrTTL: 600 * time.Second, glue: true, cachedFor: 120 * time.Second},
		{name: "glue TTL smallest", srvTTL: 600 * time.Second, addrTTL: 90 * time.Second, glue: true, cachedFor: 90 * time.Second},
		{name: "target TTL smallest", srvTTL: 600 * time.Second, addrTTL: 90 * time.Second, cachedFor: 90 * time.Second},
		{name: "floor", srvTTL: time.Second, addrTTL: 0, glue: true, cachedFor: 30 * time.Second},
		{name: "ceiling", srvTTL: 48 * time.Hour, addrTTL: 48 * time.Hour, glue: true, cachedFor: time.Hour},
		// No SRV: the missing SRV record counts for the negative TTL (30 s
		// without SOA), so that a new SRV record is seen soon.
		{name: "fallback", addrTTL: 600 * time.Second, cachedFor: 30 * time.Second, fallbackToDomain: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := imxtest.StartDNS(t)
			d.SetGlue(tt.glue)
			if !tt.fallbackToDomain {
				d.SetTTL(tt.srvTTL)
				d.SetSRV("example.com", imxtest.SRV{Port: 7000, Target: "imx.example.com"})
			}
			d.SetTTL(tt.addrTTL)
			d.SetA("imx.example.com", lo4)
			d.SetA("example.com", lo4)
			clk := newClock()
			r := newResolver(t, d, clk, nil)

			lookup(t, r, "example.com")
			q := d.TotalQueries()
			if q == 0 {
				t.Fatal("no query")
			}
			lookup(t, r, "example.com")
			clk.Advance(tt.cachedFor - time.Second)
			lookup(t, r, "example.com")
			if got := d.TotalQueries(); got != q {
				t.Fatalf("%d queries within the TTL, want none", got-q)
			}
			clk.Advance(2 * time.Second)
			lookup(t, r, "example.com")
			if got := d.TotalQueries(); got != 2*q {
				t.Errorf("%d queries after the TTL, want %d", got-q, q)
			}
		})
	}
}

// TestNegativeCache checks how long negative results and failures are
// cached: the SOA's negative TTL when the answer has one (bounded to 5 s and
// 5 min), the "." record's TTL, 30 s without SOA, and 5 s for a failure.
func TestNegativeCache(t *testing.T) {
	for _, tt := range []struct {
		name      string
		setup     func(d *imxtest.DNS)
		want      error
		cachedFor time.Duration
	}{
		{"NXDOMAIN without SOA", func(d *imxtest.DNS) {}, discovery.ErrNoSuchDomain, 30 * time.Second},
		{"NXDOMAIN with SOA", func(d *imxtest.DNS) { d.SetSOA(10 * time.Second) }, discovery.ErrNoSuchDomain, 10 * time.Second},
		{"SOA below the floor", func(d *imxtest.DNS) { d.SetSOA(time.Second) }, discovery.ErrNoSuchDomain, 5 * time.Second},
		{"SOA above the ceiling", func(d *imxtest.DNS) { d.SetSOA(24 * time.Hour) }, discovery.ErrNoSuchDomain, 5 * time.Minute},
		{"no service", func(d *imxtest.DNS) {
			d.SetTTL(120 * time.Second)
			d.SetNoService("example.com")
		}, discovery.ErrNoService, 120 * time.Second},
		{"SERVFAIL", func(d *imxtest.DNS) {
			d.SetSRV("example.com", imxtest.SRV{Port: 1, Target: "imx.example.com"})
			d.SetFault("_imx._tcp.example.com", imxtest.FaultServFail)
		}, discovery.ErrServerFailure, 5 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := imxtest.StartDNS(t)
			tt.setup(d)
			clk := newClock()
			r := newResolver(t, d, clk, nil)

			if err := lookupErr(t, r, "example.com"); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			q := d.TotalQueries()
			clk.Advance(tt.cachedFor - time.Second)
			if err := lookupErr(t, r, "example.com"); !errors.Is(err, tt.want) {
				t.Fatalf("cached err = %v, want %v", err, tt.want)
			}
			if got := d.TotalQueries(); got != q {
				t.Fatalf("%d queries within the negative TTL, want none", got-q)
			}

			// The domain comes to life; it is seen once the entry expires.
			d.SetFault("_imx._tcp.example.com", imxtest.FaultNone)
			d.SetSRV("example.com", imxtest.SRV{Port: 7000, Target: "imx.example.com"})
			d.SetA("imx.example.com", lo4)
			clk.Advance(2 * time.Second)
			if eps := lookup(t, r, "example.com"); len(eps) != 1 || eps[0].Port != 7000 {
				t.Errorf("after the negative TTL: %v", eps)
			}
		})
	}
}

// TestCoalescing checks that concurrent lookups of one domain share one set
// of queries.
func TestCoalescing(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetGlue(false)
	d.SetSRV("example.com", imxtest.SRV{Port: 7000, Target: "imx.example.com"})
	d.SetA("imx.example.com", lo4)
	r := newResolver(t, d, newClock(), nil)

	release := d.Hold("_imx._tcp.example.com")
	defer release()
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			eps, err := r.Lookup(ctx, "example.com")
			if err == nil && (len(eps) != 1 || eps[0].Port != 7000) {
				err = fmt.Errorf("Lookup = %v", eps)
			}
			errs <- err
		}()
	}
	waitFor(t, func() bool { return discovery.Waiters(r, discovery.ServiceIMX, "example.com") == n })
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := d.Queries("_imx._tcp.example.com"); got != 1 {
		t.Errorf("%d SRV queries for %d concurrent lookups, want 1", got, n)
	}
	if got := d.Queries("imx.example.com"); got != 2 {
		t.Errorf("%d address queries for %d concurrent lookups, want 2 (A and AAAA)", got, n)
	}
}

func TestTimeout(t *testing.T) {
	t.Run("caller deadline", func(t *testing.T) {
		d := imxtest.StartDNS(t)
		d.SetFault("_imx._tcp.example.com", imxtest.FaultDrop)
		r := newResolver(t, d, newClock(), nil) // queries time out after 2 s
		const deadline = 200 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		_, err := r.Lookup(ctx, "example.com")
		elapsed := time.Since(start)
		if !errors.Is(err, discovery.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want ErrTimeout and context.DeadlineExceeded", err)
		}
		if elapsed > deadline+time.Second {
			t.Errorf("returned after %v with a deadline of %v", elapsed, deadline)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "discovery: lookup _imx._tcp.example.com: ") {
			t.Errorf("err = %q, want it to name the lookup", err)
		}
		// The resolver's Close (cleanup) stops the query still in flight.
	})

	t.Run("server silent", func(t *testing.T) {
		d := imxtest.StartDNS(t)
		d.SetFault("_imx._tcp.example.com", imxtest.FaultDrop)
		r := newResolver(t, d, newClock(), func(c *discovery.Config) { c.QueryTimeout = 100 * time.Millisecond })
		err := lookupErr(t, r, "example.com")
		if !errors.Is(err, discovery.ErrTimeout) {
			t.Errorf("err = %v, want ErrTimeout", err)
		}
		if got := d.Queries("_imx._tcp.example.com"); got != 2 {
			t.Errorf("%d queries, want 2 (a timed-out query is tried twice)", got)
		}
	})

	t.Run("server unreachable", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		pc.Close()
		r, err := discovery.New(discovery.Config{Server: addr, QueryTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = r.Lookup(context.Background(), "example.com")
		if !errors.Is(err, discovery.ErrServerFailure) && !errors.Is(err, discovery.ErrTimeout) {
			t.Errorf("err = %v, want ErrServerFailure (or ErrTimeout)", err)
		}
	})
}

func TestTruncatedAnswer(t *testing.T) {
	d := imxtest.StartDNS(t)
	var srvs []imxtest.SRV
	for i := range 40 {
		target := fmt.Sprintf("server-with-a-rather-long-name-%02d.imx.example.net", i)
		srvs = append(srvs, imxtest.SRV{Port: uint16(7000 + i), Target: target})
		d.SetA(target, lo4)
	}
	d.SetSRV("example.com", srvs...)
	r := newResolver(t, d, newClock(), nil)

	eps := lookup(t, r, "example.com")
	if len(eps) != discovery.MaxTargets {
		t.Errorf("%d endpoints, want MaxTargets (%d) of 40", len(eps), discovery.MaxTargets)
	}
	if got := d.Queries("_imx._tcp.example.com"); got != 2 {
		t.Errorf("%d SRV queries, want 2 (UDP truncated, then TCP)", got)
	}
}

func TestInvalidDomain(t *testing.T) {
	d := imxtest.StartDNS(t)
	r := newResolver(t, d, newClock(), nil)
	for _, domain := range []string{"", ".", "a..b", strings.Repeat("a", 64) + ".example"} {
		if err := lookupErr(t, r, domain); !errors.Is(err, discovery.ErrNoSuchDomain) {
			t.Errorf("Lookup(%q): %v, want ErrNoSuchDomain", domain, err)
		}
	}
	if got := d.TotalQueries(); got != 0 {
		t.Errorf("%d queries for invalid names", got)
	}
}

func TestClose(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("example.com", lo4)
	release := d.Hold("_imx._tcp.example.com")
	defer release()
	r := newResolver(t, d, newClock(), nil)

	errc := make(chan error, 1)
	go func() {
		_, err := r.Lookup(context.Background(), "example.com")
		errc <- err
	}()
	waitFor(t, func() bool { return discovery.Waiters(r, discovery.ServiceIMX, "example.com") == 1 })
	r.Close()
	if err := <-errc; !errors.Is(err, discovery.ErrClosed) {
		t.Errorf("lookup in flight at Close: %v, want ErrClosed", err)
	}
	if _, err := r.Lookup(context.Background(), "example.com"); !errors.Is(err, discovery.ErrClosed) {
		t.Errorf("lookup after Close: %v, want ErrClosed", err)
	}
}

func TestCacheBound(t *testing.T) {
	d := imxtest.StartDNS(t)
	for _, dom := range []string{"a.example", "b.example", "c.example"} {
		d.SetA(dom, lo4)
	}
	r := newResolver(t, d, newClock(), func(c *discovery.Config) { c.CacheSize = 2 })
	lookup(t, r, "a.example")
	lookup(t, r, "b.example")
	lookup(t, r, "a.example") // a is now the most recently used
	lookup(t, r, "c.example") // evicts b
	q := d.TotalQueries()
	lookup(t, r, "a.example")
	lookup(t, r, "c.example")
	if got := d.TotalQueries(); got != q {
		t.Errorf("%d queries for cached domains", got-q)
	}
	lookup(t, r, "b.example")
	if got := d.TotalQueries(); got == q {
		t.Error("no query for the evicted domain")
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name    string
		cfg     discovery.Config
		servers []string // nil: New fails
	}{
		{"resolv.conf", discovery.Config{ResolvConf: write("ok", "search example.com\nnameserver 127.0.0.1\nnameserver ::1\noptions ndots:2\n")}, []string{"127.0.0.1:53", "[::1]:53"}},
		{"resolv.conf without nameserver", discovery.Config{ResolvConf: write("empty", "search example.com\n")}, nil},
		{"missing resolv.conf", discovery.Config{ResolvConf: filepath.Join(dir, "missing")}, nil},
		{"server ip:port", discovery.Config{Server: "127.0.0.1:5353"}, []string{"127.0.0.1:5353"}},
		{"server [ipv6]:port", discovery.Config{Server: "[::1]:5353"}, []string{"[::1]:5353"}},
		{"server ip", discovery.Config{Server: "::1"}, []string{"[::1]:53"}},
		{"server name", discovery.Config{Server: "localhost:53"}, nil},
		{"server port 0", discovery.Config{Server: "127.0.0.1:0"}, nil},
		{"MinTTL above MaxTTL", discovery.Config{Server: "127.0.0.1", MinTTL: time.Hour, MaxTTL: time.Minute}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := discovery.New(tt.cfg)
			if tt.servers == nil {
				if err == nil {
					r.Close()
					t.Fatal("New succeeded, want an error")
				}
				if !strings.HasPrefix(err.Error(), "discovery: ") {
					t.Errorf("err = %q, want the package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := discovery.Servers(r); !slices.Equal(got, tt.servers) {
				t.Errorf("servers %v, want %v", got, tt.servers)
			}
		})
	}
}

func TestServiceString(t *testing.T) {
	for s, want := range map[discovery.Service]string{
		discovery.ServiceIMX:  "_imx._tcp",
		discovery.ServiceIMXS: "_imxs._tcp",
		7:                     "Service(7)",
	} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", s, got, want)
		}
	}
}

// BenchmarkLookupCached measures a lookup answered from the cache: three
// endpoints of one priority, weighted-ordered afresh on every call.
func BenchmarkLookupCached(b *testing.B) {
	d := imxtest.StartDNS(b)
	d.SetSRV("example.com",
		imxtest.SRV{Priority: 10, Weight: 10, Port: 7000, Target: "a.example.net"},
		imxtest.SRV{Priority: 10, Weight: 30, Port: 7000, Target: "b.example.net"},
		imxtest.SRV{Priority: 10, Weight: 60, Port: 7000, Target: "c.example.net"})
	for _, h := range []string{"a", "b", "c"} {
		d.SetA(h+".example.net", lo4, lo6)
	}
	r := newResolver(b, d, newClock(), nil)
	ctx := context.Background()
	lookup(b, r, "example.com")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Lookup(ctx, "example.com"); err != nil {
			b.Fatal(err)
		}
	}
	if q := d.TotalQueries(); q != 1 {
		b.Errorf("%d queries, want 1", q)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatal("condition not met within 10 s")
		}
	}
}
