package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// The floor scenario: what it costs this machine to push one small
// message to each of N connections over loopback TCP, with no server
// around it. It runs no imxd. imxbench (the writer) listens on 127.0.0.1
// and starts a copy of itself (the reader, "imxbench floor-reader") that
// dials N connections to it: each process holds one end of each
// connection, as imxd and the load generator do in the fanout scenario.
// Each round the writer sends one message of -size bytes on every
// connection; the reader reads them, one goroutine per connection, and
// notes when each arrived. A round is timed from the start of the writes
// to the last message read ("all read", the analogue of fanout's "all
// notified"). Both processes read the same system clock.
//
// The two talk over the reader's stdin and stdout, one JSON object a line:
// the reader says it is ready once its connections are up; then, for each
// round, the writer sends {"round":k}, the reader answers that it is
// ready for it, the writer writes, and the reader answers with the
// round's figures once every message is read (or -wait has passed).

type floorOpts struct {
	conns, size, writers, rounds int
	gap, wait                    time.Duration
	websocket                    bool
}

// floorSpareFDs is the number of open files each process needs besides
// its ends of the connections: the listener, pipes, the DNS server,
// epoll, standard files.
const floorSpareFDs = 64

func floorFlags(fs *flag.FlagSet) func(context.Context, *common, *world) (*report, error) {
	var o floorOpts
	fs.IntVar(&o.conns, "conns", 10000, "connections over loopback TCP (127.0.0.1); each of the two processes holds one end of each")
	fs.IntVar(&o.size, "size", 80, "bytes per message (with -websocket: the payload of one binary message; its frame header adds 2 bytes, 4 from 126 bytes)")
	fs.IntVar(&o.writers, "writers", 0, "goroutines writing, each to its share of the connections (0: one per connection, each woken through a channel, as imxd's session writers are)")
	fs.IntVar(&o.rounds, "rounds", 5, "measured rounds (one message to every connection each), after one unmeasured")
	fs.DurationVar(&o.gap, "gap", time.Second, "pause after each round has been read")
	fs.DurationVar(&o.wait, "wait", 10*time.Second, "how long to wait for one round to be read")
	fs.BoolVar(&o.websocket, "websocket", false, "send each message as one binary WebSocket message (github.com/coder/websocket, as imxd and its clients do) instead of bare TCP")
	return func(ctx context.Context, c *common, w *world) (*report, error) {
		if o.writers == 0 || o.writers > o.conns {
			o.writers = o.conns
		}
		if o.conns < 1 || o.size < 1 || o.writers < 1 || o.rounds < 1 || o.gap < 0 || o.wait <= 0 {
			return nil, errors.New("need -conns ≥ 1, -size ≥ 1, -writers ≥ 0, -rounds ≥ 1, -gap ≥ 0, -wait > 0")
		}
		return runFloor(ctx, c, w, &o)
	}
}

// fdLimit is this process's limit on open files (RLIMIT_NOFILE): the soft
// limit, which the Go runtime raises to the hard one at start-up, and the
// hard limit.
func fdLimit() (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	err = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur, rl.Max, err
}

// checkFloorLimits tells whether n connections fit in the open-file limit
// of each process and in the range of local ports.
func checkFloorLimits(n int) (soft uint64, err error) {
	soft, hard, err := fdLimit()
	if err != nil {
		return 0, fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	if need := uint64(n) + floorSpareFDs; soft < need {
		return soft, fmt.Errorf("-conns %d needs %d open files in each process (%d connections + %d), but the limit on open files (RLIMIT_NOFILE) is %d (hard limit %d): lower -conns to %d or less, or raise the limit (ulimit -n)",
			n, need, n, floorSpareFDs, soft, hard, max(int64(soft)-floorSpareFDs, 0))
	}
	// All connections go from 127.0.0.1 to one port of 127.0.0.1: each
	// needs a local port of its own.
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && n > hi-lo+1 {
				return soft, fmt.Errorf("-conns %d is more than the %d local ports of net.ipv4.ip_local_port_range (%d–%d)", n, hi-lo+1, lo, hi)
			}
		}
	}
	return soft, nil
}

// floorConn is the writer's end of one connection.
type floorConn interface {
	write(msg []byte) error
	close()
}

type floorTCP struct{ net.Conn }

func (c floorTCP) write(b []byte) error { _, err := c.Write(b); return err }
func (c floorTCP) close()               { c.Close() }

type floorWS struct{ *websocket.Conn }

