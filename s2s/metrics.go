package s2s

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imxproject/imx/wire"
)

// MaxDomainLabels is how many remote domains the metrics name: the first
// ones seen keep their own label value, every later one is counted as
// "other", so that a flood of domains cannot grow the metrics without
// bound.
const MaxDomainLabels = 100

// Label values of remote domains that are not a domain name.
const (
	otherDomain   = "other"   // beyond MaxDomainLabels
	unknownDomain = "unknown" // an inbound connection not yet authenticated, or an invalid claim
)

// refuseReasons are the label values of imx_server_refused_records_total:
// the status a refused record is answered with.
var refuseReasons = []wire.Status{
	wire.StatusRelayDenied, wire.StatusNotAuthorized, wire.StatusUnsupported,
	wire.StatusProtocolError, wire.StatusAuthFailed,
}

// metrics are the Server's counters, beside the code that increments them.
type metrics struct {
	srv *Server

	mu      sync.Mutex
	domains map[string]bool // the domains named in labels

	refused  *prometheus.CounterVec   // reason
	dialback *prometheus.CounterVec   // role, outcome, domain
	requests *prometheus.HistogramVec // type
	// byType keeps the children of requests: WithLabelValues hashes and
	// checks its label values on every call.
	byType sync.Map // wire.Type → prometheus.Observer

	conns      *prometheus.Desc
	queued     *prometheus.Desc
	queuedMax  *prometheus.Desc
	redirected *prometheus.Desc
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		srv:     s,
		domains: map[string]bool{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imx_server_refused_records_total",
			Help: "Records from server connections refused by authorization or protocol checks, by reason (the status answered).",
		}, []string{"reason"}),
		dialback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imx_dialback_attempts_total",
			Help: "Dial-back authentications of a domain pair, by role (originator or receiver), outcome (ok or failed) and remote domain.",
		}, []string{"role", "outcome", "domain"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imx_server_request_duration_seconds",
			Help:    "Time from a request to another domain to its response (or failure), including connecting and dial-back, by record type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type"}),
		conns: prometheus.NewDesc("imx_server_connections",
			"Open server connections, by direction (inbound or outbound) and remote domain.", []string{"direction", "domain"}, nil),
		queued: prometheus.NewDesc("imx_server_send_queue_records",
			"Records waiting in the send queues of all server connections.", nil, nil),
		queuedMax: prometheus.NewDesc("imx_server_send_queue_records_max",
			"Records waiting in the fullest send queue of a server connection.", nil, nil),
		redirected: prometheus.NewDesc("imx_server_redirects_followed_total",
			"REDIRECTs followed to another server of a remote domain.", nil, nil),
	}
	for _, r := range refuseReasons {
		m.refused.WithLabelValues(r.String())
	}
	return m
}

// domain returns the label value of a remote domain.
func (m *metrics) domain(d string) string {
	if d == "" {
		return unknownDomain
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.domains[d] {
		return d
	}
	if len(m.domains) >= MaxDomainLabels {
		return otherDomain
	}
	m.domains[d] = true
	return d
}

func (m *metrics) refuse(code wire.Status) {
	m.refused.WithLabelValues(code.String()).Inc()
}

func (m *metrics) dialbackDone(role, remote string, ok bool) {
	outcome := "failed"
	if ok {
		outcome = "ok"
	}
	m.dialback.WithLabelValues(role, outcome, m.domain(remote)).Inc()
}

func (m *metrics) request(t wire.Type, start time.Time) {
	o, ok := m.byType.Load(t)
	if !ok {
		o, _ = m.byType.LoadOrStore(t, m.requests.WithLabelValues(t.String()))
	}
	o.(prometheus.Observer).Observe(time.Since(start).Seconds())
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.refused.Describe(ch)
	m.dialback.Describe(ch)
	m.requests.Describe(ch)
	ch <- m.conns
	ch <- m.queued
	ch <- m.queuedMax
	ch <- m.redirected
}

// Collect implements prometheus.Collector. The gauges are read from the
// open connections at the time of the scrape.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.refused.Collect(ch)
	m.dialback.Collect(ch)
	m.requests.Collect(ch)

	type key struct{ direction, domain string }
	open := map[key]int{}
	for _, ci := range m.srv.Conns() {
		k := key{"inbound", ""}
		if ci.Outbound {
			k = key{"outbound", ci.Remote}
		} else if len(ci.Pairs) > 0 {
			_, k.domain, _ = strings.Cut(ci.Pairs[0], " ")
		}
		k.domain = m.domain(k.domain)
		open[k]++
	}
	for k, n := range open {
		ch <- prometheus.MustNewConstMetric(m.conns, prometheus.GaugeValue, float64(n), k.direction, k.domain)
	}

	s := m.srv
	s.mu.Lock()
	sum, most := 0, 0
	for _, c := range s.byID {
		n := c.QueueLen()
		sum += n
		most = max(most, n)
	}
	s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(m.queued, prometheus.GaugeValue, float64(sum))
	ch <- prometheus.MustNewConstMetric(m.queuedMax, prometheus.GaugeValue, float64(most))
	ch <- prometheus.MustNewConstMetric(m.redirected, prometheus.CounterValue, float64(s.Stats.Redirects.Load()))
}

// Collector returns the Server's metrics, for a prometheus.Registry
// (docs/operations.md).
func (s *Server) Collector() prometheus.Collector { return s.metrics }
