package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/c2s"
	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/wire"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imx-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var buildOnce sync.Once
var buildErr error

// imxBinary builds the imx command once per test run.
func imxBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "imx")
	buildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// backend is a real in-process server for alpha.example: the c2s Handler,
// an in-memory Authenticator, and a router that delivers through the
// handler's registry.
type backend struct {
	h   *c2s.Handler
	url string

	mu        sync.Mutex
	passwords map[string]string
	tokens    map[string]addr.Address
}

func (b *backend) Login(ctx context.Context, c c2s.Credentials) (c2s.Grant, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.Password != "" {
		if pw, ok := b.passwords[c.User.String()]; !ok || pw != c.Password {
			return c2s.Grant{}, wire.StatusAuthFailed
		}
	} else if u, ok := b.tokens[string(c.Token)]; !ok || u != c.User {
		return c2s.Grant{}, wire.StatusAuthFailed
	}
	if !c.Remember {
		return c2s.Grant{}, nil
	}
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	b.tokens[string(tok)] = c.User
	return c2s.Grant{Token: tok, TTL: 24 * time.Hour}, nil
}

func (b *backend) Send(ctx context.Context, from addr.Address, s *wire.Send) *wire.Result {
	to, err := addr.Parse(s.To)
	if err != nil {
		return &wire.Result{Code: wire.StatusBadRequest}
	}
	b.mu.Lock()
	_, known := b.passwords[to.String()]
	b.mu.Unlock()
	if !known {
		return &wire.Result{Code: wire.StatusUnknownUser, Text: "no such user"}
	}
	mime := fmt.Sprintf("From: %s\r\nTo: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		from, to, time.Now().Format(time.RFC1123Z), s.Body)
	n := b.h.Deliver(ctx, to, &wire.Message{From: from.String(), To: to.String(), ID: s.ID, MIME: []byte(mime)})
	if n == 0 {
		return &wire.Result{Code: wire.StatusOffline}
	}
	return &wire.Result{Code: wire.StatusDelivered, Count: uint32(n)}
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{
		passwords: map[string]string{"alice@alpha.example": "alice pw", "bob@alpha.example": "bob pw", "carol@alpha.example": "carol pw"},
		tokens:    map[string]addr.Address{},
	}
	h, err := c2s.New(c2s.Config{Domains: []string{"alpha.example"}, Auth: b, Router: b})
	if err != nil {
		t.Fatal(err)
	}
	b.h = h
	mux := http.NewServeMux()
	mux.Handle(c2s.Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = h.Close()
		srv.Close()
	})
	b.url = srv.URL
	return b
}

// syncBuffer collects a process's output.
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

// cli runs the imx binary with a home of its own.
type cli struct {
	t    *testing.T
	bin  string
	home string
	ctx  context.Context
}

func (c *cli) command(password string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(c.ctx, c.bin, args...)
	cmd.Env = append(os.Environ(),
		"HOME="+c.home,
		"XDG_CONFIG_HOME="+filepath.Join(c.home, "config"),
		"IMX_PASSWORD="+password,
	)
	return cmd
}

