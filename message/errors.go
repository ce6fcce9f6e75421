package message

import (
	"errors"

	"github.com/imxproject/imx/wire"
)

// The problems Build and Parse report. Every error they return wraps exactly
// one of these (with detail: the header, the octet offset, the sizes), so
// callers test with errors.Is, and Status maps them to the status a server
// answers with.
var (
	// ErrTooLarge means the message, in octets of MIME with its headers,
	// is over the size limit (the max-message-size domain attribute), or
	// the body alone is, before it is sanitized.
	ErrTooLarge = errors.New("message: too large")

	// ErrFromMismatch means the From header does not name the envelope
	// sender, or the envelope has no sender: the message claims a sender
	// that the connection does not vouch for (draft §6.2.2.1).
	ErrFromMismatch = errors.New("message: From header does not match the envelope")

	// ErrToMismatch means the To header does not name the envelope
	// recipient, or the envelope has no recipient.
	ErrToMismatch = errors.New("message: To header does not match the envelope")

	// ErrSenderDomain means the sender's domain is not the domain that
	// the peer authenticated as (by dial-back) on the connection the
	// message came on.
	ErrSenderDomain = errors.New("message: sender domain not authenticated")

	// ErrContentType means a content type other than text/plain and
	// text/html-lite, or a Content-Type header that does not parse.
	ErrContentType = errors.New("message: unsupported content type")

	// ErrCharset means a charset other than utf-8.
	ErrCharset = errors.New("message: unsupported charset")

	// ErrEncoding means a Content-Transfer-Encoding other than 7bit and
	// 8bit: quoted-printable, base64 and binary are refused.
	ErrEncoding = errors.New("message: unsupported transfer encoding")

	// ErrHeader means a malformed header section or header field: a bad
	// field name, a line break or control character in a value (header
	// injection), a bare CR or LF, a missing or repeated From or To, an
	// address that does not parse, a bad Date, Message-ID or
	// MIME-Version, a repeated singleton header, or, in Build, an extra
	// header that is not an X- header (Subject included).
	ErrHeader = errors.New("message: invalid header")

	// ErrUTF8 means the body is not valid UTF-8.
	ErrUTF8 = errors.New("message: body is not valid UTF-8")

	// ErrControl means the body holds a character that no IMX message may
	// carry: NUL or another C0 control other than tab, CR and LF, or one of
	// the noncharacters U+FFFE and U+FFFF (the characters XML 1.0 forbids,
	// so that any message can cross an XMPP gateway and none can send
	// control sequences to a terminal).
	ErrControl = errors.New("message: control character in body")
)

// Status returns the status a server answers when Build or Parse fails with
// err, for the RESULT of the MESSAGE (or of the client's SEND):
//
//	nil                                     ok
//	ErrTooLarge                             too-large
//	ErrSenderDomain, ErrFromMismatch        not-authorized
//	ErrToMismatch, ErrContentType,
//	ErrCharset, ErrEncoding, ErrHeader,
//	ErrUTF8, ErrControl                     bad-request
//
// Any other error gives what wire.StatusOf gives: the wire.Status itself if
// err is or wraps one, internal-error otherwise (a failing random source,
// say).
func Status(err error) wire.Status {
	switch {
	case err == nil:
		return wire.StatusOK
	case errors.Is(err, ErrTooLarge):
		return wire.StatusTooLarge
	case errors.Is(err, ErrSenderDomain), errors.Is(err, ErrFromMismatch):
		return wire.StatusNotAuthorized
	case errors.Is(err, ErrToMismatch), errors.Is(err, ErrContentType),
		errors.Is(err, ErrCharset), errors.Is(err, ErrEncoding),
		errors.Is(err, ErrHeader), errors.Is(err, ErrUTF8), errors.Is(err, ErrControl):
		return wire.StatusBadRequest
	}
	return wire.StatusOf(err)
}
