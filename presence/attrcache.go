package presence

import (
	"container/list"
	"slices"
	"sync"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

// DefaultAttrCacheSize is the number of addresses of other domains whose
// attributes the cache keeps when Config.AttrCacheSize is zero.
const DefaultAttrCacheSize = 10000

// maxViewers bounds the local users one cached address remembers having
// been shown to; beyond it, the one whose right ends first is forgotten.
const maxViewers = 32

// attrCache keeps the user attributes of users of other domains that rode
// along on NOTIFY and MESSAGE (§4.6.1), per (address, name), and which
// local users they were shown to, each until when: the subscription's
// expiry for a NOTIFY, the subscription timeout for a MESSAGE. A local user
// is answered from it only with what was shown to him, while fresh: the
// cache never tells one local user what a remote user shared with
// another.
//
// It is bounded: at most max addresses, the least recently used evicted
// first, and at most maxViewers local users per address. Nothing in it is
// stored; a restart starts empty.
type attrCache struct {
	mu     sync.Mutex
	max    int
	lru    list.List // of *attrEntry, the most recently used first
	byAddr map[addr.Address]*list.Element
}

type attrEntry struct {
	target  addr.Address
	attrs   []wire.Attr                // one per name
	viewers map[addr.Address]time.Time // local user → shown until
}

func newAttrCache(max int) *attrCache {
	if max <= 0 {
		max = DefaultAttrCacheSize
	}
	return &attrCache{max: max, byAddr: map[addr.Address]*list.Element{}}
}

// put records that attrs of target were shown to viewers, who may be
// answered from them until until. A name already cached takes the new
// value.
func (c *attrCache) put(target addr.Address, viewers []addr.Address, attrs []wire.Attr, until, now time.Time) {
	if !until.After(now) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var e *attrEntry
	if el := c.byAddr[target]; el != nil {
		c.lru.MoveToFront(el)
		e = el.Value.(*attrEntry)
	} else {
		e = &attrEntry{target: target, viewers: map[addr.Address]time.Time{}}
		c.byAddr[target] = c.lru.PushFront(e)
		for c.lru.Len() > c.max {
			old := c.lru.Remove(c.lru.Back()).(*attrEntry)
			delete(c.byAddr, old.target)
		}
	}
	for _, a := range attrs {
		if i := slices.IndexFunc(e.attrs, func(b wire.Attr) bool { return b.Name == a.Name }); i >= 0 {
			e.attrs[i].Value = a.Value
		} else {
			e.attrs = append(e.attrs, a)
		}
	}
	for _, v := range viewers {
		e.viewers[v] = until
	}
	if len(e.viewers) > maxViewers {
		e.trim(now)
	}
}

// trim keeps the maxViewers viewers whose rights end last, and drops the
// rest (those that ended first).
func (e *attrEntry) trim(now time.Time) {
	type right struct {
		v     addr.Address
		until time.Time
	}
	rights := make([]right, 0, len(e.viewers))
	for v, t := range e.viewers {
		if t.After(now) {
			rights = append(rights, right{v, t})
		}
	}
	if len(rights) > maxViewers {
		slices.SortFunc(rights, func(a, b right) int { return b.until.Compare(a.until) })
		rights = rights[:maxViewers]
	}
	clear(e.viewers)
	for _, r := range rights {
		e.viewers[r.v] = r.until
	}
}

// forget takes back what the cache showed viewers of target.
func (c *attrCache) forget(target addr.Address, viewers []addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.byAddr[target]
	if el == nil {
		return
	}
	e := el.Value.(*attrEntry)
	for _, v := range viewers {
		delete(e.viewers, v)
	}
	if len(e.viewers) == 0 {
		c.lru.Remove(el)
		delete(c.byAddr, target)
	}
}

// get returns the attributes of target that viewer may be answered from
// the cache, selected by names as UserAttrs does; ok is false if viewer
// has no fresh right to them, or a name asked (none: every user
// attribute) is not cached.
func (c *attrCache) get(target, viewer addr.Address, names []string, now time.Time) ([]wire.Attr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.byAddr[target]
	if el == nil {
		return nil, false
	}
	e := el.Value.(*attrEntry)
	if until, ok := e.viewers[viewer]; !ok || !until.After(now) {
		if ok {
			delete(e.viewers, viewer)
		}
		return nil, false
	}
	want := names
	if len(want) == 0 {
		want = userAttrNames
	}
	for _, n := range want {
		if !slices.ContainsFunc(e.attrs, func(a wire.Attr) bool { return a.Name == n }) {
			return nil, false
		}
	}
	c.lru.MoveToFront(el)
	var out []wire.Attr
	for _, n := range userAttrNames {
		i := slices.IndexFunc(e.attrs, func(a wire.Attr) bool { return a.Name == n })
		if i >= 0 && (len(names) == 0 && e.attrs[i].Value != "" || slices.Contains(names, n)) {
			out = append(out, e.attrs[i])
		}
	}
	return out, true
}

// len returns the number of addresses cached.
func (c *attrCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
