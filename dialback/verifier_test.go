package dialback

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	conn1 = ConnKey{ID: 1, Addr: netip.MustParseAddr("192.0.2.1")}
	conn2 = ConnKey{ID: 2, Addr: netip.MustParseAddr("192.0.2.1")}
	conn3 = ConnKey{ID: 3, Addr: netip.MustParseAddr("198.51.100.7")}
)

func newTestVerifier(t testing.TB, cfg VerifierConfig) (*Verifier, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v, clock
}

func mustBegin(t testing.TB, v *Verifier, conn ConnKey, from, to string) []byte {
	t.Helper()
	secret, err := v.Begin(conn, from, to)
	if err != nil {
		t.Fatalf("Begin(%d, %q, %q): %v", conn.ID, from, to, err)
	}
	return secret
}

func TestVerifierSuccess(t *testing.T) {
	v, _ := newTestVerifier(t, VerifierConfig{})
	secret := mustBegin(t, v, conn1, "b.example", "a.example")
	if len(secret) != SecretSize {
		t.Fatalf("len(secret) = %d, want %d", len(secret), SecretSize)
	}
	if n := v.Pending(); n != 1 {
		t.Errorf("Pending = %d after Begin, want 1", n)
	}
	if err := v.Complete(conn1, "b.example", "a.example", secret); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if n := v.Pending(); n != 0 {
		t.Errorf("Pending = %d after Complete, want 0", n)
	}
	checkInvariants(t, v)
}

