package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imxproject/imx/addr"
)

const (
	// defaultAdminURL is imxd's admin listener when neither -admin nor
	// IMX_ADMIN says otherwise (config: admin = "127.0.0.1:7481").
	defaultAdminURL = "http://127.0.0.1:7481"
	// adminTimeout bounds each request to the admin API.
	adminTimeout = 30 * time.Second
	// maxAdminReply bounds the body of a successful reply (a user list);
	// error replies are read up to maxAdminError.
	maxAdminReply = 64 << 20
	maxAdminError = 64 << 10
)

var adminURLFlag string

var cmdAdmin = &command{
	name:  "admin",
	args:  "[-admin URL] user add|del|passwd ADDRESS | user list [DOMAIN] | federation",
	short: "manage users, show federation (imxd's admin API)",
	long: `Admin administers a running imxd through its admin listener (HTTP, loopback
only, no login: whoever can reach it administers the server):

  imx admin user add ADDRESS     create the user ADDRESS
  imx admin user del ADDRESS     delete the user ADDRESS
  imx admin user passwd ADDRESS  set the password of ADDRESS
  imx admin user list [DOMAIN]   list the users of DOMAIN, or of every domain
                                 served
  imx admin federation           list the server connections and their
                                 authenticated domain pairs

For add and passwd the new password is read from the terminal without echo,
twice, or from the environment variable IMX_PASSWORD (for scripts). The admin
listener is the -admin flag, else the environment variable IMX_ADMIN, else
` + defaultAdminURL + ` (a HOST:PORT without scheme means http://HOST:PORT).

The exit code is 0 on success, 5 when the user already exists (add) or does
not exist (del, passwd), 2 for a wrong command line, and 1 on other errors:
admin listener unreachable, or the request refused (domain not served, password
too short, ...); the server's message is printed.`,
	flags: func(fs *flag.FlagSet) {
		fs.StringVar(&adminURLFlag, "admin", "", "the `URL` of imxd's admin listener (default $IMX_ADMIN, else "+defaultAdminURL+")")
	},
	run: runAdmin,
}

// adminCommand is one subcommand of imx admin.
type adminCommand struct {
	name, args, help string
	minArgs, maxArgs int
	run              func(ctx context.Context, e *env, c *adminClient, args []string) int
}

var adminCommands = []*adminCommand{
	{name: "user add", args: "ADDRESS", help: "Creates the user ADDRESS. The password is read from the terminal without echo,\ntwice, or from IMX_PASSWORD.", minArgs: 1, maxArgs: 1, run: runUserAdd},
	{name: "user del", args: "ADDRESS", help: "Deletes the user ADDRESS.", minArgs: 1, maxArgs: 1, run: runUserDel},
	{name: "user passwd", args: "ADDRESS", help: "Sets the password of ADDRESS. The new password is read from the terminal\nwithout echo, twice, or from IMX_PASSWORD.", minArgs: 1, maxArgs: 1, run: runUserPasswd},
	{name: "user list", args: "[DOMAIN]", help: "Prints the users of DOMAIN, or of every domain served, one address a line.", minArgs: 0, maxArgs: 1, run: runUserList},
	{name: "federation", args: "", help: "Prints the server connections, one a line: id, direction, remote domain\n(outbound), endpoint dialled (outbound), peer address, authenticated pairs.", minArgs: 0, maxArgs: 0, run: runFederation},
}

func runAdmin(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) == 0 {
		fs.Usage()
		return exitUsage
	}
	name, rest := args[0], args[1:]
	if args[0] == "user" {
		if len(args) < 2 {
			fs.Usage()
			return exitUsage
		}
		name, rest = "user "+args[1], args[2:]
	}
	var ac *adminCommand
	for _, c := range adminCommands {
		if c.name == name {
			ac = c
		}
	}
	if ac == nil {
		fmt.Fprintf(e.stderr, "imx admin: unknown command %q\n\n", name)
		fs.Usage()
		return exitUsage
	}

	sub := flag.NewFlagSet("imx admin "+ac.name, flag.ContinueOnError)
	sub.SetOutput(e.stderr)
	// -admin may also follow the subcommand.
	sub.StringVar(&adminURLFlag, "admin", adminURLFlag, "the `URL` of imxd's admin listener")
	sub.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s\n\n%s\n", strings.TrimSpace("imx admin [-admin URL] "+ac.name+" "+ac.args), ac.help)
	}
	if err := sub.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if n := sub.NArg(); n < ac.minArgs || n > ac.maxArgs {
		sub.Usage()
		return exitUsage
	}
	base, err := adminBase(e)
	if err != nil {
		return fail(e, "admin", exitUsage, err)
	}
	c := newAdminClient(base)
	defer c.close()
	return ac.run(ctx, e, c, sub.Args())
}