// write is what c2s.FrameConn.Write does: one binary message, no deadline.
func (c floorWS) write(b []byte) error {
	return c.Write(context.Background(), websocket.MessageBinary, b)
}
func (c floorWS) close() { _ = c.CloseNow() }

// floorMsg is a line between the writer and the reader.
type floorMsg struct {
	Round int  `json:"round"`
	Ready bool `json:"ready,omitempty"`
	// The reader's figures of a round: the messages read, those that were
	// not what was expected (another round's, or repeated, or of another
	// size), its CPU time (getrusage) from its ready answer to the last
	// message read, and when each connection's message was read (unix
	// ns; 0: not read).
	Read     int     `json:"read,omitempty"`
	Bad      int64   `json:"bad,omitempty"`
	CPU      int64   `json:"cpu_ns,omitempty"`
	Arrivals []int64 `json:"arrivals,omitempty"`
}

// floorRound is one round's outcome.
type floorRound struct {
	allRead     time.Duration // -1: a message missing
	writesDone  time.Duration
	writerCPU   time.Duration
	readerCPU   time.Duration
	arrivals    []time.Duration
	missing     int
	bad         int64
	writeErrors int64
}

// floorWriter is the writer's side: the connections, split among the
// writing goroutines.
type floorWriter struct {
	conns   []floorConn
	wakes   []chan floorWake
	pending atomic.Int64
	done    chan time.Duration // the writes of a round are done
	errs    atomic.Int64
	wg      sync.WaitGroup
}

type floorWake struct {
	msg []byte
	t0  time.Time
}

func newFloorWriter(conns []floorConn, writers int) *floorWriter {
	fw := &floorWriter{conns: conns, done: make(chan time.Duration, 1)}
	n := len(conns)
	for i := range writers {
		share := conns[i*n/writers : (i+1)*n/writers]
		wake := make(chan floorWake, 1)
		fw.wakes = append(fw.wakes, wake)
		fw.wg.Go(func() {
			for wk := range wake {
				for _, c := range share {
					if err := c.write(wk.msg); err != nil {
						fw.errs.Add(1)
					}
				}
				if fw.pending.Add(-1) == 0 {
					fw.done <- time.Since(wk.t0)
				}
			}
		})
	}
	return fw
}

// write wakes every writing goroutine with msg, and returns at once.
func (fw *floorWriter) write(msg []byte, t0 time.Time) {
	fw.pending.Store(int64(len(fw.wakes)))
	for _, wake := range fw.wakes {
		wake <- floorWake{msg, t0}
	}
}

func (fw *floorWriter) stop() {
	for _, wake := range fw.wakes {
		close(wake)
	}
	fw.wg.Wait()
}

// acceptFloor accepts n connections on ln, plain or WebSocket, into a
// channel; stop stops accepting.
func acceptFloor(ln net.Listener, n int, ws bool, stderr io.Writer) (conns <-chan floorConn, stop func()) {
	ch := make(chan floorConn, n)
	if ws {
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, nil)
				if err != nil {
					fmt.Fprintf(stderr, "imxbench floor: websocket accept: %v\n", err)
					return
				}
				ch <- floorWS{c}
			}),
			ReadHeaderTimeout: 30 * time.Second,
		}
		go srv.Serve(ln) //nolint:errcheck // ends with ln
		// Close closes ln and the connections still in HTTP; the
		// accepted WebSockets are no longer the server's.
		return ch, func() { srv.Close() }
	}
	go func() {
		for range n {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- floorTCP{c}
		}
	}()
	return ch, func() { ln.Close() }
}

