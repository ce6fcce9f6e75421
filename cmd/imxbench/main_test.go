package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests build imxd and imxbench into one directory (so that imxbench
// finds imxd next to itself, its default) and run each scenario as a
// process for a very short time: the last line must be a RESULT whose
// figures are sane.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func buildBoth(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "imxbench-test-"); buildErr != nil {
			return
		}
		for _, b := range []struct{ name, pkg string }{{"imxd", "../imxd"}, {"imxbench", "."}} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(buildDir, b.name), b.pkg).CombinedOutput()
			cancel()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "imxbench")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// runBench runs imxbench with args and returns its output, exit status and
// the RESULT object (nil when there is none).
func runBench(t *testing.T, bin string, args ...string) (string, int, map[string]any) {
	t.Helper()
	return runBenchWithin(t, 45*time.Second, bin, args...)
}

// runBenchWithin is runBench that gives imxbench d to finish.
func runBenchWithin(t *testing.T, d time.Duration, bin string, args ...string) (string, int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("imxbench %v: %v", args, err)
	}
	out := stdout.String() + stderr.String()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	js, ok := strings.CutPrefix(last, "RESULT ")
	if !ok {
		return out, code, nil
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("RESULT line does not parse: %v\n%s", err, last)
	}
	return out, code, res
}

// needXMPP skips the test when the XMPP server is not installed, or fails
// it under IMX_REQUIRE_XMPP, which .ci/run sets after installing both.
func needXMPP(t *testing.T, server string) {
	t.Helper()
	need := map[string]string{"prosody": "prosody", "ejabberd": "erl"}[server]
	if _, err := exec.LookPath(need); err != nil {
		if os.Getenv("IMX_REQUIRE_XMPP") != "" {
			t.Fatalf("IMX_REQUIRE_XMPP is set and there is no %s: %v", need, err)
		}
		t.Skipf("no %s in PATH (apt-get install %s; .ci/run installs it)", need, server)
	}
}

// positive checks that each key of res is a number greater than zero.
func positive(t *testing.T, res map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		v, ok := res[k].(float64)
		if !ok || v <= 0 {
			t.Errorf("RESULT %s = %v, want a positive number", k, res[k])
		}
	}
}

func zero(t *testing.T, res map[string]any, key string) {
	t.Helper()
	if v, ok := res[key].(float64); !ok || v != 0 {
		t.Errorf("RESULT %s = %v, want 0", key, res[key])
	}
}

