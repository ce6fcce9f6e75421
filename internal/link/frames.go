package link

import (
	"sync"
	"sync/atomic"

	"github.com/imxproject/imx/wire"
)

// frameSlots is the number of per-type frame counters of a connection: one
// for each record type wire knows, and slot 0 for every other type.
const frameSlots = 32

// slotOf maps a record type to its counter: types 0x00–0x3F through the
// low half of the table, the client types 0x100–0x13F through the high
// half; slotType is the inverse.
var slotOf, slotType = func() (idx [0x80]uint8, types [frameSlots]wire.Type) {
	n := 1
	for i := range idx {
		t := wire.Type(i)
		if i >= 0x40 {
			t = wire.FirstClientType + wire.Type(i-0x40)
		}
		if t.Known() && n < frameSlots {
			idx[i] = uint8(n)
			types[n] = t
			n++
		}
	}
	return idx, types
}()

// frameSlot returns the counter of a record type: its own for a known type,
// 0 for any other.
func frameSlot(t wire.Type) int {
	i := uint(t)
	switch {
	case i < 0x40:
	case i-uint(wire.FirstClientType) < 0x40:
		i = i - uint(wire.FirstClientType) + 0x40
	default:
		return 0
	}
	return int(slotOf[i])
}

// frameCounts counts one connection's frames by record type.
type frameCounts struct {
	in, out [frameSlots]atomic.Uint64
}

// FrameCounter adds up the frames, by record type and direction, of every
// connection whose Config names it: those that ended and those still
// running. Counting on the hot path touches only the connection's own
// counters, which the FrameCounter reads when asked; a connection with
// Config.SharedFrames counts into the FrameCounter's own. The zero value is
// ready to use.
type FrameCounter struct {
	mu   sync.Mutex
	live map[*Conn]struct{}
	in   [frameSlots]uint64 // of the connections that ended
	out  [frameSlots]uint64
	// shared are counted into directly by the connections whose Config
	// has SharedFrames.
	shared frameCounts
}

func (f *FrameCounter) add(c *Conn) {
	f.mu.Lock()
	if f.live == nil {
		f.live = map[*Conn]struct{}{}
	}
	f.live[c] = struct{}{}
	f.mu.Unlock()
}

func (f *FrameCounter) remove(c *Conn) {
	f.mu.Lock()
	delete(f.live, c)
	for i := range frameSlots {
		f.in[i] += c.frames.in[i].Load()
		f.out[i] += c.frames.out[i].Load()
	}
	f.mu.Unlock()
}

// Each calls fn with the frames received (in) and sent (out) so far for
// every known record type, in type order, and then for the unknown types
// together, with known false. The counts never go down.
func (f *FrameCounter) Each(fn func(t wire.Type, known bool, in, out uint64)) {
	f.mu.Lock()
	in, out := f.in, f.out
	for i := range frameSlots {
		in[i] += f.shared.in[i].Load()
		out[i] += f.shared.out[i].Load()
	}
	for c := range f.live {
		for i := range frameSlots {
			in[i] += c.frames.in[i].Load()
			out[i] += c.frames.out[i].Load()
		}
	}
	f.mu.Unlock()
	for i := 1; i < frameSlots; i++ {
		if slotType[i] != 0 {
			fn(slotType[i], true, in[i], out[i])
		}
	}
	fn(0, false, in[0], out[0])
}

// FramesByType calls fn with the frames this connection received and sent
// so far for every known record type, and then for the unknown types
// together (known false).
func (c *Conn) FramesByType(fn func(t wire.Type, known bool, in, out uint64)) {
	if c.cfg.Frames != nil && c.cfg.SharedFrames {
		return // counted with the other connections'
	}
	for i := 1; i < frameSlots; i++ {
		if slotType[i] != 0 {
			fn(slotType[i], true, c.frames.in[i].Load(), c.frames.out[i].Load())
		}
	}
	fn(0, false, c.frames.in[0].Load(), c.frames.out[0].Load())
}
