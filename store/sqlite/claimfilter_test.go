package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// TestClaimFilterNoFalseNegative: every claim added is reported as maybe
// there, and about 1% of the others at most.
func TestClaimFilterNoFalseNegative(t *testing.T) {
	const n = 200000
	f := newClaimFilter(n)
	for i := range n {
		f.add("beta.example", fmt.Appendf(nil, "id-%d", i), int64(i))
	}
	for i := range n {
		if !f.mayHave("beta.example", fmt.Appendf(nil, "id-%d", i)) {
			t.Fatalf("claim %d forgotten", i)
		}
	}
	fp := 0
	for i := range n {
		if f.mayHave("beta.example", fmt.Appendf(nil, "other-%d", i)) {
			fp++
		}
		if f.mayHave("gamma.example", fmt.Appendf(nil, "id-%d", i)) {
			fp++
		}
	}
	if rate := float64(fp) / (2 * n); rate > 0.02 {
		t.Errorf("false maybe for %.2f%% of new claims, want about 1%%", 100*rate)
	}
}

// TestClaimFilterGenerations: a claim is forgotten only after a prune
// whose cutoff is past it, and only once it is in the previous
// generation.
func TestClaimFilterGenerations(t *testing.T) {
	f := newClaimFilter(0)
	f.add("beta.example", []byte("old"), 100)
	f.pruned(100) // the claim at 100 is not before the cutoff
	f.pruned(50)
	if !f.mayHave("beta.example", []byte("old")) {
		t.Fatal("claim forgotten by prunes that did not delete it")
	}
	f.add("beta.example", []byte("new"), 300)
	f.pruned(200) // deletes "old" (100 < 200): "old" may go, "new" must stay
	f.pruned(200)
	f.pruned(250)
	if !f.mayHave("beta.example", []byte("new")) {
		t.Fatal("claim at 300 forgotten by prunes before 250")
	}
	f.pruned(301)
	f.pruned(301)
	if f.mayHave("beta.example", []byte("new")) || f.mayHave("beta.example", []byte("old")) {
		t.Error("pruned claims still in the filter after two generations")
	}
}

// TestLookupClaimAfterReopen: the filter is rebuilt from the table at
// open, so a claim recorded by an earlier process is found.
func TestLookupClaimAfterReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "imx.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := store.Result{Status: wire.StatusDelivered, Count: 1}
	for i := range 100 {
		done := make(chan error, 1)
		s.RecordClaim(ctx, "beta.example", fmt.Appendf(nil, "m-%d", i), time.Now(), r, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if s, err = Open(ctx, path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 100 {
		state, got, err := s.LookupClaim(ctx, "beta.example", fmt.Appendf(nil, "m-%d", i))
		if err != nil || state != store.Settled || got != r {
			t.Fatalf("LookupClaim m-%d after reopen = %v, %+v, %v", i, state, got, err)
		}
	}
}
