package main

import (
	"strings"
	"testing"

	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/wire"
)

// TestListenShowsAlias: listen prints the alias that rode along with a
// message or a NOTIFY after the sender's address, control characters
// replaced, and nothing when none came.
func TestListenShowsAlias(t *testing.T) {
	m := client.Incoming{From: "bob@beta.example", Body: "hi", Attrs: []wire.Attr{{Name: "alias", Value: "Bob\x1b[31m"}}}
	if got := formatIncoming(m); !strings.HasSuffix(got, " bob@beta.example (Bob\uFFFD[31m): hi") {
		t.Errorf("formatIncoming = %q", got)
	}
	m.Attrs = nil
	if got := formatIncoming(m); !strings.HasSuffix(got, " bob@beta.example: hi") {
		t.Errorf("formatIncoming without an alias = %q", got)
	}
	n := &wire.Notify{Presentity: "bob@beta.example", Presence: wire.PresenceAway, Attrs: []wire.Attr{{Name: "alias", Value: "Bob"}, {Name: "capabilities"}}}
	if got := formatEvent(n); !strings.HasSuffix(got, " bob@beta.example (Bob) is away") {
		t.Errorf("formatEvent = %q", got)
	}
}
