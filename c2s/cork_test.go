package c2s

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imxproject/imx/internal/testutil"
)

// countingConn counts the Write calls that reach the connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestCorkConn: what is written while corked reaches the peer in one
// write at Uncork, in order, writes from another goroutine included; a
// corked buffer over maxCorked is written out; uncorked writes go through
// at once; no buffer is kept after Uncork.
func TestCorkConn(t *testing.T) {
	a, b := testutil.TCPPair(t)
	under := &countingConn{Conn: a}
	c := NewCorkConn(under)

	c.Cork()
	var want bytes.Buffer
	for i := range 50 {
		p := bytes.Repeat([]byte{byte(i)}, 100)
		want.Write(p)
		if n, err := c.Write(p); n != len(p) || err != nil {
			t.Fatalf("corked Write = %d, %v", n, err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = c.Write([]byte("pong")) }) // the library's reader, say
	wg.Wait()
	want.WriteString("pong")
	if n := under.writes.Load(); n != 0 {
		t.Fatalf("%d writes while corked, want 0", n)
	}
	if err := c.Uncork(); err != nil {
		t.Fatal(err)
	}
	if n := under.writes.Load(); n != 1 {
		t.Fatalf("%d writes at Uncork, want 1", n)
	}
	if c.buf != nil {
		t.Error("buffer kept after Uncork")
	}
	got := make([]byte, want.Len())
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("peer read %v, %d bytes differ", err, len(got))
	}

	// Uncorked: straight through.
	if _, err := c.Write([]byte("x")); err != nil || under.writes.Load() != 2 {
		t.Fatalf("uncorked write: %v, %d writes", err, under.writes.Load())
	}
	if _, err := io.ReadFull(b, got[:1]); err != nil || got[0] != 'x' {
		t.Fatalf("peer read %v %q", err, got[:1])
	}

	// Over maxCorked while corked: written out as it goes, all in order.
	c.Cork()
	big := bytes.Repeat([]byte("abcdefgh"), maxCorked/8)
	var total int
	for range 3 {
		n, err := c.Write(big[:maxCorked/2+1])
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if under.writes.Load() == 2 {
		t.Error("nothing written while corked past maxCorked")
	}
	if err := c.Uncork(); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, total)
	if _, err := io.ReadFull(b, rest); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		part := rest[i*(maxCorked/2+1) : (i+1)*(maxCorked/2+1)]
		if !bytes.Equal(part, big[:maxCorked/2+1]) {
			t.Fatalf("part %d differs", i)
		}
	}
}
