package sqlite

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// SetUserAttr implements store.UserAttrs.
func (s *Store) SetUserAttr(ctx context.Context, owner addr.Address, name, value string) error {
	defer s.hot.forgetUserAttrs(owner)
	if err := s.setUserAttr(ctx, owner, name, value); err != nil {
		return fmt.Errorf("store/sqlite: set attribute %q of %s: %w", name, owner, err)
	}
	return nil
}

func (s *Store) setUserAttr(ctx context.Context, owner addr.Address, name, value string) error {
	if err := checkAddress(owner); err != nil {
		return err
	}
	switch {
	case !wire.IsToken(name):
		return fmt.Errorf("%w: attribute name %q is not a token", store.ErrInvalid, name)
	case len(value) > store.MaxUserAttrLen:
		return fmt.Errorf("%w: attribute value of %d bytes, over %d", store.ErrInvalid, len(value), store.MaxUserAttrLen)
	case !utf8.ValidString(value):
		return fmt.Errorf("%w: attribute value is not UTF-8", store.ErrInvalid)
	}
	if value == "" {
		var exists bool
		if err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE domain = ? AND local = ?)`,
			owner.Domain(), owner.Local()).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return store.ErrNotFound
		}
		_, err := s.w.ExecContext(ctx, `DELETE FROM user_attrs WHERE account = `+accountOf+` AND name = ?`,
			owner.Domain(), owner.Local(), name)
		return err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO user_attrs (account, name, value)
		SELECT id, ?, ? FROM accounts WHERE domain = ? AND local = ?
		ON CONFLICT (account, name) DO UPDATE SET value = excluded.value`,
		name, value, owner.Domain(), owner.Local())
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// GetUserAttrs implements store.UserAttrs.
// They are kept in memory after the first read (hotCache).
func (s *Store) GetUserAttrs(ctx context.Context, owner addr.Address) ([]wire.Attr, error) {
	if as, ok := s.hot.userAttrs(owner); ok {
		return as, nil
	}
	gen := s.hot.generation()
	as, err := s.getUserAttrs(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: attributes of %s: %w", owner, err)
	}
	s.hot.putUserAttrs(gen, owner, as)
	return as, nil
}

func (s *Store) getUserAttrs(ctx context.Context, owner addr.Address) ([]wire.Attr, error) {
	rows, err := s.rstmts[rstmtUserAttrs].QueryContext(ctx, owner.Domain(), owner.Local())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var as []wire.Attr
	for rows.Next() {
		var a wire.Attr
		if err := rows.Scan(&a.Name, &a.Value); err != nil {
			return nil, err
		}
		as = append(as, a)
	}
	return as, rows.Err()
}
