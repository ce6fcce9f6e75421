package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// # Subscriptions granted (subs_in)

// PutSubIn implements store.SubsIn.
func (s *Store) PutSubIn(ctx context.Context, sub store.SubIn) error {
	if err := s.putSubIn(ctx, sub); err != nil {
		s.hot.forgetSubsIn(sub.Presentity)
		return fmt.Errorf("store/sqlite: put subscription of %s to %s: %w", sub.Watcher, sub.Presentity, err)
	}
	s.hot.putSubIn(sub)
	return nil
}

func (s *Store) putSubIn(ctx context.Context, sub store.SubIn) error {
	if err := checkAddress(sub.Presentity); err != nil {
		return err
	}
	if err := checkAddress(sub.Watcher); err != nil {
		return err
	}
	n, err := s.execBatched(ctx, stmtPutSubIn,
		sub.Watcher.Domain(), sub.Watcher.Local(), micro(sub.Expires), sub.Active,
		sub.Presentity.Domain(), sub.Presentity.Local())
	return mustHaveAffected(n, err)
}

// SetSubInActive implements store.SubsIn.
func (s *Store) SetSubInActive(ctx context.Context, presentity, watcher addr.Address, active bool) error {
	defer s.hot.forgetSubsIn(presentity)
	res, err := s.w.ExecContext(ctx, `UPDATE subs_in SET active = ?
		WHERE account = `+accountOf+` AND watcher_domain = ? AND watcher_local = ?`,
		active, presentity.Domain(), presentity.Local(), watcher.Domain(), watcher.Local())
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: set subscription of %s to %s active=%t: %w", watcher, presentity, active, err)
	}
	return nil
}

// GetSubIn implements store.SubsIn.
func (s *Store) GetSubIn(ctx context.Context, presentity, watcher addr.Address) (store.SubIn, error) {
	sub := store.SubIn{Presentity: presentity, Watcher: watcher}
	var expires int64
	err := s.r.QueryRowContext(ctx, `SELECT expires, active FROM subs_in
		WHERE account = `+accountOf+` AND watcher_domain = ? AND watcher_local = ?`,
		presentity.Domain(), presentity.Local(), watcher.Domain(), watcher.Local()).Scan(&expires, &sub.Active)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.SubIn{}, fmt.Errorf("store/sqlite: get subscription of %s to %s: %w", watcher, presentity, err)
	}
	sub.Expires = fromMicro(expires)
	return sub, nil
}

// DeleteSubIn implements store.SubsIn.
func (s *Store) DeleteSubIn(ctx context.Context, presentity, watcher addr.Address) error {
	defer s.hot.forgetSubsIn(presentity)
	res, err := s.w.ExecContext(ctx, `DELETE FROM subs_in
		WHERE account = `+accountOf+` AND watcher_domain = ? AND watcher_local = ?`,
		presentity.Domain(), presentity.Local(), watcher.Domain(), watcher.Local())
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: delete subscription of %s to %s: %w", watcher, presentity, err)
	}
	return nil
}

// ActiveSubsIn implements store.SubsIn. The primary key orders the rows of
// a presentity by watcher domain and local part, so the query sorts
// nothing.
//
// The subscriptions to a presentity are read whole into memory at the
// first call (see subsInCache), so that a change of presence of a user
// with many watchers does not read them all again.
func (s *Store) ActiveSubsIn(ctx context.Context, presentity addr.Address, now time.Time) ([]store.SubIn, error) {
	load := func() ([]store.SubIn, int, error) {
		subs, err := s.loadSubsIn(ctx, presentity)
		return subs, len(subs), err
	}
	active := func(all []store.SubIn) []store.SubIn {
		var out []store.SubIn
		for _, sub := range all {
			if sub.Active && sub.Expires.After(now) {
				out = append(out, sub)
			}
		}
		return out
	}
	out, ok, err := lookup(ctx, &s.hot, &s.hot.subsIn, presentity, load, active)
	switch {
	case err != nil:
		return nil, err
	case ok:
		return out, nil
	}
	subs, err := s.activeSubsIn(ctx, presentity, now)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: active subscriptions to %s: %w", presentity, err)
	}
	return subs, nil
}

// loadSubsIn reads every subscription to presentity, active or not, in
// key order, up to one more than maxCachedRows.
func (s *Store) loadSubsIn(ctx context.Context, presentity addr.Address) ([]store.SubIn, error) {
	rows, err := s.rstmts[rstmtSubsInOf].QueryContext(ctx, presentity.Domain(), presentity.Local(), maxCachedRows+1)
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: subscriptions to %s: %w", presentity, err)
	}
	defer rows.Close()
	var subs []store.SubIn
	for rows.Next() {
		var (
			domain, local string
			expires       int64
			active        bool
		)
		if err := rows.Scan(&domain, &local, &expires, &active); err != nil {
			return nil, err
		}
		w, err := parseStored("watcher", local+"@"+domain)
		if err != nil {
			return nil, err
		}
		subs = append(subs, store.SubIn{Presentity: presentity, Watcher: w, Expires: fromMicro(expires), Active: active})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store/sqlite: subscriptions to %s: %w", presentity, err)
	}
	return subs, nil
}

