package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/wire"
)

// The end-to-end tests run real imxd processes built from the tree, on
// loopback addresses, with the harness's DNS server publishing their
// _imx._tcp records, and talk to them with the client package.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func imxdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imxd-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "imxd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is one imxd process.
type proc struct {
	t        *testing.T
	name     string
	cfgPath  string
	server   string // ip:port of listen.server
	client   string
	admin    string
	cmd      *exec.Cmd
	logs     *syncBuffer
	exited   chan error
	dataDir  string
	extraCfg string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startIMXD writes a configuration for domain on ip and starts imxd.
func startIMXD(t *testing.T, dns *imxtest.DNS, domain, ip, extra string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{t: t, name: domain, server: freeAddr(t, ip), client: freeAddr(t, ip), admin: freeAddr(t, ip),
		dataDir: filepath.Join(dir, "data"), extraCfg: extra, cfgPath: filepath.Join(dir, "imxd.toml")}
	cfg := fmt.Sprintf(`data_dir = %q
[log]
level = "debug"
[listen]
server = %q
client = %q
admin = %q
[dns]
server = %q
[federation]
min_backoff = "50ms"
max_backoff = "500ms"
retry_for = "30s"
[[domain]]
name = %q
rate_limit = 1000000
rate_burst = 100000
%s`, p.dataDir, p.server, p.client, p.admin, dns.Addr(), domain, extra)
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(p.server)
	host := "imx." + domain
	dns.SetA(host, ap.Addr())
	dns.SetSRV(domain, imxtest.SRV{Priority: 10, Weight: 10, Port: ap.Port(), Target: host})
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) start() {
	t := p.t
	t.Helper()
	p.logs = &syncBuffer{}
	p.cmd = exec.Command(imxdBinary(t), "-c", p.cfgPath, "-grace", "5s")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan error, 1)
	go func() { p.exited <- p.cmd.Wait() }()
	imxtest.WaitFor(t, 20*time.Second, 20*time.Millisecond, func() bool {
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited: %v\n%s", p.name, err, p.logs)
		default:
		}
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			p.t.Errorf("%s exited with %v\n%s", p.name, err, p.logs)
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		p.t.Errorf("%s did not stop within 20 s\n%s", p.name, p.logs)
	}
	p.cmd = nil
}

func (p *proc) addUser(local, password string) string {
	p.t.Helper()
	a := local + "@" + p.name
	body, _ := json.Marshal(map[string]string{"address": a, "password": password})
	resp, err := http.Post("http://"+p.admin+"/api/v1/users", "application/json", bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		p.t.Fatalf("create %s: %d %s", a, resp.StatusCode, b)
	}
	return a
}

func (p *proc) federation() []map[string]any {
	p.t.Helper()
	resp, err := http.Get("http://" + p.admin + "/api/v1/federation")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		p.t.Fatal(err)
	}
	return out
}

func login(t *testing.T, p *proc, user, password string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+p.client+"/imx", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Login(ctx, user, password, false); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func sendText(t *testing.T, c *client.Client, to, ctype, body string) *wire.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	res, err := c.Send(ctx, to, ctype, body)
	if err != nil {
		t.Fatalf("send to %s: %v", to, err)
	}
	return res
}

func receive(t *testing.T, c *client.Client) client.Incoming {
	t.Helper()
	select {
	case m := <-c.Messages():
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message arrived")
		return client.Incoming{}
	}
}

const pw = "correct horse battery"

