package dialback

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// SecretSize is the size in bytes of the secrets Begin coins: 256 bits
	// from crypto/rand. 128 bits would already be out of reach of guessing;
	// 256 costs nothing measurable, keeps a margin when many verifications
	// are pending at once (an attacker's guess may hit any of them), and
	// matches the key size.
	SecretSize = 32

	// MaxDomainLen is the longest domain Begin accepts, in bytes: the
	// longest DNS name in text form.
	MaxDomainLen = 253

	// DefaultSecretLifetime is how long a secret stays valid when
	// VerifierConfig.SecretLifetime is zero. Begin should run once
	// Connection 2 is up, just before the secret is sent, so the lifetime
	// covers B's check and its reply on Connection 1, not A's DNS lookup
	// and connect.
	DefaultSecretLifetime = 10 * time.Second

	// DefaultMaxPerConn is the default bound on verifications pending on
	// one Connection 1. A connection serving several domains is verified
	// once per domain pair (§4.3), and pairs may be verified concurrently;
	// 16 in flight is plenty for pipelining and caps how many connections
	// one peer connection can make A open.
	DefaultMaxPerConn = 16

	// DefaultMaxPerAddr is the default bound on verifications pending for
	// one peer address (an IPv4 address, or an IPv6 /64 since one host
	// usually holds a whole /64). It stops one host from filling the table
	// by opening many connections.
	DefaultMaxPerAddr = 64

	// DefaultMaxPending is the default bound on all pending verifications.
	// At the 2,000 new domain pairs per second the server is sized for, a
	// verification that completes within a second leaves about 2,000
	// pending; 16,384 leaves eight times that headroom for slow peers and
	// costs a few megabytes at most.
	DefaultMaxPending = 16384
)

// ConnKey identifies Connection 1 on the receiving server (A): an opaque,
// comparable value chosen by the connection layer.
type ConnKey struct {
	// ID tells A's connections apart; it must not be reused while a
	// verification on the old connection could still be pending (a
	// process-wide counter does).
	ID uint64

	// Addr is the remote IP address of Connection 1. Verifications are
	// bounded per address: IPv4 addresses (IPv4-mapped IPv6 included)
	// count individually, IPv6 addresses by /64, and the zero Addr forms
	// one bucket of its own.
	Addr netip.Addr
}

// VerifierConfig tunes a Verifier. The zero value gives the documented
// defaults.
type VerifierConfig struct {
	// SecretLifetime is how long after Begin a secret can complete its
	// verification. Zero means DefaultSecretLifetime; negative is an
	// error.
	SecretLifetime time.Duration

	// MaxPerConn bounds the verifications pending on one connection.
	// Zero means DefaultMaxPerConn; negative is an error.
	MaxPerConn int

	// MaxPerAddr bounds the verifications pending for one peer address
	// (see ConnKey.Addr). Zero means DefaultMaxPerAddr; negative is an
	// error.
	MaxPerAddr int

	// MaxPending bounds all pending verifications. It also bounds the
	// used secrets remembered to report replays. Zero means
	// DefaultMaxPending; negative is an error.
	MaxPending int

	// Now returns the current time. Nil means time.Now. Expired entries
	// are reclaimed in the order they were made, which assumes a clock
	// that does not jump backwards; expiry itself is checked entry by
	// entry, so a clock that does only delays reclamation.
	Now func() time.Time

	// Rand is the source of secrets. Nil means crypto/rand.Reader. Tests
	// may inject a deterministic reader; a server must not.
	Rand io.Reader
}

