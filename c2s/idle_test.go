package c2s

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/wire"
)

// TestWaitConn: waitConn reads its prefix first; wait returns at once while
// bytes are kept, else after one byte arrives, which the next Read returns;
// an error met by wait is returned by Read.
func TestWaitConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &waitConn{Conn: a, prefix: []byte("ab")}
	if err := c.wait(); err != nil {
		t.Fatalf("wait with a prefix: %v", err)
	}
	buf := make([]byte, 8)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ab" {
		t.Fatalf("Read = %q, %v; want the prefix", buf[:n], err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.wait() }()
	select {
	case err := <-waited:
		t.Fatalf("wait returned %v with no input", err)
	case <-time.After(20 * time.Millisecond):
	}
	go func() { _, _ = b.Write([]byte("xyz")) }()
	if err := <-waited; err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := c.wait(); err != nil {
		t.Fatalf("wait with a byte kept: %v", err)
	}
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("Read = %q, %v; want the byte wait read", buf[:n], err)
	}
	if n, err := io.ReadFull(c, buf[:2]); err != nil || string(buf[:n]) != "yz" {
		t.Fatalf("Read = %q, %v; want the rest", buf[:n], err)
	}
	b.Close()
	if err := c.wait(); !errors.Is(err, io.EOF) {
		t.Fatalf("wait after the peer closed: %v", err)
	}
	if _, err := c.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after wait met EOF: %v", err)
	}
}

// TestIdleSessionWakes: a logged-in session whose reader waits in WaitRead
// (it has read everything) answers each request that comes after a pause,
// and ends when the handler closes.
func TestIdleSessionWakes(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.Auth = anyAuth{} })
	ws, err := idleSession(t.Context(), ts.url, "u1@"+testDomain)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	testutil.WaitFor(t, "the session", func() bool { return ts.h.Stats.Sessions.Load() == 1 })
	for i := range 3 {
		time.Sleep(10 * time.Millisecond) // idle: the reader waits
		tag := uint32(10 + i)
		b, _ := (&wire.Ping{Head: wire.Head{Tag: tag}, Data: []byte{byte(i)}}).AppendBinary(nil)
		if err := ws.Write(t.Context(), websocket.MessageBinary, b); err != nil {
			t.Fatal(err)
		}
		_, p, err := ws.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rec, err := wire.Parse(p)
		if pong, ok := rec.(*wire.Pong); err != nil || !ok || pong.Tag != tag {
			t.Fatalf("answer to PING %d: %v, %v", tag, rec, err)
		}
	}
	if err := ts.h.Close(); err != nil {
		t.Fatal(err)
	}
	if n := ts.h.Stats.Sessions.Load(); n != 0 {
		t.Errorf("%d sessions after Close", n)
	}
}
