package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size advertised in queries: the DNS Flag Day
// 2020 value, which avoids IP fragmentation; larger answers come over TCP.
const ednsSize = 1232

// maxParallel bounds the SRV targets resolved at once by one lookup.
const maxParallel = 8

// maxCNAMEs bounds the CNAME chain followed inside one answer.
const maxCNAMEs = 8

// kindError is an error of a kind, one of the package's sentinels (or nil),
// with a message that says what happened without repeating the kind's text.
type kindError struct {
	kind error
	msg  string
	err  error // the cause, or nil
}

func newErr(kind, cause error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...), err: cause}
}

func (e *kindError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *kindError) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

// contextError is the error of an operation stopped by its context.
func contextError(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return newErr(ErrTimeout, err, "%s timed out", what)
	}
	return newErr(nil, err, "%s canceled", what)
}

// answer is what one DNS response says about a name and type.
type answer struct {
	rrs   []dns.RR // records of the type asked, at the name or the end of its CNAME chain
	extra []dns.RR // the additional section, for glue
	ttl   uint32   // smallest TTL of rrs and of the CNAMEs leading to them

	negative bool   // no record of the type: NXDOMAIN or NODATA
	nxdomain bool   // the name does not exist
	hasSOA   bool   // the negative answer carries an SOA record
	soaTTL   uint32 // then min(SOA TTL, SOA MINIMUM), RFC 2308 §5
}

// interpret reads the response to a query of qname (absolute) and qtype. Its
// input comes from the network: it never panics and checks what it uses.
func interpret(resp *dns.Msg, qname string, qtype uint16) (answer, error) {
	if len(resp.Question) != 1 || resp.Question[0].Qtype != qtype || !strings.EqualFold(resp.Question[0].Name, qname) {
		return answer{}, newErr(ErrServerFailure, nil, "the answer is for another question")
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return answer{}, newErr(ErrServerFailure, nil, "the server answered %s", rcodeString(resp.Rcode))
	}
	a := answer{extra: resp.Extra}
	name, ttl := qname, uint32(math.MaxUint32)
	for range maxCNAMEs {
		i := slices.IndexFunc(resp.Answer, func(rr dns.RR) bool {
			h := rr.Header()
			return h.Rrtype == dns.TypeCNAME && h.Class == dns.ClassINET && strings.EqualFold(h.Name, name)
		})
		if i < 0 {
			break
		}
		c, ok := resp.Answer[i].(*dns.CNAME)
		if !ok {
			break
		}
		name, ttl = c.Target, min(ttl, c.Hdr.Ttl)
	}
	if resp.Rcode == dns.RcodeSuccess {
		for _, rr := range resp.Answer {
			h := rr.Header()
			if h.Rrtype == qtype && h.Class == dns.ClassINET && strings.EqualFold(h.Name, name) {
				a.rrs = append(a.rrs, rr)
				ttl = min(ttl, h.Ttl)
			}
		}
	}
	if len(a.rrs) > 0 {
		a.ttl = ttl
		return a, nil
	}
	a.negative = true
	a.nxdomain = resp.Rcode == dns.RcodeNameError
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			a.hasSOA, a.soaTTL = true, min(soa.Hdr.Ttl, soa.Minttl)
			break
		}
	}
	return a, nil
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rcode)
}

// query asks the name servers about qname (absolute) and qtype: each server
// in turn until one answers, and a second round when one timed out.
func (r *Resolver) query(ctx context.Context, qname string, qtype uint16) (answer, error) {
	what := strings.TrimSuffix(qname, ".") + " " + dns.TypeToString[qtype] + " query"
	var lastErr error
	for range attempts {
		timedOut := false
		for _, server := range r.servers {
			if err := ctx.Err(); err != nil {
				return answer{}, contextError(what, err)
			}
			resp, err := r.exchange(ctx, qname, qtype, server)
			if err == nil {
				a, err := interpret(resp, qname, qtype)
				if err == nil {
					return a, nil
				}
				lastErr = fmt.Errorf("%s to %s: %w", what, server, err)
				continue
			}
			var ne net.Error
			switch {
			case errors.Is(err, context.Canceled):
				lastErr = newErr(nil, err, "%s to %s canceled", what, server)
			case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
				lastErr = newErr(ErrTimeout, err, "%s to %s timed out", what, server)
				timedOut = true
			default:
				lastErr = newErr(ErrServerFailure, err, "%s to %s failed", what, server)
			}
		}
		if !timedOut {
			break
		}
	}
	return answer{}, lastErr
}

// exchange sends one query to server over UDP, and again over TCP when the
// answer is truncated.
func (r *Resolver) exchange(ctx context.Context, qname string, qtype uint16, server string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsSize, false)
	resp, err := r.exchangeNet(ctx, "udp", m, server)
	if err == nil && resp.Truncated {
		resp, err = r.exchangeNet(ctx, "tcp", m, server)
	}
	return resp, err
}

