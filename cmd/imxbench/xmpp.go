package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/c2s"
	"github.com/imxproject/imx/internal/localdns"
)

// The xmpp scenario runs e2e's measurement (the same ramp, paced phase,
// figures and defaults) against two XMPP servers, Prosody or ejabberd,
// federated over XMPP's server-to-server protocol, for a comparison
// measured on the same machine in the same minutes: client → server A →
// server B → client.
//
// The load is as alike as the protocols allow: the same sessions (a user
// each), senders paired with receivers, message bodies of the same size
// with the send time in them, at most c2s.DefaultMaxSendsInFlight messages
// in flight per sender. XMPP has no result for a message, so a message
// counts as delivered, and its sender may send the next, when its
// receiver in imxbench has read it: the servers do no work for it beyond
// routing the stanza. An imxd does more for each message: the RESULT from
// the receiving client to B, from B to A and from A to the sender, the
// MIME built and checked, and the message id recorded in B's store so
// that it is never delivered twice. The comparison favours the XMPP
// server.
//
// The XMPP servers get their fastest setup: passwords kept in plain text
// (no hashing at login), no TLS, dial-back between the servers (as imxd),
// and only the modules that routing messages needs; no rate limits
// (traffic shapers), archive or carbons. Nagle's algorithm, on by default
// in both, is off (as in imxd, and in every Go program) unless -nagle:
// with it on, a message waited about 40 ms in Prosody at 1,000 msgs/s.
// Prosody's accounts are written as files before it starts; ejabberd's
// are registered in band (XEP-0077) by each session before it logs in.

// xmppOpts are the xmpp scenario's own flags.
type xmppOpts struct {
	server  string // "prosody" or "ejabberd"
	prosody string
	erl     string
	erlLibs string // ERL_LIBS for ejabberd: the directory that holds ejabberd-VERSION
	nagle   bool
}

// register adds the flags that choose and set up the XMPP server; the
// server's default is def.
func (x *xmppOpts) register(fs *flag.FlagSet, def, servers string) {
	fs.StringVar(&x.server, "server", def, "the server: "+servers+" (Prosody and ejabberd: Debian's packages)")
	fs.StringVar(&x.prosody, "prosody", "prosody", "the prosody binary (Debian: apt-get install prosody lua-unbound)")
	fs.StringVar(&x.erl, "erl", "erl", "the Erlang runtime that runs ejabberd (Debian: apt-get install ejabberd)")
	fs.BoolVar(&x.nagle, "nagle", false, "leave Nagle's algorithm on in the XMPP servers, their default (Prosody: network_settings.nagle; ejabberd: Erlang's nodelay); off, as in imxd, unless set")
}

// resolve finds the XMPP server's programs; errUnavailable when they are
// not installed.
func (x *xmppOpts) resolve(ctx context.Context) error {
	switch x.server {
	case "prosody":
		bin, err := exec.LookPath(x.prosody)
		if err != nil {
			return fmt.Errorf("%w: %v (on Debian: apt-get install prosody lua-unbound)", errUnavailable, err)
		}
		if err := checkUnbound(ctx, bin); err != nil {
			return err
		}
		x.prosody = bin
	case "ejabberd":
		bin, err := exec.LookPath(x.erl)
		if err != nil {
			return fmt.Errorf("%w: %v (on Debian: apt-get install ejabberd)", errUnavailable, err)
		}
		x.erl = bin
		apps, _ := filepath.Glob("/usr/lib/*/ejabberd-*/ebin/ejabberd.app")
		if len(apps) == 0 {
			return fmt.Errorf("%w: no ejabberd under /usr/lib/*/ejabberd-*/ (on Debian: apt-get install ejabberd)", errUnavailable)
		}
		x.erlLibs = filepath.Dir(filepath.Dir(filepath.Dir(apps[0])))
	default:
		return fmt.Errorf("-server is prosody or ejabberd, not %q", x.server)
	}
	return nil
}