func runFloor(ctx context.Context, c *common, w *world, o *floorOpts) (*report, error) {
	nofile, err := checkFloorLimits(o.conns)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	setupStart := time.Now()
	accepted, stopAccept := acceptFloor(ln, o.conns, o.websocket, w.stderr)
	defer stopAccept()

	args := []string{"floor-reader", "-addr", ln.Addr().String(), "-conns", strconv.Itoa(o.conns),
		"-size", strconv.Itoa(o.size), "-wait", o.wait.String()}
	if o.websocket {
		args = append(args, "-websocket")
	}
	cmd := exec.CommandContext(ctx, self, args...)
	setChildAttrs(cmd)
	cmd.Stderr = w.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the reader process: %w", err)
	}
	var conns []floorConn
	defer func() {
		// The writer's ends close first: their TIME_WAIT is on the
		// listening port, and the reader's local ports are free at once.
		// Then the reader sees the end of its stdin and exits.
		for _, c := range conns {
			c.close()
		}
		stdin.Close()
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	childOut := bufio.NewReaderSize(stdout, 1<<16)
	fromChild := func() (floorMsg, []byte, error) {
		line, err := childOut.ReadBytes('\n')
		if err != nil {
			return floorMsg{}, nil, fmt.Errorf("the reader process ended (%v): see its messages above", err)
		}
		var m floorMsg
		if err := json.Unmarshal(line, &m); err != nil {
			return floorMsg{}, nil, fmt.Errorf("from the reader process: %w: %.200q", err, line)
		}
		return m, line, nil
	}
	toChild := json.NewEncoder(stdin)

	// The reader says it is ready once its n connections are up; the
	// writer has accepted them by then or soon after.
	readyErr := make(chan error, 1)
	go func() {
		m, _, err := fromChild()
		if err == nil && !m.Ready {
			err = errors.New("the reader process did not start as expected")
		}
		readyErr <- err
	}()
	ready := false
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for !ready || len(conns) < o.conns {
		select {
		case c := <-accepted:
			conns = append(conns, c)
		case err := <-readyErr:
			if err != nil {
				return nil, err
			}
			ready = true
		case <-deadline.C:
			return nil, fmt.Errorf("%d of %d connections accepted within 2 minutes (reader ready: %v)", len(conns), o.conns, ready)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	stopAccept()
	setup := time.Since(setupStart)

	fw := newFloorWriter(conns, o.writers)
	defer fw.stop()
	pid := cmd.Process.Pid

	doRound := func(k int) (floorRound, error) {
		var fr floorRound
		if err := toChild.Encode(floorMsg{Round: k}); err != nil {
			return fr, fmt.Errorf("to the reader process: %w", err)
		}
		if m, _, err := fromChild(); err != nil {
			return fr, err
		} else if !m.Ready || m.Round != k {
			return fr, fmt.Errorf("the reader process answered %+v to round %d", m, k)
		}
		msg := make([]byte, o.size)
		for i := range msg {
			msg[i] = byte(k)
		}
		errs0 := fw.errs.Load()
		cpu0 := selfCPU()
		t0 := time.Now()
		fw.write(msg, t0)
		// The writer's CPU time stops when the reader's answer begins
		// to arrive, before the rest of it is read and decoded.
		_, _ = childOut.Peek(1)
		cpu1 := selfCPU()
		_, line, err := fromChild()
		if err != nil {
			return fr, err
		}
		select {
		case fr.writesDone = <-fw.done:
		case <-ctx.Done():
			return fr, ctx.Err()
		}
		fr.writerCPU = cpu1 - cpu0
		fr.writeErrors = fw.errs.Load() - errs0
		var m floorMsg
		if err := json.Unmarshal(line, &m); err != nil || m.Round != k || len(m.Arrivals) != o.conns {
			return fr, fmt.Errorf("the reader process answered %.200q to round %d", line, k)
		}
		fr.readerCPU = time.Duration(m.CPU)
		fr.bad = m.Bad
		start := t0.UnixNano()
		for _, a := range m.Arrivals {
			if a == 0 {
				fr.missing++
				continue
			}
			fr.arrivals = append(fr.arrivals, time.Duration(max(a-start, 0)))
		}
		fr.allRead = -1
		if fr.missing == 0 {
			fr.allRead = slices.Max(fr.arrivals)
		}
		return fr, sleepCtx(ctx, o.gap)
	}

	if err := sleepCtx(ctx, c.warmup); err != nil {
		return nil, err
	}
	warm, err := doRound(0)
	if err != nil {
		return nil, err
	}
	wallStart := time.Now()
	selfStart := selfCPU()
	ticksStart := procTicks(pid)
	var rounds []floorRound
	for k := 1; k <= o.rounds; k++ {
		fr, err := doRound(k)
		if err != nil {
			return nil, err
		}
		rounds = append(rounds, fr)
	}
	wall := time.Since(wallStart)
	selfTotal := selfCPU() - selfStart
	ticksEnd := procTicks(pid)

	r := &report{scenario: "floor"}
	transport := "tcp"
	sizeText := fmt.Sprintf("%d bytes, one write each", o.size)
	if o.websocket {
		transport = "websocket"
		header := 2 // an unmasked server frame: RFC 6455, 5.2
		switch {
		case o.size > 65535:
			header = 10
		case o.size > 125:
			header = 4
		}
		sizeText = fmt.Sprintf("%d bytes of payload (+%d of WebSocket header), one binary message each", o.size, header)
	}
	r.param("transport", "transport", transport)
	r.param("conns", "connections over loopback (127.0.0.1)", o.conns)
	r.params = append(r.params, field{"size", "message per connection and round", o.size, sizeText})
	writersText := strconv.Itoa(o.writers)
	if o.writers == o.conns {
		writersText += " (one per connection)"
	}
	r.params = append(r.params, field{"writers", "writing goroutines", o.writers, writersText})
	r.param("rounds", "measured rounds", o.rounds)
	r.param("gap_s", "pause after each round", o.gap.Seconds())
	r.param("warmup_s", "pause after the setup", c.warmup.Seconds())
	r.param("processes", "processes", "2: imxbench writes, its child imxbench floor-reader reads")
	r.param("nofile_limit", "open files allowed per process (RLIMIT_NOFILE)", nofile)
	r.figure("setup_s", "setup: child process and connections", round(setup.Seconds(), 2), fmt.Sprintf("%.1f s", setup.Seconds()))

	ms := func(d time.Duration) float64 { return round(float64(d.Microseconds())/1000, 3) }
	series := func(key, label string, get func(floorRound) time.Duration, suffix string) {
		var vals []float64
		var texts []string
		for _, fr := range rounds {
			d := get(fr)
			if d < 0 {
				vals = append(vals, -1)
				texts = append(texts, "(missing)")
				continue
			}
			vals = append(vals, ms(d))
			texts = append(texts, fmt.Sprintf("%.1f", ms(d)))
		}
		sorted := slices.Clone(vals)
		slices.Sort(sorted)
		median := sorted[len(sorted)/2]
		if slices.Contains(sorted, -1) {
			median = -1
		}
		r.figure(key+"_ms", label+", per round (ms)", vals, strings.Join(texts, ", "))
		r.figure(key+"_median_ms", label+", median", median, fmt.Sprintf("%.1f ms%s", median, suffix))
	}
	series("all_read", "start of the writes → last message read", func(fr floorRound) time.Duration { return fr.allRead }, "")
	series("writes_done", "start of the writes → writes done", func(fr floorRound) time.Duration { return fr.writesDone }, "")
	series("writer_cpu", "writer CPU (getrusage), start → last read", func(fr floorRound) time.Duration { return fr.writerCPU }, "")
	series("reader_cpu", "reader CPU (getrusage), ready → last read", func(fr floorRound) time.Duration { return fr.readerCPU }, "")
	series("cpu", "CPU of both processes", func(fr floorRound) time.Duration { return fr.writerCPU + fr.readerCPU }, "")

	var (
		pooled      latencies
		missing     int
		bad, werrs  int64
		messageRead int
	)
	for _, fr := range rounds {
		pooled = append(pooled, fr.arrivals...)
		missing += fr.missing
		bad += fr.bad
		werrs += fr.writeErrors
		messageRead += len(fr.arrivals)
	}
	pooled.add(r, "arrival", "message read on a connection, all rounds")
	warmAll := -1.0
	if warm.allRead >= 0 {
		warmAll = ms(warm.allRead)
	}
	r.figure("warmup_all_read_ms", "unmeasured first round: last message read", warmAll, fmt.Sprintf("%.1f ms", warmAll))
	r.figure("messages_read", "messages read, measured rounds", messageRead, fmt.Sprintf("%d of %d", messageRead, o.conns*o.rounds))
	r.figure("wall_s", "measured rounds, wall time (gaps included)", round(wall.Seconds(), 3), fmt.Sprintf("%.2f s", wall.Seconds()))
	r.figure("writer_cpu_s", "writer CPU over the measured rounds (getrusage)", round(selfTotal.Seconds(), 3), fmt.Sprintf("%.3f s", selfTotal.Seconds()))
	if ticksStart >= 0 && ticksEnd >= 0 {
		s := float64(ticksEnd-ticksStart) / clockTick
		r.figure("reader_cpu_s", "reader CPU over the measured rounds (/proc/PID/stat)", round(s, 2), fmt.Sprintf("%.2f s", s))
	}
	r.figure("missing", "messages not read within -wait", missing, "")
	r.figure("bad", "messages of another round, repeated, or of another size", bad, "")
	r.figure("write_errors", "write errors", werrs, "")
	r.notes = append(r.notes,
		"all read: from the start of the writes (the writer waking its writing goroutines) to the last message read by the reader, in the reader's goroutine of that connection; both processes read the same clock. writes done: until the last writing goroutine's write returned.",
		"CPU per round: user+sys of each process (getrusage), the writer's from the start of the writes to the reader's answer, the reader's from its ready answer to the last message read. Kernel work on loopback runs in either process's system calls (a write carries the segment to the receiving socket; a read sends the ACK), and work done later in softirq or timers is counted in neither. The totals over the measured rounds include the gaps.")
	return r, nil
}

// floorReader is the reader's side, "imxbench floor-reader": a child of
// "imxbench floor", which gives the flags, the commands on stdin, and
// reads the answers on stdout.
func floorReader(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imxbench floor-reader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "the writer's address")
	n := fs.Int("conns", 0, "connections")
	size := fs.Int("size", 0, "bytes per message")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for one round")
	ws := fs.Bool("websocket", false, "WebSocket messages")
	if err := fs.Parse(args); err != nil || *addr == "" || *n < 1 || *size < 1 || *wait <= 0 {
		fmt.Fprintln(stderr, "imxbench floor-reader is started by imxbench floor")
		return exitUsage
	}
	if err := runFloorReader(ctx, os.Stdin, stdout, *addr, *n, *size, *wait, *ws); err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		fmt.Fprintf(stderr, "imxbench floor (reader process): %v\n", err)
		return exitFailed
	}
	return exitOK
}