// TestVerifierComplete runs Complete in the ways it must fail, and the
// boundaries where it must not.
func TestVerifierComplete(t *testing.T) {
	const lifetime = 10 * time.Second
	tests := []struct {
		name string
		// run begins what it needs and returns the arguments for Complete.
		run     func(t *testing.T, v *Verifier, clock *fakeClock) (ConnKey, string, string, []byte)
		wantErr error
	}{
		{"success", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			return conn1, "b.example", "a.example", mustBegin(t, v, conn1, "b.example", "a.example")
		}, nil},
		{"just inside lifetime", func(t *testing.T, v *Verifier, clock *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			clock.Advance(lifetime - time.Nanosecond)
			return conn1, "b.example", "a.example", s
		}, nil},
		{"expired at lifetime", func(t *testing.T, v *Verifier, clock *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			clock.Advance(lifetime)
			return conn1, "b.example", "a.example", s
		}, ErrExpired},
		{"wrong secret", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			s = bytes.Clone(s)
			s[SecretSize-1] ^= 1
			return conn1, "b.example", "a.example", s
		}, ErrWrongSecret},
		{"short secret", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			return conn1, "b.example", "a.example", s[:16]
		}, ErrWrongSecret},
		{"long secret", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			return conn1, "b.example", "a.example", append(bytes.Clone(s), 0)
		}, ErrWrongSecret},
		{"nil secret", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			mustBegin(t, v, conn1, "b.example", "a.example")
			return conn1, "b.example", "a.example", nil
		}, ErrWrongSecret},
		{"secret of another connection", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			mustBegin(t, v, conn1, "b.example", "a.example")
			s := mustBegin(t, v, conn2, "b.example", "a.example")
			return conn1, "b.example", "a.example", s
		}, ErrWrongSecret},
		{"secret of another connection, nothing pending here", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn2, "b.example", "a.example")
			return conn1, "b.example", "a.example", s
		}, ErrUnsolicited},
		{"same connection ID, other address", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			return ConnKey{ID: conn1.ID, Addr: conn3.Addr}, "b.example", "a.example", s
		}, ErrUnsolicited},
		{"unsolicited", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			return conn1, "b.example", "a.example", make([]byte, SecretSize)
		}, ErrUnsolicited},
		{"other originator", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			return conn1, "c.example", "a.example", mustBegin(t, v, conn1, "b.example", "a.example")
		}, ErrWrongPair},
		{"other receiver", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			return conn1, "b.example", "x.example", mustBegin(t, v, conn1, "b.example", "a.example")
		}, ErrWrongPair},
		{"swapped pair", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			return conn1, "a.example", "b.example", mustBegin(t, v, conn1, "b.example", "a.example")
		}, ErrWrongPair},
		{"secret of M's own pair presented for B (cross-pair)", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			mustBegin(t, v, conn1, "b.example", "a.example")
			return conn1, "b.example", "a.example", mustBegin(t, v, conn1, "m.example", "a.example")
		}, ErrWrongPair},
		{"replay", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			if err := v.Complete(conn1, "b.example", "a.example", s); err != nil {
				t.Fatalf("first Complete: %v", err)
			}
			return conn1, "b.example", "a.example", s
		}, ErrReplayed},
		{"replay while another is pending", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			mustBegin(t, v, conn1, "b.example", "a.example")
			if err := v.Complete(conn1, "b.example", "a.example", s); err != nil {
				t.Fatalf("first Complete: %v", err)
			}
			return conn1, "b.example", "a.example", s
		}, ErrReplayed},
		{"replay after the secret's lifetime", func(t *testing.T, v *Verifier, clock *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			if err := v.Complete(conn1, "b.example", "a.example", s); err != nil {
				t.Fatalf("first Complete: %v", err)
			}
			clock.Advance(lifetime)
			v.Sweep(clock.Now())
			return conn1, "b.example", "a.example", s
		}, ErrUnsolicited},
		{"after wrong pair, right pair is a replay", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			if err := v.Complete(conn1, "c.example", "a.example", s); !errors.Is(err, ErrWrongPair) {
				t.Fatalf("Complete for the wrong pair: %v, want ErrWrongPair", err)
			}
			return conn1, "b.example", "a.example", s
		}, ErrReplayed},
		{"after expiry, expired again is unsolicited", func(t *testing.T, v *Verifier, clock *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			clock.Advance(lifetime)
			if err := v.Complete(conn1, "b.example", "a.example", s); !errors.Is(err, ErrExpired) {
				t.Fatalf("first Complete: %v, want ErrExpired", err)
			}
			return conn1, "b.example", "a.example", s
		}, ErrUnsolicited},
		{"after Cancel", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			v.Cancel(conn1)
			return conn1, "b.example", "a.example", s
		}, ErrUnsolicited},
		{"two pending for one pair, second secret", func(t *testing.T, v *Verifier, _ *fakeClock) (ConnKey, string, string, []byte) {
			mustBegin(t, v, conn1, "b.example", "a.example")
			return conn1, "b.example", "a.example", mustBegin(t, v, conn1, "b.example", "a.example")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, clock := newTestVerifier(t, VerifierConfig{SecretLifetime: lifetime})
			conn, from, to, secret := tt.run(t, v, clock)
			err := v.Complete(conn, from, to, secret)
			if !matchErr(err, tt.wantErr) {
				t.Errorf("Complete error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				assertNoSecret(t, err, secret)
			}
			checkInvariants(t, v)
		})
	}
}

func TestVerifierCancel(t *testing.T) {
	v, _ := newTestVerifier(t, VerifierConfig{})
	mustBegin(t, v, conn1, "b.example", "a.example")
	used := mustBegin(t, v, conn1, "c.example", "a.example")
	if err := v.Complete(conn1, "c.example", "a.example", used); err != nil {
		t.Fatal(err)
	}
	mustBegin(t, v, conn1, "d.example", "a.example")
	other := mustBegin(t, v, conn3, "b.example", "a.example")

	v.Cancel(conn1)
	if n := v.Pending(); n != 1 {
		t.Errorf("Pending = %d after Cancel, want 1 (the other connection's)", n)
	}
	if err := v.Complete(conn1, "c.example", "a.example", used); !errors.Is(err, ErrUnsolicited) {
		t.Errorf("Complete after Cancel = %v, want ErrUnsolicited", err)
	}
	v.Cancel(conn1) // twice is harmless
	v.Cancel(ConnKey{ID: 99})
	if err := v.Complete(conn3, "b.example", "a.example", other); err != nil {
		t.Errorf("other connection's Complete after Cancel: %v", err)
	}
	checkInvariants(t, v)
}

