package c2s

import (
	"context"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

// Authenticator checks logins. The server implements it on top of its
// account and session store.
type Authenticator interface {
	// Login checks c.Password, or c.Token when Password is empty, for
	// c.User, a user of a domain served here. With c.Remember it also
	// makes a session token for later logins and returns it with its
	// lifetime. A failure is an error that wraps a wire.Status:
	// wire.StatusAuthFailed for a wrong password, an unknown user or an
	// expired token (deliberately not told apart), wire.StatusRateLimited
	// when the user or the client's address tries too often; any other
	// error is answered internal-error and logged (so it must not contain
	// the password). Login runs on the connection's reader, bounded by
	// Config.LoginTimeout: nothing else happens on a connection before
	// its login.
	Login(ctx context.Context, c Credentials) (Grant, error)
}

// Credentials are what a LOGIN presents. Exactly one of Password and Token
// is set.
type Credentials struct {
	User     addr.Address
	Password string
	Token    []byte
	// Remember asks for a session token.
	Remember bool
	// Client is the client's name and version, for session lists.
	Client string
	// Remote is the client's network address (host:port), for rate
	// limits and logs.
	Remote string
}

// Grant is a successful login.
type Grant struct {
	// Token is the new session token when Credentials.Remember was set
	// (16 to 64 bytes), and TTL its lifetime.
	Token []byte
	TTL   time.Duration
	// SessionID names the session in SESSION and in logs, at most 64
	// bytes; empty lets c2s make one.
	SessionID string
}

// Router routes the messages that clients send. The server's message
// router implements it.
type Router interface {
	// Send routes a message from the logged-in user from and returns its
	// final result (delivered with a count, stored, offline, unknown-user,
	// ...), never nil. It may take long (a remote domain that must be
	// retried): c2s calls it on a worker goroutine (shared by the sessions
	// and kept between SENDs, so that a deep Send finds its stack grown),
	// at most Config.MaxSendsInFlight at once per session, with a context
	// bounded by Config.SendTimeout that does not end when the client
	// disconnects, so that a message accepted is finished (a client that
	// reconnects sends it again with the same id). s belongs to the
	// router; c2s copies the result and sends the copy with the SEND's
	// tag.
	Send(ctx context.Context, from addr.Address, s *wire.Send) *wire.Result
}

// Presence serves the contact and presence records of client-api.md
// (CONTACT-ADD … BLOCK). The server's presence service implements it; nil
// answers those records unsupported.
type Presence interface {
	AddContact(ctx context.Context, owner, contact addr.Address, alias string) wire.Status
	RemoveContact(ctx context.Context, owner, contact addr.Address) wire.Status
	// ContactList returns the owner's contacts as CONTACT-LIST texts:
	// "address state" or "address state alias".
	ContactList(ctx context.Context, owner addr.Address) ([]string, error)
	Approve(ctx context.Context, presentity, watcher addr.Address, approve bool) wire.Status
	Block(ctx context.Context, owner addr.Address, pattern string, block bool) wire.Status
	SetPresence(ctx context.Context, user addr.Address, p wire.Presence, status string)
	// SessionsChanged tells the number of sessions a user has now, after
	// a login or a logout: 0 means offline.
	SessionsChanged(ctx context.Context, user addr.Address, sessions int)
	// LoggedIn runs after a login, once the session can receive records:
	// pending requests and the contacts' presence are pushed then.
	LoggedIn(ctx context.Context, user addr.Address)
	// Attributes answers a client's GET-ATTRIBUTES about target, an
	// address or a bare domain on any domain: an *wire.Attrs, or a
	// *wire.Result with the failure.
	Attributes(ctx context.Context, requester addr.Address, target string, names []string) wire.Record
	// SetAttributes answers a client's ATTRIBUTES-SET for user: RESULT
	// ok, or bad-request with a text that says what is wrong; nothing is
	// changed unless every attribute is valid. If the request is valid
	// and declares capabilities, it calls setCaps with them, and c2s
	// keeps them for the session that sent it (see Handler.Capabilities).
	SetAttributes(ctx context.Context, user addr.Address, attrs []wire.Attr, setCaps func(caps []string)) *wire.Result
}
