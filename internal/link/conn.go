// Package link is the engine of one IMX connection, server-to-server or
// client-to-server: the HELLO handshake (§4.4.1), one reader and one writer
// goroutine, a bounded send queue, write deadlines, keepalive PINGs, the
// idle timeout, orderly CLOSE in both directions (§4.4.3), and the routing of
// responses to the requests that wait for them (§4.4.7).
//
// # Lifecycle
//
// [Initiate] (the side that dialled) or [Accept] (the side that accepted)
// runs the handshake under a deadline and returns a *Conn. [Conn.Run] reads
// frames in the caller's goroutine; it returns when the connection has
// ended, after the writer has stopped. Records go out through [Conn.Send],
// which blocks when the queue is full (backpressure) until its context
// ends. [Conn.Close] queues a CLOSE behind what is already queued, waits
// for the peer to close, and ends the connection.
//
// # Idle connections
//
// A connection costs little while it is idle, because servers keep many
// idle client connections open. The writer goroutine runs only while
// there is something to write: the first record queued after the queue
// ran empty starts it, and it exits when the queue is empty again. One
// writer runs at a time and takes the records in queue order. So an idle
// connection has one goroutine, the reader. Between frames, the reader
// gives its wire.Decoder (record cache and string table) back to a pool
// that all connections share. On a connection that implements
// [ReadWaiter] (the client API's WebSocket), the reader waits for the next
// frame in WaitRead, called from Run itself, so that the stack of an idle
// connection is shallow and the runtime shrinks it to its smallest size.
//
// # Records
//
// Run handles PING (answers PONG), CLOSE, and responses (hands them to the
// node-wide [Requests]) itself, skips unknown record types, and answers
// invalid frames with RESULT; every other record goes to the Handler. A
// record passed to the Handler comes from a wire.Decoder: it is valid only
// until the Handler returns; use wire.Clone to keep it.
package link

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/internal/workers"
	"github.com/imxproject/imx/wire"
)

// Errors.
var (
	// ErrClosed: the connection is closed or closing; nothing more can be
	// sent on it.
	ErrClosed = errors.New("link: connection closed")
	// ErrHandshake: the peer did not complete the HELLO exchange.
	ErrHandshake = errors.New("link: handshake failed")
	// ErrDeadPeer: the peer stopped answering PINGs.
	ErrDeadPeer = errors.New("link: peer not responding")
	// ErrProtocol: the peer sent too many invalid frames.
	ErrProtocol = errors.New("link: protocol violations")
)

// Defaults of Config.
const (
	DefaultQueueLen         = 1024
	DefaultReadBuffer       = 4096
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultKeepAlive        = 30 * time.Second
	DefaultCloseGrace       = 5 * time.Second
	// maxViolations is how many invalid frames a connection may send
	// before it is closed with protocol-error.
	maxViolations = 16
	// writeBatch is how many queued frames the writer encodes before it
	// flushes.
	writeBatch = 128
	// maxKeptFrame is the size of the pooled frame buffers of
	// FramePerWrite writers; a larger frame gets a buffer of its own.
	maxKeptFrame = 2 << 10
	// writerYields is how many times a writer that found the queue empty
	// yields the processor and looks again before it exits.
	writerYields = 2
)

// Config configures a connection. The zero value gives the defaults.
type Config struct {
	// Software and Capabilities go into HELLO.
	Software     string
	Capabilities []string
	// MaxBody is the largest frame body this side accepts; announced in
	// HELLO. 0: wire.DefaultMaxFrameBody.
	MaxBody uint32
	// QueueLen is the capacity of the send queue, in records.
	QueueLen int
	// ReadBuffer is the size of the read buffer: larger means fewer
	// system calls for busy connections, more memory for idle ones. 0:
	// DefaultReadBuffer.
	ReadBuffer int
	// HandshakeTimeout bounds the HELLO exchange.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds every write to the socket.
	WriteTimeout time.Duration
	// IdleTimeout closes the connection with CLOSE idle after this long
	// without a record other than PING and PONG in either direction
	// (§4.3). 0 disables.
	IdleTimeout time.Duration
	// KeepAlive sends a PING after this long without a frame from the
	// peer, and ends the connection with ErrDeadPeer if another KeepAlive
	// passes without one. 0: DefaultKeepAlive; negative disables.
	KeepAlive time.Duration
	// CloseGrace is how long Close waits for the peer to close after our
	// CLOSE before it drops the connection.
	CloseGrace time.Duration
	// Requests is the node-wide table of requests waiting for responses;
	// nil gives the connection a table of its own.
	Requests *Requests
	// AcceptResponse, if set, decides whether a response that arrived on
	// this connection may answer the waiting call (for example: only if
	// the connection is authenticated for the domain the request went
	// to). A refused response is dropped and logged.
	AcceptResponse func(c *Conn, call *Call) bool
	// Responses, if set, sees every response on the reader goroutine
	// before Requests does, and takes it by returning true: for a caller
	// that keeps many requests in flight and counts their answers itself,
	// without a Call and a waiting goroutine each (imxbench's load
	// generator). rec is valid only during the call.
	Responses func(c *Conn, rec wire.Record) bool
	// Logger receives the connection's log lines; nil discards them.
	Logger *slog.Logger
	// Frames, if set, adds up this connection's frames by record type
	// with those of the other connections that name it.
	Frames *FrameCounter
	// SharedFrames makes the connection count its frames straight into
	// Frames instead of into counters of its own that Frames adds up:
	// less memory per connection, for the many connections of clients;
	// FramesByType then reports nothing for the connection.
	SharedFrames bool
	// FramePerWrite makes the writer encode each record into a reusable
	// buffer and hand it to the connection in one Write call of exactly
	// that frame, instead of batching frames through a 16 KiB buffered
	// writer that may split a large frame across Writes. It is for
	// transports that carry one frame per message, such as the client
	// API's WebSocket, and saves the write buffer of idle connections:
	// the writer takes a frame buffer of maxKeptFrame bytes from a pool
	// when it starts and gives it back when the queue runs empty.
	FramePerWrite bool
	// Writers, if set, runs the connection's writer on a pool's
	// long-lived goroutines instead of a new goroutine at each start.
	Writers *WriterPool
}

