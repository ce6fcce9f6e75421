// Package config is imxd's configuration file: TOML, decoded strictly (an
// unknown key is an error that names the key and its line), completed with
// documented defaults, and validated as a whole (every problem reported,
// each with its key). docs/configuration.md lists every key; a test keeps
// the two in step.
//
// config is plain data: package server turns it into the configurations of
// the subsystems, none of which imports config.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/imxproject/imx/addr"
)

// Duration is a time.Duration written as a string: "30s", "10m", "1h30m".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (write it like \"30s\", \"10m\" or \"1h\")", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Config is the whole file.
type Config struct {
	// DataDir holds the database, the dial-back key and other state.
	DataDir string `toml:"data_dir"`
	// ShutdownTimeout bounds a graceful shutdown (SIGTERM): draining the
	// clients and the server connections.
	ShutdownTimeout Duration     `toml:"shutdown_timeout"`
	Log             Log          `toml:"log"`
	Listen          Listen       `toml:"listen"`
	DNS             DNS          `toml:"dns"`
	Federation      Federation   `toml:"federation"`
	Domains         []Domain     `toml:"domain"`
	Clients         ClientLimits `toml:"clients"`
	Admin           Admin        `toml:"admin"`
}

// Admin configures the admin listener beyond its address.
type Admin struct {
	// Pprof serves the Go runtime profiles (net/http/pprof) at
	// /debug/pprof/ on the admin listener; off by default.
	Pprof bool `toml:"pprof"`
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// Listen gives the listeners' addresses ("ip:port"); empty disables one.
type Listen struct {
	Server string `toml:"server"` // server-to-server connections (binary TCP)
	Client string `toml:"client"` // clients: HTTP, WebSocket at /imx, the web client
	Admin  string `toml:"admin"`  // admin API, /metrics, /healthz, /readyz
}

// DNS configures the resolver used to find other domains.
type DNS struct {
	// Server is "ip:port" of the resolver to ask; empty uses
	// /etc/resolv.conf.
	Server string `toml:"server"`
}

// Federation configures server-to-server connections (package s2s).
type Federation struct {
	Node                string   `toml:"node"`
	MaxConnsPerDomain   int      `toml:"max_conns_per_domain"`
	MaxInboundPerDomain int      `toml:"max_inbound_per_domain"`
	MaxInbound          int      `toml:"max_inbound"`
	IdleTimeout         Duration `toml:"idle_timeout"`
	DialTimeout         Duration `toml:"dial_timeout"`
	RequestTimeout      Duration `toml:"request_timeout"`
	AuthTimeout         Duration `toml:"auth_timeout"`
	MinBackoff          Duration `toml:"min_backoff"`
	MaxBackoff          Duration `toml:"max_backoff"`
	RedirectAllow       []string `toml:"redirect_allow"`
	// RetryFor is how long a message to an unreachable domain is retried
	// before its sender gets "unreachable".
	RetryFor Duration `toml:"retry_for"`
	// DrainTo is "host:port" of another node of the same domains: on
	// shutdown, peers are sent REDIRECT there instead of CLOSE.
	DrainTo string `toml:"drain_to"`
}

// Domain is one domain served (an imxd serving several is an Aggregator).
type Domain struct {
	Name string `toml:"name"`
	// OfflineMessages keeps messages for offline users (§6.4.3); off by
	// default.
	OfflineMessages bool `toml:"offline_messages"`
	// OfflineLimit bounds the messages kept per user.
	OfflineLimit int `toml:"offline_limit"`
	// MaxMessageSize bounds a message's MIME part, in bytes.
	MaxMessageSize int `toml:"max_message_size"`
	// SubscriptionTimeout is the longest presence subscription granted.
	SubscriptionTimeout Duration `toml:"subscription_timeout"`
	// RateLimit is the messages per minute a sender may send; RateBurst
	// the burst above it.
	RateLimit int `toml:"rate_limit"`
	RateBurst int `toml:"rate_burst"`
}

// ClientLimits configures client sessions.
type ClientLimits struct {
	// SessionLifetime is how long a remembered login (a session token)
	// stays valid.
	SessionLifetime Duration `toml:"session_lifetime"`
	// MaxConnections bounds the client connections open at once; more are
	// answered HTTP 503.
	MaxConnections int `toml:"max_connections"`
}

// Defaults.
const (
	DefaultServerListen        = "0.0.0.0:7468"
	DefaultClientListen        = "127.0.0.1:7480"
	DefaultAdminListen         = "127.0.0.1:7481"
	DefaultOfflineLimit        = 100
	DefaultMaxMessageSize      = 64 << 10
	DefaultSubscriptionTimeout = 30 * time.Minute
	DefaultRateLimit           = 120
	DefaultRateBurst           = 30
	DefaultRetryFor            = 2 * time.Minute
	DefaultSessionLifetime     = 30 * 24 * time.Hour
	DefaultMaxClientConns      = 10000
)

// applyDefaults fills every zero field with its documented default.
func (c *Config) applyDefaults() {
	str := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	dur := func(p *Duration, v time.Duration) {
		if *p == 0 {
			*p = Duration(v)
		}
	}
	integer := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	str(&c.DataDir, "imx-data")
	dur(&c.ShutdownTimeout, 15*time.Second)
	str(&c.Log.Level, "info")
	str(&c.Log.Format, "text")
	str(&c.Listen.Server, DefaultServerListen)
	str(&c.Listen.Client, DefaultClientListen)
	str(&c.Listen.Admin, DefaultAdminListen)
	f := &c.Federation
	integer(&f.MaxConnsPerDomain, 2)
	integer(&f.MaxInboundPerDomain, 8)
	integer(&f.MaxInbound, 10000)
	dur(&f.IdleTimeout, 10*time.Minute)
	dur(&f.DialTimeout, 5*time.Second)
	dur(&f.RequestTimeout, 30*time.Second)
	dur(&f.AuthTimeout, 10*time.Second)
	dur(&f.MinBackoff, time.Second)
	dur(&f.MaxBackoff, 5*time.Minute)
	dur(&f.RetryFor, DefaultRetryFor)
	if len(f.RedirectAllow) == 0 {
		f.RedirectAllow = nil
	}
	for i := range c.Domains {
		d := &c.Domains[i]
		integer(&d.OfflineLimit, DefaultOfflineLimit)
		integer(&d.MaxMessageSize, DefaultMaxMessageSize)
		dur(&d.SubscriptionTimeout, DefaultSubscriptionTimeout)
		integer(&d.RateLimit, DefaultRateLimit)
		integer(&d.RateBurst, DefaultRateBurst)
	}
	dur(&c.Clients.SessionLifetime, DefaultSessionLifetime)
	integer(&c.Clients.MaxConnections, DefaultMaxClientConns)
}

// KeyError is a problem with one key of the file.
type KeyError struct {
	Key  string // "federation.dial_timeout", "domain[1].name"
	Line int    // 0 when unknown
	Err  error
}

func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d): %v", e.Key, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Key, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// ErrUnknownKey is wrapped by the KeyError of a key that imxd does not know.
var ErrUnknownKey = errors.New("unknown key")