// TestTwoServers: users on two domains served by two imxd processes message
// each other both ways; unknown user, too large, html-lite sanitizing,
// local delivery without a server connection, and a wrong password.
func TestTwoServers(t *testing.T) {
	dns := imxtest.StartDNS(t)
	alpha := startIMXD(t, dns, "alpha.test", "127.0.0.2", "")
	beta := startIMXD(t, dns, "beta.test", "127.0.0.3", "max_message_size = 1024\n")
	alice, bob := alpha.addUser("alice", pw), alpha.addUser("bob", pw)
	carol := beta.addUser("carol", pw)
	ca, cb, cc := login(t, alpha, alice, pw), login(t, alpha, bob, pw), login(t, beta, carol, pw)

	// Local first: no server connection is opened.
	if res := sendText(t, ca, bob, "text/plain", "lunch?"); res.Code != wire.StatusDelivered || res.Count != 1 {
		t.Fatalf("alice → bob: %v %d %q", res.Code, res.Count, res.Text)
	}
	if m := receive(t, cb); m.From != alice || m.Body != "lunch?" {
		t.Errorf("bob got %+v", m)
	}
	if conns := alpha.federation(); len(conns) != 0 {
		t.Errorf("local delivery opened server connections: %v", conns)
	}

	// Across domains, and back.
	if res := sendText(t, ca, carol, "text/plain", "Hello Carol, this is a single long line that nobody wraps."); res.Code != wire.StatusDelivered {
		t.Fatalf("alice → carol: %v %q", res.Code, res.Text)
	}
	if m := receive(t, cc); m.From != alice || m.Body != "Hello Carol, this is a single long line that nobody wraps." {
		t.Errorf("carol got %+v", m)
	}
	if res := sendText(t, cc, alice, "text/plain", "Hi Alice"); res.Code != wire.StatusDelivered {
		t.Fatalf("carol → alice: %v %q", res.Code, res.Text)
	}
	if m := receive(t, ca); m.From != carol || m.Body != "Hi Alice" {
		t.Errorf("alice got %+v", m)
	}

	// Unknown user, too large (beta's limit is 1 KiB), html-lite.
	if res := sendText(t, ca, "nobody@beta.test", "text/plain", "?"); res.Code != wire.StatusUnknownUser {
		t.Errorf("to an unknown user: %v", res.Code)
	}
	if res := sendText(t, ca, carol, "text/plain", strings.Repeat("x", 2000)); res.Code != wire.StatusTooLarge {
		t.Errorf("too large: %v %q", res.Code, res.Text)
	}
	html := `<b onclick="steal()">bold</b> <script>alert(1)</script><a href="javascript:evil()">x</a> <i>fine</i>`
	if res := sendText(t, ca, carol, "text/html-lite", html); res.Code != wire.StatusDelivered {
		t.Fatalf("html-lite: %v %q", res.Code, res.Text)
	}
	m := receive(t, cc)
	if strings.Contains(m.Body, "script") || strings.Contains(m.Body, "onclick") || strings.Contains(m.Body, "javascript") ||
		!strings.Contains(m.Body, "<b>bold</b>") || !strings.Contains(m.Body, "<i>fine</i>") {
		t.Errorf("html-lite body at carol: %q", m.Body)
	}

	// A wrong password.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+alpha.client+"/imx", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, alice, "wrong password", false); err == nil {
		t.Error("a wrong password logged in")
	}
}

// TestConfigUnknownKey: imxd refuses a configuration with an unknown key and
// names it.
func TestConfigUnknownKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imxd.toml")
	if err := os.WriteFile(path, []byte("[[domain]]\nname = \"a.test\"\n[federation]\nmax_conns = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(imxdBinary(t), "-t", "-c", path).CombinedOutput()
	if err == nil {
		t.Fatalf("imxd -t accepted an unknown key:\n%s", out)
	}
	if !strings.Contains(string(out), "federation.max_conns (line 4): unknown key") {
		t.Errorf("output does not name the key and line:\n%s", out)
	}
}

// proxy forwards TCP connections to target and can cut them all.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, ip, target string) *proxy {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(u, c); u.Close() })
			p.wg.Go(func() { io.Copy(c, u); c.Close() })
		}
	})
	t.Cleanup(func() { ln.Close(); p.cut(); p.wg.Wait() })
	return p
}

// cut closes every connection through the proxy and returns how many.
func (p *proxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	return n / 2
}