func (c Config) withDefaults() Config {
	if c.MaxBody == 0 {
		c.MaxBody = wire.DefaultMaxFrameBody
	}
	c.MaxBody = min(max(c.MaxBody, wire.MinFrameBody), wire.MaxFrameBody)
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = DefaultReadBuffer
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.CloseGrace <= 0 {
		c.CloseGrace = DefaultCloseGrace
	}
	if c.Requests == nil {
		c.Requests = new(Requests)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ReadWaiter is implemented by a net.Conn that can wait for its next input
// without a read buffer, through fewer calls than its Read (c2s.FrameConn).
// When the connection's read buffer is empty, Run calls WaitRead before it
// reads on, so that an idle connection's reader is blocked near the top of
// its stack.
type ReadWaiter interface {
	// WaitRead returns when a Read would not block: input is there, or
	// Read would fail. Its error is for logs; Read reports it again.
	WaitRead() error
}

// errWait ends readLoop when the read buffer is empty and the connection
// is a ReadWaiter: Run waits, then reads on.
var errWait = errors.New("link: wait for input")

// Handler receives the records that the link does not handle itself. It
// runs on the reader goroutine and must not block for long: hand slow work
// to another goroutine (with a wire.Clone of the record).
type Handler func(c *Conn, rec wire.Record)

var connIDs atomic.Uint64

// Conn is one established IMX connection.
type Conn struct {
	nc        net.Conn
	cfg       Config
	log       *slog.Logger
	id        uint64
	initiator bool
	version   uint16
	peer      wire.Hello // the peer's HELLO
	peerMax   uint32     // the peer's body limit

	br  *bufio.Reader // under rd
	rd  *wire.Reader
	rw  ReadWaiter    // nc, if it is one
	dec *wire.Decoder // from decoders while a frame is being read; reader only

	// The writer goroutine runs only while there is something to write
	// (see writeLoop): wstate is writerIdle, writerRunning or writerDone.
	wstate atomic.Int32
	wdone  chan struct{} // closed when the last writer has ended
	fw     frameWriter   // the writer's, kept between its runs

	// The send queue: records waiting for the writer, q[qhead:], at most
	// cfg.QueueLen. It holds memory only while it holds records (an idle
	// connection has none); qspace, when not nil, is closed when a record
	// leaves a full queue.
	qmu    sync.Mutex
	q      []wire.Record
	qhead  int
	qspace chan struct{}

	closing  chan struct{} // closed when the connection starts to close
	closed   atomic.Bool   // set just before closing is closed: a cheaper look on the hot paths
	done     chan struct{} // closed when the connection has ended
	closeMu  sync.Mutex
	closeRec *wire.Close // our CLOSE, nil if the peer closed first
	reason   error       // why the connection ended
	peerBye  *wire.Close // the peer's CLOSE, if it sent one

	// Activity is counted, not timed, on the hot path: the timer notes
	// when a counter last moved (recvSeen, activeSeen: unix nanos).
	recvCount, activeCount atomic.Uint64
	recvMark, activeMark   uint64 // the counters at the last check; timer only
	recvSeen, activeSeen   int64
	timerMu                sync.Mutex
	timer                  *time.Timer // keepalive and idle checks
	pingCall               *Call       // the keepalive PING in flight
	violations             int

	// Stats, for metrics.
	FramesIn, FramesOut atomic.Uint64
	frames              *frameCounts // by record type: its own, or Frames' shared ones
}

// States of the writer goroutine (Conn.wstate).
const (
	writerIdle    = iota // not running: the next record queued starts it
	writerRunning        // running, or Run has not started yet
	writerDone           // ended for good: the connection is closing
)

// decoders are the wire.Decoders of the connections that are reading a
// frame; an idle connection holds none.
var decoders = sync.Pool{New: func() any { return new(wire.Decoder) }}

func newConn(nc net.Conn, cfg Config, initiator bool) *Conn {
	cfg = cfg.withDefaults()
	id := connIDs.Add(1)
	br := bufio.NewReaderSize(nc, cfg.ReadBuffer)
	c := &Conn{
		nc:        nc,
		cfg:       cfg,
		id:        id,
		initiator: initiator,
		br:        br,
		rd:        wire.NewReader(br, cfg.MaxBody),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		wdone:     make(chan struct{}),
		peerMax:   wire.DefaultMaxFrameBody,
	}
	if cfg.Frames != nil && cfg.SharedFrames {
		c.frames = &cfg.Frames.shared
	} else {
		c.frames = new(frameCounts)
	}
	c.wstate.Store(writerRunning) // no writer before Run
	c.rw, _ = nc.(ReadWaiter)
	c.log = WithAttrs(cfg.Logger, slog.Uint64("conn", id), slog.String("remote", nc.RemoteAddr().String()))
	now := time.Now().UnixNano()
	c.recvSeen, c.activeSeen = now, now
	return c
}

// handshakeDeadline sets the connection's deadline for the handshake and
// arranges for ctx's end to interrupt it; the returned func undoes both.
func handshakeDeadline(ctx context.Context, nc net.Conn, d time.Duration) func() {
	deadline := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	return func() {
		stop()
		_ = nc.SetDeadline(time.Time{})
	}
}

func (c *Conn) hello() *wire.Hello {
	return &wire.Hello{
		MinVersion:   wire.MinProtocolVersion,
		MaxVersion:   wire.ProtocolVersion,
		Capabilities: c.cfg.Capabilities,
		Software:     c.cfg.Software,
		MaxFrame:     c.cfg.MaxBody,
	}
}

// writeNow writes one record directly, for the handshake (before the writer
// runs).
func (c *Conn) writeNow(rec wire.Record) error {
	b, err := rec.AppendBinary(nil)
	if err != nil {
		return err
	}
	_, err = c.nc.Write(b)
	return err
}

// Initiate runs the handshake as the side that dialled nc: it sends HELLO
// and waits for the peer's. On failure it closes nc.
func Initiate(ctx context.Context, nc net.Conn, cfg Config) (*Conn, error) {
	c := newConn(nc, cfg, true)
	undo := handshakeDeadline(ctx, nc, c.cfg.HandshakeTimeout)
	err := c.initiate()
	undo()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) initiate() error {
	h := c.hello()
	h.Tag = 1
	if err := c.writeNow(h); err != nil {
		return fmt.Errorf("%w: send HELLO: %w", ErrHandshake, err)
	}
	rec, err := c.rd.ReadRecord()
	if err != nil {
		return fmt.Errorf("%w: read HELLO: %w", ErrHandshake, err)
	}
	switch r := rec.(type) {
	case *wire.Close:
		return fmt.Errorf("%w: peer closed: %w (%s)", ErrHandshake, r.Code, r.Text)
	case *wire.Hello:
		if !r.Flags.Has(wire.FlagResponse) || r.Tag != h.Tag {
			return fmt.Errorf("%w: HELLO is not a response to ours", ErrHandshake)
		}
		if r.MinVersion != r.MaxVersion || r.MinVersion < wire.MinProtocolVersion || r.MinVersion > wire.ProtocolVersion {
			return fmt.Errorf("%w: peer chose version %d..%d, we speak %d..%d", ErrHandshake, r.MinVersion, r.MaxVersion, wire.MinProtocolVersion, wire.ProtocolVersion)
		}
		c.setPeer(r)
		return nil
	}
	return fmt.Errorf("%w: expected HELLO, got %s", ErrHandshake, rec.Type())
}

// Accept runs the handshake as the side that accepted nc: it waits for the
// peer's HELLO, picks the highest common version, and answers. With no
// common version it sends CLOSE version-unsupported. On failure it closes nc.
func Accept(ctx context.Context, nc net.Conn, cfg Config) (*Conn, error) {
	c := newConn(nc, cfg, false)
	undo := handshakeDeadline(ctx, nc, c.cfg.HandshakeTimeout)
	err := c.accept()
	undo()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) accept() error {
	rec, err := c.rd.ReadRecord()
	if err != nil {
		if s := wire.StatusOf(err); s != wire.StatusInternal {
			_ = c.writeNow(&wire.Close{Code: wire.StatusProtocolError, Text: "expected HELLO"})
		}
		return fmt.Errorf("%w: read HELLO: %w", ErrHandshake, err)
	}
	h, ok := rec.(*wire.Hello)
	if !ok || h.Flags.Has(wire.FlagResponse) {
		_ = c.writeNow(&wire.Close{Code: wire.StatusProtocolError, Text: "expected HELLO"})
		return fmt.Errorf("%w: expected HELLO, got %s", ErrHandshake, rec.Type())
	}
	v := min(h.MaxVersion, wire.ProtocolVersion)
	if v < max(h.MinVersion, wire.MinProtocolVersion) {
		_ = c.writeNow(&wire.Close{Code: wire.StatusVersion,
			Text: fmt.Sprintf("this server speaks versions %d..%d", wire.MinProtocolVersion, wire.ProtocolVersion)})
		return fmt.Errorf("%w: no common version: peer %d..%d, we %d..%d", ErrHandshake, h.MinVersion, h.MaxVersion, wire.MinProtocolVersion, wire.ProtocolVersion)
	}
	resp := c.hello()
	resp.Tag, resp.Flags = h.Tag, wire.FlagResponse
	resp.MinVersion, resp.MaxVersion = v, v
	if err := c.writeNow(resp); err != nil {
		return fmt.Errorf("%w: send HELLO: %w", ErrHandshake, err)
	}
	c.setPeer(h)
	c.version = v
	return nil
}

func (c *Conn) setPeer(h *wire.Hello) {
	c.peer = *h
	c.peer.Capabilities = append([]string(nil), h.Capabilities...)
	c.version = h.MaxVersion
	if h.MaxFrame != 0 {
		c.peerMax = h.MaxFrame
	}
	c.log = c.log.With("peer_software", h.Software)
}

// ID returns the connection's process-unique number.
func (c *Conn) ID() uint64 { return c.id }

// Initiator reports whether this side dialled the connection.
func (c *Conn) Initiator() bool { return c.initiator }

// Version returns the negotiated protocol version.
func (c *Conn) Version() uint16 { return c.version }

// PeerHello returns the peer's HELLO.
func (c *Conn) PeerHello() wire.Hello { return c.peer }

// PeerHas reports whether both sides listed the capability.
func (c *Conn) PeerHas(capability string) bool {
	mine, theirs := false, false
	for _, x := range c.cfg.Capabilities {
		mine = mine || x == capability
	}
	for _, x := range c.peer.Capabilities {
		theirs = theirs || x == capability
	}
	return mine && theirs
}

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns this side's network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Logger returns the connection's logger.
func (c *Conn) Logger() *slog.Logger { return c.log }

// Requests returns the table that the connection's responses go to.
func (c *Conn) Requests() *Requests { return c.cfg.Requests }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Closing is closed when the connection starts to close; Send fails from
// then on.
func (c *Conn) Closing() <-chan struct{} { return c.closing }

// Err returns why the connection ended: nil for an orderly close by either
// side, or the error. Valid after Done is closed.
func (c *Conn) Err() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.reason
}

// PeerClose returns the CLOSE the peer sent, or nil.
func (c *Conn) PeerClose() *wire.Close {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.peerBye
}

// Send queues rec for the writer. It blocks while the queue is full until
// ctx ends. rec must not be changed after Send returns nil.
func (c *Conn) Send(ctx context.Context, rec wire.Record) error {
	return c.SendWithin(ctx, rec, 0)
}

// SendWithin is Send that waits at most d (if d > 0) for room in the queue,
// and fails then with context.DeadlineExceeded. It starts a timer only if
// it has to wait: a context.WithTimeout made for every record (a timer, and
// a child registered with its parent) was 4% of a server's CPU under load.
func (c *Conn) SendWithin(ctx context.Context, rec wire.Record, d time.Duration) error {
	var expired <-chan time.Time
	for {
		ok, wait := c.push(rec, true)
		if ok {
			c.kick()
			return nil
		}
		if wait == nil {
			return ErrClosed
		}
		if d > 0 && expired == nil {
			t := time.NewTimer(d)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-wait:
		case <-c.closing:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		case <-expired:
			return context.DeadlineExceeded
		}
	}
}

// TrySend queues rec if there is room and reports whether it did.
func (c *Conn) TrySend(rec wire.Record) bool {
	ok, _ := c.push(rec, false)
	if ok {
		c.kick()
	}
	return ok
}

// push appends rec to the queue. When the queue is full it returns a
// channel closed when there is room (if wait), or nil when the connection
// is closing.
func (c *Conn) push(rec wire.Record, wait bool) (bool, <-chan struct{}) {
	if c.isClosing() {
		return false, nil
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.q)-c.qhead < c.cfg.QueueLen {
		c.q = append(c.q, rec)
		return true, nil
	}
	if !wait {
		return false, nil
	}
	if c.qspace == nil {
		c.qspace = make(chan struct{})
	}
	return false, c.qspace
}

// pop takes the oldest queued record.
func (c *Conn) pop() (wire.Record, bool) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.qhead == len(c.q) {
		return nil, false
	}
	rec := c.q[c.qhead]
	c.q[c.qhead] = nil
	c.qhead++
	switch {
	case c.qhead == len(c.q):
		c.q, c.qhead = c.q[:0], 0
	case c.qhead >= 64 && 2*c.qhead >= len(c.q):
		// Move what is left to the front, so that a queue that never
		// empties does not grow.
		n := copy(c.q, c.q[c.qhead:])
		clear(c.q[n:])
		c.q, c.qhead = c.q[:n], 0
	}
	if c.qspace != nil {
		close(c.qspace)
		c.qspace = nil
	}
	return rec, true
}

