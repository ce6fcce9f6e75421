package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

func checkAddress(a addr.Address) error {
	if a.IsZero() {
		return fmt.Errorf("%w: zero address", store.ErrInvalid)
	}
	return nil
}

// CreateAccount implements store.Accounts. The password is hashed before
// the write connection is taken, so hashing never holds up other writers.
func (s *Store) CreateAccount(ctx context.Context, a addr.Address, password string) error {
	defer s.hot.forget(a)
	if err := s.createAccount(ctx, a, password); err != nil {
		return fmt.Errorf("store/sqlite: create account %s: %w", a, err)
	}
	return nil
}

func (s *Store) createAccount(ctx context.Context, a addr.Address, password string) error {
	if err := checkAddress(a); err != nil {
		return err
	}
	hash, err := store.HashPassword(password, s.pw)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO accounts (domain, local, password) VALUES (?, ?, ?)`,
		a.Domain(), a.Local(), hash)
	if isUnique(err) {
		return store.ErrExists
	}
	return err
}

// Authenticate implements store.Accounts.
func (s *Store) Authenticate(ctx context.Context, a addr.Address, password string) error {
	if err := s.authenticate(ctx, a, password); err != nil {
		return fmt.Errorf("store/sqlite: authenticate %s: %w", a, err)
	}
	return nil
}

func (s *Store) authenticate(ctx context.Context, a addr.Address, password string) error {
	var (
		id   int64
		hash string
	)
	err := s.r.QueryRowContext(ctx, `SELECT id, password FROM accounts WHERE domain = ? AND local = ?`,
		a.Domain(), a.Local()).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		store.BurnPassword(password, s.pw)
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	h, err := store.ParsePasswordHash(hash)
	if err != nil {
		store.BurnPassword(password, s.pw)
		return err
	}
	if !h.Check(password) {
		return store.ErrBadPassword
	}
	if h.Params == s.pw && len(h.Salt) == store.PasswordSaltLen && len(h.Key) == store.PasswordKeyLen {
		return nil
	}
	// The hash was made with other parameters: replace it with one made
	// with the store's, unless the password changed meanwhile.
	fresh, err := store.HashPassword(password, s.pw)
	if err != nil {
		return fmt.Errorf("rehash: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE accounts SET password = ? WHERE id = ? AND password = ?`,
		fresh, id, hash); err != nil {
		return fmt.Errorf("rehash: %w", err)
	}
	return nil
}

// SetPassword implements store.Accounts.
func (s *Store) SetPassword(ctx context.Context, a addr.Address, password string) error {
	if err := s.setPassword(ctx, a, password); err != nil {
		return fmt.Errorf("store/sqlite: set password of %s: %w", a, err)
	}
	return nil
}

func (s *Store) setPassword(ctx context.Context, a addr.Address, password string) error {
	if err := checkAddress(a); err != nil {
		return err
	}
	hash, err := store.HashPassword(password, s.pw)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `UPDATE accounts SET password = ? WHERE domain = ? AND local = ? RETURNING id`,
			hash, a.Domain(), a.Local()).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE account = ?`, id)
		return err
	})
}

// DeleteAccount implements store.Accounts. The account's sessions and
// offline messages go with it (ON DELETE CASCADE).
func (s *Store) DeleteAccount(ctx context.Context, a addr.Address) error {
	defer s.hot.forgetDeleted(a)
	res, err := s.w.ExecContext(ctx, `DELETE FROM accounts WHERE domain = ? AND local = ?`, a.Domain(), a.Local())
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: delete account %s: %w", a, err)
	}
	return nil
}

// AccountExists implements store.Accounts.
func (s *Store) AccountExists(ctx context.Context, a addr.Address) (bool, error) {
	if exists, ok := s.hot.account(a); ok {
		return exists, nil
	}
	gen := s.hot.generation()
	var n int
	err := s.rstmts[rstmtAccountExists].QueryRowContext(ctx, a.Domain(), a.Local()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store/sqlite: account exists %s: %w", a, err)
	}
	s.hot.putAccount(gen, a, n > 0)
	return n > 0, nil
}

// ListAccounts implements store.Accounts.
func (s *Store) ListAccounts(ctx context.Context, domain, after string, limit int) ([]addr.Address, error) {
	as, err := s.listAccounts(ctx, domain, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list accounts of %s: %w", domain, err)
	}
	return as, nil
}

func (s *Store) listAccounts(ctx context.Context, domain, after string, limit int) ([]addr.Address, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT local FROM accounts WHERE domain = ? AND local > ? ORDER BY local LIMIT ?`,
		domain, after, limitArg(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var as []addr.Address
	for rows.Next() {
		var local string
		if err := rows.Scan(&local); err != nil {
			return nil, err
		}
		a, err := addr.Parse(local + "@" + domain)
		if err != nil {
			return nil, fmt.Errorf("stored account %q@%q: %w", local, domain, err)
		}
		as = append(as, a)
	}
	return as, rows.Err()
}

// mustHaveAffected is mustAffect for a batched write (execBatched).
func mustHaveAffected(n int64, err error) error {
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

// mustAffect turns a statement that changed no row into store.ErrNotFound.
func mustAffect(res sql.Result) error { return mustHaveAffected(res.RowsAffected()) }
