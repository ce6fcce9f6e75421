package dialback

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzCheck feeds Check arbitrary tokens and domain pairs. Properties:
//
//   - Check never panics, and accepts only well-formed version-1 tokens,
//     returning the connID they carry;
//   - a token Issue mints for any pair and connID checks, for that pair
//     only (not swapped);
//   - that token with any byte changed (XORed with the fuzzed bytes) is
//     rejected with ErrBadToken.
//
// The clock is fixed at the one the seed corpus in
// testdata/fuzz/FuzzCheck was minted with (newFakeClock), so its valid
// tokens stay valid.
func FuzzCheck(f *testing.F) {
	clock := newFakeClock()
	is, err := NewIssuer(testKey(), IssuerConfig{Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(is.Issue("b.example", "a.example", 1), "b.example", "a.example", uint64(1))
	f.Add(is.Issue("a.example", "b.example", 2), "b.example", "a.example", uint64(2))
	f.Add([]byte{}, "", "", uint64(0))
	f.Add(make([]byte, TokenSize), "b.example", "a.example", uint64(0))

	f.Fuzz(func(t *testing.T, token []byte, from, to string, connID uint64) {
		id, err := is.Check(token, from, to)
		if err == nil {
			if len(token) != TokenSize || token[0] != tokenVersion {
				t.Fatalf("Check accepted a malformed token %x", token)
			}
			if want := binary.BigEndian.Uint64(token[1:9]); id != want {
				t.Fatalf("Check returned connID %d, token carries %d", id, want)
			}
		} else if !errors.Is(err, ErrBadToken) && !errors.Is(err, ErrExpired) {
			t.Fatalf("Check failed with an unexpected error: %v", err)
		}

		tok := is.Issue(from, to, connID)
		id, err = is.Check(tok, from, to)
		if err != nil || id != connID {
			t.Fatalf("minted token for %q -> %q, %d: Check = (%d, %v)", from, to, connID, id, err)
		}
		if from != to {
			if _, err := is.Check(tok, to, from); !errors.Is(err, ErrBadToken) {
				t.Fatalf("token for %q -> %q checked swapped: %v", from, to, err)
			}
		}

		if len(token) == 0 {
			return
		}
		bad := bytes.Clone(tok)
		for i := range bad {
			bad[i] ^= token[i%len(token)]
		}
		if bytes.Equal(bad, tok) {
			return
		}
		if _, err := is.Check(bad, from, to); !errors.Is(err, ErrBadToken) {
			t.Fatalf("altered token %x (from %x) checked: %v", bad, tok, err)
		}
	})
}

// TestFuzzCorpus checks that the committed seed corpus still means what
// its file names say: files named valid* hold tokens that check, expired
// and future genuine tokens outside their window, all others bad tokens. If the token layout changes, the corpus must be minted
// again.
func TestFuzzCorpus(t *testing.T) {
	is, err := NewIssuer(testKey(), IssuerConfig{Now: newFakeClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzCheck", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no seed corpus")
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			token, from, to, connID := readCorpusFile(t, file)
			id, err := is.Check(token, from, to)
			switch {
			case strings.HasPrefix(name, "valid"):
				if err != nil || id != connID {
					t.Errorf("Check = (%d, %v), want (%d, nil)", id, err, connID)
				}
			case name == "expired" || name == "future":
				if !errors.Is(err, ErrExpired) {
					t.Errorf("Check error = %v, want ErrExpired", err)
				}
			default:
				if !errors.Is(err, ErrBadToken) {
					t.Errorf("Check error = %v, want ErrBadToken", err)
				}
			}
		})
	}
}

// readCorpusFile parses a "go test fuzz v1" file of FuzzCheck's arguments.
func readCorpusFile(t *testing.T, file string) (token []byte, from, to string, connID uint64) {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	if len(lines) != 5 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a FuzzCheck corpus file", file)
	}
	arg := func(line, typ string) string {
		inner, ok := strings.CutPrefix(line, typ+"(")
		if !ok || !strings.HasSuffix(inner, ")") {
			t.Fatalf("%s: %q is not a %s", file, line, typ)
		}
		return strings.TrimSuffix(inner, ")")
	}
	unquote := func(line, typ string) string {
		s, err := strconv.Unquote(arg(line, typ))
		if err != nil {
			t.Fatalf("%s: %q: %v", file, line, err)
		}
		return s
	}
	connID, err = strconv.ParseUint(arg(lines[4], "uint64"), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return []byte(unquote(lines[1], "[]byte")), unquote(lines[2], "string"), unquote(lines[3], "string"), connID
}
