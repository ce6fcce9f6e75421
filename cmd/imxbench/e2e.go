package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/c2s"
	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

const benchPassword = "imxbench password"

// Phases of the e2e scenario, carried in each message body so that the
// receivers count and time each phase apart.
const (
	phaseWarmup = iota
	phaseRamp
	phasePaced
	phases
)

type e2eOpts struct {
	senders, receivers int
	maxConc            int
	step               time.Duration
	size               int
	profile            string
	paced              float64
	rate               float64
	driver             string
	latFile            string
	approved           bool
}

func e2eFlags(fs *flag.FlagSet) func(context.Context, *common, *world) (*report, error) {
	var o e2eOpts
	fs.IntVar(&o.senders, "senders", 8, "sending client sessions on domain A, one user each")
	fs.IntVar(&o.receivers, "receivers", 8, "receiving client sessions on domain B, one user each")
	fs.IntVar(&o.maxConc, "max-concurrency", 0, "the most messages in flight while ramping (0, and at most: -senders × the SENDs a session may have waiting, c2s.DefaultMaxSendsInFlight; beyond it imxd answers busy)")
	fs.DurationVar(&o.step, "step", 2*time.Second, "length of each ramp step")
	fs.IntVar(&o.size, "size", 200, "message body size in bytes")
	fs.StringVar(&o.profile, "profile", "", "write CPU profiles of both imxd processes (/debug/pprof) and of imxbench over the paced phase into this directory")
	fs.Float64Var(&o.rate, "rate", 0, "the paced phase's rate in messages per second, instead of -paced of the highest: to compare builds at the same load (their CPU per message)")
	fs.StringVar(&o.driver, "driver", "frames", "how the sessions are driven: frames (the client protocol's frames, written and read by imxbench itself, as wrk drives HTTP) or client (the Go client package, as the imx CLI)")
	fs.BoolVar(&o.approved, "approved", false, "every sender has approved every receiver as a watcher, as contacts who see each other's presence have: each message then carries the sender's attributes (presence.Outgoing), which the receiving server keeps")
	fs.StringVar(&o.latFile, "latencies", "", "write each paced message's scheduled send time and latency (\"UNIX-NANO LATENCY-NANO\", in send order) into this file: to see when the slow ones happened")
	fs.Float64Var(&o.paced, "paced", 0.5, "the paced phase's rate, as a fraction of the highest sustained rate (0.5: the latency at half load that the target names; near 1 with -profile: where the time goes at full load)")
	return func(ctx context.Context, c *common, w *world) (*report, error) {
		if limit := o.senders * c2s.DefaultMaxSendsInFlight; o.maxConc == 0 || o.maxConc > limit {
			o.maxConc = limit
		}
		if o.senders < 1 || o.receivers < 1 || o.maxConc < 1 || o.step <= 0 || o.size < 40 || o.paced <= 0 || o.paced > 1 || o.rate < 0 {
			return nil, fmt.Errorf("need -senders, -receivers, -max-concurrency ≥ 1, -step > 0, -size ≥ 40, 0 < -paced ≤ 1, -rate ≥ 0")
		}
		if o.driver != "frames" && o.driver != "client" {
			return nil, fmt.Errorf("-driver is frames or client, not %q", o.driver)
		}
		return runE2E(ctx, c, w, &o)
	}
}

// e2eState is shared by the senders and receivers.
type e2eState struct {
	o        *e2eOpts
	to       []string     // the receivers' addresses
	phase    atomic.Int32 // of the messages sent now
	received [phases]atomic.Int64
	attrs    atomic.Int64 // paced messages that carried the sender's attributes
	ok       atomic.Int64
	failed   atomic.Int64
	firstErr atomic.Value // string

	mu  sync.Mutex
	got arrivals // paced phase
}

// newE2EState is the state of a run whose receivers are the users rl of
// domain.
func newE2EState(o *e2eOpts, rl []string, domain string) *e2eState {
	s := &e2eState{o: o, to: make([]string, len(rl))}
	for i := range rl {
		s.to[i] = rl[i] + "@" + domain
	}
	return s
}

// arrivals are the paced messages one receiver (or the run) got: their
// latencies (scheduled send → receipt), and, with -latencies, their
// scheduled send times, in the same order.
type arrivals struct {
	lat  latencies
	sent []int64 // unix nanoseconds
}

