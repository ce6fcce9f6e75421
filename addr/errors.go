package addr

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// The sentinel errors. Parse and ParseDomain never return them bare: they
// come wrapped in an *Error that quotes the input; use errors.Is to test.
var (
	// ErrTooLong means the input is longer than any spelling of a valid
	// address (or domain) could be, and was rejected without being examined.
	ErrTooLong = errors.New("addr: input too long")

	// ErrInvalidUTF8 means the input is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("addr: invalid UTF-8")

	// ErrNoAt means the input has no at-sign between local part and domain.
	ErrNoAt = errors.New("addr: no at-sign")

	// ErrExtraAt means the input has more than one at-sign, or a character
	// such as U+FF20 FULLWIDTH COMMERCIAL AT that normalises to one.
	ErrExtraAt = errors.New("addr: more than one at-sign")

	// ErrEmptyLocal means the local part (before the at-sign) is empty.
	ErrEmptyLocal = errors.New("addr: empty local part")

	// ErrInvalidLocal means the local part is rejected by the PRECIS
	// UsernameCaseMapped profile: a space, a control character, a symbol
	// or another disallowed code point, or a violation of the Bidi Rule.
	ErrInvalidLocal = errors.New("addr: invalid local part")

	// ErrLocalTooLong means the normalised local part is longer than
	// MaxLocalLen octets (or the input's local part longer than four times
	// that, before normalisation).
	ErrLocalTooLong = errors.New("addr: local part longer than 64 octets")

	// ErrEmptyDomain means the domain is empty (or only a dot, or made only
	// of characters that IDNA mapping removes).
	ErrEmptyDomain = errors.New("addr: empty domain")

	// ErrInvalidDomain means the domain is not a valid domain name: a
	// character other than a letter, digit or hyphen after IDNA mapping, an
	// empty label, a label beginning or ending with a hyphen, or a
	// violation of the IDNA2008 rules (an invalid A-label, the Bidi Rule,
	// the joiner rules).
	ErrInvalidDomain = errors.New("addr: invalid domain")

	// ErrDomainTooLong means the normalised domain is longer than
	// MaxDomainLen octets.
	ErrDomainTooLong = errors.New("addr: domain longer than 253 octets")

	// ErrLabelTooLong means a label of the normalised domain is longer than
	// 63 octets.
	ErrLabelTooLong = errors.New("addr: domain label longer than 63 octets")

	// ErrIPLiteral means the domain is an IP address literal, which cannot
	// name an IMX service (see the package documentation).
	ErrIPLiteral = errors.New("addr: IP address literal as domain")
)

// maxQuote is how many octets of the input an *Error keeps; longer inputs
// are cut at a rune boundary and marked with an ellipsis.
const maxQuote = 64

// An Error reports why Parse or ParseDomain rejected an input.
type Error struct {
	// Input is the rejected input, shortened to its first 64 octets
	// followed by "…" if it was longer.
	Input string
	// Err is one of the sentinel errors of this package.
	Err error
	// Detail says more about the problem, such as the offending label or
	// code point; it may be empty.
	Detail string
}

// Error returns the sentinel's message, the detail if any, and the quoted
// input, as in
//
//	addr: invalid domain: label "-abc" begins with a hyphen: "bob@-abc.example"
func (e *Error) Error() string {
	msg := e.Err.Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg + ": " + strconv.Quote(e.Input)
}

// Unwrap returns the sentinel error, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }

// newError returns an *Error for input, which it shortens.
func newError(input string, err error, detail string) *Error {
	return &Error{Input: shorten(input), Err: err, Detail: detail}
}

// fail returns an *Error whose Input the caller sets later with on.
func fail(err error, detail string) *Error {
	return &Error{Err: err, Detail: detail}
}

// on sets e.Input to input, shortened, and returns e.
func (e *Error) on(input string) *Error {
	e.Input = shorten(input)
	return e
}

// shorten returns s cut to at most maxQuote octets, at a rune boundary when
// s is valid UTF-8 there, with "…" appended when anything was cut.
func shorten(s string) string {
	if len(s) <= maxQuote {
		return s
	}
	n := maxQuote
	for n > maxQuote-utf8.UTFMax && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
