package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/admin"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/sqlite"
)

func start(t *testing.T, ready func(context.Context) error) (*httptest.Server, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "imx.db"), sqlite.Options{Password: store.PasswordParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(admin.New(admin.Config{Accounts: st, Domains: []string{"alpha.example"}, Ready: ready,
		Federation: func() any { return []string{"conn 1"} }}))
	t.Cleanup(srv.Close)
	return srv, st
}

func do(t *testing.T, srv *httptest.Server, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestUsers(t *testing.T) {
	srv, st := start(t, nil)
	if code, _ := do(t, srv, "POST", "/api/v1/users", map[string]string{"address": "Alice@alpha.example", "password": "correct horse"}); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	if err := st.Authenticate(context.Background(), addr.MustParse("alice@alpha.example"), "correct horse"); err != nil {
		t.Fatalf("the created user cannot log in: %v", err)
	}
	if code, out := do(t, srv, "POST", "/api/v1/users", map[string]string{"address": "alice@alpha.example", "password": "another one"}); code != http.StatusConflict {
		t.Errorf("create twice: %d %v", code, out)
	}
	for _, bad := range []map[string]string{
		{"address": "bob@beta.example", "password": "long enough"},
		{"address": "not an address", "password": "long enough"},
		{"address": "bob@alpha.example", "password": "short"},
	} {
		if code, _ := do(t, srv, "POST", "/api/v1/users", bad); code != http.StatusBadRequest {
			t.Errorf("create %v: %d, want 400", bad, code)
		}
	}
	if code, out := do(t, srv, "GET", "/api/v1/users", nil); code != 200 || len(out["users"].([]any)) != 1 {
		t.Errorf("list: %d %v", code, out)
	}
	if code, _ := do(t, srv, "PUT", "/api/v1/users/alice@alpha.example/password", map[string]string{"password": "battery staple"}); code != http.StatusNoContent {
		t.Errorf("passwd: %d", code)
	}
	if err := st.Authenticate(context.Background(), addr.MustParse("alice@alpha.example"), "battery staple"); err != nil {
		t.Errorf("new password refused: %v", err)
	}
	if code, _ := do(t, srv, "DELETE", "/api/v1/users/alice@alpha.example", nil); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := do(t, srv, "DELETE", "/api/v1/users/alice@alpha.example", nil); code != http.StatusNotFound {
		t.Errorf("delete twice: %d", code)
	}
	if code, _ := do(t, srv, "GET", "/api/v1/federation", nil); code != 200 {
		t.Errorf("federation: %d", code)
	}
}

func TestHealth(t *testing.T) {
	var readyErr error
	srv, _ := start(t, func(context.Context) error { return readyErr })
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		if code, _ := do(t, srv, "GET", path, nil); code != want {
			t.Errorf("%s: %d", path, code)
		}
	}
	readyErr = errors.New("store down")
	if code, _ := do(t, srv, "GET", "/readyz", nil); code != http.StatusServiceUnavailable {
		t.Errorf("readyz when not ready: %d", code)
	}
}

// TestPprof: the profiles are served only when Pprof is set.
func TestPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		srv := httptest.NewServer(admin.New(admin.Config{Domains: []string{"alpha.example"}, Pprof: on}))
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap?debug=1"} {
			resp, err := srv.Client().Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case on && (resp.StatusCode != http.StatusOK || len(b) == 0):
				t.Errorf("pprof on: GET %s = %d, %d bytes", path, resp.StatusCode, len(b))
			case !on && resp.StatusCode != http.StatusNotFound:
				t.Errorf("pprof off: GET %s = %d, want 404", path, resp.StatusCode)
			}
		}
		srv.Close()
	}
}
