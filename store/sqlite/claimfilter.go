package sqlite

import (
	"context"
	"hash/maphash"
	"math/bits"
	"sync"
)

// claimFilter answers "certainly never claimed" for most (origin, id)
// pairs without a read of the claims table: a Bloom filter of every claim
// inserted. LookupClaim asks it first; a new message, the common case,
// costs no SQLite read (a read after the writer's commits re-reads pages
// and takes the WAL's locks: about 70 µs a message on the project
// machine). A false "maybe" only costs that read.
//
// The filter must never forget a claim that is still in the table. It
// forgets by generations: claims go into the current generation, lookups
// ask both, and the previous generation is dropped only by a PruneClaims
// that deleted every claim it holds (the latest time added to it is
// before the cutoff); the current one then becomes the previous. Rows
// deleted otherwise (released claims) stay in the filter, which only
// costs a read. Each generation is sized from the previous one's count,
// so that about 1% of lookups of new ids reach the table, up to
// maxFilterBits per generation; a busier server sees more of them, never
// a wrong answer.
type claimFilter struct {
	mu        sync.Mutex
	seed      maphash.Seed
	cur, prev *bloom
}

const (
	minFilterBits = 1 << 20 // 128 KiB
	maxFilterBits = 1 << 28 // 32 MiB
	filterHashes  = 7       // k for 10 bits per claim: about 1% false "maybe"
)

type bloom struct {
	words []uint64
	mask  uint64 // number of bits − 1 (a power of two)
	n     int    // claims added
	last  int64  // the latest claim time added (Unix µs, as stored)
}

func newBloom(claims int) *bloom {
	nbits := uint64(minFilterBits)
	for nbits < uint64(claims)*10 && nbits < maxFilterBits {
		nbits <<= 1
	}
	return &bloom{words: make([]uint64, nbits/64), mask: nbits - 1}
}

// add sets the filterHashes bits of h (double hashing over the two
// halves of a 64-bit hash) for a claim made at us.
func (b *bloom) add(h uint64, us int64) {
	h1, h2 := h, bits.RotateLeft64(h, 32)|1
	for i := range uint64(filterHashes) {
		p := (h1 + i*h2) & b.mask
		b.words[p/64] |= 1 << (p % 64)
	}
	b.n++
	b.last = max(b.last, us)
}

func (b *bloom) has(h uint64) bool {
	h1, h2 := h, bits.RotateLeft64(h, 32)|1
	for i := range uint64(filterHashes) {
		p := (h1 + i*h2) & b.mask
		if b.words[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

func newClaimFilter(claims int) *claimFilter {
	return &claimFilter{seed: maphash.MakeSeed(), cur: newBloom(claims), prev: newBloom(0)}
}

func (f *claimFilter) hash(origin string, id []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.WriteString(origin)
	h.WriteByte(0)
	h.Write(id)
	return h.Sum64()
}

// add records a claim of (origin, id) made at us, before it is written.
func (f *claimFilter) add(origin string, id []byte, us int64) {
	h := f.hash(origin, id)
	f.mu.Lock()
	f.cur.add(h, us)
	f.mu.Unlock()
}

// pruned is told that every claim made before cutoff (Unix µs) is gone
// from the table.
func (f *claimFilter) pruned(cutoff int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prev.last < cutoff {
		f.prev, f.cur = f.cur, newBloom(f.cur.n*3/2)
	}
}

// mayHave reports false if (origin, id) was certainly never added.
func (f *claimFilter) mayHave(origin string, id []byte) bool {
	h := f.hash(origin, id)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur.has(h) || f.prev.has(h)
}

// loadClaimFilter builds the filter from the claims table, at open.
func (s *Store) loadClaimFilter(ctx context.Context) error {
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM claims`).Scan(&n); err != nil {
		return err
	}
	f := newClaimFilter(n)
	rows, err := s.w.QueryContext(ctx, `SELECT origin, id, received FROM claims`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			origin string
			id     []byte
			us     int64
		)
		if err := rows.Scan(&origin, &id, &us); err != nil {
			return err
		}
		f.cur.add(f.hash(origin, id), us)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.claims = f
	return nil
}
