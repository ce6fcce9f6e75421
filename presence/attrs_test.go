package presence

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

func attr(attrs []wire.Attr, name string) (string, bool) {
	for _, a := range attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

func wantAttr(t *testing.T, what string, attrs []wire.Attr, name, value string) {
	t.Helper()
	if v, ok := attr(attrs, name); !ok || v != value {
		t.Fatalf("%s: %s = %q (present %v), want %q; all: %v", what, name, v, ok, value, attrs)
	}
}

// withCaps gives the Service of n a fixed set of capabilities per user, as
// c2s would from its sessions.
func withCaps(n *node, caps map[addr.Address][]string) {
	n.svc.cfg.Capabilities = func(u addr.Address) []string { return caps[u] }
}

func TestSetAttributes(t *testing.T) {
	p := newPair(t)
	p.beta.login(bob)
	var got []string
	setCaps := func(c []string) { got = c }
	res := p.beta.svc.SetAttributes(ctx, bob, []wire.Attr{
		{Name: "alias", Value: "Bob Dobbs"}, {Name: "max-message-length", Value: "4096"}, {Name: "capabilities", Value: "html-lite typing html-lite"},
	}, setCaps)
	if res.Code != wire.StatusOK {
		t.Fatalf("SetAttributes = %v %q", res.Code, res.Text)
	}
	if !slices.Equal(got, []string{"html-lite", "typing"}) {
		t.Fatalf("capabilities recorded for the session: %q", got)
	}
	withCaps(p.beta, map[addr.Address][]string{bob: got})
	self := p.beta.svc.UserAttrs(ctx, bob.String(), bob, nil)
	wantAttr(t, "bob's own", self, "alias", "Bob Dobbs")
	wantAttr(t, "bob's own", self, "max-message-length", "4096")
	wantAttr(t, "bob's own", self, "capabilities", "html-lite typing")
	wantAttr(t, "bob's own", self, "presence", "online")

	for _, c := range []struct {
		attrs []wire.Attr
		text  string
	}{
		{nil, "no attributes"},
		{[]wire.Attr{{Name: "presence", Value: "away"}}, "PRESENCE-SET"},
		{[]wire.Attr{{Name: "status", Value: "x"}}, "PRESENCE-SET"},
		{[]wire.Attr{{Name: "alias", Value: "Evil"}, {Name: "colour", Value: "red"}}, "unknown attribute colour"},
		{[]wire.Attr{{Name: "alias", Value: "A"}, {Name: "alias", Value: "B"}}, "given twice"},
		{[]wire.Attr{{Name: "alias", Value: strings.Repeat("x", wire.MaxAliasLen+1)}}, "alias over"},
		{[]wire.Attr{{Name: "alias", Value: "bell\a"}}, "control character"},
		{[]wire.Attr{{Name: "max-message-length", Value: "lots"}}, "not a number"},
		{[]wire.Attr{{Name: "max-message-length", Value: "1000000"}}, "max-message-size of 65536"},
		{[]wire.Attr{{Name: "capabilities", Value: "HTML"}}, "not a token"},
	} {
		got = nil
		res := p.beta.svc.SetAttributes(ctx, bob, c.attrs, setCaps)
		if res.Code != wire.StatusBadRequest || !strings.Contains(res.Text, c.text) {
			t.Errorf("SetAttributes(%v) = %v %q, want bad-request with %q", c.attrs, res.Code, res.Text, c.text)
		}
		if got != nil {
			t.Errorf("SetAttributes(%v) recorded capabilities %q", c.attrs, got)
		}
	}
	// Nothing of a refused request was kept.
	wantAttr(t, "after refusals", p.beta.svc.UserAttrs(ctx, bob.String(), bob, nil), "alias", "Bob Dobbs")

	// The alias and the length are stored: they outlive a restart, and
	// the sessions.
	p.beta.restart()
	self = p.beta.svc.UserAttrs(ctx, bob.String(), bob, nil)
	wantAttr(t, "after a restart", self, "alias", "Bob Dobbs")
	wantAttr(t, "after a restart", self, "max-message-length", "4096")
	wantAttr(t, "after a restart", self, "presence", "offline")
	if _, ok := attr(self, "capabilities"); ok {
		t.Fatalf("capabilities without a session: %v", self)
	}
	// Empty values remove; 0 goes back to the domain's limit.
	if res := p.beta.svc.SetAttributes(ctx, bob, []wire.Attr{{Name: "alias"}, {Name: "max-message-length", Value: "0"}}, nil); res.Code != wire.StatusOK {
		t.Fatalf("clearing = %v %q", res.Code, res.Text)
	}
	self = p.beta.svc.UserAttrs(ctx, bob.String(), bob, []string{"alias", "max-message-length"})
	if fmt.Sprint(self) != "[{alias } {max-message-length 65536}]" {
		t.Fatalf("after clearing: %v", self)
	}
}

// TestAttrsPrivacy: only bob and the watchers he approved see his
// attributes, by GET-ATTRIBUTES and on his messages; a blocked watcher
// stops seeing them.
func TestAttrsPrivacy(t *testing.T) {
	p := newPair(t)
	approved(t, p) // alice watches bob
	p.beta.svc.SetAttributes(ctx, bob, []wire.Attr{{Name: "alias", Value: "Bob"}}, nil)
	for _, who := range []addr.Address{mallory, carol} {
		if got := p.beta.svc.UserAttrs(ctx, who.String(), bob, nil); len(got) != 0 {
			t.Errorf("UserAttrs for unapproved %s = %v", who, got)
		}
		if got := p.beta.svc.UserAttrs(ctx, who.String(), bob, []string{"alias"}); len(got) != 0 {
			t.Errorf("UserAttrs(alias) for unapproved %s = %v", who, got)
		}
		if got := p.beta.svc.Outgoing(ctx, bob, who); len(got) != 0 {
			t.Errorf("attributes on a message to unapproved %s: %v", who, got)
		}
	}
	wantAttr(t, "approved alice", p.beta.svc.UserAttrs(ctx, alice.String(), bob, nil), "alias", "Bob")
	out := p.beta.svc.Outgoing(ctx, bob, alice)
	wantAttr(t, "on a message to alice", out, "alias", "Bob")
	wantAttr(t, "on a message to alice", out, "presence", "online")
	if got := p.alpha.svc.Outgoing(ctx, bob, alice); got != nil {
		t.Fatalf("alpha attached attributes of a user it does not serve: %v", got)
	}
	p.beta.svc.Block(ctx, bob, alice.String(), true)
	if got := p.beta.svc.Outgoing(ctx, bob, alice); len(got) != 0 {
		t.Fatalf("attributes on a message to a blocked watcher: %v", got)
	}
	if got := p.beta.svc.UserAttrs(ctx, alice.String(), bob, nil); len(got) != 0 {
		t.Fatalf("UserAttrs for a blocked watcher = %v", got)
	}
}

// TestAttrsRideAlongNotify: a change of bob's alias reaches alice, his
// approved watcher, on a NOTIFY; alpha caches it for alice only, until her
// subscription expires; a block takes it back.
func TestAttrsRideAlongNotify(t *testing.T) {
	p := newPair(t)
	withCaps(p.beta, map[addr.Address][]string{bob: {"html-lite"}})
	approved(t, p)
	p.alpha.login(carol)
	p.fed.reset()
	if res := p.beta.svc.SetAttributes(ctx, bob, []wire.Attr{{Name: "alias", Value: "Bob"}}, nil); res.Code != wire.StatusOK {
		t.Fatal(res.Code, res.Text)
	}
	p.beta.svc.Wait()
	if got := p.fed.count(wire.TypeNotify); got != 1 {
		t.Fatalf("%d NOTIFYs for an alias change, want 1", got)
	}
	n := lastNotify(t, p.alpha.local.take(alice), bob)
	wantAttr(t, "NOTIFY to alice", n.Attrs, "alias", "Bob")
	wantAttr(t, "NOTIFY to alice", n.Attrs, "capabilities", "html-lite")
	wantAttr(t, "NOTIFY to alice", n.Attrs, "max-message-length", "65536")
	if got := p.alpha.local.take(carol); len(got) != 0 {
		t.Fatalf("carol, not a watcher, got %v", got)
	}

	cached, ok := p.alpha.svc.CachedAttrs(alice, bob, nil)
	if !ok {
		t.Fatal("alpha did not cache what rode along")
	}
	wantAttr(t, "cached for alice", cached, "alias", "Bob")
	wantAttr(t, "cached for alice", cached, "presence", "online")
	if got, ok := p.alpha.svc.CachedAttrs(alice, bob, []string{"alias", "status"}); !ok || fmt.Sprint(got) != "[{alias Bob} {status }]" {
		t.Fatalf("cached alias and status = %v %v", got, ok)
	}
	if _, ok := p.alpha.svc.CachedAttrs(alice, bob, []string{"alias", "shoe-size"}); ok {
		t.Fatal("the cache answered a name it does not hold")
	}
	if got, ok := p.alpha.svc.CachedAttrs(carol, bob, nil); ok {
		t.Fatalf("the cache showed carol what bob shared with alice: %v", got)
	}
	// alice logs out and in again while the subscription lives: the
	// presence her new session is shown carries the cached attributes.
	p.alpha.logout(alice)
	p.alpha.local.take(alice)
	p.alpha.login(alice)
	n = lastNotify(t, p.alpha.local.take(alice), bob)
	wantAttr(t, "NOTIFY to alice at login", n.Attrs, "alias", "Bob")
	wantAttr(t, "NOTIFY to alice at login", n.Attrs, "capabilities", "html-lite")
	// Fresh until the subscription expires (beta grants 10 minutes).
	p.clock.Advance(9 * time.Minute)
	if _, ok := p.alpha.svc.CachedAttrs(alice, bob, nil); !ok {
		t.Fatal("the cache forgot before the subscription expired")
	}
	p.clock.Advance(2 * time.Minute)
	if got, ok := p.alpha.svc.CachedAttrs(alice, bob, nil); ok {
		t.Fatalf("the cache answered after the subscription expired: %v", got)
	}

	// A renewed subscription fills it again by itself (the attributes
	// ride along on its RESULT ok), and so does a new NOTIFY; bob's block
	// (a NOTIFY offline without attributes) takes it back.
	p.alpha.svc.subscribe(ctx, alice, bob)
	if got, ok := p.alpha.svc.CachedAttrs(alice, bob, []string{"alias"}); !ok || fmt.Sprint(got) != "[{alias Bob}]" {
		t.Fatalf("after the renewal, cached alias = %v %v", got, ok)
	}
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceAway, "")
	p.beta.svc.Wait()
	if _, ok := p.alpha.svc.CachedAttrs(alice, bob, nil); !ok {
		t.Fatal("a NOTIFY after the renewal did not fill the cache")
	}
	p.beta.svc.Block(ctx, bob, alice.String(), true)
	p.beta.svc.Wait()
	if got, ok := p.alpha.svc.CachedAttrs(alice, bob, nil); ok {
		t.Fatalf("the cache still answers after a block: %v", got)
	}
}

