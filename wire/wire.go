package wire

import "encoding/binary"

// ProtocolVersion is the highest version of the IMX wire protocol that this
// package speaks. HELLO carries a range of versions; the two sides use the
// highest version in both ranges.
//
// Changelog:
//
//	1: the first version (imx 0.1).
const ProtocolVersion = 1

// MinProtocolVersion is the lowest version this package speaks.
const MinProtocolVersion = 1

// HeaderLen is the length of a frame header in bytes.
//
//	offset  size  field
//	0       2     type   (Type, big-endian)
//	2       2     flags  (Flags, big-endian)
//	4       4     tag    (uint32, big-endian; 0 = no response wanted)
//	8       4     length (uint32, big-endian: the body's length in bytes)
const HeaderLen = 12

// Frame size limits. A receiver announces its own limit in HELLO
// (max-frame) and rejects larger frames before reading their body.
const (
	// MaxFrameBody is the absolute upper bound of a frame body. No
	// implementation may accept or announce more.
	MaxFrameBody = 16 << 20
	// DefaultMaxFrameBody is the limit a receiver applies when its peer
	// has announced none, and the default of this implementation.
	DefaultMaxFrameBody = 256 << 10
	// MinFrameBody is the smallest limit a receiver may announce.
	MinFrameBody = 4 << 10
)

// Type identifies a record. Values are append-only: a number once given a
// meaning never changes or is reused.
//
// Ranges:
//
//	0x0000          invalid
//	0x0001–0x00FF   server and common records (this file)
//	0x0100–0x01FF   client-only records (login, contacts, approvals, presence set)
//	0x0200–0xEFFF   unassigned
//	0xF000–0xFFFF   private and experimental use; never in a published version
type Type uint16

// Record types. The trailing comments give the fields as key:name(kind);
// "*" marks a repeatable field, "?" an optional one. Kinds: u = uint,
// b = bytes, t = text, a = attribute. Every record may also carry the
// common field 0xF0 node(t)? that routes a response back to the node of a
// multi-node domain that asked (§4.4.8).
const (
	TypeHello       Type = 0x0001 // 1:version-min(u) 2:version-max(u) 3:capability(t)* 4:software(t)? 5:max-frame(u)?
	TypeClose       Type = 0x0002 // 1:code(u) 2:text(t)?
	TypeRedirect    Type = 0x0003 // 1:host(t) 2:port(u) 3:text(t)?
	TypePing        Type = 0x0004 // 1:data(b)?
	TypePong        Type = 0x0005 // 1:data(b)?
	TypeResult      Type = 0x0006 // 1:code(u) 2:text(t)? 3:count(u)? 4:expires(u)? 5:presence(u)? 6:status(t)? 7:attr(a)*
	TypeDBToken     Type = 0x0010 // 1:from(t) 2:to(t) 3:token(b)
	TypeDBVerify    Type = 0x0011 // 1:from(t) 2:to(t) 3:token(b) 4:secret(b)
	TypeDBSecret    Type = 0x0012 // 1:from(t) 2:to(t) 3:secret(b)
	TypeDBOutcome   Type = 0x0013 // 1:from(t) 2:to(t) 3:code(u) 4:text(t)?
	TypeMessage     Type = 0x0020 // 1:from(t) 2:to(t) 3:id(b) 4:mime(b) 5:attr(a)*
	TypeSubscribe   Type = 0x0021 // 1:watcher(t) 2:presentity(t) 3:expires(u)
	TypeUnsubscribe Type = 0x0022 // 1:watcher(t) 2:presentity(t)
	TypeNotify      Type = 0x0023 // 1:presentity(t) 2:watcher(t)* 3:presence(u) 4:status(t)? 5:attr(a)*
	TypeGetAttrs    Type = 0x0024 // 1:requester(t) 2:target(t) 3:name(t)*
	TypeAttrs       Type = 0x0025 // 1:target(t) 2:attr(a)*

	// Client-only records (docs/client-api.md); servers refuse them on
	// server connections.
	TypeLogin   Type = 0x0100 // 1:user(t) 2:password(t)? 3:session(b)? 4:client(t)? 5:remember(u)?
	TypeSession Type = 0x0101 // 1:user(t) 2:session(b)? 3:expires(u)? 4:id(t)?
	TypeSend    Type = 0x0102 // 1:to(t) 2:content-type(t)? 3:body(t) 4:id(b)? 5:attr(a)*

	// Client-only records of presence and contacts (docs/design/001-presence.md).
	TypeContactAdd    Type = 0x0103 // 1:address(t) 2:alias(t)?
	TypeContactRemove Type = 0x0104 // 1:address(t)
	TypeContacts      Type = 0x0105 // (no fields)
	TypeContactList   Type = 0x0106 // 1:contact(t)*  "address state [alias]"
	TypeApprove       Type = 0x0107 // 1:address(t) 2:approve(u)
	TypePresenceSet   Type = 0x0108 // 1:presence(u) 2:status(t)?
	TypeBlock         Type = 0x0109 // 1:pattern(t) 2:block(u)
	TypeRequest       Type = 0x010A // 1:watcher(t) 2:alias(t)?
	TypeAttrsSet      Type = 0x010B // 1:attr(a)*

	// FirstClientType and LastClientType bound the range of the
	// client-only records of the client API.
	FirstClientType Type = 0x0100
	LastClientType  Type = 0x01FF
	// FirstPrivateType starts the range for private and experimental use.
	FirstPrivateType Type = 0xF000
)

