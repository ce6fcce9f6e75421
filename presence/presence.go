// Package presence keeps contact lists, approvals, block lists and presence
// subscriptions, and fans presence out to the watchers a user approved
// (docs/design/001-presence.md, draft-aol-imx-00 §4.5, §4.6, §6.2.2.1).
//
// # Roles
//
// The same Service is the watcher's server (contacts, subs_out, renewal,
// incoming NOTIFY) and the presentity's server (approvals, blocks, subs_in,
// outgoing NOTIFY). Between two domains served here the records go by direct
// call; to any other domain they go through Remote (s2s).
//
// # Privacy
//
// A SUBSCRIBE is answered ok (with presence) only for an approved watcher,
// pending while the presentity has not decided, and refused when the
// watcher is denied or blocked. A SUBSCRIBE for a user that does not exist is
// answered pending, exactly as for a user who has not decided yet, and leaves
// nothing behind: whether a user exists is never told to someone the user has
// not approved. UserAttrs gives the user attributes (alias, presence,
// status, capabilities, max-message-length) only to approved watchers and
// to the user, and they ride along (§4.6.1) only on NOTIFYs and on
// messages to approved watchers (attrs.go).
//
// # Pre-approval
//
// Putting an address in one's contact list approves it as a watcher, unless
// it was denied explicitly: adding a contact approves a pending request from
// it, and a SUBSCRIBE from an address in the presentity's contact list is
// approved without asking (mutual approval, design step 4).
//
// # Presence
//
// Presence lives in memory: a user with no session is offline; the first
// session makes the user online unless the user set a presence before it.
// A change goes to every active, live subs_in row of the user: one NOTIFY per
// watcher domain, sent in the background and coalesced per (presentity,
// domain), so that a burst of changes sends only the latest state.
//
// # Retries
//
// A SUBSCRIBE that gets no answer, or a temporary failure, is sent again
// while its watcher stays online: RetryMin (30 s) after the first failure,
// the delay doubling up to RetryMax (10 min), with a jitter of ±10%. The
// sweep drives the retries with the injectable clock; they stop when the
// watcher goes offline, the contact is removed, or an answer comes.
package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// Store is what presence keeps on disk (store.Store has it).
type Store interface {
	AccountExists(ctx context.Context, a addr.Address) (bool, error)

	PutContact(ctx context.Context, c store.Contact) error
	SetContactState(ctx context.Context, owner, contact addr.Address, state store.ContactState) error
	DeleteContact(ctx context.Context, owner, contact addr.Address) error
	GetContact(ctx context.Context, owner, contact addr.Address) (store.Contact, error)
	ListContacts(ctx context.Context, owner addr.Address) ([]store.Contact, error)

	SetApproval(ctx context.Context, a store.Approval) error
	RequestApproval(ctx context.Context, presentity, watcher addr.Address, asked time.Time) (store.Approval, bool, error)
	GetApproval(ctx context.Context, presentity, watcher addr.Address) (store.Approval, error)
	DeleteApproval(ctx context.Context, presentity, watcher addr.Address) error
	ListApprovals(ctx context.Context, presentity addr.Address, state store.ApprovalState) ([]store.Approval, error)

	AddBlock(ctx context.Context, owner addr.Address, pattern string) error
	RemoveBlock(ctx context.Context, owner addr.Address, pattern string) error
	IsBlocked(ctx context.Context, owner, a addr.Address) (bool, error)

	PutSubIn(ctx context.Context, s store.SubIn) error
	SetSubInActive(ctx context.Context, presentity, watcher addr.Address, active bool) error
	GetSubIn(ctx context.Context, presentity, watcher addr.Address) (store.SubIn, error)
	DeleteSubIn(ctx context.Context, presentity, watcher addr.Address) error
	ActiveSubsIn(ctx context.Context, presentity addr.Address, now time.Time) ([]store.SubIn, error)
	PruneSubsIn(ctx context.Context, now time.Time) (int, error)

	PutSubOut(ctx context.Context, s store.SubOut) error
	GetSubOut(ctx context.Context, watcher, presentity addr.Address) (store.SubOut, error)
	DeleteSubOut(ctx context.Context, watcher, presentity addr.Address) error
	ListSubsOut(ctx context.Context, watcher addr.Address) ([]store.SubOut, error)
	SubsOutTo(ctx context.Context, presentity addr.Address, watchers []addr.Address) ([]store.SubOut, error)
	DueSubsOut(ctx context.Context, now time.Time, limit int) ([]store.SubOut, error)

	SetUserAttr(ctx context.Context, owner addr.Address, name, value string) error
	GetUserAttrs(ctx context.Context, owner addr.Address) ([]wire.Attr, error)
}

