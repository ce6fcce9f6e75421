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
