package presence

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// This file is the presentity's side: approvals, blocks, the subscriptions
// granted (subs_in), presence and its fan-out.

// HandleSubscribe handles a SUBSCRIBE from the domain fromDomain, which s2s
// has authenticated (or a local domain, by direct call).
func (s *Service) HandleSubscribe(ctx context.Context, fromDomain string, r *wire.Subscribe) *wire.Result {
	watcher, err := addr.Parse(r.Watcher)
	if err != nil || r.Expires == 0 {
		return status(wire.StatusBadRequest, "invalid subscribe")
	}
	if watcher.Domain() != fromDomain {
		return status(wire.StatusNotAuthorized, "watcher not of the sending domain")
	}
	presentity, err := addr.Parse(r.Presentity)
	switch {
	case err != nil || presentity == watcher:
		return status(wire.StatusBadRequest, "invalid presentity")
	case !s.IsLocal(presentity.Domain()):
		return status(wire.StatusRelayDenied, "presentity not served here")
	}
	grant := min(r.Expires, s.timeout(presentity.Domain()))
	pending := &wire.Result{Code: wire.StatusPending, Expires: grant}
	exists, err := s.cfg.Store.AccountExists(ctx, presentity)
	switch {
	case err != nil:
		s.log.Error("user lookup failed", "user", presentity.String(), "err", err)
		return status(wire.StatusInternal, "")
	case !exists:
		return pending // as for a user who has not decided: existence is not told
	}
	if blocked, err := s.cfg.Store.IsBlocked(ctx, presentity, watcher); err != nil {
		s.log.Error("block lookup failed", "user", presentity.String(), "err", err)
		return status(wire.StatusInternal, "")
	} else if blocked {
		return status(wire.StatusRefused, "")
	}
	state, created, err := s.decide(ctx, presentity, watcher)
	if err != nil {
		s.log.Error("approval lookup failed", "user", presentity.String(), "err", err)
		return status(wire.StatusInternal, "")
	}
	sub := store.SubIn{Presentity: presentity, Watcher: watcher, Expires: s.now().Add(time.Duration(grant) * time.Second)}
	switch state {
	case store.ApprovalApproved:
		sub.Active = true
		if err := s.cfg.Store.PutSubIn(ctx, sub); err != nil {
			s.log.Error("subscription write failed", "user", presentity.String(), "err", err)
			return status(wire.StatusInternal, "")
		}
		p, st := s.current(presentity)
		return &wire.Result{Code: wire.StatusOK, Expires: grant, Presence: p, Status: st, Attrs: s.shared(ctx, presentity)}
	case store.ApprovalDenied:
		if err := s.cfg.Store.DeleteSubIn(ctx, presentity, watcher); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("subscription delete failed", "user", presentity.String(), "err", err)
		}
		return status(wire.StatusRefused, "")
	}
	// Pending: kept inactive, so that an approval can NOTIFY at once.
	if err := s.cfg.Store.PutSubIn(ctx, sub); err != nil {
		s.log.Error("subscription write failed", "user", presentity.String(), "err", err)
		return status(wire.StatusInternal, "")
	}
	if created {
		s.cfg.Local.Push(ctx, presentity, &wire.Request{Watcher: watcher.String()})
	}
	return pending
}

// decide returns the presentity's decision about watcher, recording a new
// request if there is none; created reports a new request. A watcher in
// the presentity's own contact list is approved without asking.
func (s *Service) decide(ctx context.Context, presentity, watcher addr.Address) (store.ApprovalState, bool, error) {
	a, err := s.cfg.Store.GetApproval(ctx, presentity, watcher)
	switch {
	case err == nil && a.State != store.ApprovalPending:
		return a.State, false, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return "", false, err
	}
	asked := s.now()
	if err == nil {
		asked = a.Asked
	}
	if _, err := s.cfg.Store.GetContact(ctx, presentity, watcher); err == nil {
		err := s.cfg.Store.SetApproval(ctx, store.Approval{Presentity: presentity, Watcher: watcher, State: store.ApprovalApproved, Asked: asked})
		return store.ApprovalApproved, false, err
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", false, err
	}
	a, created, err := s.cfg.Store.RequestApproval(ctx, presentity, watcher, asked)
	return a.State, created, err
}

// HandleUnsubscribe handles an UNSUBSCRIBE from the domain fromDomain. A
// request still pending is withdrawn with it.
func (s *Service) HandleUnsubscribe(ctx context.Context, fromDomain string, r *wire.Unsubscribe) *wire.Result {
	watcher, err := addr.Parse(r.Watcher)
	if err != nil {
		return status(wire.StatusBadRequest, "invalid watcher")
	}
	if watcher.Domain() != fromDomain {
		return status(wire.StatusNotAuthorized, "watcher not of the sending domain")
	}
	presentity, err := addr.Parse(r.Presentity)
	switch {
	case err != nil:
		return status(wire.StatusBadRequest, "invalid presentity")
	case !s.IsLocal(presentity.Domain()):
		return status(wire.StatusRelayDenied, "presentity not served here")
	}
	if a, err := s.cfg.Store.GetApproval(ctx, presentity, watcher); err == nil && a.State == store.ApprovalPending {
		if err := s.cfg.Store.DeleteApproval(ctx, presentity, watcher); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("approval delete failed", "user", presentity.String(), "err", err)
		}
	}
	switch err := s.cfg.Store.DeleteSubIn(ctx, presentity, watcher); {
	case errors.Is(err, store.ErrNotFound):
		return status(wire.StatusNotSubscribed, "")
	case err != nil:
		s.log.Error("subscription delete failed", "user", presentity.String(), "err", err)
		return status(wire.StatusInternal, "")
	}
	return status(wire.StatusOK, "")
}