// TestAttrsIncomingMessage: what rides along on a message from another
// domain is kept for its recipient, for the subscription timeout of the
// recipient's domain, and only the user attributes go on.
func TestAttrsIncomingMessage(t *testing.T) {
	p := newPair(t)
	in := []wire.Attr{{Name: "alias", Value: "Bob"}, {Name: "x-junk", Value: "1"}, {Name: "alias", Value: "Bobby"},
		{Name: "presence", Value: "away"}, {Name: "status", Value: ""}, {Name: "capabilities", Value: ""}, {Name: "max-message-length", Value: "100"}}
	got := p.alpha.svc.Incoming(bob, alice, in)
	if fmt.Sprint(got) != "[{alias Bob} {presence away} {status } {capabilities } {max-message-length 100}]" {
		t.Fatalf("Incoming = %v", got)
	}
	cached, ok := p.alpha.svc.CachedAttrs(alice, bob, nil)
	if !ok || fmt.Sprint(cached) != "[{alias Bob} {presence away} {max-message-length 100}]" {
		t.Fatalf("cached = %v %v", cached, ok)
	}
	if _, ok := p.alpha.svc.CachedAttrs(carol, bob, nil); ok {
		t.Fatal("carol is answered from what came to alice")
	}
	// A local sender is never cached: its server answers itself.
	p.alpha.svc.Incoming(carol, alice, in)
	if _, ok := p.alpha.svc.CachedAttrs(alice, carol, nil); ok {
		t.Fatal("attributes of a local user were cached")
	}
	p.clock.Advance(29 * time.Minute) // alpha's subscription timeout is 30 minutes
	if _, ok := p.alpha.svc.CachedAttrs(alice, bob, nil); !ok {
		t.Fatal("forgotten too early")
	}
	p.clock.Advance(2 * time.Minute)
	if _, ok := p.alpha.svc.CachedAttrs(alice, bob, nil); ok {
		t.Fatal("answered after the subscription timeout")
	}
}

