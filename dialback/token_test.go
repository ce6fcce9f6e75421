package dialback

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func newTestIssuer(t testing.TB, key []byte, clock *fakeClock) *Issuer {
	t.Helper()
	is, err := NewIssuer(key, IssuerConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func TestTokenRoundTrip(t *testing.T) {
	is := newTestIssuer(t, testKey(), newFakeClock())
	tests := []struct {
		name     string
		from, to string
		connID   uint64
	}{
		{"plain", "b.example", "a.example", 1},
		{"zero connID", "b.example", "a.example", 0},
		{"max connID", "b.example", "a.example", math.MaxUint64},
		{"same domain both ends", "a.example", "a.example", 7},
		{"A-labels", "xn--bcher-kva.example", "xn--caf-dma.example", 42},
		{"unicode bytes", "bücher.example", "café.example", 43},
		{"long domain", strings.Repeat("a", 300), "a.example", 44},
		{"empty domains", "", "", 45},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := is.Issue(tt.from, tt.to, tt.connID)
			if len(tok) != TokenSize {
				t.Fatalf("len(token) = %d, want %d", len(tok), TokenSize)
			}
			got, err := is.Check(tok, tt.from, tt.to)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got != tt.connID {
				t.Errorf("Check = connID %d, want %d", got, tt.connID)
			}
		})
	}
}

// TestTokenLayout pins the token bytes: it rebuilds the token from the
// layout documented in token.go, independently of the code under test, and
// compares both with a golden hex string.
func TestTokenLayout(t *testing.T) {
	clock := newFakeClock()
	is := newTestIssuer(t, testKey(), clock)
	const (
		from   = "b.example"
		to     = "a.example"
		connID = 0x0102030405060708
	)
	tok := is.Issue(from, to, connID)

	nanos := uint64(clock.Now().UnixNano())
	head := []byte{0x01,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		byte(nanos >> 56), byte(nanos >> 48), byte(nanos >> 40), byte(nanos >> 32),
		byte(nanos >> 24), byte(nanos >> 16), byte(nanos >> 8), byte(nanos),
	}
	input := []byte("imx dialback token\x00")
	input = append(input, 0x01)
	input = append(input, 9)
	input = append(input, from...)
	input = append(input, 9)
	input = append(input, to...)
	input = append(input, head[1:]...) // connID, issued
	m := hmac.New(sha256.New, testKey())
	m.Write(input)
	want := append(head, m.Sum(nil)...)
	if !bytes.Equal(tok, want) {
		t.Fatalf("token\n got %x\nwant %x", tok, want)
	}

	// Also computed with Python's hmac module from the documented layout.
	const golden = "01" + "0102030405060708" + "0d56686fd4248000" +
		"ab32b4f5f2969aa4e1c48d3ffbe864b0aea34b621e621c5757706d9ec46457f2"
	if got := hex.EncodeToString(tok); got != golden {
		t.Errorf("token = %s, want golden %s", got, golden)
	}
}

func TestTokenTamperedIsRejected(t *testing.T) {
	is := newTestIssuer(t, testKey(), newFakeClock())
	tok := is.Issue("b.example", "a.example", 99)
	for i := range tok {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(tok)
			bad[i] ^= mask
			if _, err := is.Check(bad, "b.example", "a.example"); !errors.Is(err, ErrBadToken) {
				t.Errorf("byte %d ^ %#02x: Check error = %v, want ErrBadToken", i, mask, err)
			}
		}
	}
	for n := 0; n <= TokenSize+1; n++ {
		if n == TokenSize {
			continue
		}
		bad := make([]byte, n)
		copy(bad, tok)
		if _, err := is.Check(bad, "b.example", "a.example"); !errors.Is(err, ErrBadToken) {
			t.Errorf("length %d: Check error = %v, want ErrBadToken", n, err)
		}
	}
}

