package presence

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/sqlite"
	"github.com/imxproject/imx/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	alphaDomain = "alpha.example"
	betaDomain  = "beta.example"
)

var (
	alice   = addr.MustParse("alice@alpha.example")
	carol   = addr.MustParse("carol@alpha.example")
	mallory = addr.MustParse("mallory@alpha.example")
	bob     = addr.MustParse("bob@beta.example")
	ghost   = addr.MustParse("ghost@beta.example")
)

// clock is the injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fed connects Services as s2s would after authorizing: each record is
// encoded and parsed, then handed to the receiving Service.
type fed struct {
	mu    sync.Mutex
	svcs  map[string]*Service
	calls map[wire.Type]int
	sent  []*wire.Notify
	hook  func(local, remote string, rec wire.Record) // before delivery
}

func newFed() *fed { return &fed{svcs: map[string]*Service{}, calls: map[wire.Type]int{}} }

func (f *fed) Request(ctx context.Context, local, remote string, rec wire.Record) (wire.Record, error) {
	switch r := rec.(type) { // as s2s sets the tag of a request
	case *wire.Subscribe:
		r.Tag = 1
	case *wire.Unsubscribe:
		r.Tag = 1
	case *wire.Notify:
		r.Tag = 1
	}
	b, err := rec.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	in, err := wire.Parse(b)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.calls[in.Type()]++
	if n, ok := in.(*wire.Notify); ok {
		f.sent = append(f.sent, n)
	}
	svc, hook := f.svcs[remote], f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(local, remote, in)
	}
	if svc == nil {
		return nil, wire.StatusUnreachable
	}
	var res *wire.Result
	switch r := in.(type) {
	case *wire.Subscribe:
		res = svc.HandleSubscribe(ctx, local, r)
	case *wire.Unsubscribe:
		res = svc.HandleUnsubscribe(ctx, local, r)
	case *wire.Notify:
		res = svc.HandleNotify(ctx, local, r)
	default:
		return nil, wire.StatusUnsupported
	}
	res.Tag, res.Flags = 1, wire.FlagResponse
	b, err = res.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	return wire.Parse(b)
}

func (f *fed) count(t wire.Type) int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls[t] }
func (f *fed) reset() {
	f.mu.Lock()
	clear(f.calls)
	f.sent = nil
	f.mu.Unlock()
}
func (f *fed) set(domain string, s *Service) { f.mu.Lock(); f.svcs[domain] = s; f.mu.Unlock() }

// sessions is Local: it counts sessions per user and keeps what was pushed.
type sessions struct {
	mu  sync.Mutex
	n   map[addr.Address]int
	got map[addr.Address][]wire.Record
}

func newSessions() *sessions {
	return &sessions{n: map[addr.Address]int{}, got: map[addr.Address][]wire.Record{}}
}

