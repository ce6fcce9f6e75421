package imxtest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/imxproject/imx/imxtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ask sends one query over network ("udp" or "tcp"), with an EDNS(0) payload
// size when edns > 0.
func ask(t *testing.T, d *imxtest.DNS, network, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	resp, err := try(d, network, name, qtype, edns, 5*time.Second)
	if err != nil {
		t.Fatalf("%s %s query of %s: %v", network, dns.TypeToString[qtype], name, err)
	}
	return resp
}

func try(d *imxtest.DNS, network, name string, qtype uint16, edns uint16, timeout time.Duration) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := &dns.Client{Net: network, UDPSize: edns}
	resp, _, err := c.ExchangeContext(ctx, m, d.Addr())
	return resp, err
}

var (
	v4 = netip.MustParseAddr("127.0.0.2")
	v6 = netip.MustParseAddr("::1")
)

func TestAnswers(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("imx1.example.net", v4, v6)
	d.SetSRV("example.com", imxtest.SRV{Priority: 10, Weight: 5, Port: 7000, Target: "imx1.example.net"})

	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		answers int
	}{
		{"A", "imx1.example.net", dns.TypeA, dns.RcodeSuccess, 1},
		{"AAAA", "imx1.example.net", dns.TypeAAAA, dns.RcodeSuccess, 1},
		{"case-insensitive", "IMX1.Example.NET", dns.TypeA, dns.RcodeSuccess, 1},
		{"SRV", "_imx._tcp.example.com", dns.TypeSRV, dns.RcodeSuccess, 1},
		{"NODATA: known name, other type", "imx1.example.net", dns.TypeSRV, dns.RcodeSuccess, 0},
		{"NODATA: empty non-terminal", "_tcp.example.com", dns.TypeA, dns.RcodeSuccess, 0},
		{"NXDOMAIN: unknown name", "nothing.example.org", dns.TypeA, dns.RcodeNameError, 0},
		{"NXDOMAIN: unknown SRV", "_imx._tcp.example.org", dns.TypeSRV, dns.RcodeNameError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, network := range []string{"udp", "tcp"} {
				resp := ask(t, d, network, tt.qname, tt.qtype, 0)
				if resp.Rcode != tt.rcode || len(resp.Answer) != tt.answers || !resp.Authoritative {
					t.Errorf("%s: rcode %s, %d answers, aa %v; want %s, %d answers, aa",
						network, dns.RcodeToString[resp.Rcode], len(resp.Answer), resp.Authoritative,
						dns.RcodeToString[tt.rcode], tt.answers)
				}
				if len(resp.Ns) != 0 {
					t.Errorf("%s: authority section %v without SetSOA", network, resp.Ns)
				}
			}
		})
	}

	resp := ask(t, d, "udp", "_imx._tcp.example.com", dns.TypeSRV, 0)
	srv, ok := resp.Answer[0].(*dns.SRV)
	if !ok || srv.Priority != 10 || srv.Weight != 5 || srv.Port != 7000 || srv.Target != "imx1.example.net." {
		t.Errorf("SRV answer %v", resp.Answer[0])
	}
	resp = ask(t, d, "udp", "imx1.example.net", dns.TypeAAAA, 0)
	if aaaa, ok := resp.Answer[0].(*dns.AAAA); !ok || !aaaa.AAAA.Equal(net.IPv6loopback) {
		t.Errorf("AAAA answer %v", resp.Answer[0])
	}
	if got := d.Queries("imx1.example.net."); got != 2*4+1 {
		t.Errorf("Queries(imx1.example.net.) = %d, want 9", got)
	}
}

