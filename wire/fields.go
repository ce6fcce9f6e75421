package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// Kind is the kind of a field's value, the second byte of every field.
//
//	0x01 uint   1, 2, 4 or 8 bytes, big-endian, unsigned; encoders use the shortest
//	0x02 bytes  opaque octets
//	0x03 text   UTF-8 (§4.4.10)
//	0x04 attr   1 byte name length n, n bytes of name, then the value as UTF-8 text
//
// Other kinds are reserved; a receiver skips a field of an unknown kind
// whose key it does not know either.
type Kind uint8

const (
	KindUint  Kind = 0x01
	KindBytes Kind = 0x02
	KindText  Kind = 0x03
	KindAttr  Kind = 0x04
)

// Field lengths and counts. Lengths are in bytes.
const (
	MaxAddressLen   = 318 // local@domain: 64 + 1 + 253 (package addr enforces the parts)
	MaxDomainLen    = 253 // RFC 1034, in A-label form
	MaxTextLen      = 1024
	MaxTokenLen     = 64 // capability names and attribute names
	MaxSoftwareLen  = 128
	MaxNodeLen      = 64
	MaxDialbackLen  = 512 // dial-back token
	MinSecretLen    = 16  // 128 bits (§6.3.1 secret)
	MaxSecretLen    = 64
	MaxMessageIDLen = 64
	MaxPingDataLen  = 256
	MaxAttrValueLen = 4096
	MaxAliasLen     = 128
)

const keyNode = 0xF0 // the common node field, allowed in every record

type fieldSpec struct {
	key   uint8
	name  string
	kind  Kind
	req   bool   // must appear (at least once, when rep)
	rep   bool   // may appear more than once
	token bool   // text is a token: [a-z0-9._-]+
	once  bool   // text is not interned: secrets, message bodies
	min   uint64 // uint: least value; others: least length
	max   uint64 // uint: greatest value; others: greatest length
}

var nodeSpec = fieldSpec{key: keyNode, name: "node", kind: KindText, min: 1, max: MaxNodeLen}

// appendUvarint appends v as an unsigned LEB128 varint.
func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendFieldHead(b []byte, key uint8, k Kind, n int) []byte {
	b = append(b, key, byte(k))
	if n < 0x80 { // the common case: one length byte
		return append(b, byte(n))
	}
	return appendUvarint(b, uint64(n))
}

