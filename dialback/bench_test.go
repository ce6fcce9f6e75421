package dialback

import (
	"net/netip"
	"sync/atomic"
	"testing"
)

func BenchmarkIssue(b *testing.B) {
	is, err := NewIssuer(testKey(), IssuerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		is.Issue("b.example", "a.example", uint64(i))
	}
}

func BenchmarkCheck(b *testing.B) {
	is, err := NewIssuer(testKey(), IssuerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	tok := is.Issue("b.example", "a.example", 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := is.Check(tok, "b.example", "a.example"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckBad measures the cost of rejecting a forged token, which an
// attacker controls the rate of.
func BenchmarkCheckBad(b *testing.B) {
	is, err := NewIssuer(testKey(), IssuerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	tok := is.Issue("b.example", "a.example", 1)
	tok[TokenSize-1] ^= 1
	b.ReportAllocs()
	for b.Loop() {
		if _, err := is.Check(tok, "b.example", "a.example"); err == nil {
			b.Fatal("forged token checked")
		}
	}
}

// BenchmarkBeginComplete is one whole verification on A: Begin, Complete,
// and Cancel when the connection goes (so the table stays at its steady
// size), with the real clock and crypto/rand.
func BenchmarkBeginComplete(b *testing.B) {
	v, err := NewVerifier(VerifierConfig{})
	if err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := ConnKey{ID: uint64(i), Addr: addr}
		s, err := v.Begin(c, "b.example", "a.example")
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Complete(c, "b.example", "a.example", s); err != nil {
			b.Fatal(err)
		}
		v.Cancel(c)
	}
}

// BenchmarkBeginCompleteParallel is BenchmarkBeginComplete from
// GOMAXPROCS goroutines sharing one Verifier, for lock contention.
func BenchmarkBeginCompleteParallel(b *testing.B) {
	v, err := NewVerifier(VerifierConfig{MaxPerAddr: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := ConnKey{ID: next.Add(1)}
			s, err := v.Begin(c, "b.example", "a.example")
			if err != nil {
				b.Error(err)
				return
			}
			if err := v.Complete(c, "b.example", "a.example", s); err != nil {
				b.Error(err)
				return
			}
			v.Cancel(c)
		}
	})
}

// BenchmarkDialback is both sides of one dial-back: Issue and Check on B,
// Begin, Complete and Cancel on A.
func BenchmarkDialback(b *testing.B) {
	is, err := NewIssuer(testKey(), IssuerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{})
	if err != nil {
		b.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tok := is.Issue("b.example", "a.example", uint64(i))
		c := ConnKey{ID: uint64(i), Addr: addr}
		s, err := v.Begin(c, "b.example", "a.example")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := is.Check(tok, "b.example", "a.example"); err != nil {
			b.Fatal(err)
		}
		if err := v.Complete(c, "b.example", "a.example", s); err != nil {
			b.Fatal(err)
		}
		v.Cancel(c)
	}
}
