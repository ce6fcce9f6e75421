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
// The filter is a list of generations, oldest first. Claims go into the
// newest; lookups ask them all. A generation holds about one claim for
// every 10 bits, which keeps false "maybe"s near 1%: when the newest is
// that full, a new one twice its size is started (up to maxGenBits), so a
// busy server's filter grows with it rather than filling up (a single
// 1 Mbit generation answered "maybe" for half the new ids after 330,000
// messages, and those reads were 15% of a receiving server's CPU). All
// generations together are capped at maxFilterBits; past that the newest
// takes more claims than it was sized for, which costs reads, never a
// wrong answer.
//
// The filter must never forget a claim that is still in the table. A
// generation is dropped only by a PruneClaims that deleted every claim it
// holds (the latest time added to it is before the cutoff), and never the
// newest. Rows deleted otherwise (released claims) stay in the filter,
// which only costs a read. With the hourly prune and a 24-hour retention,
// a steady server has two generations, each about a day of claims.
type claimFilter struct {
	mu   sync.Mutex
	seed maphash.Seed
	gens []*bloom // oldest first; never empty
	bits uint64   // the bits of all generations
}

const (
	minFilterBits = 1 << 20 // 128 KiB: the first generation of a new store
	maxGenBits    = 1 << 27 // 16 MiB a generation
	maxFilterBits = 1 << 29 // 64 MiB in all: about 50 million claims
	bitsPerClaim  = 10
	filterHashes  = 7 // k for 10 bits per claim: about 1% false "maybe"
)

type bloom struct {
	words []uint64
	mask  uint64 // number of bits − 1 (a power of two)
	n     int    // claims added
	last  int64  // the latest claim time added (Unix µs, as stored)
}

// newBloom makes a generation of nbits bits (a power of two).
func newBloom(nbits uint64) *bloom {
	return &bloom{words: make([]uint64, nbits/64), mask: nbits - 1}
}

// bitsFor is the size of a generation that holds claims, within the
// bounds.
func bitsFor(claims int) uint64 {
	nbits := uint64(minFilterBits)
	for nbits < uint64(claims)*bitsPerClaim && nbits < maxGenBits {
		nbits <<= 1
	}
	return nbits
}

func (b *bloom) full() bool { return uint64(b.n)*bitsPerClaim >= b.mask+1 }

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

// newClaimFilter makes a filter sized for claims.
func newClaimFilter(claims int) *claimFilter {
	b := bitsFor(claims)
	return &claimFilter{seed: maphash.MakeSeed(), gens: []*bloom{newBloom(b)}, bits: b}
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
	f.addHash(h, us)
	f.mu.Unlock()
}

// addHash adds a claim to the newest generation, first starting a new one
// if the newest is full and the cap allows. f.mu is held.
func (f *claimFilter) addHash(h uint64, us int64) {
	cur := f.gens[len(f.gens)-1]
	if cur.full() {
		if next := min(2*(cur.mask+1), maxGenBits); f.bits+next <= maxFilterBits {
			cur = newBloom(next)
			f.gens = append(f.gens, cur)
			f.bits += next
		}
	}
	cur.add(h, us)
}

// pruned is told that every claim made before cutoff (Unix µs) is gone
// from the table: the generations that hold only such claims go, but the
// newest. A newest generation left alone with claims is sealed, and a new
// one sized for 1.5 times its claims takes the next: so it can go at a
// later prune, and the filter follows a server whose traffic falls as
// well as one whose traffic grows.
func (f *claimFilter) pruned(cutoff int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.gens) > 1 && f.gens[0].last < cutoff {
		f.bits -= f.gens[0].mask + 1
		f.gens[0] = nil
		f.gens = f.gens[1:]
	}
	if cur := f.gens[0]; len(f.gens) == 1 && cur.n > 0 {
		next := bitsFor(cur.n * 3 / 2)
		f.gens = append(f.gens, newBloom(next))
		f.bits += next
	}
}

// mayHave reports false if (origin, id) was certainly never added.
func (f *claimFilter) mayHave(origin string, id []byte) bool {
	h := f.hash(origin, id)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.gens {
		if g.has(h) {
			return true
		}
	}
	return false
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
		f.addHash(f.hash(origin, id), us)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.claims = f
	return nil
}
