package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// PutOutbox implements store.Outbox. The insert runs in the group commit.
func (s *Store) PutOutbox(ctx context.Context, e store.OutboxEntry) error {
	err := s.putOutbox(ctx, e)
	if err != nil {
		return fmt.Errorf("store/sqlite: put outbox %x: %w", e.ID, err)
	}
	return nil
}

func (s *Store) putOutbox(ctx context.Context, e store.OutboxEntry) error {
	if len(e.ID) == 0 {
		return fmt.Errorf("%w: empty id", store.ErrInvalid)
	}
	if err := checkAddress(e.From); err != nil {
		return err
	}
	if err := checkAddress(e.To); err != nil {
		return err
	}
	mime := e.MIME
	if mime == nil {
		mime = []byte{} // NOT NULL: an empty message is an empty BLOB
	}
	_, err := s.execBatched(ctx, stmtOutboxPut,
		e.ID, e.From.String(), e.To.String(), mime, micro(e.Created), e.Attempts, micro(e.NextAttempt), e.LastError)
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

// DoneOutbox implements store.Outbox. The delete runs in the group commit.
func (s *Store) DoneOutbox(ctx context.Context, id []byte) error {
	n, err := s.execBatched(ctx, stmtOutboxDone, id)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: outbox done %x: %w", id, err)
	}
	return nil
}

// RescheduleOutbox implements store.Outbox.
func (s *Store) RescheduleOutbox(ctx context.Context, id []byte, next time.Time, lastErr string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ?
		WHERE id = ?`, micro(next), lastErr, id)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: reschedule outbox %x: %w", id, err)
	}
	return nil
}

// DueOutbox implements store.Outbox.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxEntry, error) {
	es, err := s.dueOutbox(ctx, now, limit)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: due outbox: %w", err)
	}
	return es, nil
}

func (s *Store) dueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, sender, recipient, mime, created, attempts, next_attempt, last_error
		FROM outbox WHERE next_attempt <= ? ORDER BY created, seq LIMIT ?`, micro(now), limitArg(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var es []store.OutboxEntry
	for rows.Next() {
		var (
			e                    store.OutboxEntry
			from, to             string
			created, nextAttempt int64
		)
		if err := rows.Scan(&e.ID, &from, &to, &e.MIME, &created, &e.Attempts, &nextAttempt, &e.LastError); err != nil {
			return nil, err
		}
		if e.From, err = addr.Parse(from); err != nil {
			return nil, fmt.Errorf("stored sender %q: %w", from, err)
		}
		if e.To, err = addr.Parse(to); err != nil {
			return nil, fmt.Errorf("stored recipient %q: %w", to, err)
		}
		e.Created = fromMicro(created)
		e.NextAttempt = fromMicro(nextAttempt)
		es = append(es, e)
	}
	return es, rows.Err()
}

// CountOutbox implements store.Outbox.
func (s *Store) CountOutbox(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store/sqlite: count outbox: %w", err)
	}
	return n, nil
}
