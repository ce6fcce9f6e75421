package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// TestHotCacheFollowsWrites: the cached answers of AccountExists and
// IsBlocked change with every write that changes them.
func TestHotCacheFollowsWrites(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Options{})
	alice, mallory := addr.MustParse("alice@alpha.example"), addr.MustParse("mallory@evil.example")
	exists := func(want bool) {
		t.Helper()
		for range 2 { // the first answer from the database, the second from the cache
			if got, err := s.AccountExists(ctx, alice); err != nil || got != want {
				t.Fatalf("AccountExists = %v, %v; want %v", got, err, want)
			}
		}
	}
	blocked := func(want bool) {
		t.Helper()
		for range 2 {
			if got, err := s.IsBlocked(ctx, alice, mallory); err != nil || got != want {
				t.Fatalf("IsBlocked = %v, %v; want %v", got, err, want)
			}
		}
	}
	exists(false)
	if err := s.CreateAccount(ctx, alice, "password"); err != nil {
		t.Fatal(err)
	}
	exists(true)
	blocked(false)
	if err := s.AddBlock(ctx, alice, "@evil.example"); err != nil {
		t.Fatal(err)
	}
	blocked(true)
	if err := s.RemoveBlock(ctx, alice, "@evil.example"); err != nil {
		t.Fatal(err)
	}
	blocked(false)
	if err := s.AddBlock(ctx, alice, mallory.String()); err != nil {
		t.Fatal(err)
	}
	blocked(true)
	approval := func(want store.ApprovalState) {
		t.Helper()
		for range 2 {
			a, err := s.GetApproval(ctx, alice, mallory)
			switch {
			case want == "" && !errors.Is(err, store.ErrNotFound):
				t.Fatalf("GetApproval = %+v, %v; want not found", a, err)
			case want != "" && (err != nil || a.State != want):
				t.Fatalf("GetApproval = %+v, %v; want %s", a, err, want)
			}
		}
	}
	approval("")
	if _, _, err := s.RequestApproval(ctx, alice, mallory, time.Now()); err != nil {
		t.Fatal(err)
	}
	approval(store.ApprovalPending)
	if err := s.SetApproval(ctx, store.Approval{Presentity: alice, Watcher: mallory, State: store.ApprovalApproved, Asked: time.Now()}); err != nil {
		t.Fatal(err)
	}
	approval(store.ApprovalApproved)
	if err := s.DeleteApproval(ctx, alice, mallory); err != nil {
		t.Fatal(err)
	}
	approval("")
	if err := s.SetApproval(ctx, store.Approval{Presentity: alice, Watcher: mallory, State: store.ApprovalDenied, Asked: time.Now()}); err != nil {
		t.Fatal(err)
	}
	approval(store.ApprovalDenied)
	if err := s.DeleteAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	exists(false)
	blocked(false) // the blocks went with the account
	approval("")   // and so did the approvals
}

