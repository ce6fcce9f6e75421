package presence

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// This file is the watcher's side: contact lists, the subscriptions held
// for local watchers (subs_out), their renewal, and incoming NOTIFY.

// AddContact puts contact in the list of owner, with alias, and subscribes
// owner to it. It returns the answer to the SUBSCRIBE: ok (approved: the
// presence follows as a NOTIFY), pending (waiting for the contact), refused
// (denied or blocked), or a failure to reach the contact's domain, after
// which the contact stays in the list and is subscribed again with
// back-off while owner stays online (see retryLater), and at the next
// login.
func (s *Service) AddContact(ctx context.Context, owner, contact addr.Address, alias string) wire.Status {
	switch {
	case !s.IsLocal(owner.Domain()):
		return wire.StatusNotAuthorized
	case contact.IsZero() || contact == owner:
		return wire.StatusBadRequest
	}
	state := store.ContactAsked
	prev, err := s.cfg.Store.GetContact(ctx, owner, contact)
	switch {
	case err == nil && prev.State == store.ContactApproved:
		state = store.ContactApproved
	case err != nil && !errors.Is(err, store.ErrNotFound):
		s.log.Error("contact lookup failed", "owner", owner.String(), "err", err)
		return wire.StatusInternal
	}
	if err := s.cfg.Store.PutContact(ctx, store.Contact{Owner: owner, Contact: contact, Alias: alias, State: state}); err != nil {
		s.log.Error("contact write failed", "owner", owner.String(), "err", err)
		return wire.StatusInternal
	}
	// Mutual approval: wanting to watch someone who asked to watch you
	// approves them.
	if a, err := s.cfg.Store.GetApproval(ctx, owner, contact); err == nil && a.State == store.ApprovalPending {
		s.approve(ctx, owner, contact, true, false)
	}
	// Always asked again, even for a contact whose subscription looks
	// live here: the presentity's server may have cut it (a block, lifted
	// since), and the answer is what holds now.
	return s.subscribe(ctx, owner, contact)
}

// RemoveContact takes contact off the list of owner and cancels the
// subscription.
func (s *Service) RemoveContact(ctx context.Context, owner, contact addr.Address) wire.Status {
	if !s.IsLocal(owner.Domain()) {
		return wire.StatusNotAuthorized
	}
	if err := s.cfg.Store.DeleteContact(ctx, owner, contact); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("contact delete failed", "owner", owner.String(), "err", err)
		return wire.StatusInternal
	}
	s.retryDone(owner, contact)
	s.unsubscribe(ctx, owner, contact)
	return wire.StatusOK
}

// Contacts returns the contact list of owner.
func (s *Service) Contacts(ctx context.Context, owner addr.Address) ([]store.Contact, error) {
	return s.cfg.Store.ListContacts(ctx, owner)
}

// unsubscribe forgets the subscription of watcher to presentity and tells
// the presentity's server.
func (s *Service) unsubscribe(ctx context.Context, watcher, presentity addr.Address) {
	if err := s.cfg.Store.DeleteSubOut(ctx, watcher, presentity); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("subscription delete failed", "watcher", watcher.String(), "err", err)
	}
	res, err := s.request(ctx, watcher.Domain(), presentity.Domain(), &wire.Unsubscribe{Watcher: watcher.String(), Presentity: presentity.String()})
	if err != nil {
		s.log.Info("unsubscribe failed; the subscription will lapse", "watcher", watcher.String(), "presentity", presentity.String(), "err", err)
		return
	}
	s.log.Debug("unsubscribed", "watcher", watcher.String(), "presentity", presentity.String(), "result", res.Code.String())
}

