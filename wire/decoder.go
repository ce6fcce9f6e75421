package wire

// Interning bounds of a Decoder.
const (
	internMaxLen     = MaxAddressLen // longer strings are not interned
	internMaxEntries = 4096          // the table is emptied when it reaches this size
)

// interner returns one shared string for equal byte strings, so that the
// addresses and domains that recur on a connection are allocated once. A
// small direct-mapped table answers the common case without hashing into
// the map; the map behind it is bounded: when full it starts over.
type interner struct {
	slots [256]string
	m     map[string]string
}

func (in *interner) get(b []byte) string {
	// FNV-1a over at most the first and last 8 bytes picks the slot.
	h := uint32(2166136261) ^ uint32(len(b))
	for i, c := range b {
		if i == 8 && len(b) > 16 {
			b2 := b[len(b)-8:]
			for _, c := range b2 {
				h = (h ^ uint32(c)) * 16777619
			}
			break
		}
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &in.slots[byte(h^h>>8^h>>16)]
	if *slot == string(b) { // no allocation for the comparison
		return *slot
	}
	s, ok := in.m[string(b)] // no allocation for the lookup
	if !ok {
		s = string(b)
		if len(b) <= internMaxLen {
			if in.m == nil {
				in.m = make(map[string]string, 64)
			} else if len(in.m) >= internMaxEntries {
				clear(in.m)
			}
			in.m[s] = s
		}
	}
	if len(b) <= internMaxLen {
		*slot = s
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
	in   interner
	recs [len(specs)]decodeTarget
}

// Decode decodes the record whose header is h from body, like ParseBody but
// into the Decoder's reused records.
func (d *Decoder) Decode(h Header, body []byte) (Record, error) {
	var r decodeTarget
	if int(h.Type) < len(d.recs) && specs[h.Type] != nil {
		r = d.recs[h.Type]
		if r == nil {
			r = newRecord(h.Type)
			d.recs[h.Type] = r
		} else {
			resetRecord(r)
		}
	}
	return decode(h, body, r, &d.in)
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
	}
}

// Clone returns a deep copy of r that shares no memory with it, for keeping
// a record that a Decoder returned.
func Clone(r Record) (Record, error) {
	b, err := r.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}