// releaseQueue frees the queue's memory if it is empty (the writer going
// idle).
func (c *Conn) releaseQueue() {
	c.qmu.Lock()
	if c.qhead == len(c.q) {
		c.q, c.qhead = nil, 0
	}
	c.qmu.Unlock()
}

// QueueLen returns the number of records waiting for the writer.
func (c *Conn) QueueLen() int {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return len(c.q) - c.qhead
}

// Close starts an orderly close: the writer sends what is queued, then
// CLOSE with code and text; the connection ends when the peer closes or
// CloseGrace passes. Close does not wait; use Done.
func (c *Conn) Close(code wire.Status, text string) {
	c.startClose(&wire.Close{Code: code, Text: text}, nil)
}

// Abort ends the connection at once, without CLOSE.
func (c *Conn) Abort(reason error) {
	c.setReason(reason)
	_ = c.nc.Close()
}

func (c *Conn) setReason(err error) {
	c.closeMu.Lock()
	if c.reason == nil {
		c.reason = err
	}
	c.closeMu.Unlock()
}

// startClose moves the connection to closing once. mine is our CLOSE (nil
// when the peer closed first).
func (c *Conn) startClose(mine *wire.Close, reason error) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	select {
	case <-c.closing:
		return
	default:
	}
	c.closeRec = mine
	if reason != nil && c.reason == nil {
		c.reason = reason
	}
	c.closed.Store(true)
	close(c.closing)
	c.kick() // the writer sends what is queued, and our CLOSE
}

