package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/dialback"
	"github.com/imxproject/imx/discovery"
	"github.com/imxproject/imx/internal/localdns"
	"github.com/imxproject/imx/message"
	"github.com/imxproject/imx/s2s"
	"github.com/imxproject/imx/wire"
)

// node is an s2s server run inside imxbench, acting as remote domains.
type node struct {
	srv    *s2s.Server
	res    *discovery.Resolver
	ln     net.Listener
	served chan error
}

// startNode starts an s2s server for domains on ip and publishes the
// domains in w's DNS under the host name host.
func (w *world) startNode(ip, host string, domains []string, configure func(*s2s.Config)) (*node, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return nil, err
	}
	res, err := discovery.New(discovery.Config{Server: w.dns.Addr(), QueryTimeout: 2 * time.Second, LookupTimeout: 5 * time.Second})
	if err != nil {
		ln.Close()
		return nil, err
	}
	key, err := dialback.NewKey()
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg := s2s.Config{
		Domains:    domains,
		Resolver:   res,
		Key:        key,
		MinBackoff: 50 * time.Millisecond,
		MaxBackoff: time.Second,
		Dial:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext,
	}
	cfg.Link.Software = "imxbench"
	if configure != nil {
		configure(&cfg)
	}
	srv, err := s2s.New(cfg)
	if err != nil {
		ln.Close()
		res.Close()
		return nil, err
	}
	n := &node{srv: srv, res: res, ln: ln, served: make(chan error, 1)}
	go func() { n.served <- srv.Serve(ln) }()
	ap := netip.MustParseAddrPort(ln.Addr().String())
	w.dns.SetA(host, ap.Addr())
	for _, d := range domains {
		w.dns.SetSRV(d, localdns.SRV{Priority: 10, Weight: 10, Port: ap.Port(), Target: host})
	}
	return n, nil
}

func (n *node) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.srv.Shutdown(ctx)
	<-n.served
	n.res.Close()
}

type s2sOpts struct {
	mode       string
	concurrent bool
	window     int
	size       int
}

func s2sFlags(fs *flag.FlagSet) func(context.Context, *common, *world) (*report, error) {
	var o s2sOpts
	fs.StringVar(&o.mode, "mode", "imxd", "imxd: into a real imxd, each MESSAGE answered by RESULT; link: one-way between two s2s nodes inside imxbench")
	fs.IntVar(&o.window, "window", 512, "-mode imxd: MESSAGE requests in flight")
	fs.BoolVar(&o.concurrent, "concurrent", false, "-mode link: handle each frame on a goroutine of its own, as imxd does, instead of on the reader")
	fs.IntVar(&o.size, "size", 200, "body size in bytes")
	return func(ctx context.Context, c *common, w *world) (*report, error) {
		if o.window < 1 || o.size < 1 {
			return nil, errors.New("need -window ≥ 1 and -size ≥ 1")
		}
		switch o.mode {
		case "imxd":
			return runS2SIMXD(ctx, c, w, &o)
		case "link":
			return runS2SLink(ctx, c, w, &o)
		}
		return nil, fmt.Errorf("-mode %q: want imxd or link", o.mode)
	}
}

// runS2SIMXD sends MESSAGE requests from an imxbench node (src.bench) to a
// real imxd (sink.bench) over one connection and counts the RESULTs. Each
// message is a valid §5 message to an existing user with no session, so
// imxd does all the work of a delivery short of a client: dedup claim, MIME
// check, user lookup, settle; the result is "offline".
func runS2SIMXD(ctx context.Context, c *common, w *world, o *s2sOpts) (*report, error) {
	target, err := w.start(ctx, "sink.bench", "127.0.0.2", "", "")
	if err != nil {
		return nil, err
	}
	if err := w.addUsers(ctx, target, benchPassword, "sink"); err != nil {
		return nil, err
	}
	src, err := w.startNode("127.0.0.4", "imx.src.bench", []string{"src.bench"}, func(cfg *s2s.Config) {
		cfg.MaxConnsPerDomain = 1
		cfg.Link.QueueLen = 8192
	})
	if err != nil {
		return nil, err
	}
	defer src.stop()
	if err := ping(ctx, src, "src.bench", target.domain); err != nil {
		return nil, err
	}
	from, to := addr.MustParse("load@src.bench"), addr.MustParse("sink@"+target.domain)
	body := make([]byte, o.size)
	for i := range body {
		body[i] = 'x'
	}
	var prefix [8]byte
	_, _ = rand.Read(prefix[:])
	var (
		seq      atomic.Uint64
		counting atomic.Bool
		results  sync.Map // wire.Status → *atomic.Int64
		done     atomic.Int64
		failed   atomic.Int64
		firstErr atomic.Value
	)
	count := func(code wire.Status) {
		v, _ := results.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range o.window {
		wg.Go(func() {
			var bl message.Builder
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := binary.BigEndian.AppendUint64(prefix[:8:8], seq.Add(1))
				mime, err := bl.Build(message.Draft{From: from, To: to, Body: string(body), ID: id}, 1<<20)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				resp, err := src.srv.Request(rctx, "src.bench", target.domain, &wire.Message{From: from.String(), To: to.String(), ID: id, MIME: mime})
				cancel()
				if !counting.Load() {
					continue
				}
				res, ok := resp.(*wire.Result)
				switch {
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case !ok:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, "unexpected response "+resp.Type().String())
				default:
					count(res.Code)
					done.Add(1)
					if res.Code != wire.StatusOffline {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, res.Code.String()+" "+res.Text)
					}
				}
			}
		})
	}
	measure := func() (*report, error) {
		if err := sleepCtx(ctx, c.warmup); err != nil {
			return nil, err
		}
		r := &report{scenario: "s2s"}
		r.param("mode", "mode", "imxd")
		r.param("window", "MESSAGE requests in flight", o.window)
		r.param("size", "body bytes", o.size)
		r.param("warmup_s", "warm-up", c.warmup.Seconds())
		r.param("duration_s", "duration", c.duration.Seconds())
		cpu := w.startCPU()
		counting.Store(true)
		if err := sleepCtx(ctx, c.duration); err != nil {
			return nil, err
		}
		n := done.Load()
		counting.Store(false)
		cpu.stop(r)
		rate := float64(n) / c.duration.Seconds()
		r.figure("rate", "MESSAGE → RESULT per second", round(rate, 1), fmt.Sprintf("%.0f frames/s (%d results)", rate, n))
		codes := map[string]int64{}
		var text []string
		results.Range(func(k, v any) bool {
			codes[k.(wire.Status).String()] = v.(*atomic.Int64).Load()
			text = append(text, fmt.Sprintf("%s %d", k.(wire.Status).String(), v.(*atomic.Int64).Load()))
			return true
		})
		r.figure("results", "results by status", codes, strings.Join(text, ", "))
		r.figure("errors", "errors", failed.Load(), "")
		if e := firstErr.Load(); e != nil {
			r.notes = append(r.notes, fmt.Sprintf("first error: %v", e))
		}
		r.notes = append(r.notes, "every MESSAGE is a request that imxd answers with RESULT once it has looked its id up (a Bloom filter, then SQLite on a maybe), checked the MIME and looked the user up; the result is recorded in SQLite after the answer, in the group commit; one connection, -window requests in flight.")
		return r, nil
	}
	r, err := measure()
	close(stop)
	wg.Wait()
	if err == nil && done.Load() == 0 && r != nil {
		err = fmt.Errorf("no MESSAGE got a result (first error: %v)", firstErr.Load())
	}
	return r, err
}

