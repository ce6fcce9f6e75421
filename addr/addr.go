package addr

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// Length limits, in octets of the normalised form.
const (
	// MaxLocalLen is the longest local part, in octets of UTF-8 after
	// PRECIS enforcement (the limit RFC 5321 sets for mail).
	MaxLocalLen = 64
	// MaxDomainLen is the longest domain, in octets of its A-label form
	// without a trailing dot (RFC 1034 and RFC 1123).
	MaxDomainLen = 253
	// MaxLen is the longest address: local part, at-sign and domain.
	MaxLen = MaxLocalLen + 1 + MaxDomainLen
)

// maxInput is the longest input Parse examines. A valid address can be
// spelled longer than MaxLen (full-width letters take three octets and
// normalise to one), but not by much; anything longer is rejected unread.
const maxInput = 4 * MaxLen

// An Address is a normalised IMX end-user address, local@domain. The zero
// Address is not a valid address; it reports IsZero and prints as "".
//
// Addresses are comparable: a == b exactly when they name the same user, so
// an Address can be a map key.
type Address struct {
	// s is local@domain: the local part in PRECIS UsernameCaseMapped,
	// 1..MaxLocalLen octets, no '@'; the domain in lower-case A-labels,
	// 1..MaxDomainLen octets, no trailing dot. Kept whole, String and the
	// comparison with a spelling cost nothing; at is the index of its '@'.
	s  string
	at int
}

// Parse parses and normalises an address of the form local@domain, as the
// package documentation describes. The error, if any, is an *Error wrapping
// one of the package's sentinel errors.
func Parse(s string) (Address, error) {
	if len(s) > maxInput {
		return Address{}, newError(s, ErrTooLong, fmt.Sprintf("%d octets, limit %d", len(s), maxInput))
	}
	if !utf8.ValidString(s) {
		return Address{}, newError(s, ErrInvalidUTF8, "")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return Address{}, newError(s, ErrNoAt, "")
	}
	if strings.IndexByte(s[at+1:], '@') >= 0 {
		return Address{}, newError(s, ErrExtraAt, "")
	}
	local, e := normLocal(s[:at])
	if e != nil {
		return Address{}, e.on(s)
	}
	domain, e := normDomain(s[at+1:])
	if e != nil {
		return Address{}, e.on(s)
	}
	if local == s[:at] && domain == s[at+1:] {
		// Already normalised, as most addresses on the wire are: s is
		// the address as it is kept.
		return Address{s: s, at: at}, nil
	}
	return Address{s: local + "@" + domain, at: len(local)}, nil
}

// MustParse is like Parse but panics if s is not a valid address. It is for
// constants in programs and tests.
func MustParse(s string) Address {
	a, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

// Local returns the normalised local part, or "" for the zero Address.
func (a Address) Local() string { return a.s[:a.at] }

// Domain returns the normalised domain in A-label form, or "" for the zero
// Address.
func (a Address) Domain() string {
	if a.IsZero() {
		return ""
	}
	return a.s[a.at+1:]
}

// String returns the address as local@domain, or "" for the zero Address.
// Parse accepts the result and returns an Address equal to a.
func (a Address) String() string { return a.s }

// Equal reports whether a and other are the same address; it is a == other.
func (a Address) Equal(other Address) bool { return a == other }

// IsZero reports whether a is the zero Address.
func (a Address) IsZero() bool { return a == Address{} }

// AppendText implements [encoding.TextAppender]: it appends a.String() to b
// without allocating a string.
func (a Address) AppendText(b []byte) ([]byte, error) {
	if a.IsZero() {
		return b, nil
	}
	return append(b, a.s...), nil
}

// MarshalText implements [encoding.TextMarshaler]. The zero Address
// marshals as empty text.
func (a Address) MarshalText() ([]byte, error) {
	return a.AppendText(nil)
}

// UnmarshalText implements [encoding.TextUnmarshaler] with Parse. Empty text
// sets *a to the zero Address, so that an absent or empty field stays
// distinguishable with IsZero; on any error *a is left unchanged.
func (a *Address) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*a = Address{}
		return nil
	}
	p, err := Parse(string(text))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// maxLocalInput is the longest local part normLocal examines. The PRECIS