// isClosing reports whether the connection has started to close.
func (c *Conn) isClosing() bool { return c.closed.Load() }

// Run reads and dispatches frames until the connection ends, then stops the
// writer and closes the socket. It returns Err(). ctx's end closes the
// connection with CLOSE shutting-down.
func (c *Conn) Run(ctx context.Context, h Handler) error {
	if c.cfg.Frames != nil && !c.cfg.SharedFrames {
		c.cfg.Frames.add(c)
	}
	c.wstate.Store(writerIdle)
	if c.QueueLen() > 0 || c.isClosing() { // queued before Run
		c.kick()
	}
	stopCtx := context.AfterFunc(ctx, func() { c.Close(wire.StatusShuttingDown, "server shutting down") })
	if c.cfg.KeepAlive > 0 || c.cfg.IdleTimeout > 0 {
		c.timerMu.Lock()
		c.timer = time.AfterFunc(c.checkEvery(), c.checkTimers)
		c.timerMu.Unlock()
	}

	err := errWait
	for err == errWait {
		if c.rw != nil && c.br.Buffered() == 0 {
			// Here, not deeper, so that an idle reader's stack is shallow.
			_ = c.rw.WaitRead()
		}
		err = c.readLoop(h)
	}

	stopCtx()
	c.startClose(nil, err)
	c.timerMu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.pingCall != nil {
		c.pingCall.Cancel()
	}
	c.timerMu.Unlock()
	<-c.wdone // startClose started the last writer
	if c.dec != nil {
		decoders.Put(c.dec)
		c.dec = nil
	}
	if c.cfg.Frames != nil && !c.cfg.SharedFrames {
		c.cfg.Frames.remove(c)
	}
	_ = c.nc.Close()
	close(c.done)
	if e := c.Err(); e != nil {
		c.log.Info("connection ended", "err", e)
	} else {
		c.log.Debug("connection closed")
	}
	return c.Err()
}

