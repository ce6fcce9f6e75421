package discovery

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DefaultPort is the TCP port of an IMX server found without an SRV record,
// through the domain's own address records.
//
// No port is registered for IMX: the draft left the IMX record to a later
// document that never appeared. 5269, XMPP's server-to-server port, is not
// reused so that imxd and an XMPP server can run on one host, and so that
// neither takes the other's connections for its own protocol. 7468 is used by
// no protocol imx meets (SMTP, XMPP, Matrix's 8448). A domain that publishes
// an SRV record chooses any port.
const DefaultPort = 7468

// MaxTargets is the number of SRV records of a domain used at most: those of
// lowest priority are kept.
const MaxTargets = 32

// Service is the IMX service looked up: its SRV record's name prefix.
type Service uint8

const (
	// ServiceIMX is _imx._tcp: IMX over TCP.
	ServiceIMX Service = iota
	// ServiceIMXS is _imxs._tcp: IMX over TLS from the first byte. It has no
	// fallback to the domain's address records.
	ServiceIMXS
)

// String is the service's SRV name prefix, "_imx._tcp" or "_imxs._tcp".
func (s Service) String() string {
	switch s {
	case ServiceIMX:
		return "_imx._tcp"
	case ServiceIMXS:
		return "_imxs._tcp"
	}
	return "Service(" + strconv.Itoa(int(s)) + ")"
}

// Endpoint is one server of a domain and its addresses.
type Endpoint struct {
	// Host is the server's host name, without the trailing dot: the SRV
	// target, or the domain itself when it has no SRV record. It is for logs
	// and diagnostics; see the package documentation about TLS.
	Host string
	// Port is the TCP port: the SRV record's, or DefaultPort.
	Port uint16
	// Priority and Weight are the SRV record's (both 0 for the fallback).
	Priority uint16
	Weight   uint16
	// Addrs are the host's addresses, IPv6 first, then IPv4; never empty.
	// The slice is shared between lookups and must not be modified.
	Addrs []netip.Addr
}

// String is "host:port".
func (e Endpoint) String() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
}

// Lookuper is what callers of discovery depend on, so that their tests can
// substitute a fake; [*Resolver] implements it.
type Lookuper interface {
	// Lookup returns the servers of domain, a normalised A-label domain
	// without trailing dot, in the order to try them.
	Lookup(ctx context.Context, domain string) ([]Endpoint, error)
}

var _ Lookuper = (*Resolver)(nil)

// Errors of a lookup. They are never returned bare: the error returned wraps
// one of them and says which name failed and how.
var (
	// ErrNoService means the domain publishes that it offers no IMX service:
	// a single SRV record with target "." (or only records without a port),
	// or, for ServiceIMXS, no SRV record at all.
	ErrNoService = errors.New("discovery: no IMX service")
	// ErrNoSuchDomain means the domain does not exist (NXDOMAIN), or is not
	// a valid domain name.
	ErrNoSuchDomain = errors.New("discovery: no such domain")
	// ErrNoAddress means the servers found have no A or AAAA record: none of
	// the SRV targets, or the domain itself when it has no SRV record.
	ErrNoAddress = errors.New("discovery: no address")
	// ErrTimeout means a DNS server did not answer in time, or the caller's
	// deadline passed first.
	ErrTimeout = errors.New("discovery: timeout")
	// ErrServerFailure means the DNS server answered with an error (SERVFAIL,
	// REFUSED, …) or an unusable message, or could not be reached.
	ErrServerFailure = errors.New("discovery: DNS server failure")
	// ErrClosed means the Resolver was closed.
	ErrClosed = errors.New("discovery: resolver closed")
)