// start starts the XMPP server for domain on ip; users are the local
// parts of its accounts (for Prosody, written before it starts; ejabberd's
// sessions register theirs).
func (x *xmppOpts) start(ctx context.Context, w *world, domain, ip string, users []string) (*imxdProc, error) {
	if x.server == "ejabberd" {
		return w.startEjabberd(ctx, x, domain, ip)
	}
	return w.startProsody(ctx, x.prosody, domain, ip, users, x.nagle)
}

func xmppFlags(fs *flag.FlagSet) func(context.Context, *common, *world) (*report, error) {
	var o e2eOpts
	var x xmppOpts
	x.register(fs, "prosody", "prosody or ejabberd")
	fs.IntVar(&o.senders, "senders", 8, "sending client sessions on domain A, one user each")
	fs.IntVar(&o.receivers, "receivers", 8, "receiving client sessions on domain B, one user each")
	fs.IntVar(&o.maxConc, "max-concurrency", 0, "the most messages in flight while ramping (0, and at most: -senders × c2s.DefaultMaxSendsInFlight, as e2e)")
	fs.DurationVar(&o.step, "step", 2*time.Second, "length of each ramp step")
	fs.IntVar(&o.size, "size", 200, "message body size in bytes")
	fs.Float64Var(&o.rate, "rate", 0, "the paced phase's rate in messages per second, instead of -paced of the highest")
	fs.Float64Var(&o.paced, "paced", 0.5, "the paced phase's rate, as a fraction of the highest sustained rate")
	fs.StringVar(&o.latFile, "latencies", "", "write each paced message's scheduled send time and latency into this file, as e2e does")
	return func(ctx context.Context, c *common, w *world) (*report, error) {
		if limit := o.senders * c2s.DefaultMaxSendsInFlight; o.maxConc == 0 || o.maxConc > limit {
			o.maxConc = limit
		}
		if o.senders < 1 || o.receivers < 1 || o.maxConc < 1 || o.step <= 0 || o.size < 40 || o.paced <= 0 || o.paced > 1 || o.rate < 0 {
			return nil, fmt.Errorf("need -senders, -receivers, -max-concurrency ≥ 1, -step > 0, -size ≥ 40, 0 < -paced ≤ 1, -rate ≥ 0")
		}
		if err := x.resolve(ctx); err != nil {
			return nil, err
		}
		return runXMPP(ctx, c, w, &o, &x)
	}
}

// checkUnbound checks that Prosody at bin will resolve through
// lua-unbound, which the configuration points at the world's DNS server
// alone. Without it Prosody falls back to its own resolver, which asks
// the system's name servers: traffic off the loopback.
func checkUnbound(ctx context.Context, bin string) error {
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	line, _, _ := strings.Cut(string(b[:min(len(b), 200)]), "\n")
	interp, ok := strings.CutPrefix(line, "#!")
	if !ok {
		return fmt.Errorf("%w: %s is not Prosody's Lua script", errUnavailable, bin)
	}
	args := strings.Fields(interp)
	args = append(args, "-e", `require "lunbound"`)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: Prosody's Lua (%s) has no lua-unbound (on Debian: apt-get install lua-unbound): %v\n%s", errUnavailable, interp, err, out)
	}
	return nil
}

// errUnavailable is a scenario that cannot run on this machine: imxbench
// exits with exitUnavailable.
var errUnavailable = errors.New("scenario not available")

func runXMPP(ctx context.Context, c *common, w *world, o *e2eOpts, x *xmppOpts) (*report, error) {
	sl, rl := e2eUsers(o)
	a, err := x.start(ctx, w, "alpha.bench", "127.0.0.2", sl)
	if err != nil {
		return nil, err
	}
	b, err := x.start(ctx, w, "beta.bench", "127.0.0.3", rl)
	if err != nil {
		return nil, err
	}
	s := newE2EState(o, rl, b.domain)
	ctx, cancel := e2eContext(ctx, c, o)
	defer cancel()
	d, err := newXMPPDriver(ctx, s, a, b, sl, rl, x.server == "ejabberd")
	if err != nil {
		return nil, err
	}
	r := &report{scenario: "xmpp"}
	e2eParams(r, c, o)
	r.param("server", "servers", packageVersion(x.server))
	r.param("nagle", "Nagle's algorithm in the servers", x.nagle)
	if err := measureE2E(ctx, c, w, o, s, d, r, nil); err != nil {
		return nil, err
	}
	r.notes = append(r.notes,
		"latency: from a message's scheduled send time at the sending client to its arrival at the receiving client (client → "+x.server+" A → "+x.server+" B → client); the CPU figures cover the paced phase.",
		"a message counts as delivered when its receiver has read it: XMPP has no result for a message, so the servers do less per message than imxd (no RESULTs, no MIME, no record of the id).")
	return r, nil
}

