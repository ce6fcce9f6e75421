package dialback

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"
	"time"
)

// The token layout is in the package documentation, under Token format;
// TestTokenLayout pins it.
const (
	// TokenSize is the length in bytes of every token this package mints.
	TokenSize = 1 + 8 + 8 + sha256.Size

	// KeySize is the size in bytes of a token key from NewKey, and the
	// minimum NewIssuer accepts.
	KeySize = 32

	// DefaultMaxAge is how long a token is accepted after it was minted
	// when IssuerConfig.MaxAge is zero. It must cover A's whole dial-back:
	// receiving the token, resolving B in DNS, connecting to B (with TLS),
	// and sending the token on Connection 2.
	DefaultMaxAge = 60 * time.Second

	// futureSkew is how far in the future a token's mint time may lie and
	// still be accepted: tokens are checked by the server that minted them
	// or, in a cluster sharing the key, by a sibling whose clock may be a
	// little ahead.
	futureSkew = 5 * time.Second

	tokenVersion = 1
	tokenLabel   = "imx dialback token\x00"

	// maxPooledBuf bounds the scratch buffer kept in the MAC pool, so that
	// one enormous domain string does not pin memory.
	maxPooledBuf = 1024
)

// IssuerConfig tunes an Issuer. The zero value gives the documented
// defaults.
type IssuerConfig struct {
	// MaxAge is how long after minting Check accepts a token.
	// Zero means DefaultMaxAge; negative is an error.
	MaxAge time.Duration

	// Now returns the current time. Nil means time.Now. Tests inject a
	// fake clock here.
	Now func() time.Time
}

// Issuer mints and checks dial-back tokens: it runs on the originating
// server, B in §6.3.1. A token names one of B's outgoing connections
// (Connection 1) and is bound, by an HMAC under B's key, to the domain pair
// of that connection and to its mint time.
//
// The domain pair is always named in the direction of Connection 1, the
// same on both servers and in every function of this package:
//
//   - from is the originating domain: the domain B claims, which A
//     authenticates. On B's side this is B's own domain.
//   - to is the receiving domain: the domain A serves. On B's side this is
//     the remote domain B connected to.
//
// Domains are compared byte for byte: pass them in the canonical form of
// package addr (lower-case A-labels) on every call.
//
// An Issuer keeps no state besides its key and is safe for concurrent use.
// Make one with NewIssuer; the zero Issuer is not usable.
type Issuer struct {
	maxAge time.Duration
	now    func() time.Time
	macs   sync.Pool // of *macState, each with its own keyed HMAC
}

// macState is one keyed HMAC with its scratch space, reused through a pool
// so that minting and checking do not allocate.
type macState struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// NewIssuer returns an Issuer that MACs tokens with key, which must be at
// least KeySize bytes of secret randomness (see NewKey and
// LoadOrCreateKey). The key is copied. Servers of one domain that share a
// key can check each other's tokens, which matters when A's Connection 2
// reaches a different node of B's cluster than the one that owns
// Connection 1.
func NewIssuer(key []byte, cfg IssuerConfig) (*Issuer, error) {
	if len(key) < KeySize {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrBadKey, len(key), KeySize)
	}
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("dialback: IssuerConfig.MaxAge is negative (%v)", cfg.MaxAge)
	}
	is := &Issuer{maxAge: cfg.MaxAge, now: cfg.Now}
	if is.maxAge == 0 {
		is.maxAge = DefaultMaxAge
	}
	if is.now == nil {
		is.now = time.Now
	}
	k := bytes.Clone(key)
	is.macs.New = func() any {
		return &macState{h: hmac.New(sha256.New, k)}
	}
	return is, nil
}

// Issue mints the token that B sends to A on Connection 1 (§6.3.1 step 1).
// from is B's own domain, to the domain B connected to, and connID B's
// identifier for Connection 1: whatever lets B find that connection again
// when the token comes back on Connection 2 (in a cluster, it may encode the
// node as well). The result is TokenSize bytes and new on every call.
func (is *Issuer) Issue(from, to string, connID uint64) []byte {
	issued := uint64(is.now().UnixNano())
	tok := make([]byte, 0, TokenSize)
	tok = append(tok, tokenVersion)
	tok = binary.BigEndian.AppendUint64(tok, connID)
	tok = binary.BigEndian.AppendUint64(tok, issued)
	ms := is.mac(from, to, connID, issued)
	tok = append(tok, ms.sum[:]...)
	is.macs.Put(ms)
	return tok
}

// Check verifies a token that A presented to B on Connection 2 (§6.3.1
// step 3) and returns the connID it was minted for. from and to are the
// domain pair A's request names, in the direction of Connection 1: from is
// B's own domain, to is A's domain, exactly as they were passed to Issue.
//
// Check fails with ErrBadToken if the token is malformed, was not minted
// with this key, was altered, or was minted for another pair (including the
// same pair swapped), and with ErrExpired if it is older than MaxAge or
// stamped more than 5 seconds in the future.
//
// Success proves only that B minted this token for this pair. Before
// sending the secret back, the caller must still check that connection
// connID exists, is one B opened, and leads to domain to; and it must send
// the secret on that connection and nowhere else.
func (is *Issuer) Check(token []byte, from, to string) (connID uint64, err error) {
	if len(token) != TokenSize {
		return 0, fmt.Errorf("%w: %d bytes, want %d", ErrBadToken, len(token), TokenSize)
	}
	if token[0] != tokenVersion {
		return 0, fmt.Errorf("%w: version %d, want %d", ErrBadToken, token[0], tokenVersion)
	}
	connID = binary.BigEndian.Uint64(token[1:9])
	issued := binary.BigEndian.Uint64(token[9:17])
	ms := is.mac(from, to, connID, issued)
	ok := hmac.Equal(token[17:], ms.sum[:])
	is.macs.Put(ms)
	if !ok {
		return 0, fmt.Errorf("%w: MAC mismatch for %q -> %q (forged, altered, another key or another domain pair)", ErrBadToken, from, to)
	}
	// The mint time is trusted only now that the MAC has covered it.
	age := is.now().Sub(time.Unix(0, int64(issued)))
	if age > is.maxAge {
		return 0, fmt.Errorf("%w: token for %q -> %q minted %v ago, max age %v", ErrExpired, from, to, age, is.maxAge)
	}
	if age < -futureSkew {
		return 0, fmt.Errorf("%w: token for %q -> %q minted %v in the future", ErrExpired, from, to, -age)
	}
	return connID, nil
}

// mac computes the MAC of a token's fields into the sum of a pooled
// macState, which the caller must return to the pool.
func (is *Issuer) mac(from, to string, connID, issued uint64) *macState {
	ms := is.macs.Get().(*macState)
	b := ms.buf[:0]
	b = append(b, tokenLabel...)
	b = append(b, tokenVersion)
	b = binary.AppendUvarint(b, uint64(len(from)))
	b = append(b, from...)
	b = binary.AppendUvarint(b, uint64(len(to)))
	b = append(b, to...)
	b = binary.BigEndian.AppendUint64(b, connID)
	b = binary.BigEndian.AppendUint64(b, issued)
	ms.h.Reset()
	ms.h.Write(b)
	ms.h.Sum(ms.sum[:0])
	if cap(b) <= maxPooledBuf {
		ms.buf = b
	} else {
		ms.buf = nil
	}
	return ms
}