// Config configures a Resolver. The zero value is usable: every zero field
// means the default given in its comment.
type Config struct {
	// Server is the address of the DNS server to ask, "ip:port" or a bare IP
	// address for port 53, such as "127.0.0.1:5353". Empty means the name
	// servers of ResolvConf.
	Server string
	// ResolvConf is the resolver configuration file read when Server is
	// empty. Default: /etc/resolv.conf.
	ResolvConf string

	// QueryTimeout bounds each DNS query to one server. Default: 2 s.
	QueryTimeout time.Duration
	// LookupTimeout bounds a whole lookup, SRV targets included. Default: 10 s.
	LookupTimeout time.Duration

	// CacheSize is the number of domains whose result is cached, at most.
	// Default: 4096.
	CacheSize int
	// MinTTL and MaxTTL bound how long a result with endpoints is cached.
	// Defaults: 30 s and 1 h.
	MinTTL, MaxTTL time.Duration
	// NegativeTTL is how long a negative result is cached when the answer
	// carries no SOA record. Default: 30 s.
	NegativeTTL time.Duration
	// MaxNegativeTTL bounds how long a negative result is cached. Default:
	// 5 min.
	MaxNegativeTTL time.Duration
	// FailureTTL is how long a failure (timeout, server failure) is cached.
	// Default: 5 s.
	FailureTTL time.Duration

	// Now is the clock of the cache. Default: time.Now.
	Now func() time.Time
	// Rand returns a uniform random number in [0, n) for the weighted order;
	// it must be safe for concurrent use when lookups are. Default:
	// math/rand/v2.Uint64N.
	Rand func(n uint64) uint64
}

// Defaults of Config.
const (
	defaultResolvConf     = "/etc/resolv.conf"
	defaultQueryTimeout   = 2 * time.Second
	defaultLookupTimeout  = 10 * time.Second
	defaultCacheSize      = 4096
	defaultMinTTL         = 30 * time.Second
	defaultMaxTTL         = time.Hour
	defaultNegativeTTL    = 30 * time.Second
	defaultMaxNegativeTTL = 5 * time.Minute
	defaultFailureTTL     = 5 * time.Second

	// minNegativeTTL is the floor of a negative TTL taken from the answer.
	minNegativeTTL = 5 * time.Second
	// attempts is how many times each name server is tried for one query
	// that times out.
	attempts = 2
)

// Resolver looks up the servers of IMX domains and caches the results. It is
// safe for concurrent use. Close it to stop the lookups in flight.
type Resolver struct {
	cfg     Config // defaults filled in
	servers []string

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // lookups in flight

	mu      sync.Mutex
	closed  bool
	entries map[key]*list.Element // of *entry
	lru     list.List             // front: most recently used
	flights map[key]*flight
}

// key identifies a lookup.
type key struct {
	svc    Service
	domain string
}

// entry is a cached result.
type entry struct {
	key     key
	eps     []Endpoint // sorted by priority; nil when err is set
	err     error
	expires time.Time
}

// flight is a lookup in progress, shared by its callers.
type flight struct {
	done    chan struct{} // closed when eps and err are set
	waiters int           // callers waiting, for tests
	eps     []Endpoint
	err     error
}

