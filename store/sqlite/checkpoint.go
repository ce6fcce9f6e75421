package sqlite

import (
	"context"
	"time"
)

// checkpointEvery is how often the checkpointer runs.
const checkpointEvery = 500 * time.Millisecond

// checkpointer copies the write-ahead log back into the database file
// (PASSIVE: it never waits for, nor blocks, the writer or the readers) on
// its own connection, until the Store closes. With SQLite's automatic
// checkpoint off on the writer, the fsync of a checkpoint is no longer paid
// by the commit that happens to fill the log. When a checkpoint copied the
// whole log and the log has grown large, a TRUNCATE checkpoint resets it.
func (s *Store) checkpointer() {
	defer close(s.ckDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var busy, logPages, copied int
		// An error (the database busy in another process) is retried at
		// the next tick.
		err := s.ck.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &copied)
		cancel()
		if err == nil && copied > 0 {
			s.checkpoints.Add(1)
		}
	}
}
