package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/imxproject/imx/addr"
)

// # Contacts, approvals, subscriptions and block lists
//
// The storage of presence (issue #5, docs/design/001-presence.md): one
// small interface per concern, each embedded in Store.
//
//   - Contacts: a user's contact list, kept by the watcher's server;
//   - Approvals: who may watch a user, kept by the presentity's server
//     (DESIGN decision 9);
//   - Blocks: the addresses and domains a user refuses (§6.4 item 5);
//   - SubsIn and SubsOut: the presence subscriptions granted to watchers
//     and held for local watchers, with their expiry (§4.5.1), so that
//     they survive a restart.
//
// In every one of them the first address is the local side, an account of
// this server: deleting the account deletes its rows. The other address is
// any address, local or remote. Presence itself (online, away, the status
// text) is derived from the sessions and is never stored.

// ContactState is where a contact stands, as the watcher's server knows it.
type ContactState string

const (
	// ContactAsked means a SUBSCRIBE went out and no approval or denial
	// has come back yet.
	ContactAsked ContactState = "asked"
	// ContactApproved means the contact approved the watcher.
	ContactApproved ContactState = "approved"
	// ContactDenied means the contact denied the watcher.
	ContactDenied ContactState = "denied"
)

// String returns the state as stored and shown: "asked", "approved" or
// "denied".
func (s ContactState) String() string { return string(s) }

// Valid reports whether s is one of the ContactState constants.
func (s ContactState) Valid() bool {
	return s == ContactAsked || s == ContactApproved || s == ContactDenied
}

// Contact is one entry of a user's contact list.
type Contact struct {
	// Owner is the local account whose list this is: the watcher.
	Owner addr.Address
	// Contact is the address watched, local or remote.
	Contact addr.Address
	// Alias is the owner's name for the contact; it may be empty.
	Alias string
	// State is whether the contact approved the owner.
	State ContactState
}

// Contacts are the users' contact lists: the addresses each user watches,
// with an alias and the state of the request to watch.
type Contacts interface {
	// PutContact adds c to the list of c.Owner, or replaces the alias and
	// state of the entry for c.Contact that the list holds. ErrNotFound if
	// c.Owner is not an account; ErrInvalid if an address is zero or the
	// state is not valid.
	PutContact(ctx context.Context, c Contact) error

	// SetContactState sets the state of the contact of owner, and keeps
	// its alias: what the answer to a request to watch changes.
	// ErrNotFound if owner has no such contact; ErrInvalid if the state
	// is not valid.
	SetContactState(ctx context.Context, owner, contact addr.Address, state ContactState) error

	// DeleteContact removes contact from the list of owner. ErrNotFound
	// if the list holds no such contact.
	DeleteContact(ctx context.Context, owner, contact addr.Address) error

	// GetContact returns the entry for contact in the list of owner.
	// ErrNotFound if there is none.
	GetContact(ctx context.Context, owner, contact addr.Address) (Contact, error)

	// ListContacts returns the contact list of owner, sorted by the
	// contact's address (its String, in byte order). An unknown owner has
	// an empty list.
	ListContacts(ctx context.Context, owner addr.Address) ([]Contact, error)

	// CountContacts reports how many contacts the list of owner holds.
	CountContacts(ctx context.Context, owner addr.Address) (int, error)

	// ContactOwners returns the local accounts that have contact in their
	// list, sorted by address (String, byte order): who on this server
	// wants the presence of contact, whether or not it holds a
	// subscription right now (SubsOut says that).
	ContactOwners(ctx context.Context, contact addr.Address) ([]addr.Address, error)
}

// ApprovalState is a presentity's decision about a watcher.
type ApprovalState string

const (
	// ApprovalPending means the watcher asked and the presentity has not
	// answered yet.
	ApprovalPending ApprovalState = "pending"
	// ApprovalApproved means the watcher may see the presentity's
	// presence and attributes.
	ApprovalApproved ApprovalState = "approved"
	// ApprovalDenied means the watcher may not.
	ApprovalDenied ApprovalState = "denied"
)

// String returns the state as stored and shown: "pending", "approved" or
// "denied".
func (s ApprovalState) String() string { return string(s) }

// Valid reports whether s is one of the ApprovalState constants.
func (s ApprovalState) Valid() bool {
	return s == ApprovalPending || s == ApprovalApproved || s == ApprovalDenied
}