func TestGlue(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("imx1.example.net", v4, v6)
	d.SetSRV("example.com", imxtest.SRV{Port: 7000, Target: "imx1.example.net"}, imxtest.SRV{Port: 7000, Target: "unknown.example.net"})

	resp := ask(t, d, "udp", "_imx._tcp.example.com", dns.TypeSRV, 1232)
	var glue []string
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			glue = append(glue, rr.String())
		}
	}
	if len(glue) != 2 || !strings.Contains(glue[0], "127.0.0.2") || !strings.Contains(glue[1], "::1") {
		t.Errorf("glue %q, want the A and AAAA of imx1.example.net", glue)
	}
	if resp.IsEdns0() == nil {
		t.Error("no OPT record in the answer to an EDNS(0) query")
	}

	d.SetGlue(false)
	resp = ask(t, d, "udp", "_imx._tcp.example.com", dns.TypeSRV, 0)
	if len(resp.Answer) != 2 || len(resp.Extra) != 0 {
		t.Errorf("without glue: %d answers, extra %v", len(resp.Answer), resp.Extra)
	}
}

func TestNoServiceAndTLS(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetNoService("example.com")
	d.SetSRVTLS("example.com", imxtest.SRV{Port: 7001, Target: "imx.example.com"})

	resp := ask(t, d, "udp", "_imx._tcp.example.com", dns.TypeSRV, 0)
	if srv, ok := resp.Answer[0].(*dns.SRV); len(resp.Answer) != 1 || !ok || srv.Target != "." {
		t.Errorf("no-service answer %v, want one SRV with target \".\"", resp.Answer)
	}
	resp = ask(t, d, "udp", "_imxs._tcp.example.com", dns.TypeSRV, 0)
	if srv, ok := resp.Answer[0].(*dns.SRV); len(resp.Answer) != 1 || !ok || srv.Port != 7001 {
		t.Errorf("_imxs answer %v", resp.Answer)
	}
}