// subscribe sends SUBSCRIBE for watcher to presentity and acts on the
// answer: ok and pending store the subscription granted, ok marks the
// contact approved and shows the presence, refused marks it denied. A
// temporary failure (the domain could not be reached, or answered busy)
// schedules a retry while the watcher is online.
func (s *Service) subscribe(ctx context.Context, watcher, presentity addr.Address) wire.Status {
	asked := s.timeout(watcher.Domain())
	res, err := s.request(ctx, watcher.Domain(), presentity.Domain(), &wire.Subscribe{Watcher: watcher.String(), Presentity: presentity.String(), Expires: asked})
	if err != nil {
		code := failure(err)
		s.log.Info("subscribe failed", "watcher", watcher.String(), "presentity", presentity.String(), "err", err)
		if code.Temporary() {
			s.retryLater(watcher, presentity)
		} else {
			s.retryDone(watcher, presentity)
		}
		return code
	}
	if res.Code.Temporary() {
		s.retryLater(watcher, presentity)
	} else {
		s.retryDone(watcher, presentity)
	}
	switch res.Code {
	case wire.StatusOK, wire.StatusPending:
		grant := res.Expires
		if grant == 0 || grant > asked {
			grant = asked
		}
		// A watcher without a live subscription was shown the contact
		// offline (lapse, login): a fresh one shows the presence even
		// if the cache already held it.
		prev, err := s.cfg.Store.GetSubOut(ctx, watcher, presentity)
		fresh := err != nil || !prev.Expires.After(s.now())
		if err := s.putSubOut(ctx, watcher, presentity, grant); err != nil {
			s.log.Error("subscription write failed", "watcher", watcher.String(), "err", err)
			return wire.StatusInternal
		}
		if res.Code == wire.StatusPending {
			s.setContact(ctx, watcher, presentity, store.ContactAsked)
			break
		}
		p := res.Presence
		if p == 0 {
			p = wire.PresenceOffline
		}
		changed := s.remember(presentity, p, res.Status)
		// The attributes that rode along with the grant are cached for
		// this watcher until the subscription ends, as a NOTIFY's are.
		s.noteNotify(presentity, []addr.Address{watcher}, &wire.Notify{Presence: p, Status: res.Status, Attrs: res.Attrs},
			s.now().Add(time.Duration(grant)*time.Second), false)
		if s.setContact(ctx, watcher, presentity, store.ContactApproved) || changed || fresh {
			s.pushNotify(ctx, watcher, presentity, p, res.Status, res.Attrs)
		}
	case wire.StatusRefused:
		s.refused(ctx, watcher, presentity)
	default:
		s.log.Info("subscription not granted", "watcher", watcher.String(), "presentity", presentity.String(), "result", res.Code.String())
	}
	return res.Code
}

// putSubOut stores a granted subscription, to be renewed at 80% of its
// time, less a jitter of up to 5% so that renewals spread out.
func (s *Service) putSubOut(ctx context.Context, watcher, presentity addr.Address, grant uint32) error {
	now := s.now()
	d := time.Duration(grant) * time.Second
	renew := d * 8 / 10
	if j := int64(d / 20); j > 0 {
		renew -= time.Duration(rand.Int64N(j))
	}
	return s.cfg.Store.PutSubOut(ctx, store.SubOut{Watcher: watcher, Presentity: presentity, Expires: now.Add(d), RenewAt: now.Add(renew)})
}

// setContact sets the state of a contact and reports whether it changed.
func (s *Service) setContact(ctx context.Context, owner, contact addr.Address, state store.ContactState) bool {
	c, err := s.cfg.Store.GetContact(ctx, owner, contact)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("contact lookup failed", "owner", owner.String(), "err", err)
		}
		return false
	}
	if c.State == state {
		return false
	}
	if err := s.cfg.Store.SetContactState(ctx, owner, contact, state); err != nil {
		s.log.Error("contact write failed", "owner", owner.String(), "err", err)
		return false
	}
	return true
}

// refused records a denial: the subscription goes, the contact is denied,
// and the watcher's sessions see the contact offline.
func (s *Service) refused(ctx context.Context, watcher, presentity addr.Address) {
	if err := s.cfg.Store.DeleteSubOut(ctx, watcher, presentity); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("subscription delete failed", "watcher", watcher.String(), "err", err)
	}
	if s.setContact(ctx, watcher, presentity, store.ContactDenied) {
		s.pushNotify(ctx, watcher, presentity, wire.PresenceOffline, "", deniedAttrs())
	}
}

// remember caches the presence of a presentity and reports whether it
// changed.
func (s *Service) remember(presentity addr.Address, p wire.Presence, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[presentity]
	s.cache[presentity] = cached{presence: p, status: status}
	return !ok || c.presence != p || c.status != status
}