// packageVersion is server and the version of its Debian package, when
// there is one.
func packageVersion(server string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", server).Output()
	if err != nil || len(out) == 0 {
		return server
	}
	return server + " " + string(out)
}

// startProsody writes a configuration for domain on ip and the accounts of
// users (password benchPassword), publishes the domain's XMPP server
// record in the world's DNS, which Prosody resolves through, starts it and
// waits until its client port answers.
func (w *world) startProsody(ctx context.Context, bin, domain, ip string, users []string, nagle bool) (*imxdProc, error) {
	p := &imxdProc{kind: "prosody", domain: domain, exited: make(chan struct{})}
	if err := freeAddrs(ip, &p.server, &p.client); err != nil {
		return nil, err
	}
	dir := filepath.Join(w.dir, domain)
	accounts := filepath.Join(dir, "data", prosodyEscape(domain), "accounts")
	for _, d := range []string{accounts, filepath.Join(dir, "certs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	for _, u := range users {
		// internal_plain's format, as prosodyctl register writes it.
		rec := fmt.Sprintf("return {\n\t[\"password\"] = %q;\n};\n", benchPassword)
		if err := os.WriteFile(filepath.Join(accounts, prosodyEscape(u)+".dat"), []byte(rec), 0o600); err != nil {
			return nil, err
		}
	}
	dnsAP := netip.MustParseAddrPort(w.dns.Addr())
	c2sAP, s2sAP := netip.MustParseAddrPort(p.client), netip.MustParseAddrPort(p.server)
	cfg := fmt.Sprintf(`-- written by imxbench xmpp
run_as_root = true
pidfile = %[1]q
data_path = %[2]q
certificates = %[3]q
interfaces = { %[4]q }
c2s_ports = { %[5]d }
s2s_ports = { %[6]d }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
legacy_ssl_ports = { }
c2s_require_encryption = false
s2s_require_encryption = false
s2s_secure_auth = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
modules_enabled = { "saslauth", "dialback", "disco", "ping", "roster" }
network_settings = { nagle = %[10]t }
log = { { levels = { min = "info" }, to = "console" } }
-- Only the world's DNS server: not /etc/resolv.conf's as well, which
-- lua-unbound adds by default (traffic off the loopback).
unbound = { resolvconf = false, hoststxt = false, forward = { "%[7]s@%[8]d" } }
VirtualHost %[9]q
`, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "certs"), ip,
		c2sAP.Port(), s2sAP.Port(), dnsAP.Addr(), dnsAP.Port(), domain, nagle)
	cfgPath := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	host := "xmpp." + domain
	w.dns.SetA(host, s2sAP.Addr())
	w.dns.SetServiceSRV("_xmpp-server._tcp", domain, localdns.SRV{Priority: 10, Weight: 10, Port: s2sAP.Port(), Target: host})
	if err := w.launch(ctx, p, exec.Command(bin, "-F", "--config", cfgPath), filepath.Join(dir, "prosody.log"), portReady); err != nil {
		return nil, err
	}
	return p, nil
}