// checkEvery is how long until the next check of the timers: half the
// keepalive, a quarter of the idle timeout, aligned (alignedDelay).
func (c *Conn) checkEvery() time.Duration {
	d := time.Hour
	if c.cfg.KeepAlive > 0 {
		d = c.cfg.KeepAlive / 2
	}
	if c.cfg.IdleTimeout > 0 {
		d = min(d, max(c.cfg.IdleTimeout/4, time.Millisecond))
	}
	return alignedDelay(time.Now(), max(d, time.Millisecond), !c.initiator)
}

// alignedDelay is a delay from now of d and at most a sixteenth of d more,
// ending on a multiple of d/16 since the zero time: the timers of all the
// connections with the same settings fire at the same instants. So the
// checks of many idle connections share a wake-up of the process, where
// each woke it on its own: 10,000 idle client sessions at the default
// keepalive made 667 wake-ups a second. Under 16 ms, d is left as it is.
//
// The accepting side's instants are half a sixteenth later (late), so
// that the two ends of a quiet connection, whose clocks agree, do not
// both find it silent at the same instant and both send a PING: the later
// one has the earlier one's PING by then.
func alignedDelay(now time.Time, d time.Duration, late bool) time.Duration {
	grid := d / 16
	if grid < time.Millisecond {
		return d
	}
	var shift time.Duration
	if late {
		shift = grid / 2
	}
	return now.Add(d - shift).Truncate(grid).Add(grid + shift).Sub(now)
}

