package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/s2s"
)

func authFlags(fs *flag.FlagSet) func(context.Context, *common, *world) (*report, error) {
	n := fs.Int("n", 30000, "domains served by the imxbench node: at most this many pairs are authenticated")
	conc := fs.Int("concurrency", 32, "pairs authenticated at once")
	return func(ctx context.Context, c *common, w *world) (*report, error) {
		if *n < 2 || *conc < 1 {
			return nil, errors.New("need -n ≥ 2 and -concurrency ≥ 1")
		}
		return runAuth(ctx, c, w, *n, *conc)
	}
}

// runAuth: an imxbench node serves n domains d0.bench…, each published in
// DNS; each sends PING to an imxd (target.bench) from a new domain, which
// authenticates the pair by dial-back first: imxd looks the domain up in
// DNS, reaches the node, and verifies the secret. It counts pairs per
// second until the duration ends or the domains run out.
func runAuth(ctx context.Context, c *common, w *world, n, conc int) (*report, error) {
	target, err := w.start(ctx, "target.bench", "127.0.0.2", "", "")
	if err != nil {
		return nil, err
	}
	domains := make([]string, n)
	for i := range domains {
		domains[i] = fmt.Sprintf("d%d.bench", i)
	}
	many, err := w.startNode("127.0.0.4", "imx.many.bench", domains, func(cfg *s2s.Config) {
		cfg.MaxInbound = 2 * n
	})
	if err != nil {
		return nil, err
	}
	defer many.stop()

	// Warm-up: the first connection, then pairs until the warm-up ends.
	var next atomic.Int64
	if err := ping(ctx, many, domains[0], target.domain); err != nil {
		return nil, err
	}
	next.Store(1)
	run := func(until time.Time, lat *latencies, mu *sync.Mutex) (int64, error) {
		var done atomic.Int64
		var first atomic.Value
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				var mine latencies
				for time.Now().Before(until) && ctx.Err() == nil {
					i := int(next.Add(1)) - 1
					if i >= n {
						break
					}
					t := time.Now()
					if err := ping(ctx, many, domains[i], target.domain); err != nil {
						first.CompareAndSwap(nil, err)
						break
					}
					mine = append(mine, time.Since(t))
					done.Add(1)
				}
				if lat != nil {
					mu.Lock()
					*lat = append(*lat, mine...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if e, ok := first.Load().(error); ok {
			return done.Load(), e
		}
		return done.Load(), nil
	}
	if _, err := run(time.Now().Add(c.warmup), nil, nil); err != nil {
		return nil, err
	}
	r := &report{scenario: "auth"}
	r.param("domains", "domains available", n)
	r.param("concurrency", "pairs at once", conc)
	r.param("warmup_s", "warm-up", c.warmup.Seconds())
	r.param("duration_s", "duration (at most)", c.duration.Seconds())
	var lat latencies
	var mu sync.Mutex
	cpu := w.startCPU()
	start := time.Now()
	done, err := run(start.Add(c.duration), &lat, &mu)
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	cpu.stop(r)
	if done == 0 {
		return nil, errors.New("no pair authenticated")
	}
	rate := float64(done) / elapsed.Seconds()
	r.figure("pairs_per_s", "new domain pairs per second", round(rate, 1), fmt.Sprintf("%.0f pairs/s (%d pairs)", rate, done))
	lat.add(r, "latency", "one pair, DNS and dial-back included")
	r.figure("errors", "errors", 0, "")
	if int(next.Load()) >= n {
		r.notes = append(r.notes, fmt.Sprintf("the %d domains ran out before the duration ended: raise -n", n))
	}
	r.notes = append(r.notes, "a pair: PING from a domain the imxd has never seen; it answers once it has looked the domain up in DNS, dialled back over its connection to the imxbench node, and verified the secret.")
	return r, nil
}