// Verifier keeps the verifications a receiving server (A in §6.3.1) has
// started and checks the secrets that come back. Begin coins a secret for a
// Connection 1 and a domain pair; Complete accepts that secret once, on
// that connection, for that pair, within its lifetime; Cancel forgets a
// connection that closed; Sweep reclaims expired entries.
//
// Domain pairs are named in the direction of Connection 1, as everywhere in
// this package: from is the domain the peer claims (B), to is A's own
// domain.
//
// A Verifier has no goroutine. It is safe for concurrent use; all methods
// take one mutex for a few map and slice operations. Make one with
// NewVerifier; the zero Verifier is not usable.
type Verifier struct {
	lifetime   time.Duration
	maxPerConn int
	maxPerAddr int
	maxPending int
	now        func() time.Time
	rand       io.Reader

	mu      sync.Mutex
	conns   map[ConnKey]*connEntries
	perAddr map[netip.Addr]int // pending verifications by address bucket
	pending int                // pending verifications in all
	used    int                // used secrets remembered in all

	// queue holds every entry in the order it was made, which is the
	// order it expires in. Entries dropped early (completed and
	// forgotten, cancelled) stay in it, marked dropped, until they reach
	// the front or the queue is compacted; dropped counts them.
	queue   []*entry
	head    int
	dropped int
}

// connEntries is what one connection has in the table.
type connEntries struct {
	pending []*entry // verifications begun and not yet completed
	used    []*entry // secrets already used, oldest first, for ErrReplayed
}

type entryState uint8

const (
	statePending entryState = iota
	stateUsed
	stateDropped
)

// entry is one verification.
type entry struct {
	conn     ConnKey
	from, to string
	secret   [SecretSize]byte
	expires  time.Time
	state    entryState
}

// NewVerifier returns a Verifier configured by cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	for _, c := range []struct {
		name string
		neg  bool
	}{
		{"SecretLifetime", cfg.SecretLifetime < 0},
		{"MaxPerConn", cfg.MaxPerConn < 0},
		{"MaxPerAddr", cfg.MaxPerAddr < 0},
		{"MaxPending", cfg.MaxPending < 0},
	} {
		if c.neg {
			return nil, fmt.Errorf("dialback: VerifierConfig.%s is negative", c.name)
		}
	}
	v := &Verifier{
		lifetime:   cmp.Or(cfg.SecretLifetime, DefaultSecretLifetime),
		maxPerConn: cmp.Or(cfg.MaxPerConn, DefaultMaxPerConn),
		maxPerAddr: cmp.Or(cfg.MaxPerAddr, DefaultMaxPerAddr),
		maxPending: cmp.Or(cfg.MaxPending, DefaultMaxPending),
		now:        cfg.Now,
		rand:       cfg.Rand,
		conns:      make(map[ConnKey]*connEntries),
		perAddr:    make(map[netip.Addr]int),
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.rand == nil {
		v.rand = rand.Reader
	}
	return v, nil
}

// Begin starts a verification (§6.3.1 step 2, on A): the peer on
// Connection 1, conn, claims domain from and asks to talk to A's domain to.
// It returns a fresh secret of SecretSize bytes, which A sends to B on
// Connection 2 together with B's token and the pair.
//
// Begin fails with ErrBadDomain if a domain is empty or longer than
// MaxDomainLen, with ErrTooManyPending if a bound is reached (nothing is
// recorded then), and with the reader's error if no secret could be read.
// Several verifications may be pending for the same connection and pair;
// each secret completes only its own.
func (v *Verifier) Begin(conn ConnKey, from, to string) (secret []byte, err error) {
	if err := checkDomain("from", from); err != nil {
		return nil, err
	}
	if err := checkDomain("to", to); err != nil {
		return nil, err
	}
	// Copies, so that a domain sliced from a large frame does not keep the
	// frame alive for the secret's lifetime.
	e := &entry{conn: conn, from: strings.Clone(from), to: strings.Clone(to)}
	if _, err := io.ReadFull(v.rand, e.secret[:]); err != nil {
		return nil, fmt.Errorf("dialback: coin secret: %w", err)
	}
	bucket := addrBucket(conn.Addr)
	now := v.now()
	e.expires = now.Add(v.lifetime)

	v.mu.Lock()
	defer v.mu.Unlock()
	v.expire(now)
	ce := v.conns[conn]
	switch {
	case ce != nil && len(ce.pending) >= v.maxPerConn:
		return nil, fmt.Errorf("%w: %d on connection %d, limit %d", ErrTooManyPending, len(ce.pending), conn.ID, v.maxPerConn)
	case v.perAddr[bucket] >= v.maxPerAddr:
		return nil, fmt.Errorf("%w: %d from address %v, limit %d", ErrTooManyPending, v.perAddr[bucket], bucket, v.maxPerAddr)
	case v.pending >= v.maxPending:
		return nil, fmt.Errorf("%w: %d in all, limit %d", ErrTooManyPending, v.pending, v.maxPending)
	}
	if ce == nil {
		ce = &connEntries{}
		v.conns[conn] = ce
	}
	ce.pending = append(ce.pending, e)
	v.perAddr[bucket]++
	v.pending++
	v.queue = append(v.queue, e)
	return append([]byte(nil), e.secret[:]...), nil
}