func (s *Store) activeSubsIn(ctx context.Context, presentity addr.Address, now time.Time) ([]store.SubIn, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT watcher_domain, watcher_local, expires FROM subs_in
		WHERE account = `+accountOf+` AND active = 1 AND expires > ?
		ORDER BY watcher_domain, watcher_local`,
		presentity.Domain(), presentity.Local(), micro(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var subs []store.SubIn
	for rows.Next() {
		var (
			domain, local string
			expires       int64
		)
		if err := rows.Scan(&domain, &local, &expires); err != nil {
			return nil, err
		}
		w, err := parseStored("watcher", local+"@"+domain)
		if err != nil {
			return nil, err
		}
		subs = append(subs, store.SubIn{Presentity: presentity, Watcher: w, Expires: fromMicro(expires), Active: true})
	}
	return subs, rows.Err()
}

// PruneSubsIn implements store.SubsIn.
func (s *Store) PruneSubsIn(ctx context.Context, now time.Time) (int, error) {
	n, err := s.prune(ctx, `DELETE FROM subs_in WHERE rowid IN
		(SELECT rowid FROM subs_in WHERE expires <= ? LIMIT ?)`, micro(now))
	if n > 0 || err != nil {
		s.hot.forgetAllSubsIn()
	}
	if err != nil {
		return n, fmt.Errorf("store/sqlite: prune granted subscriptions: %w", err)
	}
	return n, nil
}

// # Subscriptions held (subs_out)

// PutSubOut implements store.SubsOut.
func (s *Store) PutSubOut(ctx context.Context, sub store.SubOut) error {
	sub.Contact = ""
	if err := s.putSubOut(ctx, sub); err != nil {
		s.hot.forgetSubsOut(sub.Presentity)
		return fmt.Errorf("store/sqlite: put subscription of %s to %s: %w", sub.Watcher, sub.Presentity, err)
	}
	s.hot.renewSubOut(sub)
	return nil
}

func (s *Store) putSubOut(ctx context.Context, sub store.SubOut) error {
	if err := checkAddress(sub.Watcher); err != nil {
		return err
	}
	if err := checkAddress(sub.Presentity); err != nil {
		return err
	}
	if micro(sub.RenewAt) > micro(sub.Expires) {
		return fmt.Errorf("%w: renewal at %v after expiry at %v", store.ErrInvalid, sub.RenewAt, sub.Expires)
	}
	n, err := s.execBatched(ctx, stmtPutSubOut,
		sub.Presentity.String(), micro(sub.Expires), micro(sub.RenewAt), sub.Watcher.Domain(), sub.Watcher.Local())
	return mustHaveAffected(n, err)
}

// GetSubOut implements store.SubsOut.
func (s *Store) GetSubOut(ctx context.Context, watcher, presentity addr.Address) (store.SubOut, error) {
	sub := store.SubOut{Watcher: watcher, Presentity: presentity}
	var expires, renew int64
	err := s.rstmts[rstmtGetSubOut].QueryRowContext(ctx, watcher.Domain(), watcher.Local(), presentity.String()).Scan(&expires, &renew)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.SubOut{}, fmt.Errorf("store/sqlite: get subscription of %s to %s: %w", watcher, presentity, err)
	}
	sub.Expires, sub.RenewAt = fromMicro(expires), fromMicro(renew)
	return sub, nil
}

// DeleteSubOut implements store.SubsOut.
func (s *Store) DeleteSubOut(ctx context.Context, watcher, presentity addr.Address) error {
	defer s.hot.forgetSubsOut(presentity)
	res, err := s.w.ExecContext(ctx, `DELETE FROM subs_out WHERE account = `+accountOf+` AND presentity = ?`,
		watcher.Domain(), watcher.Local(), presentity.String())
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: delete subscription of %s to %s: %w", watcher, presentity, err)
	}
	return nil
}

// subOutColumns are the columns scanSubsOut reads, from subs_out o joined
// with accounts a.
const subOutColumns = `a.local || '@' || a.domain, o.presentity, o.expires, o.renew_at`

func scanSubsOut(rows *sql.Rows) ([]store.SubOut, error) {
	return scanSubsOutWith(rows, false)
}

// scanSubsOutWith scans subOutColumns, and the contact's state after them
// if withContact.
func scanSubsOutWith(rows *sql.Rows, withContact bool) ([]store.SubOut, error) {
	defer rows.Close()
	var subs []store.SubOut
	for rows.Next() {
		var (
			watcher, presentity, contact string
			expires, renew               int64
			sub                          store.SubOut
			err                          error
		)
		dst := []any{&watcher, &presentity, &expires, &renew}
		if withContact {
			dst = append(dst, &contact)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		sub.Contact = store.ContactState(contact)
		if sub.Watcher, err = parseStored("account", watcher); err != nil {
			return nil, err
		}
		if sub.Presentity, err = parseStored("presentity", presentity); err != nil {
			return nil, err
		}
		sub.Expires, sub.RenewAt = fromMicro(expires), fromMicro(renew)
		subs = append(subs, sub)
	}
	return subs, rows.Err()
}

// ListSubsOut implements store.SubsOut.
func (s *Store) ListSubsOut(ctx context.Context, watcher addr.Address) ([]store.SubOut, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+subOutColumns+`
		FROM subs_out o JOIN accounts a ON a.id = o.account
		WHERE a.domain = ? AND a.local = ? ORDER BY o.presentity`, watcher.Domain(), watcher.Local())
	var subs []store.SubOut
	if err == nil {
		subs, err = scanSubsOut(rows)
	}
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: list subscriptions of %s: %w", watcher, err)
	}
	return subs, nil
}

// SubsOutTo implements store.SubsOut.
//
// The subscriptions to a presentity are read whole into memory at the
// first call (one pass through an index; many NOTIFYs about one
// presentity then cost no query), kept up to date by the writes of this
// Store, and read again after the writes that drop them.
func (s *Store) SubsOutTo(ctx context.Context, presentity addr.Address, watchers []addr.Address) ([]store.SubOut, error) {
	if len(watchers) == 0 {
		return nil, nil
	}
	load := func() (map[addr.Address]store.SubOut, int, error) {
		subs, err := s.loadSubsOut(ctx, presentity)
		m := make(map[addr.Address]store.SubOut, len(subs))
		for _, sub := range subs {
			m[sub.Watcher] = sub
		}
		return m, len(subs), err
	}
	pick := func(m map[addr.Address]store.SubOut) []store.SubOut {
		var out []store.SubOut
		for _, w := range watchers {
			if sub, held := m[w]; held {
				out = append(out, sub)
			}
		}
		return out
	}
	out, ok, err := lookup(ctx, &s.hot, &s.hot.subsOut, presentity, load, pick)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return s.querySubsOutTo(ctx, presentity, watchers)
	}
	slices.SortFunc(out, func(a, b store.SubOut) int { return strings.Compare(a.Watcher.String(), b.Watcher.String()) })
	return out, nil
}

// loadSubsOut reads every subscription to presentity, with the contact
// states, up to one more than maxCachedRows.
func (s *Store) loadSubsOut(ctx context.Context, presentity addr.Address) ([]store.SubOut, error) {
	rows, err := s.rstmts[rstmtSubsOutOf].QueryContext(ctx, presentity.String(), maxCachedRows+1)
	var subs []store.SubOut
	if err == nil {
		subs, err = scanSubsOutWith(rows, true)
	}
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: subscriptions to %s: %w", presentity, err)
	}
	return subs, nil
}

// querySubsOutTo is SubsOutTo without the cache.
func (s *Store) querySubsOutTo(ctx context.Context, presentity addr.Address, watchers []addr.Address) ([]store.SubOut, error) {
	// One query per domain of the watchers (a NOTIFY's share one).
	byDomain := map[string][]string{}
	for _, w := range watchers {
		byDomain[w.Domain()] = append(byDomain[w.Domain()], w.Local())
	}
	var subs []store.SubOut
	for domain, locals := range byDomain {
		got, err := s.subsOutTo(ctx, presentity, domain, locals)
		if err != nil {
			return nil, fmt.Errorf("store/sqlite: subscriptions of %d watchers to %s: %w", len(watchers), presentity, err)
		}
		subs = append(subs, got...)
	}
	slices.SortFunc(subs, func(a, b store.SubOut) int { return strings.Compare(a.Watcher.String(), b.Watcher.String()) })
	return subs, nil
}

func (s *Store) subsOutTo(ctx context.Context, presentity addr.Address, domain string, locals []string) ([]store.SubOut, error) {
	list, err := json.Marshal(locals)
	if err != nil {
		return nil, err
	}
	rows, err := s.rstmts[rstmtSubsOutTo].QueryContext(ctx, string(list), domain, presentity.String())
	if err != nil {
		return nil, err
	}
	return scanSubsOutWith(rows, true)
}

// DueSubsOut implements store.SubsOut.
func (s *Store) DueSubsOut(ctx context.Context, now time.Time, limit int) ([]store.SubOut, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+subOutColumns+`
		FROM subs_out o JOIN accounts a ON a.id = o.account
		WHERE o.renew_at <= ?
		ORDER BY o.renew_at, a.local || '@' || a.domain, o.presentity LIMIT ?`, micro(now), limitArg(limit))
	var subs []store.SubOut
	if err == nil {
		subs, err = scanSubsOut(rows)
	}
	if err != nil {
		return nil, fmt.Errorf("store/sqlite: subscriptions due for renewal: %w", err)
	}
	return subs, nil
}

// PruneSubsOut implements store.SubsOut.
func (s *Store) PruneSubsOut(ctx context.Context, now time.Time) (int, error) {
	n, err := s.prune(ctx, `DELETE FROM subs_out WHERE rowid IN
		(SELECT rowid FROM subs_out WHERE expires <= ? LIMIT ?)`, micro(now))
	if n > 0 || err != nil {
		s.hot.forgetAllSubsOut()
	}
	if err != nil {
		return n, fmt.Errorf("store/sqlite: prune held subscriptions: %w", err)
	}
	return n, nil
}
