package link

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imxproject/imx/wire"
)

// TestFrameSlots: every record type wire knows has a counter of its own.
func TestFrameSlots(t *testing.T) {
	seen := map[int]wire.Type{}
	for _, r := range []wire.Type{0, 0x30, 0x3F, 0x40, 0xFF, 0x103, 0x13F, 0x140, 0xF000, 0xFFFF} {
		if r.Known() {
			continue
		}
		if s := frameSlot(r); s != 0 {
			t.Errorf("unknown type %#x has slot %d", uint16(r), s)
		}
	}
	for i := range 0x10000 {
		typ := wire.Type(i)
		if !typ.Known() {
			continue
		}
		s := frameSlot(typ)
		if s == 0 {
			t.Errorf("%s has no counter of its own (frameSlots = %d is too small)", typ, frameSlots)
			continue
		}
		if prev, dup := seen[s]; dup {
			t.Errorf("%s and %s share slot %d", typ, prev, s)
		}
		seen[s] = typ
		if slotType[s] != typ {
			t.Errorf("slotType[%d] = %s, want %s", s, slotType[s], typ)
		}
	}
}

// TestFrameCounter: frames are counted by type on both sides, while the
// connections run and after they end.
func TestFrameCounter(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("SharedFrames=%v", shared), func(t *testing.T) { testFrameCounter(t, shared) })
	}
}

func testFrameCounter(t *testing.T, shared bool) {
	var fi, fa FrameCounter
	ini, acc := linkPair(t, Config{Frames: &fi}, Config{Frames: &fa, SharedFrames: shared})
	got := make(chan struct{}, 3)
	ea := running(t, acc, func(*Conn, wire.Record) { got <- struct{}{} })
	ei := running(t, ini, nil)
	for i := range 3 {
		if err := ini.Send(context.Background(), msg(uint32(i+1), "hi")); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("messages not received")
		}
	}
	count := func(f *FrameCounter, typ wire.Type) (in, out uint64) {
		f.Each(func(x wire.Type, known bool, i, o uint64) {
			if known && x == typ {
				in, out = i, o
			}
		})
		return in, out
	}
	if _, out := count(&fi, wire.TypeMessage); out != 3 {
		t.Errorf("initiator sent %d MESSAGEs, want 3", out)
	}
	if in, _ := count(&fa, wire.TypeMessage); in != 3 {
		t.Errorf("acceptor received %d MESSAGEs, want 3", in)
	}
	var perConn uint64
	acc.FramesByType(func(x wire.Type, known bool, in, _ uint64) {
		if x == wire.TypeMessage {
			perConn = in
		}
	})
	switch {
	case !shared && perConn != 3:
		t.Errorf("acceptor connection received %d MESSAGEs, want 3", perConn)
	case shared && perConn != 0:
		t.Errorf("a connection counting into shared counters reports %d MESSAGEs of its own", perConn)
	}
	ini.Close(wire.StatusOK, "bye")
	<-ei
	<-ea
	if in, _ := count(&fa, wire.TypeMessage); in != 3 {
		t.Errorf("after the end: acceptor received %d MESSAGEs, want 3", in)
	}
	if in, _ := count(&fa, wire.TypeClose); in != 1 {
		t.Errorf("acceptor received %d CLOSEs, want 1", in)
	}
	if _, out := count(&fi, wire.TypeClose); out != 1 {
		t.Errorf("initiator sent %d CLOSEs, want 1", out)
	}
}
