package router

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imxproject/imx/wire"
)

// metrics are the Router's counters: every final result, by direction.
type metrics struct {
	results *prometheus.CounterVec   // direction, result
	latency *prometheus.HistogramVec // route
}

func newMetrics() *metrics {
	return &metrics{
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
}

func (m *metrics) result(direction string, res *wire.Result) {
	m.results.WithLabelValues(direction, res.Code.String()).Inc()
}

func (m *metrics) since(route string, start time.Time) {
	m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
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