// checkTimers runs on a timer: keepalive PINGs, dead peers, idle close.
func (c *Conn) checkTimers() {
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	select {
	case <-c.closing:
		return
	default:
	}
	now := time.Now()
	if n := c.recvCount.Load(); n != c.recvMark {
		c.recvMark, c.recvSeen = n, now.UnixNano()
	}
	if n := c.activeCount.Load(); n != c.activeMark {
		c.activeMark, c.activeSeen = n, now.UnixNano()
	}
	if c.cfg.IdleTimeout > 0 && now.Sub(time.Unix(0, c.activeSeen)) >= c.cfg.IdleTimeout {
		c.log.Debug("closing idle connection", "idle", c.cfg.IdleTimeout)
		c.Close(wire.StatusIdle, "idle")
		return
	}
	if ka := c.cfg.KeepAlive; ka > 0 {
		silent := now.Sub(time.Unix(0, c.recvSeen))
		switch {
		case silent >= 2*ka:
			c.log.Warn("peer not responding; dropping connection", "silent", silent.Round(time.Millisecond))
			c.Abort(ErrDeadPeer)
			return
		case silent >= ka:
			if c.pingCall != nil {
				c.pingCall.Cancel()
			}
			c.pingCall = c.cfg.Requests.Start()
			c.TrySend(&wire.Ping{Head: wire.Head{Tag: c.pingCall.Tag()}})
		}
	}
	c.timer.Reset(c.checkEvery())
}

// readLoop reads and dispatches frames until the connection ends, or, on
// a ReadWaiter, until the read buffer is empty after the first frame
// (errWait).
func (c *Conn) readLoop(h Handler) error {
	for first := true; ; first = false {
		if c.br.Buffered() == 0 {
			// Nothing more buffered: the next read may wait long.
			if c.dec != nil {
				decoders.Put(c.dec)
				c.dec = nil
			}
			if c.rw != nil && !first {
				return errWait
			}
		}
		hd, body, err := c.rd.ReadFrame()
		if err != nil {
			if errors.Is(err, wire.ErrFrameTooLarge) {
				c.log.Warn("frame over the limit", "type", hd.Type, "len", hd.Len, "limit", c.rd.MaxBody())
				if err := c.rd.Skip(); err != nil {
					return c.readErr(err)
				}
				if e := c.violation(hd, err); e != nil {
					return e
				}
				continue
			}
			return c.readErr(err)
		}
		c.recvCount.Add(1)
		c.FramesIn.Add(1)
		c.frames.in[frameSlot(hd.Type)].Add(1)
		if c.dec == nil {
			c.dec = decoders.Get().(*wire.Decoder)
		}
		rec, err := c.dec.Decode(hd, body)
		if err != nil {
			if e := c.violation(hd, err); e != nil {
				return e
			}
			continue
		}
		switch r := rec.(type) {
		case *wire.Ping:
			c.TrySend(&wire.Pong{Head: wire.Head{Tag: r.Tag, Node: r.Node}, Data: append([]byte(nil), r.Data...)})
			continue
		case *wire.Pong:
			c.deliver(r)
			continue
		case *wire.Close:
			c.closeMu.Lock()
			c.peerBye = &wire.Close{Code: r.Code, Text: r.Text}
			c.closeMu.Unlock()
			c.log.Info("peer closed the connection", "code", r.Code, "text", r.Text)
			c.startClose(nil, nil)
			return nil
		case *wire.Unknown:
			c.log.Debug("skipping unknown record type", "type", r.RecordType)
			continue
		}
		c.activeCount.Add(1)
		if hd.Flags.Has(wire.FlagResponse) {
			if c.cfg.Responses != nil && c.cfg.Responses(c, rec) {
				continue
			}
			if !c.deliver(rec) {
				c.log.Debug("response without a waiting request", "type", hd.Type, "tag", hd.Tag)
			}
			continue
		}
		h(c, rec)
	}
}

// deliver hands a response to the node's Requests, subject to
// AcceptResponse.
func (c *Conn) deliver(rec wire.Record) bool {
	if c.cfg.AcceptResponse == nil {
		return c.cfg.Requests.Deliver(rec)
	}
	return c.cfg.Requests.DeliverIf(rec, func(call *Call) bool { return c.cfg.AcceptResponse(c, call) })
}

// readErr classifies the error that ended the read loop.
func (c *Conn) readErr(err error) error {
	select {
	case <-c.closing:
		// We sent CLOSE (or are shutting down): EOF or the grace
		// deadline is the expected end.
		if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
			return nil
		}
	default:
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("link: peer closed without CLOSE: %w", err)
	}
	return err
}

