package store

import "errors"

// The errors below are the outcomes every Store reports the same way,
// whatever its backend. Implementations wrap them with the operation and its
// subject using %w ("store/sqlite: create account alice@a.example: store:
// already exists"), so test for them with errors.Is. No error ever carries a
// password, a password hash or a session token.
var (
	// ErrNotFound means the thing asked for does not exist: no such
	// account, no session with that token (or an expired one), no outbox
	// entry with that id, no claim to settle or release.
	ErrNotFound = errors.New("store: not found")

	// ErrExists means a create would duplicate something unique: an account
	// that already exists, an outbox entry with an id already queued, an
	// offline message already stored for its recipient, a claim already
	// settled.
	ErrExists = errors.New("store: already exists")

	// ErrBadPassword means Authenticate found the account but the password
	// does not match it.
	ErrBadPassword = errors.New("store: wrong password")

	// ErrFull means a bounded collection is at its bound: StoreOffline
	// found the recipient already holding the maximum number of offline
	// messages. Nothing was stored.
	ErrFull = errors.New("store: full")

	// ErrInvalid means an argument is unusable before the store is even
	// asked: a zero address, an empty password, origin or message id, a
	// bound below one, password hashing parameters out of range.
	ErrInvalid = errors.New("store: invalid argument")

	// ErrBadHash means a stored password hash is not an argon2id hash in
	// the PHC string format that ParsePasswordHash accepts. It points at a
	// damaged or foreign database row, not at the user.
	ErrBadHash = errors.New("store: malformed password hash")
)
