package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/client"
)

func idleFlags(fs *flag.FlagSet) func(context.Context, *common, *world) (*report, error) {
	n := fs.Int("n", 10000, "idle client sessions")
	conc := fs.Int("concurrency", 64, "sessions opened at once")
	distinct := fs.Bool("distinct", false, "imxd: each session a user of its own (accounts and session tokens written into the store before imxd starts), as the XMPP servers' runs always are; by default the n sessions are one user's")
	var x xmppOpts
	x.register(fs, "imxd", "imxd, prosody or ejabberd")
	return func(ctx context.Context, c *common, w *world) (*report, error) {
		if *n < 2 || *conc < 1 {
			return nil, errors.New("need -n ≥ 2 and -concurrency ≥ 1")
		}
		if x.server == "imxd" {
			return runIdle(ctx, c, w, *n, *conc, *distinct)
		}
		if err := x.resolve(ctx); err != nil {
			return nil, err
		}
		return runIdleXMPP(ctx, c, w, *n, *conc, &x)
	}
}

// runIdleXMPP is runIdle for an XMPP server: n users, each with one
// session (a client stream, logged in, resource bound, available), the
// first opened before the baseline. There is no Go heap to read, only
// VmRSS.
func runIdleXMPP(ctx context.Context, c *common, w *world, n, conc int, x *xmppOpts) (*report, error) {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	p, err := x.start(ctx, w, "idle.bench", "127.0.0.2", users)
	if err != nil {
		return nil, err
	}
	register := x.server == "ejabberd"
	conns := make([]net.Conn, n)
	ended := make([]atomic.Bool, n)
	var readers sync.WaitGroup
	defer func() {
		closeEach(conns, conc, func(c net.Conn) { c.Close() })
		readers.Wait()
	}()
	open := func(ctx context.Context, i int) error {
		conn, br, err := xmppLogin(ctx, p.client, p.domain, users[i], benchPassword, register)
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		conns[i] = conn
		// Read what the server sends (its presence, keepalives) with a
		// small buffer, until the stream ends.
		readers.Go(func() {
			buf := make([]byte, 512)
			for {
				if _, err := br.Read(buf); err != nil {
					ended[i].Store(true)
					return
				}
			}
		})
		return nil
	}
	if err := open(ctx, 0); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, c.warmup); err != nil {
		return nil, err
	}
	rss0, err := procRSS(p.pid())
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := parallel(ctx, n-1, conc, func(ctx context.Context, i int) error { return open(ctx, i+1) }); err != nil {
		return nil, err
	}
	openTime := time.Since(t0)

	r := &report{scenario: "idle"}
	r.param("server", "server", packageVersion(x.server))
	r.param("sessions", "idle sessions", n)
	r.param("warmup_s", "warm-up", c.warmup.Seconds())
	r.param("duration_s", "idle for", c.duration.Seconds())
	cpu := w.startCPU()
	if err := sleepCtx(ctx, c.duration); err != nil {
		return nil, err
	}
	rss1, err := procRSS(p.pid())
	if err != nil {
		return nil, err
	}
	cpu.stop(r)
	closed := 0
	for i := range ended {
		if ended[i].Load() {
			closed++
		}
	}
	idleFigures(r, x.server, "sessions opened per second", n, openTime, rss0, rss1)
	r.figure("errors", "sessions ended while idle", closed, "")
	r.notes = append(r.notes, "memory per session: (VmRSS with n sessions idle − VmRSS with one) / (n − 1), as for imxd; each session is a user of its own, logged in with SASL PLAIN, with a bound resource and its initial presence sent.")
	return r, nil
}

// runIdle opens n sessions of one user on one imxd (the first logs in with
// the password and is remembered, the others resume with its token, so
// that argon2id runs once), or with distinct, of n users (each resumes a
// token written into the store before imxd starts), keeps them idle for
// the duration, and reports imxd's VmRSS growth per session.
func runIdle(ctx context.Context, c *common, w *world, n, conc int, distinct bool) (*report, error) {
	users, tokens := make([]string, n), make([][]byte, n)
	spec := imxdSpec{domains: []string{"idle.bench"}, ip: "127.0.0.2"}
	if distinct {
		spec.prepare = func(ctx context.Context, path string) error {
			st, err := openStore(ctx, path)
			if err != nil {
				return err
			}
			defer st.Close()
			return parallel(ctx, n, 8, func(ctx context.Context, i int) (err error) {
				a := addr.MustParse(fmt.Sprintf("u%d@idle.bench", i))
				users[i] = a.String()
				tokens[i], err = newSession(ctx, st, a)
				return err
			})
		}
	}
	p, err := w.startSpec(ctx, spec)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	first, err := client.Dial(lctx, "ws://"+p.client+"/imx", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	defer first.Close()
	if distinct {
		_, err = first.Resume(lctx, users[0], tokens[0])
	} else {
		err = w.addUsers(lctx, p, benchPassword, "idle")
		if err == nil {
			var sess client.Session
			sess, err = first.Login(lctx, "idle@"+p.domain, benchPassword, true)
			if err == nil {
				for i := range users {
					users[i], tokens[i] = "idle@"+p.domain, sess.Token
				}
			}
		}
	}
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
		if _, err := cl.Resume(ctx, users[i+1], tokens[i+1]); err != nil {
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
	r.param("server", "server", "imxd")
	r.param("sessions", "idle sessions", n)
	r.param("distinct", "a user per session", distinct)
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
	idleFigures(r, "imxd", "sessions opened (resumed) per second", n, openTime, rss0, rss1)
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

// idleFigures adds the figures that every idle run has to r: how fast the
// n − 1 sessions after the first opened (openLabel), and server's VmRSS
// with one session and with n, and its growth per session.
func idleFigures(r *report, server, openLabel string, n int, openTime time.Duration, rss0, rss1 int64) {
	opened := float64(n - 1)
	per := float64(rss1-rss0) / opened
	r.figure("open_rate", openLabel, round(opened/openTime.Seconds(), 1), fmt.Sprintf("%.0f/s (%.2f s for %d)", opened/openTime.Seconds(), openTime.Seconds(), n-1))
	r.figure("rss_before", server+" VmRSS, 1 session", rss0, fmt.Sprintf("%.1f MiB", float64(rss0)/(1<<20)))
	r.figure("rss_after", server+" VmRSS, n sessions, at the end", rss1, fmt.Sprintf("%.1f MiB", float64(rss1)/(1<<20)))
	r.figure("bytes_per_session", server+" memory per idle session", round(per, 0), fmt.Sprintf("%.0f bytes (%.1f KiB)", per, per/1024))
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