func (l *sessions) Push(ctx context.Context, user addr.Address, rec wire.Record) int {
	if _, err := rec.AppendBinary(nil); err != nil {
		panic(fmt.Sprintf("invalid record pushed: %v", err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.n[user]
	if n > 0 {
		l.got[user] = append(l.got[user], rec)
	}
	return n
}

// take returns and forgets what was pushed to user.
func (l *sessions) take(user addr.Address) []wire.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.got[user]
	delete(l.got, user)
	return r
}

// node is one server: a store, a Service, its sessions.
type node struct {
	t      testing.TB
	domain string
	path   string
	st     *sqlite.Store
	svc    *Service
	local  *sessions
	policy Policy
	clock  *clock
	fed    *fed
}

func newNode(t testing.TB, domain string, policy Policy, c *clock, f *fed, users ...addr.Address) *node {
	t.Helper()
	n := &node{t: t, domain: domain, path: filepath.Join(t.TempDir(), "imx.db"), local: newSessions(), policy: policy, clock: c, fed: f}
	n.open()
	for _, u := range users {
		if err := n.st.CreateAccount(context.Background(), u, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { n.svc.Wait(); n.st.Close() })
	return n
}

func (n *node) open() {
	st, err := sqlite.Open(context.Background(), n.path, sqlite.Options{Password: store.PasswordParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		n.t.Fatal(err)
	}
	n.st = st
	cfg := Config{Domains: map[string]Policy{n.domain: n.policy}, Store: st, Local: n.local, Now: n.clock.Now}
	if n.fed != nil {
		cfg.Remote = n.fed
	}
	svc, err := New(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.svc = svc
	if n.fed != nil {
		n.fed.set(n.domain, svc)
	}
}

// restart drops the Service and its memory, and opens the store again.
func (n *node) restart() {
	n.svc.Wait()
	n.st.Close()
	n.local = newSessions()
	n.open()
}

func (n *node) login(u addr.Address) {
	n.local.mu.Lock()
	n.local.n[u]++
	k := n.local.n[u]
	n.local.mu.Unlock()
	n.svc.SessionsChanged(context.Background(), u, k)
	n.svc.LoggedIn(context.Background(), u)
	n.svc.Wait()
}

func (n *node) logout(u addr.Address) {
	n.local.mu.Lock()
	n.local.n[u] = 0
	n.local.mu.Unlock()
	n.svc.SessionsChanged(context.Background(), u, 0)
}

func (n *node) contact(owner, c addr.Address) store.Contact {
	n.t.Helper()
	got, err := n.st.GetContact(context.Background(), owner, c)
	if err != nil {
		n.t.Fatalf("contact %s of %s: %v", c, owner, err)
	}
	return got
}

// pair is two domains, alpha (alice, carol, mallory) and beta (bob).
type pair struct {
	clock       *clock
	fed         *fed
	alpha, beta *node
}

func newPair(t testing.TB) *pair {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFed()
	return &pair{
		clock: c, fed: f,
		alpha: newNode(t, alphaDomain, Policy{SubscriptionTimeout: 30 * time.Minute}, c, f, alice, carol, mallory),
		beta:  newNode(t, betaDomain, Policy{SubscriptionTimeout: 10 * time.Minute}, c, f, bob),
	}
}

// notifies returns the NOTIFYs among recs.
func notifies(recs []wire.Record) []*wire.Notify {
	var out []*wire.Notify
	for _, r := range recs {
		if n, ok := r.(*wire.Notify); ok {
			out = append(out, n)
		}
	}
	return out
}

func lastNotify(t *testing.T, recs []wire.Record, presentity addr.Address) *wire.Notify {
	t.Helper()
	ns := notifies(recs)
	for i := len(ns) - 1; i >= 0; i-- {
		if ns[i].Presentity == presentity.String() {
			return ns[i]
		}
	}
	t.Fatalf("no NOTIFY for %s in %v", presentity, recs)
	return nil
}

var ctx = context.Background()

func TestAddPendingApproveNotify(t *testing.T) {
	p := newPair(t)
	p.alpha.login(alice)
	if got := p.alpha.svc.AddContact(ctx, alice, bob, "Bob"); got != wire.StatusPending {
		t.Fatalf("AddContact = %v, want pending", got)
	}
	if c := p.alpha.contact(alice, bob); c.State != store.ContactAsked || c.Alias != "Bob" {
		t.Fatalf("contact = %+v", c)
	}
	sub, err := p.beta.st.GetSubIn(ctx, bob, alice)
	if err != nil || sub.Active {
		t.Fatalf("subs_in = %+v, %v; want inactive", sub, err)
	}
	// bob was offline: the request waits, and shows at login.
	p.beta.login(bob)
	recs := p.beta.local.take(bob)
	if len(recs) != 1 || recs[0].(*wire.Request).Watcher != alice.String() {
		t.Fatalf("bob got %v, want one REQUEST from alice", recs)
	}
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceBusy, "meeting")
	p.beta.svc.Wait()
	if got := notifies(p.alpha.local.take(alice)); len(got) != 0 {
		t.Fatalf("unapproved alice got %v", got)
	}

	if got := p.beta.svc.Approve(ctx, bob, alice, true); got != wire.StatusOK {
		t.Fatalf("Approve = %v", got)
	}
	n := lastNotify(t, p.alpha.local.take(alice), bob)
	if n.Presence != wire.PresenceBusy || n.Status != "meeting" || len(n.Watchers) != 1 || n.Watchers[0] != alice.String() {
		t.Fatalf("alice got %+v", n)
	}
	if c := p.alpha.contact(alice, bob); c.State != store.ContactApproved {
		t.Fatalf("contact state = %v, want approved", c.State)
	}
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceAway, "lunch")
	p.beta.svc.Wait()
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceAway || n.Status != "lunch" {
		t.Fatalf("alice got %+v", n)
	}
	attrs := p.beta.svc.UserAttrs(ctx, alice.String(), bob, nil)
	if len(attrs) != 3 || attrs[0] != (wire.Attr{Name: "presence", Value: "away"}) || attrs[1] != (wire.Attr{Name: "status", Value: "lunch"}) ||
		attrs[2] != (wire.Attr{Name: "max-message-length", Value: "65536"}) {
		t.Fatalf("UserAttrs for approved alice = %v", attrs)
	}
	// bob goes: alice sees him offline.
	p.beta.logout(bob)
	p.beta.svc.Wait()
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceOffline {
		t.Fatalf("alice got %+v", n)
	}
	// Removing the contact unsubscribes.
	if got := p.alpha.svc.RemoveContact(ctx, alice, bob); got != wire.StatusOK {
		t.Fatalf("RemoveContact = %v", got)
	}
	if _, err := p.beta.st.GetSubIn(ctx, bob, alice); err == nil {
		t.Fatal("subs_in kept after UNSUBSCRIBE")
	}
	if _, err := p.alpha.st.GetSubOut(ctx, alice, bob); err == nil {
		t.Fatal("subs_out kept after RemoveContact")
	}
}

func TestDeny(t *testing.T) {
	p := newPair(t)
	p.alpha.login(alice)
	p.beta.login(bob)
	p.alpha.svc.AddContact(ctx, alice, bob, "")
	p.alpha.local.take(alice)
	if got := p.beta.svc.Approve(ctx, bob, alice, false); got != wire.StatusOK {
		t.Fatalf("deny = %v", got)
	}
	n := lastNotify(t, p.alpha.local.take(alice), bob)
	if n.Presence != wire.PresenceOffline || !hasAttr(n.Attrs, "subscription", "denied") {
		t.Fatalf("alice got %+v, want offline with subscription=denied", n)
	}
	if c := p.alpha.contact(alice, bob); c.State != store.ContactDenied {
		t.Fatalf("contact state = %v, want denied", c.State)
	}
	if _, err := p.alpha.st.GetSubOut(ctx, alice, bob); err == nil {
		t.Fatal("subs_out kept after denial")
	}
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceAway, "")
	p.beta.svc.Wait()
	if got := notifies(p.alpha.local.take(alice)); len(got) != 0 {
		t.Fatalf("denied alice got %v", got)
	}
	if got := p.alpha.svc.AddContact(ctx, alice, bob, ""); got != wire.StatusRefused {
		t.Fatalf("asking again = %v, want refused", got)
	}
	if got := p.beta.svc.UserAttrs(ctx, alice.String(), bob, nil); len(got) != 0 {
		t.Fatalf("denied alice sees %v", got)
	}
}

func TestMutualApproval(t *testing.T) {
	p := newPair(t)
	p.alpha.login(alice)
	p.beta.login(bob)
	if got := p.alpha.svc.AddContact(ctx, alice, bob, ""); got != wire.StatusPending {
		t.Fatalf("alice adds bob = %v", got)
	}
	// bob adds alice: that approves alice's request, and alpha approves bob
	// without asking alice, since alice has bob in her list.
	if got := p.beta.svc.AddContact(ctx, bob, alice, ""); got != wire.StatusOK {
		t.Fatalf("bob adds alice = %v, want ok", got)
	}
	if c := p.alpha.contact(alice, bob); c.State != store.ContactApproved {
		t.Fatalf("alice's contact bob = %v", c.State)
	}
	if c := p.beta.contact(bob, alice); c.State != store.ContactApproved {
		t.Fatalf("bob's contact alice = %v", c.State)
	}
	for _, r := range p.alpha.local.take(alice) {
		if _, ok := r.(*wire.Request); ok {
			t.Fatalf("alice was asked: %v", r)
		}
	}
	p.alpha.local.take(alice)
	p.beta.local.take(bob)
	p.alpha.svc.SetPresence(ctx, alice, wire.PresenceBusy, "")
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceAway, "")
	p.alpha.svc.Wait()
	p.beta.svc.Wait()
	if n := lastNotify(t, p.beta.local.take(bob), alice); n.Presence != wire.PresenceBusy {
		t.Fatalf("bob got %+v", n)
	}
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceAway {
		t.Fatalf("alice got %+v", n)
	}
}

func TestLocalSubscriptionWithoutRemote(t *testing.T) {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	n := newNode(t, alphaDomain, Policy{}, c, nil, alice, carol)
	n.login(alice)
	n.login(carol)
	if got := n.svc.AddContact(ctx, carol, alice, ""); got != wire.StatusPending {
		t.Fatalf("AddContact = %v", got)
	}
	if recs := n.local.take(alice); len(recs) != 1 || recs[0].(*wire.Request).Watcher != carol.String() {
		t.Fatalf("alice got %v, want one REQUEST from carol", recs)
	}
	n.svc.Approve(ctx, alice, carol, true)
	if got := lastNotify(t, n.local.take(carol), alice); got.Presence != wire.PresenceOnline {
		t.Fatalf("carol got %+v", got)
	}
	n.svc.SetPresence(ctx, alice, wire.PresenceAway, "out")
	if got := lastNotify(t, n.local.take(carol), alice); got.Presence != wire.PresenceAway || got.Status != "out" {
		t.Fatalf("carol got %+v", got)
	}
	// A contact on a domain not served here cannot be reached without Remote.
	if got := n.svc.AddContact(ctx, carol, bob, ""); got != wire.StatusUnreachable {
		t.Fatalf("AddContact(remote) = %v, want unreachable", got)
	}
}

// approved sets up alice watching bob, approved.
func approved(t *testing.T, p *pair) {
	t.Helper()
	p.alpha.login(alice)
	p.beta.login(bob)
	p.alpha.svc.AddContact(ctx, alice, bob, "")
	p.beta.svc.Approve(ctx, bob, alice, true)
	p.alpha.local.take(alice)
	p.beta.local.take(bob)
}

func TestExpiryAndRenewal(t *testing.T) {
	p := newPair(t)
	approved(t, p)
	start := p.clock.Now()
	sub, err := p.alpha.st.GetSubOut(ctx, alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	// beta grants its own timeout (10 minutes), less than alice asked.
	if !sub.Expires.Equal(start.Add(10*time.Minute)) || sub.RenewAt.After(start.Add(8*time.Minute)) || sub.RenewAt.Before(start.Add(7*time.Minute)) {
		t.Fatalf("subs_out = %+v", sub)
	}
	p.fed.reset()
	p.clock.Advance(5 * time.Minute)
	if err := p.alpha.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.fed.count(wire.TypeSubscribe); got != 0 {
		t.Fatalf("renewed early: %d SUBSCRIBE", got)
	}
	p.clock.Advance(3 * time.Minute) // at 80%
	if err := p.alpha.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.fed.count(wire.TypeSubscribe); got != 1 {
		t.Fatalf("renewal: %d SUBSCRIBE, want 1", got)
	}
	sub, _ = p.alpha.st.GetSubOut(ctx, alice, bob)
	if !sub.Expires.Equal(p.clock.Now().Add(10 * time.Minute)) {
		t.Fatalf("renewed subs_out = %+v", sub)
	}
	in, _ := p.beta.st.GetSubIn(ctx, bob, alice)
	if !in.Expires.Equal(sub.Expires) || !in.Active {
		t.Fatalf("renewed subs_in = %+v", in)
	}

	// alice goes offline: nothing is renewed, and both sides let it lapse.
	p.alpha.logout(alice)
	p.fed.reset()
	for range 12 {
		p.clock.Advance(time.Minute)
		if err := p.alpha.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.beta.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.fed.count(wire.TypeSubscribe); got != 0 {
		t.Fatalf("renewed for an offline watcher: %d", got)
	}
	if _, err := p.alpha.st.GetSubOut(ctx, alice, bob); err == nil {
		t.Fatal("subs_out not lapsed")
	}
	if _, err := p.beta.st.GetSubIn(ctx, bob, alice); err == nil {
		t.Fatal("subs_in not pruned")
	}
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceBusy, "")
	p.beta.svc.Wait()
	if got := p.fed.count(wire.TypeNotify); got != 0 {
		t.Fatalf("NOTIFY after expiry: %d", got)
	}

	// alice comes back: alpha subscribes again; she sees bob.
	p.alpha.login(alice)
	if got := p.fed.count(wire.TypeSubscribe); got != 1 {
		t.Fatalf("resubscribe at login: %d SUBSCRIBE", got)
	}
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceBusy {
		t.Fatalf("alice got %+v", n)
	}

	// beta becomes unreachable: the subscription lapses while alice is
	// online, and bob shows offline.
	p.fed.set(betaDomain, nil)
	for range 11 {
		p.clock.Advance(time.Minute)
		if err := p.alpha.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.alpha.st.GetSubOut(ctx, alice, bob); err == nil {
		t.Fatal("subs_out not lapsed while beta was unreachable")
	}
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceOffline {
		t.Fatalf("alice got %+v, want bob offline", n)
	}
}

func TestRestartKeepsSubscriptions(t *testing.T) {
	p := newPair(t)
	approved(t, p)
	p.alpha.restart()
	p.beta.restart()
	p.alpha.login(alice)
	p.alpha.local.take(alice)
	p.beta.login(bob) // online again: alice hears it
	p.beta.svc.Wait()
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceOnline {
		t.Fatalf("alice got %+v", n)
	}
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceAway, "")
	p.beta.svc.Wait()
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceAway {
		t.Fatalf("alice got %+v", n)
	}
}

func TestOneNotifyPerDomain(t *testing.T) {
	p := newPair(t)
	p.beta.login(bob)
	var watchers []addr.Address
	for i := range 50 {
		w := addr.MustParse(fmt.Sprintf("w%02d@alpha.example", i))
		if err := p.alpha.st.CreateAccount(ctx, w, "pw"); err != nil {
			t.Fatal(err)
		}
		p.alpha.login(w)
		p.alpha.svc.AddContact(ctx, w, bob, "")
		p.beta.svc.Approve(ctx, bob, w, true)
		p.alpha.local.take(w)
		watchers = append(watchers, w)
	}
	p.fed.reset()
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceBusy, "x")
	p.beta.svc.Wait()
	if got := p.fed.count(wire.TypeNotify); got != 1 {
		t.Fatalf("%d NOTIFY for 50 watchers on one domain, want 1", got)
	}
	if got := len(p.fed.sent[0].Watchers); got != 50 {
		t.Fatalf("the NOTIFY lists %d watchers", got)
	}
	for _, w := range watchers {
		if n := lastNotify(t, p.alpha.local.take(w), bob); n.Presence != wire.PresenceBusy || len(n.Watchers) != 1 || n.Watchers[0] != w.String() {
			t.Fatalf("%s got %+v", w, n)
		}
	}
}

func TestBurstCoalesced(t *testing.T) {
	p := newPair(t)
	approved(t, p)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p.fed.hook = func(_, _ string, rec wire.Record) {
		if _, ok := rec.(*wire.Notify); ok {
			once.Do(func() { close(entered); <-release })
		}
	}
	p.fed.reset()
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceAway, "1")
	<-entered // the first NOTIFY is on its way
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceBusy, "2")
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceOnline, "3")
	close(release)
	p.beta.svc.Wait()
	if got := p.fed.count(wire.TypeNotify); got != 2 {
		t.Fatalf("%d NOTIFY for a burst of 3, want 2", got)
	}
	if last := p.fed.sent[1]; last.Presence != wire.PresenceOnline || last.Status != "3" {
		t.Fatalf("last NOTIFY = %+v, want the latest state", last)
	}
}

