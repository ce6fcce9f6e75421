package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// Interning bounds of a Decoder.
const (
	internMaxLen     = MaxAddressLen // longer strings are not interned
	internMaxEntries = 4096          // the table is emptied when it reaches this size
)

// interner returns one shared string for equal byte strings, so that the
// addresses and domains that recur on a connection are allocated once. A
// small two-way table answers the common case without hashing into the
// map; the map behind it is bounded: when full it starts over.
type interner struct {
	slots *[256]string // allocated on first use
	m     map[string]string
	flip  bool // which candidate slot the next eviction takes
}

// get returns the interned string for b, which the caller has validated.
func (in *interner) get(b []byte) string {
	s, ok, a, b2 := in.find(b)
	if ok {
		return s
	}
	return in.insert(b, a, b2)
}

// find looks b up in the two-way table. A hit means that b equals a string
// validated before; on a miss it returns the candidate slots for insert.
func (in *interner) find(b []byte) (s string, ok bool, a, b2 *string) {
	a, b2 = in.candidates(b)
	if *a == string(b) { // no allocation for the comparison
		return *a, true, nil, nil
	}
	if *b2 == string(b) {
		return *b2, true, nil, nil
	}
	return "", false, a, b2
}

// candidates returns the two slots where b may be.
func (in *interner) candidates(b []byte) (*string, *string) {
	// The slots are picked by a multiplicative hash of the length and of
	// the first and last 8 bytes: cheap, and enough to tell apart the
	// few strings that recur on one connection.
	var x, y uint64
	if len(b) >= 8 {
		x = binary.LittleEndian.Uint64(b)
		y = binary.LittleEndian.Uint64(b[len(b)-8:])
	} else {
		for _, c := range b {
			x = x<<8 | uint64(c)
		}
	}
	h := uint32((x*0x9E3779B97F4A7C15 ^ y*0xC2B2AE3D27D4EB4F ^ uint64(len(b))) * 0x165667B19E3779F9 >> 40)
	// Two candidate slots, so that two strings that collide in one (say a
	// connection's usual sender and recipient) can both stay.
	if in.slots == nil {
		in.slots = new([256]string)
	}
	return &in.slots[byte(h)], &in.slots[byte(h>>8)]
}

// insert interns b, which is in neither candidate slot.
func (in *interner) insert(b []byte, a, b2 *string) string {
	s, ok := in.m[string(b)] // no allocation for the lookup
	if !ok {
		s = string(b)
		if len(b) <= internMaxLen {
			if in.m == nil {
				in.m = make(map[string]string, 8)
			} else if len(in.m) >= internMaxEntries {
				clear(in.m)
			}
			in.m[s] = s
		}
	}
	if len(b) <= internMaxLen {
		switch {
		case *a == "":
			*a = s
		case *b2 == "":
			*b2 = s
		case in.flip:
			*b2 = s
		default:
			*a = s
		}
		in.flip = !in.flip
	}
	return s
}

// Decoder decodes frames without allocating in the steady state, for a
// connection's read loop. It keeps one record of each type and reuses it,
// its byte fields alias the body passed to Decode, and its strings are
// interned. A record returned by Decode is therefore valid only until the
// next call to Decode and only while body is unchanged; use [Clone] to keep
// one. Strings taken out of a record stay valid forever.
//
// A Decoder is not safe for concurrent use. The zero value is ready to use.
type Decoder struct {
	in interner
	// The reused records, allocated on first use: idx maps a type to its
	// position in recs plus one.
	idx  [len(specs)]uint8
	recs []decodeTarget
}

// Decode decodes the record whose header is h from body, like ParseBody but
// into the Decoder's reused records.
func (d *Decoder) Decode(h Header, body []byte) (Record, error) {
	if h.Type == TypeMessage {
		if m := d.fastMessage(h, body); m != nil {
			return m, nil
		}
	}
	var r decodeTarget
	if int(h.Type) < len(specs) && specs[h.Type] != nil {
		var fresh bool
		if r, fresh = d.rec(h.Type); !fresh {
			resetRecord(r)
		}
	}
	return decode(h, body, r, &d.in)
}

// rec returns the Decoder's record of type t, making it on first use
// (fresh).
func (d *Decoder) rec(t Type) (r decodeTarget, fresh bool) {
	if i := d.idx[t]; i != 0 {
		return d.recs[i-1], false
	}
	r = newRecord(t)
	d.recs = append(d.recs, r)
	d.idx[t] = uint8(len(d.recs))
	return r, true
}

