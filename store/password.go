package store

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id cost parameters (RFC 9106) used to hash
// new passwords. A hash records the parameters it was made with, so a store
// checks every password against the parameters in its hash: changing
// PasswordParams affects new hashes only, and old ones keep working (and
// are upgraded at the next successful login, see Accounts.Authenticate).
type PasswordParams struct {
	// Memory is the memory cost in KiB, at least 8 × Threads and at most
	// MaxPasswordMemory.
	Memory uint32
	// Time is the number of passes over the memory, 1 to MaxPasswordTime.
	Time uint32
	// Threads is the degree of parallelism, at least 1.
	Threads uint8
}

// DefaultPasswordParams are the parameters of new password hashes unless a
// store is configured otherwise: m=19456 (19 MiB), t=2, p=1, the minimum
// the OWASP Password Storage Cheat Sheet recommends for argon2id. One hash
// then takes about 20 to 40 ms of one core and 19 MiB of memory, which bounds
// how many logins per second a server can check: the admission of logins is
// the server's job (rate limits), not the store's.
var DefaultPasswordParams = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}

// The sizes and bounds of password hashes.
const (
	// PasswordSaltLen is the length of the random salt of a new hash.
	PasswordSaltLen = 16
	// PasswordKeyLen is the length of the derived key of a new hash.
	PasswordKeyLen = 32

	// MaxPasswordMemory (1 GiB, in KiB) and MaxPasswordTime bound the
	// parameters that a hash may carry, so that a damaged row cannot make
	// a check run for minutes.
	MaxPasswordMemory = 1 << 20
	MaxPasswordTime   = 64

	// A parsed hash carries a salt of minSaltLen to maxSaltLen bytes and a
	// key of minKeyLen to maxKeyLen bytes, which admits hashes made by
	// other argon2 tools with other choices than the constants above.
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// Validate reports whether p is within the bounds documented on its fields.
// The error wraps ErrInvalid.
func (p PasswordParams) Validate() error {
	switch {
	case p.Threads < 1:
		return fmt.Errorf("%w: argon2 threads %d, want at least 1", ErrInvalid, p.Threads)
	case p.Time < 1 || p.Time > MaxPasswordTime:
		return fmt.Errorf("%w: argon2 time %d, want 1 to %d", ErrInvalid, p.Time, MaxPasswordTime)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxPasswordMemory:
		return fmt.Errorf("%w: argon2 memory %d KiB, want %d to %d", ErrInvalid, p.Memory, 8*uint32(p.Threads), MaxPasswordMemory)
	}
	return nil
}

// PasswordHash is a parsed argon2id hash in the PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// where salt and key are in unpadded standard base64 (RFC 4648 §4 without
// '=' padding), as the reference implementation and the PHC format specify.
type PasswordHash struct {
	Params PasswordParams
	Salt   []byte
	Key    []byte
}

// hashes counts the argon2 computations of this process, see HashCount.
var hashes atomic.Uint64

// HashCount reports how many argon2id computations this process has made,
// for any purpose: hashing a new password, checking one, or the dummy
// check of BurnPassword. It serves metrics (each computation costs Memory
// KiB and a few tens of milliseconds) and the conformance suite, which uses
// it to see that a login for an unknown user does the same work as one for a
// known user.
func HashCount() uint64 { return hashes.Load() }

func derive(password string, salt []byte, p PasswordParams, keyLen uint32) []byte {
	hashes.Add(1)
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
}

// HashPassword hashes password with argon2id, the parameters p and a fresh
// random salt of PasswordSaltLen bytes, and returns the hash in the PHC
// string format. It fails with ErrInvalid if p is out of bounds or the
// password is empty.
func HashPassword(password string, p PasswordParams) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	if password == "" {
		return "", fmt.Errorf("%w: empty password", ErrInvalid)
	}
	salt := make([]byte, PasswordSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("store: password salt: %w", err)
	}
	h := PasswordHash{Params: p, Salt: salt, Key: derive(password, salt, p, PasswordKeyLen)}
	return h.String(), nil
}

// CheckPassword checks password against encoded, a hash made by
// HashPassword (or any argon2id hash that ParsePasswordHash accepts), with
// the parameters the hash carries. It returns nil if the password matches,
// ErrBadPassword if not, and an error wrapping ErrBadHash if encoded is
// malformed. The comparison of the keys takes constant time.
func CheckPassword(encoded, password string) error {
	h, err := ParsePasswordHash(encoded)
	if err != nil {
		return err
	}
	if !h.Check(password) {
		return ErrBadPassword
	}
	return nil
}

// Check reports whether password matches h.
func (h PasswordHash) Check(password string) bool {
	key := derive(password, h.Salt, h.Params, uint32(len(h.Key)))
	return subtle.ConstantTimeCompare(key, h.Key) == 1
}