func TestFalsePresence(t *testing.T) {
	p := newPair(t)
	p.alpha.login(alice)
	p.alpha.login(carol)
	p.alpha.svc.AddContact(ctx, alice, bob, "")
	p.alpha.local.take(alice)
	// No subscription to ghost: not-subscribed, nothing delivered.
	n := &wire.Notify{Presentity: ghost.String(), Watchers: []string{alice.String()}, Presence: wire.PresenceOnline}
	if res := p.alpha.svc.HandleNotify(ctx, betaDomain, n); res.Code != wire.StatusNotSubscribed {
		t.Fatalf("NOTIFY without subscription = %v", res.Code)
	}
	// Presence of bob from a domain that is not bob's.
	n = &wire.Notify{Presentity: bob.String(), Watchers: []string{alice.String()}, Presence: wire.PresenceOnline}
	if res := p.alpha.svc.HandleNotify(ctx, "gamma.example", n); res.Code != wire.StatusNotAuthorized {
		t.Fatalf("NOTIFY from another domain = %v", res.Code)
	}
	// bob's domain pushing to carol, who did not ask: she gets nothing.
	n = &wire.Notify{Presentity: bob.String(), Watchers: []string{carol.String()}, Presence: wire.PresenceOnline}
	if res := p.alpha.svc.HandleNotify(ctx, betaDomain, n); res.Code != wire.StatusNotSubscribed {
		t.Fatalf("NOTIFY to a watcher who did not ask = %v", res.Code)
	}
	if got := p.alpha.local.take(alice); len(got) != 0 {
		t.Fatalf("alice got %v", got)
	}
	if got := p.alpha.local.take(carol); len(got) != 0 {
		t.Fatalf("carol got %v", got)
	}
}

