package main

import (
	"context"
	"testing"
	"time"

	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/wire"
)

// settledEvents makes sure that whatever the server pushed to c before now
// has reached c's Events (the answer to a request comes after the records
// queued before it on the connection), and returns those events.
func settledEvents(t *testing.T, c *client.Client) []wire.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Contacts(ctx); err != nil {
		t.Fatal(err)
	}
	var out []wire.Record
	for {
		select {
		case ev := <-c.Events():
			out = append(out, ev)
		default:
			return out
		}
	}
}

// quiet fails the test if, within d, c gets presence of presentity other
// than offline, or a request to approve. There is no event to wait for when
// nothing must come: d bounds the wait.
func quiet(t *testing.T, c *client.Client, presentity string, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-c.Events():
			switch x := ev.(type) {
			case *wire.Notify:
				if x.Presentity == presentity && (x.Presence != wire.PresenceOffline || x.Status != "") {
					t.Errorf("a blocked watcher got %s's presence %v %q", presentity, x.Presence, x.Status)
				}
			case *wire.Request:
				t.Errorf("got a request to approve %s", x.Watcher)
			}
		case <-timer.C:
			return
		}
	}
}

// presenceAttrs reports whether attrs hold presence or status.
func presenceAttrs(attrs []wire.Attr) bool {
	for _, a := range attrs {
		if a.Name == "presence" || a.Name == "status" {
			return true
		}
	}
	return false
}

