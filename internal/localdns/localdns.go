// Package localdns is a small authoritative DNS server for worlds of IMX
// domains that live on one machine: the test harness (imxtest) and the
// demo (imxd demo) publish their _imx._tcp SRV records and host addresses in
// it, so that discovery runs over real DNS. Any name can be given records;
// unknown names get NXDOMAIN, known names without the asked type NODATA.
// Faults (dropped queries, SERVFAIL) can be injected for tests.
//
// It listens on a loopback address only and is not meant to face the
// internet.
package localdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// SRV is one SRV record (RFC 2782) published by [Server.SetSRV].
type SRV struct {
	Priority uint16
	Weight   uint16
	Port     uint16
	// Target is the host name of the server, or "." for "no service".
	Target string
}

// Fault makes the server misbehave for one name; see [Server.SetFault].
type Fault uint8

const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultDrop receives queries but never answers them, so that clients
	// time out.
	FaultDrop
	// FaultServFail answers every query with SERVFAIL.
	FaultServFail
)

// DefaultTTL is the TTL of the records set before any call to [Server.SetTTL].
const DefaultTTL = 60 * time.Second

// ednsSize is the UDP payload size the server advertises in its own OPT
// record (the DNS Flag Day 2020 value).
const ednsSize = 1232

// Server is an authoritative DNS server on a loopback address, over UDP and TCP on the
// same random port, for a zone-less test world: any name can be given
// records, unknown names get NXDOMAIN, and known names without the asked type
// get NODATA. Records can be changed while it runs. All methods are safe for
// concurrent use.
//
// Names are case-insensitive and may be given with or without the trailing
// dot.
type Server struct {
	addr string
	stop chan struct{} // closed by Close: releases held queries
	errc chan error    // the results of the two serve loops

	closeOnce sync.Once
	closeErr  error
	udp       *dns.Server
	tcp       *dns.Server

	mu      sync.Mutex
	records map[string][]dns.RR // canonical owner name -> its records
	ttl     uint32              // TTL of records set from now on, seconds
	soaMin  uint32              // negative answers carry an SOA when > 0
	noGlue  bool
	faults  map[string]Fault
	holds   map[string]chan struct{}
	queries map[string]int
	total   int
}

