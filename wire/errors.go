package wire

import (
	"errors"
)

// Problems found in a frame. Each *FormatError wraps exactly one of them, so
// callers test with errors.Is.
var (
	// ErrTruncated: the input ends inside a header or a field.
	ErrTruncated = errors.New("truncated")
	// ErrLength: the header's length does not match the bytes given, or a
	// field's length runs past the end of the body.
	ErrLength = errors.New("length mismatch")
	// ErrFrameTooLarge: the body length is over the receiver's limit.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrMalformed: bytes that no valid encoding produces, such as a
	// non-minimal varint or an integer field that is not 1, 2, 4 or 8
	// bytes long.
	ErrMalformed = errors.New("malformed")
	// ErrFieldKind: a known field carries the wrong kind (text instead of
	// uint, ...).
	ErrFieldKind = errors.New("wrong field kind")
	// ErrInvalidUTF8: a text field is not valid UTF-8 (§4.4.10).
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrMissingField: a required field is absent.
	ErrMissingField = errors.New("required field missing")
	// ErrDuplicateField: a field that may appear once appears again.
	ErrDuplicateField = errors.New("duplicate field")
	// ErrOutOfRange: a value or a length outside what the field allows.
	ErrOutOfRange = errors.New("value out of range")
	// ErrBadHeader: the flags or the tag do not fit the record (a
	// request without a tag, a response without the response flag, ...).
	ErrBadHeader = errors.New("bad header")
	// ErrUnsupported: a frame marked must-understand has an unknown type
	// or an unknown field key (§4.4.2).
	ErrUnsupported = errors.New("must-understand record not understood")
)

// FormatError describes a frame that breaks the rules of docs/protocol.md.
type FormatError struct {
	Type   Type   // the record type, 0 if the header was not read
	Field  string // the field's name ("from") or "key 0xNN"; empty for the frame
	Err    error  // one of the Err* problems above
	Detail string // what exactly, for logs; never more than a few dozen bytes of input
}

func (e *FormatError) Error() string {
	s := "wire: "
	if e.Type != 0 {
		s += e.Type.String() + " "
	}
	if e.Field != "" {
		s += "field " + e.Field + ": "
	} else if e.Type != 0 {
		s += "frame: "
	}
	s += e.Err.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the problem, one of the Err* values.
func (e *FormatError) Unwrap() error { return e.Err }

// Status returns the status a receiver answers with: unsupported for
// ErrUnsupported, too-large for ErrFrameTooLarge, bad-request otherwise.
func (e *FormatError) Status() Status {
	switch e.Err {
	case ErrUnsupported:
		return StatusUnsupported
	case ErrFrameTooLarge:
		return StatusTooLarge
	}
	return StatusBadRequest
}

// StatusOf returns the status that describes err: the Status itself, the
// status of a *FormatError, or StatusInternal for any other error; nil
// gives StatusOK.
func StatusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	var fe *FormatError
	if errors.As(err, &fe) {
		return fe.Status()
	}
	var s Status
	if errors.As(err, &s) {
		return s
	}
	return StatusInternal
}

func formatErr(t Type, field string, problem error, detail string) *FormatError {
	return &FormatError{Type: t, Field: field, Err: problem, Detail: detail}
}
