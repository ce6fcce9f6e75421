package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/wire"
)

var cmdSet = &command{
	name:  "set",
	args:  "alias|max-message-length [VALUE...]",
	short: "set your alias or the longest message you accept",
	long: `Set sets one of your attributes, which your server keeps: your alias (the
display name the watchers you approved see; the words of VALUE joined by
spaces), or max-message-length (the longest message you want, in bytes, at
most your domain's max-message-size). Without VALUE it removes the
attribute. "imx whois" with your own address shows them.`,
	run: runSet,
}

func runSet(ctx context.Context, e *env, fs *flag.FlagSet, args []string) int {
	if len(args) < 1 {
		fs.Usage()
		return exitUsage
	}
	name, value := args[0], strings.Join(args[1:], " ")
	switch name {
	case "alias", "max-message-length":
	default:
		return fail(e, "set", exitUsage, fmt.Errorf("%q is not one of alias, max-message-length", name))
	}
	done := "Removed " + name + "."
	if value != "" {
		done = "Set " + name + " to " + sanitize(value) + "."
	}
	return withClient(ctx, e, "set", func(ctx context.Context, c *client.Client) int {
		res, err := c.SetAttributes(ctx, wire.Attr{Name: name, Value: value})
		return answer(e, "set", res, err, done)
	})
}

// withAlias is addr, followed by the alias that rode along in attrs, if
// any: "bob@beta.example (Bob)".
func withAlias(addr string, attrs []wire.Attr) string {
	s := sanitize(addr)
	if alias, _ := client.AttrValue(attrs, "alias"); alias != "" {
		s += " (" + sanitize(alias) + ")"
	}
	return s
}
