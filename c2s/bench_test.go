package c2s

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/wire"
)

// anyAuth lets every user of the domain log in with the password "pw".
type anyAuth struct{}

func (anyAuth) Login(ctx context.Context, c Credentials) (Grant, error) {
	if c.Password != "pw" {
		return Grant{}, wire.StatusAuthFailed
	}
	return Grant{}, nil
}

// Environment of the helper process of BenchmarkIdleSessions.
const (
	idleURLEnv = "IMX_C2S_IDLE_URL"
	idleNEnv   = "IMX_C2S_IDLE_N"
)

// sessionsFlag is how many sessions BenchmarkIdleSessions opens:
// IMX_C2S_SESSIONS, default 2000.
func sessionsFlag() int {
	if n, err := strconv.Atoi(os.Getenv("IMX_C2S_SESSIONS")); err == nil && n > 0 {
		return n
	}
	return 2000
}

// BenchmarkIdleSessions measures the server's memory per idle logged-in
// session: the sessions are opened by a helper process (this test binary,
// running TestIdleClientsHelper), so that only the server side is in this
// process's heap. It reports heap and goroutine stack bytes per session;
// run it once (IMX_C2S_HEAPPROFILE=FILE also writes a heap profile while
// the sessions are open):
//
//	IMX_C2S_SESSIONS=10000 go test -run '^$' -bench IdleSessions -benchtime 1x ./c2s
func BenchmarkIdleSessions(b *testing.B) {
	n := sessionsFlag()
	h, err := New(Config{Domains: []string{testDomain}, Auth: anyAuth{}, Router: &testRouter{}, MaxConns: n + 10})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = h.Shutdown(ctx)
		_ = srv.Shutdown(ctx)
		<-served
	}()

	before := memNow()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$", "-test.v")
	cmd.Env = append(os.Environ(), idleURLEnv+"=ws://"+ln.Addr().String()+Path, idleNEnv+"="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if sc.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		_ = cmd.Wait()
		b.Fatal("helper did not open its sessions")
	}
	testutil.WaitFor(b, "the sessions", func() bool { return h.Stats.Sessions.Load() == int64(n) })
	after := memNow()
	if path := os.Getenv("IMX_C2S_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	stdin.Close()
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		b.Errorf("helper: %v", err)
	}

	heap := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	stack := float64(after.StackInuse-before.StackInuse) / float64(n)
	b.ReportMetric(heap, "heap-B/session")
	b.ReportMetric(stack, "stack-B/session")
	b.ReportMetric(heap+stack, "B/session")
	b.ReportMetric(float64(after.NumGoroutine-before.NumGoroutine)/float64(n), "goroutines/session")
}

type memSample struct {
	runtime.MemStats
	NumGoroutine int
}

func memNow() memSample {
	var m memSample
	for range 5 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m.MemStats)
	m.NumGoroutine = runtime.NumGoroutine()
	return m
}

// TestIdleClientsHelper is BenchmarkIdleSessions' helper process: it opens
// the sessions, says "ready", and keeps them until its standard input
// ends. It does nothing in a normal test run.
func TestIdleClientsHelper(t *testing.T) {
	url, n := os.Getenv(idleURLEnv), os.Getenv(idleNEnv)
	if url == "" {
		t.Skip("helper process of BenchmarkIdleSessions")
	}
	count, _ := strconv.Atoi(n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conns := make([]*websocket.Conn, count)
	var wg sync.WaitGroup
	errs := make(chan error, count)
	sem := make(chan struct{}, 32)
	for i := range count {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ws, err := idleSession(ctx, url, fmt.Sprintf("u%d@%s", i, testDomain))
			if err != nil {
				errs <- err
				return
			}
			conns[i] = ws
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, ws := range conns {
		_ = ws.CloseNow()
	}
}

// idleSession opens one session with raw frames, and leaves it idle. It
// does not read: the measurement ends long before the server's keepalive
// (twice link.DefaultKeepAlive) would drop a silent client.
func idleSession(ctx context.Context, url, user string) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		return nil, err
	}
	write := func(rec wire.Record) error {
		b, err := rec.AppendBinary(nil)
		if err != nil {
			return err
		}
		return ws.Write(ctx, websocket.MessageBinary, b)
	}
	read := func() (wire.Record, error) {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		return wire.Parse(b)
	}
	if err := write(&wire.Hello{Head: wire.Head{Tag: 1}, MinVersion: 1, MaxVersion: 1}); err != nil {
		return nil, err
	}
	if _, err := read(); err != nil {
		return nil, err
	}
	if err := write(&wire.Login{Head: wire.Head{Tag: 2}, User: user, Password: "pw"}); err != nil {
		return nil, err
	}
	rec, err := read()
	if err != nil {
		return nil, err
	}
	if _, ok := rec.(*wire.Session); !ok {
		return nil, fmt.Errorf("login as %s: %s", user, strings.TrimSpace(fmt.Sprint(rec)))
	}
	return ws, nil
}

// benchRouter answers every SEND offline at once, after using about
// depth×512 bytes of stack, as the real router does (store, message
// parsing) when depth is 64.
type benchRouter struct{ depth int }

func (r benchRouter) Send(context.Context, addr.Address, *wire.Send) *wire.Result {
	if r.depth > 0 {
		testutil.Deep(r.depth)
	}
	return &wire.Result{Code: wire.StatusOffline}
}

// BenchmarkSendPipelined has one session keep 64 SENDs in flight (the
// default limit) through the Handler to a Router that answers at once,
// over loopback, and reports SENDs per second: with a shallow Router, and
// with one that uses about 32 KiB of stack, which a goroutine started for
// each SEND grows every time.
//
//	go test -run '^$' -bench SendPipelined -benchtime 5s ./c2s
func BenchmarkSendPipelined(b *testing.B) {
	for _, depth := range []int{0, 64} {
		name := "shallow"
		if depth > 0 {
			name = "deep"
		}
		b.Run(name, func(b *testing.B) { benchmarkSendPipelined(b, depth) })
	}
}

func benchmarkSendPipelined(b *testing.B, depth int) {
	h, err := New(Config{Domains: []string{testDomain}, Auth: anyAuth{}, Router: benchRouter{depth}})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	srv := httptest.NewServer(mux)
	defer func() {
		_ = h.Close()
		srv.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ws, err := idleSession(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+Path, "u@"+testDomain)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.CloseNow()
	const inFlight = DefaultMaxSendsInFlight
	slots := make(chan struct{}, inFlight)
	results := make(chan error, 1)
	go func() {
		for range b.N {
			_, m, err := ws.Read(ctx)
			if err == nil {
				var rec wire.Record
				rec, err = wire.Parse(m)
				if r, ok := rec.(*wire.Result); err == nil && (!ok || r.Code != wire.StatusOffline) {
					err = fmt.Errorf("got %v", rec)
				}
			}
			if err != nil {
				results <- err
				return
			}
			<-slots
		}
		results <- nil
	}()
	send := &wire.Send{To: "v@" + testDomain, Body: "Hello, this is a benchmark."}
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		slots <- struct{}{}
		send.Tag = uint32(i%1_000_000 + 10)
		buf, err = send.AppendBinary(buf[:0])
		if err == nil {
			err = ws.Write(ctx, websocket.MessageBinary, buf)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := <-results; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
}
