package c2s

import (
	"context"
	"testing"
	"time"

	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/internal/workers"
	"github.com/imxproject/imx/wire"
)

// sendAtOnce writes n SENDs to carol (offline) with tags from first, waits
// until there are workers workers (with none idle before, one per SEND, all
// in the router at once), lets them through and reads their results.
func sendAtOnce(t *testing.T, srv *testServer, c *rawClient, gate chan struct{}, first uint32, n, workers int) {
	t.Helper()
	for i := range n {
		c.write(&wire.Send{Head: wire.Head{Tag: first + uint32(i)}, To: carol.String(), Body: "x"})
	}
	testutil.WaitFor(t, "the workers", func() bool { return srv.h.Stats.Workers.Load() == int64(workers) })
	for range n {
		gate <- struct{}{}
	}
	for range n {
		if r, ok := c.mustRead().(*wire.Result); !ok || r.Code != wire.StatusOffline {
			t.Fatalf("got %+v", r)
		}
	}
}

// TestSendWorkersExitWhenIdle: SENDs are routed on workers, one per SEND
// in flight, which exit after WorkerIdle without SENDs: an idle server
// holds none, nor the reaper. The pool starts again with the next SEND.
func TestSendWorkersExitWhenIdle(t *testing.T) {
	gate := make(chan struct{})
	srv := startServer(t, func(c *Config) {
		c.WorkerIdle = 20 * time.Millisecond
		c.Router.(*testRouter).gate = gate
	})
	b := loggedIn(t, srv, bob, "bob pw")
	sendAtOnce(t, srv, b, gate, 10, 3, 3)
	testutil.WaitFor(t, "the workers to exit", func() bool { return srv.h.Stats.Workers.Load() == 0 && workers.Goroutines() == 0 })
	sendAtOnce(t, srv, b, gate, 20, 1, 1)
	testutil.WaitFor(t, "the worker to exit", func() bool { return srv.h.Stats.Workers.Load() == 0 && workers.Goroutines() == 0 })
}

// TestSendWorkersReused: SENDs one after another are routed by the worker
// that the last one used.
func TestSendWorkersReused(t *testing.T) {
	gate := make(chan struct{})
	srv := startServer(t, func(c *Config) {
		c.WorkerIdle = time.Hour
		c.Router.(*testRouter).gate = gate
	})
	b := loggedIn(t, srv, bob, "bob pw")
	sendAtOnce(t, srv, b, gate, 10, 4, 4)
	testutil.WaitFor(t, "the workers to be idle", func() bool { return srv.h.sends.Idle() == 4 })
	for i := range 20 {
		sendAtOnce(t, srv, b, gate, uint32(100+i), 1, 4)
		testutil.WaitFor(t, "the worker to be idle", func() bool { return srv.h.sends.Idle() == 4 })
	}
	if n := srv.h.Stats.Workers.Load(); n != 4 {
		t.Errorf("%d workers, want the 4 of the burst", n)
	}
}

// TestSendWorkersEndAtShutdown: Shutdown and Close make the workers exit
// at once, however long WorkerIdle is, after the SENDs in flight have their
// results.
func TestSendWorkersEndAtShutdown(t *testing.T) {
	for _, name := range []string{"Shutdown", "Close"} {
		t.Run(name, func(t *testing.T) {
			gate := make(chan struct{})
			srv := startServer(t, func(c *Config) {
				c.WorkerIdle = time.Hour
				c.Router.(*testRouter).gate = gate
			})
			b := loggedIn(t, srv, bob, "bob pw")
			sendAtOnce(t, srv, b, gate, 10, 3, 3)
			// One more in flight when the server stops: its result comes
			// before the CLOSE, or it is cut by Close.
			b.write(&wire.Send{Head: wire.Head{Tag: 20}, To: carol.String(), Body: "x"})
			testutil.WaitFor(t, "the SEND to reach the router", func() bool { return srv.h.Stats.Sends.Load() == 4 })
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				if name == "Close" {
					done <- srv.h.Close()
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				done <- srv.h.Shutdown(ctx)
			}()
			if name == "Shutdown" {
				testutil.WaitFor(t, "draining", func() bool {
					srv.h.mu.Lock()
					defer srv.h.mu.Unlock()
					return srv.h.draining
				})
				gate <- struct{}{}
				b.expectResult(20, wire.StatusOffline)
				b.expectClosed(wire.StatusShuttingDown)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%s took %v", name, d)
			}
			if n, g := srv.h.Stats.Workers.Load(), workers.Goroutines(); n != 0 || g != 0 {
				t.Errorf("after %s: %d workers counted, %d goroutines", name, n, g)
			}
		})
	}
}
