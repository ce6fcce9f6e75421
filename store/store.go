package store

import (
	"context"
	"strconv"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

// Store is everything a server keeps on disk. It is the sum of small
// interfaces, one per concern; a consumer declares the one (or the few
// methods) it needs, and only the composition root holds a whole Store.
//
// A Store is safe for concurrent use by multiple goroutines. Every method
// that can block takes a context, and returns its error (wrapped, see
// errors.go) if the context ends first.
type Store interface {
	Accounts
	Sessions
	Dedup
	Outbox
	Offline
	Contacts
	Approvals
	Blocks
	SubsIn
	SubsOut
	UserAttrs

	// Close releases the store's resources. Operations after Close fail.
	// Calling Close again does nothing and returns nil.
	Close() error
}

// # Accounts

// Accounts are the users of the local domains and their passwords. Only a
// hash of each password is kept (see HashPassword).
type Accounts interface {
	// CreateAccount creates the account a with password. It fails with
	// ErrExists if a exists, and ErrInvalid if a is zero or the password
	// empty.
	CreateAccount(ctx context.Context, a addr.Address, password string) error

	// Authenticate checks password against the account a. It returns nil
	// if the password matches, ErrBadPassword if it does not and
	// ErrNotFound if there is no such account. The three cases do the same
	// argon2 work (BurnPassword), so the time a login takes does not tell
	// whether the account exists. A matching password whose hash was made
	// with other parameters than the store's is rehashed with the store's.
	Authenticate(ctx context.Context, a addr.Address, password string) error

	// SetPassword replaces the password of a and, in the same transaction,
	// ends every session of a (DeleteSessions): whoever knew the old
	// password, or held a session token, must log in again. ErrNotFound
	// if there is no such account.
	SetPassword(ctx context.Context, a addr.Address, password string) error

	// DeleteAccount deletes the account a with its sessions, offline
	// messages, contacts, approvals, blocks and subscriptions (those in
	// which a is the local side: the owner, the presentity of a SubIn,
	// the watcher of a SubOut). Messages a sent that wait in the outbox
	// stay there: they were accepted. Rows of other accounts that name a
	// as a remote address (a contact, a watcher) stay too: to them a is
	// an address like any other. ErrNotFound if there is no such account.
	DeleteAccount(ctx context.Context, a addr.Address) error

	// AccountExists reports whether the account a exists.
	AccountExists(ctx context.Context, a addr.Address) (bool, error)

	// ListAccounts returns the accounts of domain, sorted by local part in
	// byte order, starting after the local part after ("" for the first
	// page) and at most limit of them (limit < 1: all). The next page
	// starts after the local part of the last address returned.
	ListAccounts(ctx context.Context, domain, after string, limit int) ([]addr.Address, error)
}

// # Sessions

// SessionTokenLen is the length of the session tokens CreateSession makes.
const SessionTokenLen = 32

// Session is a remembered login: a client that presents the token that
// CreateSession returned logs in as User without its password, until
// Expires.
type Session struct {
	// ID names the session among those of its user (for session lists and
	// revocation). The store assigns it; it is not secret.
	ID string
	// User is the account the session logs in to.
	User addr.Address
	// Client is the client's name and version, as the client gave it.
	Client string
	// Created is when the session was made; Expires is when it stops
	// working: a session is valid at time now while now is before Expires.
	Created time.Time
	Expires time.Time
}

// Sessions are the remembered logins. The store keeps only the SHA-256 of
// each token, so a copy of the database logs nobody in.
type Sessions interface {
	// CreateSession makes a session for s.User with s.Client, s.Created
	// and s.Expires (s.ID is ignored) and returns a new random token of
	// SessionTokenLen bytes, which the store does not keep and cannot
	// give again, with the session as stored. ErrNotFound if the account
	// does not exist.
	CreateSession(ctx context.Context, s Session) (token []byte, stored Session, err error)

	// LookupSession returns the session of token if it is valid at now.
	// An unknown or expired token gives ErrNotFound; the two are not told
	// apart.
	LookupSession(ctx context.Context, token []byte, now time.Time) (Session, error)

	// ListSessions returns the sessions of user that are valid at now,
	// oldest first.
	ListSessions(ctx context.Context, user addr.Address, now time.Time) ([]Session, error)

	// DeleteSession ends the session id of user (a logout, or a
	// revocation from a session list). ErrNotFound if user has no such
	// session.
	DeleteSession(ctx context.Context, user addr.Address, id string) error

	// DeleteSessions ends every session of user and reports how many there
	// were.
	DeleteSessions(ctx context.Context, user addr.Address) (int, error)

	// PruneSessions deletes the sessions that have expired at now and
	// reports how many. Expired sessions are never returned; pruning only
	// reclaims their space.
	PruneSessions(ctx context.Context, now time.Time) (int, error)
}

// # Received-message deduplication

// Result is the outcome of a delivery, kept so that a repeated request gets
// the same answer without being delivered again (DESIGN decision 7).
type Result struct {
	// Status is the outcome, for a message StatusDelivered, StatusStored,
	// StatusUnknownUser and so on.
	Status wire.Status
	// Count is the number of sessions a delivered message reached.
	Count uint32
}

// ClaimState is what Dedup.Claim found.
type ClaimState uint8

const (
	// Claimed means (origin, id) had not been seen: this call claimed it.
	// The caller delivers, then calls SettleClaim with the outcome (or
	// ReleaseClaim if it could not deliver at all).
	Claimed ClaimState = iota + 1
	// InFlight means an earlier Claim holds (origin, id) and has not
	// settled yet: the same request is being delivered right now, or its
	// claimant died. The caller delivers nothing and answers with a
	// temporary failure (StatusBusy), so that the sender tries again.
	InFlight
	// Settled means (origin, id) was delivered before: the caller delivers
	// nothing and answers with the stored Result.
	Settled
)

// String returns "claimed", "in-flight" or "settled".
func (c ClaimState) String() string {
	switch c {
	case Claimed:
		return "claimed"
	case InFlight:
		return "in-flight"
	case Settled:
		return "settled"
	}
	return "ClaimState(" + strconv.Itoa(int(c)) + ")"
}

// Dedup remembers the requests received, by their origin and id, so that
// nothing is delivered twice: a message whose connection died before its
// RESULT arrived is sent again with the same id, and the receiver answers
// the repeat from here.
//
// origin is the namespace in which the sender keeps its ids unique: the
// sending domain for a MESSAGE from another server, the sending user's
// address for a client's SEND. id is the request's id, 1 or more bytes.
//
// A claim moves from Claimed (in flight) to Settled, or is released and
// forgotten. Claims are kept from the time given to Claim until
// PruneClaims removes them; a repeat that arrives later than that is
// delivered again, so the retention (24 hours by default) must exceed the
// longest time a sender keeps retrying.
type Dedup interface {
	// Claim atomically claims (origin, id) at time now. Of any number of
	// concurrent calls for the same (origin, id), exactly one returns
	// Claimed; the others return InFlight, or Settled with the stored
	// Result once the winner has settled.
	Claim(ctx context.Context, origin string, id []byte, now time.Time) (ClaimState, Result, error)

	// SettleClaim records the outcome of an in-flight claim. ErrNotFound
	// if (origin, id) is not claimed (never, or released, or pruned);
	// ErrExists if it is already settled.
	SettleClaim(ctx context.Context, origin string, id []byte, r Result) error

	// ReleaseClaim forgets an in-flight claim whose claimant could not
	// deliver (and answers the sender with a temporary failure), so that a
	// repeat is delivered. ErrNotFound if (origin, id) is not in flight;
	// a settled claim is never released.
	ReleaseClaim(ctx context.Context, origin string, id []byte) error

	// LookupClaim reports what is known of (origin, id) without claiming
	// it: Settled with the stored Result, InFlight, or 0 if nothing.
	LookupClaim(ctx context.Context, origin string, id []byte) (ClaimState, Result, error)

	// RecordClaim records (origin, id), received at now, as settled with
	// r in one step, for a caller that delivered first and keeps
	// concurrent repeats out by itself (the router does, in memory). An
	// in-flight claim of (origin, id) is settled; a settled one is left
	// as it is. It returns at once, and calls done once with the outcome
	// when the record is written (or failed); done must not block.
	RecordClaim(ctx context.Context, origin string, id []byte, now time.Time, r Result, done func(error))

	// ReleaseClaims forgets the in-flight claims made before before, and
	// reports how many. A server calls it when it starts, with its start
	// time, to free the claims of a process that died while delivering:
	// their repeats are then delivered (at least once: one that was
	// delivered before the crash is delivered again).
	ReleaseClaims(ctx context.Context, before time.Time) (int, error)

	// PruneClaims deletes every claim, settled or in flight, made before
	// before, and reports how many.
	PruneClaims(ctx context.Context, before time.Time) (int, error)
}

// # Outbox

// OutboxEntry is a message accepted from a local sender and not yet
// finished with: it is stored before it is sent and leaves the outbox when
// its final result is known.
type OutboxEntry struct {
	// ID is the message id (wire.Message.ID), unique in the outbox.
	ID []byte
	// From and To are the envelope.
	From, To addr.Address
	// MIME is the message (§5).
	MIME []byte
	// Created is when the message was accepted.
	Created time.Time
	// Attempts counts the failed attempts so far (RescheduleOutbox).
	Attempts int
	// NextAttempt is when the message is due to be sent (again).
	NextAttempt time.Time
	// LastError says why the last attempt failed, for operators.
	LastError string
}

// Outbox is the queue of accepted messages that have no final result yet,
// so that nothing accepted is lost across a crash or a restart.
type Outbox interface {
	// PutOutbox stores e as given. ErrExists if an entry with e.ID is
	// queued; ErrInvalid if e.ID is empty.
	PutOutbox(ctx context.Context, e OutboxEntry) error

	// DoneOutbox removes the entry id: its final result is known.
	// ErrNotFound if there is no such entry.
	DoneOutbox(ctx context.Context, id []byte) error

	// RescheduleOutbox records a failed attempt of the entry id: it adds
	// one to Attempts and sets NextAttempt to next and LastError to
	// lastErr. ErrNotFound if there is no such entry.
	RescheduleOutbox(ctx context.Context, id []byte, next time.Time, lastErr string) error

	// DueOutbox returns the entries whose NextAttempt is at or before now,
	// oldest (by Created, then by insertion) first, at most limit of them
	// (limit < 1: all). It returns them; it does not take them: an entry
	// stays due until DoneOutbox or RescheduleOutbox.
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxEntry, error)

	// CountOutbox reports how many entries the outbox holds.
	CountOutbox(ctx context.Context) (int, error)
}