// exchangeNet sends m to server over network and reads the answer, within
// QueryTimeout and ctx: a canceled ctx closes the connection at once.
func (r *Resolver) exchangeNet(ctx context.Context, network string, m *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.QueryTimeout)
	defer cancel()
	c := &dns.Client{Net: network, UDPSize: ednsSize, Timeout: r.cfg.QueryTimeout}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return resp, nil
}

// resolve looks up svc for domain. It returns the endpoints sorted by
// priority or the error, and how long to cache the result.
func (r *Resolver) resolve(ctx context.Context, svc Service, domain string) ([]Endpoint, time.Duration, error) {
	ans, err := r.query(ctx, svc.String()+"."+domain+".", dns.TypeSRV)
	if err != nil {
		return nil, r.cfg.FailureTTL, err
	}
	if !ans.negative {
		return r.targets(ctx, ans)
	}
	if svc == ServiceIMXS {
		return nil, r.negTTL(ans), newErr(ErrNoService, nil, "no %s SRV record (direct TLS is offered only through one)", svc)
	}
	return r.fallback(ctx, domain, ans)
}

// fallback resolves the domain's own addresses when it has no SRV record
// (srv is the negative SRV answer).
func (r *Resolver) fallback(ctx context.Context, domain string, srv answer) ([]Endpoint, time.Duration, error) {
	h := r.resolveHost(ctx, domain+".")
	switch {
	case len(h.addrs) > 0:
		ttl := r.posTTL(min(h.ttl, r.negTTL(srv)))
		if h.err != nil {
			ttl = min(ttl, r.cfg.FailureTTL)
		}
		return []Endpoint{{Host: domain, Port: DefaultPort, Addrs: h.addrs}}, ttl, nil
	case h.err != nil:
		return nil, r.cfg.FailureTTL, fmt.Errorf("no SRV record, and no address for %s: %w", domain, h.err)
	case h.nxdomain:
		return nil, min(h.negTTL, r.negTTL(srv)), newErr(ErrNoSuchDomain, nil, "no SRV record, and %s does not exist (NXDOMAIN)", domain)
	default:
		return nil, min(h.negTTL, r.negTTL(srv)), newErr(ErrNoAddress, nil, "no SRV record, and no A or AAAA record for %s", domain)
	}
}

// targets resolves the SRV records of ans to endpoints.
func (r *Resolver) targets(ctx context.Context, ans answer) ([]Endpoint, time.Duration, error) {
	srvs := make([]*dns.SRV, 0, len(ans.rrs))
	noService := false
	for _, rr := range ans.rrs {
		s, ok := rr.(*dns.SRV)
		switch {
		case !ok:
		case s.Target == ".":
			noService = true
		case s.Port == 0: // nothing to connect to
		default:
			srvs = append(srvs, s)
		}
	}
	if len(srvs) == 0 {
		why := "no SRV record has a port"
		if noService {
			why = `the SRV record's target is "."`
		}
		return nil, r.negClamp(sec(ans.ttl)), newErr(ErrNoService, nil, "no IMX service (%s)", why)
	}
	slices.SortStableFunc(srvs, func(a, b *dns.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	srvs = srvs[:min(len(srvs), MaxTargets)]

	// Resolve each distinct target once: from glue when the answer has it,
	// with queries otherwise.
	hosts := map[string]*hostResult{}
	var names []string
	for _, s := range srvs {
		name := strings.ToLower(s.Target)
		if _, ok := hosts[name]; ok {
			continue
		}
		if h, ok := glue(ans.extra, name); ok {
			hosts[name] = h
			continue
		}
		hosts[name] = nil
		names = append(names, name)
	}
	results := make([]hostResult, len(names))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = r.resolveHost(ctx, name)
		})
	}
	wg.Wait()
	for i, name := range names {
		hosts[name] = &results[i]
	}

	ttl := sec(ans.ttl)
	negTTL := r.negClamp(sec(ans.ttl))
	var eps []Endpoint
	var problems []string
	var transient error
	for _, s := range srvs {
		name := strings.ToLower(s.Target)
		h := hosts[name]
		if h.err != nil && transient == nil {
			transient = h.err
		}
		if len(h.addrs) == 0 {
			switch {
			case h.err != nil:
			case h.nxdomain:
				problems = append(problems, strings.TrimSuffix(name, ".")+": NXDOMAIN")
			default:
				problems = append(problems, strings.TrimSuffix(name, ".")+": no A or AAAA record")
			}
			negTTL = min(negTTL, h.negTTL)
			continue
		}
		eps = append(eps, Endpoint{
			Host:     strings.TrimSuffix(name, "."),
			Port:     s.Port,
			Priority: s.Priority,
			Weight:   s.Weight,
			Addrs:    h.addrs,
		})
		ttl = min(ttl, h.ttl)
	}
	if len(problems) > 3 {
		problems = append(problems[:3], fmt.Sprintf("and %d more", len(problems)-3))
	}
	switch {
	case len(eps) > 0 && transient != nil:
		return eps, min(r.posTTL(ttl), r.cfg.FailureTTL), nil
	case len(eps) > 0:
		return eps, r.posTTL(ttl), nil
	case transient != nil && len(problems) > 0:
		return nil, r.cfg.FailureTTL, fmt.Errorf("no SRV target could be resolved (%s): %w", strings.Join(problems, "; "), transient)
	case transient != nil:
		return nil, r.cfg.FailureTTL, fmt.Errorf("no SRV target could be resolved: %w", transient)
	default:
		return nil, negTTL, newErr(ErrNoAddress, nil, "no SRV target has an address: %s", strings.Join(problems, "; "))
	}
}