// BurnPassword does the work of checking password against a hash made with
// p, and throws the result away. A store calls it when a login names an
// account that does not exist, so that the time a failed login takes does
// not tell whether the account exists. p is taken as it is; parameters out
// of bounds are replaced by DefaultPasswordParams.
func BurnPassword(password string, p PasswordParams) {
	if p.Validate() != nil {
		p = DefaultPasswordParams
	}
	var salt [PasswordSaltLen]byte
	derive(password, salt[:], p, PasswordKeyLen)
}

// b64 is the base64 of the PHC string format: standard alphabet, no
// padding, and strict, so that each value has exactly one spelling and a
// parsed hash prints back as the string it came from.
var b64 = base64.RawStdEncoding.Strict()

// String returns h in the PHC string format.
func (h PasswordHash) String() string {
	var b strings.Builder
	b.WriteString("$argon2id$v=19$m=")
	b.WriteString(strconv.FormatUint(uint64(h.Params.Memory), 10))
	b.WriteString(",t=")
	b.WriteString(strconv.FormatUint(uint64(h.Params.Time), 10))
	b.WriteString(",p=")
	b.WriteString(strconv.FormatUint(uint64(h.Params.Threads), 10))
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(h.Salt))
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(h.Key))
	return b.String()
}

// ParsePasswordHash parses an argon2id hash in the PHC string format. It
// accepts exactly the strings that PasswordHash.String produces:
//
//   - the algorithm argon2id and the version v=19 (0x13, the only version
//     golang.org/x/crypto/argon2 computes);
//   - the parameters m, t and p in that order, as decimal numbers without
//     signs or leading zeros, within the bounds of PasswordParams.Validate;
//   - no other parameters (no keyid, no data);
//   - a salt of 8 to 64 bytes and a key of 16 to 64 bytes, in unpadded
//     standard base64 with zero trailing bits.
//
// Anything else fails with an error wrapping ErrBadHash. The error never
// quotes the hash.
func ParsePasswordHash(s string) (PasswordHash, error) {
	bad := func(why string) (PasswordHash, error) {
		return PasswordHash{}, fmt.Errorf("%w: %s", ErrBadHash, why)
	}
	rest, ok := strings.CutPrefix(s, "$argon2id$")
	if !ok {
		return bad("not an argon2id hash")
	}
	rest, ok = strings.CutPrefix(rest, "v=19$")
	if !ok {
		return bad("version is not v=19")
	}
	params, rest, ok := strings.Cut(rest, "$")
	if !ok {
		return bad("no salt")
	}
	salt, key, ok := strings.Cut(rest, "$")
	if !ok {
		return bad("no key")
	}

	var p PasswordParams
	var n uint64
	var err error
	for i, name := range [...]string{"m=", "t=", "p="} {
		var field string
		if i < 2 {
			field, params, ok = strings.Cut(params, ",")
			if !ok {
				return bad("parameters are not m,t,p")
			}
		} else {
			field = params
		}
		v, ok := strings.CutPrefix(field, name)
		if !ok {
			return bad("parameters are not m,t,p")
		}
		if n, err = parseDecimal(v); err != nil {
			return bad("parameter " + name[:1] + " " + err.Error())
		}
		switch i {
		case 0:
			if n > MaxPasswordMemory {
				return bad("memory out of range")
			}
			p.Memory = uint32(n)
		case 1:
			if n > MaxPasswordTime {
				return bad("time out of range")
			}
			p.Time = uint32(n)
		case 2:
			if n > 255 {
				return bad("threads out of range")
			}
			p.Threads = uint8(n)
		}
	}
	if err := p.Validate(); err != nil {
		return bad("parameters out of range")
	}

	if !isBase64(salt) || !isBase64(key) {
		return bad("salt or key is not unpadded base64")
	}
	h := PasswordHash{Params: p}
	if h.Salt, err = b64.DecodeString(salt); err != nil {
		return bad("salt is not unpadded base64")
	}
	if len(h.Salt) < minSaltLen || len(h.Salt) > maxSaltLen {
		return bad("salt length out of range")
	}
	if h.Key, err = b64.DecodeString(key); err != nil {
		return bad("key is not unpadded base64")
	}
	if len(h.Key) < minKeyLen || len(h.Key) > maxKeyLen {
		return bad("key length out of range")
	}
	return h, nil
}

// isBase64 reports whether s consists of the characters of the standard
// base64 alphabet only. The decoder alone would also skip '\r' and '\n'.
func isBase64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// parseDecimal parses a PHC decimal parameter: 1 to 10 ASCII digits, no
// leading zero unless the number is 0.
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 10 {
		return 0, fmt.Errorf("is not 1 to 10 digits")
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("has a leading zero")
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("is not decimal")
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}
