package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/wire"
)

// The contact and presence commands (docs/cli.md, "Contacts and presence").

const presenceTimeout = 30 * time.Second

var cmdContacts = &command{
	name:  "contacts",
	short: "list your contacts",
	long: `Contacts prints your contact list, one contact a line: the address, the
state of your request to see their presence (asked, approved or denied) and
the alias you gave.`,
	run: runContacts,
}

var cmdAdd = &command{
	name:  "add",
	args:  "ADDRESS [ALIAS]",
	short: "add a contact and ask to see their presence",
	long: `Add adds ADDRESS, on any IMX domain, to your contacts with an optional
ALIAS, and asks them for permission to see their presence. They approve or
deny it, even later; "imx contacts" shows where it stands.`,
	run: runAdd,
}

var cmdRemove = &command{
	name:  "remove",
	args:  "ADDRESS",
	short: "remove a contact",
	long:  `Remove removes ADDRESS from your contacts and stops watching their presence.`,
	run:   runRemove,
}

var cmdApprove = &command{
	name:  "approve",
	args:  "ADDRESS",
	short: "let ADDRESS see your presence",
	long:  `Approve answers yes to ADDRESS's request to see your presence.`,
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		return runApprove(ctx, e, fs, args, true)
	},
}

var cmdDeny = &command{
	name:  "deny",
	args:  "ADDRESS",
	short: "refuse ADDRESS's request to see your presence",
	long:  `Deny answers no to ADDRESS's request to see your presence.`,
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		return runApprove(ctx, e, fs, args, false)
	},
}

var cmdBlock = &command{
	name:  "block",
	args:  "ADDRESS|@DOMAIN",
	short: "block an address or a whole domain",
	long: `Block blocks an address, or every address of a domain given as @DOMAIN:
they see neither your presence nor your attributes, cannot ask to watch you,
and their messages to you are refused. "imx unblock" undoes it.`,
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		return runBlock(ctx, e, fs, args, true)
	},
}

var cmdUnblock = &command{
	name:  "unblock",
	args:  "ADDRESS|@DOMAIN",
	short: "undo a block",
	long:  `Unblock removes a block made with "imx block".`,
	run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
		return runBlock(ctx, e, fs, args, false)
	},
}

var cmdPresence = &command{
	name:  "presence",
	args:  "online|away|busy|offline [STATUS…]",
	short: "set your presence and status text",
	long: `Presence sets your presence, seen by the watchers you approved, and an
optional status text.`,
	run: runPresence,
}