// Approval is a presentity's decision about one watcher.
type Approval struct {
	// Presentity is the local account watched.
	Presentity addr.Address
	// Watcher is the address that asked to watch, local or remote.
	Watcher addr.Address
	// State is the decision, or ApprovalPending while there is none.
	State ApprovalState
	// Asked is when the watcher first asked.
	Asked time.Time
}

// Approvals are the presentities' decisions about who may watch them. A
// request waits here, pending, until the presentity answers it, even if it
// arrived while the presentity was offline.
type Approvals interface {
	// SetApproval stores a for a.Presentity and a.Watcher, replacing the
	// approval that was there. ErrNotFound if a.Presentity is not an
	// account; ErrInvalid if an address is zero or the state not valid.
	SetApproval(ctx context.Context, a Approval) error

	// RequestApproval records that watcher asked at asked to watch
	// presentity, atomically: if there is no approval for the two, it
	// stores a pending one and returns it with created true; if there is
	// one, it changes nothing and returns it with created false, so that
	// a request never undoes a decision made meanwhile. ErrNotFound if
	// presentity is not an account; ErrInvalid if an address is zero.
	RequestApproval(ctx context.Context, presentity, watcher addr.Address, asked time.Time) (a Approval, created bool, err error)

	// GetApproval returns the approval of watcher by presentity.
	// ErrNotFound if there is none.
	GetApproval(ctx context.Context, presentity, watcher addr.Address) (Approval, error)

	// DeleteApproval forgets the approval of watcher by presentity.
	// ErrNotFound if there is none.
	DeleteApproval(ctx context.Context, presentity, watcher addr.Address) error

	// ListApprovals returns the approvals of presentity in state, or in
	// any state if state is "", oldest request (Asked) first, then by
	// watcher address. ErrInvalid if state is neither "" nor valid.
	ListApprovals(ctx context.Context, presentity addr.Address, state ApprovalState) ([]Approval, error)
}

// ParseBlockPattern normalises a block-list pattern: a full address
// ("user@domain", normalised as addr.Parse does) or a whole domain
// ("@domain", normalised as addr.ParseDomain does). The error wraps
// ErrInvalid.
func ParseBlockPattern(pattern string) (string, error) {
	if d, ok := strings.CutPrefix(pattern, "@"); ok {
		domain, err := addr.ParseDomain(d)
		if err != nil {
			return "", fmt.Errorf("%w: block pattern %q: %v", ErrInvalid, pattern, err)
		}
		return "@" + domain, nil
	}
	a, err := addr.Parse(pattern)
	if err != nil {
		return "", fmt.Errorf("%w: block pattern %q: %v", ErrInvalid, pattern, err)
	}
	return a.String(), nil
}

// Blocks are the users' block lists: the addresses and domains from which a
// user wants nothing. A pattern is a full address ("user@domain") or a
// domain ("@domain"), which blocks every address of that domain; methods
// normalise it with ParseBlockPattern.
type Blocks interface {
	// AddBlock adds pattern to the block list of owner. ErrExists if the
	// list holds it; ErrNotFound if owner is not an account; ErrInvalid
	// if owner is zero or the pattern does not parse.
	AddBlock(ctx context.Context, owner addr.Address, pattern string) error

	// RemoveBlock removes pattern from the block list of owner.
	// ErrNotFound if the list does not hold it; ErrInvalid if the pattern
	// does not parse.
	RemoveBlock(ctx context.Context, owner addr.Address, pattern string) error

	// ListBlocks returns the block list of owner, normalised, sorted in
	// byte order (so the domains, "@…", come first).
	ListBlocks(ctx context.Context, owner addr.Address) ([]string, error)

	// IsBlocked reports whether the block list of owner holds a or the
	// domain of a. An unknown owner blocks nothing.
	IsBlocked(ctx context.Context, owner, a addr.Address) (bool, error)
}

// SubIn is a subscription granted by the presentity's server: Watcher
// receives the presence of Presentity until Expires, if Active.
type SubIn struct {
	// Presentity is the local account watched.
	Presentity addr.Address
	// Watcher is the subscriber, local or remote.
	Watcher addr.Address
	// Expires is when the subscription lapses unless renewed: it is live
	// at time now while now is before Expires.
	Expires time.Time
	// Active is false while the presentity has not approved the watcher:
	// the subscription is kept, so that an approval can notify at once,
	// but receives nothing.
	Active bool
}

