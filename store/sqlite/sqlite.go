package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imxproject/imx/store"
)

// Options configure a Store. The zero value of each field means its
// documented default.
type Options struct {
	// Password are the argon2id parameters of new password hashes.
	// Zero: store.DefaultPasswordParams. Tests use cheap ones.
	Password store.PasswordParams

	// BusyTimeout is how long a statement waits for a lock that another
	// process holds on the database (SQLite's busy_timeout) before it
	// fails. Zero: 5 seconds. Within one Store, writers queue for the one
	// write connection instead, in the order database/sql grants it.
	BusyTimeout time.Duration

	// Readers bounds the connections of the read pool. Zero: 4.
	Readers int
}

// Defaults of Options.
const (
	DefaultBusyTimeout = 5 * time.Second
	DefaultReaders     = 4
)

// Store is the SQLite store. Make one with Open; it is safe for concurrent
// use, and its methods are documented on the interfaces of package store
// that it implements.
type Store struct {
	path string
	w    *sql.DB // the one write connection
	r    *sql.DB // the read pool
	pw   store.PasswordParams

	hot    hotCache            // answers of the reads of every message (cache.go)
	claims *claimFilter        // the claims that may be in the table (claimfilter.go)
	stmts  [numStmts]*sql.Stmt // the hot statements, prepared on w
	// claimRows[k] records claimChunks[k] claims at once (recordClaims).
	claimRows [len(claimChunks)]*sql.Stmt
	rstmts    [numReadStmts]*sql.Stmt // the hot queries, prepared on the read pool

	// The group commit of the hot statements (batch.go).
	reqs          chan *batchReq
	quit          chan struct{} // closed by Close
	committerDone chan struct{} // closed when the committer returns

	// The checkpointer copies the write-ahead log into the database on a
	// connection of its own, so that its fsync never stalls a commit.
	ck          *sql.DB
	ckDone      chan struct{}
	checkpoints atomic.Uint64 // checkpoints that copied pages, for tests

	closeOnce sync.Once
	closeErr  error

	// Stats counts what the store does, for the server's metrics.
	Stats Stats
}

// Stats are a Store's counters; they only grow.
type Stats struct {
	// ClaimLookups counts the LookupClaim calls, and ClaimReads those of
	// them that the claims filter could not answer, which read the table.
	ClaimLookups, ClaimReads atomic.Uint64
	// Commits counts the transactions of the group commit (a lone
	// statement in autocommit mode counts as one), and Writes the
	// statements they ran: Writes / Commits is the mean batch.
	Commits, Writes atomic.Uint64
}

// ClaimFilterSize returns the memory of the claims filter and its number
// of generations (claimfilter.go).
func (s *Store) ClaimFilterSize() (bytes uint64, generations int) {
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	return s.claims.bits / 8, len(s.claims.gens)
}

var _ store.Store = (*Store)(nil)

