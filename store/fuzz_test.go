package store

import (
	"errors"
	"testing"
)

// FuzzParsePasswordHash feeds ParsePasswordHash arbitrary strings, the
// only hand-written parser of the package. Properties:
//
//   - it never panics, and fails only with ErrBadHash;
//   - what it accepts has parameters within PasswordParams.Validate and
//     salt and key lengths within bounds;
//   - what it accepts prints back as exactly the input (one spelling per
//     hash), and that string parses to the same hash.
//
// It never runs argon2 itself: the parameters of a fuzzed hash could ask
// for up to a gigabyte.
func FuzzParsePasswordHash(f *testing.F) {
	f.Add(referenceHash)
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5Q")
	f.Add("$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Add("$argon2id$v=19$m=065536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("")
	f.Add("$")

	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParsePasswordHash(s)
		if err != nil {
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("ParsePasswordHash(%q) failed with %v, not ErrBadHash", s, err)
			}
			return
		}
		if err := h.Params.Validate(); err != nil {
			t.Fatalf("ParsePasswordHash(%q) accepted parameters out of bounds: %v", s, err)
		}
		if len(h.Salt) < minSaltLen || len(h.Salt) > maxSaltLen || len(h.Key) < minKeyLen || len(h.Key) > maxKeyLen {
			t.Fatalf("ParsePasswordHash(%q) accepted a salt of %d or a key of %d bytes", s, len(h.Salt), len(h.Key))
		}
		out := h.String()
		if out != s {
			t.Fatalf("ParsePasswordHash(%q).String() = %q: not the input", s, out)
		}
		h2, err := ParsePasswordHash(out)
		if err != nil || h2.Params != h.Params || string(h2.Salt) != string(h.Salt) || string(h2.Key) != string(h.Key) {
			t.Fatalf("round trip of %q: %+v, %v", s, h2, err)
		}
	})
}
