package sqlite

import (
	"cmp"
	"slices"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// The subscriptions granted to a presentity (subs_in), kept in memory for
// ActiveSubsIn, which every change of presence asks for: read whole at
// the first call, then kept up to date by this Store's writes (a renewal
// is updated in place, so that renewals do not keep dropping a popular
// presentity's list). The rows are kept in the table's key order, watcher
// domain then local part, active or not.
type subsInCache struct {
	rows    map[addr.Address][]store.SubIn
	n       int // rows kept in all
	loading map[addr.Address]chan struct{}
}

func subInKey(a, b store.SubIn) int {
	return cmp.Or(cmp.Compare(a.Watcher.Domain(), b.Watcher.Domain()), cmp.Compare(a.Watcher.Local(), b.Watcher.Local()))
}

// subsInOf returns the cached subscriptions to presentity; the slice must
// not be changed.
func (c *hotCache) subsInOf(presentity addr.Address) ([]store.SubIn, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	subs, ok := c.in.rows[presentity]
	return subs, ok
}

// startLoadIn is startLoad for subs_in.
func (c *hotCache) startLoadIn(presentity addr.Address) (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.in.loading[presentity]; ok {
		return false, ch
	}
	if c.in.loading == nil {
		c.in.loading = map[addr.Address]chan struct{}{}
	}
	c.in.loading[presentity] = make(chan struct{})
	return true, nil
}

// endLoadIn keeps subs (in key order) as presentity's, unless a write came
// meanwhile or they are too many.
func (c *hotCache) endLoadIn(gen uint64, presentity addr.Address, subs []store.SubIn, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.in.loading[presentity])
	delete(c.in.loading, presentity)
	if !ok || gen != c.gen || len(subs) > maxCachedSubsOut {
		return
	}
	if c.in.rows == nil || c.in.n+len(subs) > maxCachedSubsOut {
		c.in.rows, c.in.n = map[addr.Address][]store.SubIn{}, 0
	}
	c.in.rows[presentity] = subs
	c.in.n += len(subs)
}

// putSubIn upserts sub into its presentity's cached list, if there is one.
// The list is copied, not changed in place: readers may hold it.
func (c *hotCache) putSubIn(sub store.SubIn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, busy := c.in.loading[sub.Presentity]; busy {
		c.gen++ // the load may have read the row before this write
	}
	old, ok := c.in.rows[sub.Presentity]
	if !ok {
		return
	}
	i, found := slices.BinarySearchFunc(old, sub, subInKey)
	subs := slices.Clone(old)
	if found {
		subs[i] = sub
	} else {
		subs = slices.Insert(subs, i, sub)
		c.in.n++
	}
	c.in.rows[sub.Presentity] = subs
}

// forgetSubsIn drops the cached subscriptions to presentity.
func (c *hotCache) forgetSubsIn(presentity addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.in.n -= len(c.in.rows[presentity])
	delete(c.in.rows, presentity)
}

// forgetAllSubsIn drops every cached subscription to any presentity.
func (c *hotCache) forgetAllSubsIn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.in.rows, c.in.n = nil, 0
}
