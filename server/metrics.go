package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imxproject/imx/internal/link"
	"github.com/imxproject/imx/wire"
)

// outboxTimeout bounds the store query behind imx_outbox_messages, so that
// a busy store does not hold up a scrape.
const outboxTimeout = time.Second

// frameCounters count the frames of the server connections and of the
// client connections, by record type.
type frameCounters struct {
	server, client link.FrameCounter
}

// newMetrics returns the handler of /metrics: a registry of this server's
// own (never the process-wide default one) with the Go and process
// collectors, the metrics of s2s and the router, and those read from c2s,
// the connections' frame counters and the store at scrape time. The names
// are documented in docs/operations.md.
func (s *Server) newMetrics() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.collectors()...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogErrorLog{s},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// collectors are the collectors of the /metrics registry.
func (s *Server) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.s2s.Collector(),
		s.router.Collector(),
		&scrape{s: s},
	}
}

// slogErrorLog logs the errors of a scrape.
type slogErrorLog struct{ s *Server }

func (l slogErrorLog) Println(v ...any) { l.s.log.Warn("metrics", "err", v) }

var (
	clientConnsDesc = prometheus.NewDesc("imx_client_connections",
		"Open client connections (WebSockets), logged in or not.", nil, nil)
	clientSessionsDesc = prometheus.NewDesc("imx_client_sessions",
		"Logged-in client sessions.", nil, nil)
	clientLoginsDesc = prometheus.NewDesc("imx_client_logins_total",
		"Client LOGINs, by result (ok or failed).", []string{"result"}, nil)
	framesDesc = prometheus.NewDesc("imx_frames_total",
		"Frames read and written, by connection kind (server or client), direction (in or out) and record type.",
		[]string{"kind", "direction", "type"}, nil)
	outboxDesc = prometheus.NewDesc("imx_outbox_messages",
		"Messages to other domains in the outbox, waiting for their final result.", nil, nil)
	claimLookupsDesc = prometheus.NewDesc("imx_store_claim_lookups_total",
		"Look-ups of a received message's id, by what answered: the claims filter (a new id) or a read of the table.",
		[]string{"answer"}, nil)
	claimFilterBytesDesc = prometheus.NewDesc("imx_store_claims_filter_bytes",
		"Memory of the claims filter, all generations.", nil, nil)
	claimFilterGensDesc = prometheus.NewDesc("imx_store_claims_filter_generations",
		"Generations of the claims filter.", nil, nil)
	commitsDesc = prometheus.NewDesc("imx_store_commits_total",
		"Transactions of the store's group commit.", nil, nil)
	commitWritesDesc = prometheus.NewDesc("imx_store_commit_writes_total",
		"Writes run by the store's group commit; divided by imx_store_commits_total, the mean batch.", nil, nil)
)

// scrape collects what is read at scrape time.
type scrape struct{ s *Server }

func (c *scrape) Describe(ch chan<- *prometheus.Desc) {
	ch <- clientConnsDesc
	ch <- clientSessionsDesc
	ch <- clientLoginsDesc
	ch <- framesDesc
	ch <- outboxDesc
	ch <- claimLookupsDesc
	ch <- claimFilterBytesDesc
	ch <- claimFilterGensDesc
	ch <- commitsDesc
	ch <- commitWritesDesc
}

func (c *scrape) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	st := &s.c2s.Stats
	ch <- prometheus.MustNewConstMetric(clientConnsDesc, prometheus.GaugeValue, float64(st.Conns.Load()))
	ch <- prometheus.MustNewConstMetric(clientSessionsDesc, prometheus.GaugeValue, float64(st.Sessions.Load()))
	ch <- prometheus.MustNewConstMetric(clientLoginsDesc, prometheus.CounterValue, float64(st.Logins.Load()), "ok")
	ch <- prometheus.MustNewConstMetric(clientLoginsDesc, prometheus.CounterValue, float64(st.LoginFailures.Load()), "failed")
	for kind, f := range map[string]*link.FrameCounter{"server": &s.frames.server, "client": &s.frames.client} {
		f.Each(func(t wire.Type, known bool, in, out uint64) {
			name := "other"
			if known {
				name = t.String()
			}
			ch <- prometheus.MustNewConstMetric(framesDesc, prometheus.CounterValue, float64(in), kind, "in", name)
			ch <- prometheus.MustNewConstMetric(framesDesc, prometheus.CounterValue, float64(out), kind, "out", name)
		})
	}
	ss := &s.store.Stats
	lookups, reads := ss.ClaimLookups.Load(), ss.ClaimReads.Load()
	ch <- prometheus.MustNewConstMetric(claimLookupsDesc, prometheus.CounterValue, float64(lookups-reads), "filter")
	ch <- prometheus.MustNewConstMetric(claimLookupsDesc, prometheus.CounterValue, float64(reads), "table")
	bytes, gens := s.store.ClaimFilterSize()
	ch <- prometheus.MustNewConstMetric(claimFilterBytesDesc, prometheus.GaugeValue, float64(bytes))
	ch <- prometheus.MustNewConstMetric(claimFilterGensDesc, prometheus.GaugeValue, float64(gens))
	ch <- prometheus.MustNewConstMetric(commitsDesc, prometheus.CounterValue, float64(ss.Commits.Load()))
	ch <- prometheus.MustNewConstMetric(commitWritesDesc, prometheus.CounterValue, float64(ss.Writes.Load()))
	ctx, cancel := context.WithTimeout(context.Background(), outboxTimeout)
	defer cancel()
	n, err := s.store.CountOutbox(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(n))
}
