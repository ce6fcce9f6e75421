// Package sqlite is the default store of imx: one SQLite database file in the
// server's data directory, through the pure-Go driver modernc.org/sqlite (no
// cgo). It implements store.Store and passes the conformance suite of
// package store/storetest. Only package server (and commands) import it;
// everything else takes the interfaces of package store.
//
// # Connections
//
// A Store holds two database/sql pools on the same file:
//
//   - the writer, exactly one connection (SetMaxOpenConns(1)), with
//     journal_mode=WAL, synchronous=NORMAL, foreign_keys=on and
//     BEGIN IMMEDIATE transactions. Every write goes through it, so writes
//     never contend for SQLite's lock inside the process: they queue for the
//     connection in Go, and a transaction never fails halfway on a lock it
//     could not upgrade;
//   - the readers, a pool of Options.Readers connections (4 by default) with
//     query_only=on. In WAL mode readers do not block the writer and the
//     writer does not block them; each read sees the last committed
//     transaction.
//
// busy_timeout (5 s by default) covers only other processes that open the
// same file, such as the sqlite3 shell of an operator.
//
// Operations that read and then write (storing an offline message under
// its bound, popping offline messages, changing a password with its
// sessions) run in one write transaction, which is what makes them atomic.
//
// Password hashing (argon2id, tens of milliseconds) runs before the write
// connection is taken, never while holding it. Deletions of many rows
// (PruneClaims, PruneOffline, PruneSessions, PruneSubsIn, PruneSubsOut,
// ReleaseClaims) run in batches of 1000 rows, one transaction each, so
// other writes get their turn.
//
// # Group commit
//
// The writes of the hot paths, claiming and settling a received message and
// putting and removing an outbox entry, are single prepared statements that
// one committer goroutine runs for all callers: every statement waiting at
// that moment (up to 128) goes into one transaction with one commit, so
// under load many messages share a commit. A caller alone runs in autocommit
// mode. A constraint violation fails its own statement only; any other
// error fails the rest of the batch. Once handed over, a statement's outcome
// is reported as it happened even if the caller's context ends meanwhile, so
// a write that committed is never reported as canceled. Close stops the
// committer.
//
// # Durability
//
// WAL with synchronous=NORMAL (DESIGN decision 12) syncs the write-ahead log
// to disk at checkpoints, not at every commit. What that means:
//
//   - a crash of the process (a panic, SIGKILL, the OOM killer) loses
//     nothing that was committed: the log is in the operating system's page
//     cache, and the next Open replays it;
//   - a crash of the machine (power loss, a kernel panic) can lose the last
//     transactions committed before it, those whose log pages the kernel had
//     not yet written back: on Linux with its defaults up to about the
//     last 30 seconds of writes, fewer when checkpoints come sooner: a
//     checkpointer goroutine copies the log into the database (and syncs
//     it) every half second on a connection of its own, so that no commit
//     waits for that fsync; SQLite's automatic checkpoint on the writer is
//     off. The database stays
//     consistent: it comes back as it was after some earlier commit, never
//     half-written and never corrupt.
//
// For imx this means that after a power loss a message accepted just before
// it may be missing from the outbox although its sender was told it was
// accepted, a claim may be forgotten (a repeat of that message is then
// delivered again), and a password change or a session may be undone. The
// default synchronous=FULL would close that window at the price of an fsync
// per commit: BenchmarkCommit measured 992 commits/s with FULL against
// 7,576 with NORMAL on the project's machine. docs/storage.md has the
// figures and the reasoning.
//
// # Schema
//
// Migrations are the files migrations/NNNN_name.sql, embedded in the binary.
// Open applies those the database lacks, in order, each in a transaction
// of its own together with its row in schema_migrations (version, name,
// applied). A database with a version this program does not know (made by a
// newer imxd) is refused with ErrSchemaTooNew. The tables of version 1
// (0001_init.sql):
//
//	accounts  (id, domain, local, password)        UNIQUE (domain, local)
//	sessions  (id, account → accounts, token_hash UNIQUE, client, created, expires)
//	claims    (origin, id, received, status NULL while in flight, count)
//	          PRIMARY KEY (origin, id), WITHOUT ROWID
//	outbox    (seq, id UNIQUE, sender, recipient, mime, created, attempts,
//	           next_attempt, last_error)
//	offline   (seq AUTOINCREMENT, account → accounts, sender, id, mime, received)
//	          UNIQUE (account, sender, id)
//
// Version 2 (0002_presence.sql) adds the storage of presence; in each
// table account is the local side, the other address is text:
//
//	contacts  (account → accounts, contact, alias, state)
//	          PRIMARY KEY (account, contact)
//	approvals (account → accounts, watcher, state, asked_at)
//	          PRIMARY KEY (account, watcher)
//	blocks    (account → accounts, pattern)  PRIMARY KEY (account, pattern)
//	subs_in   (account → accounts, watcher_domain, watcher_local, expires, active)
//	          PRIMARY KEY (account, watcher_domain, watcher_local)
//	subs_out  (account → accounts, presentity, expires, renew_at)
//	          PRIMARY KEY (account, presentity)
//
// All tables are STRICT. Times are INTEGER microseconds since the Unix
// epoch. Deleting an account deletes its sessions, offline messages,
// contacts, approvals, blocks and subscriptions (ON DELETE CASCADE); the
// outbox refers to addresses, not accounts, so an accepted message
// outlives its sender's account.
package sqlite
