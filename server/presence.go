package server

import (
	"context"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/c2s"
	"github.com/imxproject/imx/presence"
	"github.com/imxproject/imx/wire"
)

// clientPresence adapts the presence service to c2s.Presence.
type clientPresence struct{ *presence.Service }

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

// latePush lets the presence service be made before the c2s handler that
// pushes its records to sessions.
type latePush struct{ h *c2s.Handler }

func (l *latePush) Push(ctx context.Context, user addr.Address, rec wire.Record) int {
	return l.h.Push(ctx, user, rec)
}