// # Offline messages

// OfflineMessage is a message kept for a recipient who was offline, for the
// domains that keep offline messages (draft-aol-imx-00 §6.4 item 3).
type OfflineMessage struct {
	// Seq is assigned by the store: it increases in the order messages
	// arrive and is never reused, so "everything up to Seq" names a set
	// of messages that later arrivals never join.
	Seq int64
	// ID is the message id; with From it is unique among the messages
	// kept for one recipient.
	ID []byte
	// From and To are the envelope; To is a local account.
	From, To addr.Address
	// MIME is the message (§5).
	MIME []byte
	// Received is when the message arrived.
	Received time.Time
}

// Offline are the messages kept for recipients who were offline, in arrival
// order, at most a bound per recipient.
//
// A server delivers them when the recipient logs in either with
// PopOffline (at most once: a message popped and then lost in a crash is
// gone) or, to lose nothing, with ListOffline and, once the client has
// acknowledged them, DeleteOffline up to the last Seq delivered.
type Offline interface {
	// StoreOffline keeps m (m.Seq is ignored) for m.To, unless m.To holds
	// max messages already: then it fails with ErrFull and stores nothing.
	// ErrNotFound if m.To is not an account; ErrExists if a message with
	// the same From and ID is kept for m.To already; ErrInvalid if max < 1.
	StoreOffline(ctx context.Context, m OfflineMessage, max int) error

	// ListOffline returns the first limit messages (limit < 1: all) kept
	// for to, in arrival order, and keeps them.
	ListOffline(ctx context.Context, to addr.Address, limit int) ([]OfflineMessage, error)

	// PopOffline returns and deletes, in one transaction, the first limit
	// messages (limit < 1: all) kept for to, in arrival order. Of
	// concurrent pops, each message goes to one only.
	PopOffline(ctx context.Context, to addr.Address, limit int) ([]OfflineMessage, error)

	// DeleteOffline deletes the messages kept for to whose Seq is at most
	// through, and reports how many.
	DeleteOffline(ctx context.Context, to addr.Address, through int64) (int, error)

	// CountOffline reports how many messages are kept for to.
	CountOffline(ctx context.Context, to addr.Address) (int, error)

	// PruneOffline deletes the messages, of every recipient, received
	// before before, and reports how many.
	PruneOffline(ctx context.Context, before time.Time) (int, error)
}
