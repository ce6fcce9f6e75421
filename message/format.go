package message

import (
	"fmt"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/imxproject/imx/addr"
)

// The content types of draft §5 item 2.
const (
	// TextPlain is plain UTF-8 text; long lines are not wrapped (§5 item 3).
	TextPlain = "text/plain"
	// HTMLLite is the strict HTML subset of docs/html-lite.md.
	HTMLLite = "text/html-lite"
)

// DefaultMaxSize is the size limit Build and Parse apply when they are given
// no limit (a maxSize of 0 or less): the largest message, in octets of MIME,
// headers included. It is the max-message-size an imx domain publishes by
// default.
const DefaultMaxSize = 64 << 10

// dateLayout is the RFC 5322 date-time that Build writes, always in UTC.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// A Header is one extra header field of a message. Only X- headers are
// carried (§5 item 1 asks vendors to use them); their names are in the form
// of textproto.CanonicalMIMEHeaderKey ("X-Client") and their values have no
// leading or trailing white space.
type Header struct {
	Name  string
	Value string
}

// A Message is a message that Parse accepted. Build and Parse both write it
// in the canonical form that the package documentation shows.
type Message struct {
	// From and To are the From and To headers; Parse has checked that they
	// equal the envelope.
	From, To addr.Address
	// Date is the Date header in UTC, or the zero Time if the sender
	// wrote none.
	Date time.Time
	// MessageID is the Message-ID header without its angle brackets
	// ("0193...@alpha.example"), or "" if the sender wrote none.
	MessageID string
	// ContentType is TextPlain or HTMLLite; the charset is always utf-8.
	ContentType string
	// Body is the body with CRLF line ends; an html-lite body is the
	// sanitized one.
	Body string
	// XHeaders are the X- headers in the order of the message, or nil.
	XHeaders []Header
}

// appendMIME appends the canonical form of m.
func (m *Message) appendMIME(b []byte) []byte {
	b = append(b, "From: "...)
	b, _ = m.From.AppendText(b)
	b = append(b, "\r\nTo: "...)
	b, _ = m.To.AppendText(b)
	b = append(b, "\r\n"...)
	if !m.Date.IsZero() {
		b = append(b, "Date: "...)
		b = appendDate(b, m.Date)
		b = append(b, "\r\n"...)
	}
	if m.MessageID != "" {
		b = append(b, "Message-ID: <"...)
		b = append(b, m.MessageID...)
		b = append(b, ">\r\n"...)
	}
	b = append(b, "MIME-Version: 1.0\r\nContent-Type: "...)
	b = append(b, m.ContentType...)
	b = append(b, "; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"...)
	for _, h := range m.XHeaders {
		b = append(b, h.Name...)
		b = append(b, ':')
		if h.Value != "" {
			b = append(b, ' ')
			b = append(b, h.Value...)
		}
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, m.Body...)
}

// lastDate is the most recent second appendDate formatted: a server
// builds every message of a second with the same Date, and formatting it
// each time was 3% of a server's CPU under load.
var lastDate atomic.Pointer[formattedDate]

type formattedDate struct {
	unix int64
	text string
}

// appendDate appends t in dateLayout, in UTC.
func appendDate(b []byte, t time.Time) []byte {
	u := t.Unix()
	if d := lastDate.Load(); d != nil && d.unix == u {
		return append(b, d.text...)
	}
	text := t.UTC().Format(dateLayout)
	lastDate.Store(&formattedDate{unix: u, text: text})
	return append(b, text...)
}

// mimeSize is the length of m's canonical form, computed without building it.
func (m *Message) mimeSize() int {
	n := len("From: \r\nTo: \r\n") + len(m.From.String()) + len(m.To.String())
	if !m.Date.IsZero() {
		n += len("Date: \r\n") + len(dateLayout)
	}
	if m.MessageID != "" {
		n += len("Message-ID: <>\r\n") + len(m.MessageID)
	}
	n += len("MIME-Version: 1.0\r\nContent-Type: ; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n") + len(m.ContentType)
	for _, h := range m.XHeaders {
		n += len(h.Name) + len(":\r\n")
		if h.Value != "" {
			n += 1 + len(h.Value)
		}
	}
	return n + len("\r\n") + len(m.Body)
}

// bodyRune reports whether r may appear in a body or a header value: the
// characters of XML 1.0 (tab, LF, CR and everything from U+0020 but the
// noncharacters U+FFFE and U+FFFF), so that an IMX message can be carried by
// XMPP and shown on a terminal without control sequences.
func bodyRune(r rune) bool {
	return r >= 0x20 && r != 0xFFFE && r != 0xFFFF || r == '\t' || r == '\n' || r == '\r'
}

// checkBody checks that body is valid UTF-8 of allowed characters.
func checkBody(body string) error {
	for i, r := range body {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(body[i:]); n == 1 {
				return fmt.Errorf("%w: at octet %d", ErrUTF8, i)
			}
		}
		if !bodyRune(r) {
			return fmt.Errorf("%w: %U at octet %d", ErrControl, r, i)
		}
	}
	return nil
}

// toCRLF returns s with every line end (CRLF, a lone CR or a lone LF) as
// CRLF.
func toCRLF(s string) string {
	if !needsCRLF(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/16 + 2)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteString("\r\n")
		case '\n':
			b.WriteString("\r\n")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// needsCRLF reports whether s has a CR or LF that is not part of a CRLF.
func needsCRLF(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r':
			if i+1 >= len(s) || s[i+1] != '\n' {
				return true
			}
			i++
		case '\n':
			return true
		}
	}
	return false
}

// validFieldName reports whether s is an RFC 5322 field name: one or more
// printable US-ASCII characters other than the colon.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// isXName reports whether a field name is an X- name with something after
// the prefix.
func isXName(s string) bool {
	return len(s) > 2 && (s[0] == 'X' || s[0] == 'x') && s[1] == '-'
}

// checkValue checks a header value: valid UTF-8 (RFC 6532), no line break
// and no control character but tab. It names the field in the error.
func checkValue(name, v string) error {
	for i, r := range v {
		switch {
		case r == '\r' || r == '\n':
			return fmt.Errorf("%w: %s: line break in value", ErrHeader, name)
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(v[i:]); n == 1 {
				return fmt.Errorf("%w: %s: invalid UTF-8 in value", ErrHeader, name)
			}
		case !bodyRune(r):
			return fmt.Errorf("%w: %s: control character %U in value", ErrHeader, name, r)
		}
	}
	return nil
}

// xHeader checks an X- header and returns it in canonical form.
func xHeader(name, value string) (Header, error) {
	if err := checkValue(name, value); err != nil {
		return Header{}, err
	}
	return Header{Name: textproto.CanonicalMIMEHeaderKey(name), Value: trimWSP(value)}, nil
}

// trimWSP trims spaces and tabs, the white space of RFC 5322.
func trimWSP(s string) string {
	return strings.Trim(s, " \t")
}

// dotAtom reports whether s is an RFC 5322 dot-atom-text.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
