package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// StoreOffline implements store.Offline. The count and the insert are one
// write transaction, so concurrent stores for one recipient never exceed
// the bound.
func (s *Store) StoreOffline(ctx context.Context, m store.OfflineMessage, max int) error {
	if err := s.storeOffline(ctx, m, max); err != nil {
		return fmt.Errorf("store/sqlite: store offline message %x for %s: %w", m.ID, m.To, err)
	}
	return nil
}

func (s *Store) storeOffline(ctx context.Context, m store.OfflineMessage, max int) error {
	if max < 1 {
		return fmt.Errorf("%w: bound %d", store.ErrInvalid, max)
	}
	if len(m.ID) == 0 {
		return fmt.Errorf("%w: empty id", store.ErrInvalid)
	}
	if err := checkAddress(m.From); err != nil {
		return err
	}
	if err := checkAddress(m.To); err != nil {
		return err
	}
	mime := m.MIME
	if mime == nil {
		mime = []byte{}
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var account int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM accounts WHERE domain = ? AND local = ?`,
			m.To.Domain(), m.To.Local()).Scan(&account)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM offline WHERE account = ?`, account).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return store.ErrFull
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO offline (account, sender, id, mime, received) VALUES (?, ?, ?, ?, ?)`,
			account, m.From.String(), m.ID, mime, micro(m.Received))
		if isUnique(err) {
			return store.ErrExists
		}
		return err
	})
}

// offlineQuery selects the messages of one recipient in arrival order.
const offlineQuery = `SELECT o.seq, o.sender, o.id, o.mime, o.received
	FROM offline o JOIN accounts a ON a.id = o.account
	WHERE a.domain = ? AND a.local = ? ORDER BY o.seq LIMIT ?`

func scanOffline(rows *sql.Rows, to addr.Address) ([]store.OfflineMessage, error) {
	defer rows.Close()
	var ms []store.OfflineMessage
	for rows.Next() {
		var (
			m        store.OfflineMessage
			from     string
			received int64
		)
		if err := rows.Scan(&m.Seq, &from, &m.ID, &m.MIME, &received); err != nil {
			return nil, err
		}
		var err error
		if m.From, err = addr.Parse(from); err != nil {
			return nil, fmt.Errorf("stored sender %q: %w", from, err)
		}
		m.To = to
		m.Received = fromMicro(received)
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// ListOffline implements store.Offline.
func (s *Store) ListOffline(ctx context.Context, to addr.Address, limit int) ([]store.OfflineMessage, error) {
	rows, err := s.r.QueryContext(ctx, offlineQuery, to.Domain(), to.Local(), limitArg(limit))
	var ms []store.OfflineMessage
	if err == nil {
		ms, err = scanOffline(rows, to)
	}
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list offline messages for %s: %w", to, err)
	}
	return ms, nil
}

// PopOffline implements store.Offline.
func (s *Store) PopOffline(ctx context.Context, to addr.Address, limit int) ([]store.OfflineMessage, error) {
	var ms []store.OfflineMessage
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, offlineQuery, to.Domain(), to.Local(), limitArg(limit))
		if err != nil {
			return err
		}
		if ms, err = scanOffline(rows, to); err != nil || len(ms) == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM offline
			WHERE account = (SELECT id FROM accounts WHERE domain = ? AND local = ?) AND seq <= ?`,
			to.Domain(), to.Local(), ms[len(ms)-1].Seq)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: pop offline messages for %s: %w", to, err)
	}
	return ms, nil
}

// DeleteOffline implements store.Offline.
func (s *Store) DeleteOffline(ctx context.Context, to addr.Address, through int64) (int, error) {
	n, err := affected(s.w.ExecContext(ctx, `DELETE FROM offline
		WHERE account = (SELECT id FROM accounts WHERE domain = ? AND local = ?) AND seq <= ?`,
		to.Domain(), to.Local(), through))
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: delete offline messages for %s: %w", to, err)
	}
	return n, nil
}

// CountOffline implements store.Offline.
func (s *Store) CountOffline(ctx context.Context, to addr.Address) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM offline o JOIN accounts a ON a.id = o.account
		WHERE a.domain = ? AND a.local = ?`, to.Domain(), to.Local()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: count offline messages for %s: %w", to, err)
	}
	return n, nil
}

// PruneOffline implements store.Offline.
func (s *Store) PruneOffline(ctx context.Context, before time.Time) (int, error) {
	n, err := s.prune(ctx, `DELETE FROM offline WHERE seq IN
		(SELECT seq FROM offline WHERE received < ? LIMIT ?)`, micro(before))
	if err != nil {
		return n, fmt.Errorf("store/sqlite: prune offline messages: %w", err)
	}
	return n, nil
}
