// Command imx is the terminal client of imx: log in to an imx server once,
// then send messages, listen for them, or chat, from the command line.
//
//	imx login http://127.0.0.1:7480 alice@alpha.example
//	imx send bob@beta.example Hello Bob!
//	imx listen
//	imx chat bob@beta.example
//	imx logout
//	imx admin user add bob@alpha.example
//
// The session (server URL, user, session token) is kept in
// $XDG_CONFIG_HOME/imx/session.json (by default ~/.config/imx/session.json),
// mode 0600. Exit codes and details: docs/cli.md, or imx help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// Exit codes (docs/cli.md).
const (
	exitOK          = 0
	exitFailure     = 1 // the command failed: connection, server or local error
	exitUsage       = 2 // wrong command line
	exitAuth        = 3 // not logged in, or the login or saved session was refused
	exitUndelivered = 4 // send: the message was neither delivered nor stored
	exitUser        = 5 // admin: the user exists (add) or does not exist (del, passwd)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{
		stdin:        os.Stdin,
		stdout:       os.Stdout,
		stderr:       os.Stderr,
		getenv:       os.Getenv,
		readPassword: readPassword,
	})
	stop()
	os.Exit(code)
}

// env is the program's outside world, so that tests can run it in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	readPassword   func(prompt string, stderr io.Writer) (string, error)
}

// readPassword reads a password from the terminal without echo.
func readPassword(prompt string, stderr io.Writer) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("no terminal to read the password from; set IMX_PASSWORD")
	}
	fmt.Fprint(stderr, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// command is one imx command.
type command struct {
	name, args, short, long string
	run                     func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int
	flags                   func(fs *flag.FlagSet)
}

var commands []*command

func init() {
	commands = []*command{cmdLogin, cmdSend, cmdListen, cmdChat, cmdContacts, cmdAdd, cmdRemove, cmdApprove, cmdDeny, cmdBlock, cmdUnblock, cmdPresence, cmdSet, cmdWhois, cmdLogout, cmdAdmin, cmdHelp}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is a wrong command line: exit 2 with the command's usage.
type usageError string

func (e usageError) Error() string { return string(e) }

func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		printUsage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(e.stdout)
		return exitOK
	}
	c := findCommand(args[0])
	if c == nil {
		fmt.Fprintf(e.stderr, "imx: unknown command %q\n\n", args[0])
		printUsage(e.stderr)
		return exitUsage
	}
	fs := flag.NewFlagSet("imx "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { printCommandUsage(e.stderr, c, fs) }
	if c.flags != nil {
		c.flags(fs)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	return c.run(ctx, e, fs, fs.Args())
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `imx is the terminal client of imx, the IMX instant messaging server.

Usage:
  imx COMMAND [ARGUMENTS]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, `
Run "imx help COMMAND" for the details of a command. Log in once with
"imx login"; the other commands use the saved session, except admin, which
needs no login: it talks to imxd's admin listener. Exit codes: 0 ok,
1 failure, 2 usage, 3 not logged in or login refused, 4 message not
delivered (send), 5 the user exists or does not exist (admin).
`)
}

func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: imx %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
}

var cmdHelp = &command{
	name:  "help",
	args:  "[COMMAND]",
	short: "show this help, or a command's",
	long:  `Help prints the list of commands, or the usage of one command.`,
	run: func(ctx context.Context, e *env, _ *flag.FlagSet, args []string) int {
		if len(args) == 0 {
			printUsage(e.stdout)
			return exitOK
		}
		c := findCommand(args[0])
		if c == nil {
			fmt.Fprintf(e.stderr, "imx help: unknown command %q\n", args[0])
			return exitUsage
		}
		fs := flag.NewFlagSet("imx "+c.name, flag.ContinueOnError)
		fs.SetOutput(e.stdout)
		if c.flags != nil {
			c.flags(fs)
		}
		printCommandUsage(e.stdout, c, fs)
		return exitOK
	},
}

// fail prints an error on stderr and returns its exit code.
func fail(e *env, cmd string, code int, err error) int {
	fmt.Fprintf(e.stderr, "imx %s: %v\n", cmd, err)
	return code
}
