package localdns

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStartOnAddress starts a server on another loopback address, answers
// an SRV query, and stops cleanly (package imxtest tests the records in
// depth through its wrapper).
func TestStartOnAddress(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.9")
	d, err := Start(ip)
	if err != nil {
		t.Fatal(err)
	}
	if ap := netip.MustParseAddrPort(d.Addr()); ap.Addr() != ip {
		t.Errorf("listening on %s, want %s", d.Addr(), ip)
	}
	d.SetSRV("alpha.localhost", SRV{Priority: 1, Weight: 1, Port: 7468, Target: "imx.alpha.localhost"})
	d.SetA("imx.alpha.localhost", netip.MustParseAddr("127.0.0.2"))
	m := new(dns.Msg)
	m.SetQuestion("_imx._tcp.alpha.localhost.", dns.TypeSRV)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, _, err := new(dns.Client).ExchangeContext(ctx, m, d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Answer) != 1 || resp.Answer[0].(*dns.SRV).Port != 7468 {
		t.Errorf("answer %v", resp.Answer)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestServiceSRV publishes another protocol's SRV records, as imxbench
// does for the XMPP servers it compares imxd with.
func TestServiceSRV(t *testing.T) {
	d, err := Start(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SetServiceSRV("_xmpp-server._tcp", "beta.localhost", SRV{Priority: 0, Weight: 5, Port: 15269, Target: "xmpp.beta.localhost"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ask := func(name string) []dns.RR {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSRV)
		resp, _, err := new(dns.Client).ExchangeContext(ctx, m, d.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Answer
	}
	if ans := ask("_xmpp-server._tcp.beta.localhost."); len(ans) != 1 || ans[0].(*dns.SRV).Port != 15269 || ans[0].(*dns.SRV).Target != "xmpp.beta.localhost." {
		t.Errorf("answer %v", ans)
	}
	if ans := ask("_imx._tcp.beta.localhost."); len(ans) != 0 {
		t.Errorf("_imx._tcp answered %v; only the XMPP service was published", ans)
	}
	d.SetServiceSRV("_xmpp-server._tcp", "beta.localhost")
	if ans := ask("_xmpp-server._tcp.beta.localhost."); len(ans) != 0 {
		t.Errorf("after removal: %v", ans)
	}
}