// TestSubsOutCacheFollowsWrites: SubsOutTo, answered from memory after its
// first call, sees every write to the subscriptions and the contacts.
func TestSubsOutCacheFollowsWrites(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Options{})
	alice, bob := addr.MustParse("alice@alpha.example"), addr.MustParse("bob@alpha.example")
	dave := addr.MustParse("dave@beta.example")
	for _, a := range []addr.Address{alice, bob} {
		if err := s.CreateAccount(ctx, a, "password"); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(w addr.Address, d time.Duration) {
		t.Helper()
		if err := s.PutSubOut(ctx, store.SubOut{Watcher: w, Presentity: dave, Expires: t0.Add(d), RenewAt: t0.Add(d / 2)}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(what string, expect map[addr.Address]time.Duration, contact map[addr.Address]store.ContactState) {
		t.Helper()
		got, err := s.SubsOutTo(ctx, dave, []addr.Address{alice, bob})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(expect) {
			t.Fatalf("%s: %d subscriptions %+v, want %d", what, len(got), got, len(expect))
		}
		for _, sub := range got {
			d, ok := expect[sub.Watcher]
			if !ok || !sub.Expires.Equal(t0.Add(d)) || sub.Contact != contact[sub.Watcher] {
				t.Fatalf("%s: %+v, want expiry +%v and contact %q", what, sub, d, contact[sub.Watcher])
			}
		}
	}
	put(alice, time.Hour)
	want("first", map[addr.Address]time.Duration{alice: time.Hour}, nil)
	put(alice, 2*time.Hour) // a renewal, updated in memory
	want("renewed", map[addr.Address]time.Duration{alice: 2 * time.Hour}, nil)
	put(bob, time.Hour) // a new one
	want("bob's", map[addr.Address]time.Duration{alice: 2 * time.Hour, bob: time.Hour}, nil)
	if err := s.PutContact(ctx, store.Contact{Owner: bob, Contact: dave, State: store.ContactAsked}); err != nil {
		t.Fatal(err)
	}
	want("bob's contact", map[addr.Address]time.Duration{alice: 2 * time.Hour, bob: time.Hour}, map[addr.Address]store.ContactState{bob: store.ContactAsked})
	if err := s.SetContactState(ctx, bob, dave, store.ContactApproved); err != nil {
		t.Fatal(err)
	}
	put(bob, 3*time.Hour)
	want("approved", map[addr.Address]time.Duration{alice: 2 * time.Hour, bob: 3 * time.Hour}, map[addr.Address]store.ContactState{bob: store.ContactApproved})
	if err := s.DeleteSubOut(ctx, alice, dave); err != nil {
		t.Fatal(err)
	}
	want("alice's gone", map[addr.Address]time.Duration{bob: 3 * time.Hour}, map[addr.Address]store.ContactState{bob: store.ContactApproved})
	if n, err := s.PruneSubsOut(ctx, t0.Add(4*time.Hour)); err != nil || n != 1 {
		t.Fatalf("PruneSubsOut = %d, %v", n, err)
	}
	want("pruned", nil, nil)
}

// TestSubsInCacheFollowsWrites: ActiveSubsIn, answered from memory after its
// first call, sees every write to the granted subscriptions.
func TestSubsInCacheFollowsWrites(t *testing.T) {
	ctx := context.Background()
	s, alice := storeWithAlice(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	w := func(s string) addr.Address { return addr.MustParse(s) }
	put := func(watcher string, d time.Duration, active bool) {
		t.Helper()
		if err := s.PutSubIn(ctx, store.SubIn{Presentity: alice, Watcher: w(watcher), Expires: t0.Add(d), Active: active}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(what string, at time.Duration, expect ...string) {
		t.Helper()
		for range 2 { // from the database or a fresh load, then from memory
			got, err := s.ActiveSubsIn(ctx, alice, t0.Add(at))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, sub := range got {
				names = append(names, sub.Watcher.String())
			}
			if fmt.Sprint(names) != fmt.Sprint(expect) {
				t.Fatalf("%s: %v, want %v", what, names, expect)
			}
		}
	}
	put("x@gamma.example", time.Hour, true)
	put("b@beta.example", time.Hour, true)
	want("first", 0, "b@beta.example", "x@gamma.example")
	put("a@beta.example", time.Hour, false) // pending: not active
	want("pending one", 0, "b@beta.example", "x@gamma.example")
	if err := s.SetSubInActive(ctx, alice, w("a@beta.example"), true); err != nil {
		t.Fatal(err)
	}
	want("approved", 0, "a@beta.example", "b@beta.example", "x@gamma.example")
	put("b@beta.example", 3*time.Hour, true) // a renewal, updated in memory
	want("after 2h", 2*time.Hour, "b@beta.example")
	if err := s.DeleteSubIn(ctx, alice, w("b@beta.example")); err != nil {
		t.Fatal(err)
	}
	want("b gone", 0, "a@beta.example", "x@gamma.example")
	if n, err := s.PruneSubsIn(ctx, t0.Add(2*time.Hour)); err != nil || n != 2 {
		t.Fatalf("PruneSubsIn = %d, %v", n, err)
	}
	want("pruned", 0)
}

// TestSubsCachesConcurrent: lookups while renewals update the cached
// subscriptions in place (run with -race).
func TestSubsCachesConcurrent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Options{})
	alice := addr.MustParse("alice@alpha.example")
	dave := addr.MustParse("dave@beta.example")
	if err := s.CreateAccount(ctx, alice, "password"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	renew := func(i int) error {
		d := time.Duration(i+1) * time.Minute
		if err := s.PutSubOut(ctx, store.SubOut{Watcher: alice, Presentity: dave, Expires: t0.Add(d), RenewAt: t0.Add(d / 2)}); err != nil {
			return err
		}
		return s.PutSubIn(ctx, store.SubIn{Presentity: alice, Watcher: dave, Expires: t0.Add(d), Active: true})
	}
	if err := renew(0); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errs := make(chan error, 3)
	go func() {
		defer close(done)
		for i := range 50 {
			if err := renew(i); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range 2 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				if got, err := s.SubsOutTo(ctx, dave, []addr.Address{alice}); err != nil || len(got) != 1 {
					errs <- fmt.Errorf("SubsOutTo = %v, %v", got, err)
					return
				}
				if got, err := s.ActiveSubsIn(ctx, alice, t0); err != nil || len(got) != 1 {
					errs <- fmt.Errorf("ActiveSubsIn = %v, %v", got, err)
					return
				}
			}
		}()
	}
	<-done
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestCachedNoApproval: a missing approval answered from the cache is
// still ErrNotFound, and its text names both addresses.
func TestCachedNoApproval(t *testing.T) {
	s := newStore(t, Options{})
	bob, carol := addr.MustParse("bob@beta.example"), addr.MustParse("carol@gamma.example")
	for i := range 2 { // the second answer comes from the cache
		_, err := s.GetApproval(t.Context(), bob, carol)
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetApproval %d: %v, want ErrNotFound", i, err)
		}
		if msg := err.Error(); !strings.Contains(msg, bob.String()) || !strings.Contains(msg, carol.String()) {
			t.Errorf("GetApproval %d: %q does not name both addresses", i, msg)
		}
	}
}

// TestUserAttrsCacheFollowsWrites: GetUserAttrs, answered from memory after
// its first call, sees every write to the attributes, and what it returns
// is the caller's to change.
func TestUserAttrsCacheFollowsWrites(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Options{})
	alice := addr.MustParse("alice@alpha.example")
	want := func(what string, expect ...wire.Attr) {
		t.Helper()
		for range 2 { // from the database, then from memory
			got, err := s.GetUserAttrs(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(expect) {
				t.Fatalf("%s: %v, want %v", what, got, expect)
			}
			if len(got) > 0 {
				got[0].Value = "changed by the caller"
			}
		}
	}
	set := func(name, value string) {
		t.Helper()
		if err := s.SetUserAttr(ctx, alice, name, value); err != nil {
			t.Fatal(err)
		}
	}
	want("no account")
	if err := s.CreateAccount(ctx, alice, "password"); err != nil {
		t.Fatal(err)
	}
	want("new account")
	set("alias", "Alice")
	want("alias set", wire.Attr{Name: "alias", Value: "Alice"})
	set("alias", "Al")
	set("max-message-length", "100")
	want("alias changed", wire.Attr{Name: "alias", Value: "Al"}, wire.Attr{Name: "max-message-length", Value: "100"})
	set("alias", "")
	want("alias cleared", wire.Attr{Name: "max-message-length", Value: "100"})
	if err := s.DeleteAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	want("account deleted")
	if err := s.CreateAccount(ctx, alice, "password"); err != nil {
		t.Fatal(err)
	}
	want("account made again")
}

// TestSubsInCacheDropsLongList: a new subscription to a presentity whose
// cached list is long drops the list instead of moving its rows, and the
// next ActiveSubsIn reads it again, the new one included; a renewal still
// updates the list in place.
func TestSubsInCacheDropsLongList(t *testing.T) {
	ctx := context.Background()
	s, alice := storeWithAlice(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	watcher := func(i int) addr.Address { return addr.MustParse(fmt.Sprintf("w%05d@beta.example", i)) }
	put := func(i int, d time.Duration) {
		t.Helper()
		if err := s.PutSubIn(ctx, store.SubIn{Presentity: alice, Watcher: watcher(i), Expires: t0.Add(d), Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	cached := func() bool {
		s.hot.mu.Lock()
		defer s.hot.mu.Unlock()
		_, ok := s.hot.subsIn.rows[alice]
		return ok
	}
	active := func(at time.Duration) int {
		t.Helper()
		got, err := s.ActiveSubsIn(ctx, alice, t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	const n = maxInsertInPlace
	for i := 0; i < 2*n; i += 2 {
		put(i, time.Hour)
	}
	if got := active(0); got != n || !cached() {
		t.Fatalf("%d active, cached %t; want %d, cached", got, cached(), n)
	}
	put(0, 3*time.Hour) // a renewal: in place
	if !cached() || active(2*time.Hour) != 1 {
		t.Fatalf("after a renewal: cached %t, %d active after 2h; want cached, 1", cached(), active(2*time.Hour))
	}
	put(1, 3*time.Hour) // a new watcher: the list is dropped
	if cached() {
		t.Fatal("a new subscription into a list of maxInsertInPlace kept the list")
	}
	if got := active(2 * time.Hour); got != 2 || !cached() {
		t.Fatalf("after a new watcher: %d active after 2h, cached %t; want 2 (read again), cached", got, cached())
	}
	if got := active(0); got != n+1 {
		t.Fatalf("%d active, want %d", got, n+1)
	}
}

// storeWithAlice returns a new store with the account alice@alpha.example.
func storeWithAlice(t *testing.T) (*Store, addr.Address) {
	t.Helper()
	s := newStore(t, Options{})
	alice := addr.MustParse("alice@alpha.example")
	if err := s.CreateAccount(context.Background(), alice, "password"); err != nil {
		t.Fatal(err)
	}
	return s, alice
}