// Approve records the decision of presentity about watcher. Approving
// activates a waiting subscription and notifies the watcher at once, and
// subscribes back if the watcher is in the presentity's contact list;
// denying drops the subscription and notifies the watcher offline with the
// attribute subscription=denied.
func (s *Service) Approve(ctx context.Context, presentity, watcher addr.Address, approve bool) wire.Status {
	switch {
	case !s.IsLocal(presentity.Domain()):
		return wire.StatusNotAuthorized
	case watcher.IsZero() || watcher == presentity:
		return wire.StatusBadRequest
	}
	return s.approve(ctx, presentity, watcher, approve, true)
}

func (s *Service) approve(ctx context.Context, presentity, watcher addr.Address, approve, mutual bool) wire.Status {
	now := s.now()
	asked := now
	if a, err := s.cfg.Store.GetApproval(ctx, presentity, watcher); err == nil {
		asked = a.Asked
	}
	state := store.ApprovalDenied
	if approve {
		state = store.ApprovalApproved
	}
	if err := s.cfg.Store.SetApproval(ctx, store.Approval{Presentity: presentity, Watcher: watcher, State: state, Asked: asked}); err != nil {
		s.log.Error("approval write failed", "user", presentity.String(), "err", err)
		return wire.StatusInternal
	}
	sub, err := s.cfg.Store.GetSubIn(ctx, presentity, watcher)
	held := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("subscription lookup failed", "user", presentity.String(), "err", err)
	}
	n := &wire.Notify{Presentity: presentity.String(), Watchers: []string{watcher.String()}}
	if approve {
		if held && sub.Expires.After(now) {
			if err := s.cfg.Store.SetSubInActive(ctx, presentity, watcher, true); err != nil {
				s.log.Error("subscription write failed", "user", presentity.String(), "err", err)
				return wire.StatusInternal
			}
			n.Presence, n.Status = s.current(presentity)
			n.Attrs = s.shared(ctx, presentity)
			s.notify(ctx, presentity, watcher.Domain(), n)
		}
		if c, err := s.cfg.Store.GetContact(ctx, presentity, watcher); mutual && err == nil && c.State != store.ContactApproved {
			s.subscribe(ctx, presentity, watcher)
		}
		return wire.StatusOK
	}
	if held {
		if err := s.cfg.Store.DeleteSubIn(ctx, presentity, watcher); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("subscription delete failed", "user", presentity.String(), "err", err)
		}
		n.Presence, n.Attrs = wire.PresenceOffline, deniedAttrs()
		s.notify(ctx, presentity, watcher.Domain(), n)
	}
	return wire.StatusOK
}

// notify sends one NOTIFY now and waits for its answer.
func (s *Service) notify(ctx context.Context, presentity addr.Address, domain string, n *wire.Notify) {
	res, err := s.request(ctx, presentity.Domain(), domain, n)
	if err != nil {
		s.log.Info("notify failed", "presentity", presentity.String(), "domain", domain, "err", err)
		return
	}
	if res.Code == wire.StatusNotSubscribed {
		s.dropSubsIn(ctx, presentity, n.Watchers)
	}
}

// dropSubsIn forgets the subscriptions of watchers whose server said that
// none of them is subscribed.
func (s *Service) dropSubsIn(ctx context.Context, presentity addr.Address, watchers []string) {
	for _, w := range watchers {
		watcher, err := addr.Parse(w)
		if err != nil {
			continue
		}
		if err := s.cfg.Store.DeleteSubIn(ctx, presentity, watcher); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("subscription delete failed", "user", presentity.String(), "err", err)
		}
	}
}

// Block adds pattern ("user@domain" or "@domain") to the block list of owner,
// or removes it. Blocking drops the subscriptions of the watchers it
// matches, who see owner offline.
func (s *Service) Block(ctx context.Context, owner addr.Address, pattern string, block bool) wire.Status {
	if !s.IsLocal(owner.Domain()) {
		return wire.StatusNotAuthorized
	}
	norm, err := store.ParseBlockPattern(pattern)
	if err != nil {
		return wire.StatusBadRequest
	}
	if !block {
		if err := s.cfg.Store.RemoveBlock(ctx, owner, norm); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("block delete failed", "user", owner.String(), "err", err)
			return wire.StatusInternal
		}
		return wire.StatusOK
	}
	if err := s.cfg.Store.AddBlock(ctx, owner, norm); err != nil && !errors.Is(err, store.ErrExists) {
		s.log.Error("block write failed", "user", owner.String(), "err", err)
		return wire.StatusInternal
	}
	subs, err := s.cfg.Store.ActiveSubsIn(ctx, owner, s.now())
	if err != nil {
		s.log.Error("subscriptions lookup failed", "user", owner.String(), "err", err)
		return wire.StatusInternal
	}
	cut := map[string][]string{}
	for _, sub := range subs {
		if norm != sub.Watcher.String() && norm != "@"+sub.Watcher.Domain() {
			continue
		}
		if err := s.cfg.Store.DeleteSubIn(ctx, owner, sub.Watcher); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("subscription delete failed", "user", owner.String(), "err", err)
		}
		cut[sub.Watcher.Domain()] = append(cut[sub.Watcher.Domain()], sub.Watcher.String())
	}
	for domain, watchers := range cut {
		s.notify(ctx, owner, domain, &wire.Notify{Presentity: owner.String(), Watchers: watchers, Presence: wire.PresenceOffline})
	}
	return wire.StatusOK
}