// ping authenticates the pair (local, remote) and checks it answers.
func ping(ctx context.Context, n *node, local, remote string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := n.srv.Request(ctx, local, remote, &wire.Ping{})
	if err != nil {
		return fmt.Errorf("%s → %s: %w", local, remote, err)
	}
	if _, ok := resp.(*wire.Pong); !ok {
		return fmt.Errorf("%s → %s: answered %s", local, remote, resp.Type())
	}
	return nil
}

// runS2SLink sends MESSAGE notices one way between two s2s nodes inside
// imxbench, over one authenticated loopback connection, and counts them at
// the receiver: the ceiling of one connection, without imxd.
func runS2SLink(ctx context.Context, c *common, w *world, o *s2sOpts) (*report, error) {
	var got atomic.Int64
	dst, err := w.startNode("127.0.0.5", "imx.b.bench", []string{"b.bench"}, func(cfg *s2s.Config) {
		cfg.Inline = !o.concurrent // the handler only counts: the transport's own capacity
		cfg.Handler = s2s.HandlerFunc(func(context.Context, s2s.Inbound) wire.Record {
			got.Add(1)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	defer dst.stop()
	src, err := w.startNode("127.0.0.4", "imx.a.bench", []string{"a.bench"}, func(cfg *s2s.Config) {
		cfg.MaxConnsPerDomain = 1
		cfg.Link.QueueLen = 8192
	})
	if err != nil {
		return nil, err
	}
	defer src.stop()
	if err := ping(ctx, src, "a.bench", "b.bench"); err != nil {
		return nil, err
	}
	body := make([]byte, o.size)
	for i := range body {
		body[i] = 'x'
	}
	m := &wire.Message{Head: wire.Head{Tag: 1}, From: "alice@a.bench", To: "bob@b.bench", ID: []byte("0123456789abcdef"), MIME: body}
	var sent atomic.Int64
	stop := make(chan struct{})
	var sendErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for range 1024 {
				if err := src.srv.Send(ctx, "a.bench", "b.bench", m); err != nil {
					sendErr = err
					return
				}
			}
			sent.Add(1024)
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	r := &report{scenario: "s2s"}
	r.param("mode", "mode", "link")
	r.param("concurrent", "a goroutine per frame (-concurrent)", o.concurrent)
	r.param("size", "body bytes", o.size)
	r.param("warmup_s", "warm-up", c.warmup.Seconds())
	r.param("duration_s", "duration", c.duration.Seconds())
	err = sleepCtx(ctx, c.warmup)
	var n int64
	var cpu *cpuMeter
	if err == nil {
		cpu = w.startCPU()
		n0 := got.Load()
		err = sleepCtx(ctx, c.duration)
		n = got.Load() - n0
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if sendErr != nil {
		return nil, sendErr
	}
	cpu.stop(r)
	rate := float64(n) / c.duration.Seconds()
	r.figure("rate", "MESSAGE frames per second", round(rate, 1), fmt.Sprintf("%.0f frames/s (%d frames)", rate, n))
	r.figure("errors", "errors", 0, "")
	r.notes = append(r.notes, "one-way MESSAGE notices between two s2s nodes inside imxbench over one authenticated loopback connection (real sockets and DNS, no imxd), counted at the receiver after authorization.")
	if n == 0 {
		return nil, errors.New("no frame arrived")
	}
	return r, nil
}