// encoder appends the fields of one frame, checking each value against the
// same field specs that the decoder enforces, so that nothing invalid is
// ever sent. After the first error it appends nothing more.
type encoder struct {
	b     []byte
	start int
	rs    *recordSpec
	err   error
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// spec returns the spec of key, which the record's encoder always names
// correctly.
func (e *encoder) spec(key uint8) *fieldSpec { return &e.rs.fields[e.rs.keyIdx[key]] }

func (e *encoder) missing(fs *fieldSpec) {
	e.fail(formatErr(e.rs.typ, fs.name, ErrMissingField, ""))
}

func (e *encoder) checkLen(fs *fieldSpec, n int) bool {
	if uint64(n) < fs.min || uint64(n) > fs.max {
		e.fail(formatErr(e.rs.typ, fs.name, ErrOutOfRange, "length "+itoa(uint64(n))+" not in "+itoa(fs.min)+".."+itoa(fs.max)))
		return false
	}
	return true
}

// uint appends an integer field; 0 is omitted when the field is optional.
func (e *encoder) uint(key uint8, v uint64) {
	fs := e.spec(key)
	if e.err != nil || v == 0 && !fs.req {
		return
	}
	if v < fs.min || v > fs.max {
		e.fail(formatErr(e.rs.typ, fs.name, ErrOutOfRange, itoa(v)+" not in "+itoa(fs.min)+".."+itoa(fs.max)))
		return
	}
	b := e.b
	switch {
	case v <= 0xFF:
		b = append(b, key, byte(KindUint), 1, byte(v))
	case v <= 0xFFFF:
		b = binary.BigEndian.AppendUint16(append(b, key, byte(KindUint), 2), uint16(v))
	case v <= 0xFFFFFFFF:
		b = binary.BigEndian.AppendUint32(append(b, key, byte(KindUint), 4), uint32(v))
	default:
		b = binary.BigEndian.AppendUint64(append(b, key, byte(KindUint), 8), v)
	}
	e.b = b
}

// text appends a text field; "" is omitted when the field is optional.
func (e *encoder) text(key uint8, s string) {
	fs := e.spec(key)
	if e.err != nil {
		return
	}
	if s == "" {
		if fs.req {
			e.missing(fs)
		}
		return
	}
	e.textValue(fs, s)
}

func (e *encoder) textValue(fs *fieldSpec, s string) {
	if !e.checkLen(fs, len(s)) {
		return
	}
	if fs.token && !isToken(s) {
		e.fail(formatErr(e.rs.typ, fs.name, ErrOutOfRange, "not a token of [a-z0-9._-]"))
		return
	}
	if !utf8.ValidString(s) {
		e.fail(formatErr(e.rs.typ, fs.name, ErrInvalidUTF8, ""))
		return
	}
	e.b = append(appendFieldHead(e.b, fs.key, KindText, len(s)), s...)
}

// texts appends a repeatable text field once per element.
func (e *encoder) texts(key uint8, ss []string) {
	fs := e.spec(key)
	if e.err == nil && len(ss) == 0 && fs.req {
		e.missing(fs)
	}
	for _, s := range ss {
		if e.err != nil {
			return
		}
		e.textValue(fs, s)
	}
}

// bytes appends a bytes field; an empty value is omitted when the field is
// optional.
func (e *encoder) bytes(key uint8, v []byte) {
	fs := e.spec(key)
	if e.err != nil {
		return
	}
	if len(v) == 0 {
		if fs.req {
			e.missing(fs)
		}
		return
	}
	if e.checkLen(fs, len(v)) {
		e.b = append(appendFieldHead(e.b, fs.key, KindBytes, len(v)), v...)
	}
}

// attrs appends one attribute field per element.
func (e *encoder) attrs(key uint8, as []Attr) {
	fs := e.spec(key)
	for _, a := range as {
		if e.err != nil {
			return
		}
		if len(a.Name) > MaxTokenLen || !isToken(a.Name) {
			e.fail(formatErr(e.rs.typ, fs.name, ErrOutOfRange, "attribute name must be 1.."+itoa(MaxTokenLen)+" of [a-z0-9._-]"))
			return
		}
		if len(a.Value) > MaxAttrValueLen {
			e.fail(formatErr(e.rs.typ, fs.name, ErrOutOfRange, "attribute value over "+itoa(MaxAttrValueLen)+" bytes"))
			return
		}
		if !utf8.ValidString(a.Value) {
			e.fail(formatErr(e.rs.typ, fs.name, ErrInvalidUTF8, "attribute "+a.Name))
			return
		}
		b := appendFieldHead(e.b, fs.key, KindAttr, 1+len(a.Name)+len(a.Value))
		b = append(b, byte(len(a.Name)))
		b = append(b, a.Name...)
		e.b = append(b, a.Value...)
	}
}

// finish appends the node field, patches the body length into the header
// and returns the frame, or the original slice and the first error.
func (e *encoder) finish(h Head) ([]byte, error) {
	e.text(keyNode, h.Node)
	if e.err != nil {
		return e.b[:e.start], e.err
	}
	n := len(e.b) - e.start - HeaderLen
	if n > MaxFrameBody {
		return e.b[:e.start], formatErr(e.rs.typ, "", ErrFrameTooLarge, "body of "+itoa(uint64(n))+" bytes")
	}
	binary.BigEndian.PutUint32(e.b[e.start+8:], uint32(n))
	return e.b, nil
}

// field is one decoded field.
type field struct {
	spec *fieldSpec
	val  []byte // the value bytes
	u    uint64 // KindUint: the value
	in   *interner
	s    string // KindText with an interner: the interned value
	hasS bool
}

// str returns the field's value as a string, interned when the field comes
// from a Decoder.
func (f *field) str(b []byte) string {
	if f.in != nil {
		return f.in.get(b)
	}
	return string(b)
}

func (f *field) text() string {
	if f.hasS {
		return f.s
	}
	return f.str(f.val)
}

// attr returns an attribute field's value, which decodeValue has checked.
func (f *field) attr() Attr {
	nl := int(f.val[0])
	return Attr{Name: f.str(f.val[1 : 1+nl]), Value: f.str(f.val[1+nl:])}
}

// IsToken reports whether s is a token: 1 to MaxTokenLen bytes of
// [a-z0-9._-], the form of attribute names and capabilities.
func IsToken(s string) bool { return len(s) <= MaxTokenLen && isToken(s) }

// isToken reports whether b is a non-empty run of [a-z0-9._-].
func isToken[T string | []byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// readUvarint reads a minimal LEB128 varint of at most 4 bytes (enough for
// any length up to MaxFrameBody) from b.
func readUvarint(b []byte) (v uint64, n int, err error) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1, nil
	}
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, ErrTruncated
		}
		c := b[i]
		v |= uint64(c&0x7F) << (7 * i)
		if c < 0x80 {
			if c == 0 {
				return 0, 0, ErrMalformed // non-minimal encoding
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, ErrMalformed
}

// setter receives the decoded fields of a record.
type setter interface {
	set(f *field)
}

// walk decodes body as the fields of record rs, checks every rule that
// docs/protocol.md gives for them, and hands each known field to s (which
// may be nil: then walk only checks). head receives the node field; in, if
// not nil, interns the strings.
func walk(rs *recordSpec, flags Flags, body []byte, head *Head, s setter, in *interner) error {
	var seen uint32
	f := field{in: in}
	for off := 0; off < len(body); {
		if len(body)-off < 2 {
			return formatErr(rs.typ, "", ErrTruncated, "field header at offset "+itoa(uint64(off)))
		}
		key, kind := body[off], Kind(body[off+1])
		n, vn, err := readUvarint(body[off+2:])
		if err != nil {
			return formatErr(rs.typ, keyName(rs, key), err, "field length at offset "+itoa(uint64(off)))
		}
		off += 2 + vn
		if n > uint64(len(body)-off) {
			return formatErr(rs.typ, keyName(rs, key), ErrLength, "field of "+itoa(n)+" bytes, "+itoa(uint64(len(body)-off))+" left")
		}
		val := body[off : off+int(n)]
		off += int(n)

		idx := rs.keyIdx[key]
		if idx < 0 {
			if flags.Has(FlagMustUnderstand) {
				return formatErr(rs.typ, keyName(rs, key), ErrUnsupported, "unknown field key")
			}
			if kind == KindText && !utf8.Valid(val) {
				return formatErr(rs.typ, keyName(rs, key), ErrInvalidUTF8, "")
			}
			continue // unknown field: skipped (§4.4.2)
		}
		fs := &rs.fields[idx]
		if kind != fs.kind {
			return formatErr(rs.typ, fs.name, ErrFieldKind, "kind 0x"+hex2(byte(kind))+", want 0x"+hex2(byte(fs.kind)))
		}
		bit := uint32(1) << idx
		if seen&bit != 0 && !fs.rep {
			return formatErr(rs.typ, fs.name, ErrDuplicateField, "")
		}
		seen |= bit
		f.spec, f.val, f.hasS = fs, val, false
		if err := decodeValue(rs, &f); err != nil {
			return err
		}
		if key == keyNode {
			if head != nil {
				head.Node = f.text()
			}
			continue
		}
		if s != nil {
			assign(s, &f)
		}
	}
	if missing := rs.required &^ seen; missing != 0 {
		for i := range rs.fields {
			if missing&(1<<i) != 0 {
				return formatErr(rs.typ, rs.fields[i].name, ErrMissingField, "")
			}
		}
	}
	return nil
}

// decodeValue checks f.val against its spec and fills f.u or the attribute.
func decodeValue(rs *recordSpec, f *field) error {
	fs := f.spec
	switch fs.kind {
	case KindUint:
		switch len(f.val) {
		case 1:
			f.u = uint64(f.val[0])
		case 2:
			f.u = uint64(binary.BigEndian.Uint16(f.val))
		case 4:
			f.u = uint64(binary.BigEndian.Uint32(f.val))
		case 8:
			f.u = binary.BigEndian.Uint64(f.val)
		default:
			return formatErr(rs.typ, fs.name, ErrMalformed, "uint of "+itoa(uint64(len(f.val)))+" bytes")
		}
		if f.u < fs.min || f.u > fs.max {
			return formatErr(rs.typ, fs.name, ErrOutOfRange, itoa(f.u)+" not in "+itoa(fs.min)+".."+itoa(fs.max))
		}
		return nil
	case KindAttr:
		if len(f.val) < 1 {
			return formatErr(rs.typ, fs.name, ErrTruncated, "attribute without name length")
		}
		nl := int(f.val[0])
		if nl > MaxTokenLen {
			return formatErr(rs.typ, fs.name, ErrOutOfRange, "attribute name of "+itoa(uint64(nl))+" bytes, over "+itoa(MaxTokenLen))
		}
		if nl > len(f.val)-1 {
			return formatErr(rs.typ, fs.name, ErrLength, "attribute name of "+itoa(uint64(nl))+" bytes, "+itoa(uint64(len(f.val)-1))+" left")
		}
		name, value := f.val[1:1+nl], f.val[1+nl:]
		if !isToken(name) {
			return formatErr(rs.typ, fs.name, ErrOutOfRange, "attribute name must be 1.."+itoa(MaxTokenLen)+" of [a-z0-9._-]")
		}
		if len(value) > MaxAttrValueLen {
			return formatErr(rs.typ, fs.name, ErrOutOfRange, "attribute value over "+itoa(MaxAttrValueLen)+" bytes")
		}
		if !utf8.Valid(value) {
			return formatErr(rs.typ, fs.name, ErrInvalidUTF8, "attribute "+string(name))
		}
		return nil
	}
	if n := uint64(len(f.val)); n < fs.min || n > fs.max {
		return formatErr(rs.typ, fs.name, ErrOutOfRange, "length "+itoa(n)+" not in "+itoa(fs.min)+".."+itoa(fs.max))
	}
	if fs.kind == KindText {
		var a, b2 *string
		if f.in != nil && !fs.token && !fs.once && len(f.val) <= internMaxLen {
			// A string seen before on this connection was valid then.
			var ok bool
			if f.s, ok, a, b2 = f.in.find(f.val); ok {
				f.hasS = true
				return nil
			}
		}
		if fs.token && !isToken(f.val) {
			return formatErr(rs.typ, fs.name, ErrOutOfRange, "not a token of [a-z0-9._-]")
		}
		if !utf8.Valid(f.val) {
			return formatErr(rs.typ, fs.name, ErrInvalidUTF8, "")
		}
		if a != nil {
			f.s, f.hasS = f.in.insert(f.val, a, b2), true
		}
	}
	return nil
}

// assign hands f to the record's set method through a type switch, so
// that f does not escape to the heap as it would through an interface call.
func assign(s setter, f *field) {
	switch r := s.(type) {
	case *Hello:
		r.set(f)
	case *Close:
		r.set(f)
	case *Redirect:
		r.set(f)
	case *Ping:
		r.set(f)
	case *Pong:
		r.set(f)
	case *Result:
		r.set(f)
	case *DBToken:
		r.set(f)
	case *DBVerify:
		r.set(f)
	case *DBSecret:
		r.set(f)
	case *DBOutcome:
		r.set(f)
	case *Message:
		r.set(f)
	case *Subscribe:
		r.set(f)
	case *Unsubscribe:
		r.set(f)
	case *Notify:
		r.set(f)
	case *GetAttrs:
		r.set(f)
	case *Attrs:
		r.set(f)
	case *Login:
		r.set(f)
	case *Session:
		r.set(f)
	case *Send:
		r.set(f)
	case *ContactAdd:
		r.set(f)
	case *ContactRemove:
		r.set(f)
	case *Contacts:
		r.set(f)
	case *ContactList:
		r.set(f)
	case *Approve:
		r.set(f)
	case *PresenceSet:
		r.set(f)
	case *Block:
		r.set(f)
	case *Request:
		r.set(f)
	case *AttrsSet:
		r.set(f)
	}
}

func keyName(rs *recordSpec, key uint8) string {
	if i := rs.keyIdx[key]; i >= 0 {
		return rs.fields[i].name
	}
	return "key 0x" + hex2(key)
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xF]})
}
