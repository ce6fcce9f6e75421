package message

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/imxproject/imx/addr"
)

// An Envelope is the envelope of a MESSAGE record (docs/protocol.md §5.7):
// the addresses that travel beside the MIME bytes and route the message, as
// the SMTP envelope does (draft §4.7.1).
type Envelope struct {
	From addr.Address // the sender, field from
	To   addr.Address // the recipient, field to
}

// Parse checks a message that a peer sent, as the receiving server must
// (it trusts no peer), and returns it with its canonical form: the bytes to
// store and hand to the recipient's clients.
//
// b is the mime field of the MESSAGE, env its envelope, senderDomain the
// domain the peer authenticated as on the connection (normalised, as
// addr.ParseDomain returns it) and maxSize the size limit in octets
// (DefaultMaxSize if 0 or less), applied to b. Parse checks, in this order:
//
//   - b is at most maxSize octets (ErrTooLarge);
//   - the envelope sender is in senderDomain (ErrSenderDomain);
//   - the header section is well formed (ErrHeader): lines end in CRLF,
//     with no bare CR or LF; field names are RFC 5322 field names with the
//     colon right after them; values are UTF-8 without control characters
//     but tab; folded lines are unfolded;
//   - From and To appear exactly once each, parse with addr.Parse and equal
//     the envelope (ErrFromMismatch, ErrToMismatch); they are the bare
//     address, with no display name or comment;
//   - Date, Message-ID, MIME-Version, Content-Type and
//     Content-Transfer-Encoding appear at most once each and are valid:
//     Date is an RFC 5322 date-time with a numeric zone (or UT, GMT or a
//     US zone name) and a year from 1900 to 9999; Message-ID is
//     <dot-atom@dot-atom>; MIME-Version is 1.0; the content type is
//     text/plain or text/html-lite (text/plain if absent; ErrContentType)
//     with charset utf-8 or none (ErrCharset), other parameters ignored;
//     the transfer encoding is 7bit or 8bit (or absent; ErrEncoding);
//   - the body is valid UTF-8 (ErrUTF8) without control characters other
//     than tab, CR and LF (ErrControl).
//
// Subject and every other header that is not an X- header are accepted
// (§5 item 1: any number of headers may exist) and dropped; X- headers are
// kept in order. In the canonical form the body has CRLF line ends, an
// html-lite body is sanitized again (both servers sanitize), and the headers
// are those the package documentation lists. Parse accepts the canonical
// form unchanged. It can be longer than b when b was not canonical (headers
// a minimal message lacks, LF line ends, unclosed tags or a bare & in
// html-lite): it may be at most CanonicalSlack octets over maxSize, else
// ErrTooLarge, so that what the recipient's clients get is bounded. A
// message that Build made is canonical already and does not grow.
func Parse(b []byte, env Envelope, senderDomain string, maxSize int) (Message, []byte, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	// Most messages are in the canonical form already (Build wrote them):
	// parseFast recognises that form cheaply and gives up on anything else,
	// which parseGeneral then checks. Both give the same result on every
	// input that parseFast accepts (TestParseFastEquivalence, FuzzParse).
	if m, canon, ok := parseFast(b, env, senderDomain, maxSize, false); ok {
		return m, canon, nil
	}
	return parseGeneral(b, env, senderDomain, maxSize)
}

// Canonical is Parse for a caller that keeps only the canonical form: a
// receiving server, which checks a message and passes it on. It makes no
// copy of b for the Message it does not return.
func Canonical(b []byte, env Envelope, senderDomain string, maxSize int) ([]byte, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if _, canon, ok := parseFast(b, env, senderDomain, maxSize, true); ok {
		return canon, nil
	}
	_, canon, err := parseGeneral(b, env, senderDomain, maxSize)
	return canon, err
}

// parseGeneral is Parse without its fast path, for any input: the
// reference that parseFast must agree with. maxSize is at least 1.
func parseGeneral(b []byte, env Envelope, senderDomain string, maxSize int) (Message, []byte, error) {
	m, err := parse(b, env, senderDomain, maxSize)
	if err != nil {
		return Message{}, nil, err
	}
	n := m.mimeSize()
	if n > maxSize+CanonicalSlack {
		return Message{}, nil, fmt.Errorf("%w: %d octets once made canonical, limit %d plus %d", ErrTooLarge, n, maxSize, CanonicalSlack)
	}
	return m, m.appendMIME(make([]byte, 0, n)), nil
}