// Complete checks a secret that came back on Connection 1 (§6.3.1 steps 4
// and 5, on A). It returns nil only if the secret was coined by Begin for
// this same connection and this same domain pair, has not been used, and
// has not expired; the verification is then consumed and the caller may
// treat the pair as authenticated on Connection 1.
//
// Otherwise it fails with ErrUnsolicited (nothing pending on conn),
// ErrWrongSecret (the secret matches nothing pending on conn), ErrReplayed
// (the secret was already used), ErrExpired (the secret is too old; the
// verification is dropped), or ErrWrongPair (the secret was coined for
// another pair; the verification is consumed). Secrets are compared in
// constant time.
func (v *Verifier) Complete(conn ConnKey, from, to string, secret []byte) error {
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	ce := v.conns[conn]
	if ce == nil {
		return fmt.Errorf("%w: connection %d, pair %q -> %q", ErrUnsolicited, conn.ID, from, to)
	}
	var match *entry
	for _, e := range ce.pending {
		if subtle.ConstantTimeCompare(e.secret[:], secret) == 1 {
			match = e
			break
		}
	}
	if match == nil {
		for _, e := range ce.used {
			if subtle.ConstantTimeCompare(e.secret[:], secret) == 1 {
				return fmt.Errorf("%w: connection %d, pair %q -> %q", ErrReplayed, conn.ID, from, to)
			}
		}
		if len(ce.pending) == 0 {
			return fmt.Errorf("%w: connection %d, pair %q -> %q", ErrUnsolicited, conn.ID, from, to)
		}
		return fmt.Errorf("%w: connection %d, pair %q -> %q, %d-byte secret, %d pending", ErrWrongSecret, conn.ID, from, to, len(secret), len(ce.pending))
	}
	if !now.Before(match.expires) {
		v.drop(ce, match)
		return fmt.Errorf("%w: secret for connection %d, pair %q -> %q, lifetime %v", ErrExpired, conn.ID, from, to, v.lifetime)
	}
	if match.from != from || match.to != to {
		v.consume(ce, match)
		return fmt.Errorf("%w: connection %d, presented for %q -> %q, coined for %q -> %q", ErrWrongPair, conn.ID, from, to, match.from, match.to)
	}
	v.consume(ce, match)
	return nil
}

// Cancel forgets every verification on conn, pending or used. Call it when
// Connection 1 closes: its verifications can no longer complete.
func (v *Verifier) Cancel(conn ConnKey) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ce := v.conns[conn]
	if ce == nil {
		return
	}
	for len(ce.pending) > 0 {
		v.drop(ce, ce.pending[len(ce.pending)-1])
	}
	for len(ce.used) > 0 {
		v.drop(ce, ce.used[len(ce.used)-1])
	}
	v.compact()
}

// Sweep removes the entries that expired by now and returns how many of
// them were pending verifications (dial-backs that never came back). Begin
// also reclaims expired entries, so Sweep only returns memory sooner; a
// server calls it from a ticker it already has, every few seconds.
func (v *Verifier) Sweep(now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.expire(now)
}