func TestVerifierBounds(t *testing.T) {
	v4 := func(s string, id uint64) ConnKey { return ConnKey{ID: id, Addr: netip.MustParseAddr(s)} }
	tests := []struct {
		name string
		cfg  VerifierConfig
		// conns are begun in order; the last must fail with ErrTooManyPending.
		conns []ConnKey
		// free returns the slot that the fresh Begin after it may take.
		free func(v *Verifier, clock *fakeClock, secrets [][]byte)
	}{
		{
			name:  "per connection",
			cfg:   VerifierConfig{MaxPerConn: 3},
			conns: []ConnKey{conn1, conn1, conn1, conn1},
			free: func(v *Verifier, _ *fakeClock, s [][]byte) {
				v.Complete(conn1, "b.example", "a.example", s[0])
			},
		},
		{
			name:  "per IPv4 address",
			cfg:   VerifierConfig{MaxPerAddr: 3},
			conns: []ConnKey{v4("192.0.2.1", 1), v4("192.0.2.1", 2), v4("::ffff:192.0.2.1", 3), v4("192.0.2.1", 4)},
			free: func(v *Verifier, _ *fakeClock, _ [][]byte) {
				v.Cancel(v4("192.0.2.1", 1))
			},
		},
		{
			name:  "per IPv6 /64",
			cfg:   VerifierConfig{MaxPerAddr: 3},
			conns: []ConnKey{v4("2001:db8::1", 1), v4("2001:db8::ffff:2", 2), v4("2001:db8::5%eth0", 3), v4("2001:db8:0:0:8000::3", 4)},
			free: func(v *Verifier, clock *fakeClock, _ [][]byte) {
				clock.Advance(DefaultSecretLifetime)
			},
		},
		{
			name:  "overall",
			cfg:   VerifierConfig{MaxPending: 4},
			conns: []ConnKey{v4("192.0.2.1", 1), v4("192.0.2.2", 2), v4("2001:db8::1", 3), v4("2001:db8:1::1", 4), v4("198.51.100.1", 5)},
			free: func(v *Verifier, clock *fakeClock, _ [][]byte) {
				clock.Advance(DefaultSecretLifetime)
				v.Sweep(clock.Now())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, clock := newTestVerifier(t, tt.cfg)
			var secrets [][]byte
			last := len(tt.conns) - 1
			for _, c := range tt.conns[:last] {
				secrets = append(secrets, mustBegin(t, v, c, "b.example", "a.example"))
			}
			if _, err := v.Begin(tt.conns[last], "b.example", "a.example"); !errors.Is(err, ErrTooManyPending) {
				t.Fatalf("Begin over the bound: %v, want ErrTooManyPending", err)
			}
			if n := v.Pending(); n != last {
				t.Errorf("Pending = %d after a refused Begin, want %d", n, last)
			}
			checkInvariants(t, v)
			tt.free(v, clock, secrets)
			if _, err := v.Begin(tt.conns[last], "b.example", "a.example"); err != nil {
				t.Errorf("Begin after a slot was freed: %v", err)
			}
			checkInvariants(t, v)
		})
	}
}

// TestVerifierBucketsAreSeparate checks that the bounds count each
// connection, address and /64 on its own.
func TestVerifierBucketsAreSeparate(t *testing.T) {
	v, _ := newTestVerifier(t, VerifierConfig{MaxPerConn: 1, MaxPerAddr: 2})
	for _, c := range []ConnKey{
		{ID: 1, Addr: netip.MustParseAddr("192.0.2.1")},
		{ID: 2, Addr: netip.MustParseAddr("192.0.2.1")},
		{ID: 3, Addr: netip.MustParseAddr("192.0.2.2")},
		{ID: 4, Addr: netip.MustParseAddr("2001:db8::1")},
		{ID: 5, Addr: netip.MustParseAddr("2001:db8:0:1::1")},
		{ID: 6},
		{ID: 7},
	} {
		mustBegin(t, v, c, "b.example", "a.example")
	}
	if _, err := v.Begin(ConnKey{ID: 8}, "b.example", "a.example"); !errors.Is(err, ErrTooManyPending) {
		t.Errorf("third Begin without an address: %v, want ErrTooManyPending", err)
	}
	checkInvariants(t, v)
}

