package c2s

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/coder/websocket"

	"github.com/imxproject/imx/wire"
)

// memSource serves WebSocket messages from memory, each read back in
// chunks, as the WebSocket library returns a message split into frames.
type memSource struct {
	msgs  []memMsg
	chunk int
}

type memMsg struct {
	typ websocket.MessageType
	b   []byte
}

func (s *memSource) Reader(context.Context) (websocket.MessageType, io.Reader, error) {
	if len(s.msgs) == 0 {
		return 0, nil, io.EOF
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m.typ, &chunkReader{b: m.b, chunk: s.chunk}, nil
}

// chunkReader returns at most chunk bytes per Read; with an odd chunk the
// last bytes come together with io.EOF.
type chunkReader struct {
	b     []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 && r.chunk%2 == 1 {
		return n, io.EOF
	}
	return n, nil
}

// readFrames reads msgs through a FrameConn as link does: a small
// bufio.Reader and a wire.Reader, skipping frames over the limit. It
// returns the frames read and the error that ended the stream.
func readFrames(msgs []memMsg, chunk, bufSize int) ([][]byte, error) {
	fc := &FrameConn{src: &memSource{msgs: msgs, chunk: chunk}}
	rd := wire.NewReader(bufio.NewReaderSize(fc, bufSize), 1<<16)
	var frames [][]byte
	for {
		h, body, err := rd.ReadFrame()
		if errors.Is(err, wire.ErrFrameTooLarge) {
			if err := rd.Skip(); err != nil {
				return frames, err
			}
			frames = append(frames, nil) // a frame refused, but in step
			continue
		}
		if err != nil {
			return frames, err
		}
		// The header as parsed (undefined flags dropped), then the body.
		b, _ := h.AppendBinary(nil)
		frames = append(frames, append(b, body...))
	}
}

// oneFrame reports whether m is exactly one frame.
func oneFrame(m memMsg) bool {
	return m.typ == websocket.MessageBinary && len(m.b) >= wire.HeaderLen &&
		uint64(len(m.b)) == wire.HeaderLen+uint64(binary.BigEndian.Uint32(m.b[8:12]))
}

// splitMessages turns fuzz input into messages: each is a kind byte (bit 7
// set: text), a 2-byte length (taken modulo what is left), and the bytes.
func splitMessages(data []byte) []memMsg {
	var msgs []memMsg
	for len(data) >= 3 {
		typ := websocket.MessageBinary
		if data[0]&0x80 != 0 {
			typ = websocket.MessageText
		}
		rest := data[3:]
		n := int(binary.BigEndian.Uint16(data[1:3])) % (len(rest) + 1)
		msgs = append(msgs, memMsg{typ, rest[:n]})
		data = rest[n:]
	}
	return msgs
}

// FuzzFrameConn: whatever the messages, the stream a FrameConn gives link
// is exactly the frames of the messages that are exactly one frame, up to
// the first that is not, which ends it with ErrFraming (and
// protocol-error) before any of its frame is complete; no panic, in any
// chunking and any buffer size.
func FuzzFrameConn(f *testing.F) {
	frame := func(rec wire.Record) []byte {
		b, err := rec.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	msg := func(typ byte, b []byte) []byte {
		return append([]byte{typ, byte(len(b) >> 8), byte(len(b))}, b...)
	}
	ping := frame(&wire.Ping{Head: wire.Head{Tag: 7}, Data: []byte{0xca, 0xfe}})
	send := frame(&wire.Send{Head: wire.Head{Tag: 3}, To: "bob@beta.example", Body: "Hello Bob!", ID: []byte{1}})
	empty := frame(&wire.Close{Code: wire.StatusOK})
	for _, seed := range []struct {
		chunk, buf byte
		in         []byte
	}{
		{1, 16, msg(0, ping)},
		{7, 0, append(msg(0, ping), msg(0, send)...)},
		{3, 200, msg(0, append(append([]byte(nil), ping...), ping...))},
		{255, 16, msg(0, ping[:len(ping)-1])},
		{4, 32, msg(0, ping[:5])},
		{2, 16, append(msg(0, send), msg(0x80, []byte("text"))...)},
		{5, 64, append(msg(0, empty), msg(0, nil)...)},
		{9, 16, msg(0, append(append([]byte(nil), send...), 0))},
	} {
		f.Add(seed.chunk, seed.buf, seed.in)
	}
	f.Fuzz(func(t *testing.T, chunk, buf byte, data []byte) {
		msgs := splitMessages(data)
		frames, err := readFrames(msgs, int(chunk)+1, 16+int(buf))
		good := 0
		for good < len(msgs) && oneFrame(msgs[good]) {
			good++
		}
		if good == len(msgs) {
			if err != io.EOF {
				t.Fatalf("all %d messages are frames; stream ended with %v", len(msgs), err)
			}
		} else if !errors.Is(err, ErrFraming) || wire.StatusOf(err) != wire.StatusProtocolError {
			t.Fatalf("message %d is not one frame; stream ended with %v", good, err)
		}
		if len(frames) != good {
			t.Fatalf("read %d frames, want %d", len(frames), good)
		}
		for i, fr := range frames {
			h, _ := wire.ParseHeader(msgs[i].b)
			want, _ := h.AppendBinary(nil)
			want = append(want, msgs[i].b[wire.HeaderLen:]...)
			if fr != nil && !bytes.Equal(fr, want) {
				t.Fatalf("frame %d differs from its message", i)
			}
		}
	})
}

// TestFrameConnChunks runs the fuzz seeds' property over every chunk size
// of a message with two frames and one with one frame.
func TestFrameConnChunks(t *testing.T) {
	ping, _ := (&wire.Ping{Head: wire.Head{Tag: 7}, Data: []byte("0123456789")}).AppendBinary(nil)
	for chunk := 1; chunk <= len(ping)+1; chunk++ {
		frames, err := readFrames([]memMsg{{websocket.MessageBinary, ping}}, chunk, 16)
		if err != io.EOF || len(frames) != 1 {
			t.Fatalf("chunk %d: %d frames, %v", chunk, len(frames), err)
		}
		two := append(append([]byte(nil), ping...), ping...)
		frames, err = readFrames([]memMsg{{websocket.MessageBinary, ping}, {websocket.MessageBinary, two}}, chunk, 16)
		if !errors.Is(err, ErrFraming) || len(frames) != 1 {
			t.Fatalf("chunk %d, two frames: %d frames, %v", chunk, len(frames), err)
		}
	}
}