// TestBlockedEndToEnd: carol (beta) blocks dave (alpha), then the whole of
// alpha. A blocked party gets no presence, no attributes, no request
// reaches carol from it, and its messages are refused (refused, with no
// text) and not delivered; unblocking restores all of it.
func TestBlockedEndToEnd(t *testing.T) {
	dns := imxtest.StartDNS(t)
	alpha := startIMXD(t, dns, "alpha.test", "127.0.0.2", "")
	beta := startIMXD(t, dns, "beta.test", "127.0.0.3", "")
	alice, dave := alpha.addUser("alice", pw), alpha.addUser("dave", pw)
	carol := beta.addUser("carol", pw)
	ca, cd, cc := login(t, alpha, alice, pw), login(t, alpha, dave, pw), login(t, beta, carol, pw)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	for _, w := range []struct {
		c    *client.Client
		addr string
	}{{ca, alice}, {cd, dave}} {
		if res, err := w.c.AddContact(ctx, carol, ""); err != nil || res.Code != wire.StatusPending {
			t.Fatalf("%s adds carol: %v %v", w.addr, res, err)
		}
		event(t, cc, func(r *wire.Request) bool { return r.Watcher == w.addr })
		if res, err := cc.Approve(ctx, w.addr, true); err != nil || res.Code != wire.StatusOK {
			t.Fatalf("carol approves %s: %v %v", w.addr, res, err)
		}
		event(t, w.c, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceOnline })
	}
	refused := func(c *client.Client, who string) {
		t.Helper()
		res := sendText(t, c, carol, "text/plain", "from "+who+" while blocked")
		if res.Code != wire.StatusRefused || res.Text != "" {
			t.Errorf("message from %s while blocked: %v %q, want refused with no text", who, res.Code, res.Text)
		}
	}
	// firstMessage checks that the next message carol gets is body: what
	// was refused before it never came.
	firstMessage := func(from, body string) {
		t.Helper()
		if m := receive(t, cc); m.From != from || m.Body != body {
			t.Errorf("carol's next message: %q from %s, want %q from %s", m.Body, m.From, body, from)
		}
	}
	mayNotSee := func(c *client.Client, who string) {
		t.Helper()
		if attrs, err := c.Attributes(ctx, carol); err != nil || presenceAttrs(attrs) {
			t.Errorf("%s, blocked, sees carol's attributes: %v %v", who, attrs, err)
		}
	}

	// Block an address: dave sees carol offline at once.
	if res, err := cc.Block(ctx, dave, true); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("carol blocks dave: %v %v", res, err)
	}
	event(t, cd, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceOffline })
	if _, err := cc.SetPresence(ctx, wire.PresenceAway, "not for dave"); err != nil {
		t.Fatal(err)
	}
	// alice, on the same domain, hears it: one NOTIFY per domain would
	// have carried dave too.
	event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Status == "not for dave" })
	for _, n := range presenceOf(settledEvents(t, cd), carol) {
		if n.Presence != wire.PresenceOffline {
			t.Errorf("dave, blocked, got carol's presence %v %q", n.Presence, n.Status)
		}
	}
	mayNotSee(cd, dave)
	if attrs, err := ca.Attributes(ctx, carol); err != nil || !presenceAttrs(attrs) {
		t.Errorf("alice, not blocked, does not see carol's attributes: %v %v", attrs, err)
	}
	refused(cd, dave)
	if res := sendText(t, ca, carol, "text/plain", "alice 1"); res.Code != wire.StatusDelivered {
		t.Fatalf("alice → carol: %v %q", res.Code, res.Text)
	}
	firstMessage(alice, "alice 1")
	if res, err := cd.AddContact(ctx, carol, ""); err != nil || res.Code != wire.StatusRefused {
		t.Errorf("dave asks again while blocked: %v %v, want refused", res, err)
	}
	for _, ev := range settledEvents(t, cc) {
		if r, ok := ev.(*wire.Request); ok {
			t.Errorf("carol was asked by %s, whom she blocked", r.Watcher)
		}
	}

	// Unblock: dave asks again (carol's approval stands), sees her, and
	// his messages arrive.
	if res, err := cc.Block(ctx, dave, false); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("carol unblocks dave: %v %v", res, err)
	}
	if res, err := cd.AddContact(ctx, carol, ""); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("dave adds carol after the unblock: %v %v", res, err)
	}
	event(t, cd, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceAway })
	if res := sendText(t, cd, carol, "text/plain", "dave again"); res.Code != wire.StatusDelivered {
		t.Errorf("dave → carol after the unblock: %v %q", res.Code, res.Text)
	}
	firstMessage(dave, "dave again")

	// Block the whole domain: alice and dave see carol offline at once;
	// nothing of carol reaches alpha after.
	if res, err := cc.Block(ctx, "@alpha.test", true); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("carol blocks alpha.test: %v %v", res, err)
	}
	event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceOffline })
	event(t, cd, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceOffline })
	if _, err := cc.SetPresence(ctx, wire.PresenceBusy, "not for alpha"); err != nil {
		t.Fatal(err)
	}
	quiet(t, ca, carol, 500*time.Millisecond)
	quiet(t, cd, carol, 0)
	mayNotSee(ca, alice)
	mayNotSee(cd, dave)
	refused(ca, alice)
	refused(cd, dave)
	if res, err := ca.AddContact(ctx, carol, ""); err != nil || res.Code != wire.StatusRefused {
		t.Errorf("alice asks again while alpha is blocked: %v %v, want refused", res, err)
	}

	// Unblock the domain: alice sees carol again and writes to her.
	if res, err := cc.Block(ctx, "@alpha.test", false); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("carol unblocks alpha.test: %v %v", res, err)
	}
	if res, err := ca.AddContact(ctx, carol, ""); err != nil || res.Code != wire.StatusOK {
		t.Fatalf("alice adds carol after the unblock: %v %v", res, err)
	}
	event(t, ca, func(n *wire.Notify) bool { return n.Presentity == carol && n.Presence == wire.PresenceBusy })
	if res := sendText(t, ca, carol, "text/plain", "alice again"); res.Code != wire.StatusDelivered {
		t.Errorf("alice → carol after the unblock: %v %q", res.Code, res.Text)
	}
	firstMessage(alice, "alice again")
}

// presenceOf returns the NOTIFYs about presentity among recs.
func presenceOf(recs []wire.Record, presentity string) []*wire.Notify {
	var out []*wire.Notify
	for _, r := range recs {
		if n, ok := r.(*wire.Notify); ok && n.Presentity == presentity {
			out = append(out, n)
		}
	}
	return out
}
