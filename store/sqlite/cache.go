package sqlite

import (
	"sync"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// hotCache keeps, in memory, the answers of the reads that every message
// makes (AccountExists and IsBlocked at the receiving server, GetApproval
// at the sending one, for the attributes that ride along), which cost more
// through database/sql than the message's own write. Only this Store
// writes the accounts and blocks tables, so it knows when an answer goes
// stale: every write to them drops what it changed. A read that raced with
// such a write does not keep its answer (gen).
type hotCache struct {
	mu       sync.Mutex
	gen      uint64                    // bumped by every invalidation
	accounts map[addr.Address]bool     // account exists
	blocks   map[addr.Address][]string // an account's block patterns
	// approvals by (presentity, watcher); a missing row is kept as the
	// zero Approval with found false.
	approvals map[[2]addr.Address]cachedApproval

	// subsOut holds, by presentity, all the subscriptions local watchers
	// hold to it, each with its contact state (SubsOutTo); subsOutRows
	// counts their rows, bounded by maxCachedSubsOut. loading has a
	// channel per presentity being loaded, closed when it is.
	in          subsInCache // cachein.go
	subsOut     map[addr.Address]map[addr.Address]store.SubOut
	subsOutRows int
	loading     map[addr.Address]chan struct{}
}

// maxCachedSubsOut bounds the subscriptions kept in subsOut; a presentity
// with more watchers than that is never kept.
const maxCachedSubsOut = 1_000_000

type cachedApproval struct {
	a     store.Approval
	found bool
}

// maxHotCache bounds each map; a full map starts over.
const maxHotCache = 100_000

func (c *hotCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *hotCache) account(a addr.Address) (exists, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	exists, ok = c.accounts[a]
	return exists, ok
}

func (c *hotCache) putAccount(gen uint64, a addr.Address, exists bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.accounts == nil || len(c.accounts) >= maxHotCache {
		c.accounts = map[addr.Address]bool{}
	}
	c.accounts[a] = exists
}

func (c *hotCache) blockList(owner addr.Address) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.blocks[owner]
	return ps, ok
}

func (c *hotCache) putBlocks(gen uint64, owner addr.Address, ps []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.blocks == nil || len(c.blocks) >= maxHotCache {
		c.blocks = map[addr.Address][]string{}
	}
	c.blocks[owner] = ps
}

func (c *hotCache) approval(presentity, watcher addr.Address) (cachedApproval, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.approvals[[2]addr.Address{presentity, watcher}]
	return a, ok
}

func (c *hotCache) putApproval(gen uint64, presentity, watcher addr.Address, a cachedApproval) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.approvals == nil || len(c.approvals) >= maxHotCache {
		c.approvals = map[[2]addr.Address]cachedApproval{}
	}
	c.approvals[[2]addr.Address{presentity, watcher}] = a
}

// pickSubsOut returns the cached subscriptions to presentity of those of
// watchers that hold one (in the order of watchers), and whether the
// cache holds presentity's at all. The maps are changed in place
// (renewSubOut), so they are read only under the lock.
func (c *hotCache) pickSubsOut(presentity addr.Address, watchers []addr.Address) ([]store.SubOut, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.subsOut[presentity]
	if !ok {
		return nil, false
	}
	var out []store.SubOut
	for _, w := range watchers {
		if sub, held := m[w]; held {
			out = append(out, sub)
		}
	}
	return out, true
}

// startLoad reports whether the caller should load presentity's
// subscriptions (and then call endLoad); otherwise it returns a channel
// closed when another caller's load ends.
func (c *hotCache) startLoad(presentity addr.Address) (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.loading[presentity]; ok {
		return false, ch
	}
	if c.loading == nil {
		c.loading = map[addr.Address]chan struct{}{}
	}
	c.loading[presentity] = make(chan struct{})
	return true, nil
}

// endLoad keeps subs as presentity's, unless a write came meanwhile
// (gen) or they are too many, and wakes the callers that waited.
func (c *hotCache) endLoad(gen uint64, presentity addr.Address, subs []store.SubOut, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.loading[presentity])
	delete(c.loading, presentity)
	if !ok || gen != c.gen || len(subs) > maxCachedSubsOut {
		return
	}
	if c.subsOut == nil || c.subsOutRows+len(subs) > maxCachedSubsOut {
		c.subsOut, c.subsOutRows = map[addr.Address]map[addr.Address]store.SubOut{}, 0
	}
	m := make(map[addr.Address]store.SubOut, len(subs))
	for _, sub := range subs {
		m[sub.Watcher] = sub
	}
	c.subsOut[presentity] = m
	c.subsOutRows += len(subs)
}

// renewSubOut updates a cached subscription in place (a renewal); a new
// one drops presentity's, whose contact state is not known here.
func (c *hotCache) renewSubOut(sub store.SubOut) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, busy := c.loading[sub.Presentity]; busy {
		c.gen++ // the load may have read the row before this write
	}
	m, ok := c.subsOut[sub.Presentity]
	if !ok {
		return
	}
	old, ok := m[sub.Watcher]
	if !ok {
		c.dropSubsOut(sub.Presentity)
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
	c.dropSubsOut(presentity)
}

// forgetAllSubsOut drops every cached subscription.
func (c *hotCache) forgetAllSubsOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.subsOut, c.subsOutRows = nil, 0
}

func (c *hotCache) dropSubsOut(presentity addr.Address) {
	c.subsOutRows -= len(c.subsOut[presentity])
	delete(c.subsOut, presentity)
}

// forgetApproval drops the cached approval of watcher by presentity.
func (c *hotCache) forgetApproval(presentity, watcher addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.approvals, [2]addr.Address{presentity, watcher})
}

// forget drops what the cache holds about the account a: its existence,
// its blocks, and (all of them, for simplicity: accounts come and go
// rarely) the approvals and subscriptions.
func (c *hotCache) forget(a addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.accounts, a)
	delete(c.blocks, a)
	clear(c.approvals)
	c.subsOut, c.subsOutRows = nil, 0
	c.in.rows, c.in.n = nil, 0
}
