package message

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

// A Draft is what a client asks its server to send: the envelope, the content
// type, the body as typed and any extra headers.
type Draft struct {
	// From is the sender, the session's user; To is the recipient. Both
	// are required and become the From and To headers.
	From, To addr.Address
	// ContentType is TextPlain or HTMLLite (in any letter case); ""
	// means TextPlain.
	ContentType string
	// Body is the text of the message. It must be valid UTF-8 without
	// control characters other than tab, CR and LF; its line ends become
	// CRLF and nothing else about it changes for text/plain (long lines
	// are not wrapped, §5 item 3). A text/html-lite body is sanitized.
	Body string
	// XHeaders are extra headers, in order. Only X- headers are allowed.
	XHeaders []Header
	// ID, if not empty, is the id of the MESSAGE record (1 to
	// wire.MaxMessageIDLen octets): the Message-ID is derived from it as
	// <hex(ID)@sender-domain>, so that a message re-sent with the same id
	// is byte for byte the same message. Without it the Message-ID is
	// random.
	ID []byte
}

// A Builder builds messages on the originating server. Its zero value is
// ready to use, with the system clock and crypto/rand.
type Builder struct {
	// Now returns the time for the Date header; nil means time.Now.
	Now func() time.Time
	// Rand is the source of random Message-IDs; nil means crypto/rand.
	Rand io.Reader
}

// Build builds a message with the system clock and crypto/rand; see
// Builder.Build.
func Build(d Draft, maxSize int) ([]byte, error) {
	var b Builder
	return b.Build(d, maxSize)
}

// Build builds the MIME message of draft §5 that the originating server sends
// for d, in the canonical form of the package documentation: From, To, Date
// (the Builder's clock, in UTC), Message-ID, MIME-Version, Content-Type with
// charset=utf-8, Content-Transfer-Encoding: 8bit, then d's X- headers as
// given (names canonicalised, values trimmed, nothing folded), a blank line
// and the body with CRLF line ends, sanitized first if it is text/html-lite.
//
// maxSize is the size limit in octets of the whole message (the
// max-message-size domain attribute; DefaultMaxSize if 0 or less): a longer
// result, or a body longer than maxSize before sanitizing, is ErrTooLarge.
// Any extra header that is not an X- header is ErrHeader: Subject too, since
// IMX does not use it (§5 item 1) and a client that sends one should learn
// that it is not shown. Errors wrap the sentinels of this package.
func (bl *Builder) Build(d Draft, maxSize int) ([]byte, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if d.From.IsZero() {
		return nil, fmt.Errorf("%w: no From address", ErrHeader)
	}
	if d.To.IsZero() {
		return nil, fmt.Errorf("%w: no To address", ErrHeader)
	}
	m := Message{From: d.From, To: d.To}
	switch {
	case d.ContentType == "" || strings.EqualFold(d.ContentType, TextPlain):
		m.ContentType = TextPlain
	case strings.EqualFold(d.ContentType, HTMLLite):
		m.ContentType = HTMLLite
	default:
		return nil, fmt.Errorf("%w: %q", ErrContentType, d.ContentType)
	}
	if len(d.Body) > maxSize {
		return nil, fmt.Errorf("%w: body of %d octets, limit %d", ErrTooLarge, len(d.Body), maxSize)
	}
	if err := checkBody(d.Body); err != nil {
		return nil, err
	}
	if m.ContentType == HTMLLite {
		m.Body = SanitizeHTMLLite(d.Body)
	} else {
		m.Body = toCRLF(d.Body)
	}
	for _, h := range d.XHeaders {
		switch {
		case !validFieldName(h.Name):
			return nil, fmt.Errorf("%w: invalid field name %q", ErrHeader, h.Name)
		case strings.EqualFold(h.Name, "Subject"):
			return nil, fmt.Errorf("%w: Subject is not used in IMX messages (draft §5 item 1)", ErrHeader)
		case !isXName(h.Name):
			return nil, fmt.Errorf("%w: %s: only X- headers may be added", ErrHeader, h.Name)
		}
		x, err := xHeader(h.Name, h.Value)
		if err != nil {
			return nil, err
		}
		m.XHeaders = append(m.XHeaders, x)
	}
	id, err := bl.messageID(d)
	if err != nil {
		return nil, err
	}
	m.MessageID = id
	now := time.Now
	if bl.Now != nil {
		now = bl.Now
	}
	m.Date = now().UTC().Truncate(time.Second)
	if y := m.Date.Year(); y < minYear || y > maxYear {
		return nil, fmt.Errorf("message: clock gives year %d, outside %d to %d", y, minYear, maxYear)
	}
	if n := m.mimeSize(); n > maxSize {
		return nil, fmt.Errorf("%w: %d octets, limit %d", ErrTooLarge, n, maxSize)
	}
	return m.appendMIME(make([]byte, 0, m.mimeSize())), nil
}

// randomIDLen is the number of random octets in a Message-ID (128 bits).
const randomIDLen = 16

// messageID returns the Message-ID of d without angle brackets.
func (bl *Builder) messageID(d Draft) (string, error) {
	id := d.ID
	if len(id) > wire.MaxMessageIDLen {
		return "", fmt.Errorf("%w: message id of %d octets, limit %d", ErrHeader, len(id), wire.MaxMessageIDLen)
	}
	if len(id) == 0 {
		id = make([]byte, randomIDLen)
		r := bl.Rand
		if r == nil {
			r = rand.Reader
		}
		if _, err := io.ReadFull(r, id); err != nil {
			return "", fmt.Errorf("message: random Message-ID: %w", err)
		}
	}
	return hex.EncodeToString(id) + "@" + d.From.Domain(), nil
}