// hostResult is what is known of the addresses of one host name.
type hostResult struct {
	addrs    []netip.Addr  // IPv6 first, then IPv4
	ttl      time.Duration // smallest TTL of the address records
	negTTL   time.Duration // when there is no address: how long to cache that
	nxdomain bool          // the name does not exist
	err      error         // a query failed (timeout, server failure)
}

// glue returns the addresses of target (absolute, lower case) found in the
// additional section of an SRV answer, if any.
func glue(extra []dns.RR, target string) (*hostResult, bool) {
	h := &hostResult{}
	var v4 []netip.Addr
	ttl := uint32(math.MaxUint32)
	for _, rr := range extra {
		hdr := rr.Header()
		if hdr.Class != dns.ClassINET || !strings.EqualFold(hdr.Name, target) {
			continue
		}
		switch rr := rr.(type) {
		case *dns.AAAA:
			if a, ok := addrOf(rr.AAAA); ok {
				h.addrs = appendUnique(h.addrs, a)
				ttl = min(ttl, hdr.Ttl)
			}
		case *dns.A:
			if a, ok := addrOf(rr.A.To4()); ok {
				v4 = appendUnique(v4, a)
				ttl = min(ttl, hdr.Ttl)
			}
		}
	}
	h.addrs = append(h.addrs, v4...)
	h.ttl = sec(ttl)
	return h, len(h.addrs) > 0
}

// resolveHost queries the AAAA and A records of name (absolute) in parallel.
func (r *Resolver) resolveHost(ctx context.Context, name string) hostResult {
	var a6 answer
	var err6 error
	var wg sync.WaitGroup
	wg.Go(func() { a6, err6 = r.query(ctx, name, dns.TypeAAAA) })
	a4, err4 := r.query(ctx, name, dns.TypeA)
	wg.Wait()

	h := hostResult{ttl: math.MaxInt64, negTTL: r.cfg.MaxNegativeTTL}
	for _, q := range []struct {
		a   answer
		err error
	}{{a6, err6}, {a4, err4}} {
		switch {
		case q.err != nil:
			if h.err == nil {
				h.err = q.err
			}
		case q.a.negative:
			h.nxdomain = h.nxdomain || q.a.nxdomain
			h.negTTL = min(h.negTTL, r.negTTL(q.a))
		default:
			n := len(h.addrs)
			for _, rr := range q.a.rrs {
				var a netip.Addr
				var ok bool
				switch rr := rr.(type) {
				case *dns.AAAA:
					a, ok = addrOf(rr.AAAA)
				case *dns.A:
					a, ok = addrOf(rr.A.To4())
				}
				if ok {
					h.addrs = appendUnique(h.addrs, a)
				}
			}
			if len(h.addrs) > n {
				h.ttl = min(h.ttl, sec(q.a.ttl))
			} else {
				h.negTTL = min(h.negTTL, r.negClamp(sec(q.a.ttl)))
			}
		}
	}
	return h
}

// addrOf converts an address from a record, rejecting the unspecified
// address and malformed ones.
func addrOf(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

func appendUnique(addrs []netip.Addr, a netip.Addr) []netip.Addr {
	if slices.Contains(addrs, a) {
		return addrs
	}
	return append(addrs, a)
}

func sec(s uint32) time.Duration { return time.Duration(s) * time.Second }

// posTTL bounds the cache time of a result with endpoints.
func (r *Resolver) posTTL(d time.Duration) time.Duration {
	return min(max(d, r.cfg.MinTTL), r.cfg.MaxTTL)
}

// negClamp bounds the cache time of a negative result taken from an answer.
func (r *Resolver) negClamp(d time.Duration) time.Duration {
	return min(max(d, minNegativeTTL), r.cfg.MaxNegativeTTL)
}

// negTTL is the cache time of the negative answer a (RFC 2308).
func (r *Resolver) negTTL(a answer) time.Duration {
	if a.hasSOA {
		return r.negClamp(sec(a.soaTTL))
	}
	return min(r.cfg.NegativeTTL, r.cfg.MaxNegativeTTL)
}