// body is "PHASE SCHEDULED-UNIX-NANO " padded with x to size bytes.
func (s *e2eState) body(phase int, sched time.Time) string {
	b := make([]byte, 0, s.o.size)
	b = strconv.AppendInt(b, int64(phase), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sched.UnixNano(), 10)
	b = append(b, ' ')
	for len(b) < s.o.size {
		b = append(b, 'x')
	}
	return string(b)
}

// result counts the result of one message.
func (s *e2eState) result(code wire.Status, text string) {
	if code != wire.StatusDelivered {
		s.fail(code.String() + " " + text)
		return
	}
	s.ok.Add(1)
}

func (s *e2eState) fail(msg string) {
	s.failed.Add(1)
	s.firstErr.CompareAndSwap(nil, msg)
}

// arrived counts a message body received at now, with attributes or not,
// adding it to mine if it was sent in the paced phase.
func (s *e2eState) arrived(body []byte, attrs bool, now time.Time, mine *arrivals) {
	sp := bytes.IndexByte(body, ' ')
	if sp < 0 {
		return
	}
	rest := body[sp+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return
	}
	phase, err1 := strconv.Atoi(string(body[:sp]))
	ns, err2 := strconv.ParseInt(string(rest[:sp2]), 10, 64)
	if err1 != nil || err2 != nil || phase < 0 || phase >= phases {
		return
	}
	s.received[phase].Add(1)
	if phase == phasePaced {
		if attrs {
			s.attrs.Add(1)
		}
		mine.lat = append(mine.lat, now.Sub(time.Unix(0, ns)))
		if s.o.latFile != "" {
			mine.sent = append(mine.sent, ns)
		}
	}
}

// keep adds a receiver's arrivals to the run's.
func (s *e2eState) keep(mine arrivals) {
	s.mu.Lock()
	s.got.lat = append(s.got.lat, mine.lat...)
	s.got.sent = append(s.got.sent, mine.sent...)
	s.mu.Unlock()
}

// writeLatencies writes the paced messages' send times and latencies to
// path, in send order.
func writeLatencies(path string, got arrivals) error {
	idx := make([]int, len(got.sent))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return got.sent[idx[a]] < got.sent[idx[b]] })
	var b []byte
	for _, i := range idx {
		b = strconv.AppendInt(b, got.sent[i], 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(got.lat[i]), 10)
		b = append(b, '\n')
	}
	return os.WriteFile(path, b, 0o644)
}

// An e2eDriver runs the sessions of the e2e scenario: the senders on A and
// the receivers on B, which count what arrives in the e2eState.
type e2eDriver interface {
	// grow keeps n messages in flight (n only grows), each sent as soon
	// as the result of the one before it on its sender arrives.
	grow(n int)
	// stopLoop ends that closed loop and waits for its results.
	stopLoop()
	// pace sends a message for each time received from jobs, at most
	// inFlight waiting for their results at once, and returns when jobs
	// is closed and every result has arrived.
	pace(jobs <-chan time.Time, inFlight int)
	// close ends the sessions, after which the latencies are in the
	// e2eState.
	close()
}

// clientDriver drives the sessions through the Go client package, as the
// imx CLI does: a goroutine blocked in SendMessage per message in flight.
type clientDriver struct {
	s       *e2eState
	ctx     context.Context
	senders []*client.Client
	recv    []*client.Client
	recvWG  sync.WaitGroup

	stop chan struct{}
	wg   sync.WaitGroup
	n    int
}