// withClient connects with the saved session and runs fn with a bounded
// context.
func withClient(ctx context.Context, e *env, name string, fn func(ctx context.Context, c *client.Client) int) int {
	c, _, code, err := connect(ctx, e)
	if err != nil {
		return fail(e, name, code, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	return fn(ctx, c)
}

// answer prints a request's result and returns the exit code.
func answer(e *env, name string, res *wire.Result, err error, ok string) int {
	if err != nil {
		return fail(e, name, exitFailure, err)
	}
	if !res.Code.Success() {
		msg := res.Code.String()
		if res.Text != "" {
			msg += ": " + res.Text
		}
		return fail(e, name, exitFailure, fmt.Errorf("%s", msg))
	}
	if res.Code == wire.StatusPending {
		ok += " (waiting for their approval)"
	}
	fmt.Fprintln(e.stdout, ok)
	return exitOK
}

func runContacts(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 0 {
		fs.Usage()
		return exitUsage
	}
	return withClient(ctx, e, "contacts", func(ctx context.Context, c *client.Client) int {
		list, err := c.Contacts(ctx)
		if err != nil {
			return fail(e, "contacts", exitFailure, err)
		}
		if len(list) == 0 {
			fmt.Fprintln(e.stderr, "No contacts.")
		}
		for _, line := range list {
			fmt.Fprintln(e.stdout, sanitize(line))
		}
		return exitOK
	})
}

func oneAddress(e *env, fs *flag.FlagSet, name string, args []string, min, max int) (addr.Address, int) {
	if len(args) < min || len(args) > max {
		fs.Usage()
		return addr.Address{}, exitUsage
	}
	a, err := addr.Parse(args[0])
	if err != nil {
		return addr.Address{}, fail(e, name, exitUsage, err)
	}
	return a, exitOK
}

func runAdd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	a, code := oneAddress(e, fs, "add", args, 1, 1<<10)
	if code != exitOK {
		return code
	}
	alias := strings.Join(args[1:], " ")
	return withClient(ctx, e, "add", func(ctx context.Context, c *client.Client) int {
		res, err := c.AddContact(ctx, a.String(), alias)
		return answer(e, "add", res, err, "Added "+a.String()+".")
	})
}

func runRemove(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	a, code := oneAddress(e, fs, "remove", args, 1, 1)
	if code != exitOK {
		return code
	}
	return withClient(ctx, e, "remove", func(ctx context.Context, c *client.Client) int {
		res, err := c.RemoveContact(ctx, a.String())
		return answer(e, "remove", res, err, "Removed "+a.String()+".")
	})
}

func runApprove(ctx context.Context, e *env, fs *flag.FlagSet, args []string, approve bool) int {
	name, done := "approve", "Approved "
	if !approve {
		name, done = "deny", "Denied "
	}
	a, code := oneAddress(e, fs, name, args, 1, 1)
	if code != exitOK {
		return code
	}
	return withClient(ctx, e, name, func(ctx context.Context, c *client.Client) int {
		res, err := c.Approve(ctx, a.String(), approve)
		return answer(e, name, res, err, done+a.String()+".")
	})
}

func runBlock(ctx context.Context, e *env, fs *flag.FlagSet, args []string, block bool) int {
	name, done := "block", "Blocked "
	if !block {
		name, done = "unblock", "Unblocked "
	}
	if len(args) != 1 {
		fs.Usage()
		return exitUsage
	}
	pattern := args[0]
	if d, ok := strings.CutPrefix(pattern, "@"); ok {
		n, err := addr.ParseDomain(d)
		if err != nil {
			return fail(e, name, exitUsage, err)
		}
		pattern = "@" + n
	} else {
		a, err := addr.Parse(pattern)
		if err != nil {
			return fail(e, name, exitUsage, err)
		}
		pattern = a.String()
	}
	return withClient(ctx, e, name, func(ctx context.Context, c *client.Client) int {
		res, err := c.Block(ctx, pattern, block)
		return answer(e, name, res, err, done+pattern+".")
	})
}

func runPresence(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) < 1 {
		fs.Usage()
		return exitUsage
	}
	var p wire.Presence
	switch args[0] {
	case "online":
		p = wire.PresenceOnline
	case "away":
		p = wire.PresenceAway
	case "busy":
		p = wire.PresenceBusy
	case "offline":
		p = wire.PresenceOffline
	default:
		return fail(e, "presence", exitUsage, fmt.Errorf("%q is not one of online, away, busy, offline", args[0]))
	}
	status := strings.Join(args[1:], " ")
	return withClient(ctx, e, "presence", func(ctx context.Context, c *client.Client) int {
		res, err := c.SetPresence(ctx, p, status)
		return answer(e, "presence", res, err, "Presence set to "+args[0]+".")
	})
}

var cmdWhois = &command{
	name:  "whois",
	args:  "ADDRESS|DOMAIN",
	short: "show the attributes of a user or a domain",
	long: `Whois prints the attributes of a user (alias, presence, status,
capabilities, max-message-length: only what the user lets you see, which
is nothing unless they approved you) or of a domain (software, limits,
timeouts), one "name: value" a line. Your server answers from what rode
along with the user's messages and presence while it is fresh, and asks
the server of ADDRESS's or DOMAIN's domain otherwise.`,
	run: runWhois,
}

func runWhois(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) != 1 {
		fs.Usage()
		return exitUsage
	}
	target := args[0]
	if a, err := addr.Parse(target); err == nil {
		target = a.String()
	} else if d, err := addr.ParseDomain(target); err == nil {
		target = d
	} else {
		return fail(e, "whois", exitUsage, fmt.Errorf("%q is neither an address nor a domain", args[0]))
	}
	return withClient(ctx, e, "whois", func(ctx context.Context, c *client.Client) int {
		attrs, err := c.Attributes(ctx, target)
		if err != nil {
			return fail(e, "whois", exitFailure, err)
		}
		if len(attrs) == 0 {
			fmt.Fprintln(e.stderr, "Nothing to show: no attributes, or none shared with you.")
		}
		for _, a := range attrs {
			fmt.Fprintf(e.stdout, "%s: %s\n", a.Name, sanitize(a.Value))
		}
		return exitOK
	})
}
