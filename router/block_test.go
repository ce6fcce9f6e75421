package router_test

import (
	"context"
	"testing"

	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/wire"
)

// TestBlockedSenderRefused: a message to a user who blocked its sender, by
// address or by domain, is answered refused with no text, and is neither
// delivered nor stored; others still get through, and unblocking restores
// delivery. Local and remote senders alike.
func TestBlockedSenderRefused(t *testing.T) {
	ctx := context.Background()
	w := imxtest.NewWorld(t)
	p := open
	p.OfflineMessages = true
	p.OfflineLimit = 100
	alpha := startDomain(t, w, "alpha.example", p)
	alice, mallory, bob := alpha.user(t, "alice"), alpha.user(t, "mallory"), alpha.user(t, "bob")
	beta := startDomain(t, w, "beta.example", open)
	eve, carol := beta.user(t, "eve"), beta.user(t, "carol")
	alpha.sessions.login(bob, 1)

	if err := alpha.store.AddBlock(ctx, bob, "mallory@alpha.example"); err != nil {
		t.Fatal(err)
	}
	if err := alpha.store.AddBlock(ctx, bob, "@beta.example"); err != nil {
		t.Fatal(err)
	}
	refused := func(res *wire.Result) {
		t.Helper()
		if res.Code != wire.StatusRefused || res.Text != "" || res.Count != 0 {
			t.Fatalf("result %v %q (count %d), want refused with no text", res.Code, res.Text, res.Count)
		}
	}
	refused(send(t, alpha, mallory, bob.String(), "local, blocked by address"))
	refused(send(t, beta, eve, bob.String(), "remote, blocked by domain"))
	refused(send(t, beta, carol, bob.String(), "remote, blocked by domain"))
	expect(t, send(t, alpha, alice, bob.String(), "not blocked"), wire.StatusDelivered, 1)
	got := alpha.sessions.received(bob)
	if len(got) != 1 || got[0].From != alice.String() {
		t.Fatalf("bob received %d messages (%+v), want alice's only", len(got), got)
	}
	// Offline, a blocked sender's message is not kept either.
	alpha.sessions.login(bob, 0)
	refused(send(t, alpha, mallory, bob.String(), "while bob is away"))
	if n, _ := alpha.store.CountOffline(ctx, bob); n != 0 {
		t.Errorf("%d offline messages kept from blocked senders", n)
	}
	alpha.sessions.login(bob, 1)

	// Unblocking restores delivery.
	if err := alpha.store.RemoveBlock(ctx, bob, "@beta.example"); err != nil {
		t.Fatal(err)
	}
	if err := alpha.store.RemoveBlock(ctx, bob, "mallory@alpha.example"); err != nil {
		t.Fatal(err)
	}
	expect(t, send(t, beta, eve, bob.String(), "unblocked"), wire.StatusDelivered, 1)
	expect(t, send(t, alpha, mallory, bob.String(), "unblocked"), wire.StatusDelivered, 1)
	if got := alpha.sessions.received(bob); len(got) != 3 {
		t.Fatalf("bob received %d messages after the unblock, want 3", len(got))
	}
}
