package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/wire"
)

// TestWriterRestarts: the writer exits when the queue runs empty and the
// next record starts it again; records sent by several goroutines at once,
// across many such restarts and with the queue often full, all arrive, each
// sender's in order. Both kinds of writer.
func TestWriterRestarts(t *testing.T) {
	for _, c := range []struct{ perWrite, pooled bool }{{false, false}, {true, false}, {true, true}} {
		perWrite := c.perWrite
		t.Run(fmt.Sprintf("FramePerWrite=%v,Pooled=%v", perWrite, c.pooled), func(t *testing.T) {
			const senders, each = 4, 300
			icfg := Config{QueueLen: 4, FramePerWrite: perWrite}
			if c.pooled {
				wp := NewWriterPool(time.Hour)
				icfg.Writers = wp
				t.Cleanup(func() {
					// After the connections end (cleanups run last first):
					// the pool's writers exit at Close, however long their
					// idle time.
					wp.Close()
					wp.Wait()
					if n := wp.Live(); n != 0 {
						t.Errorf("%d pooled writers alive after Close and Wait", n)
					}
				})
			}
			ini, acc := linkPair(t, icfg, Config{})
			var mu sync.Mutex
			next := make([]int, senders)
			var bad atomic.Value
			var got atomic.Int64
			running(t, acc, func(_ *Conn, rec wire.Record) {
				m, ok := rec.(*wire.Message)
				if !ok || len(m.ID) != 3 {
					bad.Store(fmt.Sprintf("unexpected record %v", rec))
					return
				}
				s, seq := int(m.ID[0]), int(m.ID[1])<<8|int(m.ID[2])
				mu.Lock()
				if seq != next[s] {
					bad.Store(fmt.Sprintf("sender %d: got %d, want %d", s, seq, next[s]))
				}
				next[s] = seq + 1
				mu.Unlock()
				got.Add(1)
			})
			running(t, ini, nil)
			idle := func() bool { return ini.wstate.Load() == writerIdle && ini.QueueLen() == 0 }
			testutil.WaitFor(t, "an idle writer after the handshake", idle)

			var wg sync.WaitGroup
			for s := range senders {
				wg.Go(func() {
					for i := range each {
						m := msg(uint32(i+1), "x")
						m.ID = []byte{byte(s), byte(i >> 8), byte(i)}
						if err := ini.Send(context.Background(), m); err != nil {
							bad.Store(fmt.Sprintf("sender %d: Send: %v", s, err))
							return
						}
						if i%50 == 49 { // let the writer go idle now and then
							time.Sleep(time.Duration(s+1) * time.Millisecond)
						}
					}
				})
			}
			wg.Wait()
			testutil.WaitFor(t, "every record", func() bool { return got.Load() == senders*each || bad.Load() != nil })
			if b := bad.Load(); b != nil {
				t.Fatal(b)
			}
			testutil.WaitFor(t, "the writer to go idle", idle)
			// An idle connection's queue holds no memory.
			ini.qmu.Lock()
			held := cap(ini.q)
			ini.qmu.Unlock()
			if held != 0 {
				t.Errorf("the idle queue keeps room for %d records", held)
			}
			// A record after the writer went idle still goes out.
			m := msg(1, "x")
			m.ID = []byte{0, byte(each >> 8), byte(each & 0xff)}
			if !ini.TrySend(m) {
				t.Fatal("TrySend on an empty queue failed")
			}
			testutil.WaitFor(t, "the record sent to an idle writer", func() bool { return got.Load() == senders*each+1 })
			testutil.WaitFor(t, "the writer to go idle again", idle)
			if wp := icfg.Writers; wp != nil && wp.Live() == 0 {
				t.Error("no pooled writer ran")
			}
		})
	}
}

// TestWriterIdleClose: Close on a connection whose writer is idle starts a
// writer that sends our CLOSE; both ends end cleanly.
func TestWriterIdleClose(t *testing.T) {
	ini, acc := linkPair(t, Config{}, Config{})
	ierr := running(t, ini, nil)
	aerr := running(t, acc, nil)
	testutil.WaitFor(t, "an idle writer", func() bool { return ini.wstate.Load() == writerIdle })
	ini.Close(wire.StatusIdle, "bye")
	if err := waitErr(t, ierr); err != nil {
		t.Errorf("initiator: %v", err)
	}
	if err := waitErr(t, aerr); err != nil {
		t.Errorf("acceptor: %v", err)
	}
	if c := acc.PeerClose(); c == nil || c.Code != wire.StatusIdle {
		t.Errorf("acceptor got CLOSE %v, want idle", c)
	}
	if s := ini.wstate.Load(); s != writerDone {
		t.Errorf("writer state after the end: %d, want %d", s, writerDone)
	}
}

// stashConn is a ReadWaiter for tests: WaitRead reads one byte and keeps
// it for the next Read.
type stashConn struct {
	net.Conn
	waits   atomic.Int64
	waiting atomic.Bool
	mu      sync.Mutex
	b       [1]byte
	have    bool
	err     error
}