func TestUnapprovedLearnsNothing(t *testing.T) {
	p := newPair(t)
	p.beta.login(bob)
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceBusy, "secret")
	sub := func(who, whom addr.Address) *wire.Result {
		return p.beta.svc.HandleSubscribe(ctx, alphaDomain, &wire.Subscribe{Watcher: who.String(), Presentity: whom.String(), Expires: 3600})
	}
	res := sub(mallory, bob)
	if res.Code != wire.StatusPending || res.Presence != 0 || res.Status != "" || len(res.Attrs) != 0 {
		t.Fatalf("unapproved SUBSCRIBE = %+v", res)
	}
	// A user who does not exist answers the same.
	if ghostRes := sub(mallory, ghost); !reflect.DeepEqual(ghostRes, res) {
		t.Fatalf("SUBSCRIBE for a missing user = %+v, for an undecided one %+v", ghostRes, res)
	}
	if got := p.beta.svc.UserAttrs(ctx, mallory.String(), bob, nil); len(got) != 0 {
		t.Fatalf("UserAttrs for mallory = %v", got)
	}
	if got := p.beta.svc.UserAttrs(ctx, alphaDomain, bob, nil); len(got) != 0 {
		t.Fatalf("UserAttrs for a domain = %v", got)
	}
	if got := p.beta.svc.UserAttrs(ctx, bob.String(), bob, []string{"presence"}); len(got) != 1 || got[0].Value != "busy" {
		t.Fatalf("UserAttrs for bob himself = %v", got)
	}
	// A spoofed watcher (not of the sending domain) is not authorized.
	res = p.beta.svc.HandleSubscribe(ctx, "gamma.example", &wire.Subscribe{Watcher: mallory.String(), Presentity: bob.String(), Expires: 3600})
	if res.Code != wire.StatusNotAuthorized {
		t.Fatalf("spoofed SUBSCRIBE = %v", res.Code)
	}
	if in, err := p.beta.st.ActiveSubsIn(ctx, bob, p.clock.Now()); err != nil || len(in) != 0 {
		t.Fatalf("active subscriptions = %v, %v", in, err)
	}
}