// TestAttrCacheBounded: the cache holds at most its size in addresses,
// evicting the least recently used, and maxViewers viewers per address.
func TestAttrCacheBounded(t *testing.T) {
	c := newAttrCache(2)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	until := now.Add(time.Hour)
	all := func(alias string) []wire.Attr {
		return []wire.Attr{{Name: "alias", Value: alias}, {Name: "presence", Value: "online"}, {Name: "status"}, {Name: "capabilities"}, {Name: "max-message-length", Value: "1"}}
	}
	u := func(i int) addr.Address { return addr.MustParse(fmt.Sprintf("u%d@beta.example", i)) }
	c.put(u(1), []addr.Address{alice}, all("one"), until, now)
	c.put(u(2), []addr.Address{alice}, all("two"), until, now)
	if _, ok := c.get(u(1), alice, nil, now); !ok { // u1 is now the most recent
		t.Fatal("u1 not cached")
	}
	c.put(u(3), []addr.Address{alice}, all("three"), until, now)
	if c.len() != 2 {
		t.Fatalf("%d addresses cached, bound 2", c.len())
	}
	if _, ok := c.get(u(2), alice, nil, now); ok {
		t.Fatal("the least recently used address was not the one evicted")
	}
	for _, i := range []int{1, 3} {
		if _, ok := c.get(u(i), alice, nil, now); !ok {
			t.Fatalf("u%d evicted", i)
		}
	}
	// Viewers: the one whose right ends first goes.
	for i := range maxViewers + 5 {
		c.put(u(1), []addr.Address{addr.MustParse(fmt.Sprintf("v%d@alpha.example", i))}, nil, until.Add(time.Duration(i)*time.Minute), now)
	}
	e := c.byAddr[u(1)].Value.(*attrEntry)
	if len(e.viewers) != maxViewers {
		t.Fatalf("%d viewers, bound %d", len(e.viewers), maxViewers)
	}
	if _, ok := e.viewers[alice]; ok {
		t.Fatal("the viewer with the earliest expiry was kept")
	}
	// One NOTIFY listing more viewers than the bound: the bound holds,
	// and a viewer whose right ends later than theirs stays.
	var many []addr.Address
	for i := range 100 {
		many = append(many, addr.MustParse(fmt.Sprintf("w%d@alpha.example", i)))
	}
	last := addr.MustParse(fmt.Sprintf("v%d@alpha.example", maxViewers+4))
	c.put(u(1), many, nil, until.Add(time.Duration(maxViewers+2)*time.Minute), now)
	if len(e.viewers) != maxViewers {
		t.Fatalf("%d viewers after a put of 100, bound %d", len(e.viewers), maxViewers)
	}
	if _, ok := e.viewers[last]; !ok {
		t.Fatal("the viewer whose right ends last was dropped")
	}
	// An expiry in the past caches nothing.
	c.put(u(4), []addr.Address{alice}, all("four"), now, now)
	if _, ok := c.get(u(4), alice, nil, now); ok {
		t.Fatal("cached with an expiry already past")
	}
}