// HandleNotify handles a NOTIFY from the domain fromDomain, which s2s has
// authenticated. It is accepted only from the presentity's own domain, and
// delivered only to the listed watchers that hold a subscription to the
// presentity: anything else is false presence (§6.2.2.1 item 2).
func (s *Service) HandleNotify(ctx context.Context, fromDomain string, r *wire.Notify) *wire.Result {
	presentity, err := addr.Parse(r.Presentity)
	switch {
	case err != nil || r.Presence == 0:
		return status(wire.StatusBadRequest, "invalid notify")
	case presentity.Domain() != fromDomain:
		return status(wire.StatusNotAuthorized, "presentity not of the sending domain")
	}
	denied := hasAttr(r.Attrs, AttrSubscription, SubscriptionDenied)
	now := s.now()
	// One lookup gives the subscriptions to presentity that the listed
	// local watchers hold, however many the NOTIFY lists.
	listed := make([]addr.Address, 0, len(r.Watchers))
	for _, w := range r.Watchers {
		if watcher, err := addr.Parse(w); err == nil && s.IsLocal(watcher.Domain()) {
			listed = append(listed, watcher)
		}
	}
	subs, err := s.cfg.Store.SubsOutTo(ctx, presentity, listed)
	if err != nil {
		s.log.Error("subscription lookup failed", "presentity", r.Presentity, "err", err)
		return status(wire.StatusInternal, "")
	}
	var watchers []addr.Address
	var contacts []store.ContactState // the watchers' contact entries' states
	var until time.Time               // the latest expiry of their subscriptions
	for _, sub := range subs {
		if !sub.Expires.After(now) && !denied {
			continue // lapsed
		}
		if len(watchers) > 0 && watchers[len(watchers)-1] == sub.Watcher {
			continue // listed twice
		}
		watchers = append(watchers, sub.Watcher)
		contacts = append(contacts, sub.Contact)
		until = later(until, sub.Expires)
	}
	if len(watchers) == 0 {
		return status(wire.StatusNotSubscribed, "")
	}
	s.noteNotify(presentity, watchers, r, until, denied)
	if denied {
		for _, w := range watchers {
			s.refused(ctx, w, presentity)
		}
		return status(wire.StatusOK, "")
	}
	s.remember(presentity, r.Presence, r.Status)
	// One presentity string and one copy of the attributes serve every
	// watcher's NOTIFY: nothing changes them once queued.
	ps, attrs := presentity.String(), slices.Clone(r.Attrs)
	for i, w := range watchers {
		if contacts[i] != store.ContactApproved {
			// A contact still waiting for an approval is approved now.
			s.setContact(ctx, w, presentity, store.ContactApproved)
		}
		s.cfg.Local.Push(ctx, w, &wire.Notify{
			Presentity: ps, Watchers: []string{w.String()},
			Presence: r.Presence, Status: r.Status, Attrs: attrs,
		})
	}
	return status(wire.StatusOK, "")
}

