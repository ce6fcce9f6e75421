package router

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imxproject/imx/wire"
)

// metrics are the Router's counters: every final result, by direction.
//
// The children of the vectors are looked up once and kept: WithLabelValues
// hashes and checks its label values on every call, about 2% of a sending
// server's CPU at a message each.
type metrics struct {
	results *prometheus.CounterVec   // direction, result
	latency *prometheus.HistogramVec // route

	counted       sync.Map // resultKey → prometheus.Counter
	local, remote prometheus.Observer
}

type resultKey struct {
	direction string
	code      wire.Status
}

func newMetrics() *metrics {
	m := &metrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imx_messages_total",
			Help: "Messages by direction (sent: from a local client; received: from another domain) and final result (a wire status name).",
		}, []string{"direction", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imx_router_send_duration_seconds",
			Help:    "Time from a local client's SEND to its final result, by route (local or remote).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"route"}),
	}
	m.local, m.remote = m.latency.WithLabelValues("local"), m.latency.WithLabelValues("remote")
	return m
}

func (m *metrics) result(direction string, res *wire.Result) {
	k := resultKey{direction, res.Code}
	c, ok := m.counted.Load(k)
	if !ok {
		c, _ = m.counted.LoadOrStore(k, m.results.WithLabelValues(direction, res.Code.String()))
	}
	c.(prometheus.Counter).Inc()
}

// since observes the time from start of a SEND by route: local or remote.
func since(o prometheus.Observer, start time.Time) {
	o.Observe(time.Since(start).Seconds())
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.results.Describe(ch)
	m.latency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.results.Collect(ch)
	m.latency.Collect(ch)
}

// Collector returns the Router's metrics, for a prometheus.Registry:
// imx_messages_total and imx_router_send_duration_seconds
// (docs/operations.md).
func (r *Router) Collector() prometheus.Collector { return r.metrics }
