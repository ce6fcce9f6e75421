// Package dialback is the cryptographic and bookkeeping core of the
// dial-back mechanism of draft-aol-imx-00 §6.3.1: the tokens an
// originating server mints and checks (Issuer), and the single-use secrets a
// receiving server coins and verifies (Verifier). It does no networking;
// package s2s drives it over connections.
//
// # The two servers and the pair
//
// Server B opens Connection 1 to server A and claims to serve domain B.
// Incoming connections are not trusted (§6.3 item 2), so A checks the claim
// by calling B back: A opens Connection 2 to B, found through A's own DNS
// lookup, and a secret A sends on Connection 2 must come back on
// Connection 1.
//
// Every function here names the domain pair in the direction of
// Connection 1, on both servers:
//
//   - from: the originating domain, B, the one being authenticated;
//   - to: the receiving domain, A, the one that authenticates.
//
// On B, from is its own domain; on A, from is the remote, claimed domain.
// The same two strings travel through all four steps unchanged, so neither
// side ever swaps them. A connection that carries several domains is
// verified once per pair (§4.3).
//
// # The flow, step by step
//
//	  B (originator, Issuer)                        A (receiver, Verifier)
//	1 tok := Issue(B, A, conn1ID)   --- Connection 1: pair, tok --->
//	2                                                resolve B in DNS, dial Connection 2
//	                                                 sec := Begin(conn1Key, B, A)
//	                                <--- Connection 2: pair, tok, sec ---
//	3 id := Check(tok, B, A)
//	  find connection id, to A
//	4                               --- Connection 1: pair, sec --->
//	5                                                Complete(conn1Key, B, A, sec) == nil
//	                                                 pair B -> A trusted on Connection 1
//
// Step 1, on B, Connection 1: Issuer.Issue mints a token naming Connection
// 1 (its connID) for the pair. The draft leaves the token to B (its
// Implementation Note: "encode specific information about the requesting
// server, process, or thread"); here it is the connID, the mint time and an
// HMAC-SHA256 over both and the pair under B's key (see Token format).
//
// Step 2, on A: A resolves B with its own DNS, never using an address from
// Connection 1 (that is s2s and discovery's part), opens Connection 2, and
// once it is up calls Verifier.Begin, which records a pending verification
// for Connection 1 and the pair and returns a fresh secret. A sends the
// token, the secret and the pair to B on Connection 2.
//
// Step 3, on B, Connection 2: Issuer.Check verifies the token against the
// pair and returns the connID. B finds that connection, makes sure it is
// one B opened to domain to, and sends the secret on it, nowhere else.
//
// Step 4, on A, Connection 1: the secret comes back. Verifier.Complete
// accepts it if A coined it for this connection and this pair, within its
// lifetime, and only once. Then the pair is authenticated on Connection 1
// (step 5) for the life of the connection (§6.3 item 3).
//
// Verifier.Cancel drops a connection's verifications when Connection 1
// closes; Verifier.Sweep reclaims expired ones.
//
// # What each check stops
//
// Spoofing (§6.2.2, §6.3.1 step 6). A secret reaches only the real B,
// because A dials B by its own DNS, and comes back only on a connection B
// itself opened to A. A server claiming B without being B never sees the
// secret. This holds only if the secret counts on the one connection it
// was coined for: Complete is keyed by ConnKey, because authentication is
// a property of a connection, and a secret returned on some other
// connection proves nothing about this one.
//
// Forged tokens. Without Check, anyone could connect to B, pose as A, and
// have B send secrets of their choosing down any of B's connections. The
// HMAC means B acts only on tokens it minted itself; tokens cannot be
// guessed or altered (any changed byte fails), and the key never leaves B.
//
// Reflection of someone else's token. Say M runs a real domain, and B
// connects to M: M now holds a genuine token from B. M connects to A
// claiming B and passes that token along; A dials the real B, which, if it
// checked only its MAC, would send A's secret down its connection to M,
// and M would return it to A as B. Binding the token to the pair defeats
// this: A presents it for B -> A, it was minted for B -> M, and Check
// fails. So must B's own check that connection connID leads to domain to.
//
// Cross-pair use. M owns domain M and verifies M -> A on a connection
// honestly, learning that secret. If Complete ignored the pair, M could
// present the same secret for B -> A. Complete requires the pair the
// secret was coined for (ErrWrongPair) and consumes the secret either way.
//
// Replay. A secret is single-use (ErrReplayed) and short-lived (ErrExpired,
// VerifierConfig.SecretLifetime), and a token is accepted only for
// IssuerConfig.MaxAge: a secret or token seen in a log or on the wire is
// soon worthless. Unsolicited secrets, ones A never coined or coined for
// another connection, authenticate nothing (ErrUnsolicited,
// ErrWrongSecret).
//
// Timing. Token MACs are compared with hmac.Equal and secrets with
// crypto/subtle, so response times reveal nothing about how many leading
// bytes of a guess were right.
//
// Resource exhaustion. Each Begin holds memory for a secret's lifetime and
// makes A open a connection to the claimed domain, which an attacker could
// aim at a victim. Begin therefore refuses (ErrTooManyPending) beyond
// MaxPerConn pending verifications per connection, MaxPerAddr per peer
// address (IPv6 by /64) and MaxPending in all; expired entries are
// reclaimed in order, at O(1) amortized cost, with no goroutine. The
// memory of used secrets is bounded the same way. Issue and Check keep no
// state at all.
//
// # Token format
//
// A token is opaque to A, which only hands it back; the format is this
// package's own (version 1, TokenSize = 49 bytes, integers big-endian):
//
//	offset  size  field
//	0       1     version, 0x01
//	1       8     connID: B's identifier for Connection 1
//	9       8     issued: mint time, Unix nanoseconds (int64)
//	17      32    MAC: HMAC-SHA256(key, input)
//
// The MAC input binds the version, both domains, connID and issued, each
// domain prefixed by its length as an unsigned varint (as
// encoding/binary.AppendUvarint writes it). Varints are prefix-free, so two
// different pairs never give the same input: ("ab", "c") and ("a", "bc")
// differ in their first length byte.
//
//	"imx dialback token" 0x00   label: this key MACs nothing else
//	0x01                        version
//	uvarint(len(from)) from     originating domain (B)
//	uvarint(len(to))   to       receiving domain (A)
//	connID                      8 bytes
//	issued                      8 bytes
//
// The domains are not in the token: the checker supplies them, and a token
// checked for any other pair fails its MAC. The key is KeySize random bytes
// (NewKey, LoadOrCreateKey); nodes of one domain that share it can check
// each other's tokens.
//
// Out of scope, as in §6.2.2.2: an attacker who hijacks B's DNS or sits on
// the path between A and B. TLS with certificate checks (§6.3.2) covers
// those; it wraps the same flow.
package dialback
