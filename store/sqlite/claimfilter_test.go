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

// addAndCheck adds n claims to f and checks that f reports each of them.
func addAndCheck(t *testing.T, f *claimFilter, n int) {
	t.Helper()
	for i := range n {
		f.add("beta.example", fmt.Appendf(nil, "id-%d", i), int64(i))
	}
	for i := range n {
		if !f.mayHave("beta.example", fmt.Appendf(nil, "id-%d", i)) {
			t.Fatalf("claim %d forgotten", i)
		}
	}
}

// TestClaimFilterNoFalseNegative: every claim added is reported as maybe
// there, and about 1% of the others at most.
func TestClaimFilterNoFalseNegative(t *testing.T) {
	const n = 200000
	f := newClaimFilter(n)
	addAndCheck(t, f, n)
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

// TestClaimFilterGrows: a filter made for an empty table grows with the
// claims, so that false "maybe"s stay near 1% long after its first
// generation's 100,000, and it still forgets nothing; a prune then drops
// the generations it emptied, but the newest.
func TestClaimFilterGrows(t *testing.T) {
	const n = 500000
	f := newClaimFilter(0)
	addAndCheck(t, f, n)
	if len(f.gens) < 3 {
		t.Fatalf("%d generations after %d claims, want the filter to have grown", len(f.gens), n)
	}
	fp := 0
	for i := range n {
		if f.mayHave("beta.example", fmt.Appendf(nil, "other-%d", i)) {
			fp++
		}
	}
	t.Logf("%d generations, %d bits, false maybe %.2f%%", len(f.gens), f.bits, 100*float64(fp)/n)
	if rate := float64(fp) / n; rate > 0.03 {
		t.Errorf("false maybe for %.2f%% of new claims with %d generations, want a few %%", 100*rate, len(f.gens))
	}
	var sum uint64
	for _, g := range f.gens {
		sum += g.mask + 1
	}
	if sum != f.bits {
		t.Errorf("bits = %d, the generations hold %d", f.bits, sum)
	}
	newest := f.gens[len(f.gens)-1]
	f.pruned(n) // every claim is before the cutoff
	if len(f.gens) != 2 || f.gens[0] != newest || f.gens[1].n != 0 {
		t.Errorf("after a prune past every claim: %d generations, want the newest and a new empty one", len(f.gens))
	}
}

// TestClaimFilterCapped: the generations never hold more than
// maxFilterBits together; past that the newest takes the claims.
func TestClaimFilterCapped(t *testing.T) {
	f := newClaimFilter(0)
	f.gens[0].n = minFilterBits / bitsPerClaim // full
	f.bits = maxFilterBits - minFilterBits     // as if older generations took the rest
	f.add("beta.example", []byte("x"), 1)
	if len(f.gens) != 1 || f.bits != maxFilterBits-minFilterBits {
		t.Fatalf("a generation was added past the cap: %d generations, %d bits", len(f.gens), f.bits)
	}
	if !f.mayHave("beta.example", []byte("x")) {
		t.Fatal("claim added past the cap forgotten")
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

// TestClaimStats: the Store counts the look-ups of ids that the filter
// answers and those that read the table, and its group commits; a new
// store's filter is one generation of 128 KiB.
func TestClaimStats(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{})
	if bytes, gens := s.ClaimFilterSize(); bytes != 128<<10 || gens != 1 {
		t.Errorf("a new store's filter: %d bytes, %d generations; want 128 KiB, 1", bytes, gens)
	}
	st := &s.Stats
	for i := range 10 {
		if state, _, err := s.LookupClaim(ctx, "beta.example", fmt.Appendf(nil, "new-%d", i)); err != nil || state != 0 {
			t.Fatalf("LookupClaim of a new id: %v, %v", state, err)
		}
	}
	if st.ClaimLookups.Load() != 10 || st.ClaimReads.Load() > 1 {
		t.Errorf("after 10 new ids: %d look-ups, %d reads; want 10 and (almost surely) 0", st.ClaimLookups.Load(), st.ClaimReads.Load())
	}
	commits, reads := st.Commits.Load(), st.ClaimReads.Load()
	done := make(chan error, 1)
	s.RecordClaim(ctx, "beta.example", []byte("seen"), time.Now(), store.Result{Status: wire.StatusDelivered, Count: 1}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.Commits.Load() != commits+1 || st.Writes.Load() < st.Commits.Load() {
		t.Errorf("a record: commits %d → %d, writes %d", commits, st.Commits.Load(), st.Writes.Load())
	}
	if state, _, err := s.LookupClaim(ctx, "beta.example", []byte("seen")); err != nil || state != store.Settled {
		t.Fatalf("LookupClaim of a recorded id: %v, %v", state, err)
	}
	if st.ClaimReads.Load() != reads+1 {
		t.Errorf("a recorded id: reads %d → %d, want one more", reads, st.ClaimReads.Load())
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
