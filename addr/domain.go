package addr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// maxDomainInput is the longest input ParseDomain examines; see maxInput.
const maxDomainInput = 4 * MaxDomainLen

// maxLabelLen is the longest label of a domain, in octets (RFC 1034).
const maxLabelLen = 63

// idnaProfile converts a domain to A-labels. It is idna.Lookup spelled out,
// so that a change to Lookup's "may change over time" defaults cannot change
// which addresses are equal:
//
//   - MapForLookup applies the UTS #46 mapping (case folding, width and
//     compatibility mappings, U+3002 and other dots to '.') and turns on
//     StrictDomainName and ValidateLabels.
//   - StrictDomainName (STD3 rules) rejects ASCII other than letters,
//     digits, hyphen and dot: '_', '@', ':', '[', space, controls.
//   - ValidateLabels checks IDNA2008 label validity: hyphens (CheckHyphens:
//     no leading or trailing hyphen, no "--" in the third and fourth
//     positions), joiners (CheckJoiners: the ContextJ rules for U+200C and
//     U+200D), NFC, and that an "xn--" label decodes to a valid U-label.
//   - BidiRule applies RFC 5893 to names with right-to-left labels.
//   - Transitional(false) keeps the IDNA2008 meaning of the deviation
//     characters: "faß.de" is xn--fa-hia.de, not fass.de.
//   - VerifyDNSLength(false): lengths and empty labels are checked by
//     checkLDH after the trailing dot has been dropped, which gives
//     ErrLabelTooLong and ErrDomainTooLong rather than a generic IDNA error.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.StrictDomainName(true),
	idna.ValidateLabels(true),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.VerifyDNSLength(false),
)

// ParseDomain normalises a bare domain, as carried on the wire for dial-back
// and in domain attributes, with the rules Parse applies to the domain of an
// address (see the package documentation): IDNA A-labels, lower case, LDH
// syntax, one trailing dot dropped, no IP literals. It returns the domain as
// a plain string, the form DNS lookups and map keys want; there is no Domain
// type, because an Address already guarantees its domain is normalised and a
// named string type could not. The error, if any, is an *Error.
func ParseDomain(s string) (string, error) {
	if len(s) > maxDomainInput {
		return "", newError(s, ErrTooLong, fmt.Sprintf("%d octets, limit %d", len(s), maxDomainInput))
	}
	if !utf8.ValidString(s) {
		return "", newError(s, ErrInvalidUTF8, "")
	}
	d, e := normDomain(s)
	if e != nil {
		return "", e.on(s)
	}
	return d, nil
}

// normDomain normalises a domain that is valid UTF-8. It returns the domain,
// or an *Error without its Input.
func normDomain(s string) (string, *Error) {
	if s == "" {
		return "", fail(ErrEmptyDomain, "")
	}
	if s[0] == '[' {
		return "", fail(ErrIPLiteral, "address literal in brackets")
	}
	if strings.Count(s, ":") >= 2 {
		return "", fail(ErrIPLiteral, "IPv6 address")
	}
	d := s
	if isASCII(d) {
		// The common case. Checking the LDH syntax first gives precise
		// errors; a lower-case LDH name in which no label has "--" in the
		// third and fourth positions (as A-labels do) is unchanged by the
		// IDNA profile, which is then skipped.
		d = strings.TrimSuffix(lowerASCII(d), ".")
		if d == "" {
			return "", fail(ErrEmptyDomain, "only the root")
		}
		if e := checkLDH(d); e != nil {
			return "", e
		}
		if !hasReservedHyphens(d) {
			if e := checkIP(d); e != nil {
				return "", e
			}
			return d, nil
		}
	}
	a, err := idnaProfile.ToASCII(d)
	if err != nil {
		return "", fail(ErrInvalidDomain, idnaDetail(d, err))
	}
	if a != d {
		// Check the A-labels as a lookup of them would. x/net/idna applies
		// the Bidi Rule before the UTS #46 mapping (golang/go#81525), so
		// "aℵ" passes though it maps to "aא", which fails the rule and so
		// would not parse again.
		if again, err := idnaProfile.ToASCII(a); err != nil || again != a {
			return "", fail(ErrInvalidDomain, fmt.Sprintf("maps to %q, which IDNA rejects", shorten(a)))
		}
	}
	// A non-ASCII name may end in a dot only after mapping ("example。").
	a = strings.TrimSuffix(a, ".")
	if a == "" {
		return "", fail(ErrEmptyDomain, "nothing left after IDNA mapping")
	}
	if e := checkLDH(a); e != nil {
		return "", e
	}
	if e := checkIP(a); e != nil {
		return "", e
	}
	return a, nil
}