// Remote sends requests to other domains (s2s implements it).
type Remote interface {
	Request(ctx context.Context, local, remote string, rec wire.Record) (wire.Record, error)
}

// Local pushes a record to every session of a local user (c2s implements
// it): a NOTIFY with a contact's presence, a REQUEST for a pending approval.
// It returns the number of sessions reached.
type Local interface {
	Push(ctx context.Context, user addr.Address, rec wire.Record) int
}

// Policy is what a local domain decides about presence.
type Policy struct {
	// SubscriptionTimeout is the longest subscription granted, and the
	// expiry this domain asks for; zero means DefaultSubscriptionTimeout.
	SubscriptionTimeout time.Duration
	// MaxMessageSize is the domain's max-message-size, the bound of its
	// users' max-message-length; zero means DefaultMaxMessageSize.
	MaxMessageSize int
}

// DefaultSubscriptionTimeout is the subscription timeout of a domain whose
// policy sets none (docs/protocol.md §5.15).
const DefaultSubscriptionTimeout = 1800 * time.Second

// Config configures a Service.
type Config struct {
	Domains map[string]Policy // the local domains and their policies
	Store   Store
	Remote  Remote // nil: only the local domains are reachable
	Local   Local
	// Capabilities, if set, returns the capabilities that the live
	// sessions of a local user declared (the union, sorted).
	Capabilities func(user addr.Address) []string
	// AttrCacheSize bounds the addresses of other domains whose
	// attributes that rode along are cached; zero means
	// DefaultAttrCacheSize.
	AttrCacheSize int
	// Now is the clock; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// RenewEvery is the period of the renewal and expiry sweep of Run, and
	// the delay before a failed renewal is tried again; zero is a minute,
	// or a tenth of the shortest SubscriptionTimeout of the domains if
	// that is less, so that a renewal due at 80% of a grant is sent well
	// before the grant lapses.
	RenewEvery time.Duration
	// RetryMin and RetryMax bound the back-off of the SUBSCRIBE sent again
	// for a contact whose domain could not be reached, while its owner
	// stays online: RetryMin after the first failure, doubling up to
	// RetryMax, each less or more a jitter of up to 10%. Zero means
	// DefaultRetryMin and DefaultRetryMax. Run sweeps at least every
	// RetryMin.
	RetryMin, RetryMax time.Duration
}

// The back-off of the retries of an unreachable contact (Config.RetryMin,
// Config.RetryMax): 30 s, 1 min, 2 min, 4 min, 8 min, then every 10 min.
const (
	DefaultRetryMin = 30 * time.Second
	DefaultRetryMax = 10 * time.Minute
)

// Attribute names and values this package reads or sets.
const (
	AttrSubscription   = "subscription" // "denied" on the NOTIFY of a denial
	SubscriptionDenied = "denied"
)

const (
	// maxWatchersPerNotify bounds the watchers of one NOTIFY, so that the
	// frame stays far below any receiver's frame limit.
	maxWatchersPerNotify = 1000
	// sweepBatch and sweepRounds bound the due subscriptions one sweep takes.
	sweepBatch  = 500
	sweepRounds = 100
	// sweepWorkers bounds the renewals in flight at once.
	sweepWorkers = 16
)

// userState is the in-memory presence of a local user.
type userState struct {
	sessions int
	presence wire.Presence
	status   string
	set      bool // the user chose presence and status (PRESENCE-SET)
}

// cached is the last presence received for a presentity of another domain.
type cached struct {
	presence wire.Presence
	status   string
}

type fanKey struct {
	presentity addr.Address
	domain     string
}

// flight is a NOTIFY being sent to one domain; next is the one to send
// after it, the latest state, if presence changed meanwhile.
type flight struct{ next *wire.Notify }

