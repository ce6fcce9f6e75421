// Command imxbench is imx's load generator. It starts real imxd processes
// on loopback addresses (127.0.0.2, 127.0.0.3, …), each with a temporary
// data directory and a configuration whose rate limits are raised for the
// benchmark, publishes their _imx._tcp records in an in-process DNS server,
// creates users through the admin API, drives them over real sockets for a
// while after a warm-up, and prints what it measured: a table, then a last
// line "RESULT {json}" for scripts.
//
//	imxbench SCENARIO [flags]
//
// Scenarios:
//
//	e2e     clients on domain A send to clients on domain B (client → A → B →
//	        client): the highest sustained rate (doubling the messages in
//	        flight from 4 up to -max-concurrency, the best step's rate),
//	        then half that rate (-paced), paced, for the latency
//	        distribution. imxbench speaks the client protocol's frames
//	        itself (-driver frames, the default, as wrk drives HTTP), or
//	        drives the sessions through the Go client package (-driver
//	        client, as the imx CLI)
//	s2s     MESSAGE frames over one authenticated server connection: from an
//	        s2s node run by imxbench into a real imxd (-mode imxd, the
//	        default), or between two s2s nodes inside imxbench over loopback
//	        (-mode link: the connection alone, no imxd)
//	idle    N idle logged-in client sessions on one imxd: its memory (VmRSS)
//	        per session, and its CPU while they idle; -server prosody or
//	        ejabberd: the same for an XMPP server, a user per session
//	auth    new domain pairs authenticated per second: an s2s node run by
//	        imxbench, serving many domains, authenticates each against an
//	        imxd by dial-back (DNS lookup included)
//	fanout  one presence change fanned out to W watchers (default 10,000)
//	        over D domains (default 100), all served by a second imxd, each
//	        watcher with a session of its own: the time from PRESENCE-SET
//	        until each watcher session has the NOTIFY, and the NOTIFY frames
//	        between the servers; then the steady cost of subscription
//	        renewals (frames per second per 10,000 subscriptions), with a
//	        second pair of imxd processes and a short subscription_timeout.
//	        It ignores -duration; -warmup is the pause after the setup.
//	floor   no imxd: the machine's floor for pushing one small message
//	        (-size, default 80 bytes) to each of N connections over
//	        loopback TCP (-conns, default 10,000): imxbench writes, a
//	        child imxbench reads, each holding one end of each connection;
//	        per round, the time from the start of the writes to the last
//	        message read, and both processes' CPU (-websocket: as binary
//	        WebSocket messages). It ignores -duration and -imxd; -warmup is
//	        the pause after the setup.
//	xmpp    e2e's ramp and paced phase, with the same sessions, body size
//	        and messages in flight, against two XMPP servers federated over
//	        XMPP with dial-back: client → server A → server B → client, to
//	        compare imxd with the popular XMPP servers on the same machine
//	        in the same minutes. -server prosody (the default; -prosody,
//	        default prosody in PATH) or ejabberd (-erl, default erl in
//	        PATH), Debian's packages. XMPP has no result per message, so a
//	        message counts as delivered when its receiver has read it (see
//	        xmpp.go). It ignores -imxd.
//
// imxbench builds nothing. It runs the imxd given by -imxd, by default the
// one next to its own executable or else the first in PATH:
//
//	go build -o /tmp/imxd ./cmd/imxd && go build -o /tmp/imxbench ./cmd/imxbench
//	/tmp/imxbench e2e
//
// All traffic stays on 127.0.0.0/8. Every scenario stops by itself;
// Ctrl-C stops it early, stops the imxd processes and exits with status 130.
// The CPU figures are the load generator's own (getrusage) and each imxd's
// (/proc/PID/stat), over the measured phase.
//
// Exit status: 0 measured, 1 failed, 2 usage, 3 scenario not available,
// 130 interrupted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