// CanonicalSlack is how many octets the canonical form that Parse returns
// may exceed maxSize by. It is room for what Parse adds to a message that is
// within the limit but not canonical: the MIME-Version, Content-Type and
// Content-Transfer-Encoding headers of a minimal message (97 octets at
// most) and From and To addresses whose normalised form is longer (IDNA
// A-labels). Growth beyond it comes from a body that sanitizing or CRLF line
// ends make longer, and is refused.
const CanonicalSlack = 1024

type field struct {
	name, value string
}

func parse(b []byte, env Envelope, senderDomain string, maxSize int) (Message, error) {
	if len(b) > maxSize {
		return Message{}, fmt.Errorf("%w: %d octets, limit %d", ErrTooLarge, len(b), maxSize)
	}
	switch {
	case env.From.IsZero():
		return Message{}, fmt.Errorf("%w: no envelope sender", ErrFromMismatch)
	case env.To.IsZero():
		return Message{}, fmt.Errorf("%w: no envelope recipient", ErrToMismatch)
	case env.From.Domain() != senderDomain:
		return Message{}, fmt.Errorf("%w: sender %s, connection authenticated for %q", ErrSenderDomain, env.From, senderDomain)
	}
	fields, body, err := readHeader(b)
	if err != nil {
		return Message{}, err
	}
	m := Message{ContentType: TextPlain}
	var seen [numSingle]bool
	for _, f := range fields {
		lname := strings.ToLower(f.name)
		if s, ok := singles[lname]; ok {
			if seen[s] {
				return Message{}, fmt.Errorf("%w: more than one %s header", ErrHeader, f.name)
			}
			seen[s] = true
		}
		switch lname {
		case "from":
			m.From, err = headerAddress(f, env.From, ErrFromMismatch)
		case "to":
			m.To, err = headerAddress(f, env.To, ErrToMismatch)
		case "date":
			m.Date, err = parseDate(f.value)
		case "message-id":
			m.MessageID, err = parseMessageID(f.value)
		case "mime-version":
			if f.value != "1.0" {
				err = fmt.Errorf("%w: MIME-Version %q, want 1.0", ErrHeader, f.value)
			}
		case "content-type":
			m.ContentType, err = parseContentType(f.value)
		case "content-transfer-encoding":
			if !strings.EqualFold(f.value, "8bit") && !strings.EqualFold(f.value, "7bit") {
				err = fmt.Errorf("%w: %q", ErrEncoding, f.value)
			}
		default:
			if isXName(f.name) {
				var x Header
				x, err = xHeader(f.name, f.value)
				m.XHeaders = append(m.XHeaders, x)
			}
		}
		if err != nil {
			return Message{}, err
		}
	}
	if !seen[singleFrom] {
		return Message{}, fmt.Errorf("%w: no From header", ErrHeader)
	}
	if !seen[singleTo] {
		return Message{}, fmt.Errorf("%w: no To header", ErrHeader)
	}
	s := string(body)
	if err := checkBody(s); err != nil {
		return Message{}, err
	}
	if m.ContentType == HTMLLite {
		m.Body = SanitizeHTMLLite(s)
	} else {
		m.Body = toCRLF(s)
	}
	return m, nil
}

// The headers that may appear at most once.
const (
	singleFrom = iota
	singleTo
	singleDate
	singleMessageID
	singleMIMEVersion
	singleContentType
	singleEncoding
	numSingle
)

var singles = map[string]int{
	"from":                      singleFrom,
	"to":                        singleTo,
	"date":                      singleDate,
	"message-id":                singleMessageID,
	"mime-version":              singleMIMEVersion,
	"content-type":              singleContentType,
	"content-transfer-encoding": singleEncoding,
}