// adminBase returns the admin listener's URL: -admin, else IMX_ADMIN, else
// the default. It has no trailing slash.
func adminBase(e *env) (string, error) {
	s, from := adminURLFlag, "-admin"
	if s == "" {
		s, from = e.getenv("IMX_ADMIN"), "IMX_ADMIN"
	}
	if s == "" {
		s, from = defaultAdminURL, "default"
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("invalid admin URL (%s): %v", from, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid admin URL %q (%s): want http://HOST:PORT", s, from)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// adminClient calls imxd's admin API.
type adminClient struct {
	base string
	hc   *http.Client
}

func newAdminClient(base string) *adminClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The admin listener is on loopback, and passwords travel to it: never
	// through a proxy.
	tr.Proxy = nil
	return &adminClient{base: base, hc: &http.Client{
		Transport: tr,
		// A redirect would resend a password elsewhere; the admin API
		// never redirects.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *adminClient) close() { c.hc.CloseIdleConnections() }

// apiError is a reply other than the one expected.
type apiError struct {
	url    string
	status int
	msg    string // the admin API's {"error": "…"}; "" when the reply is not one
	text   string // otherwise, the start of the reply's body
}

func (e *apiError) Error() string {
	switch {
	case e.msg != "" && e.status >= 500:
		return e.msg + " (server error: see imxd's log)"
	case e.msg != "":
		return e.msg
	}
	s := fmt.Sprintf("unexpected reply from %s: %d %s", e.url, e.status, http.StatusText(e.status))
	if e.text != "" {
		s += ": " + e.text
	}
	return s + " (is it imxd's admin listener?)"
}

// exitCode is the exit code of an admin API call's error: exitUser when the
// API says the user does not exist (404) or exists already (409).
func exitCode(err error) int {
	var ae *apiError
	if errors.As(err, &ae) && ae.msg != "" && (ae.status == http.StatusNotFound || ae.status == http.StatusConflict) {
		return exitUser
	}
	return exitFailure
}

// call sends a request to the admin API at path (escaped) with body as
// JSON, expects the status want and decodes the reply into out.
func (c *adminClient) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	rctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	u := c.base + path
	req, err := http.NewRequestWithContext(rctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", software)
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, rctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxAdminError))
		ae := &apiError{url: c.base, status: resp.StatusCode}
		var reply struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &reply) == nil && reply.Error != "" {
			ae.msg = sanitize(reply.Error)
		} else {
			text, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
			if len(text) > 200 {
				text = text[:200] + "..."
			}
			ae.text = sanitize(text)
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAdminReply)).Decode(out); err != nil {
		if rctx.Err() != nil {
			return c.transportError(ctx, rctx, err)
		}
		return fmt.Errorf("unexpected reply from %s: %v (is it imxd's admin listener?)", c.base, err)
	}
	return nil
}

// transportError says why a request got no (complete) reply.
func (c *adminClient) transportError(parent, rctx context.Context, err error) error {
	switch {
	case parent.Err() != nil:
		return errors.New("interrupted")
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("no reply from the admin listener at %s within %v", c.base, adminTimeout)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return fmt.Errorf("cannot reach imxd's admin listener at %s: %v (is imxd running? -admin or IMX_ADMIN sets the URL)", c.base, err)
}

// userPath is the API path of a user.
func userPath(a addr.Address) string { return "/api/v1/users/" + url.PathEscape(a.String()) }

// parseUser parses the ADDRESS argument.
func parseUser(e *env, cmd, s string) (addr.Address, int) {
	a, err := addr.Parse(s)
	if err != nil {
		return a, fail(e, cmd, exitUsage, err)
	}
	return a, exitOK
}

// newPassword reads a new password: IMX_PASSWORD, else twice from the
// terminal.
func newPassword(ctx context.Context, e *env, user addr.Address) (string, error) {
	if p := e.getenv("IMX_PASSWORD"); p != "" {
		return p, nil
	}
	// The terminal is read to the end of the line even after Ctrl-C, which
	// only cancels ctx.
	read := func(prompt string) (string, error) {
		p, err := e.readPassword(prompt, e.stderr)
		if err == nil && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		return p, err
	}
	p, err := read("New password for " + user.String() + ": ")
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errors.New("no password given")
	}
	again, err := read("Repeat the password: ")
	if err != nil {
		return "", err
	}
	if again != p {
		return "", errors.New("the passwords do not match")
	}
	return p, nil
}

func runUserAdd(ctx context.Context, e *env, c *adminClient, args []string) int {
	const cmd = "admin user add"
	u, code := parseUser(e, cmd, args[0])
	if code != exitOK {
		return code
	}
	password, err := newPassword(ctx, e, u)
	if err != nil {
		return fail(e, cmd, exitFailure, err)
	}
	var reply struct {
		Address string `json:"address"`
	}
	body := map[string]string{"address": u.String(), "password": password}
	if err := c.call(ctx, http.MethodPost, "/api/v1/users", body, http.StatusCreated, &reply); err != nil {
		return fail(e, cmd, exitCode(err), err)
	}
	if reply.Address == "" {
		reply.Address = u.String()
	}
	fmt.Fprintf(e.stdout, "Created %s.\n", sanitize(reply.Address))
	return exitOK
}

func runUserDel(ctx context.Context, e *env, c *adminClient, args []string) int {
	const cmd = "admin user del"
	u, code := parseUser(e, cmd, args[0])
	if code != exitOK {
		return code
	}
	if err := c.call(ctx, http.MethodDelete, userPath(u), nil, http.StatusNoContent, nil); err != nil {
		return fail(e, cmd, exitCode(err), err)
	}
	fmt.Fprintf(e.stdout, "Deleted %s.\n", u)
	return exitOK
}

func runUserPasswd(ctx context.Context, e *env, c *adminClient, args []string) int {
	const cmd = "admin user passwd"
	u, code := parseUser(e, cmd, args[0])
	if code != exitOK {
		return code
	}
	password, err := newPassword(ctx, e, u)
	if err != nil {
		return fail(e, cmd, exitFailure, err)
	}
	body := map[string]string{"password": password}
	if err := c.call(ctx, http.MethodPut, userPath(u)+"/password", body, http.StatusNoContent, nil); err != nil {
		return fail(e, cmd, exitCode(err), err)
	}
	fmt.Fprintf(e.stdout, "Changed the password of %s.\n", u)
	return exitOK
}

func runUserList(ctx context.Context, e *env, c *adminClient, args []string) int {
	const cmd = "admin user list"
	path := "/api/v1/users"
	if len(args) == 1 {
		// The domain as addresses have it: lower case, A-labels.
		a, err := addr.Parse("x@" + args[0])
		if err != nil {
			return fail(e, cmd, exitUsage, fmt.Errorf("invalid domain %q", args[0]))
		}
		path += "?" + url.Values{"domain": {a.Domain()}}.Encode()
	}
	var reply struct {
		Users []string `json:"users"`
	}
	if err := c.call(ctx, http.MethodGet, path, nil, http.StatusOK, &reply); err != nil {
		return fail(e, cmd, exitCode(err), err)
	}
	if len(reply.Users) == 0 {
		fmt.Fprintln(e.stderr, "No users.")
		return exitOK
	}
	var b strings.Builder
	for _, u := range reply.Users {
		b.WriteString(sanitize(u))
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(e.stdout, b.String())
	return exitOK
}

// fedConn is a server connection as GET /api/v1/federation describes it
// (s2s.ConnInfo).
type fedConn struct {
	ID         uint64   `json:"ID"`
	Outbound   bool     `json:"Outbound"`
	Remote     string   `json:"Remote"`
	Endpoint   string   `json:"Endpoint"`
	RemoteAddr string   `json:"RemoteAddr"`
	Pairs      []string `json:"Pairs"` // "local remote"
	Draining   bool     `json:"Draining"`
}

func runFederation(ctx context.Context, e *env, c *adminClient, _ []string) int {
	const cmd = "admin federation"
	var conns []fedConn
	if err := c.call(ctx, http.MethodGet, "/api/v1/federation", nil, http.StatusOK, &conns); err != nil {
		return fail(e, cmd, exitCode(err), err)
	}
	if len(conns) == 0 {
		fmt.Fprintln(e.stdout, "No server connections.")
		return exitOK
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return sanitize(s)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDIRECTION\tREMOTE\tENDPOINT\tPEER ADDRESS\tPAIRS")
	for _, fc := range conns {
		dir := "inbound"
		if fc.Outbound {
			dir = "outbound"
		}
		pairs := make([]string, len(fc.Pairs))
		for i, p := range fc.Pairs {
			local, remote, _ := strings.Cut(p, " ")
			pairs[i] = local + "<->" + remote
		}
		ps := dash(strings.Join(pairs, ", "))
		if fc.Draining {
			ps += " (draining)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", strconv.FormatUint(fc.ID, 10), dir, dash(fc.Remote), dash(fc.Endpoint), dash(fc.RemoteAddr), ps)
	}
	_ = tw.Flush()
	return exitOK
}
