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

func checkApproval(a store.Approval) error {
	if err := checkAddress(a.Presentity); err != nil {
		return err
	}
	if err := checkAddress(a.Watcher); err != nil {
		return err
	}
	if !a.State.Valid() {
		return fmt.Errorf("%w: approval state %q", store.ErrInvalid, string(a.State))
	}
	return nil
}

// SetApproval implements store.Approvals.
func (s *Store) SetApproval(ctx context.Context, a store.Approval) error {
	defer s.hot.forgetApproval(a.Presentity, a.Watcher)
	err := checkApproval(a)
	if err == nil {
		var res sql.Result
		res, err = s.w.ExecContext(ctx, `INSERT INTO approvals (account, watcher, state, asked_at)
			SELECT id, ?, ?, ? FROM accounts WHERE domain = ? AND local = ?
			ON CONFLICT (account, watcher) DO UPDATE SET state = excluded.state, asked_at = excluded.asked_at`,
			a.Watcher.String(), string(a.State), micro(a.Asked), a.Presentity.Domain(), a.Presentity.Local())
		if err == nil {
			err = mustAffect(res)
		}
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: set approval of %s by %s: %w", a.Watcher, a.Presentity, err)
	}
	return nil
}

// RequestApproval implements store.Approvals. The insert and the read are
// one write transaction, so a decision cannot slip in between.
func (s *Store) RequestApproval(ctx context.Context, presentity, watcher addr.Address, asked time.Time) (store.Approval, bool, error) {
	defer s.hot.forgetApproval(presentity, watcher)
	a, created, err := s.requestApproval(ctx, presentity, watcher, asked)
	if err != nil {
		return store.Approval{}, false, fmt.Errorf("store/sqlite: request approval of %s by %s: %w", watcher, presentity, err)
	}
	return a, created, nil
}

func (s *Store) requestApproval(ctx context.Context, presentity, watcher addr.Address, asked time.Time) (store.Approval, bool, error) {
	a := store.Approval{Presentity: presentity, Watcher: watcher, State: store.ApprovalPending, Asked: asked}
	if err := checkApproval(a); err != nil {
		return store.Approval{}, false, err
	}
	var created bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		var account int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM accounts WHERE domain = ? AND local = ?`,
			presentity.Domain(), presentity.Local()).Scan(&account)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		n, err := affected(tx.ExecContext(ctx, `INSERT INTO approvals (account, watcher, state, asked_at)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			account, watcher.String(), string(store.ApprovalPending), micro(asked)))
		if err != nil {
			return err
		}
		created = n > 0
		var state string
		var at int64
		if err := tx.QueryRowContext(ctx, `SELECT state, asked_at FROM approvals WHERE account = ? AND watcher = ?`,
			account, watcher.String()).Scan(&state, &at); err != nil {
			return err
		}
		a.State, a.Asked = store.ApprovalState(state), fromMicro(at)
		return nil
	})
	if err != nil {
		return store.Approval{}, false, err
	}
	return a, created, nil
}

// GetApproval implements store.Approvals.
func (s *Store) GetApproval(ctx context.Context, presentity, watcher addr.Address) (store.Approval, error) {
	if c, ok := s.hot.approval(presentity, watcher); ok {
		if !c.found {
			// Every message to a user who has not approved its sender
			// asks this: no fmt.Errorf until the text is wanted.
			return store.Approval{}, &noApproval{presentity: presentity, watcher: watcher}
		}
		return c.a, nil
	}
	gen := s.hot.generation()
	a, err := s.getApproval(ctx, presentity, watcher)
	switch {
	case err == nil:
		s.hot.putApproval(gen, presentity, watcher, cachedApproval{a: a, found: true})
	case errors.Is(err, store.ErrNotFound):
		s.hot.putApproval(gen, presentity, watcher, cachedApproval{})
	}
	return a, err
}

func (s *Store) getApproval(ctx context.Context, presentity, watcher addr.Address) (store.Approval, error) {
	a := store.Approval{Presentity: presentity, Watcher: watcher}
	var (
		state string
		at    int64
	)
	err := s.rstmts[rstmtGetApproval].QueryRowContext(ctx, presentity.Domain(), presentity.Local(), watcher.String()).Scan(&state, &at)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Approval{}, fmt.Errorf("store/sqlite: get approval of %s by %s: %w", watcher, presentity, err)
	}
	a.State, a.Asked = store.ApprovalState(state), fromMicro(at)
	return a, nil
}

// DeleteApproval implements store.Approvals.
func (s *Store) DeleteApproval(ctx context.Context, presentity, watcher addr.Address) error {
	defer s.hot.forgetApproval(presentity, watcher)
	res, err := s.w.ExecContext(ctx, `DELETE FROM approvals WHERE account = `+accountOf+` AND watcher = ?`,
		presentity.Domain(), presentity.Local(), watcher.String())
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: delete approval of %s by %s: %w", watcher, presentity, err)
	}
	return nil
}

// ListApprovals implements store.Approvals.
func (s *Store) ListApprovals(ctx context.Context, presentity addr.Address, state store.ApprovalState) ([]store.Approval, error) {
	as, err := s.listApprovals(ctx, presentity, state)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list approvals of %s: %w", presentity, err)
	}
	return as, nil
}

func (s *Store) listApprovals(ctx context.Context, presentity addr.Address, state store.ApprovalState) ([]store.Approval, error) {
	if state != "" && !state.Valid() {
		return nil, fmt.Errorf("%w: approval state %q", store.ErrInvalid, string(state))
	}
	rows, err := s.r.QueryContext(ctx, `SELECT watcher, state, asked_at FROM approvals
		WHERE account = `+accountOf+` AND (? = '' OR state = ?)
		ORDER BY asked_at, watcher`,
		presentity.Domain(), presentity.Local(), string(state), string(state))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var as []store.Approval
	for rows.Next() {
		var (
			watcher, st string
			at          int64
		)
		if err := rows.Scan(&watcher, &st, &at); err != nil {
			return nil, err
		}
		w, err := parseStored("watcher", watcher)
		if err != nil {
			return nil, err
		}
		as = append(as, store.Approval{Presentity: presentity, Watcher: w, State: store.ApprovalState(st), Asked: fromMicro(at)})
	}
	return as, rows.Err()
}

// noApproval is the ErrNotFound of a cached GetApproval, formatted only
// when its text is asked for.
type noApproval struct{ presentity, watcher addr.Address }

func (e *noApproval) Error() string {
	return fmt.Sprintf("store/sqlite: get approval of %s by %s: %v", e.watcher, e.presentity, store.ErrNotFound)
}

func (e *noApproval) Unwrap() error { return store.ErrNotFound }
