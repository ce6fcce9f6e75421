package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/wire"
)

const (
	software       = "imx-cli/0.1"
	connectTimeout = 30 * time.Second
)

var cmdLogin = &command{
	name:  "login",
	args:  "SERVER-URL USER",
	short: "log in and save the session",
	long: `Login logs in to the imx server at SERVER-URL (http://, https://, ws:// or
wss://; the path /imx is added when the URL has none) as USER, an address
such as alice@example.com. The password is read from the terminal without
echo, or from the environment variable IMX_PASSWORD (for scripts). The server
URL, the user and the session token the server returns are saved in
$XDG_CONFIG_HOME/imx/session.json (default ~/.config/imx/session.json, mode
0600), so that the other commands need no password until the token expires.
The password itself is never saved.`,
	run: runLogin,
}

func runLogin(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 2 {
		fs.Usage()
		return exitUsage
	}
	server, user := args[0], args[1]
	if _, err := addr.Parse(user); err != nil {
		return fail(e, "login", exitUsage, err)
	}
	password := e.getenv("IMX_PASSWORD")
	if password == "" {
		var err error
		password, err = e.readPassword("Password for "+user+": ", e.stderr)
		if err != nil {
			return fail(e, "login", exitFailure, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	c, err := client.Dial(ctx, server, &client.Options{Software: software})
	if err != nil {
		return fail(e, "login", exitFailure, err)
	}
	defer c.Close()
	s, err := c.Login(ctx, user, password, true)
	if errors.Is(err, wire.StatusAuthFailed) {
		return fail(e, "login", exitAuth, errors.New("login refused: wrong user or password"))
	}
	if err != nil {
		return fail(e, "login", exitFailure, err)
	}
	if len(s.Token) == 0 {
		return fail(e, "login", exitFailure, errors.New("the server returned no session token"))
	}
	expires := time.Now().Add(s.Expires).Truncate(time.Second)
	path, err := saveSession(e, savedSession{Server: server, User: s.User, Token: s.Token, Expires: expires})
	if err != nil {
		return fail(e, "login", exitFailure, err)
	}
	fmt.Fprintf(e.stdout, "Logged in as %s. The session is saved in %s, valid until %s.\n",
		s.User, path, expires.Local().Format("2006-01-02 15:04"))
	return exitOK
}

var cmdLogout = &command{
	name:  "logout",
	args:  "",
	short: "forget the saved session",
	long: `Logout deletes the saved session. The session token stays valid on the server
until it expires (the client API has no record to revoke it yet).`,
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		if len(args) != 0 {
			fs.Usage()
			return exitUsage
		}
		s, loadErr := loadSession(e)
		had, err := removeSession(e)
		if err != nil {
			return fail(e, "logout", exitFailure, err)
		}
		switch {
		case !had:
			fmt.Fprintln(e.stdout, "Not logged in.")
		case loadErr == nil:
			fmt.Fprintf(e.stdout, "Logged out: the session of %s is forgotten.\n", s.User)
		default:
			fmt.Fprintln(e.stdout, "Logged out.")
		}
		return exitOK
	},
}

var (
	sendHTML    bool
	sendTimeout time.Duration
)

var cmdSend = &command{
	name:  "send",
	args:  "[-html] [-timeout DURATION] ADDRESS TEXT...",
	short: "send a message and print its result",
	long: `Send sends TEXT (the remaining arguments, joined by spaces; "-" reads it from
standard input) to ADDRESS and waits for the final result, which it prints:
delivered (to how many sessions), stored for an offline user, or why it was
not delivered. The exit code is 0 when the message was delivered or stored,
4 when it was not, 3 when the saved session is refused, 1 on other errors.`,
	flags: func(fs *flag.FlagSet) {
		fs.BoolVar(&sendHTML, "html", false, "send TEXT as text/html-lite instead of text/plain")
		fs.DurationVar(&sendTimeout, "timeout", 2*time.Minute, "how long to wait for the result")
	},
	run: runSend,
}

func runSend(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) < 2 {
		fs.Usage()
		return exitUsage
	}
	to, err := addr.Parse(args[0])
	if err != nil {
		return fail(e, "send", exitUsage, err)
	}
	text := strings.Join(args[1:], " ")
	if text == "-" {
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return fail(e, "send", exitFailure, fmt.Errorf("read standard input: %w", err))
		}
		text = strings.TrimRight(string(b), "\r\n")
	}
	if text == "" {
		return fail(e, "send", exitUsage, errors.New("empty message"))
	}
	contentType := "text/plain"
	if sendHTML {
		contentType = "text/html-lite"
	}
	c, _, code, err := connect(ctx, e)
	if err != nil {
		return fail(e, "send", code, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	res, err := c.Send(ctx, to.String(), contentType, text)
	if err != nil {
		return fail(e, "send", exitFailure, err)
	}
	fmt.Fprintln(e.stdout, describe(to.String(), res))
	if !res.Code.Success() {
		return exitUndelivered
	}
	return exitOK
}

var cmdListen = &command{
	name:  "listen",
	args:  "",
	short: "print incoming messages until interrupted",
	long: `Listen prints each incoming message as it arrives, one line each (a message of
several lines continues on indented lines), until interrupted (Ctrl-C). The
exit code is 0 when interrupted, 1 when the connection ends.`,
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		if len(args) != 0 {
			fs.Usage()
			return exitUsage
		}
		c, s, code, err := connect(ctx, e)
		if err != nil {
			return fail(e, "listen", code, err)
		}
		defer c.Close()
		fmt.Fprintf(e.stderr, "Listening as %s; Ctrl-C stops.\n", s.User)
		for {
			select {
			case m, ok := <-c.Messages():
				if !ok {
					return fail(e, "listen", exitFailure, endReason(c))
				}
				fmt.Fprintln(e.stdout, formatIncoming(m))
			case ev := <-c.Events():
				fmt.Fprintln(e.stdout, formatEvent(ev))
			case <-ctx.Done():
				return exitOK
			}
		}
	},
}

// formatEvent renders a presence event for listen.
func formatEvent(rec wire.Record) string {
	now := time.Now().Format("15:04:05")
	switch r := rec.(type) {
	case *wire.Notify:
		s := now + " " + withAlias(r.Presentity, r.Attrs) + " is " + r.Presence.String()
		if r.Status != "" {
			s += ": " + sanitize(r.Status)
		}
		return s
	case *wire.Request:
		s := now + " " + sanitize(r.Watcher)
		if r.Alias != "" {
			s += " (" + sanitize(r.Alias) + ")"
		}
		return s + " asks to see your presence: imx approve " + sanitize(r.Watcher) + " or imx deny " + sanitize(r.Watcher)
	}
	return now + " " + rec.Type().String()
}

var cmdChat = &command{
	name:  "chat",
	args:  "ADDRESS",
	short: "chat with one address, line by line",
	long: `Chat sends each line typed on standard input to ADDRESS, printing the result
of each, and prints the messages that arrive meanwhile (those from other
addresses are marked). End of input (Ctrl-D) or Ctrl-C ends the chat with
exit code 0; the end of the connection with 1.`,
	run: runChat,
}

func runChat(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 1 {
		fs.Usage()
		return exitUsage
	}
	to, err := addr.Parse(args[0])
	if err != nil {
		return fail(e, "chat", exitUsage, err)
	}
	c, s, code, err := connect(ctx, e)
	if err != nil {
		return fail(e, "chat", code, err)
	}
	var out sync.Mutex
	say := func(w io.Writer, format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(w, format, a...)
	}
	say(e.stderr, "Chatting with %s as %s. Type a line and press Enter; Ctrl-D ends.\n", to, s.User)

	// Incoming messages are printed as they come, while a line waits for
	// its result.
	var wg sync.WaitGroup
	ended := make(chan struct{})
	wg.Go(func() {
		defer close(ended)
		for m := range c.Messages() {
			if m.From == to.String() {
				say(e.stdout, "%s\n", formatIncoming(m))
			} else {
				say(e.stdout, "(not from %s) %s\n", to, formatIncoming(m))
			}
		}
	})
	defer func() {
		_ = c.Close()
		wg.Wait()
	}()

	// Standard input cannot be interrupted: its reader stops at end of
	// input, or with the process.
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(e.stdin)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ended:
				return
			}
		}
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return exitOK
			}
			line = strings.TrimRight(line, "\r")
			if strings.TrimSpace(line) == "" {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			res, err := c.Send(sctx, to.String(), "text/plain", line)
			cancel()
			if err != nil {
				say(e.stderr, "imx chat: %v\n", err)
				if errors.Is(err, client.ErrClosed) {
					return exitFailure
				}
				continue
			}
			say(e.stdout, "  (%s)\n", describe(to.String(), res))
		case <-ended:
			say(e.stderr, "imx chat: %v\n", endReason(c))
			return exitFailure
		case <-ctx.Done():
			return exitOK
		}
	}
}