func TestVerifierSweep(t *testing.T) {
	v, clock := newTestVerifier(t, VerifierConfig{})
	for i := range 5 {
		mustBegin(t, v, ConnKey{ID: uint64(i)}, "b.example", "a.example")
	}
	clock.Advance(time.Second)
	late := mustBegin(t, v, conn1, "b.example", "a.example")
	used := mustBegin(t, v, conn1, "c.example", "a.example")
	if err := v.Complete(conn1, "c.example", "a.example", used); err != nil {
		t.Fatal(err)
	}

	if n := v.Sweep(clock.Now()); n != 0 {
		t.Errorf("Sweep before any expiry = %d, want 0", n)
	}
	clock.Advance(DefaultSecretLifetime - time.Second)
	if n := v.Sweep(clock.Now()); n != 5 {
		t.Errorf("Sweep = %d, want the 5 expired", n)
	}
	if n := v.Pending(); n != 1 {
		t.Errorf("Pending = %d after Sweep, want 1", n)
	}
	if err := v.Complete(conn1, "b.example", "a.example", late); err != nil {
		t.Errorf("Complete of the unexpired one: %v", err)
	}
	clock.Advance(DefaultSecretLifetime)
	if n := v.Sweep(clock.Now()); n != 0 {
		t.Errorf("Sweep of used entries only = %d, want 0", n)
	}
	if len(v.conns) != 0 || v.used != 0 {
		t.Errorf("after the last Sweep: %d connections, %d used secrets remembered, want none", len(v.conns), v.used)
	}
	checkInvariants(t, v)
}

// TestVerifierLazyExpiry checks that Begin reclaims expired entries itself,
// so the bounds count only live verifications without any Sweep.
func TestVerifierLazyExpiry(t *testing.T) {
	v, clock := newTestVerifier(t, VerifierConfig{MaxPerConn: 2})
	mustBegin(t, v, conn1, "b.example", "a.example")
	mustBegin(t, v, conn1, "b.example", "a.example")
	clock.Advance(DefaultSecretLifetime)
	mustBegin(t, v, conn1, "b.example", "a.example")
	if n := v.Pending(); n != 1 {
		t.Errorf("Pending = %d, want 1", n)
	}
	checkInvariants(t, v)
}

// TestVerifierMemoryIsBounded churns the table the ways a peer could and
// checks that the memory held stays within the bounds: used secrets per
// connection and in all, and the expiry queue.
func TestVerifierMemoryIsBounded(t *testing.T) {
	t.Run("used secrets per connection", func(t *testing.T) {
		v, _ := newTestVerifier(t, VerifierConfig{MaxPerConn: 4})
		var first []byte
		for i := range 1000 {
			s := mustBegin(t, v, conn1, "b.example", "a.example")
			if i == 0 {
				first = s
			}
			if err := v.Complete(conn1, "b.example", "a.example", s); err != nil {
				t.Fatal(err)
			}
		}
		if got := len(v.conns[conn1].used); got != 4 {
			t.Errorf("%d used secrets remembered on the connection, want 4", got)
		}
		if got := len(v.queue) - v.head; got > 4+64+4 {
			t.Errorf("expiry queue holds %d entries for 4 live ones", got)
		}
		// Forgotten, but still refused.
		if err := v.Complete(conn1, "b.example", "a.example", first); !errors.Is(err, ErrUnsolicited) {
			t.Errorf("replay of a forgotten secret: %v, want ErrUnsolicited", err)
		}
		checkInvariants(t, v)
	})
	t.Run("used secrets in all", func(t *testing.T) {
		v, _ := newTestVerifier(t, VerifierConfig{MaxPending: 8})
		for i := range 100 {
			c := ConnKey{ID: uint64(i), Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})}
			s := mustBegin(t, v, c, "b.example", "a.example")
			if err := v.Complete(c, "b.example", "a.example", s); err != nil {
				t.Fatal(err)
			}
		}
		if v.used != 8 {
			t.Errorf("%d used secrets remembered, want the bound 8", v.used)
		}
		checkInvariants(t, v)
	})
	t.Run("Begin and Cancel churn", func(t *testing.T) {
		v, _ := newTestVerifier(t, VerifierConfig{})
		for i := range 10000 {
			c := ConnKey{ID: uint64(i)}
			mustBegin(t, v, c, "b.example", "a.example")
			v.Cancel(c)
		}
		if got := len(v.queue) - v.head; got > 64 {
			t.Errorf("expiry queue holds %d entries for none live", got)
		}
		checkInvariants(t, v)
	})
	t.Run("steady expiry", func(t *testing.T) {
		v, clock := newTestVerifier(t, VerifierConfig{MaxPerAddr: 1 << 20})
		for i := range 10000 {
			mustBegin(t, v, ConnKey{ID: uint64(i)}, "b.example", "a.example")
			clock.Advance(DefaultSecretLifetime / 100)
		}
		if got := v.Pending(); got != 100 {
			t.Errorf("Pending = %d, want 100 alive", got)
		}
		if got := cap(v.queue); got > 1024 {
			t.Errorf("expiry queue capacity %d for 100 live entries", got)
		}
		checkInvariants(t, v)
	})
}