// idnaDetail explains why the IDNA profile rejected d. For an ASCII name it
// names the label at fault, which the library's message does not do well for
// a bad A-label (it quotes the garbled decoding); otherwise, and when no
// single label is at fault (the Bidi Rule spans labels), it repeats the
// library's reason.
func idnaDetail(d string, err error) string {
	if isASCII(d) {
		for label := range strings.SplitSeq(d, ".") {
			if _, lerr := idnaProfile.ToASCII(label); lerr == nil {
				continue
			}
			if strings.HasPrefix(label, "xn--") {
				return fmt.Sprintf("label %q is not a valid A-label", label)
			}
			if hasReservedHyphens(label) {
				return fmt.Sprintf("label %q has hyphens in the third and fourth positions, reserved for A-labels", label)
			}
		}
	}
	return libDetail(err)
}

// checkLDH checks that d, without a trailing dot, is a lower-case LDH domain
// name within the length limits.
func checkLDH(d string) *Error {
	if len(d) > MaxDomainLen {
		return fail(ErrDomainTooLong, fmt.Sprintf("%d octets", len(d)))
	}
	for label := range strings.SplitSeq(d, ".") {
		switch {
		case label == "":
			return fail(ErrInvalidDomain, "empty label")
		case len(label) > maxLabelLen:
			return fail(ErrLabelTooLong, fmt.Sprintf("label %q has %d octets", shorten(label), len(label)))
		case label[0] == '-':
			return fail(ErrInvalidDomain, fmt.Sprintf("label %q begins with a hyphen", label))
		case label[len(label)-1] == '-':
			return fail(ErrInvalidDomain, fmt.Sprintf("label %q ends with a hyphen", label))
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isLDH(c) {
				return fail(ErrInvalidDomain, fmt.Sprintf("invalid character %s in label %q", quoteByte(c), label))
			}
		}
	}
	return nil
}

// checkIP rejects d if it could be read as an IPv4 address: its last label
// is all digits ("192.0.2.1", "127.1", "2130706433") or a 0x-prefixed
// hexadecimal number ("0x7f000001"), the forms inet_aton accepts.
func checkIP(d string) *Error {
	last := d[strings.LastIndexByte(d, '.')+1:]
	if allDigits(last, 0) || (strings.HasPrefix(last, "0x") && allDigits(last[2:], 16)) {
		return fail(ErrIPLiteral, fmt.Sprintf("last label %q is a number", last))
	}
	return nil
}

// allDigits reports whether s is all decimal digits, or all hexadecimal
// digits if base is 16. The empty string counts as a number.
func allDigits(s string, base int) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9') && !(base == 16 && 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// hasReservedHyphens reports whether a label of d has hyphens in its third
// and fourth positions, as A-labels ("xn--") and the reserved R-LDH labels
// of IDNA2008 do.
func hasReservedHyphens(d string) bool {
	for label := range strings.SplitSeq(d, ".") {
		if len(label) >= 4 && label[2] == '-' && label[3] == '-' {
			return true
		}
	}
	return false
}

// isLDH reports whether c is a lower-case letter, a digit or a hyphen.
func isLDH(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
}

// lowerASCII returns s with ASCII upper-case letters lowered, without
// allocating when there are none.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// quoteByte quotes an octet of a domain for an error message.
func quoteByte(c byte) string {
	if c < utf8.RuneSelf {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("octet %#02x", c)
}