// resetRecord zeroes r but keeps the capacity of its slices.
func resetRecord(r decodeTarget) {
	switch r := r.(type) {
	case *Hello:
		*r = Hello{Capabilities: r.Capabilities[:0]}
	case *Close:
		*r = Close{}
	case *Redirect:
		*r = Redirect{}
	case *Ping:
		*r = Ping{}
	case *Pong:
		*r = Pong{}
	case *Result:
		*r = Result{Attrs: r.Attrs[:0]}
	case *DBToken:
		*r = DBToken{}
	case *DBVerify:
		*r = DBVerify{}
	case *DBSecret:
		*r = DBSecret{}
	case *DBOutcome:
		*r = DBOutcome{}
	case *Message:
		*r = Message{Attrs: r.Attrs[:0]}
	case *Subscribe:
		*r = Subscribe{}
	case *Unsubscribe:
		*r = Unsubscribe{}
	case *Notify:
		*r = Notify{Watchers: r.Watchers[:0], Attrs: r.Attrs[:0]}
	case *GetAttrs:
		*r = GetAttrs{Names: r.Names[:0]}
	case *Attrs:
		*r = Attrs{Attrs: r.Attrs[:0]}
	case *Login:
		*r = Login{}
	case *Session:
		*r = Session{}
	case *Send:
		*r = Send{Attrs: r.Attrs[:0]}
	case *ContactAdd:
		*r = ContactAdd{}
	case *ContactRemove:
		*r = ContactRemove{}
	case *Contacts:
		*r = Contacts{}
	case *ContactList:
		*r = ContactList{Contacts: r.Contacts[:0]}
	case *Approve:
		*r = Approve{}
	case *PresenceSet:
		*r = PresenceSet{}
	case *Block:
		*r = Block{}
	case *Request:
		*r = Request{}
	case *AttrsSet:
		*r = AttrsSet{Attrs: r.Attrs[:0]}
	}
}

// cloneByParse returns a copy of r made by encoding and parsing it again.
func cloneByParse(r Record) (Record, error) {
	b, err := r.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// fastMessage decodes the common MESSAGE, whose fields are exactly from,
// to, id and mime in that order, valid, and nothing else. For anything
// else it returns nil and the generic decoder runs, which reports the
// precise problem. FuzzParse checks that both agree.
func (d *Decoder) fastMessage(h Header, body []byte) *Message {
	if h.Tag == 0 || h.Flags.Has(FlagResponse) || uint64(len(body)) != uint64(h.Len) {
		return nil
	}
	off := 0
	field := func(key uint8, kind Kind, lo, hi int) []byte {
		if off < 0 || len(body)-off < 3 || body[off] != key || Kind(body[off+1]) != kind {
			off = -1
			return nil
		}
		n, vn, err := readUvarint(body[off+2:])
		if err != nil || n > uint64(len(body)-off-2-vn) || int(n) < lo || int(n) > hi {
			off = -1
			return nil
		}
		v := body[off+2+vn : off+2+vn+int(n)]
		off += 2 + vn + int(n)
		return v
	}
	from := field(1, KindText, 1, MaxAddressLen)
	to := field(2, KindText, 1, MaxAddressLen)
	id := field(3, KindBytes, 1, MaxMessageIDLen)
	mime := field(4, KindBytes, 1, MaxFrameBody)
	if off != len(body) {
		return nil
	}
	fs, ok := d.text(from)
	if !ok {
		return nil
	}
	ts, ok := d.text(to)
	if !ok {
		return nil
	}
	r, _ := d.rec(TypeMessage)
	m := r.(*Message)
	*m = Message{Head: Head{Tag: h.Tag, Flags: h.Flags}, From: fs, To: ts,
		ID: id[:len(id):len(id)], MIME: mime[:len(mime):len(mime)], Attrs: m.Attrs[:0]}
	return m
}

// text interns a text value, validating it unless it was seen before.
func (d *Decoder) text(b []byte) (string, bool) {
	s, ok, a, b2 := d.in.find(b)
	if ok {
		return s, true
	}
	if !utf8.Valid(b) {
		return "", false
	}
	return d.in.insert(b, a, b2), true
}