// Pending returns the number of verifications begun and neither completed,
// cancelled nor reclaimed.
func (v *Verifier) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pending
}

// expire drops the entries at the front of the queue that expired by now
// and returns how many of them were pending. v.mu must be held.
func (v *Verifier) expire(now time.Time) int {
	n := 0
	for v.head < len(v.queue) {
		e := v.queue[v.head]
		if e.state != stateDropped && now.Before(e.expires) {
			break
		}
		if e.state == statePending {
			n++
		}
		if e.state != stateDropped {
			v.drop(v.conns[e.conn], e)
		}
		v.queue[v.head] = nil
		v.head++
		v.dropped--
	}
	if v.head > 0 && v.head*2 >= len(v.queue) {
		// Reuse the consumed front rather than let the array grow.
		k := copy(v.queue, v.queue[v.head:])
		clear(v.queue[k:])
		v.queue = v.queue[:k]
		v.head = 0
	}
	v.compact()
	return n
}

// consume moves a pending entry to the connection's used list, so that a
// replay is recognised until the secret would have expired. Memory for
// this is bounded: at most MaxPerConn used entries per connection (the
// oldest is forgotten) and MaxPending in all (beyond that, none is kept).
// v.mu must be held.
func (v *Verifier) consume(ce *connEntries, e *entry) {
	if v.used >= v.maxPending {
		v.drop(ce, e)
		return
	}
	v.unlinkPending(ce, e)
	e.state = stateUsed
	ce.used = append(ce.used, e)
	v.used++
	if len(ce.used) > v.maxPerConn {
		v.drop(ce, ce.used[0])
	}
}

// drop removes an entry from its connection and the counters, and marks it
// dropped for the queue. It deletes the connection's record once empty.
// v.mu must be held.
func (v *Verifier) drop(ce *connEntries, e *entry) {
	switch e.state {
	case statePending:
		v.unlinkPending(ce, e)
	case stateUsed:
		ce.used = deleteEntry(ce.used, e)
		v.used--
	case stateDropped:
		return
	}
	e.state = stateDropped
	v.dropped++
	if len(ce.pending) == 0 && len(ce.used) == 0 {
		delete(v.conns, e.conn)
	}
}

// unlinkPending removes a pending entry from its connection's pending list
// and the pending counters. v.mu must be held.
func (v *Verifier) unlinkPending(ce *connEntries, e *entry) {
	ce.pending = deleteEntry(ce.pending, e)
	b := addrBucket(e.conn.Addr)
	if v.perAddr[b] <= 1 {
		delete(v.perAddr, b)
	} else {
		v.perAddr[b]--
	}
	v.pending--
}

// compact rebuilds the queue without its dropped entries once they are
// at least half of it, so that connections opened and cancelled in a
// burst cannot grow it beyond twice the live entries. v.mu must be held.
func (v *Verifier) compact() {
	live := len(v.queue) - v.head
	if v.dropped < 64 || v.dropped*2 < live {
		return
	}
	q := v.queue[:0]
	for _, e := range v.queue[v.head:] {
		if e.state != stateDropped {
			q = append(q, e)
		}
	}
	clear(v.queue[len(q):])
	v.queue = q
	v.head = 0
	v.dropped = 0
}

// deleteEntry removes e from s, keeping the order.
func deleteEntry(s []*entry, e *entry) []*entry {
	if i := slices.Index(s, e); i >= 0 {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// addrBucket maps a peer address to the key its verifications are counted
// under: the address itself for IPv4, its /64 for IPv6, without zone.
func addrBucket(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// checkDomain reports ErrBadDomain for an empty or overlong domain. The
// domain is not quoted in the error when it is too long to log.
func checkDomain(which, d string) error {
	switch {
	case d == "":
		return fmt.Errorf("%w: empty %s domain", ErrBadDomain, which)
	case len(d) > MaxDomainLen:
		return fmt.Errorf("%w: %s domain of %d bytes, max %d", ErrBadDomain, which, len(d), MaxDomainLen)
	}
	return nil
}
