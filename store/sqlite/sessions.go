package sqlite

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) ([]byte, store.Session, error) {
	token, stored, err := s.createSession(ctx, sess)
	if err != nil {
		return nil, store.Session{}, fmt.Errorf("store/sqlite: create session for %s: %w", sess.User, err)
	}
	return token, stored, nil
}

func (s *Store) createSession(ctx context.Context, sess store.Session) ([]byte, store.Session, error) {
	if err := checkAddress(sess.User); err != nil {
		return nil, store.Session{}, err
	}
	token := make([]byte, store.SessionTokenLen)
	if _, err := rand.Read(token); err != nil {
		return nil, store.Session{}, err
	}
	sum := sha256.Sum256(token)
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO sessions (account, token_hash, client, created, expires)
		SELECT id, ?, ?, ?, ? FROM accounts WHERE domain = ? AND local = ?
		RETURNING id`,
		sum[:], sess.Client, micro(sess.Created), micro(sess.Expires), sess.User.Domain(), sess.User.Local()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return nil, store.Session{}, err
	}
	sess.ID = strconv.FormatInt(id, 10)
	sess.Created = fromMicro(micro(sess.Created))
	sess.Expires = fromMicro(micro(sess.Expires))
	return token, sess, nil
}

// sessionColumns are the columns scanSession reads, from sessions s joined
// with accounts a.
const sessionColumns = `s.id, a.domain, a.local, s.client, s.created, s.expires`

func scanSession(row interface{ Scan(...any) error }) (store.Session, error) {
	var (
		id              int64
		domain, local   string
		sess            store.Session
		created, expire int64
	)
	if err := row.Scan(&id, &domain, &local, &sess.Client, &created, &expire); err != nil {
		return store.Session{}, err
	}
	u, err := addr.Parse(local + "@" + domain)
	if err != nil {
		return store.Session{}, fmt.Errorf("stored account %q@%q: %w", local, domain, err)
	}
	sess.ID = strconv.FormatInt(id, 10)
	sess.User = u
	sess.Created = fromMicro(created)
	sess.Expires = fromMicro(expire)
	return sess, nil
}

// LookupSession implements store.Sessions.
func (s *Store) LookupSession(ctx context.Context, token []byte, now time.Time) (store.Session, error) {
	sum := sha256.Sum256(token)
	sess, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionColumns+`
		FROM sessions s JOIN accounts a ON a.id = s.account
		WHERE s.token_hash = ? AND s.expires > ?`, sum[:], micro(now)))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		// The token is a secret: the error names neither it nor its hash.
		return store.Session{}, fmt.Errorf("store/sqlite: look up session: %w", err)
	}
	return sess, nil
}

// ListSessions implements store.Sessions.
func (s *Store) ListSessions(ctx context.Context, user addr.Address, now time.Time) ([]store.Session, error) {
	ss, err := s.listSessions(ctx, user, now)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list sessions of %s: %w", user, err)
	}
	return ss, nil
}

func (s *Store) listSessions(ctx context.Context, user addr.Address, now time.Time) ([]store.Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionColumns+`
		FROM sessions s JOIN accounts a ON a.id = s.account
		WHERE a.domain = ? AND a.local = ? AND s.expires > ?
		ORDER BY s.created, s.id`, user.Domain(), user.Local(), micro(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ss []store.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		ss = append(ss, sess)
	}
	return ss, rows.Err()
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, user addr.Address, id string) error {
	err := store.ErrNotFound
	if n, perr := strconv.ParseInt(id, 10, 64); perr == nil {
		var res sql.Result
		res, err = s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?
			AND account = (SELECT id FROM accounts WHERE domain = ? AND local = ?)`, n, user.Domain(), user.Local())
		if err == nil {
			err = mustAffect(res)
		}
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: delete session %q of %s: %w", id, user, err)
	}
	return nil
}

// DeleteSessions implements store.Sessions.
func (s *Store) DeleteSessions(ctx context.Context, user addr.Address) (int, error) {
	n, err := affected(s.w.ExecContext(ctx, `DELETE FROM sessions
		WHERE account = (SELECT id FROM accounts WHERE domain = ? AND local = ?)`, user.Domain(), user.Local()))
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: delete sessions of %s: %w", user, err)
	}
	return n, nil
}

// PruneSessions implements store.Sessions.
func (s *Store) PruneSessions(ctx context.Context, now time.Time) (int, error) {
	n, err := s.prune(ctx, `DELETE FROM sessions WHERE id IN
		(SELECT id FROM sessions WHERE expires <= ? LIMIT ?)`, micro(now))
	if err != nil {
		return n, fmt.Errorf("store/sqlite: prune sessions: %w", err)
	}
	return n, nil
}

// affected returns the number of rows a statement changed.
func affected(res sql.Result, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// pruneBatch is the number of rows one pruning transaction deletes, so that
// a large prune does not hold the write connection for long: other writes
// get their turn between batches.
const pruneBatch = 1000

// prune runs query, a DELETE whose arguments are cutoff and a batch size,
// until it deletes less than a full batch, and reports the rows deleted.
func (s *Store) prune(ctx context.Context, query string, cutoff int64) (int, error) {
	total := 0
	for {
		n, err := affected(s.w.ExecContext(ctx, query, cutoff, pruneBatch))
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}