func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs imxd")
	}
	bin := buildBoth(t)
	short := []string{"-duration", "1s", "-warmup", "200ms"}
	check := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		out, code, res := runBench(t, bin, append(args, short...)...)
		if code != 0 || res == nil {
			t.Fatalf("imxbench %v: status %d, RESULT %v\n%s", args, code, res, out)
		}
		if res["scenario"] != args[0] {
			t.Errorf("RESULT scenario = %v, want %s", res["scenario"], args[0])
		}
		positive(t, res, "wall_s")
		// imxbench's own CPU: some with every scenario but idle against
		// an XMPP server, whose sessions send nothing while idle, so
		// that a second of it may cost imxbench no clock tick.
		if v, ok := res["bench_cpu_s"].(float64); !ok || v < 0 || v == 0 && !(args[0] == "idle" && slices.Contains(args, "-server")) {
			t.Errorf("RESULT bench_cpu_s = %v, want a positive number", res["bench_cpu_s"])
		}
		if machineTicks() != nil {
			split, _ := res["machine_cpu_pct"].(map[string]any)
			sum := 0.0
			for _, k := range []string{"user", "system", "irq", "idle", "steal"} {
				v, ok := split[k].(float64)
				if !ok || v < 0 {
					t.Errorf("RESULT machine_cpu_pct[%s] = %v, want a share", k, split[k])
				}
				sum += v
			}
			if math.Abs(sum-100) > 1 {
				t.Errorf("RESULT machine_cpu_pct = %v, adds up to %v%%", split, sum)
			}
		}
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
		return res
	}

	for _, driver := range []string{"frames", "client"} {
		t.Run("e2e-"+driver, func(t *testing.T) {
			latFile := filepath.Join(t.TempDir(), "latencies")
			res := check(t, "e2e", "-driver", driver, "-senders", "2", "-receivers", "2", "-step", "300ms", "-max-concurrency", "8", "-paced", "0.4", "-latencies", latFile)
			positive(t, res, "max_rate", "paced_rate", "latency_p50_ms", "latency_p99_ms", "latency_count")
			zero(t, res, "errors")
			if res["driver"] != driver {
				t.Errorf("RESULT driver = %v, want %s", res["driver"], driver)
			}
			if cpu, ok := res["imxd_cpu_s"].(map[string]any); !ok || len(cpu) != 2 {
				t.Errorf("RESULT imxd_cpu_s = %v, want the two imxd processes", res["imxd_cpu_s"])
			}
			if p50, p99 := res["latency_p50_ms"].(float64), res["latency_p99_ms"].(float64); p50 > p99 {
				t.Errorf("p50 %v > p99 %v", p50, p99)
			}
			if max, asked := res["max_rate"].(float64), res["paced_target"].(float64); res["paced"] != 0.4 || math.Abs(asked-0.4*max) > 1 {
				t.Errorf("paced %v asked %v msgs/s of the highest %v, want -paced 0.4 of it", res["paced"], asked, max)
			}
			// Every message of the paced phase arrived and was timed.
			asked := math.Floor(res["paced_target"].(float64) * res["duration_s"].(float64))
			if n := res["latency_count"].(float64); math.Abs(n-asked) > 1 {
				t.Errorf("%v latencies, want the %v messages of the paced phase", n, asked)
			}
			checkLatencyFile(t, latFile, res)
			zero(t, res, "paced_with_attrs") // strangers: no attributes
		})
		t.Run("e2e-approved-"+driver, func(t *testing.T) {
			res := check(t, "e2e", "-driver", driver, "-senders", "2", "-receivers", "2", "-step", "300ms", "-max-concurrency", "8", "-rate", "200", "-approved")
			zero(t, res, "errors")
			// Every paced message carried the sender's attributes.
			if n, a := res["latency_count"].(float64), res["paced_with_attrs"].(float64); n < 1 || a != n {
				t.Errorf("%v of %v paced messages carried attributes, want all", a, n)
			}
		})
	}
	t.Run("s2s", func(t *testing.T) {
		res := check(t, "s2s", "-window", "16")
		positive(t, res, "rate")
		zero(t, res, "errors")
		if r, _ := res["results"].(map[string]any); r["offline"] == nil {
			t.Errorf("RESULT results = %v, want offline results", res["results"])
		}
	})
	t.Run("s2s-link", func(t *testing.T) {
		res := check(t, "s2s", "-mode", "link")
		positive(t, res, "rate")
	})
	for _, distinct := range []bool{false, true} {
		t.Run(fmt.Sprintf("idle-distinct=%v", distinct), func(t *testing.T) {
			res := check(t, "idle", "-n", "200", fmt.Sprintf("-distinct=%v", distinct))
			positive(t, res, "go_bytes_per_session", "rss_before", "rss_after", "open_rate")
			zero(t, res, "errors")
			if res["distinct"] != distinct || res["server"] != "imxd" {
				t.Errorf("RESULT distinct = %v, server = %v; want %v, imxd", res["distinct"], res["server"], distinct)
			}
		})
	}
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run("idle-"+server, func(t *testing.T) {
			needXMPP(t, server)
			res := check(t, "idle", "-server", server, "-n", "100")
			positive(t, res, "rss_before", "rss_after", "open_rate")
			// With 100 sessions the growth of VmRSS is within the noise of
			// the server's allocator (ejabberd's even shrank): only its
			// presence is checked.
			if _, ok := res["bytes_per_session"].(float64); !ok {
				t.Errorf("RESULT bytes_per_session = %v, want a number", res["bytes_per_session"])
			}
			zero(t, res, "errors")
			if v, _ := res["server"].(string); !strings.HasPrefix(v, server) {
				t.Errorf("RESULT server = %v, want %s and its version", res["server"], server)
			}
			if cpu, _ := res[server+"_cpu_s"].(map[string]any); len(cpu) != 1 {
				t.Errorf("RESULT %s_cpu_s = %v, want the one server", server, res[server+"_cpu_s"])
			}
		})
	}
	t.Run("auth", func(t *testing.T) {
		res := check(t, "auth", "-n", "5000", "-concurrency", "8")
		positive(t, res, "pairs_per_s", "latency_p50_ms", "latency_count")
	})
	for _, driver := range []string{"frames", "client"} {
		t.Run("fanout-"+driver, func(t *testing.T) {
			res := check(t, "fanout", "-driver", driver, "-watchers", "20", "-domains", "4", "-rounds", "2", "-gap", "100ms", "-renewals", "0")
			positive(t, res, "all_notified_median_ms", "arrival_p50_ms", "arrival_max_ms", "ack_p50_ms")
			zero(t, res, "missing")
			zero(t, res, "late")
			if res["driver"] != driver {
				t.Errorf("RESULT driver = %v, want %s", res["driver"], driver)
			}
			if n, _ := res["arrival_count"].(float64); n != 40 {
				t.Errorf("RESULT arrival_count = %v, want 40 (20 watchers × 2 changes)", res["arrival_count"])
			}
			// One NOTIFY per watcher domain crosses the server connection, and
			// one reaches each watcher session.
			for key, want := range map[string]float64{"notify_s2s_per_change": 4, "notify_c2s_per_change": 20} {
				got, _ := res[key].([]any)
				if len(got) != 2 {
					t.Errorf("RESULT %s = %v, want 2 changes", key, res[key])
				}
				for _, v := range got {
					if v != want {
						t.Errorf("RESULT %s = %v, want %v each", key, res[key], want)
					}
				}
			}
		})
	}
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run("xmpp-"+server, func(t *testing.T) {
			needXMPP(t, server)
			latFile := filepath.Join(t.TempDir(), "latencies")
			res := check(t, "xmpp", "-server", server, "-senders", "2", "-receivers", "2", "-step", "300ms", "-max-concurrency", "8", "-paced", "0.4", "-latencies", latFile)
			positive(t, res, "max_rate", "paced_rate", "latency_p50_ms", "latency_p99_ms", "latency_count")
			zero(t, res, "errors")
			cpu, _ := res[server+"_cpu_s"].(map[string]any)
			if _, ok := cpu["alpha.bench"]; !ok || len(cpu) != 2 {
				t.Errorf("RESULT %s_cpu_s = %v, want the two %s processes", server, res[server+"_cpu_s"], server)
			}
			if res["imxd_cpu_s"] != nil {
				t.Errorf("RESULT imxd_cpu_s = %v, want none: no imxd runs", res["imxd_cpu_s"])
			}
			if v, _ := res["server"].(string); !strings.HasPrefix(v, server) {
				t.Errorf("RESULT server = %v, want %s and its version", res["server"], server)
			}
			asked := math.Floor(res["paced_target"].(float64) * res["duration_s"].(float64))
			if n := res["latency_count"].(float64); math.Abs(n-asked) > 1 {
				t.Errorf("%v latencies, want the %v messages of the paced phase", n, asked)
			}
			checkLatencyFile(t, latFile, res)
		})
	}
	t.Run("usage", func(t *testing.T) {
		if _, code, _ := runBench(t, bin, "xmpp", "-prosody", filepath.Join(t.TempDir(), "missing")); code != exitUnavailable {
			t.Errorf("xmpp without prosody: status %d, want %d", code, exitUnavailable)
		}
		if _, code, _ := runBench(t, bin, "xmpp", "-server", "ejabberd", "-erl", filepath.Join(t.TempDir(), "missing")); code != exitUnavailable {
			t.Errorf("xmpp without erl: status %d, want %d", code, exitUnavailable)
		}
		if _, code, _ := runBench(t, bin, "xmpp", "-server", "openfire"); code != exitFailed {
			t.Errorf("xmpp -server openfire: status %d, want %d", code, exitFailed)
		}
		if _, code, _ := runBench(t, bin, "nonsense"); code != exitUsage {
			t.Errorf("unknown scenario: status %d, want %d", code, exitUsage)
		}
		_, code, _ := runBench(t, bin, "e2e", "-imxd", filepath.Join(t.TempDir(), "missing"))
		if code != exitFailed {
			t.Errorf("missing imxd: status %d, want %d", code, exitFailed)
		}
	})
}