// prosodyEscape is how Prosody names a host's or a user's directory and
// files: every byte but ASCII letters and digits as %xx.
func prosodyEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// startEjabberd writes a configuration for domain on ip, publishes the
// domain's XMPP server record in the world's DNS, which ejabberd resolves
// through (an inetrc file naming it alone), starts ejabberd under erl
// without distribution (no epmd, node nonode@nohost) and waits until its
// client port answers. Its users register in band.
func (w *world) startEjabberd(ctx context.Context, x *xmppOpts, domain, ip string) (*imxdProc, error) {
	p := &imxdProc{kind: "ejabberd", domain: domain, exited: make(chan struct{})}
	if err := freeAddrs(ip, &p.server, &p.client); err != nil {
		return nil, err
	}
	dir := filepath.Join(w.dir, domain)
	for _, d := range []string{filepath.Join(dir, "spool"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	dnsAP := netip.MustParseAddrPort(w.dns.Addr())
	c2sAP, s2sAP := netip.MustParseAddrPort(p.client), netip.MustParseAddrPort(p.server)
	cfg := fmt.Sprintf(`# written by imxbench xmpp -server ejabberd
hosts: [%[1]q]
loglevel: info
log_rotate_count: 0
listen:
  - port: %[2]d
    ip: %[4]q
    module: ejabberd_c2s
    starttls: false
    max_stanza_size: 262144
    backlog: 1024
  - port: %[3]d
    ip: %[4]q
    module: ejabberd_s2s_in
    max_stanza_size: 524288
    backlog: 1024
s2s_use_starttls: false
outgoing_s2s_families: [ipv4]
auth_method: [internal]
auth_password_format: plain
registration_timeout: infinity
access_rules:
  register:
    allow: all
modules:
  mod_register:
    ip_access: all
    access: register
    password_strength: 0
  mod_s2s_dialback: {}
  mod_ping: {}
  mod_disco: {}
  mod_roster: {}
`, domain, c2sAP.Port(), s2sAP.Port(), ip)
	cfgPath := filepath.Join(dir, "ejabberd.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	// backlog: ejabberd's default is 5 pending connections. With 64
	// sessions opening at once, a connection left out of the accept queue
	// waited for the kernel's retries, and once timed out after 30 s
	// (idle -server ejabberd, under CI's load); imxd and Prosody listen
	// with 4,096 and 128.
	//
	// The resolver: the world's DNS server alone, not /etc/resolv.conf's
	// (traffic off the loopback), nor /etc/hosts.
	a4 := dnsAP.Addr().As4()
	inetrc := fmt.Sprintf("{lookup, [dns]}.\n{resolv_conf, \"\"}.\n{hosts_file, \"\"}.\n{nameserver, {%d,%d,%d,%d}, %d}.\n",
		a4[0], a4[1], a4[2], a4[3], dnsAP.Port())
	inetrcPath := filepath.Join(dir, "inetrc")
	if err := os.WriteFile(inetrcPath, []byte(inetrc), 0o600); err != nil {
		return nil, err
	}
	// ejabberd 23.01 (its p1_xmpp 1.6.1) looks up an SRV target's
	// address with the C library's getaddrinfo, not through inet_res:
	// that would ask the system's name server, off the loopback. So the
	// target is the address itself, which getaddrinfo reads without a
	// lookup. The SRV record itself comes from the world's DNS server.
	w.dns.SetServiceSRV("_xmpp-server._tcp", domain, localdns.SRV{Priority: 10, Weight: 10, Port: s2sAP.Port(), Target: s2sAP.Addr().String()})
	// As ejabberdctl foreground runs it, without -sname.
	args := []string{"+K", "true", "+P", "250000", "-env", "ERL_CRASH_DUMP_BYTES", "0",
		"-mnesia", "dir", strconv.Quote(filepath.Join(dir, "spool")), "-ejabberd", "log_rotate_count", "0"}
	if !x.nagle {
		args = append(args, "-kernel", "inet_default_listen_options", "[{nodelay,true}]", "-kernel", "inet_default_connect_options", "[{nodelay,true}]")
	}
	args = append(args, "-s", "ejabberd", "-noinput")
	cmd := exec.Command(x.erl, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ERL_LIBS="+x.erlLibs, "EJABBERD_CONFIG_PATH="+cfgPath,
		"EJABBERD_LOG_PATH="+filepath.Join(dir, "logs", "ejabberd.log"), "ERL_INETRC="+inetrcPath)
	if err := w.launch(ctx, p, cmd, filepath.Join(dir, "erl.log"), portReady); err != nil {
		return nil, err
	}
	return p, nil
}

// portReady reports whether p's client port accepts connections.
func portReady(ctx context.Context, p *imxdProc) bool {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", p.client)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// xmppDriver runs the e2e sessions over XMPP client streams: senders on A,
// receivers on B. It writes and reads the stanzas itself, as the frames
// driver does the imx frames, and finds each message's body and id by
// searching the bytes, without an XML parser.
type xmppDriver struct {
	sendPool[*xmppSession]
	recv []*xmppSession
	// register: each session registers its user in band before it logs
	// in (ejabberd, whose accounts are not written before it starts).
	register bool
}

// xmppSession is one client stream.
type xmppSession struct {
	d    *xmppDriver
	idx  int
	to   string // a sender's receiver
	conn net.Conn
	br   *bufio.Reader
	ids  atomic.Uint64

	wmu     sync.Mutex
	wbuf    []byte
	wclosed bool
	kick    chan struct{} // the writer has work
	wdone   chan struct{} // the writer has ended
	rdone   chan struct{} // the reader has ended

	sendLoop // senders: a message's result is its receiver's read

	// Receivers (their reader goroutine only).
	got arrivals
}

func newXMPPDriver(ctx context.Context, s *e2eState, a, b *imxdProc, sl, rl []string, register bool) (*xmppDriver, error) {
	d := &xmppDriver{sendPool: newSendPool[*xmppSession](ctx, s, len(sl)), recv: make([]*xmppSession, len(rl)), register: register}
	if err := parallel(ctx, len(sl), 4, func(ctx context.Context, i int) (err error) {
		d.senders[i], err = d.dial(ctx, a, i, sl[i], s.to[i%len(s.to)])
		return err
	}); err != nil {
		d.close()
		return nil, err
	}
	if err := parallel(ctx, len(rl), 4, func(ctx context.Context, i int) (err error) {
		d.recv[i], err = d.dial(ctx, b, i, rl[i], "")
		return err
	}); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// dial opens a client stream to p as user and makes it available; a
// sender sends to to.
func (d *xmppDriver) dial(ctx context.Context, p *imxdProc, idx int, user, to string) (*xmppSession, error) {
	conn, br, err := xmppLogin(ctx, p.client, p.domain, user, benchPassword, d.register)
	if err != nil {
		return nil, err
	}
	xs := &xmppSession{d: d, idx: idx, to: to, conn: conn, br: br,
		kick: make(chan struct{}, 1), wdone: make(chan struct{}), rdone: make(chan struct{})}
	if to != "" {
		xs.sendLoop = newSendLoop()
	}
	go xs.writeLoop()
	go xs.readLoop()
	return xs, nil
}

// xmppLogin opens a client stream to addr for domain, registers user
// first if register (XEP-0077), authenticates as user (SASL PLAIN, RFC
// 6120), binds a resource and sends the initial presence. It returns the
// connection and its reader, past the bind result.
func xmppLogin(ctx context.Context, addr, domain, user, password string, register bool) (net.Conn, *bufio.Reader, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	br := bufio.NewReaderSize(conn, 64<<10)
	header := "<?xml version='1.0'?><stream:stream to='" + domain + "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	step := func(out string, want ...string) (string, error) {
		if _, err := conn.Write([]byte(out)); err != nil {
			return "", err
		}
		return readUntil(br, want...)
	}
	fail := func(what string, err error) (net.Conn, *bufio.Reader, error) {
		conn.Close()
		return nil, nil, fmt.Errorf("xmpp login %s@%s: %s: %w", user, domain, what, err)
	}
	got, err := step(header, "</stream:features>")
	if err != nil {
		return fail("stream features", err)
	}
	if !strings.Contains(got, "<mechanism>PLAIN</mechanism>") {
		return fail("stream features", fmt.Errorf("no SASL PLAIN offered: %.300s", got))
	}
	if register {
		got, err = step("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>"+user+
			"</username><password>"+password+"</password></query></iq>", "id='reg1'", `id="reg1"`)
		if err == nil {
			var rest string
			if rest, err = readUntil(br, ">"); err == nil && !strings.HasSuffix(rest, "/>") {
				rest, err = readUntil(br, "</iq>")
			}
			got += rest
		}
		if err != nil {
			return fail("register", err)
		}
		if !strings.Contains(got, "type='result'") && !strings.Contains(got, `type="result"`) {
			return fail("register", fmt.Errorf("refused: %.300s", got))
		}
	}
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	got, err = step("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+auth+"</auth>", "xmpp-sasl")
	if err != nil {
		return fail("auth", err)
	}
	if !strings.Contains(got, "<success") {
		if rest, err := readUntil(br, ">"); err == nil {
			got += rest
		}
		return fail("auth", fmt.Errorf("refused: %.300s", got))
	}
	if _, err := readUntil(br, ">"); err != nil { // the end of <success …/>
		return fail("auth", err)
	}
	if _, err = step(header, "</stream:features>"); err != nil {
		return fail("stream restart", err)
	}
	got, err = step("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>imxbench</resource></bind></iq>", "</iq>")
	if err != nil {
		return fail("bind", err)
	}
	if !strings.Contains(got, "type='result'") && !strings.Contains(got, `type="result"`) {
		return fail("bind", fmt.Errorf("refused: %.300s", got))
	}
	if _, err := conn.Write([]byte("<presence/>")); err != nil {
		return fail("presence", err)
	}
	if !stop() {
		conn.Close()
		return nil, nil, ctx.Err()
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, nil
}

// readUntil reads from br up to and including the first of wants, and
// returns what it read; at most 64 KiB. It reads a byte at a time: it
// reads only the few stanzas of a login.
func readUntil(br *bufio.Reader, wants ...string) (string, error) {
	var got []byte
	for len(got) < 64<<10 {
		c, err := br.ReadByte()
		if err != nil {
			return string(got), err
		}
		got = append(got, c)
		for _, w := range wants {
			if bytes.HasSuffix(got, []byte(w)) {
				return string(got), nil
			}
		}
	}
	return string(got), fmt.Errorf("none of %q in the first 64 KiB", wants)
}

// send queues one message: false if the stream has ended (counted as
// failed). Its id says whether it is the closed loop's ("L") or a paced
// one ("P"), and which sender sent it.
func (xs *xmppSession) send(phase int, sched time.Time, loop bool) bool {
	kind := "P"
	if loop {
		kind = "L"
	}
	st := "<message to='" + xs.to + "' type='chat' id='" + kind + strconv.Itoa(xs.idx) + "." +
		strconv.FormatUint(xs.ids.Add(1), 10) + "'><body>" + xs.d.s.body(phase, sched) + "</body></message>"
	xs.wmu.Lock()
	if xs.wclosed {
		xs.wmu.Unlock()
		xs.d.s.fail("message not sent: the stream has ended")
		return false
	}
	xs.wbuf = append(xs.wbuf, st...)
	xs.wmu.Unlock()
	select {
	case xs.kick <- struct{}{}:
	default:
	}
	return true
}

// writeLoop writes what send queued, all that is waiting in one write.
func (xs *xmppSession) writeLoop() {
	defer close(xs.wdone)
	var buf []byte
	for range xs.kick {
		xs.wmu.Lock()
		buf, xs.wbuf = xs.wbuf, buf[:0]
		closing := xs.wclosed
		xs.wmu.Unlock()
		if len(buf) > 0 {
			_ = xs.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := xs.conn.Write(buf); err != nil {
				xs.d.s.fail("xmpp write: " + err.Error())
				xs.wmu.Lock()
				xs.wclosed = true
				xs.wmu.Unlock()
				return
			}
		}
		if closing {
			return
		}
	}
}

// readLoop reads the stream: a receiver's messages, and whatever else the
// server sends (its own presence, which is skipped).
func (xs *xmppSession) readLoop() {
	defer close(xs.rdone)
	buf := make([]byte, 0, 64<<10)
	for {
		n, err := xs.br.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			now := time.Now()
			done := scanMessages(buf, func(st []byte) { xs.message(st, now) })
			buf = buf[:copy(buf, buf[done:])]
			if len(buf) == cap(buf) {
				xs.d.s.fail("xmpp read: a stanza over 64 KiB")
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// message counts a message stanza read at now, and tells its sender. A
// message that comes back to its sender as an error (type='error', when
// the servers could not deliver it) counts as failed.
func (xs *xmppSession) message(st []byte, now time.Time) {
	id, body, ok := parseXMPPMessage(st)
	if len(id) < 2 || (id[0] != 'L' && id[0] != 'P') {
		return
	}
	dot := bytes.IndexByte(id, '.')
	if dot < 0 {
		return
	}
	idx, err := strconv.Atoi(string(id[1:dot]))
	d := xs.d
	if err != nil || idx < 0 || idx >= len(d.senders) || d.senders[idx] == nil {
		return
	}
	switch {
	case xmppIsError(st):
		d.s.fail(fmt.Sprintf("message returned with an error: %.300s", st))
	case !ok:
		return
	default:
		d.s.arrived(body, false, now, &xs.got)
		d.s.ok.Add(1)
	}
	d.answered(d.senders[idx], id[0] == 'L')
}

// xmppIsError reports whether a stanza's start tag has type='error'.
func xmppIsError(st []byte) bool {
	tag, _, _ := bytes.Cut(st, []byte(">"))
	return bytes.Contains(tag, []byte(" type='error'")) || bytes.Contains(tag, []byte(` type="error"`))
}

func (xs *xmppSession) state() *sendLoop       { return &xs.sendLoop }
func (xs *xmppSession) ended() <-chan struct{} { return xs.rdone }

var (
	xmppMessageOpen  = []byte("<message")
	xmppMessageClose = []byte("</message>")
)

// scanMessages calls fn with each complete <message …>…</message> element
// in b, in order, and returns how many bytes of b it is done with; the
// rest (the start of an element not yet complete) is for the next read.
// What lies between the elements (other stanzas, whitespace keepalives)
// is skipped. Neither server writes a self-closing <message/> to a client.
func scanMessages(b []byte, fn func(stanza []byte)) int {
	done := 0
	for {
		i := bytes.Index(b[done:], xmppMessageOpen)
		if i < 0 {
			// The tail may be the beginning of "<message".
			return max(done, len(b)-len(xmppMessageOpen)+1)
		}
		start := done + i
		j := bytes.Index(b[start:], xmppMessageClose)
		if j < 0 {
			return start
		}
		end := start + j + len(xmppMessageClose)
		fn(b[start:end])
		done = end
	}
}

// parseXMPPMessage returns the id attribute and the body text of a message
// stanza as scanMessages gives it, without unescaping (imxbench's ids and
// bodies need none).
func parseXMPPMessage(st []byte) (id, body []byte, ok bool) {
	tagEnd := bytes.IndexByte(st, '>')
	if tagEnd < 0 {
		return nil, nil, false
	}
	tag := st[:tagEnd]
	for _, q := range []string{" id='", ` id="`} {
		if i := bytes.Index(tag, []byte(q)); i >= 0 {
			rest := tag[i+len(q):]
			if j := bytes.IndexByte(rest, q[len(q)-1]); j >= 0 {
				id = rest[:j]
			}
			break
		}
	}
	i := bytes.Index(st, []byte("<body>"))
	if i < 0 {
		return id, nil, false
	}
	rest := st[i+len("<body>"):]
	j := bytes.Index(rest, []byte("</body>"))
	if j < 0 {
		return id, nil, false
	}
	return id, rest[:j], id != nil
}

// close ends every stream (</stream:stream>, then the connection once the
// server has closed its side, or after 5 s) and keeps the receivers'
// latencies.
func (d *xmppDriver) close() {
	all := append(slices.Clone(d.senders), d.recv...)
	closeEach(all, len(all), (*xmppSession).close)
	for _, xs := range d.recv {
		if xs != nil {
			d.s.keep(xs.got)
		}
	}
}

func (xs *xmppSession) close() {
	xs.wmu.Lock()
	if !xs.wclosed {
		xs.wbuf = append(xs.wbuf, "</stream:stream>"...)
		xs.wclosed = true
	}
	xs.wmu.Unlock()
	select {
	case xs.kick <- struct{}{}:
	default:
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-xs.rdone:
	case <-t.C:
	}
	xs.conn.Close()
	<-xs.rdone
	// The writer has ended (closing) or waits for a kick that wclosed
	// lets through once more.
	select {
	case xs.kick <- struct{}{}:
	default:
	}
	<-xs.wdone
}