// run runs imx to the end and returns its exit code, stdout and stderr.
func (c *cli) run(password string, args ...string) (int, string, string) {
	c.t.Helper()
	cmd := c.command(password, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	c.t.Fatalf("imx %v: %v", args, err)
	return 0, "", ""
}

func goClient(t *testing.T, b *backend, user, password string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, b.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Login(ctx, user, password, false); err != nil {
		t.Fatal(err)
	}
	return c
}

func receive(t *testing.T, c *client.Client) client.Incoming {
	t.Helper()
	select {
	case m := <-c.Messages():
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
		return client.Incoming{}
	}
}

// TestCLI runs the imx binary as a process against a server in the test:
// login, send, listen, chat, logout.
func TestCLI(t *testing.T) {
	b := startBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &cli{t: t, bin: imxBinary(t), home: t.TempDir(), ctx: ctx}
	alice := addr.MustParse("alice@alpha.example")
	bob := goClient(t, b, "bob@alpha.example", "bob pw")

	// Not logged in yet.
	if code, _, stderr := c.run("", "send", "bob@alpha.example", "hi"); code != exitAuth || !strings.Contains(stderr, "not logged in") {
		t.Errorf("send before login: exit %d, %q", code, stderr)
	}
	// A wrong password.
	if code, _, stderr := c.run("wrong", "login", b.url, "alice@alpha.example"); code != exitAuth || !strings.Contains(stderr, "login refused") {
		t.Errorf("login with a wrong password: exit %d, %q", code, stderr)
	}
	// No password and no terminal.
	if code, _, stderr := c.run("", "login", b.url, "alice@alpha.example"); code != exitFailure || !strings.Contains(stderr, "IMX_PASSWORD") {
		t.Errorf("login without a password: exit %d, %q", code, stderr)
	}

	// login
	code, stdout, stderr := c.run("alice pw", "login", b.url, "Alice@alpha.example")
	if code != 0 || !strings.Contains(stdout, "Logged in as alice@alpha.example") {
		t.Fatalf("login: exit %d\n%s%s", code, stdout, stderr)
	}
	path := filepath.Join(c.home, "config", "imx", "session.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("session.json has mode %v", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	var saved savedSession
	if err := json.Unmarshal(raw, &saved); err != nil || saved.User != "alice@alpha.example" || saved.Server != b.url || len(saved.Token) != 32 {
		t.Errorf("session.json: %s (%v)", raw, err)
	}
	if bytes.Contains(raw, []byte("alice pw")) {
		t.Error("session.json holds the password")
	}

	// send: delivered, offline, unknown.
	code, stdout, stderr = c.run("", "send", "bob@alpha.example", "Hello", "Bob!")
	if code != 0 || strings.TrimSpace(stdout) != "delivered to 1 session of bob@alpha.example" {
		t.Errorf("send: exit %d\n%s%s", code, stdout, stderr)
	}
	if m := receive(t, bob); m.Body != "Hello Bob!" || m.From != "alice@alpha.example" {
		t.Errorf("bob received %+v", m)
	}
	if code, stdout, _ := c.run("", "send", "carol@alpha.example", "hi"); code != exitUndelivered || !strings.Contains(stdout, "carol@alpha.example is offline") {
		t.Errorf("send to an offline user: exit %d, %q", code, stdout)
	}
	if code, stdout, _ := c.run("", "send", "dave@alpha.example", "hi"); code != exitUndelivered || !strings.Contains(stdout, "no such user") {
		t.Errorf("send to an unknown user: exit %d, %q", code, stdout)
	}
	if code, _, _ := c.run("", "send", "not-an-address", "hi"); code != exitUsage {
		t.Errorf("send to a bad address: exit %d", code)
	}

	// listen: one message, then interrupted.
	listen := c.command("", "listen")
	var lout, lerr syncBuffer
	listen.Stdout, listen.Stderr = &lout, &lerr
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "listen's session", func() bool { return b.h.Online(alice) })
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if res, err := bob.Send(sctx, "alice@alpha.example", "", "Hello listener\nsecond line \x1b[31m"); err != nil || res.Count != 1 {
		t.Fatalf("bob's send: %+v, %v", res, err)
	}
	testutil.WaitFor(t, "listen to print the message", func() bool {
		return strings.Contains(lout.String(), "bob@alpha.example: Hello listener\n    second line \uFFFD[31m\n")
	})
	if err := listen.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := listen.Wait(); err != nil {
		t.Errorf("listen after an interrupt: %v\n%s", err, lerr.String())
	}
	testutil.WaitFor(t, "listen's session to end", func() bool { return !b.h.Online(alice) })

	// chat: an incoming line, an outgoing line with its result, then end
	// of input.
	chat := c.command("", "chat", "bob@alpha.example")
	var cout, cerr syncBuffer
	chat.Stdout, chat.Stderr = &cout, &cerr
	stdin, err := chat.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "chat's session", func() bool { return b.h.Online(alice) })
	if _, err := bob.Send(sctx, "alice@alpha.example", "", "hi alice"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "chat to print bob's line", func() bool { return strings.Contains(cout.String(), "bob@alpha.example: hi alice\n") })
	if _, err := stdin.Write([]byte("hello bob\n\n")); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, bob); m.Body != "hello bob" {
		t.Errorf("bob received %+v", m)
	}
	testutil.WaitFor(t, "chat to print the result", func() bool {
		return strings.Contains(cout.String(), "(delivered to 1 session of bob@alpha.example)\n")
	})
	stdin.Close()
	if err := chat.Wait(); err != nil {
		t.Errorf("chat at end of input: %v\n%s", err, cerr.String())
	}

	// logout
	if code, stdout, _ := c.run("", "logout"); code != 0 || !strings.Contains(stdout, "Logged out") {
		t.Errorf("logout: exit %d, %q", code, stdout)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("session.json after logout: %v", err)
	}
	if code, _, _ := c.run("", "send", "bob@alpha.example", "hi"); code != exitAuth {
		t.Errorf("send after logout: exit %d", code)
	}
}