// SetPresence sets the presence and status text that user chose
// (PRESENCE-SET), and tells the watchers if it changed. 0 means online.
func (s *Service) SetPresence(ctx context.Context, user addr.Address, p wire.Presence, status string) {
	if p == 0 {
		p = wire.PresenceOnline
	}
	s.mu.Lock()
	u := s.users[user]
	if u == nil {
		u = &userState{}
		s.users[user] = u
	}
	bp, bs := effective(u)
	u.presence, u.status, u.set = p, status, true
	ap, as := effective(u)
	s.mu.Unlock()
	if ap != bp || as != bs {
		s.fanout(context.WithoutCancel(ctx), user)
	}
}

// SessionsChanged tells the Service how many sessions user has now. The
// first session makes the user online, unless the user chose a presence;
// the last one to go makes the user offline and forgets the choice.
func (s *Service) SessionsChanged(ctx context.Context, user addr.Address, sessions int) {
	s.mu.Lock()
	u := s.users[user]
	if u == nil {
		u = &userState{}
	}
	bp, bs := effective(u)
	switch {
	case sessions <= 0:
		delete(s.users, user)
		delete(s.retries, user) // the retries stop when the owner goes offline
		u = nil
	default:
		if u.sessions == 0 && !u.set {
			u.presence, u.status = wire.PresenceOnline, ""
		}
		u.sessions = sessions
		s.users[user] = u
	}
	ap, as := effective(u)
	s.mu.Unlock()
	if ap != bp || as != bs {
		s.fanout(context.WithoutCancel(ctx), user)
	}
}

// fanout sends the presence of user to its active watchers: one NOTIFY per
// watcher domain, directly to a local domain, in the background (coalesced)
// to another.
func (s *Service) fanout(ctx context.Context, user addr.Address) {
	subs, err := s.cfg.Store.ActiveSubsIn(ctx, user, s.now())
	if err != nil {
		s.log.Error("subscriptions lookup failed", "user", user.String(), "err", err)
		return
	}
	p, st := s.current(user)
	shared := s.shared(ctx, user) // rides along (§4.6.1): every watcher here is approved
	for i := 0; i < len(subs); {
		domain := subs[i].Watcher.Domain()
		var watchers []string
		for ; i < len(subs) && subs[i].Watcher.Domain() == domain; i++ {
			watchers = append(watchers, subs[i].Watcher.String())
		}
		n := &wire.Notify{Presentity: user.String(), Watchers: watchers, Presence: p, Status: st, Attrs: shared}
		if s.IsLocal(domain) {
			s.HandleNotify(ctx, user.Domain(), n)
			continue
		}
		s.post(user, domain, n)
	}
}

// post sends n to domain in the background. While a NOTIFY of the same
// presentity to the same domain is on its way, n waits, and replaces any
// NOTIFY already waiting: only the latest state goes.
func (s *Service) post(presentity addr.Address, domain string, n *wire.Notify) {
	key := fanKey{presentity, domain}
	s.mu.Lock()
	if f := s.flights[key]; f != nil {
		f.next = n
		s.mu.Unlock()
		return
	}
	f := &flight{}
	s.flights[key] = f
	s.busy++
	s.mu.Unlock()
	go func() {
		defer s.done()
		for {
			for chunk := range slices.Chunk(n.Watchers, maxWatchersPerNotify) {
				c := *n
				c.Watchers = chunk
				s.notify(s.base, presentity, domain, &c)
			}
			s.mu.Lock()
			if f.next == nil {
				delete(s.flights, key)
				s.mu.Unlock()
				return
			}
			n, f.next = f.next, nil
			s.mu.Unlock()
		}
	}()
}

// mayWatch reports whether requester may see the presence of target.
func (s *Service) mayWatch(ctx context.Context, requester string, target addr.Address) bool {
	who, err := addr.Parse(requester)
	if err != nil {
		return false // a bare domain sees no user attributes
	}
	if who == target {
		return true
	}
	a, err := s.cfg.Store.GetApproval(ctx, target, who)
	if err != nil || a.State != store.ApprovalApproved {
		return false
	}
	blocked, err := s.cfg.Store.IsBlocked(ctx, target, who)
	return err == nil && !blocked
}