func TestTokenOtherPairIsRejected(t *testing.T) {
	is := newTestIssuer(t, testKey(), newFakeClock())
	tok := is.Issue("b.example", "a.example", 5)
	tests := []struct {
		name     string
		from, to string
	}{
		{"swapped", "a.example", "b.example"},
		{"other originator", "c.example", "a.example"},
		{"other receiver (reflection to M)", "b.example", "m.example"},
		{"upper case", "B.example", "a.example"},
		{"trailing dot", "b.example.", "a.example"},
		{"empty from", "", "a.example"},
		{"empty to", "b.example", ""},
		{"both empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := is.Check(tok, tt.from, tt.to); !errors.Is(err, ErrBadToken) {
				t.Errorf("Check(%q, %q) error = %v, want ErrBadToken", tt.from, tt.to, err)
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	tests := []struct {
		name    string
		maxAge  time.Duration
		advance time.Duration
		wantErr error
	}{
		{"fresh", 0, 0, nil},
		{"at default max age", 0, DefaultMaxAge, nil},
		{"past default max age", 0, DefaultMaxAge + time.Nanosecond, ErrExpired},
		{"an hour old", 0, time.Hour, ErrExpired},
		{"custom max age, inside", 5 * time.Second, 5 * time.Second, nil},
		{"custom max age, past", 5 * time.Second, 5*time.Second + 1, ErrExpired},
		{"slightly future (clock step back)", 0, -futureSkew, nil},
		{"too far in the future", 0, -futureSkew - time.Nanosecond, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			is, err := NewIssuer(testKey(), IssuerConfig{MaxAge: tt.maxAge, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			tok := is.Issue("b.example", "a.example", 3)
			clock.Advance(tt.advance)
			id, err := is.Check(tok, "b.example", "a.example")
			if !errors.Is(err, tt.wantErr) || (err == nil && id != 3) {
				t.Errorf("Check after %v = (%d, %v), want error %v", tt.advance, id, err, tt.wantErr)
			}
		})
	}
}

func TestTokenOtherKeyIsRejected(t *testing.T) {
	clock := newFakeClock()
	is := newTestIssuer(t, testKey(), clock)
	other, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	otherIs := newTestIssuer(t, other, clock)
	tok := is.Issue("b.example", "a.example", 11)
	if _, err := otherIs.Check(tok, "b.example", "a.example"); !errors.Is(err, ErrBadToken) {
		t.Errorf("token checked under another key: error = %v, want ErrBadToken", err)
	}
	// A sibling sharing the key (one domain, several nodes) accepts it.
	sibling := newTestIssuer(t, testKey(), clock)
	if id, err := sibling.Check(tok, "b.example", "a.example"); err != nil || id != 11 {
		t.Errorf("sibling Check = (%d, %v), want (11, nil)", id, err)
	}
}

// TestTokenLengthPrefix checks that no two domain pairs share a MAC input:
// every token checks only for its own pair, including pairs whose
// concatenations are equal and lengths that cross a varint byte boundary.
func TestTokenLengthPrefix(t *testing.T) {
	is := newTestIssuer(t, testKey(), newFakeClock())
	a127, a128 := strings.Repeat("a", 127), strings.Repeat("a", 128)
	pairs := [][2]string{
		{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"},
		{"a\x00", "b"}, {"a", "\x00b"},
		{"\x01a", "b"}, {"", "\x01ab"}, // a length byte inside a domain
		{a127, "b"}, {a128, "b"}, {a127, "ab"}, {a128[:127], "\x80\x01" + "b"},
	}
	tokens := make([][]byte, len(pairs))
	for i, p := range pairs {
		tokens[i] = is.Issue(p[0], p[1], 1)
	}
	for i, tok := range tokens {
		for j, p := range pairs {
			_, err := is.Check(tok, p[0], p[1])
			if i == j && err != nil {
				t.Errorf("token for %q checked for its own pair: %v", pairs[i], err)
			}
			if i != j && !errors.Is(err, ErrBadToken) {
				t.Errorf("token for %q checked for %q: error = %v, want ErrBadToken", pairs[i], p, err)
			}
		}
	}
}

func TestNewIssuerConfig(t *testing.T) {
	tests := []struct {
		name    string
		key     []byte
		cfg     IssuerConfig
		wantErr error
	}{
		{"nil key", nil, IssuerConfig{}, ErrBadKey},
		{"short key", make([]byte, KeySize-1), IssuerConfig{}, ErrBadKey},
		{"key size", make([]byte, KeySize), IssuerConfig{}, nil},
		{"long key", make([]byte, 2*KeySize), IssuerConfig{}, nil},
		{"negative max age", make([]byte, KeySize), IssuerConfig{MaxAge: -1}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewIssuer(tt.key, tt.cfg)
			if !matchErr(err, tt.wantErr) {
				t.Errorf("NewIssuer error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestIssuerCopiesKey(t *testing.T) {
	key := testKey()
	is := newTestIssuer(t, key, newFakeClock())
	tok := is.Issue("b.example", "a.example", 1)
	clear(key)
	if _, err := is.Check(tok, "b.example", "a.example"); err != nil {
		t.Errorf("Check after the caller cleared its key: %v", err)
	}
}

// TestTokenErrorsHideMAC checks that Check's errors never contain the
// token's bytes.
func TestTokenErrorsHideMAC(t *testing.T) {
	clock := newFakeClock()
	is := newTestIssuer(t, testKey(), clock)
	tok := is.Issue("b.example", "a.example", 1)
	_, errPair := is.Check(tok, "c.example", "a.example")
	clock.Advance(time.Hour)
	_, errAge := is.Check(tok, "b.example", "a.example")
	for _, err := range []error{errPair, errAge} {
		if err == nil {
			t.Fatal("Check succeeded")
		}
		assertNoSecret(t, err, tok[17:])
	}
}

// errAny matches any non-nil error in matchErr.
var errAny = errors.New("any error")

func matchErr(err, want error) bool {
	switch want {
	case nil:
		return err == nil
	case errAny:
		return err != nil
	}
	return errors.Is(err, want)
}

// assertNoSecret fails if err's message contains secret in any common
// rendering. Secrets shorter than 8 bytes are too short to search for.
func assertNoSecret(t *testing.T, err error, secret []byte) {
	t.Helper()
	if len(secret) < 8 {
		return
	}
	msg := err.Error()
	for _, form := range []string{
		string(secret),
		hex.EncodeToString(secret),
		fmt.Sprintf("%q", secret),
		fmt.Sprintf("%v", secret),
		fmt.Sprintf("%X", secret),
	} {
		if strings.Contains(msg, strings.Trim(form, `"`)) {
			t.Errorf("error %q contains the secret (as %q)", msg, form)
		}
	}
}
