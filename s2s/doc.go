// Package s2s is IMX federation: the server-to-server side of an imx node.
// It accepts connections from other IMX servers, makes connections to them
// on demand, authenticates every domain pair by dial-back (§6.3.1), and
// checks every record against the pairs authenticated on its connection.
//
// # Connections (§4.3)
//
// A [Server] serves one or more local domains (an Aggregator is one Server
// with many). Outbound connections are made on demand when a local domain
// has something for a remote one: the remote domain's servers are found with
// package discovery, tried in order, and the connection is pooled per remote
// domain, up to Config.MaxConnsPerDomain. Inbound connections are capped per
// remote domain (Config.MaxInboundPerDomain). A connection that carries no
// records for Config.IdleTimeout is closed by the receiving side; it is made
// again the next time it is needed. A remote domain whose servers cannot be
// reached is not tried again before a back-off delay that doubles with each
// failure (Config.MinBackoff to Config.MaxBackoff).
//
// # Dial-back (§6.3.1)
//
// On a connection it dialled (connection 1), the originating server sends
// DB-TOKEN for the pair (local domain, remote domain), with a token minted by
// its dialback.Issuer that names the connection. The receiving server looks
// the claimed domain up with its own resolver, reaches it on an outbound
// connection of its own (connection 2), and sends DB-VERIFY with the token
// and a secret from its dialback.Verifier. The originator checks the token,
// sends the secret back on connection 1 (DB-SECRET), and answers DB-VERIFY;
// the receiver checks the secret and answers DB-TOKEN with DB-OUTCOME. Then
// both connections are trusted for the pair, in both directions. Each pair
// is authenticated on its own: a connection may carry several.
//
// # Authorization
//
// Every record names a sender and a recipient (MESSAGE from/to, SUBSCRIBE
// watcher/presentity, NOTIFY presentity/watchers, GET-ATTRIBUTES
// requester/target). A record is accepted only if its recipient's domain is
// served here (no relaying, §4.3.3) and the pair (sender's domain,
// recipient's domain) is authenticated on the connection it came on (no
// spoofing, §6.2.2.1). A violation is answered with RESULT relay-denied or
// not-authorized, logged and counted; a connection with too many is closed.
// A response is accepted only on a connection authenticated for the pair its
// request was sent for.
//
// # Requests
//
// [Server.Request] sends a request for a domain pair and waits for its
// response, which may come back on any connection between the two domains
// (§4.4.7): tags are unique per node. If the connection dies first, the
// request is sent again on another connection; records that must not be
// acted on twice (MESSAGE) carry an id for the receiver to drop duplicates.
//
// # REDIRECT (§4.4.4)
//
// [Server.Redirect] tells the peers on inbound connections to go to another
// host and port. A server that receives REDIRECT on a connection it dialled
// follows it only to a host that the remote domain's own IMX record lists
// (or that Config.RedirectAllow names), at most MaxRedirects in a row and
// never back to a host already on the chain; it authenticates the new
// connection again and moves its traffic there.
package s2s
