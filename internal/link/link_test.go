package link

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// linkPair runs the handshake on a TCP pair and returns both Conns.
func linkPair(t testing.TB, icfg, acfg Config) (ini, acc *Conn) {
	t.Helper()
	cn, sn := testutil.TCPPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var aerr error
	var wg sync.WaitGroup
	wg.Go(func() { acc, aerr = Accept(ctx, sn, acfg) })
	ini, err := Initiate(ctx, cn, icfg)
	wg.Wait()
	if err != nil || aerr != nil {
		t.Fatalf("handshake: initiate %v, accept %v", err, aerr)
	}
	return ini, acc
}

// running runs c with h until the test ends, and returns a channel that
// receives Run's result.
func running(t testing.TB, c *Conn, h Handler) <-chan error {
	t.Helper()
	if h == nil {
		h = func(*Conn, wire.Record) {}
	}
	ch := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { ch <- c.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		c.Abort(errors.New("test over"))
		<-c.Done()
	})
	return ch
}

func waitErr(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("connection did not end")
		return nil
	}
}

func msg(tag uint32, text string) *wire.Message {
	return &wire.Message{Head: wire.Head{Tag: tag}, From: "alice@alpha.example", To: "bob@beta.example", ID: []byte{byte(tag)}, MIME: []byte(text)}
}

func TestHandshakeNegotiates(t *testing.T) {
	ini, acc := linkPair(t,
		Config{Software: "imx/test-i", Capabilities: []string{"dialback", "tls"}, MaxBody: 8192},
		Config{Software: "imx/test-a", Capabilities: []string{"dialback"}})
	defer ini.Abort(nil)
	defer acc.Abort(nil)
	if ini.Version() != wire.ProtocolVersion || acc.Version() != wire.ProtocolVersion {
		t.Errorf("versions %d / %d", ini.Version(), acc.Version())
	}
	if got := acc.PeerHello().Software; got != "imx/test-i" {
		t.Errorf("acceptor saw software %q", got)
	}
	if got := ini.PeerHello().Software; got != "imx/test-a" {
		t.Errorf("initiator saw software %q", got)
	}
	if !ini.PeerHas("dialback") || ini.PeerHas("tls") || acc.PeerHas("tls") {
		t.Error("capability intersection wrong")
	}
	if acc.peerMax != 8192 {
		t.Errorf("acceptor's view of the initiator's limit = %d", acc.peerMax)
	}
	if !ini.Initiator() || acc.Initiator() {
		t.Error("Initiator()")
	}
}

// TestHandshakeNoCommonVersion: a peer that speaks only versions 2..3 gets
// CLOSE version-unsupported.
func TestHandshakeNoCommonVersion(t *testing.T) {
	cn, sn := testutil.TCPPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := Accept(context.Background(), sn, Config{})
		errc <- err
	}()
	b, _ := (&wire.Hello{Head: wire.Head{Tag: 1}, MinVersion: 2, MaxVersion: 3}).AppendBinary(nil)
	if _, err := cn.Write(b); err != nil {
		t.Fatal(err)
	}
	rec, err := wire.NewReader(cn, 0).ReadRecord()
	if err != nil {
		t.Fatal(err)
	}
	cl, ok := rec.(*wire.Close)
	if !ok || cl.Code != wire.StatusVersion {
		t.Fatalf("got %#v, want CLOSE version-unsupported", rec)
	}
	if err := <-errc; !errors.Is(err, ErrHandshake) {
		t.Errorf("Accept: %v", err)
	}
}

// TestHandshakeInitiatorSeesClose: the initiator reports the acceptor's
// CLOSE reason.
func TestHandshakeInitiatorSeesClose(t *testing.T) {
	cn, sn := testutil.TCPPair(t)
	go func() {
		rd := wire.NewReader(sn, 0)
		_, _ = rd.ReadRecord()
		b, _ := (&wire.Close{Code: wire.StatusBusy, Text: "too many connections"}).AppendBinary(nil)
		_, _ = sn.Write(b)
	}()
	_, err := Initiate(context.Background(), cn, Config{})
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, wire.StatusBusy) {
		t.Fatalf("Initiate: %v, want handshake failure with busy", err)
	}
}

