package s2s_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/s2s"
	"github.com/imxproject/imx/wire"
)

// pairWorld starts beta and a node serving n local domains d0…dn-1.example,
// each published in DNS, for benchmarks that authenticate new pairs.
func pairWorld(b *testing.B, n int) (many, beta *imxtest.Node, domains []string) {
	w := imxtest.NewWorld(b)
	for i := range n {
		domains = append(domains, fmt.Sprintf("d%d.example", i))
	}
	beta = w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Configure: func(c *s2s.Config) {
		c.MaxInbound = 2 * n
	}})
	many = w.StartNode(imxtest.NodeConfig{Domains: domains, Configure: func(c *s2s.Config) {
		c.MaxInbound = 2 * n
	}})
	return many, beta, domains
}

// authPair authenticates the pair (local, beta.example): the first request
// for a pair runs dial-back, DNS lookups included.
func authPair(b *testing.B, many *imxtest.Node, local string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := many.Server.Request(ctx, local, "beta.example", &wire.Ping{})
	if err != nil {
		b.Fatal(err)
	}
	if _, ok := resp.(*wire.Pong); !ok {
		b.Fatalf("response %#v", resp)
	}
}

// BenchmarkAuthNewPair authenticates one new domain pair per operation, one
// after the other: the receiving server looks the new domain up in DNS,
// dials it back, and verifies the secret. It reports the median latency.
func BenchmarkAuthNewPair(b *testing.B) {
	many, _, domains := pairWorld(b, b.N+1)
	authPair(b, many, domains[b.N]) // the first connection, outside the timing
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		authPair(b, many, domains[i])
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-p99")
}

// BenchmarkAuthPairsPerSecond authenticates new domain pairs from 32
// goroutines at once and reports pairs per second.
func BenchmarkAuthPairsPerSecond(b *testing.B) {
	many, _, domains := pairWorld(b, b.N+1)
	authPair(b, many, domains[b.N])
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				authPair(b, many, domains[i])
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkMessageFrames sends MESSAGE frames with 200-byte bodies from
// alpha to beta through one authenticated connection, in one direction (the
// handler answers nothing), and reports frames per second: with the handler
// on the reader (Config.Inline, the transport's own capacity), and handed
// with a copy of each record to the handler goroutines (the default, which
// a server whose handler waits for its store needs).
//
// The deep variant's handler uses about 32 KiB of stack, as the real one
// does (router, store, message parsing): a goroutine that starts small
// grows its stack for it.
func BenchmarkMessageFrames(b *testing.B) {
	for _, inline := range []bool{true, false} {
		name := "concurrent"
		if inline {
			name = "inline"
		}
		b.Run(name, func(b *testing.B) { benchmarkMessageFrames(b, inline, 0) })
	}
	b.Run("concurrent-deep", func(b *testing.B) { benchmarkMessageFrames(b, false, 64) })
}

func benchmarkMessageFrames(b *testing.B, inline bool, depth int) {
	w := imxtest.NewWorld(b)
	var got atomic.Int64
	var target atomic.Int64
	target.Store(-1)
	all := make(chan struct{})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}, Handler: s2s.HandlerFunc(func(context.Context, s2s.Inbound) wire.Record {
		if depth > 0 {
			testutil.Deep(depth)
		}
		if got.Add(1) == target.Load() {
			close(all)
		}
		return nil
	}), Configure: func(c *s2s.Config) { c.Inline = inline }})
	_ = beta
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example"}, Configure: func(c *s2s.Config) {
		c.MaxConnsPerDomain = 1
		c.Link.QueueLen = 8192
	}})
	ctx := context.Background()
	if _, err := alpha.Server.Request(ctx, "alpha.example", "beta.example", &wire.Ping{}); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 200)
	for i := range body {
		body[i] = 'x'
	}
	m := &wire.Message{Head: wire.Head{Tag: 1}, From: "alice@alpha.example", To: "bob@beta.example", ID: []byte("0123456789abcdef"), MIME: body}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	target.Store(int64(b.N) + got.Load())
	b.ResetTimer()
	for range b.N {
		if err := alpha.Server.Send(ctx, "alpha.example", "beta.example", m); err != nil {
			b.Fatal(err)
		}
	}
	<-all
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(beta.Server.Stats.Workers.Load()), "workers")
}
