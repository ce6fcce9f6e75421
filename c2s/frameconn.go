package c2s

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/imxproject/imx/wire"
)

// The client API's transport (docs/client-api.md, "Transport").
const (
	// Path is where the client listener serves the WebSocket.
	Path = "/imx"
	// Subprotocol is the WebSocket subprotocol of the client API.
	Subprotocol = "imx.v1"
	// ReadLimit is the largest WebSocket message a FrameConn reads: a
	// header and the largest body any side may announce. Frames between
	// the receiver's own limit and this are still read through, without
	// being buffered, so that the receiver can answer too-large and go on
	// (docs/protocol.md §3).
	ReadLimit = wire.HeaderLen + wire.MaxFrameBody
)

// ErrFraming: a WebSocket message was not exactly one IMX frame (a text
// message, a binary message shorter or longer than the frame its header
// announces, or two frames in one message). It comes wrapped together with
// wire.StatusProtocolError.
var ErrFraming = errors.New("c2s: websocket message is not exactly one frame")

// closeTimeout bounds the writes of Close.
const closeTimeout = 5 * time.Second

// FrameConn presents a WebSocket connection as a net.Conn for package
// link: the byte stream it reads is the frames of the binary messages, one
// frame per message, checked as they are read; each Write must be exactly
// one frame and goes out as one binary message. Run link with
// Config.FramePerWrite. Both ends of the client API use it: the server's
// Handler and the Go client.
//
// A message that is not exactly one frame fails the read with ErrFraming,
// before the frame it holds is complete, so that nothing of it is acted
// on; Close then sends CLOSE protocol-error (unless a CLOSE was already
// written) and closes the WebSocket with status 1008 (policy violation).
//
// Deadlines follow the WebSocket library's rule that an operation
// interrupted by its deadline closes the connection; a read deadline
// closes it when it passes even between reads. link uses read deadlines
// only to bound the handshake and the grace period of a close, where that
// is what is wanted. Reads use no context (and cost none) when no deadline
// is set.
type FrameConn struct {
	ws            *websocket.Conn
	src           messageSource // ws, or a test's messages
	local, remote net.Addr
	rd, wd        deadline

	// Read state, owned by the reader.
	msg     io.Reader // the current message, nil between messages
	hdr     [wire.HeaderLen]byte
	hdrLeft int   // header bytes not yet returned
	left    int64 // body bytes not yet returned
	readErr error // sticky
	one     [1]byte

	// Set by the Handler, for WaitRead: the connection under ws, and
	// ws's read buffer on it.
	in  *waitConn
	wbr *bufio.Reader

	// The connection under ws, if it can be corked (Cork, Uncork);
	// whether the writer has corked it for a batch; and whether every
	// message is corked on its own too (the Handler's connections, whose
	// WebSocket write buffer is tiny).
	cork     *CorkConn
	batching atomic.Bool
	corkEach bool

	reading   atomic.Bool // a Read or a WaitRead is in progress
	mu        sync.Mutex
	sentClose bool  // a CLOSE record was written: nothing may follow it
	violation error // the framing error, for Close
	closed    bool
}

// NewFrameConn wraps ws. local and remote are the addresses that LocalAddr
// and RemoteAddr report; nil gives a placeholder. It sets ws's read limit
// to ReadLimit.
func NewFrameConn(ws *websocket.Conn, local, remote net.Addr) *FrameConn {
	if local == nil {
		local = wsAddr("websocket")
	}
	if remote == nil {
		remote = wsAddr("websocket")
	}
	ws.SetReadLimit(ReadLimit)
	c := &FrameConn{ws: ws, src: ws, local: local, remote: remote}
	c.rd.expire = func() { _ = ws.CloseNow() }
	c.wd.expire = c.rd.expire
	c.rd.always = true
	return c
}

// messageSource is the read side of a WebSocket: *websocket.Conn.
type messageSource interface {
	Reader(ctx context.Context) (websocket.MessageType, io.Reader, error)
}

