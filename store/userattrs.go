package store

import (
	"context"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

// # User attributes

// MaxUserAttrLen bounds the value of a stored user attribute, in bytes:
// what an attribute field of the wire carries.
const MaxUserAttrLen = wire.MaxAttrValueLen

// UserAttrs are the attributes that users set about themselves and that
// outlive their sessions (docs/design/001-presence.md, "Attributes"): the
// alias, the max-message-length they chose. Which names are allowed is the
// caller's business; the store keeps any token name.
type UserAttrs interface {
	// SetUserAttr sets the attribute name of the account owner to value,
	// or removes it when value is empty. ErrNotFound if owner is not an
	// account; ErrInvalid if an address is zero, name is not a token of
	// 1..64 bytes of [a-z0-9._-], or value is longer than MaxUserAttrLen
	// or not UTF-8.
	SetUserAttr(ctx context.Context, owner addr.Address, name, value string) error

	// GetUserAttrs returns the attributes owner set, sorted by name; none
	// for an account that set none, or for no account.
	GetUserAttrs(ctx context.Context, owner addr.Address) ([]wire.Attr, error)
}