// violation answers an invalid frame (RESULT with its status when it is a
// request with a tag) and closes the connection after too many.
func (c *Conn) violation(hd wire.Header, err error) error {
	c.violations++
	if c.violations <= 3 || c.violations%100 == 0 {
		c.log.Warn("invalid frame", "type", hd.Type, "tag", hd.Tag, "err", err, "count", c.violations)
	}
	if hd.Tag != 0 && !hd.Flags.Has(wire.FlagResponse) {
		c.TrySend(&wire.Result{Head: wire.Head{Tag: hd.Tag}, Code: wire.StatusOf(err), Text: shortErr(err)})
	}
	if c.violations >= maxViolations {
		c.startClose(&wire.Close{Code: wire.StatusProtocolError, Text: "too many invalid frames"}, ErrProtocol)
		return ErrProtocol
	}
	return nil
}

// shortErr is the text of a RESULT for an invalid frame: the problem, with
// no more detail than the wire error carries.
func shortErr(err error) string {
	var fe *wire.FormatError
	if errors.As(err, &fe) {
		s := fe.Err.Error()
		if fe.Field != "" {
			s = fe.Field + ": " + s
		}
		return s
	}
	return "invalid frame"
}

// frameWriter receives the writer's encoded frames: a *bufio.Writer that
// batches them, or a *messageWriter that writes each one whole
// (Config.FramePerWrite).
type frameWriter interface {
	// AvailableBuffer returns an empty buffer to append one frame to.
	AvailableBuffer() []byte
	Write(b []byte) (int, error)
	Flush() error
}

// Corker is a connection that can hold back its writes and send them
// together (c2s.FrameConn, where each Write is a WebSocket message, and so
// a system call): a FramePerWrite writer with more than one frame queued
// corks the connection for the batch, and uncorks it at its end.
type Corker interface {
	Cork()
	Uncork() error
}

// messageWriter writes each frame to the connection in one Write call.
// It takes its buffer from frameBufs for the writer's run and gives it
// back when the writer goes idle. If the connection is a Corker, a batch
// of several frames is corked (cork), and Flush uncorks it.
type messageWriter struct {
	nc        net.Conn
	buf       *[]byte // nil while idle
	ck        Corker  // nc, if it is one
	corked    bool
	lastBatch int // frames in the last batch
}

// cork holds back the frames until Flush, if the connection can.
func (m *messageWriter) cork() {
	if m.ck != nil && !m.corked {
		m.ck.Cork()
		m.corked = true
	}
}

// frameBufs are the frame buffers of the FramePerWrite writers that are
// running: maxKeptFrame bytes each.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxKeptFrame); return &b }}

func (m *messageWriter) AvailableBuffer() []byte {
	if m.buf == nil {
		m.buf = frameBufs.Get().(*[]byte)
	}
	return (*m.buf)[:0]
}

// Write writes one frame; a frame larger than the buffer was encoded into
// a new one, left to the garbage collector.
func (m *messageWriter) Write(b []byte) (int, error) { return m.nc.Write(b) }

func (m *messageWriter) Flush() error {
	if !m.corked {
		return nil
	}
	m.corked = false
	return m.ck.Uncork()
}

// release gives the buffer back, when the writer goes idle.
func (m *messageWriter) release() {
	if m.buf != nil {
		frameBufs.Put(m.buf)
		m.buf = nil
	}
}

// kick starts a writer unless one is running: after a record is queued,
// and when the connection starts to close.
func (c *Conn) kick() {
	if c.wstate.Load() == writerIdle && c.wstate.CompareAndSwap(writerIdle, writerRunning) {
		if c.cfg.Writers != nil {
			c.cfg.Writers.p.Go(c)
		} else {
			go c.writeLoop()
		}
	}
}

// WriterPool runs the writers of many connections (Config.Writers) on
// long-lived goroutines (internal/workers): a connection's writer starts
// again for every burst of records, and a new goroutine would grow its
// stack through the write path (the WebSocket library, the system call)
// each time, which took 9% of a server's CPU pushing a presence change to
// 10,000 sessions. Idle workers exit after a few seconds, so idle
// connections still hold no writer.
type WriterPool struct {
	p *workers.Pool[*Conn]
}

// NewWriterPool returns a pool for Config.Writers whose idle goroutines
// exit after maxIdle (workers.DefaultMaxIdle if 0). Its owner calls Close,
// then Wait, once the connections that use it have ended.
func NewWriterPool(maxIdle time.Duration) *WriterPool {
	return &WriterPool{p: workers.New(workers.Config[*Conn]{
		Run:     func(c **Conn) { (*c).writeLoop() },
		MaxIdle: maxIdle,
	})}
}

// Close makes the idle writers exit at once, and the busy ones after they
// finish.
func (wp *WriterPool) Close() { wp.p.Close() }

// Wait waits until every goroutine of the pool has ended (after Close).
func (wp *WriterPool) Wait() { wp.p.Wait() }

// Live returns the number of writer goroutines alive.
func (wp *WriterPool) Live() int { return wp.p.Live() }