// TestInterrupt: SIGINT in the middle of a run stops imxbench with status
// 130, and its imxd is gone.
func TestInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs imxd")
	}
	bin := buildBoth(t)
	cmd := exec.Command(bin, "idle", "-n", "10", "-duration", "60s", "-warmup", "0s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait for the imxd child to run, then interrupt.
	var child int
	deadline := time.Now().Add(30 * time.Second)
	for child == 0 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("no imxd child appeared\n%s", out.String())
		}
		child = findChild(cmd.Process.Pid)
		select {
		case err := <-exited:
			t.Fatalf("imxbench exited early: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("imxbench did not stop on an interrupt\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("status %d, want %d\n%s", code, exitInterrupted, out.String())
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", child)); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child)); !bytes.Contains(b, []byte(") Z ")) {
			t.Errorf("imxd %d still runs after imxbench stopped", child)
		}
	}
}

// findChild returns the pid of a child of parent, or 0.
func findChild(parent int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", parent, parent))
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			var pid int
			fmt.Sscan(f[0], &pid)
			return pid
		}
	}
	// Children may hang off any thread of the Go process.
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", parent))
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", parent, task.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			var pid int
			fmt.Sscan(f[0], &pid)
			return pid
		}
	}
	return 0
}

// TestFloor runs the floor scenario small, over TCP and over WebSockets:
// every message must be read once, and the figures be sane.
func TestFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs imxbench")
	}
	bin := buildBoth(t)
	for _, tc := range []struct {
		name      string
		args      []string
		transport string
		writers   float64
	}{
		{"tcp", nil, "tcp", 50},
		{"websocket-3-writers", []string{"-websocket", "-writers", "3"}, "websocket", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"floor", "-conns", "50", "-rounds", "2", "-gap", "50ms", "-warmup", "0s"}, tc.args...)
			out, code, res := runBench(t, bin, args...)
			if code != 0 || res == nil {
				t.Fatalf("imxbench %v: status %d, RESULT %v\n%s", args, code, res, out)
			}
			if res["scenario"] != "floor" || res["transport"] != tc.transport {
				t.Errorf("RESULT scenario, transport = %v, %v, want floor, %s", res["scenario"], res["transport"], tc.transport)
			}
			positive(t, res, "all_read_median_ms", "writes_done_median_ms", "writer_cpu_median_ms", "reader_cpu_median_ms",
				"cpu_median_ms", "arrival_p50_ms", "arrival_max_ms", "warmup_all_read_ms", "wall_s")
			zero(t, res, "missing")
			zero(t, res, "bad")
			zero(t, res, "write_errors")
			for key, want := range map[string]float64{"messages_read": 100, "arrival_count": 100, "conns": 50, "writers": tc.writers} {
				if v, _ := res[key].(float64); v != want {
					t.Errorf("RESULT %s = %v, want %v", key, res[key], want)
				}
			}
			for _, key := range []string{"all_read_ms", "writes_done_ms", "writer_cpu_ms", "reader_cpu_ms", "cpu_ms"} {
				vals, _ := res[key].([]any)
				if len(vals) != 2 {
					t.Errorf("RESULT %s = %v, want 2 rounds", key, res[key])
				}
				for _, v := range vals {
					if f, ok := v.(float64); !ok || f <= 0 {
						t.Errorf("RESULT %s = %v, want positive figures", key, res[key])
					}
				}
			}
			// The last message read of all rounds is the latest arrival.
			if all, _ := res["all_read_ms"].([]any); len(all) == 2 {
				a, _ := all[0].(float64)
				b, _ := all[1].(float64)
				if m, _ := res["arrival_max_ms"].(float64); m != max(a, b) {
					t.Errorf("RESULT arrival_max_ms = %v, want the largest of all_read_ms %v", m, all)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
	t.Run("fd-limit", func(t *testing.T) {
		out, code, _ := runBench(t, bin, "floor", "-conns", "2000000000")
		if code != exitFailed || !strings.Contains(out, "RLIMIT_NOFILE") {
			t.Errorf("imxbench floor -conns 2000000000: status %d, want %d and a message about RLIMIT_NOFILE\n%s", code, exitFailed, out)
		}
	})
}

// TestFanoutRenewals runs the renewal measurement of fanout, small: 20
// subscriptions of one minute (the least imxd accepts), so it takes about
// two minutes, a renewal period to reach the first wave and one to measure.
// It checks that the window is found and that its figures hold together:
// each subscription renewed once in it, with a SUBSCRIBE and its RESULT.
func TestFanoutRenewals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs imxd for two minutes")
	}
	t.Parallel()
	bin := buildBoth(t)
	args := []string{"fanout", "-watchers", "20", "-domains", "4", "-rounds", "1", "-gap", "100ms", "-renewals", "1", "-warmup", "200ms"}
	out, code, res := runBenchWithin(t, 5*time.Minute, bin, args...)
	if code != 0 || res == nil {
		t.Fatalf("imxbench %v: status %d, RESULT %v\n%s", args, code, res, out)
	}
	defer func() {
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	}()
	positive(t, res, "renew_window_s", "renew_bench_cpu_s")
	num := func(key string) float64 { v, _ := res[key].(float64); return v }
	if n := num("renew_subscribes"); n < 19 || n > 22 {
		t.Errorf("RESULT renew_subscribes = %v, want about 20 (each subscription renewed once)", res["renew_subscribes"])
	}
	// A SUBSCRIBE and its RESULT, plus the keepalive PINGs and PONGs of
	// the 4 server connections, which weigh with 20 subscriptions (10 in
	// a 48 s window in one run), not with 10,000.
	if f := num("renew_frames_per_renewal"); f < 2 || f > 4 {
		t.Errorf("RESULT renew_frames_per_renewal = %v, want 2–4 (SUBSCRIBE and RESULT, and keepalives)", res["renew_frames_per_renewal"])
	}
	// Renewal at 80% of the minute less a jitter of up to 5%, at the next
	// sweep (every 6 s): 45–54 s, and the window's ends are read once a second.
	if p := num("renew_period_s"); p < 40 || p > 62 {
		t.Errorf("RESULT renew_period_s = %v, want 40–62 s", res["renew_period_s"])
	}
	cpu, _ := res["renew_imxd_cpu_s"].(map[string]any)
	for _, d := range []string{"rp.bench", "rw0.bench"} {
		if v, _ := cpu[d].(float64); v <= 0 {
			t.Errorf("RESULT renew_imxd_cpu_s[%s] = %v, want a positive number", d, cpu[d])
		}
	}
}

