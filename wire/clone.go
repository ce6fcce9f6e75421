package wire

import "slices"

// Clone returns a copy of r that shares no mutable memory with it, for
// keeping a record that a Decoder returned (the Decoder reuses its records,
// their byte fields and their slices for the next frame). Strings, which
// never change, are shared.
//
// The records handled on every frame of a busy connection (MESSAGE,
// NOTIFY, SUBSCRIBE, UNSUBSCRIBE, GET-ATTRIBUTES, and a client's SEND and
// RESULT) are copied field by field: a MESSAGE in two allocations. Any other record is encoded and
// parsed again, which also checks it. TestCloneMatchesParse keeps both
// ways in step when a record gains a field.
func Clone(r Record) (Record, error) {
	switch r := r.(type) {
	case *Message:
		m := new(Message)
		*m = *r
		// One buffer backs ID and MIME, as in Parse.
		if n := len(r.ID) + len(r.MIME); n > 0 {
			buf := make([]byte, n)
			copy(buf, r.ID)
			copy(buf[len(r.ID):], r.MIME)
			m.ID, m.MIME = bytesOf(buf[:len(r.ID):len(r.ID)]), bytesOf(buf[len(r.ID):])
		} else {
			m.ID, m.MIME = nil, nil
		}
		m.Attrs = cloneSlice(r.Attrs)
		return m, nil
	case *Notify:
		n := new(Notify)
		*n = *r
		n.Watchers = cloneSlice(r.Watchers)
		n.Attrs = cloneSlice(r.Attrs)
		return n, nil
	case *Subscribe:
		s := new(Subscribe)
		*s = *r
		return s, nil
	case *Unsubscribe:
		u := new(Unsubscribe)
		*u = *r
		return u, nil
	case *Send:
		c := new(Send)
		*c = *r
		c.ID = bytesOf(slices.Clone(r.ID))
		c.Attrs = cloneSlice(r.Attrs)
		return c, nil
	case *Result:
		c := new(Result)
		*c = *r
		c.Attrs = cloneSlice(r.Attrs)
		return c, nil
	case *GetAttrs:
		g := new(GetAttrs)
		*g = *r
		g.Names = cloneSlice(r.Names)
		return g, nil
	}
	return cloneByParse(r)
}

// bytesOf returns b, or nil if it is empty, as Parse leaves an absent
// field.
func bytesOf(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// cloneSlice returns a copy of s, or nil if it is empty.
func cloneSlice[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}