// writeLoop is the writer goroutine: it encodes queued records into a
// buffered writer, flushing once per batch (or, with FramePerWrite, writes
// each frame whole). When the queue is empty it exits, and the next record
// queued starts it again (kick); so an idle connection has no writer. When
// the connection closes, the last writer sends what is queued and our
// CLOSE, and closes wdone.
func (c *Conn) writeLoop() {
	if c.fw == nil {
		if c.cfg.FramePerWrite {
			ck, _ := c.nc.(Corker)
			c.fw = &messageWriter{nc: c.nc, ck: ck}
		} else {
			c.fw = bufio.NewWriterSize(c.nc, 16<<10)
		}
	}
	w := c.fw
	yields := 0
	for {
		if c.isClosing() {
			c.finishWrites(w)
			c.endWrites()
			return
		}
		if rec, ok := c.pop(); ok {
			if err := c.writeBatch(w, rec); err != nil {
				c.log.Info("write failed", "err", err)
				c.Abort(err)
				c.endWrites()
				return
			}
			continue
		}
		if yields < writerYields {
			// A busy sender is likely to queue more while others run:
			// restarting the writer costs more than a look later.
			yields++
			runtime.Gosched()
			continue
		}
		yields = 0
		// The queue is empty and everything written is flushed: stop.
		// A record queued before the Store below found a writer running
		// and did not start one, so look again after it; if another
		// writer has started meanwhile, it takes over.
		if m, ok := w.(*messageWriter); ok {
			m.release()
		}
		c.releaseQueue()
		c.wstate.Store(writerIdle)
		if c.QueueLen() == 0 && !c.isClosing() || !c.wstate.CompareAndSwap(writerIdle, writerRunning) {
			return
		}
	}
}

// endWrites marks the writer as ended for good.
func (c *Conn) endWrites() {
	if m, ok := c.fw.(*messageWriter); ok {
		m.release()
	}
	c.wstate.Store(writerDone)
	close(c.wdone)
}

// writeBatch writes rec and whatever else is queued, up to writeBatch
// records, then flushes under the write deadline.
func (c *Conn) writeBatch(w frameWriter, rec wire.Record) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	m, _ := w.(*messageWriter)
	if m != nil && m.ck != nil {
		if c.QueueLen() == 0 && m.lastBatch > 1 {
			// Alone so far on a connection whose last batch was not:
			// let the goroutines that are about to queue more run first
			// (a client's concurrent SENDs, a server's deliveries), so
			// that they share this write. A connection that gets one
			// frame at a time (a presence fan-out) does not wait.
			runtime.Gosched()
		}
		if c.QueueLen() > 0 {
			m.cork() // more than one frame: one write for them all
		}
	}
	if err := c.write(w, rec); err != nil {
		_ = w.Flush() // uncorks; the connection is ending anyway
		return err
	}
	n := 1
	for range writeBatch - 1 {
		rec, ok := c.pop()
		if !ok {
			break
		}
		if err := c.write(w, rec); err != nil {
			_ = w.Flush()
			return err
		}
		n++
	}
	if m != nil {
		m.lastBatch = n
	}
	return w.Flush()
}

func (c *Conn) write(w frameWriter, rec wire.Record) error {
	b, err := rec.AppendBinary(w.AvailableBuffer())
	if err == nil && len(b)-wire.HeaderLen > int(c.peerMax) {
		err = fmt.Errorf("link: %s of %d bytes over the peer's limit of %d: %w", rec.Type(), len(b)-wire.HeaderLen, c.peerMax, wire.StatusTooLarge)
	}
	if err != nil {
		// A record we cannot send is our bug or too large for the peer:
		// fail its request, if any, and go on.
		c.log.Error("dropping a record that cannot be sent", "type", rec.Type(), "err", err)
		if hd := rec.FrameHead(); hd.Tag != 0 && !hd.Flags.Has(wire.FlagResponse) {
			c.cfg.Requests.Deliver(&wire.Result{Head: wire.Head{Tag: hd.Tag, Flags: wire.FlagResponse}, Code: wire.StatusOf(err), Text: "not sent: " + wire.StatusOf(err).String()})
		}
		return nil
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	c.FramesOut.Add(1)
	c.frames.out[frameSlot(rec.Type())].Add(1)
	switch rec.(type) {
	case *wire.Ping, *wire.Pong:
	default:
		c.activeCount.Add(1)
	}
	return nil
}

// finishWrites drains the queue, writes our CLOSE if we are the side
// closing, half-closes the socket, and gives the peer CloseGrace to close.
func (c *Conn) finishWrites(w frameWriter) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	for {
		rec, ok := c.pop()
		if !ok {
			break
		}
		if err := c.write(w, rec); err != nil {
			c.Abort(err)
			return
		}
	}
	c.closeMu.Lock()
	mine := c.closeRec
	c.closeMu.Unlock()
	if mine != nil {
		if err := c.write(w, mine); err != nil {
			c.Abort(err)
			return
		}
	}
	if err := w.Flush(); err != nil {
		c.Abort(err)
		return
	}
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	// The reader sees the peer's EOF, or this deadline.
	_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.CloseGrace))
}