// readRound is the reader's state of one round.
type readRound struct {
	k         int
	arrivals  []atomic.Int64
	remaining atomic.Int64
	all       chan struct{}
}

func runFloorReader(ctx context.Context, in io.Reader, out io.Writer, addr string, n, size int, wait time.Duration, ws bool) error {
	if _, err := checkFloorLimits(n); err != nil {
		return err
	}
	var (
		cur  atomic.Pointer[readRound]
		bad  atomic.Int64
		wg   sync.WaitGroup
		tcps = make([]net.Conn, n)
		wss  = make([]*websocket.Conn, n)
	)
	defer func() {
		for i := range n {
			if tcps[i] != nil {
				tcps[i].Close()
			}
			if wss[i] != nil {
				_ = wss[i].CloseNow()
			}
		}
		wg.Wait()
	}()
	got := func(i int, b []byte) {
		now := time.Now().UnixNano()
		st := cur.Load()
		if st == nil || b[0] != byte(st.k) || b[len(b)-1] != byte(st.k) || !st.arrivals[i].CompareAndSwap(0, now) {
			bad.Add(1)
			return
		}
		if st.remaining.Add(-1) == 0 {
			close(st.all)
		}
	}
	var d net.Dialer
	err := parallel(ctx, n, 64, func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if ws {
			c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			c.SetReadLimit(int64(size) + 1)
			wss[i] = c
			return nil
		}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		tcps[i] = c
		return nil
	})
	if err != nil {
		return err
	}
	// One goroutine per connection reads, as imxbench's clients do.
	for i := range n {
		if ws {
			c := wss[i]
			wg.Go(func() {
				buf := make([]byte, size+1)
				for {
					_, r, err := c.Reader(context.Background())
					if err != nil {
						return
					}
					// A message of size bytes ends the read short.
					m, err := io.ReadFull(r, buf)
					switch {
					case errors.Is(err, io.ErrUnexpectedEOF) && m == size:
						got(i, buf[:size])
					case err == nil: // longer
						bad.Add(1)
						if _, err := io.Copy(io.Discard, r); err != nil {
							return
						}
					case errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF:
						bad.Add(1)
					default:
						return
					}
				}
			})
			continue
		}
		c := tcps[i]
		wg.Go(func() {
			buf := make([]byte, size)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				got(i, buf)
			}
		})
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(floorMsg{Ready: true}); err != nil {
		return err
	}
	dec := json.NewDecoder(in)
	for {
		var cmd floorMsg
		if err := dec.Decode(&cmd); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the writer is done
			}
			return fmt.Errorf("from the writer: %w", err)
		}
		st := &readRound{k: cmd.Round, arrivals: make([]atomic.Int64, n), all: make(chan struct{})}
		st.remaining.Store(int64(n))
		bad0 := bad.Load()
		cur.Store(st)
		cpu0 := selfCPU()
		if err := enc.Encode(floorMsg{Round: cmd.Round, Ready: true}); err != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-st.all:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
		cpu := selfCPU() - cpu0
		res := floorMsg{Round: cmd.Round, CPU: int64(cpu), Arrivals: make([]int64, n)}
		for i := range st.arrivals {
			if a := st.arrivals[i].Load(); a != 0 {
				res.Arrivals[i] = a
				res.Read++
			}
		}
		res.Bad = bad.Load() - bad0
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
}
