// Package addr parses, normalises and compares IMX end-user addresses, the
// identifiers of section 4.2.1 of draft-aol-imx-00: a local part and a
// domain separated by an at-sign, as in "alice@example.com".
//
// An [Address] is a small comparable value: two addresses name the same user
// exactly when they are ==, so an Address can be a map key. Every Address
// made by [Parse] is normalised, and [Address.String] gives the normalised
// form back, which Parse accepts unchanged.
//
// # Syntax
//
// An address is a local part, exactly one at-sign '@' (U+0040) and a domain.
// The at-sign is reserved (section 4.2.1): it may not appear in either part,
// not even as U+FF20 FULLWIDTH COMMERCIAL AT, which normalisation would turn
// into '@'. The input must be valid UTF-8. Nothing is trimmed: leading or
// trailing white space is an error like any other disallowed character.
//
// # Local part
//
// The local part is enforced with the PRECIS profile UsernameCaseMapped of
// RFC 8265 ([precis.UsernameCaseMapped]): full-width and half-width
// characters are mapped to their ordinary forms, letters are lower-cased and
// the result is put in Unicode normalisation form C. The profile's
// IdentifierClass allows the letters and digits of every script and all
// printable ASCII (the at-sign aside, see above), and disallows spaces,
// control characters, symbols and compatibility characters such as ligatures
// or Roman numerals. So "Alice", "ALICE" and "ＡＬＩＣＥ" are all the local part
// "alice". The normalised local part is at most [MaxLocalLen]
// octets of UTF-8.
//
// The x/text implementation applies the Bidi Rule of RFC 5893 to every local
// part that is not pure ASCII, not only to those with right-to-left
// characters as RFC 8265 says (golang/go#17383, kept by the Go team for
// compatibility). So a non-ASCII local part must begin with a letter and end
// with a letter, a digit or a combining mark: "1müller", "müller!" and ".é"
// are rejected while "1mueller", "mueller!" and "müller1" are accepted.
//
// The profile is applied until its output is stable (at most four times, the
// limit RFC 8266 sets for its own profile); a local part that does not settle
// is rejected. This keeps Parse idempotent.
//
// # Domain
//
// The domain is an internet domain name (section 4.2.2) that names the IMX
// service found through DNS (section 4.2.3). It is normalised with
// [ParseDomain]:
//
//   - Internationalised names are converted to IDNA A-labels with the lookup
//     mapping of UTS #46 and the validity rules of IDNA2008 (RFC 5891):
//     "Bücher.Example" becomes "xn--bcher-kva.example". Input that is already
//     an A-label must be a valid one, and so must the A-labels that mapping
//     produces (a name such as "aℵ", which maps to the invalid "aא", is
//     rejected).
//   - The result is lower-case LDH syntax (RFC 1034, RFC 1123): each label is
//     1 to 63 octets of letters, digits and hyphens, and does not begin or end
//     with a hyphen. Labels with hyphens in both the third and fourth
//     positions ("ab--cd") are reserved by IDNA2008 and rejected unless they
//     are valid A-labels ("xn--…"). The whole domain is at most
//     [MaxDomainLen] octets.
//   - One trailing dot (the DNS root, as in "example.com.") is accepted and
//     dropped, so "example.com." and "example.com" are the same domain, as
//     RFC 7622 does for XMPP. Only one: "example.com.." is an error, as is a
//     leading dot or an empty label between dots.
//   - A single label is allowed: "localhost" and "alpha.localhost" are valid
//     domains.
//   - IP address literals are rejected: "[192.0.2.1]", IPv6 addresses, and
//     any name whose last label is all digits or a 0x-prefixed hexadecimal
//     number (the forms inet_aton accepts, such as "127.1" or "0x7f000001").
//     An IMX domain names a service that is discovered through its DNS
//     records and authenticated by dial-back, which resolves the claimed
//     domain with DNS; an IP literal has no such records, cannot be
//     authenticated that way, and would give one service many spellings.
//     RFC 3696 section 2 likewise rules out all-numeric top-level labels.
//
// The domain is kept in its A-label form. A user interface that wants to show
// the Unicode form can convert it with [idna.Display].
//
// # Limits
//
// After normalisation the local part is at most [MaxLocalLen] (64) octets,
// the domain at most [MaxDomainLen] (253) and the whole address at most
// [MaxLen] (318). Before normalisation, Parse rejects any input longer than
// four times MaxLen (1272 octets) with ErrTooLong, and any local part longer
// than four times MaxLocalLen (256 octets) with ErrLocalTooLong; ParseDomain
// rejects any input longer than four times MaxDomainLen (1012 octets). No
// valid address is spelled that long, and the bounds cap the work done on
// hostile input.
//
// # Errors
//
// Parse and ParseDomain return an [*Error] that quotes (a prefix of) the
// input and wraps one of the sentinel errors ErrTooLong, ErrInvalidUTF8,
// ErrNoAt, ErrExtraAt, ErrEmptyLocal, ErrInvalidLocal, ErrLocalTooLong,
// ErrEmptyDomain, ErrInvalidDomain, ErrDomainTooLong, ErrLabelTooLong and
// ErrIPLiteral, so callers can test for them with [errors.Is]:
//
//	addr: local part longer than 64 octets: "aaaaaaaa…"
//	addr: invalid domain: label "-abc" begins with a hyphen: "bob@-abc.example"
//
// # Examples
//
//	Alice@Example.COM       → alice@example.com
//	ＡＬＩＣＥ@example.com     → alice@example.com
//	bob@Bücher.example      → bob@xn--bcher-kva.example
//	carol@example.com.      → carol@example.com
//	dave@localhost          → dave@localhost
//	alice                   → ErrNoAt
//	a@b@example.com         → ErrExtraAt
//	a b@example.com         → ErrInvalidLocal
//	bob@127.0.0.1           → ErrIPLiteral
//	bob@-x.example          → ErrInvalidDomain
package addr