func TestBlocked(t *testing.T) {
	p := newPair(t)
	approved(t, p) // alice watches bob
	p.alpha.login(carol)
	p.alpha.login(mallory)
	// A blocked address gets refused, and nothing reaches bob.
	if got := p.beta.svc.Block(ctx, bob, "mallory@alpha.example", true); got != wire.StatusOK {
		t.Fatalf("Block = %v", got)
	}
	if got := p.alpha.svc.AddContact(ctx, mallory, bob, ""); got != wire.StatusRefused {
		t.Fatalf("blocked address AddContact = %v", got)
	}
	if got := p.beta.local.take(bob); len(got) != 0 {
		t.Fatalf("bob was asked by a blocked address: %v", got)
	}
	// Blocking a whole domain cuts alice's approved subscription too.
	p.fed.reset()
	if got := p.beta.svc.Block(ctx, bob, "@alpha.example", true); got != wire.StatusOK {
		t.Fatalf("Block domain = %v", got)
	}
	if n := lastNotify(t, p.alpha.local.take(alice), bob); n.Presence != wire.PresenceOffline {
		t.Fatalf("alice got %+v", n)
	}
	p.fed.reset()
	p.beta.svc.SetPresence(ctx, bob, wire.PresenceAway, "")
	p.beta.svc.Wait()
	if got := p.fed.count(wire.TypeNotify); got != 0 {
		t.Fatalf("%d NOTIFY to a blocked domain", got)
	}
	if got := p.alpha.svc.AddContact(ctx, carol, bob, ""); got != wire.StatusRefused {
		t.Fatalf("blocked domain AddContact = %v", got)
	}
	if got := p.beta.svc.UserAttrs(ctx, alice.String(), bob, nil); len(got) != 0 {
		t.Fatalf("UserAttrs for a blocked watcher = %v", got)
	}
	// Unblocking lets a new request through.
	p.beta.svc.Block(ctx, bob, "@alpha.example", false)
	if got := p.alpha.svc.AddContact(ctx, carol, bob, ""); got != wire.StatusPending {
		t.Fatalf("after unblock AddContact = %v", got)
	}
}