// waitConn is the connection under a client's WebSocket, hijacked from
// net/http. Its first bytes read are those that net/http had read ahead
// (prefix). It can wait for input without a buffer (wait): a one-byte
// read, whose byte, or error, the next Read returns.
type waitConn struct {
	net.Conn
	tmp [1]byte // wait's read; wait is called by one goroutine at a time

	mu     sync.Mutex // Close's handshake may read while wait runs
	prefix []byte
	one    byte // the byte wait read, if have
	have   bool
	err    error // the error wait met, returned by every Read after
}

func (c *waitConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	switch {
	case len(c.prefix) > 0:
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.mu.Unlock()
		return n, nil
	case c.have:
		p[0], c.have = c.one, false
		c.mu.Unlock()
		return 1, nil
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// wait returns when the next Read would not block.
func (c *waitConn) wait() error {
	c.mu.Lock()
	ready := len(c.prefix) > 0 || c.have || c.err != nil
	c.mu.Unlock()
	if ready {
		return nil
	}
	n, err := c.Conn.Read(c.tmp[:])
	c.mu.Lock()
	if n > 0 {
		c.one, c.have = c.tmp[0], true
	}
	if err != nil {
		c.err = err
	}
	c.mu.Unlock()
	return err
}

// wsAddr is a net.Addr for a connection whose address is not known.
type wsAddr string

func (a wsAddr) Network() string { return "websocket" }
func (a wsAddr) String() string  { return string(a) }

// UseCork tells c that cc is the connection under its WebSocket, for Cork
// and Uncork. The Handler does it for its connections; a client that dials
// through a CorkConn may.
func (c *FrameConn) UseCork(cc *CorkConn) { c.cork = cc }

// Cork holds back the messages written until Uncork, which writes them
// with one write of the connection underneath (link.Corker). Without a
// CorkConn (UseCork) it does nothing.
func (c *FrameConn) Cork() {
	if c.cork != nil {
		c.batching.Store(true)
		c.cork.Cork()
	}
}

// Uncork writes the messages held back since Cork.
func (c *FrameConn) Uncork() error {
	if c.cork == nil {
		return nil
	}
	c.batching.Store(false)
	if err := c.wd.begin(); err != nil {
		_ = c.cork.Uncork() // lets the writes through again; the connection is ending
		return fmt.Errorf("c2s: websocket write: %w", err)
	}
	err := c.cork.Uncork()
	c.wd.end()
	if err != nil {
		if c.wd.expired() {
			return fmt.Errorf("c2s: websocket write: %w", os.ErrDeadlineExceeded)
		}
		return fmt.Errorf("c2s: websocket write: %w", err)
	}
	return nil
}

// Read reads the frames of the binary messages, as a byte stream.
func (c *FrameConn) Read(p []byte) (int, error) {
	if c.readErr != nil {
		return 0, c.readErr
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.reading.Store(true)
	defer c.reading.Store(false)
	n, err := c.read(p)
	if err != nil {
		c.readErr = err
		return 0, err
	}
	return n, nil
}

func (c *FrameConn) read(p []byte) (int, error) {
	if c.msg == nil {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := 0
	if c.hdrLeft > 0 {
		n = copy(p, c.hdr[wire.HeaderLen-c.hdrLeft:])
		c.hdrLeft -= n
		p = p[n:]
	}
	if len(p) > 0 && c.left > 0 {
		if int64(len(p)) > c.left {
			p = p[:c.left]
		}
		k, err := c.msg.Read(p)
		n += k
		c.left -= int64(k)
		if errors.Is(err, io.EOF) && c.left > 0 {
			return 0, c.fail("message ends %d bytes before the end of its frame", c.left)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, c.wsErr(err)
		}
	}
	if c.hdrLeft == 0 && c.left == 0 {
		// The frame is complete: the message must end here. Checked
		// before its last bytes are returned, so that a message with
		// more than one frame fails before the first is acted on.
		if err := c.end(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// WaitRead returns when a Read would not block (link.ReadWaiter): at once
// if a message is being read or bytes are buffered, else after a one-byte
// read of the connection under the WebSocket, which keeps the byte for the
// WebSocket's next read. An idle client connection's reader waits here,
// near the top of its stack, and not at the bottom of the WebSocket
// library's read path: the runtime can then shrink its stack to 4 KiB (a
// client that sends WebSocket pings while idle is still read through the
// library, and keeps a larger stack). A FrameConn that the Handler did not
// make (the Go client's) returns at once.
func (c *FrameConn) WaitRead() error {
	if c.in == nil || c.msg != nil || c.readErr != nil {
		return nil
	}
	// Close's handshake reads the WebSocket's buffer too: under mu, either
	// Close has begun (and the next Read reports it), or reading is set
	// before Close looks, and Close closes at once, which ends the wait.
	c.mu.Lock()
	if c.closed || c.wbr.Buffered() > 0 {
		c.mu.Unlock()
		return nil
	}
	c.reading.Store(true)
	c.mu.Unlock()
	err := c.in.wait()
	c.reading.Store(false)
	return err
}

// next starts the next message and reads its frame header.
func (c *FrameConn) next() error {
	if c.rd.expired() {
		return fmt.Errorf("c2s: websocket read: %w", os.ErrDeadlineExceeded)
	}
	// No context deadline: a read deadline closes the connection when it
	// passes (deadline), which is what the WebSocket library would do
	// with a read interrupted by its context, without the cost of a
	// context per connection.
	typ, r, err := c.src.Reader(context.Background())
	if err != nil {
		return c.wsErr(err)
	}
	if typ != websocket.MessageBinary {
		return c.fail("%s message", typ)
	}
	k, err := io.ReadFull(r, c.hdr[:])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return c.fail("message of %d bytes, shorter than a frame header", k)
	}
	if err != nil {
		return c.wsErr(err)
	}
	c.msg = r
	c.hdrLeft = wire.HeaderLen
	c.left = int64(binary.BigEndian.Uint32(c.hdr[8:12]))
	return nil
}

// end checks that the current message has nothing after its frame.
func (c *FrameConn) end() error {
	for {
		k, err := c.msg.Read(c.one[:])
		if k > 0 {
			return c.fail("more than one frame in a message")
		}
		if errors.Is(err, io.EOF) {
			c.msg = nil
			return nil
		}
		if err != nil {
			return c.wsErr(err)
		}
	}
}

// fail records a framing violation and returns its error.
func (c *FrameConn) fail(format string, args ...any) error {
	err := fmt.Errorf("%w: %w: %s", ErrFraming, wire.StatusProtocolError, fmt.Sprintf(format, args...))
	c.mu.Lock()
	if c.violation == nil {
		c.violation = err
	}
	c.mu.Unlock()
	return err
}

// wsErr translates the WebSocket library's errors to those of a net.Conn:
// a normal close by the peer is io.EOF, an expired deadline
// os.ErrDeadlineExceeded (wrapped).
func (c *FrameConn) wsErr(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return io.EOF
	}
	if c.rd.expired() {
		return fmt.Errorf("c2s: websocket read: %w", os.ErrDeadlineExceeded)
	}
	if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return io.EOF
	}
	return fmt.Errorf("c2s: websocket read: %w", err)
}

// Write sends b, which must be exactly one frame, as one binary message.
func (c *FrameConn) Write(b []byte) (int, error) {
	h, err := wire.ParseHeader(b)
	if err != nil || len(b) != wire.HeaderLen+int(h.Len) {
		return 0, fmt.Errorf("c2s: Write of %d bytes is not exactly one frame", len(b))
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return 0, fmt.Errorf("c2s: write on a closed connection: %w", net.ErrClosed)
	case c.sentClose:
		c.mu.Unlock()
		return 0, fmt.Errorf("c2s: write after CLOSE: %w", net.ErrClosed)
	}
	if h.Type == wire.TypeClose {
		c.sentClose = true
	}
	c.mu.Unlock()
	if err := c.wd.begin(); err != nil {
		return 0, fmt.Errorf("c2s: websocket write: %w", err)
	}
	// Outside a batch, on the Handler's connections, the message is
	// corked on its own: the library writes a header and a payload
	// through a tiny write buffer, and they leave together.
	solo := c.corkEach && c.cork != nil && !c.batching.Load()
	if solo {
		c.cork.Cork()
	}
	err = c.ws.Write(context.Background(), websocket.MessageBinary, b)
	if solo {
		if uerr := c.cork.Uncork(); err == nil {
			err = uerr
		}
	}
	c.wd.end()
	if err != nil {
		if c.wd.expired() {
			return 0, fmt.Errorf("c2s: websocket write: %w", os.ErrDeadlineExceeded)
		}
		return 0, fmt.Errorf("c2s: websocket write: %w", err)
	}
	return len(b), nil
}

// Close closes the WebSocket. After a framing violation it first sends
// CLOSE protocol-error, unless a CLOSE was written already. While a Read
// is in progress (the connection is being aborted) it closes at once;
// otherwise it runs the WebSocket closing handshake, which takes at most
// a few seconds.
func (c *FrameConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	violation, sentClose := c.violation, c.sentClose
	c.sentClose = true
	waiting := c.reading.Load() // a WaitRead that began before Close
	c.mu.Unlock()
	defer func() { // stop their timers
		c.rd.set(time.Time{})
		c.wd.set(time.Time{})
	}()
	if waiting || c.reading.Load() {
		return c.ws.CloseNow()
	}
	if violation == nil {
		return c.ws.Close(websocket.StatusNormalClosure, "")
	}
	if !sentClose {
		b, _ := (&wire.Close{Code: wire.StatusProtocolError, Text: "a websocket message must hold exactly one frame"}).AppendBinary(nil)
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		_ = c.ws.Write(ctx, websocket.MessageBinary, b)
		cancel()
	}
	return c.ws.Close(websocket.StatusPolicyViolation, "not one imx frame per message")
}

// Violation returns the framing error that failed the connection, or nil.
func (c *FrameConn) Violation() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.violation
}

// LocalAddr returns the local address given to NewFrameConn.
func (c *FrameConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the remote address given to NewFrameConn.
func (c *FrameConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *FrameConn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline. When it passes, the connection
// is closed, and a Read in progress fails with os.ErrDeadlineExceeded:
// link sets read deadlines only to bound the handshake and the grace
// period of a close, after which the connection ends anyway.
func (c *FrameConn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline. A write still in progress
// when it passes fails with os.ErrDeadlineExceeded, and the connection is
// closed.
func (c *FrameConn) SetWriteDeadline(t time.Time) error {
	c.wd.set(t)
	return nil
}

// deadline is a read or write deadline without a context: a timer that
// closes the connection when the deadline passes while an operation is in
// progress (for reads, always: link's reader is always reading). Its one
// timer is reset, not made anew, so that a write costs no allocation.
type deadline struct {
	mu     sync.Mutex
	at     time.Time
	always bool // the deadline closes the connection even between operations
	busy   bool // an operation is in progress
	fired  bool
	timer  *time.Timer
	expire func() // closes the connection
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at = t
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.always || d.busy {
		d.arm()
	}
}

// arm starts the timer for the deadline, if there is one; d.mu is held.
func (d *deadline) arm() {
	if d.at.IsZero() || d.expire == nil {
		return
	}
	dur := max(time.Until(d.at), 0)
	if d.timer == nil {
		d.timer = time.AfterFunc(dur, d.fire)
	} else {
		d.timer.Reset(dur)
	}
}

// begin starts an operation; it fails if the deadline has passed.
func (d *deadline) begin() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fired || (!d.at.IsZero() && !time.Now().Before(d.at)) {
		return os.ErrDeadlineExceeded
	}
	d.busy = true
	d.arm()
	return nil
}

// end ends the operation; the timer may still fire, and finds it done.
func (d *deadline) end() {
	d.mu.Lock()
	d.busy = false
	d.mu.Unlock()
}

// fire runs on the timer; a deadline moved since it was armed, or an
// operation finished in time, is left alone.
func (d *deadline) fire() {
	d.mu.Lock()
	due := (d.always || d.busy) && !d.at.IsZero() && !time.Now().Before(d.at)
	d.fired = d.fired || due
	d.mu.Unlock()
	if due {
		d.expire()
	}
}

// expired reports whether the deadline has fired or passed.
func (d *deadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fired || (!d.at.IsZero() && !time.Now().Before(d.at))
}