// TestHandshakeTimeout: a peer that never sends HELLO is dropped after the
// handshake timeout.
func TestHandshakeTimeout(t *testing.T) {
	_, sn := testutil.TCPPair(t)
	start := time.Now()
	_, err := Accept(context.Background(), sn, Config{HandshakeTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("Accept: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestRecordsBothWays sends MESSAGE records in both directions and answers
// each with a RESULT routed through Requests.
func TestRecordsBothWays(t *testing.T) {
	ini, acc := linkPair(t, Config{}, Config{})
	answer := func(c *Conn, rec wire.Record) {
		m := rec.(*wire.Message)
		c.TrySend(&wire.Result{Head: wire.Head{Tag: m.Tag}, Code: wire.StatusDelivered, Count: 1, Text: string(m.MIME)})
	}
	running(t, ini, answer)
	running(t, acc, answer)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []*Conn{ini, acc} {
		for i := range 20 {
			call := c.Requests().Start()
			text := "hello " + string(rune('a'+i))
			if err := c.Send(ctx, msg(call.Tag(), text)); err != nil {
				t.Fatal(err)
			}
			resp, err := call.Wait(ctx, c.Done())
			if err != nil {
				t.Fatal(err)
			}
			r := resp.(*wire.Result)
			if r.Code != wire.StatusDelivered || r.Text != text {
				t.Fatalf("result %#v", r)
			}
		}
	}
}

// TestResponseOnAnotherConnection: two connections share a node's Requests;
// a request sent on one is answered on the other (§4.4.7).
func TestResponseOnAnotherConnection(t *testing.T) {
	reqs := new(Requests)
	ini1, acc1 := linkPair(t, Config{Requests: reqs}, Config{})
	ini2, acc2 := linkPair(t, Config{Requests: reqs}, Config{})
	got := make(chan uint32, 1)
	running(t, ini1, nil)
	running(t, ini2, nil)
	running(t, acc1, func(c *Conn, rec wire.Record) { got <- rec.FrameHead().Tag })
	running(t, acc2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call := reqs.Start()
	if err := ini1.Send(ctx, msg(call.Tag(), "x")); err != nil {
		t.Fatal(err)
	}
	tag := <-got
	// Answer on the other connection.
	if err := acc2.Send(ctx, &wire.Result{Head: wire.Head{Tag: tag}, Code: wire.StatusStored}); err != nil {
		t.Fatal(err)
	}
	resp, err := call.Wait(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.(*wire.Result).Code != wire.StatusStored {
		t.Errorf("response %#v", resp)
	}
	if reqs.Pending() != 0 {
		t.Errorf("%d calls still pending", reqs.Pending())
	}
}

// TestCloseBothWays: either side closes with a reason; the other side
// learns it, and records queued before CLOSE are delivered.
func TestCloseBothWays(t *testing.T) {
	for _, closer := range []string{"initiator", "acceptor"} {
		t.Run(closer, func(t *testing.T) {
			ini, acc := linkPair(t, Config{}, Config{})
			var received atomic.Int64
			count := func(*Conn, wire.Record) { received.Add(1) }
			ierr := running(t, ini, count)
			aerr := running(t, acc, count)
			from, to, fromErr, toErr := ini, acc, ierr, aerr
			if closer == "acceptor" {
				from, to, fromErr, toErr = acc, ini, aerr, ierr
			}
			ctx := context.Background()
			const n = 500
			for i := range n {
				if err := from.Send(ctx, msg(uint32(i+1), "queued before close")); err != nil {
					t.Fatal(err)
				}
			}
			from.Close(wire.StatusShuttingDown, "maintenance")
			if err := waitErr(t, toErr); err != nil {
				t.Errorf("receiver's Run: %v", err)
			}
			if err := waitErr(t, fromErr); err != nil {
				t.Errorf("closer's Run: %v", err)
			}
			pc := to.PeerClose()
			if pc == nil || pc.Code != wire.StatusShuttingDown || pc.Text != "maintenance" {
				t.Errorf("receiver learned %#v", pc)
			}
			if got := received.Load(); got != n {
				t.Errorf("received %d of %d records sent before CLOSE", got, n)
			}
			if err := from.Send(ctx, msg(1, "late")); !errors.Is(err, ErrClosed) {
				t.Errorf("Send after close: %v", err)
			}
		})
	}
}

// TestIdleTimeout: the receiver closes a connection without traffic after
// its idle timeout, with CLOSE idle, even though keepalive PINGs flow.
func TestIdleTimeout(t *testing.T) {
	ini, acc := linkPair(t, Config{KeepAlive: 20 * time.Millisecond}, Config{IdleTimeout: 150 * time.Millisecond})
	ierr := running(t, ini, nil)
	aerr := running(t, acc, nil)
	if err := waitErr(t, ierr); err != nil {
		t.Errorf("initiator: %v", err)
	}
	waitErr(t, aerr)
	if pc := ini.PeerClose(); pc == nil || pc.Code != wire.StatusIdle {
		t.Errorf("initiator learned %#v, want CLOSE idle", pc)
	}
}

// TestDeadPeer: a peer that completes the handshake and then reads nothing
// and answers no PING is dropped with ErrDeadPeer.
func TestDeadPeer(t *testing.T) {
	cn, sn := testutil.TCPPair(t)
	go func() {
		// A peer that says HELLO and then goes silent.
		rd := wire.NewReader(sn, 0)
		rec, err := rd.ReadRecord()
		if err != nil {
			return
		}
		b, _ := (&wire.Hello{Head: wire.Head{Tag: rec.FrameHead().Tag, Flags: wire.FlagResponse}, MinVersion: 1, MaxVersion: 1}).AppendBinary(nil)
		_, _ = sn.Write(b)
	}()
	c, err := Initiate(context.Background(), cn, Config{KeepAlive: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, running(t, c, nil)); !errors.Is(err, ErrDeadPeer) {
		t.Errorf("Run: %v, want ErrDeadPeer", err)
	}
}

// TestKeepAliveKeepsLivePeer: a quiet but live peer answers PINGs and the
// connection stays up.
func TestKeepAliveKeepsLivePeer(t *testing.T) {
	ini, acc := linkPair(t, Config{KeepAlive: 10 * time.Millisecond}, Config{KeepAlive: 10 * time.Millisecond})
	ierr := running(t, ini, nil)
	running(t, acc, nil)
	select {
	case err := <-ierr:
		t.Fatalf("connection ended: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if ini.FramesIn.Load() < 3 {
		t.Errorf("only %d frames in: PINGs are not flowing", ini.FramesIn.Load())
	}
}

// rawPeer completes the handshake with c's acceptor over a raw socket and
// returns a reader and writer on it.
func rawPeer(t *testing.T, acfg Config, h Handler) (*wire.Reader, *bufio.Writer, *Conn, <-chan error) {
	t.Helper()
	cn, sn := testutil.TCPPair(t)
	accd := make(chan *Conn, 1)
	go func() {
		c, err := Accept(context.Background(), sn, acfg)
		if err != nil {
			accd <- nil
			return
		}
		accd <- c
	}()
	w := bufio.NewWriter(cn)
	if err := wire.WriteRecord(w, &wire.Hello{Head: wire.Head{Tag: 1}, MinVersion: 1, MaxVersion: 1}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	rd := wire.NewReader(cn, 0)
	if _, err := rd.ReadRecord(); err != nil {
		t.Fatal(err)
	}
	acc := <-accd
	if acc == nil {
		t.Fatal("accept failed")
	}
	return rd, w, acc, running(t, acc, h)
}

func writeRaw(t *testing.T, w *bufio.Writer, b []byte) {
	t.Helper()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestBadFramesAnswered: invalid, too-large and must-understand frames are
// answered with the right RESULT and the connection goes on; unknown types
// are skipped; too many violations close the connection.
func TestBadFramesAnswered(t *testing.T) {
	var handled atomic.Int64
	rd, w, _, accErr := rawPeer(t, Config{MaxBody: 4096}, func(*Conn, wire.Record) { handled.Add(1) })

	expect := func(tag uint32, code wire.Status) {
		t.Helper()
		rec, err := rd.ReadRecord()
		if err != nil {
			t.Fatal(err)
		}
		r, ok := rec.(*wire.Result)
		if !ok || r.Tag != tag || r.Code != code {
			t.Fatalf("got %#v, want RESULT %v for tag %d", rec, code, tag)
		}
	}
	// Invalid UTF-8 in a MESSAGE with tag 5.
	bad, _ := msg(5, "x").AppendBinary(nil)
	copy(bad[wire.HeaderLen+3:], "\xff")
	writeRaw(t, w, bad)
	expect(5, wire.StatusBadRequest)
	// Over the 4096-byte limit.
	big, _ := msg(6, string(make([]byte, 5000))).AppendBinary(nil)
	writeRaw(t, w, big)
	expect(6, wire.StatusTooLarge)
	// An unknown type is skipped; with must-understand it is refused.
	u, _ := (&wire.Unknown{Head: wire.Head{Tag: 7}, RecordType: 0xF00D, Body: []byte{1}}).AppendBinary(nil)
	writeRaw(t, w, u)
	mu, _ := (&wire.Unknown{Head: wire.Head{Tag: 8, Flags: wire.FlagMustUnderstand}, RecordType: 0xF00D, Body: []byte{1}}).AppendBinary(nil)
	writeRaw(t, w, mu)
	expect(8, wire.StatusUnsupported)
	// A good frame still gets through.
	good, _ := msg(9, "fine").AppendBinary(nil)
	writeRaw(t, w, good)
	ping, _ := (&wire.Ping{Head: wire.Head{Tag: 10}, Data: []byte("p")}).AppendBinary(nil)
	writeRaw(t, w, ping)
	rec, err := rd.ReadRecord()
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := rec.(*wire.Pong); !ok || p.Tag != 10 || string(p.Data) != "p" {
		t.Fatalf("got %#v, want PONG", rec)
	}
	if handled.Load() != 1 {
		t.Errorf("handler saw %d records, want 1", handled.Load())
	}
	// Flood of invalid frames: closed with protocol-error. Three
	// violations are counted already; sending more than the rest would
	// leave unread bytes at the acceptor when it closes, and its TCP reset
	// could fail our writes or eat its CLOSE.
	for range maxViolations - 3 {
		writeRaw(t, w, bad)
	}
	for {
		rec, err := rd.ReadRecord()
		if err != nil {
			t.Fatalf("stream ended without CLOSE: %v", err)
		}
		if c, ok := rec.(*wire.Close); ok {
			if c.Code != wire.StatusProtocolError {
				t.Errorf("CLOSE %v, want protocol-error", c.Code)
			}
			break
		}
	}
	if err := waitErr(t, accErr); !errors.Is(err, ErrProtocol) {
		t.Errorf("Run: %v, want ErrProtocol", err)
	}
}

// TestContextCancelCloses: ending Run's context closes with shutting-down.
func TestContextCancelCloses(t *testing.T) {
	ini, acc := linkPair(t, Config{}, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ini.Run(ctx, func(*Conn, wire.Record) {}) }()
	aerr := running(t, acc, nil)
	cancel()
	waitErr(t, done)
	waitErr(t, aerr)
	if pc := acc.PeerClose(); pc == nil || pc.Code != wire.StatusShuttingDown {
		t.Errorf("peer learned %#v", pc)
	}
}

// TestSendBackpressure: Send blocks on a full queue until its context ends.
func TestSendBackpressure(t *testing.T) {
	cn, _ := testutil.TCPPair(t)
	c := newConn(cn, Config{QueueLen: 2}, true) // no writer running
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	for i := range 2 {
		if err := c.Send(ctx, msg(uint32(i+1), "x")); err != nil {
			t.Fatal(err)
		}
	}
	if c.TrySend(msg(3, "x")) {
		t.Error("TrySend succeeded on a full queue")
	}
	if err := c.Send(ctx, msg(3, "x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send on a full queue: %v", err)
	}
	// SendWithin waits its own bound, with a context that never ends.
	start := time.Now()
	if err := c.SendWithin(context.Background(), msg(3, "x"), 30*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SendWithin on a full queue: %v", err)
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Errorf("SendWithin gave up after %v, want 30ms", waited)
	}
	// Room made while it waits lets it in.
	go func() {
		time.Sleep(20 * time.Millisecond)
		c.pop() // as the writer takes a record
	}()
	if err := c.SendWithin(context.Background(), msg(4, "x"), 10*time.Second); err != nil {
		t.Errorf("SendWithin when room is made: %v", err)
	}
}

// TestCallTimeout: a request without an answer fails at its deadline and a
// late answer is dropped.
func TestCallTimeout(t *testing.T) {
	var reqs Requests
	call := reqs.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := call.Wait(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v", err)
	}
	if reqs.Deliver(&wire.Result{Head: wire.Head{Tag: call.Tag(), Flags: wire.FlagResponse}}) {
		t.Error("a late response was delivered")
	}
	if reqs.Pending() != 0 {
		t.Error("call still pending")
	}
}

// TestCallWaitUntil: a response already there is taken, even past the
// deadline; without one the call fails at its deadline, at once if it has
// passed, and is forgotten; a response that comes while it waits ends it.
func TestCallWaitUntil(t *testing.T) {
	var reqs Requests
	resp := func(c *Call) *wire.Result {
		return &wire.Result{Head: wire.Head{Tag: c.Tag(), Flags: wire.FlagResponse}, Code: wire.StatusOK}
	}
	ctx := context.Background()

	call := reqs.Start()
	reqs.Deliver(resp(call))
	if rec, err := call.WaitUntil(ctx, time.Now().Add(-time.Second), nil); err != nil || rec == nil {
		t.Errorf("response there, deadline passed: %v, %v", rec, err)
	}

	call = reqs.Start()
	if _, err := call.WaitUntil(ctx, time.Now().Add(-time.Second), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline passed: %v", err)
	}
	start := time.Now()
	call = reqs.Start()
	if _, err := call.WaitUntil(ctx, start.Add(20*time.Millisecond), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no response: %v", err)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Errorf("gave up after %v, want 20ms", waited)
	}
	if reqs.Pending() != 0 {
		t.Errorf("%d calls still pending after their deadlines", reqs.Pending())
	}

	call = reqs.Start()
	go func() {
		time.Sleep(10 * time.Millisecond)
		reqs.Deliver(resp(call))
	}()
	if rec, err := call.WaitUntil(ctx, time.Now().Add(10*time.Second), nil); err != nil || rec == nil {
		t.Errorf("response while waiting: %v, %v", rec, err)
	}
	done := make(chan struct{})
	close(done)
	if _, err := reqs.Start().WaitUntil(ctx, time.Now().Add(10*time.Second), done); !errors.Is(err, ErrClosed) {
		t.Errorf("connection done: %v", err)
	}
}

// BenchmarkMessages sends MESSAGE frames with 200-byte bodies through one
// connection, one direction, and waits until the peer has read them all.
func BenchmarkMessages(b *testing.B) {
	ini, acc := linkPair(b, Config{QueueLen: 4096}, Config{})
	var got atomic.Int64
	all := make(chan struct{})
	var target atomic.Int64
	target.Store(-1)
	running(b, acc, func(*Conn, wire.Record) {
		if got.Add(1) == target.Load() {
			close(all)
		}
	})
	running(b, ini, nil)
	m := msg(1, string(make([]byte, 200)))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	target.Store(int64(b.N))
	for range b.N {
		if err := ini.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	<-all
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// writeRecorder is a net.Conn that keeps a copy of every Write call.
type writeRecorder struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeRecorder) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, append([]byte(nil), b...))
	w.mu.Unlock()
	return w.Conn.Write(b)
}

func (w *writeRecorder) recorded() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.writes...)
}

// TestFramePerWrite: with FramePerWrite every Write call carries exactly
// one whole frame, large frames included, and the peer reads them all.
func TestFramePerWrite(t *testing.T) {
	cn, sn := testutil.TCPPair(t)
	rec := &writeRecorder{Conn: cn}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var acc *Conn
	var aerr error
	var wg sync.WaitGroup
	wg.Go(func() { acc, aerr = Accept(ctx, sn, Config{MaxBody: 1 << 20}) })
	ini, err := Initiate(ctx, rec, Config{FramePerWrite: true})
	wg.Wait()
	if err != nil || aerr != nil {
		t.Fatalf("handshake: initiate %v, accept %v", err, aerr)
	}
	got := make(chan string, 16)
	running(t, acc, func(_ *Conn, r wire.Record) { got <- string(r.(*wire.Message).MIME) })
	ierr := running(t, ini, nil)

	sizes := []int{1, 200, 3000, 40 << 10, 300 << 10, 5}
	for i, n := range sizes {
		if err := ini.Send(ctx, msg(uint32(i+1), string(make([]byte, n)))); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range sizes {
		select {
		case s := <-got:
			if len(s) != n {
				t.Fatalf("received a body of %d bytes, want %d", len(s), n)
			}
		case <-ctx.Done():
			t.Fatal("records not received")
		}
	}
	ini.Close(wire.StatusOK, "")
	if err := waitErr(t, ierr); err != nil {
		t.Errorf("Run: %v", err)
	}
	writes := rec.recorded()
	// HELLO, the six MESSAGEs and CLOSE.
	if len(writes) != 2+len(sizes) {
		t.Errorf("%d Write calls, want %d", len(writes), 2+len(sizes))
	}
	for i, b := range writes {
		r, err := wire.Parse(b)
		if err != nil {
			t.Fatalf("Write %d (%d bytes) is not exactly one frame: %v", i, len(b), err)
		}
		if i > 0 && i <= len(sizes) {
			if m, ok := r.(*wire.Message); !ok || len(m.MIME) != sizes[i-1] {
				t.Errorf("Write %d holds %T, want the MESSAGE of %d bytes", i, r, sizes[i-1])
			}
		}
	}
	if c, ok := wire.Parse(writes[len(writes)-1]); ok != nil || c.Type() != wire.TypeClose {
		t.Errorf("last Write is not CLOSE")
	}
}

// corkRecorder is a writeRecorder that is a Corker, and counts the corks.
type corkRecorder struct {
	writeRecorder
	corks, uncorks atomic.Int64
	corked         atomic.Bool
}

func (c *corkRecorder) Cork() {
	if c.corked.Swap(true) {
		panic("corked twice")
	}
	c.corks.Add(1)
}

func (c *corkRecorder) Uncork() error {
	if !c.corked.Swap(false) {
		panic("uncorked while not corked")
	}
	c.uncorks.Add(1)
	return nil
}

// TestFramePerWriteCorks: a FramePerWrite writer whose connection is a
// Corker corks it around a batch of several frames, uncorks it at the end
// of every batch, and still writes one frame per Write, in order.
func TestFramePerWriteCorks(t *testing.T) {
	cn, sn := testutil.TCPPair(t)
	rec := &corkRecorder{writeRecorder: writeRecorder{Conn: cn}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var acc *Conn
	var aerr error
	var wg sync.WaitGroup
	wg.Go(func() { acc, aerr = Accept(ctx, sn, Config{}) })
	ini, err := Initiate(ctx, rec, Config{FramePerWrite: true, QueueLen: 256})
	wg.Wait()
	if err != nil || aerr != nil {
		t.Fatalf("handshake: initiate %v, accept %v", err, aerr)
	}
	got := make(chan string, 256)
	running(t, acc, func(_ *Conn, r wire.Record) { got <- string(r.(*wire.Message).MIME) })
	ierr := running(t, ini, nil)
	const n = 200
	for i := range n { // queued faster than written: batches of several
		if !ini.TrySend(msg(uint32(i+1), fmt.Sprint(i))) {
			t.Fatalf("queue full at %d", i)
		}
	}
	for i := range n {
		select {
		case s := <-got:
			if s != fmt.Sprint(i) {
				t.Fatalf("record %d holds %q", i, s)
			}
		case <-ctx.Done():
			t.Fatal("records not received")
		}
	}
	ini.Close(wire.StatusOK, "")
	if err := waitErr(t, ierr); err != nil {
		t.Errorf("Run: %v", err)
	}
	if c, u := rec.corks.Load(), rec.uncorks.Load(); c == 0 || c != u || rec.corked.Load() {
		t.Errorf("%d corks, %d uncorks, corked at the end %v; want some, as many of each", c, u, rec.corked.Load())
	}
	for i, b := range rec.recorded() {
		if _, err := wire.Parse(b); err != nil {
			t.Fatalf("Write %d is not exactly one frame: %v", i, err)
		}
	}
}

// Config.Responses sees the responses first and takes those it wants; the
// others still reach their Calls.
func TestResponsesHook(t *testing.T) {
	const mine = 1 << 31 // tags the hook counts itself
	var taken []wire.Status
	var mu sync.Mutex
	ini, acc := linkPair(t, Config{Responses: func(c *Conn, rec wire.Record) bool {
		if rec.FrameHead().Tag < mine {
			return false
		}
		mu.Lock()
		taken = append(taken, rec.(*wire.Result).Code)
		mu.Unlock()
		return true
	}}, Config{})
	running(t, ini, nil)
	running(t, acc, func(c *Conn, rec wire.Record) {
		code := wire.StatusDelivered
		if rec.FrameHead().Tag == mine+1 {
			code = wire.StatusStored
		}
		c.TrySend(&wire.Result{Head: wire.Head{Tag: rec.FrameHead().Tag}, Code: code})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tag := range []uint32{mine, mine + 1} {
		if err := ini.Send(ctx, msg(tag, "x")); err != nil {
			t.Fatal(err)
		}
	}
	call := ini.Requests().Start()
	if err := ini.Send(ctx, msg(call.Tag(), "y")); err != nil {
		t.Fatal(err)
	}
	resp, err := call.Wait(ctx, nil)
	if err != nil || resp.(*wire.Result).Code != wire.StatusDelivered {
		t.Fatalf("the Call got %v, %v", resp, err)
	}
	testutil.WaitFor(t, "the hook's two responses", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(taken) == 2
	})
	if taken[0] != wire.StatusDelivered || taken[1] != wire.StatusStored {
		t.Errorf("the hook took %v", taken)
	}
}

// TestAlignedDelay: the delay is d and at most d/16 more; two connections
// whose timers start within the same sixteenth of d fire at the same
// instant; and the accepting side's instants fall half a sixteenth after
// the initiating side's.
func TestAlignedDelay(t *testing.T) {
	base := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	for _, d := range []time.Duration{15 * time.Second, 50 * time.Millisecond, 16 * time.Millisecond, time.Hour} {
		grid := d / 16
		for _, late := range []bool{false, true} {
			fire := map[time.Time]int{}
			for i := range 160 {
				now := base.Add(time.Duration(i) * grid / 10) // ten starts per sixteenth
				got := alignedDelay(now, d, late)
				if got <= d || got > d+grid {
					t.Fatalf("d %v, late %v, now +%v: delay %v, want in (%v, %v]", d, late, now.Sub(base), got, d, d+grid)
				}
				at := now.Add(got)
				want := time.Duration(0)
				if late {
					want = grid / 2
				}
				if off := at.Sub(at.Truncate(grid)); off != want {
					t.Fatalf("d %v, late %v: fires %v into its sixteenth, want %v", d, late, off, want)
				}
				fire[at]++
			}
			// 160 starts over 16 sixteenths fire at 16 or 17 instants.
			if len(fire) > 17 {
				t.Errorf("d %v, late %v: 160 timers fire at %d instants, want at most 17", d, late, len(fire))
			}
		}
	}
	for _, d := range []time.Duration{time.Millisecond, 15 * time.Millisecond} {
		if got := alignedDelay(base.Add(123456), d, true); got != d {
			t.Errorf("d %v: delay %v, want it unchanged", d, got)
		}
	}
}