// TestConnectionKilledMidStream: the server connection between the two
// domains is cut in the middle of 10,000 messages; every message is
// delivered exactly once and every sender learns it.
func TestConnectionKilledMidStream(t *testing.T) {
	dns := imxtest.StartDNS(t)
	alpha := startIMXD(t, dns, "alpha.test", "127.0.0.2", "")
	beta := startIMXD(t, dns, "beta.test", "127.0.0.3", "")
	// alpha reaches beta through a proxy that the test can cut.
	px := startProxy(t, "127.0.0.4", beta.server)
	pa := netip.MustParseAddrPort(px.ln.Addr().String())
	dns.SetA("proxy.beta.test", pa.Addr())
	dns.SetSRV("beta.test", imxtest.SRV{Priority: 10, Weight: 10, Port: pa.Port(), Target: "proxy.beta.test"})

	alice, carol := alpha.addUser("alice", pw), beta.addUser("carol", pw)
	ca, cc := login(t, alpha, alice, pw), login(t, beta, carol, pw)

	const total = 10000
	seen := make(map[string]int, total)
	var mu sync.Mutex
	received := make(chan struct{})
	var count atomic.Int64
	go func() {
		for m := range cc.Messages() {
			mu.Lock()
			seen[m.Body]++
			mu.Unlock()
			if count.Add(1) == total {
				close(received)
			}
		}
	}()

	var sent atomic.Int64
	var cutOnce sync.Once
	var wg sync.WaitGroup
	errs := make(chan string, total)
	next := atomic.Int64{}
	for range 32 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				res, err := ca.SendMessage(ctx, &wire.Send{To: carol, Body: fmt.Sprintf("m%05d", i), ID: client.NewMessageID()})
				cancel()
				switch {
				case err != nil:
					errs <- err.Error()
				case res.Code != wire.StatusDelivered:
					errs <- res.Code.String() + " " + res.Text
				}
				if sent.Add(1) == total/3 {
					cutOnce.Do(func() { t.Logf("cut %d connections after %d results", px.cut(), total/3) })
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a message failed: %s", e)
	}
	select {
	case <-received:
	case <-time.After(30 * time.Second):
		t.Fatalf("carol received %d of %d", count.Load(), total)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != total {
		t.Errorf("carol received %d distinct messages, want %d", len(seen), total)
	}
	for body, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", body, n)
		}
	}
}

// TestReceiverRestart: the receiving server is down when a message is sent
// and comes back; the sender's result still arrives, and the message waits
// for its recipient.
func TestReceiverRestart(t *testing.T) {
	dns := imxtest.StartDNS(t)
	alpha := startIMXD(t, dns, "alpha.test", "127.0.0.2", "")
	beta := startIMXD(t, dns, "beta.test", "127.0.0.3", "offline_messages = true\n")
	alice, carol := alpha.addUser("alice", pw), beta.addUser("carol", pw)
	ca := login(t, alpha, alice, pw)
	if res := sendText(t, ca, carol, "text/plain", "before"); res.Code != wire.StatusStored {
		t.Fatalf("to offline carol: %v %q", res.Code, res.Text)
	}
	beta.stop()
	done := make(chan *wire.Result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		res, err := ca.Send(ctx, carol, "text/plain", "while you were down")
		if err != nil {
			res = &wire.Result{Code: wire.StatusInternal, Text: err.Error()}
		}
		done <- res
	}()
	// beta comes back once alpha has tried and failed.
	imxtest.WaitFor(t, 20*time.Second, 10*time.Millisecond, func() bool { return strings.Contains(alpha.logs.String(), "retrying a message") })
	beta.start()
	select {
	case res := <-done:
		if res.Code != wire.StatusStored {
			t.Errorf("result after the restart: %v %q", res.Code, res.Text)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("no result after the receiver restarted")
	}
	// carol logs in and gets both messages kept for her, in order.
	cc := login(t, beta, carol, pw)
	for _, want := range []string{"before", "while you were down"} {
		if m := receive(t, cc); m.Body != want || m.From != alice {
			t.Errorf("carol got %q from %s, want %q", m.Body, m.From, want)
		}
	}
}

// TestDemo runs "imxd demo", the README's run command, as a process: its two
// domains must serve the users it prints, across domains, and stop cleanly
// on an interrupt.
func TestDemo(t *testing.T) {
	cmd := exec.Command(imxdBinary(t), "demo")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	imxtest.WaitFor(t, 30*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(out.String(), "ready; press Ctrl-C") })
	urls := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if name, rest, ok := strings.Cut(line, ": server "); ok {
			_, after, _ := strings.Cut(rest, "clients ws://")
			url, _, _ := strings.Cut(after, ",")
			urls[name] = "ws://" + url
		}
	}
	if len(urls) != 2 {
		t.Fatalf("demo output lacks the client URLs:\n%s", out)
	}
	dial := func(url, user string) *client.Client {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Login(ctx, user, DemoPassword, false); err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		return c
	}
	alice := dial(urls["alpha.localhost"], "alice@alpha.localhost")
	carol := dial(urls["beta.localhost"], "carol@beta.localhost")
	if res := sendText(t, alice, "carol@beta.localhost", "text/plain", "hello from the demo"); res.Code != wire.StatusDelivered {
		t.Fatalf("alice → carol: %v %q", res.Code, res.Text)
	}
	if m := receive(t, carol); m.Body != "hello from the demo" {
		t.Errorf("carol got %+v", m)
	}
	alice.Close()
	carol.Close()
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("demo exited with %v\n%s", err, out)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("demo did not stop on an interrupt\n%s", out)
	}
}