func TestSetRemove(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("example.com", v4)
	d.SetSRV("example.com", imxtest.SRV{Port: 1, Target: "example.com"})
	d.SetA("example.com", v6) // replaces the A record
	resp := ask(t, d, "udp", "example.com", dns.TypeA, 0)
	if len(resp.Answer) != 0 || resp.Rcode != dns.RcodeSuccess {
		t.Errorf("A after SetA(v6): %v %s, want NODATA", resp.Answer, dns.RcodeToString[resp.Rcode])
	}
	d.Remove("example.com")
	// _imx._tcp.example.com still exists below it: NODATA, not NXDOMAIN.
	if resp := ask(t, d, "udp", "example.com", dns.TypeAAAA, 0); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("AAAA after Remove: %v %s, want NODATA", resp.Answer, dns.RcodeToString[resp.Rcode])
	}
	d.SetSRV("example.com") // no records: removes them
	if resp := ask(t, d, "udp", "example.com", dns.TypeAAAA, 0); resp.Rcode != dns.RcodeNameError {
		t.Errorf("AAAA after removing everything: %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
}

func TestTTLAndSOA(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("old.example.com", v4)
	d.SetTTL(5 * time.Minute)
	d.SetA("new.example.com", v4)
	if resp := ask(t, d, "udp", "old.example.com", dns.TypeA, 0); resp.Answer[0].Header().Ttl != uint32(imxtest.DefaultTTL/time.Second) {
		t.Errorf("TTL of a record set before SetTTL: %d", resp.Answer[0].Header().Ttl)
	}
	if resp := ask(t, d, "udp", "new.example.com", dns.TypeA, 0); resp.Answer[0].Header().Ttl != 300 {
		t.Errorf("TTL of a record set after SetTTL(5m): %d", resp.Answer[0].Header().Ttl)
	}

	d.SetSOA(10 * time.Second)
	for _, q := range []struct {
		name  string
		rcode int
	}{{"new.example.com", dns.RcodeSuccess}, {"none.example.com", dns.RcodeNameError}} {
		resp := ask(t, d, "udp", q.name, dns.TypeAAAA, 0)
		if resp.Rcode != q.rcode || len(resp.Ns) != 1 {
			t.Fatalf("%s AAAA: %s, authority %v", q.name, dns.RcodeToString[resp.Rcode], resp.Ns)
		}
		soa, ok := resp.Ns[0].(*dns.SOA)
		if !ok || soa.Minttl != 10 || soa.Hdr.Ttl != 10 || soa.Hdr.Name != "example.com." {
			t.Errorf("%s AAAA: SOA %v, want example.com. with TTL and MINIMUM 10", q.name, resp.Ns[0])
		}
	}
}

func TestTruncation(t *testing.T) {
	d := imxtest.StartDNS(t)
	var srvs []imxtest.SRV
	for i := range 40 {
		srvs = append(srvs, imxtest.SRV{Port: 7000, Target: fmt.Sprintf("server-with-a-rather-long-name-%02d.imx.example.net", i)})
	}
	d.SetSRV("example.com", srvs...)

	for _, edns := range []uint16{0, 1232} {
		resp := ask(t, d, "udp", "_imx._tcp.example.com", dns.TypeSRV, edns)
		if !resp.Truncated || len(resp.Answer) >= 40 {
			t.Errorf("UDP (EDNS %d): truncated %v with %d answers, want TC and fewer than 40", edns, resp.Truncated, len(resp.Answer))
		}
		resp.Compress = true
		if n, _ := resp.Pack(); edns > 0 && len(n) > int(edns) || edns == 0 && len(n) > dns.MinMsgSize {
			t.Errorf("UDP (EDNS %d): %d-byte answer", edns, len(n))
		}
	}
	resp := ask(t, d, "tcp", "_imx._tcp.example.com", dns.TypeSRV, 1232)
	if resp.Truncated || len(resp.Answer) != 40 {
		t.Errorf("TCP: truncated %v with %d answers, want all 40", resp.Truncated, len(resp.Answer))
	}
}

func TestFaults(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("example.com", v4)

	d.SetFault("example.com", imxtest.FaultServFail)
	if resp := ask(t, d, "udp", "example.com", dns.TypeA, 0); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("with FaultServFail: %s", dns.RcodeToString[resp.Rcode])
	}

	d.SetFault("example.com", imxtest.FaultDrop)
	for _, network := range []string{"udp", "tcp"} {
		_, err := try(d, network, "example.com", dns.TypeA, 0, 200*time.Millisecond)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s with FaultDrop: %v, want a timeout", network, err)
		}
	}

	d.SetFault("example.com", imxtest.FaultNone)
	if resp := ask(t, d, "udp", "example.com", dns.TypeA, 0); len(resp.Answer) != 1 {
		t.Errorf("after FaultNone: %v", resp.Answer)
	}
	if got := d.Queries("EXAMPLE.COM"); got != 4 {
		t.Errorf("Queries = %d, want 4 (answered, dropped or not)", got)
	}
	if got := d.TotalQueries(); got != 4 {
		t.Errorf("TotalQueries = %d, want 4", got)
	}
}

func TestHold(t *testing.T) {
	d := imxtest.StartDNS(t)
	d.SetA("example.com", v4)
	release := d.Hold("example.com")

	type result struct {
		resp *dns.Msg
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := try(d, "udp", "example.com", dns.TypeA, 0, 10*time.Second)
		done <- result{resp, err}
	}()
	waitFor(t, func() bool { return d.Queries("example.com") == 1 })
	select {
	case <-done:
		t.Fatal("held query answered before release")
	default:
	}
	d.SetA("example.com", v4, netip.MustParseAddr("127.0.0.3")) // answered as the records are at release
	release()
	release()
	res := <-done
	if res.err != nil || len(res.resp.Answer) != 2 {
		t.Fatalf("after release: %v, %v", res.resp, res.err)
	}

	// A query still held when the test ends does not block the shutdown.
	d.Hold("example.com")
	go func() {
		_, err := try(d, "udp", "example.com", dns.TypeA, 0, 200*time.Millisecond)
		done <- result{nil, err}
	}()
	if res := <-done; res.err == nil {
		t.Error("held query answered")
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
