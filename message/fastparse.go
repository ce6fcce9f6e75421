package message

import (
	"encoding/binary"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/imxproject/imx/addr"
)

// parseFast is the fast path of Parse, for a message whose header section is
// in the canonical form, as Build writes it:
//
//	From: <env.From>␍␊
//	To: <env.To>␍␊
//	[Date: Sat, 14 Mar 2026 15:09:26 +0000␍␊]
//	[Message-ID: <dot-atom@dot-atom>␍␊]
//	MIME-Version: 1.0␍␊
//	Content-Type: text/plain; charset=utf-8␍␊      (or text/html-lite)
//	Content-Transfer-Encoding: 8bit␍␊
//	[X-Name: value␍␊ ...]                          (canonical name, trimmed value)
//	␍␊
//
// byte for byte. It returns ok false for anything else, and for any input
// that Parse refuses, and leaves it to parseGeneral, which gives the error.
// When ok is true, m and canon are exactly what parseGeneral returns for
// the same arguments: every check that parseGeneral makes holds for such a
// header section (each field appears once, is well formed and has the value
// that parseGeneral would give it), and the body goes through the same
// checkBody and toCRLF or SanitizeHTMLLite. maxSize is at least 1.
//
// It saves parseGeneral's generic work: one string per field, lower-cased
// names and a map look-up per field, addr.Parse of From and To (the header
// must spell the envelope address exactly, which Parse accepts as equal, as
// addr.Address.String promises), time.Parse after strings.Fields,
// mime.ParseMediaType, and re-writing a canonical form that is the input.
//
// With borrow, m's strings are slices of b itself instead of a copy: for a
// caller that drops m before b changes (Canonical).
func parseFast(b []byte, env Envelope, senderDomain string, maxSize int, borrow bool) (m Message, canon []byte, ok bool) {
	if len(b) > maxSize || env.From.IsZero() || env.To.IsZero() || env.From.Domain() != senderDomain {
		return Message{}, nil, false
	}
	// b as a string, which the Message-ID, the X- headers and the body are
	// slices of: a copy, unless m is only borrowed.
	var s string
	if borrow {
		s = unsafe.String(unsafe.SliceData(b), len(b))
	} else {
		s = string(b)
	}
	m, body, ok := parseCanonicalHeader(s, env)
	if !ok {
		return Message{}, nil, false
	}
	switch {
	case m.ContentType == HTMLLite:
		// Sanitized again, as parseGeneral does: the sender is not trusted
		// to have done it.
		if checkBody(body) != nil {
			return Message{}, nil, false
		}
		m.Body = SanitizeHTMLLite(body)
	case cleanBody(body):
		m.Body = body // what checkBody accepts and toCRLF leaves alone
	default:
		if checkBody(body) != nil {
			return Message{}, nil, false
		}
		m.Body = toCRLF(body)
	}
	if m.Body == body {
		// The header section is canonical and so is the body: the
		// canonical form is b, within maxSize.
		return m, append(make([]byte, 0, len(b)), b...), true
	}
	n := m.mimeSize()
	if n > maxSize+CanonicalSlack {
		return Message{}, nil, false
	}
	return m, m.appendMIME(make([]byte, 0, n)), true
}

// parseCanonicalHeader parses the header section at the start of s if it is
// in the canonical form that parseFast describes, and returns the body, what
// follows the blank line. It sets every field of the Message but Body.
func parseCanonicalHeader(s string, env Envelope) (m Message, body string, ok bool) {
	rest, ok := cutAddressLine(s, "From: ", env.From)
	if !ok {
		return Message{}, "", false
	}
	if rest, ok = cutAddressLine(rest, "To: ", env.To); !ok {
		return Message{}, "", false
	}
	m = Message{From: env.From, To: env.To}
	const date = "Date: "
	if strings.HasPrefix(rest, date) {
		n := len(date) + len(dateLayout)
		if len(rest) < n+2 || rest[n:n+2] != "\r\n" {
			return Message{}, "", false
		}
		if m.Date, ok = parseCanonicalDate(rest[len(date):n]); !ok {
			return Message{}, "", false
		}
		rest = rest[n+2:]
	}
	const messageID = "Message-ID: "
	if strings.HasPrefix(rest, messageID) {
		i := strings.IndexByte(rest, '\n')
		if i < 0 || rest[i-1] != '\r' {
			return Message{}, "", false
		}
		// parseMessageID refuses white space around the brackets and in
		// them (so parseGeneral's trimming changes nothing), and every
		// character it accepts is one that checkValue accepts.
		id, err := parseMessageID(rest[len(messageID) : i-1])
		if err != nil {
			return Message{}, "", false
		}
		m.MessageID = id
		rest = rest[i+1:]
	}
	const (
		plain = "MIME-Version: 1.0\r\nContent-Type: " + TextPlain + "; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
		lite  = "MIME-Version: 1.0\r\nContent-Type: " + HTMLLite + "; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
	)
	switch {
	case strings.HasPrefix(rest, plain):
		m.ContentType = TextPlain
		rest = rest[len(plain):]
	case strings.HasPrefix(rest, lite):
		m.ContentType = HTMLLite
		rest = rest[len(lite):]
	default:
		return Message{}, "", false
	}
	// The X- headers, one a line, up to the blank line. XHeaders stays nil
	// without any, as in parseGeneral.
	var buf [4]Header
	xs := buf[:0]
	for {
		i := strings.IndexByte(rest, '\n')
		if i < 1 || rest[i-1] != '\r' {
			return Message{}, "", false
		}
		if i == 1 {
			rest = rest[2:] // the blank line
			break
		}
		x, ok := canonicalXHeader(rest[:i-1])
		if !ok {
			return Message{}, "", false
		}
		xs = append(xs, x)
		rest = rest[i+1:]
	}
	if len(xs) > 0 {
		m.XHeaders = append(make([]Header, 0, len(xs)), xs...)
	}
	return m, rest, true
}