// Start starts a DNS server on ip (127.0.0.1 if zero) with a random port,
// UDP and TCP. Close stops it.
func Start(ip netip.Addr) (*Server, error) {
	if !ip.IsValid() {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	d := &Server{
		stop:    make(chan struct{}),
		records: map[string][]dns.RR{},
		ttl:     uint32(DefaultTTL / time.Second),
		faults:  map[string]Fault{},
		holds:   map[string]chan struct{}{},
		queries: map[string]int{},
		errc:    make(chan error, 2),
	}
	pc, ln, err := listenPair(ip)
	if err != nil {
		return nil, fmt.Errorf("localdns: listen: %w", err)
	}
	d.addr = pc.LocalAddr().String()
	handler := dns.HandlerFunc(d.serve)
	d.udp = &dns.Server{PacketConn: pc, Handler: handler}
	d.tcp = &dns.Server{Listener: ln, Handler: handler}

	for i, srv := range []*dns.Server{d.udp, d.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { d.errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-d.errc:
			if i == 1 {
				_ = d.udp.Shutdown()
			}
			_ = pc.Close()
			_ = ln.Close()
			return nil, fmt.Errorf("localdns: serve: %w", err)
		}
	}
	return d, nil
}

// Close stops the server and waits for it.
func (d *Server) Close() error {
	d.closeOnce.Do(func() {
		close(d.stop)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		for _, srv := range []*dns.Server{d.udp, d.tcp} {
			if err := srv.ShutdownContext(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		for range 2 {
			select {
			case err := <-d.errc:
				if err != nil {
					errs = append(errs, err)
				}
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("localdns: server did not stop: %w", ctx.Err()))
				d.closeErr = errors.Join(errs...)
				return
			}
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// listenPair opens a UDP socket and a TCP listener on the same random port
// of ip, retrying when the TCP port happens to be taken.
func listenPair(ip netip.Addr) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("no port free for both UDP and TCP: %w", lastErr)
}

// Addr is the server's address, "ip:port", the same for UDP and TCP:
// the resolver address to configure.
func (d *Server) Addr() string { return d.addr }

// SetTTL sets the TTL of the records set from now on (records already set
// keep theirs), so that one test world can mix TTLs. It is truncated to whole
// seconds. The default is [DefaultTTL].
func (d *Server) SetTTL(ttl time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ttl = uint32(ttl / time.Second)
}

// SetSOA makes negative answers (NXDOMAIN and NODATA) carry an SOA record in
// their authority section whose TTL and MINIMUM field are minimum, as a real
// zone's do (RFC 2308). Its owner is the last two labels of the name asked.
// Zero, the default, sends negative answers without an SOA.
func (d *Server) SetSOA(minimum time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.soaMin = uint32(minimum / time.Second)
}

// SetGlue says whether SRV answers carry the A and AAAA records of their
// targets in the additional section ("glue"), as authoritative servers do
// for targets they know. It is on by default.
func (d *Server) SetGlue(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.noGlue = !on
}

// SetSRV replaces the SRV records of _imx._tcp.<domain> with srvs (none
// removes them).
func (d *Server) SetSRV(domain string, srvs ...SRV) {
	d.setSRV("_imx._tcp."+domain, srvs)
}

// SetSRVTLS replaces the SRV records of _imxs._tcp.<domain>, the direct-TLS
// service, with srvs (none removes them).
func (d *Server) SetSRVTLS(domain string, srvs ...SRV) {
	d.setSRV("_imxs._tcp."+domain, srvs)
}

// SetNoService publishes that domain offers no IMX service: the single SRV
// record of _imx._tcp.<domain> has the target "." (RFC 2782).
func (d *Server) SetNoService(domain string) {
	d.setSRV("_imx._tcp."+domain, []SRV{{Target: "."}})
}

// SetServiceSRV replaces the SRV records of <service>.<domain>, such as
// _xmpp-server._tcp.example.com for another protocol's servers, with srvs
// (none removes them).
func (d *Server) SetServiceSRV(service, domain string, srvs ...SRV) {
	d.setSRV(service+"."+domain, srvs)
}

func (d *Server) setSRV(name string, srvs []SRV) {
	owner := dns.CanonicalName(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	rrs := make([]dns.RR, 0, len(srvs))
	for _, s := range srvs {
		rrs = append(rrs, &dns.SRV{
			Hdr:      d.header(owner, dns.TypeSRV),
			Priority: s.Priority,
			Weight:   s.Weight,
			Port:     s.Port,
			Target:   dns.CanonicalName(s.Target),
		})
	}
	d.replace(owner, rrs, dns.TypeSRV)
}

// SetA replaces the address records of host with addrs: an A record for each
// IPv4 address and an AAAA record for each IPv6 one. No addresses removes
// them.
func (d *Server) SetA(host string, addrs ...netip.Addr) {
	owner := dns.CanonicalName(host)
	d.mu.Lock()
	defer d.mu.Unlock()
	rrs := make([]dns.RR, 0, len(addrs))
	for _, a := range addrs {
		switch {
		case a.Is4():
			rrs = append(rrs, &dns.A{Hdr: d.header(owner, dns.TypeA), A: a.AsSlice()})
		case a.Is6():
			rrs = append(rrs, &dns.AAAA{Hdr: d.header(owner, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	d.replace(owner, rrs, dns.TypeA, dns.TypeAAAA)
}

// Remove removes every record owned by name itself (not those of names below
// it): Remove("_imx._tcp.example.com") withdraws an SRV set,
// Remove("example.com") the domain's addresses.
func (d *Server) Remove(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.records, dns.CanonicalName(name))
}

// SetFault makes the server misbehave for queries of name (any type);
// [FaultNone] restores normal answers.
func (d *Server) SetFault(name string, f Fault) {
	name = dns.CanonicalName(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	if f == FaultNone {
		delete(d.faults, name)
		return
	}
	d.faults[name] = f
}

// Hold makes queries of name wait, counted but unanswered, until release is
// called (or the test ends); they are then answered from the records as they
// are at that time. It lets a test have several lookups in flight at once.
// Calling release more than once is harmless.
func (d *Server) Hold(name string) (release func()) {
	name = dns.CanonicalName(name)
	ch := make(chan struct{})
	d.mu.Lock()
	d.holds[name] = ch
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			if d.holds[name] == ch {
				delete(d.holds, name)
			}
			d.mu.Unlock()
			close(ch)
		})
	}
}

// Queries is the number of queries received so far for name, of any type,
// over UDP and TCP, including those dropped or held.
func (d *Server) Queries(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[dns.CanonicalName(name)]
}

// TotalQueries is the number of queries received so far for all names.
func (d *Server) TotalQueries() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// header is the header of a new record of owner; d.mu is held.
func (d *Server) header(owner string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: d.ttl}
}

// replace sets the records of the given types at owner to rrs, keeping its
// records of other types; d.mu is held.
func (d *Server) replace(owner string, rrs []dns.RR, types ...uint16) {
	var kept []dns.RR
	for _, rr := range d.records[owner] {
		drop := false
		for _, t := range types {
			drop = drop || rr.Header().Rrtype == t
		}
		if !drop {
			kept = append(kept, rr)
		}
	}
	kept = append(kept, rrs...)
	if len(kept) == 0 {
		delete(d.records, owner)
		return
	}
	d.records[owner] = kept
}

// exists reports whether name has records or is an empty non-terminal (a
// name below it has records), which makes the answer NODATA rather than
// NXDOMAIN; d.mu is held.
func (d *Server) exists(name string) bool {
	if len(d.records[name]) > 0 {
		return true
	}
	for owner := range d.records {
		if strings.HasSuffix(owner, "."+name) {
			return true
		}
	}
	return false
}

// serve answers one query.
func (d *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		resp := new(dns.Msg)
		resp.SetRcodeFormatError(req)
		w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)

	d.mu.Lock()
	d.queries[name]++
	d.total++
	hold := d.holds[name]
	d.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-d.stop:
			return
		}
	}

	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true

	d.mu.Lock()
	switch d.faults[name] {
	case FaultDrop:
		d.mu.Unlock()
		return
	case FaultServFail:
		resp.Rcode = dns.RcodeServerFailure
	default:
		d.answer(resp, q, name)
	}
	d.mu.Unlock()

	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
		resp.SetEdns0(ednsSize, false)
	}
	if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
		resp.Truncate(size)
	}
	w.WriteMsg(resp)
}

// answer fills resp for question q about the canonical name; d.mu is held.
func (d *Server) answer(resp *dns.Msg, q dns.Question, name string) {
	for _, rr := range d.records[name] {
		if q.Qtype != dns.TypeANY && rr.Header().Rrtype != q.Qtype {
			continue
		}
		cp := dns.Copy(rr)
		cp.Header().Name = q.Name // answer with the spelling asked (0x20)
		resp.Answer = append(resp.Answer, cp)
	}
	if len(resp.Answer) > 0 {
		if !d.noGlue {
			for _, rr := range resp.Answer {
				if srv, ok := rr.(*dns.SRV); ok {
					for _, g := range d.records[srv.Target] {
						if t := g.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
							resp.Extra = append(resp.Extra, dns.Copy(g))
						}
					}
				}
			}
		}
		return
	}
	if !d.exists(name) {
		resp.Rcode = dns.RcodeNameError
	}
	if d.soaMin > 0 {
		labels := dns.SplitDomainName(name)
		zone := "."
		if n := len(labels); n > 0 {
			zone = dns.Fqdn(strings.Join(labels[max(n-2, 0):], "."))
		}
		resp.Ns = append(resp.Ns, &dns.SOA{
			Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: d.soaMin},
			Ns:      dns.Fqdn("ns." + strings.TrimPrefix(zone, ".")),
			Mbox:    dns.Fqdn("hostmaster." + strings.TrimPrefix(zone, ".")),
			Serial:  1,
			Refresh: 3600,
			Retry:   600,
			Expire:  86400,
			Minttl:  d.soaMin,
		})
	}
}
