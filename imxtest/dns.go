package imxtest

import (
	"net/netip"
	"testing"

	"github.com/imxproject/imx/internal/localdns"
)

// DNS is the harness's DNS server; see package localdns.
type DNS = localdns.Server

// SRV is one SRV record published by DNS.SetSRV.
type SRV = localdns.SRV

// Fault makes the DNS server misbehave for one name; see DNS.SetFault.
type Fault = localdns.Fault

// Faults.
const (
	FaultNone     = localdns.FaultNone
	FaultDrop     = localdns.FaultDrop
	FaultServFail = localdns.FaultServFail
)

// DefaultTTL is the TTL of records set before any call to DNS.SetTTL.
const DefaultTTL = localdns.DefaultTTL

// StartDNS starts a DNS server on 127.0.0.1 with a random port, UDP and TCP,
// and stops it when the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	d, err := localdns.Start(netip.Addr{})
	if err != nil {
		t.Fatalf("imxtest: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("imxtest: DNS: %v", err)
		}
	})
	return d
}
