package server

import (
	"context"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/presence"
	"github.com/imxproject/imx/wire"
)

// clientPresence adapts the presence service to c2s.Presence.
type clientPresence struct {
	*presence.Service
	srv *Server
}

// ContactList renders the contacts as CONTACT-LIST texts.
func (p clientPresence) ContactList(ctx context.Context, owner addr.Address) ([]string, error) {
	list, err := p.Contacts(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, c := range list {
		line := c.Contact.String() + " " + c.State.String()
		if c.Alias != "" {
			line += " " + c.Alias
		}
		out = append(out, line)
	}
	return out, nil
}

// Attributes implements c2s.Presence: a client's GET-ATTRIBUTES is
// answered here for a local user or domain; for a user of another domain,
// from the attributes that rode along to the requester and are still fresh
// (presence.Service.CachedAttrs), else through federation; for another
// domain, through federation; always as the session's user.
func (p clientPresence) Attributes(ctx context.Context, requester addr.Address, target string, names []string) wire.Record {
	srv := p.srv
	domain := target
	if t, err := addr.Parse(target); err == nil {
		domain = t.Domain()
		if srv.presence.IsLocal(domain) {
			return &wire.Attrs{Target: t.String(), Attrs: p.UserAttrs(ctx, requester.String(), t, names)}
		}
		if attrs, ok := p.CachedAttrs(requester, t, names); ok {
			return &wire.Attrs{Target: t.String(), Attrs: attrs}
		}
	} else if d, err := addr.ParseDomain(target); err == nil {
		domain = d
		if srv.presence.IsLocal(d) {
			return srv.domainAttrs(d, &wire.GetAttrs{Target: d, Names: names})
		}
	} else {
		return &wire.Result{Code: wire.StatusBadRequest, Text: "invalid address or domain"}
	}
	resp, err := srv.s2s.Request(ctx, requester.Domain(), domain, &wire.GetAttrs{Requester: requester.String(), Target: target, Names: names})
	if err != nil {
		return &wire.Result{Code: wire.StatusUnreachable, Text: err.Error()}
	}
	return resp
}
