package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imxproject/imx/c2s"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// authenticator checks client logins against the store: passwords, and the
// session tokens of remembered logins.
type authenticator struct {
	store interface {
		store.Accounts
		store.Sessions
	}
	lifetime time.Duration
}

func (a *authenticator) Login(ctx context.Context, c c2s.Credentials) (c2s.Grant, error) {
	now := time.Now()
	if c.Password != "" {
		switch err := a.store.Authenticate(ctx, c.User, c.Password); {
		case errors.Is(err, store.ErrBadPassword), errors.Is(err, store.ErrNotFound):
			return c2s.Grant{}, wire.StatusAuthFailed
		case err != nil:
			return c2s.Grant{}, fmt.Errorf("authenticate: %w", err)
		}
	} else {
		sess, err := a.store.LookupSession(ctx, c.Token, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return c2s.Grant{}, wire.StatusAuthFailed
		case err != nil:
			return c2s.Grant{}, fmt.Errorf("session lookup: %w", err)
		case sess.User != c.User:
			return c2s.Grant{}, wire.StatusAuthFailed
		}
		return c2s.Grant{SessionID: sess.ID}, nil
	}
	if !c.Remember {
		return c2s.Grant{}, nil
	}
	token, sess, err := a.store.CreateSession(ctx, store.Session{User: c.User, Client: c.Client, Created: now, Expires: now.Add(a.lifetime)})
	if err != nil {
		return c2s.Grant{}, fmt.Errorf("create session: %w", err)
	}
	return c2s.Grant{Token: token, TTL: a.lifetime, SessionID: sess.ID}, nil
}
