package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"
)

// Group commit. The writes of the hot paths (claiming and settling a
// received message, putting and removing an outbox entry) are single
// statements. Each caller hands its statement to the committer goroutine,
// which runs every statement waiting at that moment in one transaction and
// commits once: under load, many callers share one commit, which is what a
// commit costs. A caller that finds nobody else waiting runs alone, in
// autocommit mode, at the price of one channel hand-off.

// maxBatch bounds the statements of one transaction, so that a long queue
// does not hold the write connection for long.
const maxBatch = 128

// maxLinger is how long the committer holds a batch of lazy statements
// only (execAsync), waiting for more to share their commit.
const maxLinger = 5 * time.Millisecond

// errClosed is the error of a batched write after Close.
var errClosed = errors.New("store closed")

type batchReq struct {
	ctx  context.Context
	stmt stmtID
	args []any
	done chan batchRes // buffered: the committer never blocks on it
	lazy bool          // may wait up to maxLinger for company (execAsync)
	// then, if set, takes the result instead of done, on the committer
	// (execAsync): it must not block.
	then func(batchRes)
}

// answer gives req its result.
func (req *batchReq) answer(res batchRes) {
	if req.then != nil {
		req.then(res)
		return
	}
	req.done <- res
}

type batchRes struct {
	n   int64 // rows affected
	err error
}

