package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

func checkClaim(origin string, id []byte) error {
	if origin == "" || len(id) == 0 {
		return fmt.Errorf("%w: empty origin or id", store.ErrInvalid)
	}
	return nil
}

// Claim implements store.Dedup. The claim is one statement, an insert that
// does nothing if (origin, id) is claimed already, run by the group commit;
// only if it inserted nothing is the existing claim read. If it is gone by the time it is read (released or
// pruned in between), the claim is tried again.
func (s *Store) Claim(ctx context.Context, origin string, id []byte, now time.Time) (store.ClaimState, store.Result, error) {
	state, r, err := s.claim(ctx, origin, id, now)
	if err != nil {
		return 0, store.Result{}, fmt.Errorf("store/sqlite: claim %s %x: %w", origin, id, err)
	}
	return state, r, nil
}

// maxClaimTries bounds the retries of a claim that keeps disappearing
// between the insert and the read.
const maxClaimTries = 8

func (s *Store) claim(ctx context.Context, origin string, id []byte, now time.Time) (store.ClaimState, store.Result, error) {
	if err := checkClaim(origin, id); err != nil {
		return 0, store.Result{}, err
	}
	s.claims.add(origin, id, micro(now))
	for range maxClaimTries {
		n, err := s.execBatched(ctx, stmtClaim, origin, id, micro(now))
		if err != nil {
			return 0, store.Result{}, err
		}
		if n == 1 {
			return store.Claimed, store.Result{}, nil
		}
		var (
			status sql.NullInt64
			count  int64
		)
		err = s.rstmts[rstmtClaimState].QueryRowContext(ctx, origin, id).Scan(&status, &count)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // released or pruned since the insert: claim again
		case err != nil:
			return 0, store.Result{}, err
		case !status.Valid:
			return store.InFlight, store.Result{}, nil
		}
		return store.Settled, store.Result{Status: wire.Status(status.Int64), Count: uint32(count)}, nil
	}
	return 0, store.Result{}, errors.New("the claim kept disappearing")
}

// SettleClaim implements store.Dedup. The settling is one statement, run by
// the group commit; only when it changes nothing is the claim read, to tell the caller why.
func (s *Store) SettleClaim(ctx context.Context, origin string, id []byte, r store.Result) error {
	n, err := s.execBatched(ctx, stmtSettle, int64(r.Status), int64(r.Count), origin, id)
	if err == nil && n == 0 {
		var one int
		err = s.r.QueryRowContext(ctx, `SELECT 1 FROM claims WHERE origin = ? AND id = ?`, origin, id).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			err = store.ErrNotFound
		case err == nil:
			err = store.ErrExists
		}
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: settle claim %s %x: %w", origin, id, err)
	}
	return nil
}

// LookupClaim implements store.Dedup: one read, no write.
func (s *Store) LookupClaim(ctx context.Context, origin string, id []byte) (store.ClaimState, store.Result, error) {
	if err := checkClaim(origin, id); err != nil {
		return 0, store.Result{}, err
	}
	s.Stats.ClaimLookups.Add(1)
	if !s.claims.mayHave(origin, id) {
		return 0, store.Result{}, nil
	}
	s.Stats.ClaimReads.Add(1)
	var (
		status sql.NullInt64
		count  int64
	)
	err := s.rstmts[rstmtClaimState].QueryRowContext(ctx, origin, id).Scan(&status, &count)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, store.Result{}, nil
	case err != nil:
		return 0, store.Result{}, fmt.Errorf("store/sqlite: look up claim %s %x: %w", origin, id, err)
	case !status.Valid:
		return store.InFlight, store.Result{}, nil
	}
	return store.Settled, store.Result{Status: wire.Status(status.Int64), Count: uint32(count)}, nil
}

// RecordClaim implements store.Dedup: one statement, run by the group
// commit, which lets a batch of them wait a little for company (execAsync);
// done is called on the committer's goroutine.
func (s *Store) RecordClaim(ctx context.Context, origin string, id []byte, now time.Time, r store.Result, done func(error)) {
	if err := checkClaim(origin, id); err != nil {
		done(err)
		return
	}
	s.claims.add(origin, id, micro(now))
	s.execAsync(ctx, func(res batchRes) {
		if res.err != nil {
			res.err = fmt.Errorf("store/sqlite: record claim %s %x: %w", origin, id, res.err)
		}
		done(res.err)
	}, stmtRecordClaim, origin, id, micro(now), int64(r.Status), int64(r.Count))
}

// ReleaseClaim implements store.Dedup.
func (s *Store) ReleaseClaim(ctx context.Context, origin string, id []byte) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM claims WHERE origin = ? AND id = ? AND status IS NULL`, origin, id)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("store/sqlite: release claim %s %x: %w", origin, id, err)
	}
	return nil
}

// ReleaseClaims implements store.Dedup.
func (s *Store) ReleaseClaims(ctx context.Context, before time.Time) (int, error) {
	n, err := s.prune(ctx, `DELETE FROM claims WHERE (origin, id) IN
		(SELECT origin, id FROM claims WHERE received < ? AND status IS NULL LIMIT ?)`, micro(before))
	if err != nil {
		return n, fmt.Errorf("store/sqlite: release claims: %w", err)
	}
	return n, nil
}

// PruneClaims implements store.Dedup.
func (s *Store) PruneClaims(ctx context.Context, before time.Time) (int, error) {
	n, err := s.prune(ctx, `DELETE FROM claims WHERE (origin, id) IN
		(SELECT origin, id FROM claims WHERE received < ? LIMIT ?)`, micro(before))
	if err != nil {
		return n, fmt.Errorf("store/sqlite: prune claims: %w", err)
	}
	s.claims.pruned(micro(before))
	return n, nil
}
