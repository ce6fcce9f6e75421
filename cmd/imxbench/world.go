package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/internal/localdns"
)

// world is the set of imxd processes of one run and the DNS server that
// publishes their domains.
type world struct {
	imxdFlag string
	imxd     string // resolved on the first start
	verbose  bool
	stderr   io.Writer
	dir      string
	dns      *localdns.Server
	http     *http.Client

	mu    sync.Mutex
	procs []*imxdProc
}

func newWorld(imxdFlag string, verbose bool, stderr io.Writer) (*world, error) {
	dir, err := os.MkdirTemp("", "imxbench-")
	if err != nil {
		return nil, err
	}
	dns, err := localdns.Start(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &world{imxdFlag: imxdFlag, verbose: verbose, stderr: stderr, dir: dir, dns: dns,
		http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// close stops every imxd (SIGTERM, then SIGKILL after 10 s), the DNS
// server, and removes the temporary directory.
func (w *world) close() {
	w.stopAll()
	w.dns.Close()
	os.RemoveAll(w.dir)
}

// stopAll stops every imxd started so far (as close does), and keeps the
// DNS server and the directory for more.
func (w *world) stopAll() {
	w.mu.Lock()
	procs := w.procs
	w.procs = nil
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.stop)
	}
	wg.Wait()
}

// imxdProc is one running imxd, or another server that a scenario
// compares it with (kind).
type imxdProc struct {
	kind    string // "imxd" (set by launch when empty), "prosody" or "ejabberd": in the CPU figures
	domain  string
	server  string // listen.server, ip:port
	client  string
	admin   string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	logPath string
	logFile *os.File
}

func (p *imxdProc) pid() int { return p.cmd.Process.Pid }

func (p *imxdProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	if p.logFile != nil {
		p.logFile.Close()
	}
}

// logTail is the end of the process's log, for error messages.
func (p *imxdProc) logTail() string {
	if p.logPath == "" {
		return ""
	}
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func freeAddr(ip string) (string, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// freeAddrs sets each of addrs to a free address on ip (ip:port).
func freeAddrs(ip string, addrs ...*string) error {
	for _, a := range addrs {
		var err error
		if *a, err = freeAddr(ip); err != nil {
			return err
		}
	}
	return nil
}

// start writes a configuration for domain on ip (plus extra lines in the
// [[domain]] table), publishes the domain's records, starts imxd and waits
// until it is ready.
func (w *world) start(ctx context.Context, domain, ip, federation, extra string) (*imxdProc, error) {
	return w.startSpec(ctx, imxdSpec{domains: []string{domain}, ip: ip, federation: federation, extra: extra})
}

// imxdSpec describes one imxd to start.
type imxdSpec struct {
	// domains are the domains it serves, each a [[domain]] table with the
	// raised rate limits and extra; the first names the process (its
	// directory, its CPU figure) and its host, imx.DOMAIN, which the SRV
	// records of all of them point to.
	domains    []string
	ip         string
	federation string // lines of the [federation] table
	extra      string // lines of each [[domain]] table
	top        string // tables placed before the [[domain]] tables
	// prepare, when set, runs before imxd starts, with the path of the
	// database imxd will open (data_dir/imx.db; its directory exists).
	prepare func(ctx context.Context, dbPath string) error
}

// startSpec writes the configuration of sp, publishes its domains' records,
// runs sp.prepare, starts imxd and waits until it is ready.
func (w *world) startSpec(ctx context.Context, sp imxdSpec) (*imxdProc, error) {
	if w.imxd == "" {
		bin, err := findIMXD(w.imxdFlag)
		if err != nil {
			return nil, err
		}
		w.imxd = bin
	}
	domain, ip := sp.domains[0], sp.ip
	p := &imxdProc{domain: domain, exited: make(chan struct{})}
	if err := freeAddrs(ip, &p.server, &p.client, &p.admin); err != nil {
		return nil, err
	}
	dir := filepath.Join(w.dir, domain)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var tables strings.Builder
	for _, d := range sp.domains {
		fmt.Fprintf(&tables, "[[domain]]\nname = %q\nrate_limit = 100000000\nrate_burst = 1000000\n%s\n", d, sp.extra)
	}
	cfg := fmt.Sprintf(`data_dir = %q
[log]
level = "warn"
[listen]
server = %q
client = %q
admin = %q
[dns]
server = %q
[federation]
min_backoff = "50ms"
max_backoff = "1s"
retry_for = "30s"
%s
[admin]
pprof = true
%s
%s`, filepath.Join(dir, "data"), p.server, p.client, p.admin, w.dns.Addr(), sp.federation, sp.top, tables.String())
	cfgPath := filepath.Join(dir, "imxd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	ap := netip.MustParseAddrPort(p.server)
	host := "imx." + domain
	w.dns.SetA(host, ap.Addr())
	for _, d := range sp.domains {
		w.dns.SetSRV(d, localdns.SRV{Priority: 10, Weight: 10, Port: ap.Port(), Target: host})
	}
	if sp.prepare != nil {
		data := filepath.Join(dir, "data")
		if err := os.MkdirAll(data, 0o700); err != nil {
			return nil, err
		}
		if err := sp.prepare(ctx, filepath.Join(data, "imx.db")); err != nil {
			return nil, fmt.Errorf("prepare the store of %s: %w", domain, err)
		}
	}

	if err := w.launch(ctx, p, exec.Command(w.imxd, "-c", cfgPath, "-grace", "5s"), filepath.Join(dir, "imxd.log"), w.ready); err != nil {
		return nil, err
	}
	return p, nil
}

// launch starts p.cmd (cmd), its output going to logPath (or imxbench's
// stderr with -v), adds it to the world, and waits until ready says it
// is, for at most 30 s.
func (w *world) launch(ctx context.Context, p *imxdProc, cmd *exec.Cmd, logPath string, ready func(context.Context, *imxdProc) bool) error {
	if p.kind == "" {
		p.kind = "imxd"
	}
	p.cmd = cmd
	setChildAttrs(p.cmd)
	if w.verbose {
		p.cmd.Stdout, p.cmd.Stderr = w.stderr, w.stderr
	} else {
		p.logPath = logPath
		f, err := os.Create(p.logPath)
		if err != nil {
			return err
		}
		p.logFile = f
		p.cmd.Stdout, p.cmd.Stderr = f, f
	}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.cmd.Path, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	w.mu.Lock()
	w.procs = append(w.procs, p)
	w.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s for %s exited: %v\n%s", p.kind, p.domain, p.waitErr, p.logTail())
		default:
		}
		if ready(ctx, p) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s for %s not ready within 30 s\n%s", p.kind, p.domain, p.logTail())
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func (w *world) ready(ctx context.Context, p *imxdProc) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+"/readyz", nil)
	resp, err := w.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// addUsers creates the users local@domain for each local, a few at a time
// (each costs the server an argon2id hash).
func (w *world) addUsers(ctx context.Context, p *imxdProc, password string, locals ...string) error {
	return parallel(ctx, len(locals), 4, func(ctx context.Context, i int) error {
		a := locals[i] + "@" + p.domain
		body, _ := json.Marshal(map[string]string{"address": a, "password": password})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.admin+"/api/v1/users", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := w.http.Do(req)
		if err != nil {
			return fmt.Errorf("create %s: %w", a, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
			return fmt.Errorf("create %s: %d %s", a, resp.StatusCode, b)
		}
		return nil
	})
}

// login connects a client to p and logs user in.
func login(ctx context.Context, p *imxdProc, user, password string, opts *client.Options) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+p.client+"/imx", opts)
	if err != nil {
		return nil, err
	}
	if _, err := c.Login(ctx, user, password, false); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	return c, nil
}

// parallel runs fn(0…n-1), at most conc at once, and returns the first
// error; the others are cancelled then.
func parallel(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range min(conc, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// cpuMeter measures the CPU time of imxbench and of the imxd processes
// over a phase.
type cpuMeter struct {
	start   time.Time
	self    time.Duration
	procs   []*imxdProc
	ticks   []int64
	machine []int64 // machineTicks at the start
}

func (w *world) startCPU() *cpuMeter {
	w.mu.Lock()
	procs := append([]*imxdProc(nil), w.procs...)
	w.mu.Unlock()
	m := &cpuMeter{start: time.Now(), self: selfCPU(), procs: procs, machine: machineTicks()}
	for _, p := range procs {
		m.ticks = append(m.ticks, procTicks(p.pid()))
	}
	return m
}

// clockTick is USER_HZ, 100 on every Linux platform Go supports.
const clockTick = 100

// stop adds the CPU figures to r.
func (m *cpuMeter) stop(r *report) {
	wall := time.Since(m.start).Seconds()
	self := (selfCPU() - m.self).Seconds()
	r.figure("wall_s", "measured phase, wall time", round(wall, 3), fmt.Sprintf("%.2f s", wall))
	r.figure("bench_cpu_s", "imxbench CPU (user+sys)", round(self, 3), fmt.Sprintf("%.2f s (%.2f cores)", self, self/wall))
	// By kind: "imxd_cpu_s" or "prosody_cpu_s", each by domain.
	cpu := map[string]map[string]float64{}
	var kinds []string
	for i, p := range m.procs {
		if cpu[p.kind] == nil {
			cpu[p.kind] = map[string]float64{}
			kinds = append(kinds, p.kind)
		}
		t := procTicks(p.pid())
		if t < 0 || m.ticks[i] < 0 {
			continue
		}
		s := float64(t-m.ticks[i]) / clockTick
		cpu[p.kind][p.domain] = round(s, 2)
		r.figures = append(r.figures, field{label: p.kind + " " + p.domain + " CPU", text: fmt.Sprintf("%.2f s (%.2f cores)", s, s/wall)})
	}
	for _, k := range kinds {
		r.figures = append(r.figures, field{key: k + "_cpu_s", value: cpu[k]})
	}
	if split := machineSplit(m.machine, machineTicks()); split != nil {
		r.figure("machine_cpu_pct", "the machine's CPU time (all processes)", split,
			fmt.Sprintf("user %.1f%%, system %.1f%%, interrupts %.1f%%, idle %.1f%%, steal %.1f%%",
				split["user"], split["system"], split["irq"], split["idle"], split["steal"]))
	}
}

// machineTicks is the first line of /proc/stat: the machine's CPU time
// in clock ticks, as user, nice, system, idle, iowait, irq, softirq and
// steal; nil if unknown.
func machineTicks() []int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return nil
	}
	t := make([]int64, 8)
	for i := range t {
		if t[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return nil
		}
	}
	return t
}

// machineSplit is how the machine's CPU time between two machineTicks
// went, in percent: user (nice included), system, irq (hard and soft
// interrupts: on loopback, much of the network), idle (iowait included)
// and steal (taken by the hypervisor). It tells a phase that shared the
// machine, or ran while the host took its CPUs, from one that did not.
func machineSplit(before, after []int64) map[string]float64 {
	if len(before) != 8 || len(after) != 8 {
		return nil
	}
	var d [8]float64
	total := 0.0
	for i := range d {
		d[i] = float64(after[i] - before[i])
		total += d[i]
	}
	if total <= 0 {
		return nil
	}
	pct := func(v float64) float64 { return round(100*v/total, 1) }
	return map[string]float64{
		"user": pct(d[0] + d[1]), "system": pct(d[2]), "idle": pct(d[3] + d[4]),
		"irq": pct(d[5] + d[6]), "steal": pct(d[7]),
	}
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procTicks is utime+stime of pid from /proc/PID/stat, in clock ticks, or
// -1 if unknown.
func procTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	s, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return -1
	}
	return u + s
}

// procRSS is the resident set size of pid (VmRSS in /proc/PID/status), in
// bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}
