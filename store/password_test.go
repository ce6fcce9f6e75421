package store

import (
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// cheap are argon2 parameters that make tests fast.
var cheap = PasswordParams{Memory: 64, Time: 1, Threads: 1}

// referenceHash is the argon2id test vector of the reference
// implementation (github.com/P-H-C/phc-winner-argon2, src/test.c): password
// "password", salt "somesalt", t=2, m=65536, p=1, version 0x13.
const (
	referenceHash = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	referenceKey  = "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"
)

func TestReferenceVector(t *testing.T) {
	h, err := ParsePasswordHash(referenceHash)
	if err != nil {
		t.Fatal(err)
	}
	if want := (PasswordParams{Memory: 65536, Time: 2, Threads: 1}); h.Params != want {
		t.Fatalf("params %+v, want %+v", h.Params, want)
	}
	if string(h.Salt) != "somesalt" || hex.EncodeToString(h.Key) != referenceKey {
		t.Fatalf("salt %q key %x", h.Salt, h.Key)
	}
	if h.String() != referenceHash {
		t.Fatalf("String() = %s", h)
	}
	if testing.Short() {
		t.Skip("the reference vector hashes 64 MiB")
	}
	if err := CheckPassword(referenceHash, "password"); err != nil {
		t.Fatalf("CheckPassword of the reference vector: %v", err)
	}
	if err := CheckPassword(referenceHash, "Password"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("CheckPassword with a wrong password: %v", err)
	}
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashAndCheck(t *testing.T) {
	h1, err := HashPassword("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(h1) {
		t.Fatalf("hash %q is not in the PHC format with a 16-byte salt and a 32-byte key", h1)
	}
	h2, err := HashPassword("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, h := range []string{h1, h2} {
		if err := CheckPassword(h, "correct horse"); err != nil {
			t.Fatalf("CheckPassword: %v", err)
		}
		for _, wrong := range []string{"", "correct horse ", "Correct horse", "correct hors"} {
			if err := CheckPassword(h, wrong); !errors.Is(err, ErrBadPassword) {
				t.Fatalf("CheckPassword(%q): %v, want ErrBadPassword", wrong, err)
			}
		}
	}
	if err := CheckPassword("$2y$10$abc", "x"); !errors.Is(err, ErrBadHash) {
		t.Fatalf("CheckPassword of a bcrypt hash: %v, want ErrBadHash", err)
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	if _, err := HashPassword("", cheap); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty password: %v", err)
	}
	for _, p := range []PasswordParams{
		{},
		{Memory: 64, Time: 1, Threads: 0},
		{Memory: 64, Time: 0, Threads: 1},
		{Memory: 7, Time: 1, Threads: 1},
		{Memory: 8*4 - 1, Time: 1, Threads: 4},
		{Memory: MaxPasswordMemory + 1, Time: 1, Threads: 1},
		{Memory: 64, Time: MaxPasswordTime + 1, Threads: 1},
	} {
		if _, err := HashPassword("pw", p); !errors.Is(err, ErrInvalid) {
			t.Errorf("params %+v: %v, want ErrInvalid", p, err)
		}
	}
	if err := DefaultPasswordParams.Validate(); err != nil {
		t.Errorf("DefaultPasswordParams: %v", err)
	}
}

func TestBurnPasswordHashes(t *testing.T) {
	before := HashCount()
	BurnPassword("x", cheap)
	BurnPassword("x", PasswordParams{}) // out of bounds: the defaults
	if got := HashCount() - before; got != 2 {
		t.Fatalf("BurnPassword computed %d hashes, want 2", got)
	}
}

func TestParsePasswordHashRejects(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	good := "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key
	if _, err := ParsePasswordHash(good); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"empty":              "",
		"argon2i":            "$argon2i$v=19$m=65536,t=2,p=1$" + salt + "$" + key,
		"argon2d":            "$argon2d$v=19$m=65536,t=2,p=1$" + salt + "$" + key,
		"no version":         "$argon2id$m=65536,t=2,p=1$" + salt + "$" + key,
		"version 16":         "$argon2id$v=16$m=65536,t=2,p=1$" + salt + "$" + key,
		"order":              "$argon2id$v=19$t=2,m=65536,p=1$" + salt + "$" + key,
		"extra param":        "$argon2id$v=19$m=65536,t=2,p=1,keyid=x$" + salt + "$" + key,
		"missing param":      "$argon2id$v=19$m=65536,t=2$" + salt + "$" + key,
		"leading zero":       "$argon2id$v=19$m=065536,t=2,p=1$" + salt + "$" + key,
		"sign":               "$argon2id$v=19$m=+65536,t=2,p=1$" + salt + "$" + key,
		"space":              "$argon2id$v=19$m=65536, t=2,p=1$" + salt + "$" + key,
		"empty number":       "$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + key,
		"huge memory":        "$argon2id$v=19$m=4294967296,t=2,p=1$" + salt + "$" + key,
		"memory over bound":  "$argon2id$v=19$m=1048577,t=2,p=1$" + salt + "$" + key,
		"memory under bound": "$argon2id$v=19$m=31,t=2,p=4$" + salt + "$" + key,
		"time zero":          "$argon2id$v=19$m=65536,t=0,p=1$" + salt + "$" + key,
		"time over bound":    "$argon2id$v=19$m=65536,t=65,p=1$" + salt + "$" + key,
		"threads zero":       "$argon2id$v=19$m=65536,t=2,p=0$" + salt + "$" + key,
		"threads over 255":   "$argon2id$v=19$m=65536,t=2,p=256$" + salt + "$" + key,
		"padded salt":        "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "=$" + key,
		"url base64":         "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + strings.Replace(key, "O", "-", 1),
		"newline in key":     "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key[:20] + "\n" + key[20:],
		"short salt":         "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNh$" + key,
		"short key":          "$argon2id$v=19$m=65536,t=2,p=1$" + salt + "$" + key[:20],
		"trailing bits":      "$argon2id$v=19$m=65536,t=2,p=1$" + salt[:10] + "R$" + key,
		"no key":             "$argon2id$v=19$m=65536,t=2,p=1$" + salt,
		"extra field":        good + "$x",
		"trailing newline":   good + "\n",
	} {
		if _, err := ParsePasswordHash(s); !errors.Is(err, ErrBadHash) {
			t.Errorf("%s: ParsePasswordHash(%q) = %v, want ErrBadHash", name, s, err)
		} else if strings.Contains(err.Error(), salt) {
			t.Errorf("%s: the error %q quotes the hash", name, err)
		}
	}
}

func TestClaimStateString(t *testing.T) {
	for c, want := range map[ClaimState]string{Claimed: "claimed", InFlight: "in-flight", Settled: "settled", 0: "ClaimState(0)", 42: "ClaimState(42)"} {
		if got := c.String(); got != want {
			t.Errorf("ClaimState(%d).String() = %q, want %q", c, got, want)
		}
	}
}