const usage = `usage: imxbench SCENARIO [flags]

scenarios:
  e2e     client → domain A → domain B → client: highest sustained rate, then
          the latency distribution at half that rate (-paced)
  s2s     MESSAGE frames over one authenticated server connection
          (-mode imxd: into a real imxd; -mode link: two s2s nodes in imxbench)
  idle    N idle client sessions: imxd memory per session (-server prosody
          or ejabberd: an XMPP server's)
  auth    new domain pairs authenticated per second against an imxd
  fanout  one presence change to W watchers over D domains: time until all
          are notified; then the frames/s that subscription renewals cost
  floor   no imxd: one small message to each of N loopback TCP connections
          (or WebSockets), written by imxbench and read by a child process:
          the machine's floor for fanout
  xmpp    e2e's measurement against two XMPP servers federated over XMPP
          (client → server A → server B → client), for comparison:
          -server prosody (the default) or ejabberd

common flags:
  -imxd PATH       the imxd binary (default: next to imxbench, else in PATH);
                   build it with: go build -o /tmp/imxd ./cmd/imxd
  -duration D      how long the measured phase lasts (default 10s)
  -warmup D        the warm-up before it (default 2s)
  -v               pass the imxd processes' logs through to stderr

"imxbench SCENARIO -h" lists a scenario's own flags. The last line of the
output is "RESULT {json}".
`

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnavailable = 3
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// common are the flags every scenario has.
type common struct {
	imxd     string
	duration time.Duration
	warmup   time.Duration
	verbose  bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.imxd, "imxd", "", "the imxd binary (default: next to imxbench, else in PATH)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of the measured phase")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "length of the warm-up")
	fs.BoolVar(&c.verbose, "v", false, "pass the imxd logs through to stderr")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name := args[0]
	var setup func(fs *flag.FlagSet) func(context.Context, *common, *world) (*report, error)
	switch name {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "e2e":
		setup = e2eFlags
	case "s2s":
		setup = s2sFlags
	case "idle":
		setup = idleFlags
	case "auth":
		setup = authFlags
	case "fanout":
		setup = fanoutFlags
	case "floor":
		setup = floorFlags
	case "xmpp":
		setup = xmppFlags
	case "floor-reader": // the reading process of floor
		return floorReader(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "imxbench: unknown scenario %q\n%s", name, usage)
		return exitUsage
	}
	fs := flag.NewFlagSet("imxbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	runScenario := setup(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "imxbench %s: unexpected argument %q\n", name, fs.Arg(0))
		return exitUsage
	}
	if c.duration <= 0 || c.warmup < 0 {
		fmt.Fprintf(stderr, "imxbench %s: -duration must be positive and -warmup not negative\n", name)
		return exitUsage
	}
	w, err := newWorld(c.imxd, c.verbose, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "imxbench %s: %v\n", name, err)
		return exitFailed
	}
	rep, err := runScenario(ctx, &c, w)
	w.close()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "imxbench %s: interrupted\n", name)
			return exitInterrupted
		}
		fmt.Fprintf(stderr, "imxbench %s: %v\n", name, err)
		if errors.Is(err, errUnavailable) {
			return exitUnavailable
		}
		return exitFailed
	}
	rep.print(stdout)
	return exitOK
}

// findIMXD returns the imxd binary to run.
func findIMXD(flagPath string) (string, error) {
	if flagPath != "" {
		if _, err := os.Stat(flagPath); err != nil {
			return "", fmt.Errorf("-imxd: %w", err)
		}
		return filepath.Abs(flagPath)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "imxd")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("imxd"); err == nil {
		return p, nil
	}
	return "", errors.New("no imxd binary next to imxbench or in PATH: build one with `go build -o /tmp/imxd ./cmd/imxd` and pass -imxd /tmp/imxd")
}

// report is what a scenario measured: parameters and figures, in the
// order they are printed.
type report struct {
	scenario string
	params   []field
	figures  []field
	// notes are printed under the table.
	notes []string
}

type field struct {
	key   string // JSON key
	label string // table label
	value any    // JSON value
	text  string // table text
}

func (r *report) param(key, label string, value any) {
	text := fmt.Sprint(value)
	if strings.HasSuffix(key, "_s") {
		text += " s"
	}
	r.params = append(r.params, field{key, label, value, text})
}

func (r *report) figure(key, label string, value any, text string) {
	if text == "" {
		text = fmt.Sprint(value)
	}
	r.figures = append(r.figures, field{key, label, value, text})
}

func (r *report) print(out io.Writer) {
	fmt.Fprintf(out, "imxbench %s\n\n", r.scenario)
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "parameter\tvalue")
	for _, f := range r.params {
		fmt.Fprintf(tw, "%s\t%s\n", f.label, f.text)
	}
	fmt.Fprintln(tw, "\t")
	fmt.Fprintln(tw, "measured\tvalue")
	for _, f := range r.figures {
		if f.label != "" { // JSON only
			fmt.Fprintf(tw, "%s\t%s\n", f.label, f.text)
		}
	}
	tw.Flush()
	for _, n := range r.notes {
		fmt.Fprintf(out, "\n%s\n", n)
	}
	m := map[string]any{"scenario": r.scenario}
	for _, f := range append(r.params, r.figures...) {
		if f.key != "" { // table only
			m[f.key] = f.value
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"scenario":%q,"error":%q}`, r.scenario, err.Error()))
	}
	fmt.Fprintf(out, "\nRESULT %s\n", b)
}

// latencies summarises a set of latencies.
type latencies []time.Duration

func (l latencies) add(r *report, prefix, label string) {
	if len(l) == 0 {
		r.figure(prefix+"_count", label+" samples", 0, "")
		return
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	q := func(p float64) time.Duration {
		i := int(p * float64(len(l)))
		if i >= len(l) {
			i = len(l) - 1
		}
		return l[i]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var parts []string
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"p50", q(0.50)}, {"p90", q(0.90)}, {"p99", q(0.99)}, {"max", l[len(l)-1]}} {
		r.figures = append(r.figures, field{key: prefix + "_" + p.name + "_ms", value: ms(p.d)})
		parts = append(parts, fmt.Sprintf("%s %.3f", p.name, ms(p.d)))
	}
	// One table row for the four figures; the JSON keeps them apart.
	n := len(r.figures)
	r.figures[n-4].label = label + " (ms)"
	r.figures[n-4].text = strings.Join(parts, "  ")
	for i := n - 3; i < n; i++ {
		r.figures[i].label = ""
	}
	r.figure(prefix+"_count", label+" samples", len(l), "")
}

// round keeps a figure readable in the JSON.
func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if x >= 0 {
		return float64(int64(x*p+0.5)) / p
	}
	return float64(int64(x*p-0.5)) / p
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