func TestRunStops(t *testing.T) {
	p := newPair(t)
	approved(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.alpha.svc.Run(ctx) }()
	p.beta.svc.SetPresence(context.Background(), bob, wire.PresenceAway, "")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New accepted an empty config")
	}
	if _, err := New(Config{Domains: map[string]Policy{alphaDomain: {}}}); err == nil {
		t.Fatal("New accepted a config without a store")
	}
}

// countingRemote answers every NOTIFY ok and counts them, without network.
type countingRemote struct {
	mu       sync.Mutex
	notifies int
	watchers int
}

func (c *countingRemote) Request(ctx context.Context, local, remote string, rec wire.Record) (wire.Record, error) {
	if n, ok := rec.(*wire.Notify); ok {
		c.mu.Lock()
		c.notifies++
		c.watchers += len(n.Watchers)
		c.mu.Unlock()
	}
	return &wire.Result{Code: wire.StatusOK}, nil
}

func BenchmarkFanout(b *testing.B) {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	n := newNode(b, betaDomain, Policy{}, c, nil, bob)
	remote := &countingRemote{}
	svc, err := New(Config{Domains: map[string]Policy{betaDomain: {}}, Store: n.st, Remote: remote, Local: n.local, Now: c.Now})
	if err != nil {
		b.Fatal(err)
	}
	for d := range 100 {
		for u := range 100 {
			w := addr.MustParse(fmt.Sprintf("u%d@d%d.example", u, d))
			if err := n.st.PutSubIn(ctx, store.SubIn{Presentity: bob, Watcher: w, Expires: c.Now().Add(time.Hour), Active: true}); err != nil {
				b.Fatal(err)
			}
		}
	}
	svc.SessionsChanged(ctx, bob, 1)
	svc.Wait()
	remote.mu.Lock()
	remote.notifies, remote.watchers = 0, 0
	remote.mu.Unlock()
	states := []wire.Presence{wire.PresenceAway, wire.PresenceOnline}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		svc.SetPresence(ctx, bob, states[i%2], "")
		svc.Wait()
	}
	b.StopTimer()
	remote.mu.Lock()
	defer remote.mu.Unlock()
	b.ReportMetric(float64(remote.notifies)/float64(b.N), "notify/op")
	b.ReportMetric(float64(remote.watchers)/float64(b.N), "watchers/op")
}

// TestRenewSweepFollowsTimeout: the renewal sweep runs often enough for the
// shortest subscription timeout of the domains served (a sweep each minute
// let one-minute subscriptions lapse).
func TestRenewSweepFollowsTimeout(t *testing.T) {
	for _, tt := range []struct {
		timeouts []time.Duration
		want     time.Duration
	}{
		{[]time.Duration{0}, time.Minute},
		{[]time.Duration{30 * time.Minute}, time.Minute},
		{[]time.Duration{30 * time.Minute, time.Minute}, 6 * time.Second},
		{[]time.Duration{5 * time.Minute}, 30 * time.Second},
	} {
		domains := map[string]Policy{}
		for i, d := range tt.timeouts {
			domains[fmt.Sprintf("d%d.example", i)] = Policy{SubscriptionTimeout: d}
		}
		n := newNode(t, alphaDomain, Policy{}, &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, nil)
		s, err := New(Config{Domains: domains, Store: n.st, Local: n.local})
		if err != nil {
			t.Fatal(err)
		}
		if s.cfg.RenewEvery != tt.want {
			t.Errorf("timeouts %v: sweep every %v, want %v", tt.timeouts, s.cfg.RenewEvery, tt.want)
		}
	}
}