// LoggedIn is called by c2s when a session of user has logged in. It pushes
// to the user's sessions the pending requests to watch, and the presence of
// every approved contact; then it subscribes again, in the background, to
// the contacts whose subscriptions lapsed or are due.
func (s *Service) LoggedIn(ctx context.Context, user addr.Address) {
	pending, err := s.cfg.Store.ListApprovals(ctx, user, store.ApprovalPending)
	if err != nil {
		s.log.Error("approvals lookup failed", "user", user.String(), "err", err)
	}
	for _, a := range pending {
		if blocked, err := s.cfg.Store.IsBlocked(ctx, user, a.Watcher); err != nil || blocked {
			continue
		}
		s.cfg.Local.Push(ctx, user, &wire.Request{Watcher: a.Watcher.String()})
	}
	contacts, err := s.cfg.Store.ListContacts(ctx, user)
	if err != nil {
		s.log.Error("contacts lookup failed", "user", user.String(), "err", err)
		return
	}
	subs, err := s.cfg.Store.ListSubsOut(ctx, user)
	if err != nil {
		s.log.Error("subscriptions lookup failed", "user", user.String(), "err", err)
		return
	}
	held := make(map[addr.Address]store.SubOut, len(subs))
	for _, sub := range subs {
		held[sub.Presentity] = sub
	}
	now := s.now()
	var again []addr.Address
	for _, c := range contacts {
		sub, ok := held[c.Contact]
		live := ok && sub.Expires.After(now)
		if c.State == store.ContactApproved {
			p, st := wire.PresenceOffline, ""
			var attrs []wire.Attr
			if live {
				p, st = s.presenceOf(ctx, user, c.Contact)
				// The contact's attributes: a local contact's from
				// here, a remote one's from what rode along to this
				// user, while still fresh.
				names := []string{AttrAlias, AttrCapabilities, AttrMaxMessageLength}
				if s.IsLocal(c.Contact.Domain()) {
					attrs = s.UserAttrs(ctx, user.String(), c.Contact, names)
				} else if cached, ok := s.CachedAttrs(user, c.Contact, names); ok {
					attrs = cached
				}
			}
			s.pushNotify(ctx, user, c.Contact, p, st, attrs)
		}
		if c.State != store.ContactDenied && (!live || !sub.RenewAt.After(now)) {
			again = append(again, c.Contact)
		}
	}
	if len(again) > 0 {
		s.async(func(ctx context.Context) {
			for _, c := range again {
				s.subscribe(ctx, user, c)
			}
		})
	}
}

// presenceOf is what watcher may see of presentity, whose subscription it
// holds: read here for a local presentity, the last NOTIFY for another.
func (s *Service) presenceOf(ctx context.Context, watcher, presentity addr.Address) (wire.Presence, string) {
	if s.IsLocal(presentity.Domain()) {
		if a, err := s.cfg.Store.GetApproval(ctx, presentity, watcher); err != nil || a.State != store.ApprovalApproved {
			return wire.PresenceOffline, ""
		}
		return s.current(presentity)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[presentity]; ok {
		return c.presence, c.status
	}
	return wire.PresenceOffline, ""
}

// Sweep runs one pass of what Run does every RenewEvery: it drops the
// expired subs_in rows, renews the due subs_out rows of watchers who have a
// session, and lets lapse those of watchers who have none.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	if n, err := s.cfg.Store.PruneSubsIn(ctx, now); err != nil {
		return err
	} else if n > 0 {
		s.log.Debug("expired subscriptions dropped", "count", n)
	}
	for range sweepRounds {
		due, err := s.cfg.Store.DueSubsOut(ctx, now, sweepBatch)
		if err != nil {
			return err
		}
		sem := make(chan struct{}, sweepWorkers)
		var wg sync.WaitGroup
		for _, sub := range due {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s.renew(ctx, sub, now)
			})
		}
		wg.Wait()
		if len(due) < sweepBatch || ctx.Err() != nil {
			break
		}
	}
	s.retryDue(ctx, now)
	return ctx.Err()
}

// renew handles one due subscription; every outcome moves its RenewAt or
// deletes it, so that it is not due again at once.
func (s *Service) renew(ctx context.Context, sub store.SubOut, now time.Time) {
	c, err := s.cfg.Store.GetContact(ctx, sub.Watcher, sub.Presentity)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.unsubscribe(ctx, sub.Watcher, sub.Presentity)
		return
	case err != nil:
		s.log.Error("contact lookup failed", "owner", sub.Watcher.String(), "err", err)
		return
	case c.State == store.ContactDenied:
		if err := s.cfg.Store.DeleteSubOut(ctx, sub.Watcher, sub.Presentity); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("subscription delete failed", "watcher", sub.Watcher.String(), "err", err)
		}
		return
	}
	expired := !sub.Expires.After(now)
	if s.sessions(sub.Watcher) == 0 {
		// Nobody to show it to: let it lapse, and subscribe again at login.
		if expired {
			s.lapse(ctx, c)
			return
		}
		sub.RenewAt = sub.Expires
		if err := s.cfg.Store.PutSubOut(ctx, sub); err != nil {
			s.log.Error("subscription write failed", "watcher", sub.Watcher.String(), "err", err)
		}
		return
	}
	code := s.subscribe(ctx, sub.Watcher, sub.Presentity)
	if code.Success() || code == wire.StatusRefused {
		return // subscribe stored or deleted it
	}
	if expired {
		s.lapse(ctx, c)
		return
	}
	sub.RenewAt = now.Add(s.cfg.RenewEvery)
	if sub.RenewAt.After(sub.Expires) {
		sub.RenewAt = sub.Expires
	}
	if err := s.cfg.Store.PutSubOut(ctx, sub); err != nil {
		s.log.Error("subscription write failed", "watcher", sub.Watcher.String(), "err", err)
	}
}