// TestCLIRevokedSession: a saved session the server no longer knows gives
// exit code 3 and tells to log in again.
func TestCLIRevokedSession(t *testing.T) {
	b := startBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &cli{t: t, bin: imxBinary(t), home: t.TempDir(), ctx: ctx}
	if code, _, stderr := c.run("alice pw", "login", b.url, "alice@alpha.example"); code != 0 {
		t.Fatalf("login: %d %s", code, stderr)
	}
	b.mu.Lock()
	clear(b.tokens)
	b.mu.Unlock()
	code, _, stderr := c.run("", "send", "bob@alpha.example", "hi")
	if code != exitAuth || !strings.Contains(stderr, "no longer valid") {
		t.Errorf("send with a revoked session: exit %d, %q", code, stderr)
	}
}

// TestUsage checks the help and usage errors in-process.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout, or stderr when the exit code is not 0
	}{
		{nil, exitUsage, "Commands:"},
		{[]string{"help"}, exitOK, "chat     chat with one address"},
		{[]string{"--help"}, exitOK, "Commands:"},
		{[]string{"help", "login"}, exitOK, "IMX_PASSWORD"},
		{[]string{"help", "nope"}, exitUsage, "unknown command"},
		{[]string{"nope"}, exitUsage, "unknown command \"nope\""},
		{[]string{"login", "http://x"}, exitUsage, "Usage: imx login SERVER-URL USER"},
		{[]string{"login", "http://x", "not an address"}, exitUsage, "imx login: addr:"},
		{[]string{"send", "bob@x.example"}, exitUsage, "Usage: imx send"},
		{[]string{"send", "-bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"chat"}, exitUsage, "Usage: imx chat ADDRESS"},
		{[]string{"listen", "extra"}, exitUsage, "Usage: imx listen"},
		{[]string{"logout", "extra"}, exitUsage, "Usage: imx logout"},
		{[]string{"help", "admin"}, exitOK, "IMX_ADMIN"},
		{[]string{"admin"}, exitUsage, "Usage: imx admin [-admin URL] user add|del|passwd ADDRESS"},
		{[]string{"admin", "user"}, exitUsage, "Usage: imx admin"},
		{[]string{"admin", "user", "frob", "x"}, exitUsage, "imx admin: unknown command \"user frob\""},
		{[]string{"admin", "frob"}, exitUsage, "imx admin: unknown command \"frob\""},
		{[]string{"admin", "user", "add"}, exitUsage, "Usage: imx admin [-admin URL] user add ADDRESS"},
		{[]string{"admin", "user", "del", "a@x.example", "b@x.example"}, exitUsage, "Usage: imx admin [-admin URL] user del ADDRESS"},
		{[]string{"admin", "user", "passwd", "not an address"}, exitUsage, "imx admin user passwd: addr:"},
		{[]string{"admin", "user", "list", "a.example", "b.example"}, exitUsage, "Usage: imx admin [-admin URL] user list [DOMAIN]"},
		{[]string{"admin", "user", "list", "not a domain"}, exitUsage, "invalid domain"},
		{[]string{"admin", "federation", "extra"}, exitUsage, "Usage: imx admin [-admin URL] federation"},
		{[]string{"admin", "-bogus", "federation"}, exitUsage, "flag provided but not defined"},
		{[]string{"admin", "-admin", "ftp://x", "federation"}, exitUsage, "invalid admin URL"},
	} {
		var stdout, stderr bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		code := run(context.Background(), tc.args, e)
		out := stdout.String()
		if code != exitOK {
			out = stderr.String()
		}
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("imx %q: exit %d, output %q; want %d and %q", tc.args, code, out, tc.code, tc.out)
		}
	}
}
