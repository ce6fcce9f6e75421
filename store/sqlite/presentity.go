package sqlite

import (
	"cmp"
	"context"
	"slices"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// maxCachedRows bounds the rows each presentityRows keeps in all; a
// presentity with more than that is never kept.
const maxCachedRows = 1_000_000

// presentityRows is one of hotCache's caches of rows by presentity: read
// whole at the first lookup (one reader per presentity at a time, the
// others wait for it), then kept up to date by the Store's writes or
// dropped by them. Its methods are called with hotCache.mu held.
type presentityRows[V any] struct {
	rows    map[addr.Address]V
	n       int // rows kept in all
	loading map[addr.Address]chan struct{}
}

// keep stores v, of n rows, as presentity's.
func (t *presentityRows[V]) keep(presentity addr.Address, v V, n int) {
	if n > maxCachedRows {
		return
	}
	if t.rows == nil || t.n+n > maxCachedRows {
		t.rows, t.n = map[addr.Address]V{}, 0
	}
	t.rows[presentity] = v
	t.n += n
}

// grew counts rows added to a kept entry in place.
func (t *presentityRows[V]) grew(n int) { t.n += n }

// drop forgets presentity's rows, of which there are n.
func (t *presentityRows[V]) drop(presentity addr.Address, n int) {
	if _, ok := t.rows[presentity]; ok {
		t.n -= n
		delete(t.rows, presentity)
	}
}

func (t *presentityRows[V]) dropAll() { t.rows, t.n = nil, 0 }

// busy reports whether presentity's rows are being read: a write then
// makes that read's result stale (hotCache.gen).
func (t *presentityRows[V]) busy(presentity addr.Address) bool {
	_, ok := t.loading[presentity]
	return ok
}

// lookup returns read(presentity's rows) from t, loading them with load on
// a miss. ok is false when the cache cannot answer (load failed, or the
// rows are too many to keep), and the caller must ask the database; err
// is set only when ctx ended while another caller's load was awaited.
// read runs under the lock: rows changed in place are safe to read, and
// read must copy what it returns, for the rows change after it.
func lookup[V, R any](ctx context.Context, c *hotCache, t *presentityRows[V], presentity addr.Address,
	load func() (V, int, error), read func(V) R) (r R, ok bool, err error) {
	c.mu.Lock()
	if v, held := t.rows[presentity]; held {
		defer c.mu.Unlock()
		return read(v), true, nil
	}
	if wait, loading := t.loading[presentity]; loading {
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return r, false, ctx.Err()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if v, held := t.rows[presentity]; held {
			return read(v), true, nil
		}
		return r, false, nil
	}
	if t.loading == nil {
		t.loading = map[addr.Address]chan struct{}{}
	}
	done := make(chan struct{})
	t.loading[presentity] = done
	gen := c.gen
	c.mu.Unlock()

	v, n, loadErr := load()

	c.mu.Lock()
	defer c.mu.Unlock()
	close(done)
	delete(t.loading, presentity)
	if loadErr != nil || n > maxCachedRows {
		return r, false, nil
	}
	if gen == c.gen { // no write came while it was read
		t.keep(presentity, v, n)
	}
	return read(v), true, nil
}

// renewSubOut updates a cached subscription in place (a renewal); a new
// one drops presentity's, whose contact state is not known here.
func (c *hotCache) renewSubOut(sub store.SubOut) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &c.subsOut
	if t.busy(sub.Presentity) {
		c.gen++ // the load may have read the row before this write
	}
	m, ok := t.rows[sub.Presentity]
	if !ok {
		return
	}
	old, ok := m[sub.Watcher]
	if !ok {
		t.drop(sub.Presentity, len(m))
		return
	}
	sub.Contact = old.Contact
	m[sub.Watcher] = sub
}

// forgetSubsOut drops the cached subscriptions to presentity.
func (c *hotCache) forgetSubsOut(presentity addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.subsOut.drop(presentity, len(c.subsOut.rows[presentity]))
}

// forgetAllSubsOut drops every cached subscription held.
func (c *hotCache) forgetAllSubsOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.subsOut.dropAll()
}

func subInKey(a, b store.SubIn) int {
	return cmp.Or(cmp.Compare(a.Watcher.Domain(), b.Watcher.Domain()), cmp.Compare(a.Watcher.Local(), b.Watcher.Local()))
}

// putSubIn upserts sub into its presentity's cached list, if there is one,
// so that renewals do not keep dropping a popular presentity's list. The
// list is changed in place: nothing outside the lock holds it (lookup's
// read copies what it returns). A copy per renewal was 2 ms of CPU for a
// presentity with 10,000 watchers (BenchmarkRenewSubIn).
func (c *hotCache) putSubIn(sub store.SubIn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &c.subsIn
	if t.busy(sub.Presentity) {
		c.gen++ // the load may have read the row before this write
	}
	subs, ok := t.rows[sub.Presentity]
	if !ok {
		return
	}
	i, found := slices.BinarySearchFunc(subs, sub, subInKey)
	switch {
	case found:
		subs[i] = sub
	case len(subs) >= maxInsertInPlace:
		// An insertion moves the rows after it (8 MB for one near the
		// front of 100,000), so that a rush of new watchers would cost
		// the square of their number. A popular presentity's new
		// watchers drop the list instead, and the next ActiveSubsIn
		// reads it again, once.
		t.drop(sub.Presentity, len(subs))
	default:
		t.rows[sub.Presentity] = slices.Insert(subs, i, sub)
		t.grew(1)
	}
}

// maxInsertInPlace is the length from which a cached list of a
// presentity's subscriptions is dropped, not inserted into, when a new
// subscription comes (putSubIn).
const maxInsertInPlace = 4096

// forgetSubsIn drops the cached subscriptions granted to presentity.
func (c *hotCache) forgetSubsIn(presentity addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.subsIn.drop(presentity, len(c.subsIn.rows[presentity]))
}

// forgetAllSubsIn drops every cached subscription granted.
func (c *hotCache) forgetAllSubsIn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.subsIn.dropAll()
}
