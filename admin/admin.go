// Package admin is imxd's admin API: account management, federation
// diagnostics, health and readiness, over HTTP with JSON bodies. It has no
// authentication of its own, so it listens on a loopback address only
// (config checks that); whoever can reach it administers the server.
//
// Endpoints:
//
//	GET    /healthz                          200 while the process runs
//	GET    /readyz                           200 when listening and the store answers, else 503
//	GET    /api/v1/users?domain=D            {"users": ["a@d", …]}
//	POST   /api/v1/users                     {"address": "a@d", "password": "…"} → 201
//	DELETE /api/v1/users/{address}           204
//	PUT    /api/v1/users/{address}/password  {"password": "…"} → 204
//	GET    /api/v1/federation                the server connections and their authenticated pairs
//	GET    /metrics                          Prometheus metrics (docs/operations.md), when Config.Metrics is set
//
// Errors are {"error": "…"} with 400 (bad input), 404 (no such user), 409
// (user exists) or 500.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// Accounts is what admin needs of the store (store.Accounts has it).
type Accounts interface {
	CreateAccount(ctx context.Context, a addr.Address, password string) error
	SetPassword(ctx context.Context, a addr.Address, password string) error
	DeleteAccount(ctx context.Context, a addr.Address) error
	ListAccounts(ctx context.Context, domain, after string, limit int) ([]addr.Address, error)
}

// Config configures the admin API.
type Config struct {
	Accounts Accounts
	// Domains are the domains served; users of other domains are refused.
	Domains []string
	// Ready reports whether the server is ready to serve (listeners up,
	// store reachable); nil means always.
	Ready func(ctx context.Context) error
	// Federation returns a JSON-encodable view of the server connections;
	// nil omits the endpoint.
	Federation func() any
	// Disconnect, if set, ends the sessions of a user whose password was
	// changed or whose account was deleted.
	Disconnect func(user addr.Address)
	// Metrics, if set, serves GET /metrics (the Prometheus exposition).
	Metrics http.Handler
	// Pprof serves net/http/pprof's profiles at /debug/pprof/.
	Pprof  bool
	Logger *slog.Logger
}

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// New returns the admin API handler.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{cfg: cfg, log: cfg.Logger.With("component", "admin")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", a.ready)
	mux.HandleFunc("GET /api/v1/users", a.listUsers)
	mux.HandleFunc("POST /api/v1/users", a.createUser)
	mux.HandleFunc("DELETE /api/v1/users/{address}", a.deleteUser)
	mux.HandleFunc("PUT /api/v1/users/{address}/password", a.setPassword)
	if cfg.Federation != nil {
		mux.HandleFunc("GET /api/v1/federation", func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK, cfg.Federation()) })
	}
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

type api struct {
	cfg Config
	log *slog.Logger
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	reply(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// storeError answers a store error with its status.
func (a *api) storeError(w http.ResponseWriter, op string, user addr.Address, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail(w, http.StatusNotFound, "no such user: %s", user)
	case errors.Is(err, store.ErrExists):
		fail(w, http.StatusConflict, "user exists: %s", user)
	case errors.Is(err, store.ErrInvalid):
		fail(w, http.StatusBadRequest, "%v", err)
	default:
		a.log.Error(op+" failed", "user", user.String(), "err", err)
		fail(w, http.StatusInternalServerError, "%s failed", op)
	}
}

func (a *api) ready(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(r.Context()); err != nil {
			fail(w, http.StatusServiceUnavailable, "not ready: %v", err)
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

// user parses an address of a local domain.
func (a *api) user(w http.ResponseWriter, s string) (addr.Address, bool) {
	u, err := addr.Parse(s)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return addr.Address{}, false
	}
	if !slices.Contains(a.cfg.Domains, u.Domain()) {
		fail(w, http.StatusBadRequest, "domain %s is not served here (serving %s)", u.Domain(), strings.Join(a.cfg.Domains, ", "))
		return addr.Address{}, false
	}
	return u, true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	return true
}

func checkPassword(w http.ResponseWriter, p string) bool {
	if len(p) < MinPasswordLen {
		fail(w, http.StatusBadRequest, "password shorter than %d characters", MinPasswordLen)
		return false
	}
	return true
}

func (a *api) listUsers(w http.ResponseWriter, r *http.Request) {
	domains := a.cfg.Domains
	if d := r.URL.Query().Get("domain"); d != "" {
		if !slices.Contains(a.cfg.Domains, d) {
			fail(w, http.StatusBadRequest, "domain %s is not served here", d)
			return
		}
		domains = []string{d}
	}
	users := []string{}
	for _, d := range domains {
		list, err := a.cfg.Accounts.ListAccounts(r.Context(), d, "", 0)
		if err != nil {
			a.log.Error("list users failed", "domain", d, "err", err)
			fail(w, http.StatusInternalServerError, "list failed")
			return
		}
		for _, u := range list {
			users = append(users, u.String())
		}
	}
	reply(w, http.StatusOK, map[string][]string{"users": users})
}

func (a *api) createUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Address  string `json:"address"`
		Password string `json:"password"`
	}
	if !decode(w, r, &body) {
		return
	}
	u, ok := a.user(w, body.Address)
	if !ok || !checkPassword(w, body.Password) {
		return
	}
	if err := a.cfg.Accounts.CreateAccount(r.Context(), u, body.Password); err != nil {
		a.storeError(w, "create user", u, err)
		return
	}
	a.log.Info("user created", "user", u.String())
	reply(w, http.StatusCreated, map[string]string{"address": u.String()})
}

func (a *api) deleteUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r.PathValue("address"))
	if !ok {
		return
	}
	if err := a.cfg.Accounts.DeleteAccount(r.Context(), u); err != nil {
		a.storeError(w, "delete user", u, err)
		return
	}
	if a.cfg.Disconnect != nil {
		a.cfg.Disconnect(u)
	}
	a.log.Info("user deleted", "user", u.String())
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) setPassword(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r.PathValue("address"))
	if !ok {
		return
	}
	var body struct {
		Password string `json:"password"`
	}
	if !decode(w, r, &body) || !checkPassword(w, body.Password) {
		return
	}
	if err := a.cfg.Accounts.SetPassword(r.Context(), u, body.Password); err != nil {
		a.storeError(w, "set password", u, err)
		return
	}
	if a.cfg.Disconnect != nil {
		a.cfg.Disconnect(u)
	}
	a.log.Info("password changed", "user", u.String())
	w.WriteHeader(http.StatusNoContent)
}