func (c *stashConn) WaitRead() error {
	c.mu.Lock()
	ready := c.have || c.err != nil
	c.mu.Unlock()
	if ready {
		return nil
	}
	c.waits.Add(1)
	c.waiting.Store(true)
	var b [1]byte
	n, err := c.Conn.Read(b[:])
	c.waiting.Store(false)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b[0], c.have = b[0], n > 0
	c.err = err
	return err
}

func (c *stashConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	switch {
	case c.have && len(p) > 0:
		p[0], c.have = c.b[0], false
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

// TestReadWaiter: on a ReadWaiter, an idle reader waits in WaitRead; the
// records sent in bursts between waits all arrive, PING is answered, and
// both an orderly close and an abort end a connection that is waiting.
func TestReadWaiter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dial := func(t *testing.T) (ini, acc *Conn, sc *stashConn) {
		cn, sn := testutil.TCPPair(t)
		sc = &stashConn{Conn: sn}
		var aerr error
		var wg sync.WaitGroup
		wg.Go(func() { acc, aerr = Accept(ctx, sc, Config{}) })
		ini, err := Initiate(ctx, cn, Config{})
		wg.Wait()
		if err != nil || aerr != nil {
			t.Fatalf("handshake: %v, %v", err, aerr)
		}
		return ini, acc, sc
	}

	t.Run("records", func(t *testing.T) {
		ini, acc, sc := dial(t)
		var got atomic.Int64
		var order atomic.Value
		running(t, acc, func(_ *Conn, rec wire.Record) {
			if m, ok := rec.(*wire.Message); ok {
				if int64(m.Tag) != got.Load()+1 {
					order.Store(fmt.Sprintf("tag %d after %d", m.Tag, got.Load()))
				}
				got.Add(1)
			}
		})
		running(t, ini, nil)
		tag := uint32(0)
		for burst := range 5 {
			testutil.WaitFor(t, "the reader to wait", sc.waiting.Load)
			for range burst * 10 {
				tag++
				if err := ini.Send(ctx, msg(tag, "x")); err != nil {
					t.Fatal(err)
				}
			}
			testutil.WaitFor(t, "the burst", func() bool { return got.Load() == int64(tag) })
		}
		if o := order.Load(); o != nil {
			t.Fatal(o)
		}
		if n := sc.waits.Load(); n < 5 {
			t.Errorf("WaitRead called %d times, want at least 5", n)
		}
		// A PING from the peer is answered by a reader that waits.
		call := ini.Requests().Start()
		if err := ini.Send(ctx, &wire.Ping{Head: wire.Head{Tag: call.Tag()}}); err != nil {
			t.Fatal(err)
		}
		if rec, err := call.Wait(ctx, ini.Done()); err != nil {
			t.Fatal(err)
		} else if _, ok := rec.(*wire.Pong); !ok {
			t.Fatalf("PING answered with %v", rec)
		}
	})

	t.Run("close", func(t *testing.T) {
		ini, acc, sc := dial(t)
		aerr := running(t, acc, nil)
		ierr := running(t, ini, nil)
		testutil.WaitFor(t, "the reader to wait", sc.waiting.Load)
		acc.Close(wire.StatusShuttingDown, "bye")
		if err := waitErr(t, aerr); err != nil {
			t.Errorf("waiting side: %v", err)
		}
		if err := waitErr(t, ierr); err != nil {
			t.Errorf("peer: %v", err)
		}
	})

	t.Run("abort", func(t *testing.T) {
		_, acc, sc := dial(t)
		aerr := running(t, acc, nil)
		testutil.WaitFor(t, "the reader to wait", sc.waiting.Load)
		reason := errors.New("cut")
		acc.Abort(reason)
		if err := waitErr(t, aerr); !errors.Is(err, reason) {
			t.Errorf("Run after Abort: %v, want %v", err, reason)
		}
	})
}

// TestQueueBounded: a queue that is never empty (records pushed while
// older ones are taken) keeps its order and does not grow past what it
// holds.
func TestQueueBounded(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newConn(a, Config{QueueLen: 100}, true)
	next, want := uint32(1), uint32(1)
	push := func(n int) {
		for range n {
			if ok, _ := c.push(msg(next, "x"), false); !ok {
				t.Fatalf("push %d refused with %d queued", next, c.QueueLen())
			}
			next++
		}
	}
	pop := func(n int) {
		for range n {
			rec, ok := c.pop()
			if !ok {
				t.Fatalf("pop: empty, want %d", want)
			}
			if got := rec.(*wire.Message).Tag; got != want {
				t.Fatalf("pop: record %d, want %d", got, want)
			}
			want++
		}
	}
	push(100)
	if ok, _ := c.push(msg(0, "x"), false); ok {
		t.Fatal("a full queue took one more")
	}
	for range 1000 {
		pop(70)
		push(70)
	}
	c.qmu.Lock()
	held := cap(c.q)
	c.qmu.Unlock()
	if held > 256 {
		t.Errorf("a queue of 100 records grew to %d", held)
	}
	pop(100)
	c.releaseQueue()
	if c.q != nil {
		t.Error("an empty queue kept its memory")
	}
}
