package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// accountOf is the subquery of the id of the account whose domain and local
// part are its two arguments.
const accountOf = `(SELECT id FROM accounts WHERE domain = ? AND local = ?)`

// parseStored parses an address read from the database.
func parseStored(what, s string) (addr.Address, error) {
	a, err := addr.Parse(s)
	if err != nil {
		return addr.Address{}, fmt.Errorf("stored %s %q: %w", what, s, err)
	}
	return a, nil
}

func checkContactState(s store.ContactState) error {
	if !s.Valid() {
		return fmt.Errorf("%w: contact state %q", store.ErrInvalid, string(s))
	}
	return nil
}

// PutContact implements store.Contacts.
func (s *Store) PutContact(ctx context.Context, c store.Contact) error {
	defer s.hot.forgetSubsOut(c.Contact) // they carry the contact's state
	if err := s.putContact(ctx, c); err != nil {
		return fmt.Errorf("store/sqlite: put contact %s of %s: %w", c.Contact, c.Owner, err)
	}
	return nil
}

func (s *Store) putContact(ctx context.Context, c store.Contact) error {
	if err := checkAddress(c.Owner); err != nil {
		return err
	}
	if err := checkAddress(c.Contact); err != nil {
		return err
	}
	if err := checkContactState(c.State); err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO contacts (account, contact, alias, state)
		SELECT id, ?, ?, ? FROM accounts WHERE domain = ? AND local = ?
		ON CONFLICT (account, contact) DO UPDATE SET alias = excluded.alias, state = excluded.state`,
		c.Contact.String(), c.Alias, string(c.State), c.Owner.Domain(), c.Owner.Local())
	if err != nil {
		return err
	}
	return mustAffect(res)
}

// SetContactState implements store.Contacts.
func (s *Store) SetContactState(ctx context.Context, owner, contact addr.Address, state store.ContactState) error {
	defer s.hot.forgetSubsOut(contact)
	err := checkContactState(state)
	if err == nil {
		var res sql.Result
		res, err = s.w.ExecContext(ctx, `UPDATE contacts SET state = ?
			WHERE account = `+accountOf+` AND contact = ?`,
			string(state), owner.Domain(), owner.Local(), contact.String())
		if err == nil {
			err = mustAffect(res)
		}
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: set state of contact %s of %s: %w", contact, owner, err)
	}
	return nil
}

// DeleteContact implements store.Contacts.
func (s *Store) DeleteContact(ctx context.Context, owner, contact addr.Address) error {
	defer s.hot.forgetSubsOut(contact)
	res, err := s.w.ExecContext(ctx, `DELETE FROM contacts WHERE account = `+accountOf+` AND contact = ?`,
		owner.Domain(), owner.Local(), contact.String())
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: delete contact %s of %s: %w", contact, owner, err)
	}
	return nil
}

// GetContact implements store.Contacts.
func (s *Store) GetContact(ctx context.Context, owner, contact addr.Address) (store.Contact, error) {
	c := store.Contact{Owner: owner, Contact: contact}
	var state string
	err := s.rstmts[rstmtGetContact].QueryRowContext(ctx, owner.Domain(), owner.Local(), contact.String()).Scan(&c.Alias, &state)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Contact{}, fmt.Errorf("store/sqlite: get contact %s of %s: %w", contact, owner, err)
	}
	c.State = store.ContactState(state)
	return c, nil
}

// ListContacts implements store.Contacts.
func (s *Store) ListContacts(ctx context.Context, owner addr.Address) ([]store.Contact, error) {
	cs, err := s.listContacts(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list contacts of %s: %w", owner, err)
	}
	return cs, nil
}

func (s *Store) listContacts(ctx context.Context, owner addr.Address) ([]store.Contact, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT contact, alias, state FROM contacts
		WHERE account = `+accountOf+` ORDER BY contact`, owner.Domain(), owner.Local())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cs []store.Contact
	for rows.Next() {
		var contact, state string
		c := store.Contact{Owner: owner}
		if err := rows.Scan(&contact, &c.Alias, &state); err != nil {
			return nil, err
		}
		if c.Contact, err = parseStored("contact", contact); err != nil {
			return nil, err
		}
		c.State = store.ContactState(state)
		cs = append(cs, c)
	}
	return cs, rows.Err()
}

// CountContacts implements store.Contacts.
func (s *Store) CountContacts(ctx context.Context, owner addr.Address) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM contacts WHERE account = `+accountOf,
		owner.Domain(), owner.Local()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: count contacts of %s: %w", owner, err)
	}
	return n, nil
}

// ContactOwners implements store.Contacts.
func (s *Store) ContactOwners(ctx context.Context, contact addr.Address) ([]addr.Address, error) {
	as, err := s.contactOwners(ctx, contact)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: owners of contact %s: %w", contact, err)
	}
	return as, nil
}

func (s *Store) contactOwners(ctx context.Context, contact addr.Address) ([]addr.Address, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.local || '@' || a.domain AS owner
		FROM contacts c JOIN accounts a ON a.id = c.account
		WHERE c.contact = ? ORDER BY owner`, contact.String())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var as []addr.Address
	for rows.Next() {
		var owner string
		if err := rows.Scan(&owner); err != nil {
			return nil, err
		}
		a, err := parseStored("account", owner)
		if err != nil {
			return nil, err
		}
		as = append(as, a)
	}
	return as, rows.Err()
}
