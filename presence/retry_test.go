package presence

import (
	"testing"
	"time"

	"github.com/imxproject/imx/wire"
)

// sweepFor advances the clock by step and sweeps alpha, for total, and
// returns the times (since the start) at which alpha sent SUBSCRIBE.
func sweepFor(t *testing.T, p *pair, total, step time.Duration) []time.Duration {
	t.Helper()
	start := p.clock.Now()
	var at []time.Duration
	for elapsed := time.Duration(0); elapsed < total; elapsed += step {
		before := p.fed.count(wire.TypeSubscribe)
		p.clock.Advance(step)
		if err := p.alpha.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		for range p.fed.count(wire.TypeSubscribe) - before {
			at = append(at, p.clock.Now().Sub(start))
		}
	}
	return at
}

// TestRetryUnreachableContact: a contact added while its domain is
// unreachable is subscribed again while the owner stays online, 30 s after
// the failure, then with the delay doubling up to 10 min (±10%); once the
// domain answers, the owner sees the contact's presence without logging in
// again, and the retries stop.
func TestRetryUnreachableContact(t *testing.T) {
	p := newPair(t)
	p.fed.set(betaDomain, nil) // beta is down
	p.beta.login(bob)
	p.beta.svc.Approve(ctx, bob, alice, true) // bob approved alice before
	p.alpha.login(alice)
	if got := p.alpha.svc.AddContact(ctx, alice, bob, ""); got != wire.StatusUnreachable {
		t.Fatalf("AddContact = %v, want unreachable", got)
	}
	p.fed.reset()

	const step = 5 * time.Second
	at := sweepFor(t, p, 45*time.Minute, step)
	// Expected delays after each failure: 30 s, 1, 2, 4, 8 min, then 10
	// min; each ±10%, seen at most one step late.
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	if len(at) < len(want) {
		t.Fatalf("SUBSCRIBE sent at %v, want %d retries", at, len(want))
	}
	prev := time.Duration(0)
	for i, w := range want {
		d := at[i] - prev
		if d < w*9/10 || d > w*11/10+step {
			t.Errorf("retry %d came %v after the one before, want %v ±10%% (all: %v)", i+1, d, w, at)
		}
		prev = at[i]
	}
	if got := p.alpha.contact(alice, bob).State.String(); got != "asked" {
		t.Errorf("contact state while unreachable = %s", got)
	}
	if recs := notifies(p.alpha.local.take(alice)); len(recs) != 0 {
		t.Errorf("alice got presence while beta was down: %+v", recs)
	}

	// beta comes up: the next retry subscribes, and alice sees bob.
	p.fed.set(betaDomain, p.beta.svc)
	p.fed.reset()
	for i := 0; p.fed.count(wire.TypeSubscribe) == 0; i++ {
		if i > int(11*time.Minute/step) {
			t.Fatal("no retry within 11 minutes of beta coming up")
		}
		sweepFor(t, p, step, step)
	}
	sweepFor(t, p, 2*time.Minute, step) // no more retries; renewal is at 8 min
	if got := p.fed.count(wire.TypeSubscribe); got != 1 {
		t.Fatalf("%d SUBSCRIBE once beta answered, want 1", got)
	}
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceOnline {
		t.Fatalf("alice got %+v, want bob online", n)
	}
	if _, err := p.alpha.st.GetSubOut(ctx, alice, bob); err != nil {
		t.Fatalf("no subscription after the retry: %v", err)
	}
	p.alpha.svc.mu.Lock()
	left := len(p.alpha.svc.retries)
	p.alpha.svc.mu.Unlock()
	if left != 0 {
		t.Errorf("%d owners still have retries after success", left)
	}
}

// TestRetryStops: the retries of an unreachable contact stop when the
// owner goes offline and when the contact is removed.
func TestRetryStops(t *testing.T) {
	p := newPair(t)
	p.fed.set(betaDomain, nil)
	p.alpha.login(alice)
	p.alpha.login(carol)
	p.alpha.svc.AddContact(ctx, alice, bob, "")
	p.alpha.svc.AddContact(ctx, carol, bob, "")
	p.fed.reset()
	if at := sweepFor(t, p, 40*time.Second, 5*time.Second); len(at) != 2 {
		t.Fatalf("first retries at %v, want one each for alice and carol", at)
	}

	p.alpha.logout(alice)
	if got := p.alpha.svc.RemoveContact(ctx, carol, bob); got != wire.StatusOK {
		t.Fatalf("RemoveContact = %v", got)
	}
	p.fed.reset()
	sweepFor(t, p, time.Hour, time.Minute)
	if got := p.fed.count(wire.TypeSubscribe); got != 0 {
		t.Fatalf("%d SUBSCRIBE after the owner left and the contact went", got)
	}

	// A login subscribes again, and a failure then starts the retries
	// again.
	p.alpha.login(alice)
	if got := p.fed.count(wire.TypeSubscribe); got != 1 {
		t.Fatalf("%d SUBSCRIBE at login, want 1", got)
	}
	if at := sweepFor(t, p, 40*time.Second, 5*time.Second); len(at) != 1 {
		t.Fatalf("retries after the login at %v, want 1", at)
	}
}

// TestUnreachableLapsesThenReturns: when the presentity's domain stays
// unreachable, the subscription lapses and the online watcher sees the
// contact offline; when the domain comes back, the retries subscribe again
// and the watcher sees the contact's presence, although alpha's cache
// still held it from before.
func TestUnreachableLapsesThenReturns(t *testing.T) {
	p := newPair(t)
	approved(t, p)
	p.fed.set(betaDomain, nil)
	p.fed.reset()
	sweepFor(t, p, 11*time.Minute, 30*time.Second)
	if _, err := p.alpha.st.GetSubOut(ctx, alice, bob); err == nil {
		t.Fatal("subs_out not lapsed while beta was unreachable")
	}
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceOffline {
		t.Fatalf("alice got %+v, want bob offline", n)
	}
	if p, _ := p.alpha.svc.presenceOf(ctx, alice, bob); p != wire.PresenceOnline {
		t.Fatalf("cache = %v; the test needs the stale online", p)
	}

	p.fed.set(betaDomain, p.beta.svc)
	sweepFor(t, p, 11*time.Minute, 30*time.Second)
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceOnline {
		t.Fatalf("alice got %+v, want bob online again", n)
	}
	if _, err := p.alpha.st.GetSubOut(ctx, alice, bob); err != nil {
		t.Fatalf("no subscription after beta came back: %v", err)
	}
}