// execBatched runs the statement id with args in the next group commit and
// returns the number of rows it affected. Once the statement is handed to
// the committer, execBatched waits for its outcome even if ctx ends: the
// committer checks ctx before it runs the statement, and a statement that
// ran is reported as it ran, never as canceled.
func (s *Store) execBatched(ctx context.Context, id stmtID, args ...any) (int64, error) {
	req := &batchReq{ctx: ctx, stmt: id, args: args, done: make(chan batchRes, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.quit:
		return 0, errClosed
	}
	select {
	case res := <-req.done:
		return res.n, res.err
	case <-s.committerDone:
		// The committer stopped; it may have answered just before.
		select {
		case res := <-req.done:
			return res.n, res.err
		default:
			return 0, errClosed
		}
	}
}

// execAsync hands a lazy statement to the committer and returns at once;
// then gets its result, on the committer's goroutine, and must not block.
// It is for a write that nobody waits for, such as the record of a message
// already answered: when only such writes are waiting, the committer holds
// them up to maxLinger for others to share the commit with. At a low rate,
// when each would otherwise commit alone (several page writes, each a
// system call), this divides the cost of a commit among the writes of a
// few milliseconds. A statement handed over before Close is answered
// (errClosed if the committer had stopped).
func (s *Store) execAsync(ctx context.Context, then func(batchRes), id stmtID, args ...any) {
	req := &batchReq{ctx: ctx, stmt: id, args: args, lazy: true, then: then}
	select {
	case <-s.quit:
		then(batchRes{err: errClosed})
		return
	default:
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		then(batchRes{err: ctx.Err()})
	case <-s.quit:
		then(batchRes{err: errClosed})
	}
}

// failWaiting answers errClosed to the statements still queued once the
// committer has stopped (Close).
func (s *Store) failWaiting() {
	for {
		select {
		case req := <-s.reqs:
			req.answer(batchRes{err: errClosed})
		default:
			return
		}
	}
}

// committer runs the group commits until quit is closed.
func (s *Store) committer() {
	defer close(s.committerDone)
	batch := make([]*batchReq, 0, maxBatch)
	for {
		select {
		case req := <-s.reqs:
			batch = append(batch[:0], req)
		case <-s.quit:
			return
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case req := <-s.reqs:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		if allLazy(batch) {
			batch = s.linger(batch)
		}
		s.runBatch(batch)
		clear(batch)
	}
}

// runBatch runs the statements of batch in one transaction (or, for one
// statement, in autocommit mode) and answers every request.
func (s *Store) runBatch(batch []*batchReq) {
	ctx := context.Background() // each request's own context is checked below
	s.Stats.Commits.Add(1)
	s.Stats.Writes.Add(uint64(len(batch)))
	if len(batch) == 1 {
		req := batch[0]
		var res batchRes
		if res.err = req.ctx.Err(); res.err == nil {
			res.n, res.err = rowsAffected(s.stmts[req.stmt].ExecContext(ctx, req.args...))
		}
		req.answer(res)
		return
	}

	results := make([]batchRes, len(batch))
	answer := func() {
		for i, req := range batch {
			req.answer(results[i])
		}
	}
	fail := func(from int, err error) {
		for i := from; i < len(batch); i++ {
			if results[i].err == nil {
				results[i] = batchRes{err: err}
			}
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		fail(0, err)
		answer()
		return
	}
	var txStmts [numStmts]*sql.Stmt // the statements bound to tx, made at first use
	single := 0                     // batch[:single] runs one statement a request
	for i := 0; i < len(batch); i++ {
		req := batch[i]
		if err := req.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		if j, k := claimRun(batch, i); i >= single && k >= 0 {
			if err := recordClaims(ctx, tx.StmtContext(ctx, s.claimRows[k]), batch[i:j]); err == nil {
				i = j - 1 // their results are zero: no error, n not counted
				continue
			} else if isConstraint(err) {
				// SQLite undid the statement alone: run its rows one
				// by one, to tell which failed.
				single = j
			} else {
				tx.Rollback()
				fail(i, fmt.Errorf("transaction aborted by a statement: %w", err))
				answer()
				return
			}
		}
		st := txStmts[req.stmt]
		if st == nil {
			st = tx.StmtContext(ctx, s.stmts[req.stmt])
			txStmts[req.stmt] = st
		}
		n, err := rowsAffected(st.ExecContext(ctx, req.args...))
		if err != nil && isConstraint(err) {
			// SQLite undid this statement alone; the transaction goes on.
			results[i].err = err
			continue
		}
		if err != nil {
			// Other errors (I/O, full disk) may have rolled the whole
			// transaction back: run nothing more in it.
			tx.Rollback()
			results[i].err = err
			fail(i+1, fmt.Errorf("transaction aborted by an earlier statement: %w", err))
			answer()
			return
		}
		results[i].n = n
	}
	if err := tx.Commit(); err != nil {
		fail(0, err)
		for i := range results {
			results[i].n = 0
		}
	}
	answer()
}

// claimChunks are the numbers of claims that one INSERT records, largest
// first: a run of RecordClaims in a batch goes as statements of these many
// rows, and what is left one by one. Under load a batch holds tens of
// RecordClaims, and one statement of many rows pays the per-statement work
// of database/sql and SQLite (binding, running and halting the program)
// once for all of them: that work was about half of the committer's time
// in imxbench e2e (docs/benchmarks.md). The statements are prepared at
// Open (Store.claimRows): a statement cannot be prepared on the write
// connection while the committer's transaction holds it.
var claimChunks = [...]int{32, 8, 2}

// claimRun returns the end j of the run of RecordClaim requests that
// starts at batch[i], the longest of claimChunks it has room for, and that
// chunk's index k; k is −1 if the run is shorter than every chunk.
// Requests whose context has ended end the run.
func claimRun(batch []*batchReq, i int) (j, k int) {
	j = i
	for j < len(batch) && j-i < claimChunks[0] && batch[j].stmt == stmtRecordClaim && batch[j].ctx.Err() == nil {
		j++
	}
	for k, n := range claimChunks {
		if j-i >= n {
			return i + n, k
		}
	}
	return j, -1
}

// claimRowsSQL is the statement that records n claims: stmtRecordClaim
// with n rows of values.
func claimRowsSQL(n int) string {
	head, tail, _ := strings.Cut(stmtSQL[stmtRecordClaim], claimRow)
	return head + claimRow + strings.Repeat(", "+claimRow, n-1) + tail
}

// recordClaims runs the RecordClaim requests reqs as the one statement st
// of len(reqs) rows. Two rows of one (origin, id) do what two statements
// would: the second is the conflict of the first.
func recordClaims(ctx context.Context, st *sql.Stmt, reqs []*batchReq) error {
	args := make([]any, 0, len(reqs)*len(reqs[0].args))
	for _, req := range reqs {
		args = append(args, req.args...)
	}
	_, err := st.ExecContext(ctx, args...)
	return err
}

func allLazy(batch []*batchReq) bool {
	for _, req := range batch {
		if !req.lazy {
			return false
		}
	}
	return true
}

// linger adds to a batch of lazy statements those that arrive within
// maxLinger, until one that is not lazy arrives (it runs at once, with
// them), the batch is full or the store closes.
func (s *Store) linger(batch []*batchReq) []*batchReq {
	t := time.NewTimer(maxLinger)
	defer t.Stop()
	for len(batch) < maxBatch {
		select {
		case req := <-s.reqs:
			batch = append(batch, req)
			if !req.lazy {
				return batch
			}
		case <-t.C:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// isConstraint reports whether err is the violation of a constraint, an
// error after which SQLite has undone the failing statement only.
func isConstraint(err error) bool {
	return sqliteCode(err)&0xff == sqlite3.SQLITE_CONSTRAINT
}
