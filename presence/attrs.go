package presence

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

// This file is the user attributes (§4.4.5, §4.6.1, docs/design/001-presence.md
// "Attributes"): what a user sets, what watchers may read, what rides along
// on NOTIFY and MESSAGE, and the cache of what rode along from other
// domains.

// The user attributes (docs/protocol.md §5.15).
const (
	AttrAlias            = "alias"
	AttrPresence         = "presence"
	AttrStatus           = "status"
	AttrCapabilities     = "capabilities"
	AttrMaxMessageLength = "max-message-length"
)

// userAttrNames are the user attributes, in the order they are answered.
var userAttrNames = []string{AttrAlias, AttrPresence, AttrStatus, AttrCapabilities, AttrMaxMessageLength}

// DefaultMaxMessageSize is the max-message-size of a domain whose policy
// sets none (the default of imxd's configuration).
const DefaultMaxMessageSize = 64 << 10

// maxCapabilities bounds the tokens of one capabilities value.
const maxCapabilities = 32

// maxMessageSize is the largest message a local domain accepts.
func (s *Service) maxMessageSize(domain string) int {
	if n := s.cfg.Domains[domain].MaxMessageSize; n > 0 {
		return n
	}
	return DefaultMaxMessageSize
}

// SetAttributes sets attributes of the local user from an ATTRIBUTES-SET:
//
//   - alias: the user's display name, 0 to wire.MaxAliasLen bytes without
//     control characters; stored; empty removes it;
//   - max-message-length: the largest message the user wants, decimal
//     bytes, at most the domain's max-message-size; stored; empty or 0
//     goes back to the domain's;
//   - capabilities: space-separated tokens (such as html-lite) of the
//     session that sent the record; setCaps records them for it, and the
//     user's capabilities are the union over the live sessions.
//
// presence and status are refused (PRESENCE-SET sets them), and so is any
// other name; nothing is changed unless every attribute is valid. A change
// reaches the user's watchers with a NOTIFY.
func (s *Service) SetAttributes(ctx context.Context, user addr.Address, attrs []wire.Attr, setCaps func(caps []string)) *wire.Result {
	if !s.IsLocal(user.Domain()) {
		return status(wire.StatusNotAuthorized, "user not served here")
	}
	if len(attrs) == 0 {
		return status(wire.StatusBadRequest, "no attributes to set")
	}
	var (
		caps    []string
		hasCaps bool
		stored  []wire.Attr
	)
	seen := map[string]bool{}
	for _, a := range attrs {
		if seen[a.Name] {
			return status(wire.StatusBadRequest, "attribute "+a.Name+" given twice")
		}
		seen[a.Name] = true
		switch a.Name {
		case AttrAlias:
			if len(a.Value) > wire.MaxAliasLen {
				return status(wire.StatusBadRequest, "alias over "+strconv.Itoa(wire.MaxAliasLen)+" bytes")
			}
			if strings.ContainsFunc(a.Value, isControl) {
				return status(wire.StatusBadRequest, "alias holds a control character")
			}
			stored = append(stored, a)
		case AttrMaxMessageLength:
			v := a.Value
			if v != "" {
				n, err := strconv.ParseUint(v, 10, 31)
				max := s.maxMessageSize(user.Domain())
				switch {
				case err != nil:
					return status(wire.StatusBadRequest, "max-message-length is not a number of bytes")
				case n > uint64(max):
					return status(wire.StatusBadRequest, "max-message-length over the domain's max-message-size of "+strconv.Itoa(max))
				case n == 0:
					v = ""
				default:
					v = strconv.FormatUint(n, 10)
				}
			}
			stored = append(stored, wire.Attr{Name: a.Name, Value: v})
		case AttrCapabilities:
			hasCaps = true
			for c := range strings.FieldsSeq(a.Value) {
				if !wire.IsToken(c) {
					return status(wire.StatusBadRequest, "capability "+strconv.Quote(c)+" is not a token of [a-z0-9._-]")
				}
				if !slices.Contains(caps, c) {
					caps = append(caps, c)
				}
			}
			if len(caps) > maxCapabilities {
				return status(wire.StatusBadRequest, "more than "+strconv.Itoa(maxCapabilities)+" capabilities")
			}
			slices.Sort(caps)
		case AttrPresence, AttrStatus:
			return status(wire.StatusBadRequest, a.Name+" is set with PRESENCE-SET")
		default:
			return status(wire.StatusBadRequest, "unknown attribute "+a.Name+": only alias, capabilities and max-message-length can be set")
		}
	}
	before := s.shared(ctx, user)
	if hasCaps && setCaps != nil {
		setCaps(caps)
	}
	for _, a := range stored {
		if err := s.cfg.Store.SetUserAttr(ctx, user, a.Name, a.Value); err != nil {
			s.log.Error("attribute write failed", "user", user.String(), "name", a.Name, "err", err)
			return status(wire.StatusInternal, "")
		}
	}
	if !slices.Equal(before, s.shared(ctx, user)) {
		s.fanout(context.WithoutCancel(ctx), user)
	}
	return status(wire.StatusOK, "")
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// all returns every user attribute of the local user, in the order of
// userAttrNames; alias, status and capabilities may be empty.
func (s *Service) all(ctx context.Context, user addr.Address) []wire.Attr {
	var alias string
	maxLen := s.maxMessageSize(user.Domain())
	stored, err := s.cfg.Store.GetUserAttrs(ctx, user)
	if err != nil {
		s.log.Error("attributes lookup failed", "user", user.String(), "err", err)
	}
	for _, a := range stored {
		switch a.Name {
		case AttrAlias:
			alias = a.Value
		case AttrMaxMessageLength:
			// The domain's limit may have gone down since.
			if n, err := strconv.Atoi(a.Value); err == nil && n > 0 {
				maxLen = min(maxLen, n)
			}
		}
	}
	p, st := s.current(user)
	var caps []string
	if s.cfg.Capabilities != nil && p != wire.PresenceOffline {
		caps = s.cfg.Capabilities(user)
	}
	return []wire.Attr{
		{Name: AttrAlias, Value: alias},
		{Name: AttrPresence, Value: p.String()},
		{Name: AttrStatus, Value: st},
		{Name: AttrCapabilities, Value: strings.Join(caps, " ")},
		{Name: AttrMaxMessageLength, Value: strconv.Itoa(maxLen)},
	}
}

// shared returns the attributes of the local user that ride along on the
// NOTIFYs to approved watchers: alias, capabilities and
// max-message-length, empty values included, so that the receiver knows
// them all (presence and status are fields of NOTIFY).
func (s *Service) shared(ctx context.Context, user addr.Address) []wire.Attr {
	out := s.all(ctx, user)
	return slices.DeleteFunc(out, func(a wire.Attr) bool { return a.Name == AttrPresence || a.Name == AttrStatus })
}

// pick selects the attributes that names asks for: all the non-empty ones
// for none, else every one named, empty or not, in the order of all.
func pick(all []wire.Attr, names []string) []wire.Attr {
	var out []wire.Attr
	for _, a := range all {
		if len(names) == 0 && a.Value != "" || slices.Contains(names, a.Name) {
			out = append(out, a)
		}
	}
	return out
}

// UserAttrs returns the attributes of the local user target that requester
// (an address, or a domain) may see: all of them for target himself and the
// watchers target approved and has not blocked; nothing for anyone else,
// so that the answer reveals nothing (§6.2.2.1 item 1). names selects
// them; none means all that are set.
func (s *Service) UserAttrs(ctx context.Context, requester string, target addr.Address, names []string) []wire.Attr {
	if !s.IsLocal(target.Domain()) || !s.mayWatch(ctx, requester, target) {
		return nil
	}
	return pick(s.all(ctx, target), names)
}

// Outgoing returns the attributes of the local user from that ride along
// on a message to to (§4.6.1): every user attribute, empty values
// included, if to may see them (to is from, or a watcher from approved and
// has not blocked), and none otherwise. The router calls it for every
// message a local client sends.
func (s *Service) Outgoing(ctx context.Context, from, to addr.Address) []wire.Attr {
	if !s.IsLocal(from.Domain()) || !s.mayWatch(ctx, to.String(), from) {
		return nil
	}
	return s.all(ctx, from)
}

// Incoming takes the attributes that rode along on a message from from, a
// user of another domain, to the local user to: it keeps the user
// attributes among them in the cache, for to only, for the subscription
// timeout of to's domain, and returns them, to be shown to to's sessions.
// Anything else is dropped.
func (s *Service) Incoming(from, to addr.Address, attrs []wire.Attr) []wire.Attr {
	kept := userAttrsOnly(attrs)
	if len(kept) == 0 || s.IsLocal(from.Domain()) || !s.IsLocal(to.Domain()) {
		return kept
	}
	now := s.now()
	s.attrs.put(from, []addr.Address{to}, kept, now.Add(time.Duration(s.timeout(to.Domain()))*time.Second), now)
	return kept
}

// userAttrsOnly returns the user attributes of attrs, the first of each
// name, with an alias no longer than an alias may be.
func userAttrsOnly(attrs []wire.Attr) []wire.Attr {
	var out []wire.Attr
	for _, a := range attrs {
		if !slices.Contains(userAttrNames, a.Name) || slices.ContainsFunc(out, func(b wire.Attr) bool { return b.Name == a.Name }) {
			continue
		}
		if a.Name == AttrAlias && len(a.Value) > wire.MaxAliasLen {
			continue
		}
		out = append(out, wire.Attr{Name: strings.Clone(a.Name), Value: strings.Clone(a.Value)})
	}
	return out
}

// noteNotify keeps the attributes that rode along on a NOTIFY from
// another domain for its watchers (subscribed until until), with the
// presence and status it carries; a NOTIFY that carries no user attribute
// (a denial, a block) takes back what the cache showed those watchers.
func (s *Service) noteNotify(presentity addr.Address, watchers []addr.Address, r *wire.Notify, until time.Time, denied bool) {
	if s.IsLocal(presentity.Domain()) || len(watchers) == 0 {
		return
	}
	kept := userAttrsOnly(r.Attrs)
	if denied || len(kept) == 0 {
		s.attrs.forget(presentity, watchers)
		return
	}
	kept = slices.DeleteFunc(kept, func(a wire.Attr) bool { return a.Name == AttrPresence || a.Name == AttrStatus })
	kept = append(kept, wire.Attr{Name: AttrPresence, Value: r.Presence.String()}, wire.Attr{Name: AttrStatus, Value: strings.Clone(r.Status)})
	s.attrs.put(presentity, watchers, kept, until, s.now())
}

// CachedAttrs answers a GET-ATTRIBUTES of the local user requester about
// target, a user of another domain, from what rode along to requester
// himself and is still fresh; ok is false when the cache cannot answer
// every name asked (none: every user attribute), and the request must go
// to target's domain.
func (s *Service) CachedAttrs(requester, target addr.Address, names []string) (attrs []wire.Attr, ok bool) {
	if s.IsLocal(target.Domain()) {
		return nil, false
	}
	return s.attrs.get(target, requester, names, s.now())
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
