package sqlite

import (
	"context"
	"fmt"
	"slices"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// AddBlock implements store.Blocks.
func (s *Store) AddBlock(ctx context.Context, owner addr.Address, pattern string) error {
	defer s.hot.forget(owner)
	if err := s.addBlock(ctx, owner, pattern); err != nil {
		return fmt.Errorf("store/sqlite: block %q for %s: %w", pattern, owner, err)
	}
	return nil
}

func (s *Store) addBlock(ctx context.Context, owner addr.Address, pattern string) error {
	if err := checkAddress(owner); err != nil {
		return err
	}
	p, err := store.ParseBlockPattern(pattern)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO blocks (account, pattern)
		SELECT id, ? FROM accounts WHERE domain = ? AND local = ?`, p, owner.Domain(), owner.Local())
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// RemoveBlock implements store.Blocks.
func (s *Store) RemoveBlock(ctx context.Context, owner addr.Address, pattern string) error {
	defer s.hot.forget(owner)
	p, err := store.ParseBlockPattern(pattern)
	if err == nil {
		var n int
		n, err = affected(s.w.ExecContext(ctx, `DELETE FROM blocks WHERE account = `+accountOf+` AND pattern = ?`,
			owner.Domain(), owner.Local(), p))
		if err == nil && n == 0 {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: unblock %q for %s: %w", pattern, owner, err)
	}
	return nil
}

// ListBlocks implements store.Blocks.
func (s *Store) ListBlocks(ctx context.Context, owner addr.Address) ([]string, error) {
	ps, err := s.listBlocks(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list blocks of %s: %w", owner, err)
	}
	return ps, nil
}

func (s *Store) listBlocks(ctx context.Context, owner addr.Address) ([]string, error) {
	rows, err := s.rstmts[rstmtListBlocks].QueryContext(ctx, owner.Domain(), owner.Local())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// IsBlocked implements store.Blocks.
func (s *Store) IsBlocked(ctx context.Context, owner, a addr.Address) (bool, error) {
	ps, ok := s.hot.blockList(owner)
	if !ok {
		gen := s.hot.generation()
		var err error
		if ps, err = s.listBlocks(ctx, owner); err != nil {
			return false, fmt.Errorf("store/sqlite: is %s blocked by %s: %w", a, owner, err)
		}
		s.hot.putBlocks(gen, owner, ps)
	}
	return slices.Contains(ps, a.String()) || slices.Contains(ps, "@"+a.Domain()), nil
}