// TestInit runs "imxd init": it writes a configuration that "imxd -t"
// accepts, creates the data directory, prints the SRV record, and refuses
// to overwrite.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(imxdBinary(t), "init", "Example.COM", "-dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("imxd init: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "_imx._tcp.example.com. 3600 IN SRV 10 10 7468 imx.example.com.") {
		t.Errorf("init does not print the SRV record:\n%s", out)
	}
	if st, err := os.Stat(filepath.Join(dir, "imx-data")); err != nil || !st.IsDir() {
		t.Errorf("no data directory: %v", err)
	}
	check, err := exec.Command(imxdBinary(t), "-t", "-c", filepath.Join(dir, "imxd.toml")).CombinedOutput()
	if err != nil || !strings.Contains(string(check), "ok") {
		t.Errorf("imxd -t on the written configuration: %v\n%s", err, check)
	}
	if out, err := exec.Command(imxdBinary(t), "init", "example.com", "-dir", dir).CombinedOutput(); err == nil {
		t.Errorf("init overwrote an existing configuration:\n%s", out)
	}
}

// TestDrainUnderLoad: the receiving server is stopped with SIGTERM in the
// middle of a stream of messages and started again. Every message gets a
// final result, and its recipient gets each exactly once: live, or from
// the offline box after logging in again.
func TestDrainUnderLoad(t *testing.T) {
	dns := imxtest.StartDNS(t)
	alpha := startIMXD(t, dns, "alpha.test", "127.0.0.2", "")
	beta := startIMXD(t, dns, "beta.test", "127.0.0.3", "offline_messages = true\noffline_limit = 100000\n")
	alice, carol := alpha.addUser("alice", pw), beta.addUser("carol", pw)
	ca := login(t, alpha, alice, pw)

	var mu sync.Mutex
	seen := map[string]int{}
	collect := func(c *client.Client) {
		for m := range c.Messages() {
			mu.Lock()
			seen[m.Body]++
			mu.Unlock()
		}
	}
	go collect(login(t, beta, carol, pw))

	const total = 1500
	var next, done atomic.Int64
	var restart sync.Once
	results := make(chan string, total)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				res, err := ca.SendMessage(ctx, &wire.Send{To: carol, Body: fmt.Sprintf("d%04d", i), ID: client.NewMessageID()})
				cancel()
				switch {
				case err != nil:
					results <- "error: " + err.Error()
				default:
					results <- res.Code.String()
				}
				if done.Add(1) == total/3 {
					restart.Do(func() {
						beta.stop() // SIGTERM: a graceful drain
						beta.start()
					})
				}
			}
		})
	}
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	if counts["delivered"]+counts["stored"] != total {
		t.Fatalf("results: %v, want every message delivered or stored", counts)
	}
	// carol logs in again and gets what was stored while she was away.
	go collect(login(t, beta, carol, pw))
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol received %d distinct messages of %d; beta's log:\n%s", n, total, lastLines(beta.logs.String(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for body, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", body, n)
		}
	}
	t.Logf("results across the drain: %v", counts)
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// event waits for a presence event of type T on c that satisfies ok.
func event[T wire.Record](t *testing.T, c *client.Client, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			if x, is := ev.(T); is && ok(x) {
				return x
			}
		case <-deadline:
			var zero T
			t.Fatalf("no %T event came", zero)
			return zero
		}
	}
}