// mappings we know of shrink text by a factor of three at most (a full-width
// letter, the Kelvin sign, a Hangul syllable spelled as three jamo), so a
// longer local part cannot normalise to MaxLocalLen octets; the bound also
// caps the work of localDetail on hostile input.
const maxLocalInput = 4 * MaxLocalLen

// maxPrecisRounds is how many times normLocal applies the PRECIS profile
// before it gives up on a local part that does not settle (RFC 8266, 2.4).
const maxPrecisRounds = 4

// normLocal enforces the PRECIS UsernameCaseMapped profile on a local part.
// It returns the normalised local part, or an *Error without its Input.
func normLocal(s string) (string, *Error) {
	if s == "" {
		return "", fail(ErrEmptyLocal, "")
	}
	if len(s) > maxLocalInput {
		return "", fail(ErrLocalTooLong, fmt.Sprintf("%d octets before normalisation", len(s)))
	}
	if l, ok := asciiLocal(s); ok {
		if len(l) > MaxLocalLen {
			return "", fail(ErrLocalTooLong, fmt.Sprintf("%d octets after normalisation", len(l)))
		}
		return l, nil
	}
	l, err := precis.UsernameCaseMapped.String(s)
	if err != nil {
		return "", fail(ErrInvalidLocal, localDetail(s, err))
	}
	// The profile is applied once per call; an ASCII result is stable, and
	// anything else is checked by applying it again.
	for round := 1; !isASCII(l); round++ {
		if round == maxPrecisRounds {
			return "", fail(ErrInvalidLocal, "not stable under PRECIS enforcement")
		}
		again, err := precis.UsernameCaseMapped.String(l)
		if err != nil {
			return "", fail(ErrInvalidLocal, localDetail(l, err))
		}
		if again == l {
			break
		}
		l = again
	}
	switch {
	case l == "":
		return "", fail(ErrEmptyLocal, "nothing left after normalisation")
	case strings.IndexByte(l, '@') >= 0:
		return "", fail(ErrExtraAt, "the local part normalises to one containing '@'")
	case len(l) > MaxLocalLen:
		return "", fail(ErrLocalTooLong, fmt.Sprintf("%d octets after normalisation", len(l)))
	}
	return l, nil
}

// asciiLocal is the fast path of normLocal, for a local part of printable
// ASCII other than '@': PRECIS IdentifierClass allows all of U+0021 to
// U+007E and UsernameCaseMapped only lowers A to Z there, so the result is
// s lower-cased, without allocating if s is lower case already. It reports
// false for anything else, which takes the PRECIS path.
func asciiLocal(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '!' || c > '~' || c == '@' {
			return "", false
		}
	}
	return lowerASCII(s), true
}

// localDetail explains why PRECIS rejected s: it names the first white
// space, control character or other code point the profile disallows on its
// own, or else (for the Bidi Rule and the context rules, which concern the
// string as a whole) repeats the library's reason. It runs only on the error
// path, over at most maxLocalInput octets.
func localDetail(s string, err error) string {
	allowed := precis.UsernameCaseMapped.Allowed()
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			return fmt.Sprintf("white space %U", r)
		case unicode.IsControl(r):
			return fmt.Sprintf("control character %U", r)
		case allowed.Contains(r):
			continue
		}
		// r is disallowed, mapped to something else, or allowed only in
		// context. Between two letters it passes the Bidi Rule unless it is
		// right-to-left, so only the class check can fail there.
		if _, rerr := precis.UsernameCaseMapped.String("a" + string(r) + "a"); rerr != nil && rerr.Error() == errDisallowedRune {
			return fmt.Sprintf("disallowed code point %U", r)
		}
	}
	return libDetail(err)
}

// errDisallowedRune is the message of the x/text error for a code point that
// the profile disallows; the error itself is not exported.
const errDisallowedRune = "precis: disallowed rune encountered"

// libDetail turns an error from x/text or x/net into a detail: its message
// without the package prefix, shortened.
func libDetail(err error) string {
	msg := err.Error()
	for _, p := range []string{"precis: ", "idna: ", "bidirule: "} {
		if m, ok := strings.CutPrefix(msg, p); ok {
			msg = m
			break
		}
	}
	return shorten(msg)
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
