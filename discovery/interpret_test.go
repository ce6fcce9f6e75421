package discovery

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func msg(t testing.TB, qname string, qtype uint16, rcode int, answer, ns, extra []string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Response = true
	m.Rcode = rcode
	for _, sec := range []struct {
		rrs  []string
		dest *[]dns.RR
	}{{answer, &m.Answer}, {ns, &m.Ns}, {extra, &m.Extra}} {
		for _, s := range sec.rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatalf("record %q: %v", s, err)
			}
			*sec.dest = append(*sec.dest, rr)
		}
	}
	return m
}

func TestInterpret(t *testing.T) {
	const q = "_imx._tcp.example.com."
	soa := "example.com. 300 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 60"
	tests := []struct {
		name   string
		resp   *dns.Msg
		qtype  uint16
		rrs    int
		ttl    uint32
		neg    bool
		nx     bool
		soaTTL uint32 // 0: no SOA
		err    error
		ask    string // the name asked, when not the response's question
	}{
		{
			name:  "records, smallest TTL",
			resp:  msg(t, q, dns.TypeSRV, dns.RcodeSuccess, []string{q + " 300 IN SRV 10 5 7000 a.example.net.", q + " 120 IN SRV 20 5 7000 b.example.net."}, nil, nil),
			qtype: dns.TypeSRV, rrs: 2, ttl: 120,
		},
		{
			name:  "case differs (0x20)",
			resp:  msg(t, q, dns.TypeSRV, dns.RcodeSuccess, []string{"_IMX._tcp.Example.COM. 300 IN SRV 10 5 7000 a.example.net."}, nil, nil),
			qtype: dns.TypeSRV, rrs: 1, ttl: 300,
		},
		{
			name:  "other names and types ignored",
			resp:  msg(t, q, dns.TypeSRV, dns.RcodeSuccess, []string{"evil.example. 300 IN SRV 10 5 7000 a.example.net.", q + " 300 IN TXT \"x\""}, nil, nil),
			qtype: dns.TypeSRV, neg: true,
		},
		{
			name: "CNAME chain followed, its TTL counted",
			resp: msg(t, "example.com.", dns.TypeA, dns.RcodeSuccess, []string{
				"example.com. 60 IN CNAME web.example.net.",
				"web.example.net. 600 IN CNAME edge.example.org.",
				"edge.example.org. 300 IN A 192.0.2.1",
				"example.com. 300 IN A 192.0.2.99", // not at the end of the chain
			}, nil, nil),
			qtype: dns.TypeA, rrs: 1, ttl: 60,
		},
		{
			name: "CNAME loop",
			resp: msg(t, "a.example.", dns.TypeA, dns.RcodeSuccess, []string{
				"a.example. 60 IN CNAME b.example.",
				"b.example. 60 IN CNAME a.example.",
			}, nil, nil),
			qtype: dns.TypeA, neg: true,
		},
		{
			name:  "NODATA with SOA",
			resp:  msg(t, q, dns.TypeSRV, dns.RcodeSuccess, nil, []string{soa}, nil),
			qtype: dns.TypeSRV, neg: true, soaTTL: 60,
		},
		{
			name:  "NXDOMAIN without SOA",
			resp:  msg(t, q, dns.TypeSRV, dns.RcodeNameError, nil, nil, nil),
			qtype: dns.TypeSRV, neg: true, nx: true,
		},
		{
			name:  "NXDOMAIN with SOA TTL below MINIMUM",
			resp:  msg(t, q, dns.TypeSRV, dns.RcodeNameError, nil, []string{strings.Replace(soa, " 300 ", " 30 ", 1)}, nil),
			qtype: dns.TypeSRV, neg: true, nx: true, soaTTL: 30,
		},
		{
			name:  "NXDOMAIN wins over records",
			resp:  msg(t, q, dns.TypeSRV, dns.RcodeNameError, []string{q + " 300 IN SRV 10 5 7000 a.example.net."}, nil, nil),
			qtype: dns.TypeSRV, neg: true, nx: true,
		},
		{
			name:  "SERVFAIL",
			resp:  msg(t, q, dns.TypeSRV, dns.RcodeServerFailure, nil, nil, nil),
			qtype: dns.TypeSRV, err: ErrServerFailure,
		},
		{
			name:  "REFUSED",
			resp:  msg(t, q, dns.TypeSRV, dns.RcodeRefused, nil, nil, nil),
			qtype: dns.TypeSRV, err: ErrServerFailure,
		},
		{
			name:  "answer to another name",
			resp:  msg(t, "_imx._tcp.example.org.", dns.TypeSRV, dns.RcodeSuccess, nil, nil, nil),
			qtype: dns.TypeSRV, err: ErrServerFailure, ask: q,
		},
		{
			name:  "answer to another type",
			resp:  msg(t, q, dns.TypeA, dns.RcodeSuccess, nil, nil, nil),
			qtype: dns.TypeSRV, err: ErrServerFailure,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qname := tt.resp.Question[0].Name
			if tt.ask != "" {
				qname = tt.ask
			}
			a, err := interpret(tt.resp, qname, tt.qtype)
			if tt.err != nil || err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if len(a.rrs) != tt.rrs || a.ttl != tt.ttl || a.negative != tt.neg || a.nxdomain != tt.nx ||
				a.hasSOA != (tt.soaTTL > 0) || a.soaTTL != tt.soaTTL {
				t.Errorf("got %d rrs, ttl %d, negative %v, nxdomain %v, SOA %v/%d; want %d, %d, %v, %v, %d",
					len(a.rrs), a.ttl, a.negative, a.nxdomain, a.hasSOA, a.soaTTL, tt.rrs, tt.ttl, tt.neg, tt.nx, tt.soaTTL)
			}
		})
	}
}

