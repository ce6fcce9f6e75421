package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/admin"
	"github.com/imxproject/imx/s2s"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/sqlite"
)

// adminServer is a real admin API for alpha.example over a SQLite store.
type adminServer struct {
	url string
	st  *sqlite.Store

	mu    sync.Mutex
	conns []s2s.ConnInfo // what GET /api/v1/federation returns
}

func startAdmin(t *testing.T) *adminServer {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "imx.db"),
		sqlite.Options{Password: store.PasswordParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := &adminServer{st: st, conns: []s2s.ConnInfo{}}
	srv := httptest.NewServer(admin.New(admin.Config{
		Accounts: st,
		Domains:  []string{"alpha.example"},
		Federation: func() any {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.conns
		},
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func (a *adminServer) users(t *testing.T) []string {
	t.Helper()
	list, err := a.st.ListAccounts(context.Background(), "alpha.example", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range list {
		out = append(out, u.String())
	}
	return out
}

// runEnv runs imx to the end with the environment variables env added
// (they override those of cli.command).
func (c *cli) runEnv(env []string, args ...string) (int, string, string) {
	c.t.Helper()
	cmd := c.command("", args...)
	cmd.Env = append(cmd.Env, env...)
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

// TestCLIAdmin runs imx admin as a process against a real admin API: user
// add, list, passwd, del and federation, with their errors.
func TestCLIAdmin(t *testing.T) {
	a := startAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &cli{t: t, bin: imxBinary(t), home: t.TempDir(), ctx: ctx}
	// adm runs imx admin -admin URL ARGS with IMX_PASSWORD=password.
	adm := func(password string, args ...string) (int, string, string) {
		t.Helper()
		return c.run(password, append([]string{"admin", "-admin", a.url}, args...)...)
	}
	auth := func(user, password string) error {
		return a.st.Authenticate(context.Background(), addr.MustParse(user), password)
	}
	check := func(what string, code int, stdout, stderr string, wantCode int, wantStdout, wantStderr string) {
		t.Helper()
		if code != wantCode || stdout != wantStdout || !strings.Contains(stderr, wantStderr) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
				what, code, stdout, stderr, wantCode, wantStdout, wantStderr)
		}
	}

	// No users yet.
	code, stdout, stderr := adm("", "user", "list")
	check("list with no users", code, stdout, stderr, exitOK, "", "No users.")

	// add
	code, stdout, stderr = adm("correct horse", "user", "add", "Alice@alpha.example")
	check("add", code, stdout, stderr, exitOK, "Created alice@alpha.example.\n", "")
	if err := auth("alice@alpha.example", "correct horse"); err != nil {
		t.Errorf("the created user cannot log in: %v", err)
	}
	code, stdout, stderr = adm("another one", "user", "add", "alice@alpha.example")
	check("add an existing user", code, stdout, stderr, exitUser, "", "imx admin user add: user exists: alice@alpha.example\n")
	if err := auth("alice@alpha.example", "correct horse"); err != nil {
		t.Errorf("adding alice again changed her password: %v", err)
	}
	code, stdout, stderr = adm("long enough", "user", "add", "bob@beta.example")
	check("add in a domain not served", code, stdout, stderr, exitFailure, "", "domain beta.example is not served here")
	code, stdout, stderr = adm("short", "user", "add", "bob@alpha.example")
	check("add with a short password", code, stdout, stderr, exitFailure, "", "password shorter than 8 characters")
	code, stdout, stderr = adm("", "user", "add", "bob@alpha.example")
	check("add without a password", code, stdout, stderr, exitFailure, "", "IMX_PASSWORD")
	code, stdout, stderr = adm("long enough", "user", "add", "not an address")
	check("add a bad address", code, stdout, stderr, exitUsage, "", "imx admin user add: addr:")
	if got := a.users(t); len(got) != 1 {
		t.Errorf("users after the failed adds: %q", got)
	}
	// -admin after the subcommand, and an address that needs escaping in
	// the URL path.
	odd := "o'brien/x%y?z#w@alpha.example"
	code, stdout, stderr = c.run("bob's password", "admin", "user", "add", "-admin", a.url, "bob@alpha.example")
	check("add bob", code, stdout, stderr, exitOK, "Created bob@alpha.example.\n", "")
	code, stdout, stderr = adm("odd password", "user", "add", odd)
	check("add "+odd, code, stdout, stderr, exitOK, "Created "+odd+".\n", "")

	// list
	want := "alice@alpha.example\nbob@alpha.example\n" + odd + "\n"
	code, stdout, stderr = adm("", "user", "list")
	check("list", code, stdout, stderr, exitOK, want, "")
	code, stdout, stderr = adm("", "user", "list", "Alpha.Example")
	check("list Alpha.Example", code, stdout, stderr, exitOK, want, "")
	code, stdout, stderr = adm("", "user", "list", "beta.example")
	check("list a domain not served", code, stdout, stderr, exitFailure, "", "domain beta.example is not served here")

	// passwd
	code, stdout, stderr = adm("battery staple", "user", "passwd", "alice@alpha.example")
	check("passwd", code, stdout, stderr, exitOK, "Changed the password of alice@alpha.example.\n", "")
	if err := auth("alice@alpha.example", "battery staple"); err != nil {
		t.Errorf("the new password is refused: %v", err)
	}
	if err := auth("alice@alpha.example", "correct horse"); !errors.Is(err, store.ErrBadPassword) {
		t.Errorf("the old password: %v, want ErrBadPassword", err)
	}
	code, stdout, stderr = adm("odd password 2", "user", "passwd", odd)
	check("passwd "+odd, code, stdout, stderr, exitOK, "Changed the password of "+odd+".\n", "")
	if err := auth(odd, "odd password 2"); err != nil {
		t.Errorf("the new password of %s is refused: %v", odd, err)
	}
	code, stdout, stderr = adm("long enough", "user", "passwd", "dave@alpha.example")
	check("passwd of an unknown user", code, stdout, stderr, exitUser, "", "imx admin user passwd: no such user: dave@alpha.example\n")
	code, stdout, stderr = adm("short", "user", "passwd", "alice@alpha.example")
	check("passwd with a short password", code, stdout, stderr, exitFailure, "", "password shorter than 8 characters")
	if err := auth("alice@alpha.example", "battery staple"); err != nil {
		t.Errorf("a refused passwd changed the password: %v", err)
	}

	// del
	code, stdout, stderr = adm("", "user", "del", "bob@alpha.example")
	check("del", code, stdout, stderr, exitOK, "Deleted bob@alpha.example.\n", "")
	if err := auth("bob@alpha.example", "bob's password"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bob after del: %v, want ErrNotFound", err)
	}
	code, stdout, stderr = adm("", "user", "del", "bob@alpha.example")
	check("del an unknown user", code, stdout, stderr, exitUser, "", "imx admin user del: no such user: bob@alpha.example\n")
	code, stdout, stderr = adm("", "user", "del", odd)
	check("del "+odd, code, stdout, stderr, exitOK, "Deleted "+odd+".\n", "")
	if got := a.users(t); len(got) != 1 || got[0] != "alice@alpha.example" {
		t.Errorf("users at the end: %q", got)
	}

	// federation
	code, stdout, stderr = adm("", "federation")
	check("federation without connections", code, stdout, stderr, exitOK, "No server connections.\n", "")
	a.mu.Lock()
	a.conns = []s2s.ConnInfo{
		{ID: 1, Outbound: true, Remote: "beta.example", Endpoint: "imx.beta.example:7400", RemoteAddr: "192.0.2.7:7400",
			Pairs: []string{"alpha.example beta.example"}},
		{ID: 12, RemoteAddr: "198.51.100.3:53122", Pairs: []string{"alpha.example delta.example", "alpha.example gamma.example"}},
		{ID: 13, RemoteAddr: "[2001:db8::1]:40000", Draining: true},
	}
	a.mu.Unlock()
	code, stdout, stderr = adm("", "federation")
	check("federation", code, stdout, stderr, exitOK, ""+
		"ID  DIRECTION  REMOTE        ENDPOINT               PEER ADDRESS         PAIRS\n"+
		"1   outbound   beta.example  imx.beta.example:7400  192.0.2.7:7400       alpha.example<->beta.example\n"+
		"12  inbound    -             -                      198.51.100.3:53122   alpha.example<->delta.example, alpha.example<->gamma.example\n"+
		"13  inbound    -             -                      [2001:db8::1]:40000  - (draining)\n", "")

	// The admin URL from IMX_ADMIN, and -admin before it.
	code, stdout, stderr = c.runEnv([]string{"IMX_ADMIN=" + a.url}, "admin", "user", "list")
	check("list with IMX_ADMIN", code, stdout, stderr, exitOK, "alice@alpha.example\n", "")
	code, stdout, stderr = c.runEnv([]string{"IMX_ADMIN=" + strings.TrimPrefix(a.url, "http://")}, "admin", "user", "list")
	check("list with IMX_ADMIN=HOST:PORT", code, stdout, stderr, exitOK, "alice@alpha.example\n", "")
	code, stdout, stderr = c.runEnv([]string{"IMX_ADMIN=http://[::1"}, "admin", "-admin", a.url, "user", "list")
	check("list with -admin and a bad IMX_ADMIN", code, stdout, stderr, exitOK, "alice@alpha.example\n", "")
	code, stdout, stderr = c.runEnv([]string{"IMX_ADMIN=ftp://127.0.0.1"}, "admin", "user", "list")
	check("list with a bad IMX_ADMIN", code, stdout, stderr, exitUsage, "", "invalid admin URL \"ftp://127.0.0.1\" (IMX_ADMIN)")
}

// TestCLIAdminUnreachable: an admin listener that does not answer, or a
// server that is not one, fails with exit code 1 (not 5, even on a 404).
func TestCLIAdminUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &cli{t: t, bin: imxBinary(t), home: t.TempDir(), ctx: ctx}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	code, stdout, stderr := c.run("long enough", "admin", "-admin", closed.URL, "user", "add", "alice@alpha.example")
	if code != exitFailure || stdout != "" || !strings.Contains(stderr, "cannot reach imxd's admin listener at "+closed.URL) {
		t.Errorf("add with the admin listener down: exit %d, %q, %q", code, stdout, stderr)
	}
	code, _, stderr = c.run("", "admin", "-admin", closed.URL, "federation")
	if code != exitFailure || !strings.Contains(stderr, "cannot reach") {
		t.Errorf("federation with the admin listener down: exit %d, %q", code, stderr)
	}

	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	code, _, stderr = c.run("", "admin", "-admin", other.URL, "user", "del", "alice@alpha.example")
	if code != exitFailure || !strings.Contains(stderr, "unexpected reply from "+other.URL+": 404 Not Found: 404 page not found") {
		t.Errorf("del at a server that is not imxd's admin listener: exit %d, %q", code, stderr)
	}
	code, _, stderr = c.run("", "admin", "-admin", other.URL, "user", "list")
	if code != exitFailure || !strings.Contains(stderr, "admin listener?") {
		t.Errorf("list at a server that is not imxd's admin listener: exit %d, %q", code, stderr)
	}
}

// TestAdminURL checks where the admin URL comes from.
func TestAdminURL(t *testing.T) {
	defer func() { adminURLFlag = "" }()
	for _, tc := range []struct {
		flag, env, want, err string
	}{
		{"", "", defaultAdminURL, ""},
		{"", "http://127.0.0.1:9000/", "http://127.0.0.1:9000", ""},
		{"", "[::1]:9000", "http://[::1]:9000", ""},
		{"https://admin.example/imx/", "http://127.0.0.1:9000", "https://admin.example/imx", ""},
		{"ftp://127.0.0.1", "", "", "(-admin): want http://HOST:PORT"},
		{"", "http://127.0.0.1:9000/?x=1", "", "(IMX_ADMIN): want http://HOST:PORT"},
		{"http://user:pw@127.0.0.1", "", "", "want http://HOST:PORT"},
		{"http://", "", "", "want http://HOST:PORT"},
	} {
		adminURLFlag = tc.flag
		e := &env{getenv: func(k string) string {
			if k == "IMX_ADMIN" {
				return tc.env
			}
			return ""
		}}
		got, err := adminBase(e)
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("-admin %q, IMX_ADMIN %q: %q, %v; want %q, %q", tc.flag, tc.env, got, err, tc.want, tc.err)
		}
	}
}

// TestAdminPassword checks the password prompt: asked twice, and refused
// when the two differ or it is empty.
func TestAdminPassword(t *testing.T) {
	u := addr.MustParse("alice@alpha.example")
	for _, tc := range []struct {
		env     string
		typed   []string
		want    string
		err     string
		prompts int
	}{
		{"from env", nil, "from env", "", 0},
		{"", []string{"typed pw", "typed pw"}, "typed pw", "", 2},
		{"", []string{"typed pw", "typo pw"}, "", "the passwords do not match", 2},
		{"", []string{""}, "", "no password given", 1},
	} {
		var prompts []string
		e := &env{
			getenv: func(k string) string {
				if k == "IMX_PASSWORD" {
					return tc.env
				}
				return ""
			},
			readPassword: func(prompt string, _ io.Writer) (string, error) {
				prompts = append(prompts, prompt)
				if len(prompts) > len(tc.typed) {
					return "", errors.New("read too often")
				}
				return tc.typed[len(prompts)-1], nil
			},
		}
		got, err := newPassword(context.Background(), e, u)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err || len(prompts) != tc.prompts {
			t.Errorf("IMX_PASSWORD %q, typed %q: %q, %v after prompts %q", tc.env, tc.typed, got, err, prompts)
		}
		if len(prompts) > 0 && prompts[0] != "New password for alice@alpha.example: " {
			t.Errorf("first prompt %q", prompts[0])
		}
	}
}
