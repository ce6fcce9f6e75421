package c2s

import (
	"net"
	"sync"
)

// CorkConn is a net.Conn whose writes can be held back and sent together:
// between Cork and Uncork, what is written is kept in a buffer, and Uncork
// writes it in one call. The WebSocket library writes every message with a
// write (a system call) of its own; when a writer has several frames
// queued for one client, each a message, FrameConn corks the connection
// under the WebSocket around the batch, so that they cost one system call
// (link calls Cork and Uncork, see link.Corker).
//
// Writes from other goroutines while it is corked (the library's pongs)
// join the buffer, in order. The buffer is taken from a pool when the
// connection corks, written out whenever it holds maxCorked bytes, and
// given back at Uncork: an idle connection holds none.
type CorkConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool
	buf    *[]byte // while corked
}

// maxCorked is the most a corked connection holds before it writes.
const maxCorked = 64 << 10

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// NewCorkConn wraps nc.
func NewCorkConn(nc net.Conn) *CorkConn { return &CorkConn{Conn: nc} }

// Write writes p, or keeps it while the connection is corked.
func (c *CorkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	if len(*c.buf)+len(p) > maxCorked {
		if err := c.flush(); err != nil {
			return 0, err
		}
		if len(p) > maxCorked {
			return c.Conn.Write(p)
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// Cork holds back the writes until Uncork.
func (c *CorkConn) Cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// Uncork writes what was held back, in one write, and lets the writes
// through again.
func (c *CorkConn) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	err := c.flush()
	if c.buf != nil {
		if cap(*c.buf) <= maxCorked {
			*c.buf = (*c.buf)[:0]
			corkBufs.Put(c.buf)
		}
		c.buf = nil
	}
	return err
}

// flush writes the buffer, under mu.
func (c *CorkConn) flush() error {
	if c.buf == nil || len(*c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}
