package s2s

import (
	"slices"

	"github.com/imxproject/imx/wire"
)

// clone returns a copy of rec, which a connection's decoder returned and
// reuses for the next frame, for a worker to keep. A decoder's byte fields
// and slices are reused, but its strings stay valid forever (wire.Decoder),
// so the records that the Handler gets are copied field by field, sharing
// their strings: a MESSAGE in two allocations, where wire.Clone encodes and
// parses it again in about ten. Other records go through wire.Clone.
// TestCloneMatchesWireClone keeps both in step when a record gains a field.
func clone(rec wire.Record) (wire.Record, error) {
	switch r := rec.(type) {
	case *wire.Message:
		m := new(wire.Message)
		*m = *r
		// One buffer backs ID and MIME, as in wire.Parse.
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
	case *wire.Notify:
		n := new(wire.Notify)
		*n = *r
		n.Watchers = cloneSlice(r.Watchers)
		n.Attrs = cloneSlice(r.Attrs)
		return n, nil
	case *wire.Subscribe:
		s := new(wire.Subscribe)
		*s = *r
		return s, nil
	case *wire.Unsubscribe:
		u := new(wire.Unsubscribe)
		*u = *r
		return u, nil
	case *wire.GetAttrs:
		g := new(wire.GetAttrs)
		*g = *r
		g.Names = cloneSlice(r.Names)
		return g, nil
	}
	return wire.Clone(rec)
}

// bytesOf returns b, or nil if it is empty, as wire.Parse leaves an absent
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
