package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/config"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls fn until it reports true or the deadline passes.
func waitFor(t *testing.T, total time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // a poll interval, not a wait for an event
	}
}

// startServer runs a one-domain server on loopback ports and stops it at
// the end of the test.
func startServer(t *testing.T) *Server {
	t.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, `
data_dir = %q
[listen]
server = "127.0.0.1:0"
client = "127.0.0.1:0"
admin = "127.0.0.1:0"
[dns]
server = "127.0.0.1:1"
[[domain]]
name = "alpha.example"
`, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, nil, Options{Password: store.PasswordParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, 10*time.Second, "the listeners", func() bool { return s.Addr("admin") != nil && s.Addr("client") != nil })
	return s
}

// scrapeMetrics reads /metrics into sample → value, samples written as in
// the exposition ("name{label=\"value\",…}").
func scrapeMetrics(t *testing.T, s *Server) (samples map[string]float64, types map[string]string) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr("admin").String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	samples, types = map[string]float64{}, map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			types[name] = typ
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples, types
}

// TestMetrics: a local message moves the message counter, the sessions
// gauge and the frame counters that /metrics on the admin listener serves.
func TestMetrics(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, u := range []string{"alice@alpha.example", "bob@alpha.example"} {
		if err := s.Store().CreateAccount(ctx, addr.MustParse(u), "password1"); err != nil {
			t.Fatal(err)
		}
	}
	url := "http://" + s.Addr("client").String()
	login := func(user string) *client.Client {
		c, err := client.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Login(ctx, user, "password1", false); err != nil {
			t.Fatal(err)
		}
		return c
	}
	alice, bob := login("alice@alpha.example"), login("bob@alpha.example")
	res, err := alice.Send(ctx, "bob@alpha.example", "text/plain", "hello")
	if err != nil || res.Code != wire.StatusDelivered {
		t.Fatalf("Send = %v, %v; want delivered", res, err)
	}
	select {
	case <-bob.Messages():
	case <-ctx.Done():
		t.Fatal("bob got no message")
	}

	want := map[string]float64{
		`imx_messages_total{direction="sent",result="delivered"}`: 1,
		`imx_client_sessions`:                                            2,
		`imx_client_connections`:                                         2,
		`imx_client_logins_total{result="ok"}`:                           2,
		`imx_outbox_messages`:                                            0,
		`imx_store_claims_filter_bytes`:                                  128 << 10, // a new store
		`imx_store_claims_filter_generations`:                            1,
		`imx_store_claim_lookups_total{answer="table"}`:                  0, // only for messages from other domains
		`imx_router_send_duration_seconds_count{route="local"}`:          1,
		`imx_frames_total{direction="in",kind="client",type="SEND"}`:     1,
		`imx_frames_total{direction="out",kind="client",type="MESSAGE"}`: 1,
		`imx_frames_total{direction="in",kind="client",type="LOGIN"}`:    2,
		`imx_frames_total{direction="out",kind="client",type="SESSION"}`: 2,
		`imx_frames_total{direction="out",kind="client",type="RESULT"}`:  1,  // alice's
		`imx_frames_total{direction="in",kind="client",type="RESULT"}`:   1,  // bob's acknowledgement
		`imx_server_connections`:                                         -1, // absent: no server connections
	}
	// Bob's acknowledgement may still be on its way: scrape until all
	// match, then report what does not.
	var samples map[string]float64
	var types map[string]string
	mismatches := func() (bad []string) {
		for k, v := range want {
			got, ok := samples[k]
			switch {
			case v < 0 && ok:
				bad = append(bad, fmt.Sprintf("%s = %v, want absent", k, got))
			case v >= 0 && (!ok || got != v):
				bad = append(bad, fmt.Sprintf("%s = %v (present %v), want %v", k, got, ok, v))
			}
		}
		return bad
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		samples, types = scrapeMetrics(t, s)
		if len(mismatches()) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // a poll interval
	}
	for _, m := range mismatches() {
		t.Error(m)
	}
	if _, ok := types["go_goroutines"]; !ok {
		t.Error("the Go collector's go_goroutines is missing")
	}
}

// TestMetricsDocumented: every imx_ metric is in docs/operations.md's
// table with its type and labels, and every metric there exists.
func TestMetricsDocumented(t *testing.T) {
	s := startServer(t)
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "<!-- metrics:begin -->")
	table, _, ok2 := strings.Cut(table, "<!-- metrics:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/operations.md has no metrics:begin/end table")
	}
	type doc struct {
		typ    string
		labels []string
	}
	documented := map[string]doc{}
	labelRE := regexp.MustCompile("`([a-z_]+)`")
	for _, line := range strings.Split(strings.TrimSpace(table), "\n")[2:] {
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Fatalf("bad table row %q", line)
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		typ, _, _ := strings.Cut(strings.TrimSpace(cells[2]), " ")
		var labels []string
		for _, m := range labelRE.FindAllStringSubmatch(cells[3], -1) {
			labels = append(labels, m[1])
		}
		slices.Sort(labels)
		documented[name] = doc{typ, labels}
	}
	if len(documented) < 10 {
		t.Fatalf("read %d metrics from the table; the table did not parse", len(documented))
	}

	// Every described metric, with its labels (Desc has no accessors:
	// read its String form).
	descRE := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	actual := map[string][]string{}
	ch := make(chan *prometheus.Desc, 1000)
	for _, c := range s.collectors() {
		c.Describe(ch)
	}
	close(ch)
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		if !strings.HasPrefix(m[1], "imx_") {
			continue
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		slices.Sort(labels)
		actual[m[1]] = labels
	}
	_, types := scrapeMetrics(t, s)
	for name, labels := range actual {
		d, ok := documented[name]
		if !ok {
			t.Errorf("%s is not documented in docs/operations.md", name)
			continue
		}
		if !slices.Equal(d.labels, labels) {
			t.Errorf("%s: documented labels %v, actual %v", name, d.labels, labels)
		}
		if typ, ok := types[name]; ok && typ != d.typ {
			t.Errorf("%s: documented as %s, exposed as %s", name, d.typ, typ)
		}
	}
	for name := range documented {
		if _, ok := actual[name]; !ok {
			t.Errorf("%s is documented but does not exist", name)
		}
	}
}
