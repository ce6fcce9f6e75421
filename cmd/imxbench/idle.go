package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/imxproject/imx/client"
)

func idleFlags(fs *flag.FlagSet) func(context.Context, *common, *world) (*report, error) {
	n := fs.Int("n", 10000, "idle client sessions")
	conc := fs.Int("concurrency", 64, "sessions opened at once")
	return func(ctx context.Context, c *common, w *world) (*report, error) {
		if *n < 2 || *conc < 1 {
			return nil, errors.New("need -n ≥ 2 and -concurrency ≥ 1")
		}
		return runIdle(ctx, c, w, *n, *conc)
	}
}

// runIdle opens n sessions of one user on one imxd (the first logs in with
// the password and is remembered, the others resume with its token, so
// that argon2id runs once), keeps them idle for the duration, and reports
// imxd's VmRSS growth per session.
func runIdle(ctx context.Context, c *common, w *world, n, conc int) (*report, error) {
	p, err := w.start(ctx, "idle.bench", "127.0.0.2", "", "")
	if err != nil {
		return nil, err
	}
	if err := w.addUsers(ctx, p, benchPassword, "idle"); err != nil {
		return nil, err
	}
	user := "idle@" + p.domain
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	first, err := client.Dial(lctx, "ws://"+p.client+"/imx", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	defer first.Close()
	sess, err := first.Login(lctx, user, benchPassword, true)
	cancel()
	if err != nil {
		return nil, err
	}
	// Warm-up: imxd has served one session; let it settle.
	if err := sleepCtx(ctx, c.warmup); err != nil {
		return nil, err
	}
	mem0, err := goMem(ctx, w, p)
	if err != nil {
		return nil, err
	}
	rss0, err := procRSS(p.pid())
	if err != nil {
		return nil, err
	}
	var self0 runtime.MemStats
	runtime.ReadMemStats(&self0)

	// The first session is one of the n: imxd accepts at most
	// c2s.DefaultMaxConns (10,000) client connections.
	clients := make([]*client.Client, n-1)
	defer closeClients(clients, conc)
	t0 := time.Now()
	if err := parallel(ctx, n-1, conc, func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cl, err := client.Dial(ctx, "ws://"+p.client+"/imx", nil)
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		if _, err := cl.Resume(ctx, user, sess.Token); err != nil {
			cl.Close()
			return fmt.Errorf("session %d: %w", i, err)
		}
		clients[i] = cl
		return nil
	}); err != nil {
		return nil, err
	}
	openTime := time.Since(t0)

	r := &report{scenario: "idle"}
	r.param("sessions", "idle sessions", n)
	r.param("warmup_s", "warm-up", c.warmup.Seconds())
	r.param("duration_s", "idle for", c.duration.Seconds())
	cpu := w.startCPU()
	if err := sleepCtx(ctx, c.duration); err != nil {
		return nil, err
	}
	mem1, err := goMem(ctx, w, p)
	if err != nil {
		return nil, err
	}
	rss1, err := procRSS(p.pid())
	if err != nil {
		return nil, err
	}
	closed := 0
	for _, cl := range clients {
		select {
		case <-cl.Done():
			closed++
		default:
		}
	}
	cpu.stop(r)
	var self1 runtime.MemStats
	runtime.ReadMemStats(&self1)
	per := float64(rss1-rss0) / float64(max(n-1, 1))
	opened := float64(n - 1)
	r.figure("open_rate", "sessions opened (resumed) per second", round(opened/openTime.Seconds(), 1), fmt.Sprintf("%.0f/s (%.2f s for %d)", opened/openTime.Seconds(), openTime.Seconds(), n-1))
	r.figure("rss_before", "imxd VmRSS, 1 session", rss0, fmt.Sprintf("%.1f MiB", float64(rss0)/(1<<20)))
	r.figure("rss_after", "imxd VmRSS, n sessions, at the end", rss1, fmt.Sprintf("%.1f MiB", float64(rss1)/(1<<20)))
	r.figure("bytes_per_session", "imxd memory per idle session", round(per, 0), fmt.Sprintf("%.0f bytes (%.1f KiB)", per, per/1024))
	heapPer := (mem1.heap - mem0.heap) / float64(max(n-1, 1))
	stackPer := (mem1.stack - mem0.stack) / float64(max(n-1, 1))
	r.figure("go_bytes_per_session", "imxd Go heap + stacks in use per session, after a GC", round(heapPer+stackPer, 0),
		fmt.Sprintf("%.1f KiB (heap %.1f KiB, stacks %.1f KiB)", (heapPer+stackPer)/1024, heapPer/1024, stackPer/1024))
	r.figure("go_heap_idle_after", "imxd Go heap idle, not yet returned to the OS, at the end", round(mem1.idle-mem1.released, 0),
		fmt.Sprintf("%.1f MiB", (mem1.idle-mem1.released)/(1<<20)))
	selfPer := float64(int64(self1.Sys)-int64(self0.Sys)) / float64(max(n-1, 1))
	r.figure("bench_bytes_per_session", "imxbench memory per session (Go Sys)", round(selfPer, 0), fmt.Sprintf("%.1f KiB", selfPer/1024))
	r.figure("errors", "sessions ended while idle", closed, "")
	r.notes = append(r.notes, "memory per session: (imxd VmRSS with n sessions idle − VmRSS with one) / (n − 1); the Go heap's GC headroom is part of it, as it is of a running server's footprint.",
		"Go heap + stacks: from imxd's /metrics (go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes) right after a GC forced through /debug/pprof/heap?gc=1, with 1 session and with n.")
	return r, nil
}

// goMemStats are figures of imxd's Go runtime, in bytes.
type goMemStats struct{ heap, stack, idle, released float64 }

// goMem forces a garbage collection in imxd (through its pprof endpoint,
// which imxbench's configuration turns on) and reads the runtime's memory
// figures from its /metrics.
func goMem(ctx context.Context, w *world, p *imxdProc) (goMemStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+"/debug/pprof/heap?gc=1", nil)
	resp, err := w.http.Do(req)
	if err != nil {
		return goMemStats{}, fmt.Errorf("imxd %s: %w", p.domain, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return goMemStats{}, fmt.Errorf("imxd %s: GET /debug/pprof/heap: %s", p.domain, resp.Status)
	}
	mfs, err := scrape(ctx, w, p)
	if err != nil {
		return goMemStats{}, err
	}
	var m goMemStats
	for name, dst := range map[string]*float64{
		"go_memstats_heap_inuse_bytes":    &m.heap,
		"go_memstats_stack_inuse_bytes":   &m.stack,
		"go_memstats_heap_idle_bytes":     &m.idle,
		"go_memstats_heap_released_bytes": &m.released,
	} {
		ms := mfs[name].GetMetric()
		if len(ms) != 1 {
			return goMemStats{}, fmt.Errorf("imxd %s: /metrics lacks %s", p.domain, name)
		}
		*dst = value(ms[0])
	}
	return m, nil
}

// closeEach calls close on the elements of xs that are not their zero
// value (nil), conc at a time.
func closeEach[T comparable](xs []T, conc int, close func(T)) {
	var zero T
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(conc, 1))
	for _, x := range xs {
		if x == zero {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			close(x)
			<-sem
		})
	}
	wg.Wait()
}

// closeClients closes the clients that are not nil, conc at a time.
func closeClients(clients []*client.Client, conc int) {
	closeEach(clients, conc, func(c *client.Client) { c.Close() })
}