func TestVerifierBadDomain(t *testing.T) {
	v, _ := newTestVerifier(t, VerifierConfig{})
	long := strings.Repeat("a", MaxDomainLen+1)
	tests := []struct {
		name     string
		from, to string
		wantErr  error
	}{
		{"empty from", "", "a.example", ErrBadDomain},
		{"empty to", "b.example", "", ErrBadDomain},
		{"long from", long, "a.example", ErrBadDomain},
		{"long to", "b.example", long, ErrBadDomain},
		{"longest", long[1:], long[1:], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Begin(conn1, tt.from, tt.to)
			if !matchErr(err, tt.wantErr) {
				t.Errorf("Begin error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), long) {
				t.Errorf("error quotes an overlong domain: %.80s...", err)
			}
		})
	}
}

func TestNewVerifierConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     VerifierConfig
		wantErr bool
	}{
		{"zero", VerifierConfig{}, false},
		{"negative lifetime", VerifierConfig{SecretLifetime: -1}, true},
		{"negative per conn", VerifierConfig{MaxPerConn: -1}, true},
		{"negative per addr", VerifierConfig{MaxPerAddr: -1}, true},
		{"negative overall", VerifierConfig{MaxPending: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewVerifier error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	v, err := NewVerifier(VerifierConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if v.lifetime != DefaultSecretLifetime || v.maxPerConn != DefaultMaxPerConn ||
		v.maxPerAddr != DefaultMaxPerAddr || v.maxPending != DefaultMaxPending {
		t.Errorf("zero config gave lifetime %v, bounds %d/%d/%d; want the defaults",
			v.lifetime, v.maxPerConn, v.maxPerAddr, v.maxPending)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestVerifierRandError(t *testing.T) {
	boom := errors.New("entropy gone")
	for _, r := range []io.Reader{failingReader{boom}, strings.NewReader("short")} {
		v, _ := newTestVerifier(t, VerifierConfig{Rand: r})
		if _, err := v.Begin(conn1, "b.example", "a.example"); err == nil {
			t.Errorf("Begin with a failing reader succeeded")
		} else if r, ok := r.(failingReader); ok && !errors.Is(err, r.err) {
			t.Errorf("Begin error = %v, want it to wrap %v", err, r.err)
		}
		if n := v.Pending(); n != 0 {
			t.Errorf("Pending = %d after a failed Begin, want 0", n)
		}
	}
}

func TestVerifierSecretsAreFresh(t *testing.T) {
	v, _ := newTestVerifier(t, VerifierConfig{MaxPerConn: 1000, MaxPerAddr: 1000})
	seen := map[string]bool{}
	for range 1000 {
		s := mustBegin(t, v, conn1, "b.example", "a.example")
		if seen[string(s)] {
			t.Fatal("secret repeated")
		}
		seen[string(s)] = true
	}
	// The caller's copy is its own.
	s := mustBegin(t, v, conn3, "b.example", "a.example")
	orig := bytes.Clone(s)
	clear(s)
	if err := v.Complete(conn3, "b.example", "a.example", orig); err != nil {
		t.Errorf("Complete after the caller cleared its copy: %v", err)
	}
}

// TestVerifierConcurrent runs Begin, Complete, Cancel and Sweep from many
// goroutines; run it with -race.
func TestVerifierConcurrent(t *testing.T) {
	v, clock := newTestVerifier(t, VerifierConfig{})
	const workers, rounds = 8, 300
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(w)})
			for i := range rounds {
				c := ConnKey{ID: uint64(w*rounds + i), Addr: addr}
				from := fmt.Sprintf("b%d.example", i%7)
				s, err := v.Begin(c, from, "a.example")
				if err != nil {
					errs <- err
					return
				}
				if i%10 == 9 {
					v.Cancel(c)
					continue
				}
				if err := v.Complete(c, from, "a.example", s); err != nil {
					errs <- err
					return
				}
				if err := v.Complete(c, from, "a.example", s); !errors.Is(err, ErrReplayed) {
					errs <- fmt.Errorf("replay: %w", err)
					return
				}
				v.Cancel(c)
			}
		})
	}
	wg.Go(func() {
		for range rounds {
			v.Sweep(clock.Now())
			_ = v.Pending()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := v.Pending(); n != 0 {
		t.Errorf("Pending = %d at the end, want 0", n)
	}
	checkInvariants(t, v)
}

// checkInvariants verifies the Verifier's internal bookkeeping: the
// counters match the entries, no connection record is empty, and the
// queue holds every live entry exactly once.
func checkInvariants(t *testing.T, v *Verifier) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	pending, used := 0, 0
	perAddr := map[netip.Addr]int{}
	live := map[*entry]bool{}
	for k, ce := range v.conns {
		if len(ce.pending) == 0 && len(ce.used) == 0 {
			t.Errorf("connection %d has an empty record", k.ID)
		}
		if len(ce.pending) > v.maxPerConn || len(ce.used) > v.maxPerConn {
			t.Errorf("connection %d holds %d pending and %d used, bound %d", k.ID, len(ce.pending), len(ce.used), v.maxPerConn)
		}
		for _, e := range ce.pending {
			if e.state != statePending || e.conn != k {
				t.Errorf("pending list of connection %d holds an entry in state %d of connection %d", k.ID, e.state, e.conn.ID)
			}
			pending++
			perAddr[addrBucket(k.Addr)]++
			live[e] = true
		}
		for _, e := range ce.used {
			if e.state != stateUsed || e.conn != k {
				t.Errorf("used list of connection %d holds an entry in state %d of connection %d", k.ID, e.state, e.conn.ID)
			}
			used++
			live[e] = true
		}
	}
	if pending != v.pending || used != v.used {
		t.Errorf("counters say %d pending, %d used; entries say %d, %d", v.pending, v.used, pending, used)
	}
	if len(perAddr) != len(v.perAddr) {
		t.Errorf("per-address counters for %d addresses, entries for %d", len(v.perAddr), len(perAddr))
	}
	for a, n := range perAddr {
		if v.perAddr[a] != n {
			t.Errorf("address %v: counter %d, entries %d", a, v.perAddr[a], n)
		}
	}
	dropped := 0
	for _, e := range v.queue[:v.head] {
		if e != nil {
			t.Error("queue keeps a consumed slot")
		}
	}
	for _, e := range v.queue[v.head:] {
		switch {
		case e.state == stateDropped:
			dropped++
		case !live[e]:
			t.Error("queue holds a live entry twice, or one no connection has")
		default:
			delete(live, e)
		}
	}
	if len(live) != 0 {
		t.Errorf("%d live entries missing from the queue", len(live))
	}
	if dropped != v.dropped {
		t.Errorf("dropped counter %d, queue holds %d", v.dropped, dropped)
	}
}