func newClientDriver(ctx context.Context, s *e2eState, a, b *imxdProc, sl, rl []string) (*clientDriver, error) {
	d := &clientDriver{s: s, ctx: ctx, senders: make([]*client.Client, len(sl)), recv: make([]*client.Client, len(rl)), stop: make(chan struct{})}
	if err := parallel(ctx, len(sl), 4, func(ctx context.Context, i int) (err error) {
		d.senders[i], err = login(ctx, a, sl[i]+"@"+a.domain, benchPassword, nil)
		return err
	}); err != nil {
		d.close()
		return nil, err
	}
	if err := parallel(ctx, len(rl), 4, func(ctx context.Context, i int) (err error) {
		d.recv[i], err = login(ctx, b, s.to[i], benchPassword, &client.Options{MessageBuffer: 8192})
		if err == nil {
			d.recvWG.Go(func() { d.receive(d.recv[i]) })
		}
		return err
	}); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// send sends one message and counts its result. d.ctx is the run-wide
// deadline that runE2E sets: a context with a timeout for each message was
// 2% of imxbench's CPU, which the servers then lacked.
func (d *clientDriver) send(i int, phase int, sched time.Time) {
	c := d.senders[i%len(d.senders)]
	res, err := c.SendMessage(d.ctx, &wire.Send{To: d.s.to[i%len(d.s.to)], Body: d.s.body(phase, sched)})
	if err != nil {
		d.s.fail(err.Error())
		return
	}
	d.s.result(res.Code, res.Text)
}

// receive drains one receiving session.
func (d *clientDriver) receive(c *client.Client) {
	var mine arrivals
	for m := range c.Messages() {
		// Only the head of the body counts ("PHASE NANOS "): no copy of
		// the rest.
		d.s.arrived([]byte(m.Body[:min(len(m.Body), 32)]), len(m.Attrs) > 0, time.Now(), &mine)
	}
	d.s.keep(mine)
}

func (d *clientDriver) grow(n int) {
	for ; d.n < n; d.n++ {
		i := d.n
		d.wg.Go(func() {
			for {
				select {
				case <-d.stop:
					return
				case <-d.ctx.Done():
					return
				case <-d.senders[i%len(d.senders)].Done():
					return // its connection has ended: counted as an error already
				default:
				}
				d.send(i, int(d.s.phase.Load()), time.Now())
			}
		})
	}
}

func (d *clientDriver) stopLoop() {
	close(d.stop)
	d.wg.Wait()
}

func (d *clientDriver) pace(jobs <-chan time.Time, inFlight int) {
	var workers sync.WaitGroup
	for i := range inFlight {
		workers.Go(func() {
			for sched := range jobs {
				d.send(i, phasePaced, sched)
			}
		})
	}
	workers.Wait()
}

func (d *clientDriver) close() {
	for _, cl := range append(append([]*client.Client(nil), d.senders...), d.recv...) {
		if cl != nil {
			cl.Close()
		}
	}
	d.recvWG.Wait()
}

func runE2E(ctx context.Context, c *common, w *world, o *e2eOpts) (*report, error) {
	sl, rl := e2eUsers(o)
	specA := imxdSpec{domains: []string{"alpha.bench"}, ip: "127.0.0.2"}
	if o.approved {
		// The senders' accounts and approvals go into A's store before
		// it starts: there is no admin call for an approval.
		specA.prepare = func(ctx context.Context, path string) error {
			st, err := openStore(ctx, path)
			if err != nil {
				return err
			}
			defer st.Close()
			now := time.Now()
			for _, sn := range sl {
				sender := addr.MustParse(sn + "@alpha.bench")
				if err := st.CreateAccount(ctx, sender, benchPassword); err != nil {
					return err
				}
				for _, rn := range rl {
					if err := st.SetApproval(ctx, store.Approval{Presentity: sender, Watcher: addr.MustParse(rn + "@beta.bench"), State: store.ApprovalApproved, Asked: now}); err != nil {
						return err
					}
				}
			}
			return nil
		}
	}
	a, err := w.startSpec(ctx, specA)
	if err != nil {
		return nil, err
	}
	b, err := w.start(ctx, "beta.bench", "127.0.0.3", "", "")
	if err != nil {
		return nil, err
	}
	if !o.approved {
		if err := w.addUsers(ctx, a, benchPassword, sl...); err != nil {
			return nil, err
		}
	}
	if err := w.addUsers(ctx, b, benchPassword, rl...); err != nil {
		return nil, err
	}
	s := newE2EState(o, rl, b.domain)
	ctx, cancel := e2eContext(ctx, c, o)
	defer cancel()
	var d e2eDriver
	if o.driver == "client" {
		d, err = newClientDriver(ctx, s, a, b, sl, rl)
	} else {
		d, err = newFramesDriver(ctx, s, a, b, sl, rl)
	}
	if err != nil {
		return nil, err
	}
	r := &report{scenario: "e2e"}
	e2eParams(r, c, o)
	r.param("approved", "receivers approved by the senders (messages carry attributes)", o.approved)
	r.param("driver", "sessions driven by", o.driver)
	var profile func(context.Context) (func() error, error)
	if o.profile != "" {
		profile = func(ctx context.Context) (func() error, error) {
			return startProfiles(ctx, w, o.profile, "imxbench.cpu.pprof", max(int(c.duration.Seconds()), 1), a, b)
		}
	}
	if err := measureE2E(ctx, c, w, o, s, d, r, profile); err != nil {
		return nil, err
	}
	r.figure("paced_with_attrs", "paced messages that carried the sender's attributes", s.attrs.Load(), "")
	r.notes = append(r.notes, "latency: from a message's scheduled send time at the sending client to its arrival at the receiving client (client → A → B → client); the CPU figures cover the paced phase.")
	return r, nil
}

// e2eUsers are the local parts of the senders' users (s0, s1, …) and of
// the receivers' (r0, r1, …).
func e2eUsers(o *e2eOpts) (senders, receivers []string) {
	senders, receivers = make([]string, o.senders), make([]string, o.receivers)
	for i := range senders {
		senders[i] = fmt.Sprintf("s%d", i)
	}
	for i := range receivers {
		receivers[i] = fmt.Sprintf("r%d", i)
	}
	return senders, receivers
}

// e2eContext is the deadline that every send of an e2e run shares, past
// the longest the run can take, so that a result that never comes ends
// the run with an error rather than hanging it.
func e2eContext(ctx context.Context, c *common, o *e2eOpts) (context.Context, context.CancelFunc) {
	rampSteps := bits.Len(uint(o.maxConc)) + 1
	return context.WithTimeout(ctx, c.warmup+time.Duration(rampSteps)*(e2eSettle(o)+o.step)+2*c.duration+time.Minute)
}

// e2eSettle is the pause at each ramp step before its rate is counted.
func e2eSettle(o *e2eOpts) time.Duration { return min(o.step/4, 500*time.Millisecond) }

// e2eParams adds the parameters that e2e and xmpp share to r.
func e2eParams(r *report, c *common, o *e2eOpts) {
	r.param("senders", "sending sessions (domain A)", o.senders)
	r.param("receivers", "receiving sessions (domain B)", o.receivers)
	r.param("size", "body bytes", o.size)
	r.param("warmup_s", "warm-up", c.warmup.Seconds())
	r.param("step_s", "ramp step", o.step.Seconds())
	r.param("duration_s", "paced phase", c.duration.Seconds())
	if o.rate > 0 {
		r.param("rate", "paced rate, msgs/s", o.rate)
	} else {
		r.param("paced", "paced rate, of the highest", o.paced)
	}
}

// measureE2E runs the warm-up, the ramp and the paced phase on d's
// sessions, adds what it measured to r, and closes d. profile, when set,
// starts CPU profiles over the paced phase and returns what stops them.
func measureE2E(ctx context.Context, c *common, w *world, o *e2eOpts, s *e2eState, d e2eDriver, r *report, profile func(context.Context) (func() error, error)) error {
	closed := false
	defer func() {
		if !closed {
			d.close()
		}
	}()
	settle := e2eSettle(o)

	// Warm-up, then ramp: double the messages in flight up to
	// -max-concurrency, unless the rate collapses (under half the best
	// so far, for two steps in a row). Stopping at the first steps that
	// did not grow made the result hang on the noise of one step on the
	// shared machine (the ramp once stopped at 8 in flight).
	s.phase.Store(phaseWarmup)
	conc := min(4, o.maxConc)
	d.grow(conc)
	stopPool := d.stopLoop
	if err := sleepCtx(ctx, c.warmup); err != nil {
		stopPool()
		return err
	}
	s.phase.Store(phaseRamp)
	type step struct {
		conc int
		rate float64
	}
	var steps []step
	best, misses := step{}, 0
	rampCPU := w.startCPU()
	for {
		if err := sleepCtx(ctx, settle); err != nil {
			stopPool()
			return err
		}
		n0, t0 := s.received[phaseRamp].Load(), time.Now()
		if err := sleepCtx(ctx, o.step); err != nil {
			stopPool()
			return err
		}
		rate := float64(s.received[phaseRamp].Load()-n0) / time.Since(t0).Seconds()
		steps = append(steps, step{conc, rate})
		if rate > best.rate {
			best = step{conc, rate}
		}
		if rate < best.rate/2 {
			misses++
		} else {
			misses = 0
		}
		if misses >= 2 || conc*2 > o.maxConc {
			break
		}
		conc *= 2
		d.grow(conc)
	}
	stopPool()
	rampRep := &report{}
	rampCPU.stop(rampRep)
	var ramp []string
	var rampJSON []map[string]float64
	for _, st := range steps {
		ramp = append(ramp, fmt.Sprintf("%d→%.0f", st.conc, st.rate))
		rampJSON = append(rampJSON, map[string]float64{"concurrency": float64(st.conc), "rate": round(st.rate, 1)})
	}
	r.figure("ramp", "ramp (in flight → msgs/s)", rampJSON, strings.Join(ramp, "  "))
	r.figure("max_rate", "highest sustained rate", round(best.rate, 1), fmt.Sprintf("%.0f msgs/s (%d in flight)", best.rate, best.conc))
	r.figures = append(r.figures, field{key: "max_concurrency", value: best.conc})
	for _, f := range rampRep.figures {
		if f.key == "bench_cpu_s" {
			r.figure("ramp_bench_cpu_s", "imxbench CPU during the ramp", f.value, f.text)
		}
	}
	if best.rate < 1 {
		return fmt.Errorf("no message went through while ramping (%d failed, first: %v)", s.failed.Load(), s.firstErr.Load())
	}

	// Paced phase at -paced (half) of the highest rate: each message has a
	// scheduled send time and its latency is counted from it, so that a
	// sender that falls behind shows up in the latency rather than hiding
	// it.
	target := best.rate * o.paced
	if o.rate > 0 {
		target = o.rate
	}
	interval := time.Duration(float64(time.Second) / target)
	total := int(target * c.duration.Seconds())
	okBefore := s.ok.Load()
	s.phase.Store(phasePaced)
	jobs := make(chan time.Time, 1<<16)
	var pacing sync.WaitGroup
	// Twice the concurrency of the best step, to absorb the bursts of an
	// open loop, but no more than the SENDs the sessions may have in
	// flight: beyond it imxd answers busy, and a message answered busy
	// would drop out of the latencies instead of waiting its turn here.
	pacing.Go(func() { d.pace(jobs, min(max(2*best.conc, 64), o.senders*c2s.DefaultMaxSendsInFlight)) })
	var stopProfiles func() error
	if profile != nil {
		var err error
		if stopProfiles, err = profile(ctx); err != nil {
			return err
		}
	}
	cpu := w.startCPU()
	start := time.Now().Add(5 * time.Millisecond)
	sent := 0
pace:
	for sent < total {
		due := min(int(time.Since(start)/interval)+1, total)
		for ; sent < due; sent++ {
			select {
			case jobs <- start.Add(time.Duration(sent) * interval):
			case <-ctx.Done():
				break pace
			}
		}
		if sent < total {
			if sleepCtx(ctx, time.Until(start.Add(time.Duration(sent)*interval))) != nil {
				break
			}
		}
	}
	close(jobs)
	pacing.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// Wait for the messages whose results have come to reach their
	// receivers (they are delivered before the result is sent, but the
	// receiving client may still be reading them).
	want := s.ok.Load() - okBefore
	deadline := time.Now().Add(10 * time.Second)
	for s.received[phasePaced].Load() < want && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	cpu.stop(r)
	if stopProfiles != nil {
		if err := stopProfiles(); err != nil {
			r.notes = append(r.notes, "profiles: "+err.Error())
		} else {
			r.notes = append(r.notes, "CPU profiles written to "+o.profile)
		}
	}
	got := s.received[phasePaced].Load()
	r.figure("paced_target", "paced rate asked", round(target, 1), fmt.Sprintf("%.0f msgs/s (%d messages)", target, total))
	r.figure("paced_rate", "paced rate reached", round(float64(got)/elapsed.Seconds(), 1), fmt.Sprintf("%.0f msgs/s (%d received)", float64(got)/elapsed.Seconds(), got))
	closed = true
	d.close()
	s.mu.Lock()
	arr := s.got
	s.mu.Unlock()
	if o.latFile != "" {
		// Before add, which sorts the latencies.
		if err := writeLatencies(o.latFile, arr); err != nil {
			return err
		}
		r.notes = append(r.notes, "each paced message's send time and latency written to "+o.latFile)
	}
	arr.lat.add(r, "latency", "latency at the paced rate")
	r.figure("errors", "errors (all phases)", s.failed.Load(), "")
	if e := s.firstErr.Load(); e != nil {
		r.notes = append(r.notes, fmt.Sprintf("first error: %v", e))
	}
	return nil
}