// Open opens the database file at path, creating it if it does not exist,
// brings its schema up to date (see Schema in the package documentation)
// and returns the Store. The file's directory must exist. A database whose
// schema is newer than this program knows fails with an error wrapping
// ErrSchemaTooNew.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	s, err := open(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: open %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", store.ErrInvalid)
	}
	if opts.Password == (store.PasswordParams{}) {
		opts.Password = store.DefaultPasswordParams
	}
	if err := opts.Password.Validate(); err != nil {
		return nil, err
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	if opts.BusyTimeout < 0 {
		return nil, fmt.Errorf("%w: negative busy timeout %v", store.ErrInvalid, opts.BusyTimeout)
	}
	if opts.Readers == 0 {
		opts.Readers = DefaultReaders
	}
	if opts.Readers < 0 {
		return nil, fmt.Errorf("%w: negative reader count %d", store.ErrInvalid, opts.Readers)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)

	// The writer: WAL, synchronous=NORMAL, foreign keys, and transactions
	// that take the write lock when they begin (BEGIN IMMEDIATE), so that
	// a transaction never fails halfway on a lock it could not upgrade.
	w, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {busy},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"NORMAL"},
		"_foreign_keys": {"on"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := migrate(ctx, w, migrationFiles); err != nil {
		w.Close()
		return nil, err
	}

	// The readers: query_only, so that a write sent to the wrong pool
	// fails instead of competing with the writer.
	r, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {busy},
		"_foreign_keys": {"on"},
		"_query_only":   {"on"},
	}))
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(opts.Readers)
	r.SetMaxIdleConns(opts.Readers)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	st := &Store{
		path:          abs,
		w:             w,
		r:             r,
		pw:            opts.Password,
		reqs:          make(chan *batchReq, maxBatch),
		quit:          make(chan struct{}),
		committerDone: make(chan struct{}),
	}
	// Checkpoints leave the writer: it no longer checkpoints after the
	// commit that fills the log; the checkpointer does, on its own
	// connection (checkpoint.go).
	if _, err := w.ExecContext(ctx, "PRAGMA wal_autocheckpoint=0"); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	ck, err := sql.Open("sqlite", dsn(abs, url.Values{"_busy_timeout": {busy}}))
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	ck.SetMaxOpenConns(1)
	ck.SetConnMaxLifetime(0)
	ck.SetConnMaxIdleTime(0)
	st.ck, st.ckDone = ck, make(chan struct{})
	if err := st.loadClaimFilter(ctx); err != nil {
		ck.Close()
		r.Close()
		w.Close()
		return nil, fmt.Errorf("load the claims: %w", err)
	}
	go st.committer()
	go st.checkpointer()
	for i, q := range stmtSQL {
		if st.stmts[i], err = w.PrepareContext(ctx, q); err != nil {
			st.Close()
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
	}
	for k, n := range claimChunks {
		if st.claimRows[k], err = w.PrepareContext(ctx, claimRowsSQL(n)); err != nil {
			st.Close()
			return nil, fmt.Errorf("prepare the record of %d claims: %w", n, err)
		}
	}
	for i, q := range readStmtSQL {
		if st.rstmts[i], err = r.PrepareContext(ctx, q); err != nil {
			st.Close()
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
	}
	return st, nil
}

// The statements of the hot paths (a message received, a message sent),
// prepared once on the write connection instead of at every call, and run
// by the group commit (execBatched).
type stmtID int

const (
	stmtClaim stmtID = iota
	stmtSettle
	stmtRecordClaim
	stmtOutboxPut
	stmtOutboxDone
	stmtPutSubIn
	stmtPutSubOut
	numStmts
)

// claimRow is the row of values of stmtRecordClaim, which recordClaims
// repeats.
const claimRow = "(?, ?, ?, ?, ?)"

var stmtSQL = [numStmts]string{
	stmtClaim:  `INSERT INTO claims (origin, id, received) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
	stmtSettle: `UPDATE claims SET status = ?, count = ? WHERE origin = ? AND id = ? AND status IS NULL`,
	stmtRecordClaim: `INSERT INTO claims (origin, id, received, status, count) VALUES ` + claimRow + `
		ON CONFLICT (origin, id) DO UPDATE SET status = excluded.status, count = excluded.count WHERE claims.status IS NULL`,
	stmtOutboxPut: `INSERT INTO outbox (id, sender, recipient, mime, created, attempts, next_attempt, last_error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
	stmtOutboxDone: `DELETE FROM outbox WHERE id = ?`,
	// A subscription made or renewed, at the presentity's server and at
	// the watcher's: a renewal sweep writes many at once.
	stmtPutSubIn: `INSERT INTO subs_in (account, watcher_domain, watcher_local, expires, active)
		SELECT id, ?, ?, ?, ? FROM accounts WHERE domain = ? AND local = ?
		ON CONFLICT (account, watcher_domain, watcher_local) DO UPDATE
		SET expires = excluded.expires, active = excluded.active`,
	stmtPutSubOut: `INSERT INTO subs_out (account, presentity, expires, renew_at)
		SELECT id, ?, ?, ? FROM accounts WHERE domain = ? AND local = ?
		ON CONFLICT (account, presentity) DO UPDATE SET expires = excluded.expires, renew_at = excluded.renew_at`,
}

// The queries of the hot paths, prepared once on the read pool (a query
// parsed at every call cost more than running it).
type readStmtID int

const (
	rstmtAccountExists readStmtID = iota
	rstmtClaimState
	rstmtListBlocks
	rstmtGetApproval
	rstmtUserAttrs
	rstmtSubsOutTo
	rstmtSubsOutOf
	rstmtSubsInOf
	rstmtGetContact
	rstmtGetSubOut
	numReadStmts
)

var readStmtSQL = [numReadStmts]string{
	rstmtAccountExists: `SELECT count(*) FROM accounts WHERE domain = ? AND local = ?`,
	rstmtClaimState:    `SELECT status, count FROM claims WHERE origin = ? AND id = ?`,
	rstmtListBlocks:    `SELECT pattern FROM blocks WHERE account = ` + accountOf + ` ORDER BY pattern`,
	rstmtGetApproval:   `SELECT state, asked_at FROM approvals WHERE account = ` + accountOf + ` AND watcher = ?`,
	rstmtUserAttrs:     `SELECT name, value FROM user_attrs WHERE account = ` + accountOf + ` ORDER BY name`,
	// This one is driven by the local parts given (a JSON array, all of
	// one domain), through the accounts' unique index and the tables'
	// primary keys: CROSS JOIN keeps SQLite from starting with the
	// presentity, who may have thousands of watchers.
	rstmtSubsOutTo: `SELECT ` + subOutColumns + `, coalesce(c.state, '') FROM json_each(?) AS j
		CROSS JOIN accounts a ON a.domain = ? AND a.local = j.value
		CROSS JOIN subs_out o ON o.account = a.id AND o.presentity = ?
		LEFT JOIN contacts c ON c.account = a.id AND c.contact = o.presentity`,
	rstmtSubsOutOf: `SELECT ` + subOutColumns + `, coalesce(c.state, '') FROM subs_out o
		JOIN accounts a ON a.id = o.account
		LEFT JOIN contacts c ON c.account = a.id AND c.contact = o.presentity
		WHERE o.presentity = ? LIMIT ?`,
	rstmtSubsInOf: `SELECT watcher_domain, watcher_local, expires, active FROM subs_in
		WHERE account = ` + accountOf + ` ORDER BY watcher_domain, watcher_local LIMIT ?`,
	// A renewal at the watcher's server reads the contact and the
	// subscription.
	rstmtGetContact: `SELECT alias, state FROM contacts WHERE account = ` + accountOf + ` AND contact = ?`,
	rstmtGetSubOut:  `SELECT expires, renew_at FROM subs_out WHERE account = ` + accountOf + ` AND presentity = ?`,
}

// dsn is the modernc.org/sqlite data source name of the file at the
// absolute path abs: a file: URI, so that any character of the path (a '?'
// or '#' among them) is escaped, with the driver's parameters as its query.
func dsn(abs string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
	return u.String()
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close stops the group commit, then closes the read pool and the write
// connection. The last connection to close checkpoints the write-ahead log
// into the database file. Calling Close again does nothing and returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.committerDone
		s.failWaiting()
		<-s.ckDone
		var errs []error
		for _, st := range append(append(s.stmts[:], s.rstmts[:]...), s.claimRows[:]...) {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		s.closeErr = errors.Join(append(errs, s.ck.Close(), s.r.Close(), s.w.Close())...)
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("store/sqlite: close %s: %w", s.path, s.closeErr)
		}
	})
	return s.closeErr
}

// write runs fn in a write transaction and commits it if fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// sqliteCode returns the extended result code of a SQLite error, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// isUnique reports whether err is the violation of a UNIQUE or PRIMARY KEY
// constraint.
func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// micro and fromMicro convert times to and from the INTEGER microseconds
// since the Unix epoch of the schema.
func micro(t time.Time) int64 { return t.UnixMicro() }

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// limitArg turns the limit convention of package store (below 1: all) into
// SQLite's (negative: all).
func limitArg(limit int) int {
	if limit < 1 {
		return -1
	}
	return limit
}
