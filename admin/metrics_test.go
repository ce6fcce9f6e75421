package admin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/imxproject/imx/admin"
)

// TestMetricsEndpoint: /metrics serves Config.Metrics, and is absent
// without it.
func TestMetricsEndpoint(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "imx_test 1\n") })
	for _, tc := range []struct {
		metrics http.Handler
		code    int
		body    string
	}{{metrics, http.StatusOK, "imx_test 1\n"}, {nil, http.StatusNotFound, ""}} {
		srv := httptest.NewServer(admin.New(admin.Config{Domains: []string{"alpha.example"}, Metrics: tc.metrics}))
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			srv.Close()
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tc.code || (tc.body != "" && string(b) != tc.body) {
			t.Errorf("metrics %v: GET /metrics = %d %q, want %d %q", tc.metrics != nil, resp.StatusCode, b, tc.code, tc.body)
		}
	}
}
