package imxtest

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/imxproject/imx/wire"
)

// RawConn is a hand-driven server connection: records written and read one
// at a time with no connection engine behind them, for playing a peer that
// sends what a correct server never would. Every failure fails the test.
type RawConn struct {
	// SkipPings makes Recv pass over the peer's keepalive PINGs.
	SkipPings bool

	t  testing.TB
	nc net.Conn
	w  *bufio.Writer
	rd *wire.Reader
}

// rawTimeout bounds each read of a RawConn.
const rawTimeout = 10 * time.Second

// NewRawConn wraps nc, which the test's end closes.
func NewRawConn(t testing.TB, nc net.Conn) *RawConn {
	t.Cleanup(func() { nc.Close() })
	return &RawConn{t: t, nc: nc, w: bufio.NewWriter(nc), rd: wire.NewReader(nc, 0)}
}

// DialRaw connects to a node's server listener at address and exchanges
// HELLO (version 1, dial-back).
func DialRaw(t testing.TB, address string) *RawConn {
	t.Helper()
	nc, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRawConn(t, nc)
	r.Send(&wire.Hello{Head: wire.Head{Tag: 1}, MinVersion: 1, MaxVersion: 1, Capabilities: []string{"dialback"}})
	if rec := r.Recv(); rec.Type() != wire.TypeHello {
		t.Fatalf("handshake: %#v", rec)
	}
	return r
}

// Send writes rec as one frame.
func (r *RawConn) Send(rec wire.Record) {
	r.t.Helper()
	if err := r.TrySend(rec); err != nil {
		r.t.Fatal(err)
	}
}

// TrySend writes rec as one frame and returns the error, for a peer that
// may be gone.
func (r *RawConn) TrySend(rec wire.Record) error {
	if err := wire.WriteRecord(r.w, rec); err != nil {
		return err
	}
	return r.w.Flush()
}

// Recv reads the next record, within rawTimeout.
func (r *RawConn) Recv() wire.Record {
	r.t.Helper()
	for {
		rec, err := r.TryRecv()
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		if !r.SkipPings || rec.Type() != wire.TypePing {
			return rec
		}
	}
}

// ExpectResult reads the next record and fails the test unless it is a
// RESULT want for tag.
func (r *RawConn) ExpectResult(tag uint32, want wire.Status) {
	r.t.Helper()
	rec := r.Recv()
	if res, ok := rec.(*wire.Result); !ok || res.Tag != tag || res.Code != want {
		r.t.Fatalf("got %#v, want RESULT %v for tag %d", rec, want, tag)
	}
}

// TryRecv reads the next record, within rawTimeout, and returns the error.
func (r *RawConn) TryRecv() (wire.Record, error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(rawTimeout))
	return r.rd.ReadRecord()
}