// checkLatencyFile checks e2e's -latencies file against its RESULT: a
// line per paced message, in send order, within the paced phase, whose
// latencies have the reported p50.
func checkLatencyFile(t *testing.T, path string, res map[string]any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if n := res["latency_count"].(float64); float64(len(lines)) != n {
		t.Fatalf("%d lines in the -latencies file, want latency_count %v", len(lines), n)
	}
	var sent []int64
	var lat []float64
	for _, l := range lines {
		var s, d int64
		if _, err := fmt.Sscanf(l, "%d %d", &s, &d); err != nil || d <= 0 {
			t.Fatalf("line %q: %v, want UNIX-NANO LATENCY-NANO", l, err)
		}
		sent = append(sent, s)
		lat = append(lat, float64(d)/1e6)
	}
	if !slices.IsSorted(sent) {
		t.Error("the -latencies file is not in send order")
	}
	if span := float64(sent[len(sent)-1]-sent[0]) / 1e9; span > res["duration_s"].(float64) {
		t.Errorf("sends span %.2f s, longer than the paced phase", span)
	}
	slices.Sort(lat)
	if p50 := lat[int(0.5*float64(len(lat)))]; math.Abs(p50-res["latency_p50_ms"].(float64)) > 0.01 {
		t.Errorf("p50 of the file %.3f ms, RESULT latency_p50_ms %v", p50, res["latency_p50_ms"])
	}
}

// TestMachineSplit: the shares of the machine's CPU time between two
// readings of /proc/stat, with nice in user, iowait in idle and both
// kinds of interrupts together.
func TestMachineSplit(t *testing.T) {
	before := []int64{1000, 10, 500, 9000, 20, 0, 100, 5}
	after := []int64{1500, 20, 700, 9200, 30, 0, 130, 15} // +500 +10 +200 +200 +10 +0 +30 +10 = 960
	got := machineSplit(before, after)
	want := map[string]float64{"user": 53.1, "system": 20.8, "idle": 21.9, "irq": 3.1, "steal": 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("machineSplit = %v, want %v", got, want)
	}
	if got := machineSplit(before, before); got != nil {
		t.Errorf("no time passed: %v, want nil", got)
	}
	if got := machineSplit(nil, after); got != nil {
		t.Errorf("no first reading: %v, want nil", got)
	}
}
