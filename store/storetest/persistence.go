package storetest

import (
	"testing"
	"time"

	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// testPersistence writes some of everything, closes the store, opens its
// data again and reads it all back.
func testPersistence(t *testing.T, h *harness) {
	if h.reopen == nil {
		t.Skip("no storetest.Reopen given")
	}
	s := h.store(t)
	ctx := t.Context()
	mustCreate(t, s, alice, bob)
	tok, sess, err := s.CreateSession(ctx, store.Session{User: alice, Client: "web", Created: t0, Expires: at(time.Hour)})
	must(t, "CreateSession", err)
	claimIs(t, s, "beta.example", []byte("settled"), t0, store.Claimed, store.Result{})
	must(t, "SettleClaim", s.SettleClaim(ctx, "beta.example", []byte("settled"), delivered2))
	claimIs(t, s, "beta.example", []byte("in-flight"), t0, store.Claimed, store.Result{})
	must(t, "RecordClaim", record(ctx, s, "beta.example", []byte("recorded"), t0, delivered2))
	entry := outboxEntry("o1", alice, carol, t0)
	must(t, "PutOutbox", s.PutOutbox(ctx, entry))
	must(t, "RescheduleOutbox", s.RescheduleOutbox(ctx, entry.ID, at(time.Minute), "busy"))
	entry.Attempts, entry.NextAttempt, entry.LastError = 1, at(time.Minute), "busy"
	must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, bob, "m1", t0), 10))
	listed, err := s.ListOffline(ctx, bob, 0)
	must(t, "ListOffline", err)
	contact := store.Contact{Owner: alice, Contact: carol, Alias: "Carol", State: store.ContactApproved}
	must(t, "PutContact", s.PutContact(ctx, contact))
	approval := store.Approval{Presentity: bob, Watcher: carol, State: store.ApprovalPending, Asked: t0}
	must(t, "SetApproval", s.SetApproval(ctx, approval))
	must(t, "AddBlock", s.AddBlock(ctx, bob, "@gamma.example"))
	subIn := store.SubIn{Presentity: bob, Watcher: carol, Expires: at(time.Hour), Active: true}
	must(t, "PutSubIn", s.PutSubIn(ctx, subIn))
	subOut := subOut(alice, carol, time.Hour)
	must(t, "PutSubOut", s.PutSubOut(ctx, subOut))
	must(t, "SetUserAttr", s.SetUserAttr(ctx, bob, "alias", "Bob"))

	s = h.again(t, s)

	must(t, "Authenticate after reopening", s.Authenticate(ctx, alice, "pw-alice"))
	wantErr(t, "Authenticate with a wrong password after reopening", s.Authenticate(ctx, bob, "pw-alice"), store.ErrBadPassword)
	got, err := s.LookupSession(ctx, tok, t0)
	must(t, "LookupSession after reopening", err)
	if !sameSession(got, sess) {
		t.Fatalf("LookupSession after reopening = %+v, want %+v", got, sess)
	}
	claimIs(t, s, "beta.example", []byte("settled"), t0, store.Settled, delivered2)
	claimIs(t, s, "beta.example", []byte("in-flight"), t0, store.InFlight, store.Result{})
	claimIs(t, s, "beta.example", []byte("recorded"), t0, store.Settled, delivered2)
	es, err := s.DueOutbox(ctx, at(time.Hour), 0)
	must(t, "DueOutbox after reopening", err)
	if len(es) != 1 || !sameEntry(es[0], entry) {
		t.Fatalf("DueOutbox after reopening = %+v, want [%+v]", es, entry)
	}
	ms, err := s.PopOffline(ctx, bob, 0)
	must(t, "PopOffline after reopening", err)
	if len(ms) != 1 || ms[0].Seq != listed[0].Seq || string(ms[0].ID) != "m1" {
		t.Fatalf("PopOffline after reopening = %+v, want %+v", ms, listed)
	}
	if got, err := s.GetContact(ctx, alice, carol); err != nil || got != contact {
		t.Fatalf("GetContact after reopening = %+v, %v; want %+v", got, err, contact)
	}
	if got, err := s.GetApproval(ctx, bob, carol); err != nil || !sameApproval(got, approval) {
		t.Fatalf("GetApproval after reopening = %+v, %v; want %+v", got, err, approval)
	}
	wantBlocked(t, s, bob, erin, true)
	if got, err := s.GetSubIn(ctx, bob, carol); err != nil || !sameSubIn(got, subIn) {
		t.Fatalf("GetSubIn after reopening = %+v, %v; want %+v", got, err, subIn)
	}
	if got, err := s.GetSubOut(ctx, alice, carol); err != nil || !sameSubOut(got, subOut) {
		t.Fatalf("GetSubOut after reopening = %+v, %v; want %+v", got, err, subOut)
	}
	wantUserAttrs(t, s, bob, wire.Attr{Name: "alias", Value: "Bob"})
	// Seqs keep increasing across a reopen.
	must(t, "StoreOffline", s.StoreOffline(ctx, offlineMsg(carol, bob, "m2", t0), 10))
	ms, err = s.ListOffline(ctx, bob, 0)
	must(t, "ListOffline", err)
	if len(ms) != 1 || ms[0].Seq <= listed[0].Seq {
		t.Fatalf("Seq after reopening %+v, want above %d", ms, listed[0].Seq)
	}
}