// Service is the presence logic of a server.
type Service struct {
	cfg  Config
	log  *slog.Logger
	base context.Context // background work; cancelled when Run returns
	stop context.CancelFunc

	attrs *attrCache // what rode along from other domains; locked on its own

	mu      sync.Mutex
	users   map[addr.Address]*userState
	cache   map[addr.Address]cached
	flights map[fanKey]*flight
	busy    int // background tasks in flight
	// retries: owner → contact → the next SUBSCRIBE to an unreachable
	// contact (retryLater).
	retries map[addr.Address]map[addr.Address]*retry
	idle    *sync.Cond
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case len(cfg.Domains) == 0:
		return nil, errors.New("presence: no local domains")
	case cfg.Store == nil || cfg.Local == nil:
		return nil, errors.New("presence: Store and Local are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RenewEvery <= 0 {
		cfg.RenewEvery = time.Minute
		for _, p := range cfg.Domains {
			if t := p.SubscriptionTimeout; t > 0 {
				cfg.RenewEvery = min(cfg.RenewEvery, max(t/10, time.Second))
			}
		}
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryMin)
	base, stop := context.WithCancel(context.Background())
	s := &Service{
		cfg: cfg, log: cfg.Logger.With("component", "presence"), base: base, stop: stop,
		users: map[addr.Address]*userState{}, cache: map[addr.Address]cached{}, flights: map[fanKey]*flight{},
		retries: map[addr.Address]map[addr.Address]*retry{},
	}
	s.attrs = newAttrCache(cfg.AttrCacheSize)
	s.idle = sync.NewCond(&s.mu)
	return s, nil
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// IsLocal reports whether domain is served here.
func (s *Service) IsLocal(domain string) bool {
	_, ok := s.cfg.Domains[domain]
	return ok
}

// timeout is the subscription timeout of a local domain, in seconds.
func (s *Service) timeout(domain string) uint32 {
	d := s.cfg.Domains[domain].SubscriptionTimeout
	if d <= 0 {
		d = DefaultSubscriptionTimeout
	}
	return uint32(max(d/time.Second, 1))
}

// Run renews the subscriptions held for local watchers, drops the expired
// ones and retries the unreachable contacts of online users, every
// RenewEvery or RetryMin, whichever is shorter, until ctx ends. When it returns, the
// background sends are cancelled and have ended.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		s.stop()
		s.Wait()
	}()
	t := time.NewTicker(min(s.cfg.RenewEvery, s.cfg.RetryMin))
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("presence sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Wait blocks until the background work started so far (NOTIFYs to other
// domains, subscriptions made at login) has ended.
func (s *Service) Wait() {
	s.mu.Lock()
	for s.busy > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
}

// async runs fn in the background, on the Service's context.
func (s *Service) async(fn func(ctx context.Context)) {
	s.mu.Lock()
	s.busy++
	s.mu.Unlock()
	go func() {
		defer s.done()
		fn(s.base)
	}()
}

func (s *Service) done() {
	s.mu.Lock()
	s.busy--
	if s.busy == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// request sends rec from the local domain from to the domain to: by direct
// call if to is served here, through Remote otherwise.
func (s *Service) request(ctx context.Context, from, to string, rec wire.Record) (*wire.Result, error) {
	if s.IsLocal(to) {
		switch r := rec.(type) {
		case *wire.Subscribe:
			return s.HandleSubscribe(ctx, from, r), nil
		case *wire.Unsubscribe:
			return s.HandleUnsubscribe(ctx, from, r), nil
		case *wire.Notify:
			return s.HandleNotify(ctx, from, r), nil
		}
		return nil, fmt.Errorf("presence: cannot route %s", rec.Type())
	}
	if s.cfg.Remote == nil {
		return nil, wire.StatusUnreachable
	}
	resp, err := s.cfg.Remote.Request(ctx, from, to, rec)
	if err != nil {
		return nil, err
	}
	res, ok := resp.(*wire.Result)
	if !ok {
		return nil, fmt.Errorf("presence: unexpected answer %s to %s", resp.Type(), rec.Type())
	}
	return res, nil
}

// failure is the status of a request that got no answer.
func failure(err error) wire.Status {
	var st wire.Status
	if errors.As(err, &st) && !st.Success() {
		return st
	}
	return wire.StatusUnreachable
}

// current returns the presence and status of a local user as watchers see
// them.
func (s *Service) current(user addr.Address) (wire.Presence, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return effective(s.users[user])
}

func effective(u *userState) (wire.Presence, string) {
	if u == nil || u.sessions == 0 {
		return wire.PresenceOffline, ""
	}
	return u.presence, u.status
}

// sessions reports how many sessions a local user has.
func (s *Service) sessions(user addr.Address) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[user]; u != nil {
		return u.sessions
	}
	return 0
}

// pushNotify shows a presentity's presence to the sessions of a local
// watcher.
func (s *Service) pushNotify(ctx context.Context, watcher, presentity addr.Address, p wire.Presence, status string, attrs []wire.Attr) {
	s.cfg.Local.Push(ctx, watcher, &wire.Notify{
		Presentity: presentity.String(), Watchers: []string{watcher.String()},
		Presence: p, Status: status, Attrs: slices.Clone(attrs),
	})
}

func deniedAttrs() []wire.Attr {
	return []wire.Attr{{Name: AttrSubscription, Value: SubscriptionDenied}}
}

func hasAttr(attrs []wire.Attr, name, value string) bool {
	for _, a := range attrs {
		if a.Name == name && a.Value == value {
			return true
		}
	}
	return false
}

func status(code wire.Status, text string) *wire.Result {
	return &wire.Result{Code: code, Text: text}
}