// String returns the record's name as docs/protocol.md writes it, or
// "TYPE-0xNNNN" for a type this package does not know.
func (t Type) String() string {
	if s := specOf(t); s != nil {
		return s.name
	}
	const hex = "0123456789ABCDEF"
	return "TYPE-0x" + string([]byte{hex[t>>12&0xF], hex[t>>8&0xF], hex[t>>4&0xF], hex[t&0xF]})
}

// Known reports whether this package knows the record type.
func (t Type) Known() bool { return specOf(t) != nil }

// Flags are the frame header flags. Bits that this version does not define
// are sent as zero and ignored on receipt.
type Flags uint16

const (
	// FlagResponse marks a frame that answers the request with the same
	// tag. A receiver can route it without knowing its type.
	FlagResponse Flags = 1 << 0
	// FlagMustUnderstand asks a receiver that does not know the record
	// type, or one of its field keys, to answer RESULT unsupported instead
	// of skipping it (§4.4.2).
	FlagMustUnderstand Flags = 1 << 1

	knownFlags = FlagResponse | FlagMustUnderstand
)

// Has reports whether all bits of g are set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// Head holds what every record carries besides its own fields: the frame's
// tag and flags, and the optional node that routes a response back to the
// node of a multi-node domain that issued the request (§4.4.8).
type Head struct {
	// Tag pairs a response with its request. It is unique for the node
	// that issued the request; 0 means that no response is wanted.
	Tag uint32
	// Flags are the frame flags; only FlagResponse and
	// FlagMustUnderstand have a meaning in this version.
	Flags Flags
	// Node names the node of the issuing domain that wants the response
	// (field 0xF0 of any record). Empty for a single-node domain.
	Node string
}

// FrameHead returns h. Every record embeds a Head, so every record has it.
func (h Head) FrameHead() Head { return h }

// Header is a decoded frame header.
type Header struct {
	Type  Type
	Flags Flags
	Tag   uint32
	Len   uint32 // body length in bytes
}

// AppendBinary appends the 12-byte header to b.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	return appendHeader(b, h.Type, h.Flags, h.Tag, h.Len), nil
}

func appendHeader(b []byte, t Type, f Flags, tag, n uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(t))
	b = binary.BigEndian.AppendUint16(b, uint16(f&knownFlags))
	b = binary.BigEndian.AppendUint32(b, tag)
	return binary.BigEndian.AppendUint32(b, n)
}

// ParseHeader decodes a frame header from the first HeaderLen bytes of b.
// Flags that this version does not define are dropped.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, &FormatError{Err: ErrTruncated, Detail: "frame header needs 12 bytes"}
	}
	return Header{
		Type:  Type(binary.BigEndian.Uint16(b)),
		Flags: Flags(binary.BigEndian.Uint16(b[2:])) & knownFlags,
		Tag:   binary.BigEndian.Uint32(b[4:]),
		Len:   binary.BigEndian.Uint32(b[8:]),
	}, nil
}

// Record is one IMX record. The set of records is closed: every Record is
// one of this package's record types or an [*Unknown].
type Record interface {
	// Type returns the record type.
	Type() Type
	// FrameHead returns the tag, flags and node of the record.
	FrameHead() Head
	// AppendBinary appends the whole frame, header included, to b. It
	// fails with a *FormatError if the record breaks a rule of
	// docs/protocol.md, so that nothing invalid is ever sent.
	AppendBinary(b []byte) ([]byte, error)

	isRecord()
}

// Presence is a user's presence state (§3, "Presence Information"). Zero
// means the field is absent. Receivers keep values they do not know and
// treat them as online: new states may be added.
type Presence uint8

const (
	PresenceOffline Presence = 1
	PresenceOnline  Presence = 2
	PresenceAway    Presence = 3
	PresenceBusy    Presence = 4
)

// String returns the state's name.
func (p Presence) String() string {
	switch p {
	case 0:
		return "none"
	case PresenceOffline:
		return "offline"
	case PresenceOnline:
		return "online"
	case PresenceAway:
		return "away"
	case PresenceBusy:
		return "busy"
	}
	return "presence-" + itoa(uint64(p))
}

// Attr is a named attribute of a user or a domain (§4.4.5, §4.4.6): a name
// of lower-case ASCII letters, digits, '.', '-' and '_', and a UTF-8 value.
type Attr struct {
	Name  string
	Value string
}

func itoa(v uint64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(buf[i:])
}