// SubsIn are the subscriptions the presentities' server granted
// ("subs_in"): whom to NOTIFY when a local user's presence changes.
type SubsIn interface {
	// PutSubIn stores s, replacing the subscription of s.Watcher to
	// s.Presentity (a SUBSCRIBE, or its renewal). ErrNotFound if
	// s.Presentity is not an account; ErrInvalid if an address is zero.
	PutSubIn(ctx context.Context, s SubIn) error

	// SetSubInActive sets whether the subscription of watcher to
	// presentity is active (an approval given or withdrawn) and keeps its
	// expiry. ErrNotFound if there is no such subscription.
	SetSubInActive(ctx context.Context, presentity, watcher addr.Address, active bool) error

	// GetSubIn returns the subscription of watcher to presentity as
	// stored, expired or not (compare Expires with the time). ErrNotFound
	// if there is none.
	GetSubIn(ctx context.Context, presentity, watcher addr.Address) (SubIn, error)

	// DeleteSubIn removes the subscription of watcher to presentity (an
	// UNSUBSCRIBE). ErrNotFound if there is none.
	DeleteSubIn(ctx context.Context, presentity, watcher addr.Address) error

	// ActiveSubsIn returns the subscriptions to presentity that are
	// active and live at now, sorted by the watcher's domain, then its
	// local part (byte order), so that the watchers of one domain, who
	// share one NOTIFY, come together.
	ActiveSubsIn(ctx context.Context, presentity addr.Address, now time.Time) ([]SubIn, error)

	// PruneSubsIn deletes the subscriptions, to every presentity, that
	// have expired at now (Expires at or before now) and reports how
	// many.
	PruneSubsIn(ctx context.Context, now time.Time) (int, error)
}

// SubOut is a subscription the watcher's server holds: Watcher receives the
// presence of Presentity until Expires, and renews it at RenewAt.
type SubOut struct {
	// Watcher is the local account that subscribed.
	Watcher addr.Address
	// Presentity is the address watched, local or remote.
	Presentity addr.Address
	// Expires is when the subscription the presentity's server granted
	// lapses: it is live at time now while now is before Expires.
	Expires time.Time
	// RenewAt is when to renew it, at or before Expires.
	RenewAt time.Time
	// Contact is filled by SubsOutTo only: the state of Watcher's contact
	// entry for Presentity, empty if there is none.
	Contact ContactState
}

// SubsOut are the subscriptions held for local watchers ("subs_out"):
// which NOTIFYs to accept, and what to renew when.
type SubsOut interface {
	// PutSubOut stores s, replacing the subscription of s.Watcher to
	// s.Presentity (a grant, or the grant of a renewal). ErrNotFound if
	// s.Watcher is not an account; ErrInvalid if an address is zero or
	// RenewAt is after Expires.
	PutSubOut(ctx context.Context, s SubOut) error

	// GetSubOut returns the subscription of watcher to presentity as
	// stored, expired or not. ErrNotFound if there is none.
	GetSubOut(ctx context.Context, watcher, presentity addr.Address) (SubOut, error)

	// DeleteSubOut removes the subscription of watcher to presentity.
	// ErrNotFound if there is none.
	DeleteSubOut(ctx context.Context, watcher, presentity addr.Address) error

	// ListSubsOut returns the subscriptions of watcher, expired or not,
	// sorted by presentity address (String, byte order).
	ListSubsOut(ctx context.Context, watcher addr.Address) ([]SubOut, error)

	// SubsOutTo returns the subscriptions to presentity held by those of
	// watchers that hold one, expired or not, sorted by watcher address
	// (String, byte order), each with its Contact state: what an incoming
	// NOTIFY, which lists many watchers, needs in one lookup. Its cost
	// follows len(watchers), not the number of watchers presentity has.
	SubsOutTo(ctx context.Context, presentity addr.Address, watchers []addr.Address) ([]SubOut, error)

	// DueSubsOut returns the subscriptions, of every watcher, due for
	// renewal at now (RenewAt at or before now), earliest RenewAt first,
	// then by watcher and presentity, at most limit of them (limit < 1:
	// all). It lists them and does not take them: one stays due until
	// PutSubOut moves its RenewAt or DeleteSubOut removes it.
	DueSubsOut(ctx context.Context, now time.Time, limit int) ([]SubOut, error)

	// PruneSubsOut deletes the subscriptions, of every watcher, that have
	// expired at now (Expires at or before now) and reports how many.
	PruneSubsOut(ctx context.Context, now time.Time) (int, error)
}