// readHeader splits a message into its header fields, unfolded, with values
// checked and trimmed, and its body. A message may end right after its
// header section, without the blank line: its body is empty.
func readHeader(b []byte) ([]field, []byte, error) {
	type span struct {
		name       string
		start, end int // the value, folds included, in b
		folded     bool
	}
	spans := make([]span, 0, 8)
	pos := 0
	for pos < len(b) {
		i := bytes.Index(b[pos:], crlf)
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: header line without CRLF", ErrHeader)
		}
		line := b[pos : pos+i]
		lineStart := pos
		pos += i + 2
		if i == 0 {
			break // the blank line: the rest is the body
		}
		if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, '\n') >= 0 {
			return nil, nil, fmt.Errorf("%w: bare CR or LF in the header section", ErrHeader)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(spans) == 0 {
				return nil, nil, fmt.Errorf("%w: continuation line before the first field", ErrHeader)
			}
			s := &spans[len(spans)-1]
			s.end = lineStart + i
			s.folded = true
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return nil, nil, fmt.Errorf("%w: line without a colon", ErrHeader)
		}
		name := string(line[:colon])
		if !validFieldName(name) {
			return nil, nil, fmt.Errorf("%w: invalid field name %q", ErrHeader, name)
		}
		spans = append(spans, span{name: name, start: lineStart + colon + 1, end: lineStart + i})
	}
	fields := make([]field, len(spans))
	for i, s := range spans {
		v := b[s.start:s.end]
		if s.folded {
			// Unfolding removes each CRLF and keeps the white space after it.
			v = bytes.ReplaceAll(v, crlf, nil)
		}
		fields[i] = field{name: s.name, value: string(v)}
		if err := checkValue(s.name, fields[i].value); err != nil {
			return nil, nil, err
		}
		fields[i].value = trimWSP(fields[i].value)
	}
	return fields, b[pos:], nil
}

var crlf = []byte("\r\n")

// headerAddress parses a From or To header and checks it against the
// envelope address want.
func headerAddress(f field, want addr.Address, mismatch error) (addr.Address, error) {
	a, err := addr.Parse(f.value)
	if err != nil {
		return addr.Address{}, fmt.Errorf("%w: %s: %w", ErrHeader, f.name, err)
	}
	if a != want {
		return addr.Address{}, fmt.Errorf("%w: header %s, envelope %s", mismatch, a, want)
	}
	return a, nil
}

// The years a Date may have: RFC 5322 requires 1900 or later, and the
// four-digit form cannot go past 9999.
const (
	minYear = 1900
	maxYear = 9999
)

// dateLayouts are the RFC 5322 date-times Parse accepts, after runs of white
// space have become one space: the day of the week and the seconds are
// optional. The day of the week is not checked against the date.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04 -0700",
}

// obsZones are the zone names of RFC 5322 §4.3 that have a defined offset.
// The military letters are refused: RFC 5322 says their meaning is unknown.
var obsZones = map[string]string{
	"UT": "+0000", "GMT": "+0000",
	"EST": "-0500", "EDT": "-0400",
	"CST": "-0600", "CDT": "-0500",
	"MST": "-0700", "MDT": "-0600",
	"PST": "-0800", "PDT": "-0700",
}

// parseDate parses a Date header value and returns it in UTC.
func parseDate(v string) (time.Time, error) {
	s := strings.Join(strings.Fields(v), " ")
	if i := strings.LastIndexByte(s, ' '); i >= 0 {
		if z, ok := obsZones[s[i+1:]]; ok {
			s = s[:i+1] + z
		}
	}
	for _, layout := range dateLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if t.Nanosecond() != 0 {
			// time.Parse takes a fraction after the seconds; RFC 5322 has none.
			return time.Time{}, fmt.Errorf("%w: Date %q has a fraction of a second", ErrHeader, v)
		}
		t = t.UTC()
		if y := t.Year(); y < minYear || y > maxYear {
			return time.Time{}, fmt.Errorf("%w: Date %q: year out of range", ErrHeader, v)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: Date %q is not an RFC 5322 date-time", ErrHeader, v)
}

// parseMessageID parses <id-left@id-right>, both dot-atom-text, and returns
// it without the angle brackets.
func parseMessageID(v string) (string, error) {
	if len(v) >= 2 && v[0] == '<' && v[len(v)-1] == '>' {
		id := v[1 : len(v)-1]
		if left, right, ok := strings.Cut(id, "@"); ok && dotAtom(left) && dotAtom(right) {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: Message-ID %q is not <dot-atom@dot-atom>", ErrHeader, v)
}

// parseContentType parses a Content-Type value and returns TextPlain or
// HTMLLite.
func parseContentType(v string) (string, error) {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrContentType, v, err)
	}
	if mt != TextPlain && mt != HTMLLite {
		return "", fmt.Errorf("%w: %q", ErrContentType, mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", fmt.Errorf("%w: %q", ErrCharset, cs)
	}
	return mt, nil
}
