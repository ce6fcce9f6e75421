package addr

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// sentinels are the errors an *Error may wrap.
var sentinels = []error{
	ErrTooLong, ErrInvalidUTF8, ErrNoAt, ErrExtraAt, ErrEmptyLocal, ErrInvalidLocal, ErrLocalTooLong,
	ErrEmptyDomain, ErrInvalidDomain, ErrDomainTooLong, ErrLabelTooLong, ErrIPLiteral,
}

// FuzzParse checks, for any input, that Parse and ParseDomain do not panic,
// that their errors are well-formed *Errors of bounded size, and that what
// they accept is normalised: it parses again to the same value, within the
// limits, and the IDNA and PRECIS profiles leave it unchanged.
func FuzzParse(f *testing.F) {
	for _, tt := range validTests {
		f.Add(tt.in)
	}
	for _, tt := range invalidTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			checkError(t, "Parse", s, err)
			if !a.IsZero() {
				t.Errorf("Parse(%q) = %q with error %v", s, a, err)
			}
		} else {
			checkAddress(t, s, a)
		}

		d, err := ParseDomain(s)
		if err != nil {
			checkError(t, "ParseDomain", s, err)
			if d != "" {
				t.Errorf("ParseDomain(%q) = %q with error %v", s, d, err)
			}
		} else {
			checkDomain(t, s, d)
			if d2, err := ParseDomain(d); err != nil || d2 != d {
				t.Errorf("ParseDomain(%q) = %q, %v; ParseDomain(%q) = %q", s, d, err, d, d2)
			}
		}
	})
}

// checkAddress checks an address that Parse(s) returned.
func checkAddress(t *testing.T, s string, a Address) {
	t.Helper()
	str := a.String()
	if a.IsZero() || !utf8.ValidString(str) || len(str) > MaxLen {
		t.Fatalf("Parse(%q) = %q: zero, invalid UTF-8 or longer than MaxLen", s, str)
	}
	if len(a.Local()) == 0 || len(a.Local()) > MaxLocalLen || strings.Contains(a.Local(), "@") {
		t.Errorf("Parse(%q): local part %q", s, a.Local())
	}
	if str != a.Local()+"@"+a.Domain() {
		t.Errorf("Parse(%q): String %q is not Local@Domain", s, str)
	}
	b, err := Parse(str)
	if err != nil {
		t.Fatalf("Parse(%q) = %q, but Parse(%q): %v", s, str, str, err)
	}
	if b != a {
		t.Fatalf("Parse(%q) = %q, but Parse(%q) = %q", s, str, str, b)
	}
	if l, err := precis.UsernameCaseMapped.String(a.Local()); err != nil || l != a.Local() {
		t.Errorf("Parse(%q): PRECIS changes local part %q to %q, %v", s, a.Local(), l, err)
	}
	// The ASCII fast path of normLocal must agree with PRECIS.
	if in, _, _ := strings.Cut(s, "@"); isASCII(in) {
		if l, err := precis.UsernameCaseMapped.String(in); err != nil || l != a.Local() {
			t.Errorf("Parse(%q): local part %q, but PRECIS gives %q, %v", s, a.Local(), l, err)
		}
	}
	checkDomain(t, s, a.Domain())
	if d, err := ParseDomain(a.Domain()); err != nil || d != a.Domain() {
		t.Errorf("Parse(%q) = %q, but ParseDomain(%q) = %q, %v", s, str, a.Domain(), d, err)
	}
	var u Address
	if text, err := a.MarshalText(); err != nil || u.UnmarshalText(text) != nil || u != a {
		t.Errorf("Parse(%q) = %q: text round trip gives %q, %v", s, str, u, err)
	}
}

// checkDomain checks a domain that Parse or ParseDomain returned for s.
func checkDomain(t *testing.T, s, d string) {
	t.Helper()
	if d == "" || len(d) > MaxDomainLen || strings.HasSuffix(d, ".") {
		t.Fatalf("%q: domain %q is empty, too long or ends in a dot", s, d)
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
			t.Fatalf("%q: domain %q has a bad label %q", s, d, label)
		}
		for i := 0; i < len(label); i++ {
			if !isLDH(label[i]) {
				t.Fatalf("%q: domain %q has a bad label %q", s, d, label)
			}
		}
	}
	// The ASCII fast path of normDomain must agree with the IDNA profile.
	if a, err := idnaProfile.ToASCII(d); err != nil || a != d {
		t.Errorf("%q: IDNA changes domain %q to %q, %v", s, d, a, err)
	}
	if checkIP(d) != nil {
		t.Errorf("%q: domain %q is an IP literal", s, d)
	}
}

// checkError checks an error that fn(s) returned.
func checkError(t *testing.T, fn, s string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s(%q) error %T %v is not an *Error", fn, s, err, err)
	}
	known := false
	for _, sentinel := range sentinels {
		known = known || e.Err == sentinel
	}
	if !known || !errors.Is(err, e.Err) {
		t.Errorf("%s(%q) error %v wraps %v, not a sentinel", fn, s, err, e.Err)
	}
	if e.Input != shorten(s) {
		t.Errorf("%s(%q) error quotes %q", fn, s, e.Input)
	}
	if n := len(err.Error()); n > 1024 {
		t.Errorf("%s(%q) error message is %d octets", fn, s, n)
	}
}