// cutAddressLine cuts the line prefix+a+CRLF from the start of h. a is not
// the zero Address.
//
// parseGeneral would parse the value with addr.Parse and compare it with a;
// addr.Parse(a.String()) is a, so the exact spelling of a passes that test
// without it. The value must also pass checkValue and be trimmed already,
// as parseGeneral checks and trims it before it parses it.
func cutAddressLine(h, prefix string, a addr.Address) (rest string, ok bool) {
	local, domain := a.Local(), a.Domain()
	n := len(prefix) + len(local) + 1 + len(domain)
	if len(h) < n+2 || h[:len(prefix)] != prefix || h[n:n+2] != "\r\n" {
		return "", false
	}
	v := h[len(prefix):n]
	if v[:len(local)] != local || v[len(local)] != '@' || v[len(local)+1:] != domain {
		return "", false
	}
	if !trimmed(v) || !validValue(v) {
		return "", false
	}
	return h[n+2:], true
}

// shortMonths are the month names of dateLayout.
var shortMonths = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseCanonicalDate parses v if it is a date that appendMIME writes: the
// dateLayout in UTC, with the right day of the week and a year from minYear,
// so that it is the Date that parseDate returns for v and that appendMIME
// writes v again. Anything else, ok is false.
func parseCanonicalDate(v string) (t time.Time, ok bool) {
	// Sat, 14 Mar 2026 15:09:26 +0000
	// 0         1         2         3
	// 0123456789012345678901234567890
	if len(v) != len(dateLayout) || v[3:5] != ", " || v[7] != ' ' || v[11] != ' ' ||
		v[16] != ' ' || v[19] != ':' || v[22] != ':' || v[25:] != " +0000" {
		return time.Time{}, false
	}
	day, ok1 := decimal(v[5:7])
	year, ok2 := decimal(v[12:16])
	hour, ok3 := decimal(v[17:19])
	minute, ok4 := decimal(v[20:22])
	sec, ok5 := decimal(v[23:25])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || year < minYear || hour > 23 || minute > 59 || sec > 59 || day < 1 {
		return time.Time{}, false
	}
	month := time.Month(0)
	for i, name := range shortMonths {
		if v[8:11] == name {
			month = time.Month(i + 1)
			break
		}
	}
	if month == 0 {
		return time.Time{}, false
	}
	if day > daysIn(month, year) {
		return time.Time{}, false // time.Parse refuses it; time.Date would move it on
	}
	t = time.Date(year, month, day, hour, minute, sec, 0, time.UTC)
	if t.Weekday().String()[:3] != v[:3] {
		return time.Time{}, false // parseDate ignores it, appendMIME writes the right one
	}
	return t, true
}

// daysIn returns the number of days in a month of the proleptic Gregorian
// calendar, as time.Parse counts them.
func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// decimal parses s, one or more ASCII digits.
func decimal(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// canonicalXHeader parses line if it is an X- header as appendMIME writes
// it: "Name: value", or "Name:" for an empty value, with the name an X- name
// in canonical form and the value trimmed and valid.
func canonicalXHeader(line string) (Header, bool) {
	colon := strings.IndexByte(line, ':')
	if colon < 0 {
		return Header{}, false
	}
	name, v := line[:colon], line[colon+1:]
	if !validFieldName(name) || !isXName(name) || textproto.CanonicalMIMEHeaderKey(name) != name {
		return Header{}, false
	}
	if v != "" {
		if v[0] != ' ' {
			return Header{}, false
		}
		v = v[1:]
		if v == "" || !trimmed(v) || !validValue(v) {
			return Header{}, false
		}
	}
	return Header{Name: name, Value: v}, true
}

// trimmed reports whether trimWSP(v) is v.
func trimmed(v string) bool {
	return v == "" || v[0] != ' ' && v[0] != '\t' && v[len(v)-1] != ' ' && v[len(v)-1] != '\t'
}

// validValue reports whether checkValue accepts v, taking ASCII a byte at a
// time.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 0x20 && c < utf8.RuneSelf || c == '\t':
		case c < utf8.RuneSelf:
			return false // CR, LF or another C0 control
		default:
			// v[:i] is ASCII, so v[i:] has the runes that are left.
			return checkValue("", v[i:]) == nil
		}
	}
	return true
}

// SWAR constants: a 1 and a 0x80 in every octet of a word.
const (
	lows  = 0x0101010101010101
	highs = 0x8080808080808080
)

// cleanBody reports whether checkBody accepts s and toCRLF returns it
// unchanged (every CR is followed by LF and every LF follows a CR), as for
// most text/plain bodies. It takes printable ASCII eight octets at a time.
func cleanBody(s string) bool {
	for i := 0; i < len(s); {
		if len(s)-i >= 8 {
			w := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
			// No octet at 0x80 or above, and none below 0x20. With every
			// octet below 0x80, subtracting 0x20 from each sets a high
			// bit exactly when one is below 0x20: the lowest such octet
			// gets no borrow from below and wraps to 0xE0 or more, and
			// without one there is no borrow and each stays under 0x60.
			if w&highs == 0 && (w-0x20*lows)&highs == 0 {
				i += 8
				continue
			}
		}
		c := s[i]
		switch {
		case c >= 0x20 && c < utf8.RuneSelf || c == '\t':
			i++
		case c == '\r':
			if i+1 >= len(s) || s[i+1] != '\n' {
				return false
			}
			i += 2
		case c < utf8.RuneSelf: // LF alone or another C0 control
			return false
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 || !bodyRune(r) {
				return false
			}
			i += n
		}
	}
	return true
}
