package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/wire"
)

// TestUserAttributesAcrossDomains: carol (beta.test) sets her alias and her
// session's capabilities; alice (alpha.test), whom carol approved, sees
// them on the NOTIFY of the approval, on carol's messages and by
// GET-ATTRIBUTES, the last answered by alpha from what rode along even
// while beta is down. dave, whom carol never approved, gets none: an empty
// ATTRIBUTES, and messages without attributes.
func TestUserAttributesAcrossDomains(t *testing.T) {
	dns := imxtest.StartDNS(t)
	alpha := startIMXD(t, dns, "alpha.test", "127.0.0.6", "")
	beta := startIMXD(t, dns, "beta.test", "127.0.0.7", "")
	alice, dave := alpha.addUser("alice", pw), alpha.addUser("dave", pw)
	carol := beta.addUser("carol", pw)
	ca, cd, cc := login(t, alpha, alice, pw), login(t, alpha, dave, pw), login(t, beta, carol, pw)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// carol sets her attributes, and sees them herself.
	res, err := cc.SetAttributes(ctx, wire.Attr{Name: "alias", Value: "Carol C"}, wire.Attr{Name: "capabilities", Value: "html-lite"})
	if err != nil || res.Code != wire.StatusOK {
		t.Fatalf("carol sets her attributes: %v %v", res, err)
	}
	for _, bad := range []wire.Attr{{Name: "presence", Value: "away"}, {Name: "shoe-size", Value: "9"}, {Name: "max-message-length", Value: "99999999"}} {
		res, err := cc.SetAttributes(ctx, bad)
		if err != nil || res.Code != wire.StatusBadRequest || res.Text == "" {
			t.Errorf("carol sets %s: %v %v, want bad-request with a text", bad.Name, res, err)
		}
	}
	self, err := cc.Attributes(ctx, carol)
	if err != nil || !hasAttr(self, "alias", "Carol C") || !hasAttr(self, "capabilities", "html-lite") ||
		!hasAttr(self, "max-message-length", "65536") || !hasAttr(self, "presence", "online") {
		t.Fatalf("carol's own attributes: %v %v", self, err)
	}

	// Before any approval, nobody on alpha sees them.
	for who, c := range map[string]*client.Client{"alice": ca, "dave": cd} {
		if attrs, err := c.Attributes(ctx, carol); err != nil || len(attrs) != 0 {
			t.Errorf("%s, not approved, sees %v %v", who, attrs, err)
		}
	}

	// alice asks, carol approves: the NOTIFY carries carol's attributes.
	if res, err := ca.AddContact(ctx, carol, ""); err != nil || !res.Code.Success() {
		t.Fatalf("alice adds carol: %v %v", res, err)
	}
	event(t, cc, func(r *wire.Request) bool { return r.Watcher == alice })
	if res, err := cc.Approve(ctx, alice, true); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("carol approves: %v %v", res, err)
	}
	n := event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceOnline })
	if !hasAttr(n.Attrs, "alias", "Carol C") || !hasAttr(n.Attrs, "capabilities", "html-lite") {
		t.Errorf("the NOTIFY to alice carries %v", n.Attrs)
	}
	attrs, err := ca.Attributes(ctx, carol)
	if err != nil || !hasAttr(attrs, "alias", "Carol C") || !hasAttr(attrs, "capabilities", "html-lite") || !hasAttr(attrs, "max-message-length", "65536") {
		t.Errorf("alice's GET-ATTRIBUTES of carol: %v %v", attrs, err)
	}

	// carol's messages: with her attributes to alice, without to dave.
	if res := sendText(t, cc, alice, "", "hello alice"); res.Code != wire.StatusDelivered {
		t.Fatalf("carol to alice: %v", res)
	}
	if m := receive(t, ca); m.Alias() != "Carol C" || !hasAttr(m.Attrs, "capabilities", "html-lite") {
		t.Errorf("alice received %q with %v", m.Body, m.Attrs)
	}
	if res := sendText(t, cc, dave, "", "hello dave"); res.Code != wire.StatusDelivered {
		t.Fatalf("carol to dave: %v", res)
	}
	if m := receive(t, cd); len(m.Attrs) != 0 {
		t.Errorf("dave, not approved, received carol's attributes %v", m.Attrs)
	}
	if attrs, err := cd.Attributes(ctx, carol); err != nil || len(attrs) != 0 {
		t.Errorf("dave's GET-ATTRIBUTES of carol: %v %v, want an empty answer", attrs, err)
	}
	// alice never approved carol: alice's alias does not go to her.
	if res, err := ca.SetAttributes(ctx, wire.Attr{Name: "alias", Value: "Alice"}); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("alice sets her alias: %v %v", res, err)
	}
	if res := sendText(t, ca, carol, "", "hi carol"); res.Code != wire.StatusDelivered {
		t.Fatalf("alice to carol: %v", res)
	}
	if m := receive(t, cc); len(m.Attrs) != 0 {
		t.Errorf("carol, not approved by alice, received %v", m.Attrs)
	}

	// With beta down, alpha answers alice from what rode along; dave, to
	// whom nothing was shown, still gets nothing.
	beta.stop()
	attrs, err = ca.Attributes(ctx, carol, "alias", "max-message-length")
	if err != nil || !hasAttr(attrs, "alias", "Carol C") || !hasAttr(attrs, "max-message-length", "65536") {
		t.Errorf("alice's GET-ATTRIBUTES of carol with beta down: %v %v; alpha's log:\n%s", attrs, err, lastLines(alpha.logs.String(), 20))
	}
	if attrs, err := cd.Attributes(ctx, carol, "alias"); err == nil && len(attrs) != 0 {
		t.Errorf("dave got carol's attributes from alpha's cache: %v", attrs)
	} else if err != nil && !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("dave's GET-ATTRIBUTES with beta down: %v", err)
	}

	// The alias is kept: it outlives carol's server.
	beta.start()
	cc = login(t, beta, carol, pw)
	if self, err := cc.Attributes(ctx, carol, "alias"); err != nil || !hasAttr(self, "alias", "Carol C") {
		t.Errorf("carol's alias after a restart: %v %v", self, err)
	}
}
