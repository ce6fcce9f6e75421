package sqlite

import (
	"slices"
	"sync"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// hotCache keeps, in memory, the answers of the reads that every message
// makes (AccountExists and IsBlocked at the receiving server, GetApproval
// at the sending one, for the attributes that ride along), which cost more
// through database/sql than the message's own write, a user's attributes,
// which every SUBSCRIBE granted reads, and the subscriptions of a
// presentity (presentity.go). Only this Store writes
// those tables, so it knows when an answer goes stale: every write to them
// updates or drops what it changed. A read that raced with
// such a write does not keep its answer (gen).
type hotCache struct {
	mu       sync.Mutex
	gen      uint64                    // bumped by every invalidation
	accounts map[addr.Address]bool     // account exists
	blocks   map[addr.Address][]string // an account's block patterns
	// an account's attributes (user_attrs), asked for at every SUBSCRIBE
	// granted and every change of presence; nil for none.
	attrs map[addr.Address][]wire.Attr
	// approvals by (presentity, watcher); a missing row is kept as the
	// zero Approval with found false.
	approvals map[[2]addr.Address]cachedApproval

	// The subscriptions, by presentity, read whole at the first call
	// (presentity.go): those local watchers hold (SubsOutTo, with the
	// contact states), and those granted (ActiveSubsIn, in key order).
	subsOut presentityRows[map[addr.Address]store.SubOut]
	subsIn  presentityRows[[]store.SubIn]
}

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

// userAttrs returns a copy of owner's cached attributes.
func (c *hotCache) userAttrs(owner addr.Address) ([]wire.Attr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	as, ok := c.attrs[owner]
	return slices.Clone(as), ok
}

func (c *hotCache) putUserAttrs(gen uint64, owner addr.Address, as []wire.Attr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.attrs == nil || len(c.attrs) >= maxHotCache {
		c.attrs = map[addr.Address][]wire.Attr{}
	}
	c.attrs[owner] = slices.Clone(as)
}

// forgetUserAttrs drops owner's cached attributes.
func (c *hotCache) forgetUserAttrs(owner addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.attrs, owner)
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

// forgetApproval drops the cached approval of watcher by presentity.
func (c *hotCache) forgetApproval(presentity, watcher addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.approvals, [2]addr.Address{presentity, watcher})
}

// forget drops what the cache holds about the account a itself: its
// existence, its blocks and its attributes (a new account, a changed block
// list).
func (c *hotCache) forget(a addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.accounts, a)
	delete(c.blocks, a)
	delete(c.attrs, a)
}

// forgetDeleted drops what the deletion of the account a changed: its
// existence and blocks, and, since its rows of every table go with it,
// the approvals and subscriptions (all of them, for simplicity: accounts
// are deleted rarely).
func (c *hotCache) forgetDeleted(a addr.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.accounts, a)
	delete(c.blocks, a)
	delete(c.attrs, a)
	clear(c.approvals)
	c.subsOut.dropAll()
	c.subsIn.dropAll()
}
