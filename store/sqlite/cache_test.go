package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
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