// Load reads, decodes, completes and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes, completes and validates a configuration.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			errs := make([]error, 0, len(sm.Errors))
			for i := range sm.Errors {
				row, _ := sm.Errors[i].Position()
				errs = append(errs, &KeyError{Key: strings.Join(sm.Errors[i].Key(), "."), Line: row, Err: ErrUnknownKey})
			}
			return nil, errors.Join(errs...)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, &KeyError{Key: strings.Join(de.Key(), "."), Line: row, Err: errors.New(strings.TrimPrefix(de.Error(), "toml: "))}
		}
		return nil, err
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate reports every problem of a completed configuration, each as a
// *KeyError, joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Err: fmt.Errorf(format, args...)})
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	type kv[T any] struct {
		key string
		v   T
	}
	for _, x := range []kv[string]{{"listen.server", c.Listen.Server}, {"listen.client", c.Listen.Client}, {"listen.admin", c.Listen.Admin}} {
		key, v := x.key, x.v
		if v == "off" {
			continue
		}
		if _, err := netip.ParseAddrPort(v); err != nil {
			bad(key, "%q is not ip:port (or \"off\")", v)
		}
	}
	if ap, err := netip.ParseAddrPort(c.Listen.Admin); err == nil && !ap.Addr().IsLoopback() {
		bad("listen.admin", "%s is not a loopback address: the admin API has no authentication of its own", ap)
	}
	if c.DNS.Server != "" {
		if _, err := netip.ParseAddrPort(c.DNS.Server); err != nil {
			if _, err := netip.ParseAddr(c.DNS.Server); err != nil {
				bad("dns.server", "%q is not an ip or ip:port", c.DNS.Server)
			}
		}
	}
	f := c.Federation
	for _, x := range []kv[int]{{"federation.max_conns_per_domain", f.MaxConnsPerDomain}, {"federation.max_inbound_per_domain", f.MaxInboundPerDomain}, {"federation.max_inbound", f.MaxInbound}} {
		if x.v < 1 {
			bad(x.key, "must be at least 1, not %d", x.v)
		}
	}
	for _, x := range []kv[Duration]{{"federation.idle_timeout", f.IdleTimeout}, {"federation.dial_timeout", f.DialTimeout}, {"federation.request_timeout", f.RequestTimeout}, {"federation.auth_timeout", f.AuthTimeout}, {"federation.min_backoff", f.MinBackoff}, {"federation.max_backoff", f.MaxBackoff}, {"federation.retry_for", f.RetryFor}} {
		if x.v <= 0 {
			bad(x.key, "must be positive")
		}
	}
	if f.MaxBackoff < f.MinBackoff {
		bad("federation.max_backoff", "%v is below min_backoff %v", f.MaxBackoff.D(), f.MinBackoff.D())
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive")
	}
	if f.DrainTo != "" {
		if host, port, err := net.SplitHostPort(f.DrainTo); err != nil || host == "" || port == "" || port == "0" {
			bad("federation.drain_to", "%q is not host:port", f.DrainTo)
		}
	}
	if len(f.Node) > 64 {
		bad("federation.node", "longer than 64 bytes")
	}
	if len(c.Domains) == 0 {
		bad("domain", "no [[domain]] table: imxd must serve at least one domain")
	}
	seen := map[string]bool{}
	for i, d := range c.Domains {
		key := fmt.Sprintf("domain[%d]", i)
		n, err := addr.ParseDomain(d.Name)
		switch {
		case d.Name == "":
			bad(key+".name", "missing")
		case err != nil:
			bad(key+".name", "%v", err)
		case n != d.Name:
			bad(key+".name", "%q is not in normal form; write %q", d.Name, n)
		case seen[n]:
			bad(key+".name", "%q is listed twice", n)
		}
		seen[n] = true
		if d.OfflineLimit < 1 {
			bad(key+".offline_limit", "must be at least 1")
		}
		if d.MaxMessageSize < 256 || d.MaxMessageSize > 1<<20 {
			bad(key+".max_message_size", "%d is outside 256..1048576", d.MaxMessageSize)
		}
		if d.SubscriptionTimeout.D() < time.Minute {
			bad(key+".subscription_timeout", "must be at least 1m")
		}
		if d.RateLimit < 1 {
			bad(key+".rate_limit", "must be at least 1")
		}
		if d.RateBurst < 1 {
			bad(key+".rate_burst", "must be at least 1")
		}
	}
	if c.Clients.SessionLifetime.D() < time.Minute {
		bad("clients.session_lifetime", "must be at least 1m")
	}
	if c.Clients.MaxConnections < 1 {
		bad("clients.max_connections", "must be at least 1, not %d", c.Clients.MaxConnections)
	}
	return errors.Join(errs...)
}

// DomainNames returns the names of the domains served.
func (c *Config) DomainNames() []string {
	out := make([]string, len(c.Domains))
	for i, d := range c.Domains {
		out[i] = d.Name
	}
	return out
}
