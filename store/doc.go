// Package store declares what an imx server keeps on disk, as small
// interfaces composed into Store, with the model types they exchange and
// the errors they report. It holds no storage of its own: package
// store/sqlite is the default backend, PostgreSQL comes later for clusters
// (DESIGN decision 14), and every backend passes the conformance suite of
// package store/storetest.
//
// # Concerns
//
//   - Accounts: users and their argon2id password hashes.
//   - Sessions: remembered logins, by the SHA-256 of a random token.
//   - Dedup: the requests received, by origin and id, so that a repeat is
//     answered from here instead of being delivered twice.
//   - Outbox: messages accepted from local senders that have no final
//     result yet, so that nothing accepted is lost.
//   - Offline: messages kept for offline recipients, bounded per recipient.
//   - Contacts: each user's contact list, with aliases and the state of
//     each request to watch.
//   - Approvals: each user's decisions about who may watch them, with the
//     requests still pending.
//   - Blocks: the addresses and domains each user refuses.
//   - SubsIn and SubsOut: the presence subscriptions granted to watchers
//     and held for local watchers, with their expiry and renewal.
//   - UserAttrs: the attributes users set about themselves (alias,
//     max-message-length).
//
// # Time
//
// A store has no clock. Every method that needs the time takes it as an
// argument (now, before, or a time field of the value stored), so that the
// server's clock (or a test's) is the only one, expiry is tested without
// waiting, and a backend on another machine (a database server) cannot
// disagree with the node about what time it is. Times are kept to the
// microsecond and come back in UTC.
//
// # Passwords
//
// Passwords are hashed with argon2id (RFC 9106) and kept in the PHC string
// format, $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, with a 16-byte random
// salt and a 32-byte key. The functions here (HashPassword, CheckPassword,
// ParsePasswordHash, BurnPassword) are shared by every backend so that all
// of them hash alike and can read each other's hashes. The parameters of
// new hashes are a backend option (DefaultPasswordParams, the OWASP minimum,
// unless set); each hash is checked with the parameters it carries.
//
// # Errors
//
// Backends wrap ErrNotFound, ErrExists, ErrBadPassword, ErrFull,
// ErrInvalid and ErrBadHash with the operation and its subject; test for
// them with errors.Is.
package store
