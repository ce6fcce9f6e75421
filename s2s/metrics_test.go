package s2s_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/s2s"
	"github.com/imxproject/imx/wire"
)

// metricValue gathers s's metrics and returns the value of the sample of
// name with exactly the labels given (the count of a histogram), or -1.
func metricValue(t *testing.T, s *s2s.Server, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// TestMetrics: dial-backs, refused records, requests and connections are
// counted under their labels.
func TestMetrics(t *testing.T) {
	w := imxtest.NewWorld(t)
	alpha := w.StartNode(imxtest.NodeConfig{Domains: []string{"alpha.example", "gamma.example"}})
	beta := w.StartNode(imxtest.NodeConfig{Domains: []string{"beta.example"}})
	w.StartNode(imxtest.NodeConfig{Domains: []string{"delta.example"}})
	mustDeliver(t, alpha, "alpha.example", "beta.example", message("a@alpha.example", "b@beta.example", "ok"))
	resp, err := alpha.Server.Request(ctx(t), "alpha.example", "beta.example", message("a@alpha.example", "d@delta.example", "relay me"))
	refusedWith(t, resp, err, wire.StatusRelayDenied)
	resp, err = alpha.Server.Request(ctx(t), "alpha.example", "beta.example", message("g@gamma.example", "b@beta.example", "spoof"))
	refusedWith(t, resp, err, wire.StatusNotAuthorized)

	for _, c := range []struct {
		s      *s2s.Server
		name   string
		labels map[string]string
		want   float64
	}{
		{beta.Server, "imx_dialback_attempts_total", map[string]string{"role": "receiver", "outcome": "ok", "domain": "alpha.example"}, 1},
		{alpha.Server, "imx_dialback_attempts_total", map[string]string{"role": "originator", "outcome": "ok", "domain": "beta.example"}, 1},
		{beta.Server, "imx_server_refused_records_total", map[string]string{"reason": "relay-denied"}, 1},
		{beta.Server, "imx_server_refused_records_total", map[string]string{"reason": "not-authorized"}, 1},
		{beta.Server, "imx_server_refused_records_total", map[string]string{"reason": "protocol-error"}, 0},
		{alpha.Server, "imx_server_request_duration_seconds", map[string]string{"type": "MESSAGE"}, 3},
		{alpha.Server, "imx_server_connections", map[string]string{"direction": "outbound", "domain": "beta.example"}, 1},
		{alpha.Server, "imx_server_connections", map[string]string{"direction": "inbound", "domain": "beta.example"}, 1},
		{beta.Server, "imx_server_connections", map[string]string{"direction": "inbound", "domain": "alpha.example"}, 1},
		{alpha.Server, "imx_server_send_queue_records", map[string]string{}, 0},
	} {
		if got := metricValue(t, c.s, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := metricValue(t, beta.Server, "imx_dialback_attempts_total", map[string]string{"role": "receiver", "outcome": "failed", "domain": "alpha.example"}); got != -1 {
		t.Errorf("beta counted %v failed dial-backs", got)
	}
}