// New returns a Resolver configured by cfg. It reads the resolver
// configuration file when cfg.Server is empty.
func New(cfg Config) (*Resolver, error) {
	setDefault(&cfg.ResolvConf, defaultResolvConf)
	setDefault(&cfg.QueryTimeout, defaultQueryTimeout)
	setDefault(&cfg.LookupTimeout, defaultLookupTimeout)
	setDefault(&cfg.CacheSize, defaultCacheSize)
	setDefault(&cfg.MinTTL, defaultMinTTL)
	setDefault(&cfg.MaxTTL, defaultMaxTTL)
	setDefault(&cfg.NegativeTTL, defaultNegativeTTL)
	setDefault(&cfg.MaxNegativeTTL, defaultMaxNegativeTTL)
	setDefault(&cfg.FailureTTL, defaultFailureTTL)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Uint64N
	}
	if cfg.MinTTL > cfg.MaxTTL {
		return nil, fmt.Errorf("discovery: MinTTL %v is above MaxTTL %v", cfg.MinTTL, cfg.MaxTTL)
	}

	var servers []string
	if cfg.Server != "" {
		s, err := serverAddr(cfg.Server)
		if err != nil {
			return nil, err
		}
		servers = []string{s}
	} else {
		cc, err := dns.ClientConfigFromFile(cfg.ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("discovery: read %s: %w", cfg.ResolvConf, err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("discovery: %s names no nameserver", cfg.ResolvConf)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	return &Resolver{
		cfg:     cfg,
		servers: servers,
		ctx:     ctx,
		cancel:  cancel,
		entries: map[key]*list.Element{},
		flights: map[key]*flight{},
	}, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// serverAddr checks a configured DNS server address, "ip:port" or "ip".
func serverAddr(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", fmt.Errorf("discovery: DNS server %q: port 0", s)
		}
		return ap.String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("discovery: DNS server %q: want ip:port or ip: %w", s, err)
	}
	return netip.AddrPortFrom(a, 53).String(), nil
}

// Lookup returns the servers of domain for ServiceIMX in the order to try
// them; see the package documentation. domain is a normalised A-label domain
// (package addr), without trailing dot.
func (r *Resolver) Lookup(ctx context.Context, domain string) ([]Endpoint, error) {
	return r.LookupService(ctx, ServiceIMX, domain)
}

// LookupService is Lookup for the given service. The returned slice belongs
// to the caller, but the Addrs of its endpoints are shared and must not be
// modified.
func (r *Resolver) LookupService(ctx context.Context, svc Service, domain string) ([]Endpoint, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if _, ok := dns.IsDomainName(domain); !ok || domain == "" || (svc != ServiceIMX && svc != ServiceIMXS) {
		return nil, fmt.Errorf("discovery: lookup %s.%s: %w", svc, domain, newErr(ErrNoSuchDomain, nil, "not a valid domain name or service"))
	}
	k := key{svc, domain}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("discovery: lookup %s.%s: %w", svc, domain, newErr(ErrClosed, nil, "resolver closed"))
	}
	if el, ok := r.entries[k]; ok {
		e := el.Value.(*entry)
		if r.cfg.Now().Before(e.expires) {
			r.lru.MoveToFront(el)
			eps, err := e.eps, e.err
			r.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return order(eps, r.cfg.Rand), nil
		}
	}
	f, ok := r.flights[k]
	if !ok {
		f = &flight{done: make(chan struct{})}
		r.flights[k] = f
		r.wg.Go(func() { r.fly(k, f) })
	}
	f.waiters++
	r.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return order(f.eps, r.cfg.Rand), nil
	case <-ctx.Done():
		r.mu.Lock()
		f.waiters--
		r.mu.Unlock()
		return nil, fmt.Errorf("discovery: lookup %s.%s: %w", svc, domain, contextError("waiting for the answer", ctx.Err()))
	}
}

// Close cancels the lookups in flight, waits for them to end and makes
// further lookups fail with ErrClosed. It returns nil.
func (r *Resolver) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}

// fly runs the shared lookup of k, caches its result and hands it to the
// callers waiting on f.
func (r *Resolver) fly(k key, f *flight) {
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.LookupTimeout)
	eps, ttl, err := r.resolve(ctx, k.svc, k.domain)
	cancel()
	closed := r.ctx.Err() != nil
	if err != nil {
		if closed {
			err = newErr(ErrClosed, err, "resolver closed")
		}
		err = fmt.Errorf("discovery: lookup %s.%s: %w", k.svc, k.domain, err)
	}

	r.mu.Lock()
	delete(r.flights, k)
	if !closed {
		r.store(&entry{key: k, eps: eps, err: err, expires: r.cfg.Now().Add(ttl)})
	}
	f.eps, f.err = eps, err
	r.mu.Unlock()
	close(f.done)
}

// store caches e, evicting the least recently used entry beyond the size
// bound; r.mu is held.
func (r *Resolver) store(e *entry) {
	if el, ok := r.entries[e.key]; ok {
		el.Value = e
		r.lru.MoveToFront(el)
		return
	}
	r.entries[e.key] = r.lru.PushFront(e)
	for r.lru.Len() > r.cfg.CacheSize {
		old := r.lru.Back()
		r.lru.Remove(old)
		delete(r.entries, old.Value.(*entry).key)
	}
}