// TestPresenceAcrossDomains: alice asks to see carol's presence across
// domains; carol is asked (even though the request came through two
// servers), approves, and alice sees carol online, then away. dave, whom
// carol never approved, learns nothing.
func TestPresenceAcrossDomains(t *testing.T) {
	dns := imxtest.StartDNS(t)
	alpha := startIMXD(t, dns, "alpha.test", "127.0.0.2", "")
	beta := startIMXD(t, dns, "beta.test", "127.0.0.3", "")
	alice, dave := alpha.addUser("alice", pw), alpha.addUser("dave", pw)
	carol := beta.addUser("carol", pw)
	ca, cd, cc := login(t, alpha, alice, pw), login(t, alpha, dave, pw), login(t, beta, carol, pw)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := ca.AddContact(ctx, carol, "Carol")
	if err != nil || !res.Code.Success() {
		t.Fatalf("alice adds carol: %v %v", res, err)
	}
	req := event(t, cc, func(r *wire.Request) bool { return r.Watcher == alice })
	if res, err := cc.Approve(ctx, req.Watcher, true); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("carol approves: %v %v", res, err)
	}
	event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceOnline })
	if res, err := cc.SetPresence(ctx, wire.PresenceAway, "lunch"); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("carol sets away: %v %v", res, err)
	}
	n := event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceAway })
	if n.Status != "lunch" {
		t.Errorf("status %q", n.Status)
	}
	list, err := ca.Contacts(ctx)
	if err != nil || len(list) != 1 || list[0] != carol+" approved Carol" {
		t.Errorf("alice's contacts: %q %v", list, err)
	}
	attrs, err := ca.Attributes(ctx, carol)
	if err != nil || !hasAttr(attrs, "presence", "away") || !hasAttr(attrs, "status", "lunch") {
		t.Errorf("alice's whois of carol: %v %v", attrs, err)
	}
	attrs, err = cd.Attributes(ctx, carol)
	if err != nil || hasAttr(attrs, "presence", "away") || hasAttr(attrs, "status", "lunch") {
		t.Errorf("dave, never approved, sees carol's attributes: %v %v", attrs, err)
	}
	attrs, err = cd.Attributes(ctx, "beta.test")
	if err != nil || !hasAttr(attrs, "max-message-size", "65536") {
		t.Errorf("domain attributes of beta.test: %v %v", attrs, err)
	}

	// dave asks too, and carol does not answer: dave sees nothing.
	if res, err := cd.AddContact(ctx, carol, ""); err != nil || !res.Code.Success() {
		t.Fatalf("dave adds carol: %v %v", res, err)
	}
	event(t, cc, func(r *wire.Request) bool { return r.Watcher == dave })
	if _, err := cc.SetPresence(ctx, wire.PresenceBusy, "secret meeting"); err != nil {
		t.Fatal(err)
	}
	event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceBusy })
	select {
	case ev := <-cd.Events():
		if n, ok := ev.(*wire.Notify); ok && n.Presence != wire.PresenceOffline {
			t.Errorf("dave, never approved, learned %v %q", n.Presence, n.Status)
		}
	default:
	}
	list, _ = cd.Contacts(ctx)
	if len(list) != 1 || !strings.HasPrefix(list[0], carol+" asked") {
		t.Errorf("dave's contacts: %q", list)
	}
}

// TestPresenceSurvivesRestarts: a subscription survives a restart of the
// presentity's server and of the watcher's server.
func TestPresenceSurvivesRestarts(t *testing.T) {
	dns := imxtest.StartDNS(t)
	alpha := startIMXD(t, dns, "alpha.test", "127.0.0.2", "")
	beta := startIMXD(t, dns, "beta.test", "127.0.0.3", "")
	alice, carol := alpha.addUser("alice", pw), beta.addUser("carol", pw)
	ca, cc := login(t, alpha, alice, pw), login(t, beta, carol, pw)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := ca.AddContact(ctx, carol, ""); err != nil {
		t.Fatal(err)
	}
	event(t, cc, func(r *wire.Request) bool { return r.Watcher == alice })
	if _, err := cc.Approve(ctx, alice, true); err != nil {
		t.Fatal(err)
	}
	event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceOnline })

	// The presentity's server restarts: carol logs in again and sets
	// away; alice hears it without asking again.
	beta.stop()
	event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceOffline })
	beta.start()
	cc = login(t, beta, carol, pw)
	if _, err := cc.SetPresence(ctx, wire.PresenceAway, "after a restart"); err != nil {
		t.Fatal(err)
	}
	event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceAway })

	// The watcher's server restarts: alice logs in again and hears carol.
	alpha.stop()
	alpha.start()
	ca = login(t, alpha, alice, pw)
	if _, err := cc.SetPresence(ctx, wire.PresenceBusy, "after the other restart"); err != nil {
		t.Fatal(err)
	}
	event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceBusy })
}

func hasAttr(attrs []wire.Attr, name, value string) bool {
	for _, a := range attrs {
		if a.Name == name && a.Value == value {
			return true
		}
	}
	return false
}
