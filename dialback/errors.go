package dialback

import "errors"

// The errors below are the package's failure reasons. Functions wrap them
// with details (sizes, ages, the domain pair) using %w, so test for them with
// errors.Is. No error ever carries token MACs, secrets or key bytes.
var (
	// ErrBadToken means a token was not minted by this Issuer for the
	// domain pair it was checked against: it has the wrong size or version,
	// or its MAC does not match because it was forged, altered, minted under
	// another key, or minted for another (or swapped) domain pair. The MAC
	// cannot tell these apart, by design.
	ErrBadToken = errors.New("dialback: bad token")

	// ErrExpired means a token or secret was genuine but is outside its
	// validity window: a token older than IssuerConfig.MaxAge (or stamped
	// implausibly far in the future), or a secret presented after
	// VerifierConfig.SecretLifetime.
	ErrExpired = errors.New("dialback: expired")

	// ErrUnsolicited means Complete was called for a connection on which no
	// verification is pending: none was begun, or it was cancelled, swept
	// after expiry, or forgotten after use. A secret A did not coin for this
	// connection authenticates nothing.
	ErrUnsolicited = errors.New("dialback: no verification pending on this connection")

	// ErrWrongSecret means verifications are pending on the connection but
	// the secret presented matches none of them (for instance a secret
	// coined for another connection, or random bytes).
	ErrWrongSecret = errors.New("dialback: secret matches no pending verification")

	// ErrReplayed means the secret matched a verification on this connection
	// that has already been used. Secrets are single-use. The Verifier
	// remembers used secrets only until they would have expired, and only
	// within its bounds; a replay it has forgotten fails with ErrUnsolicited
	// or ErrWrongSecret instead, never with success.
	ErrReplayed = errors.New("dialback: secret already used")

	// ErrWrongPair means the secret matched a verification begun on this
	// connection for a different domain pair. The verification is consumed:
	// a secret is single-use even when it is misused.
	ErrWrongPair = errors.New("dialback: secret was coined for another domain pair")

	// ErrTooManyPending means Begin refused to start a verification because
	// a bound on pending verifications (per connection, per peer address, or
	// overall) has been reached. Nothing was recorded.
	ErrTooManyPending = errors.New("dialback: too many pending verifications")

	// ErrBadDomain means a domain passed to Begin is empty or longer than
	// MaxDomainLen bytes.
	ErrBadDomain = errors.New("dialback: bad domain")

	// ErrBadKey means a key given to NewIssuer is shorter than KeySize
	// bytes, or a key file does not hold exactly KeySize bytes in hex.
	ErrBadKey = errors.New("dialback: bad key")
)