// endReason says why the connection ended.
func endReason(c *client.Client) error {
	if err := c.Err(); err != nil {
		return fmt.Errorf("connection ended: %w", err)
	}
	return errors.New("connection ended: the server closed it")
}

// connect dials the saved session's server and resumes the session. On
// failure it returns the exit code.
func connect(ctx context.Context, e *env) (*client.Client, savedSession, int, error) {
	s, err := loadSession(e)
	if errors.Is(err, errNotLoggedIn) {
		return nil, s, exitAuth, err
	}
	if err != nil {
		return nil, s, exitFailure, err
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	c, err := client.Dial(ctx, s.Server, &client.Options{Software: software})
	if err != nil {
		return nil, s, exitFailure, err
	}
	if _, err := c.Resume(ctx, s.User, s.Token); err != nil {
		_ = c.Close()
		if errors.Is(err, wire.StatusAuthFailed) {
			return nil, s, exitAuth, fmt.Errorf("the saved session of %s is no longer valid (expired or revoked): run imx login %s %s", s.User, s.Server, s.User)
		}
		return nil, s, exitFailure, err
	}
	return c, s, exitOK, nil
}

// describe says what a message's result means.
func describe(to string, r *wire.Result) string {
	var s string
	switch r.Code {
	case wire.StatusDelivered:
		if r.Count == 1 {
			s = "delivered to 1 session of " + to
		} else {
			s = fmt.Sprintf("delivered to %d sessions of %s", r.Count, to)
		}
	case wire.StatusStored:
		s = "stored: " + to + " is offline and gets it at the next login"
	case wire.StatusOffline:
		s = "not delivered: " + to + " is offline"
	case wire.StatusUnknownUser:
		s = "not delivered: no such user " + to
	default:
		s = "not delivered: " + r.Code.String()
	}
	if r.Text != "" && !r.Code.Success() {
		s += " (" + sanitize(r.Text) + ")"
	}
	return s
}

// formatIncoming is a message as listen and chat print it: time, sender
// and text, further lines indented.
func formatIncoming(m client.Incoming) string {
	t := m.Date
	if t.IsZero() {
		t = time.Now()
	}
	body := strings.TrimRight(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n")
	body = strings.ReplaceAll(sanitize(body), "\n", "\n    ")
	return fmt.Sprintf("%s %s: %s", t.Local().Format("15:04:05"), withAlias(m.From, m.Attrs), body)
}

// sanitize replaces the control characters of s (but newlines and tabs)
// with U+FFFD, so that a message cannot drive the terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return '\uFFFD'
		}
		return r
	}, s)
}
