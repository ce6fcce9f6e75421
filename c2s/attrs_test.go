package c2s

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/wire"
)

// SetAttributes of the test Presence accepts capabilities only.
func (b *contactBook) SetAttributes(_ context.Context, _ addr.Address, attrs []wire.Attr, setCaps func([]string)) *wire.Result {
	var caps []string
	for _, a := range attrs {
		if a.Name != "capabilities" {
			return &wire.Result{Code: wire.StatusBadRequest, Text: "unknown attribute " + a.Name}
		}
		caps = strings.Fields(a.Value)
	}
	setCaps(caps)
	return &wire.Result{Code: wire.StatusOK}
}

// TestAttributesSet: ATTRIBUTES-SET reaches the Presence with its answer,
// and the capabilities each session declares make the user's, the union
// over the live sessions.
func TestAttributesSet(t *testing.T) {
	book := &contactBook{contacts: map[addr.Address][]string{}, presence: map[addr.Address]wire.Presence{}}
	srv := startServer(t, func(c *Config) { c.Presence = book })
	book.h = srv.h

	before := dialRaw(t, srv.url)
	before.hello()
	before.write(&wire.AttrsSet{Head: wire.Head{Tag: 3}, Attrs: []wire.Attr{{Name: "capabilities", Value: "x"}}})
	before.expectResult(3, wire.StatusNotAuthorized)

	web := loggedIn(t, srv, alice, "alice pw")
	web.mustRead() // the REQUEST pushed at login
	cli := loggedIn(t, srv, alice, "alice pw")
	cli.mustRead()
	web.mustRead() // pushed to every session of alice
	web.write(&wire.AttrsSet{Head: wire.Head{Tag: 20}, Attrs: []wire.Attr{{Name: "capabilities", Value: "html-lite typing"}}})
	web.expectResult(20, wire.StatusOK)
	cli.write(&wire.AttrsSet{Head: wire.Head{Tag: 21}, Attrs: []wire.Attr{{Name: "capabilities", Value: "files typing"}}})
	cli.expectResult(21, wire.StatusOK)
	if got := srv.h.Capabilities(alice); !slices.Equal(got, []string{"files", "html-lite", "typing"}) {
		t.Fatalf("Capabilities = %q, want the union", got)
	}
	if got := srv.h.Capabilities(bob); got != nil {
		t.Fatalf("Capabilities of bob, who has no session = %q", got)
	}
	cli.write(&wire.AttrsSet{Head: wire.Head{Tag: 22}, Attrs: []wire.Attr{{Name: "colour", Value: "red"}}})
	if r := cli.expectResult(22, wire.StatusBadRequest); r.Text != "unknown attribute colour" {
		t.Fatalf("refusal text %q", r.Text)
	}
	// A session that goes takes its capabilities with it.
	_ = cli.ws.Close(websocket.StatusNormalClosure, "bye")
	testutil.WaitFor(t, "the union without the closed session", func() bool {
		return slices.Equal(srv.h.Capabilities(alice), []string{"html-lite", "typing"})
	})
	web.write(&wire.AttrsSet{Head: wire.Head{Tag: 23}, Attrs: []wire.Attr{{Name: "capabilities"}}})
	web.expectResult(23, wire.StatusOK)
	if got := srv.h.Capabilities(alice); got != nil {
		t.Fatalf("Capabilities after clearing = %q", got)
	}
}