func TestGlueRecords(t *testing.T) {
	m := msg(t, "_imx._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess, nil, nil, []string{
		"a.example.net. 300 IN A 192.0.2.1",
		"A.Example.Net. 200 IN AAAA 2001:db8::1",
		"a.example.net. 100 IN A 192.0.2.1", // duplicate
		"a.example.net. 50 IN A 0.0.0.0",    // unusable, its TTL not counted
		"b.example.net. 10 IN A 192.0.2.2",
		"a.example.net. 10 IN TXT \"not an address\"",
	})
	h, ok := glue(m.Extra, "a.example.net.")
	if !ok || len(h.addrs) != 2 || h.addrs[0].String() != "2001:db8::1" || h.addrs[1].String() != "192.0.2.1" || h.ttl.Seconds() != 100 {
		t.Errorf("glue = %v ttl %v, %v; want [2001:db8::1 192.0.2.1] ttl 100s", h.addrs, h.ttl, ok)
	}
	if _, ok := glue(m.Extra, "c.example.net."); ok {
		t.Error("glue for a target without glue records")
	}
}

// FuzzInterpret feeds arbitrary DNS messages, as a hostile server could send,
// to the code that reads answers: it must not panic, and what it returns must
// be consistent.
func FuzzInterpret(f *testing.F) {
	seed := []*dns.Msg{
		msg(f, "_imx._tcp.example.com.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"_imx._tcp.example.com. 300 IN SRV 10 5 7000 a.example.net.", "_imx._tcp.example.com. 300 IN SRV 0 0 0 ."},
			nil, []string{"a.example.net. 300 IN A 192.0.2.1", "a.example.net. 300 IN AAAA 2001:db8::1"}),
		msg(f, "example.com.", dns.TypeA, dns.RcodeSuccess,
			[]string{"example.com. 60 IN CNAME web.example.net.", "web.example.net. 300 IN A 192.0.2.1"}, nil, nil),
		msg(f, "example.com.", dns.TypeAAAA, dns.RcodeNameError, nil,
			[]string{"example.com. 300 IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 60"}, nil),
	}
	for _, m := range seed {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		resp := new(dns.Msg)
		if err := resp.Unpack(b); err != nil || len(resp.Question) == 0 {
			return
		}
		q := resp.Question[0]
		a, err := interpret(resp, q.Name, q.Qtype)
		if err != nil {
			if !errors.Is(err, ErrServerFailure) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		if a.negative == (len(a.rrs) > 0) {
			t.Fatalf("negative %v with %d records", a.negative, len(a.rrs))
		}
		for _, rr := range a.rrs {
			if rr.Header().Rrtype != q.Qtype {
				t.Fatalf("record %v for a %s question", rr, dns.TypeToString[q.Qtype])
			}
		}
		// The SRV path: the targets' glue, as targets() reads it.
		for _, rr := range a.rrs {
			if s, ok := rr.(*dns.SRV); ok {
				if h, ok := glue(a.extra, strings.ToLower(s.Target)); ok && len(h.addrs) == 0 {
					t.Fatal("glue reported without addresses")
				}
			}
		}
	})
}