// lapse drops a subscription that expired without renewal; the watcher sees
// the contact offline.
func (s *Service) lapse(ctx context.Context, c store.Contact) {
	if err := s.cfg.Store.DeleteSubOut(ctx, c.Owner, c.Contact); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("subscription delete failed", "watcher", c.Owner.String(), "err", err)
	}
	if c.State == store.ContactApproved {
		s.pushNotify(ctx, c.Owner, c.Contact, wire.PresenceOffline, "", nil)
	}
}

// retry is the next SUBSCRIBE for a contact whose domain could not be
// reached: failures counts the failures in a row, at is when to try again.
type retry struct {
	failures int
	at       time.Time
}

// retryLater schedules the next SUBSCRIBE of watcher to presentity after a
// temporary failure, if watcher is online: RetryMin after the first
// failure, doubling up to RetryMax, with a jitter of ±10%. The retries stop
// when the watcher goes offline (SessionsChanged), the contact is removed,
// or a SUBSCRIBE gets an answer other than a temporary failure.
func (s *Service) retryLater(watcher, presentity addr.Address) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[watcher]; u == nil || u.sessions == 0 {
		return // subscribed again at the next login
	}
	m := s.retries[watcher]
	if m == nil {
		m = map[addr.Address]*retry{}
		s.retries[watcher] = m
	}
	r := m[presentity]
	if r == nil {
		r = &retry{}
		m[presentity] = r
	}
	d := s.cfg.RetryMax
	if r.failures < 30 {
		d = min(s.cfg.RetryMin<<r.failures, s.cfg.RetryMax)
	}
	r.failures++
	if j := int64(d / 10); j > 0 {
		d += time.Duration(rand.Int64N(2*j+1) - j)
	}
	r.at = s.now().Add(d)
}

// retryDone forgets the retries of watcher for presentity.
func (s *Service) retryDone(watcher, presentity addr.Address) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.retries[watcher]; m != nil {
		delete(m, presentity)
		if len(m) == 0 {
			delete(s.retries, watcher)
		}
	}
}

// retryDue sends again the SUBSCRIBEs whose retry is due, for contacts
// still in the list, not denied, and without a live subscription (one
// being renewed is left to its renewal).
func (s *Service) retryDue(ctx context.Context, now time.Time) {
	type due struct{ watcher, presentity addr.Address }
	var list []due
	s.mu.Lock()
	for w, m := range s.retries {
		for p, r := range m {
			if !r.at.After(now) {
				list = append(list, due{w, p})
			}
		}
	}
	s.mu.Unlock()
	sem := make(chan struct{}, sweepWorkers)
	var wg sync.WaitGroup
	for _, d := range list {
		if ctx.Err() != nil {
			break
		}
		c, err := s.cfg.Store.GetContact(ctx, d.watcher, d.presentity)
		if err != nil || c.State == store.ContactDenied || s.sessions(d.watcher) == 0 {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Error("contact lookup failed", "owner", d.watcher.String(), "err", err)
				continue
			}
			s.retryDone(d.watcher, d.presentity)
			continue
		}
		if sub, err := s.cfg.Store.GetSubOut(ctx, d.watcher, d.presentity); err == nil && sub.Expires.After(now) {
			s.retryDone(d.watcher, d.presentity)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.log.Debug("subscribing again to an unreachable contact", "watcher", d.watcher.String(), "presentity", d.presentity.String())
			s.subscribe(ctx, d.watcher, d.presentity)
		})
	}
	wg.Wait()
}
