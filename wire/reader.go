package wire

import (
	"bufio"
	"errors"
	"io"
)

// keepBuf is the largest body buffer a Reader keeps between frames; a larger
// frame gets a buffer of its own that is dropped afterwards, so that an idle
// connection does not pin the memory of its largest frame.
const keepBuf = 64 << 10

// Reader reads frames from a byte stream. It reads the 12-byte header
// first, checks the body length against its limit, and only then allocates
// and reads the body; input may arrive split at any byte. A Reader is not
// safe for concurrent use.
type Reader struct {
	br  *bufio.Reader
	max uint32
	buf []byte
	// pending is the length of a body that ReadFrame refused as too
	// large and that Skip may discard.
	pending uint32
}

// NewReader returns a Reader on r that accepts bodies up to maxBody bytes
// (DefaultMaxFrameBody if 0; never more than MaxFrameBody). If r is a
// *bufio.Reader it is used as it is.
func NewReader(r io.Reader, maxBody uint32) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 4096)
	}
	rd := &Reader{br: br}
	rd.SetMaxBody(maxBody)
	return rd
}

// SetMaxBody changes the body limit, for example after HELLO.
func (r *Reader) SetMaxBody(n uint32) {
	switch {
	case n == 0:
		n = DefaultMaxFrameBody
	case n > MaxFrameBody:
		n = MaxFrameBody
	}
	r.max = n
}

// MaxBody returns the current body limit.
func (r *Reader) MaxBody() uint32 { return r.max }

// ReadFrame reads the next frame. The body is valid until the next call.
//
// A body over the limit gives a *FormatError wrapping ErrFrameTooLarge, with
// the header returned and the body still unread: call Skip to discard it and
// go on, or close the connection. io.EOF means the stream ended cleanly
// between frames; io.ErrUnexpectedEOF that it ended inside one.
func (r *Reader) ReadFrame() (Header, []byte, error) {
	if r.pending != 0 {
		return Header{}, nil, errors.New("wire: ReadFrame after a too-large frame without Skip")
	}
	hb, err := r.br.Peek(HeaderLen)
	if err != nil {
		if err == io.EOF && len(hb) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return Header{}, nil, err
	}
	h, _ := ParseHeader(hb) // cannot fail: hb has HeaderLen bytes
	if _, err := r.br.Discard(HeaderLen); err != nil {
		return h, nil, err
	}
	if h.Len > r.max {
		r.pending = h.Len
		return h, nil, formatErr(h.Type, "", ErrFrameTooLarge, "body of "+itoa(uint64(h.Len))+" bytes, limit "+itoa(uint64(r.max)))
	}
	var body []byte
	if h.Len <= keepBuf {
		if cap(r.buf) < int(h.Len) {
			r.buf = make([]byte, h.Len, max(h.Len, 512))
		}
		body = r.buf[:h.Len]
	} else {
		body = make([]byte, h.Len)
	}
	if _, err := io.ReadFull(r.br, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, body, nil
}

// Skip discards the body of a frame that ReadFrame refused as too large,
// without allocating, so that reading can go on with the next frame.
func (r *Reader) Skip() error {
	n := r.pending
	r.pending = 0
	for n > 0 {
		k := min(n, 1<<30)
		d, err := r.br.Discard(int(k))
		n -= uint32(d)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// ReadRecord reads and parses the next frame. On a *FormatError for a
// frame whose body was read, the stream is still in step and the caller may
// answer the error and go on; after ErrFrameTooLarge, call Skip first.
func (r *Reader) ReadRecord() (Record, error) {
	h, body, err := r.ReadFrame()
	if err != nil {
		return nil, err
	}
	return ParseBody(h, body)
}

// WriteRecord appends rec's frame to w's free buffer space and writes it.
// It does not flush.
func WriteRecord(w *bufio.Writer, rec Record) error {
	b, err := rec.AppendBinary(w.AvailableBuffer())
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
