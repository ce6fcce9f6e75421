// Package discovery finds the servers of an IMX domain through DNS (§4.2.3
// of draft-aol-imx-00, decision 2 of the design brief).
//
// # The IMX record
//
// The draft's "IMX record", which works like an MX record, is the SRV record
// (RFC 2782) _imx._tcp.<domain>: each record names a server (target) and a
// port, with a priority and a weight. [Resolver.Lookup] returns the servers
// as [Endpoint] values in the order to try them: lowest priority first and,
// within one priority, in a random order weighted as RFC 2782 describes. The
// caller dials the first endpoint and, when it does not answer, the next one,
// exactly the MX behaviour the draft asks for.
//
// Weight 0 follows RFC 2782 to the letter: at each pick, the weight-0 records
// are placed first and a number is drawn uniformly from 0 to the sum of the
// weights inclusive, so one weight-0 record (chosen at random among them) gets
// the small chance 1/(sum+1), and all the weight-0 records otherwise come after
// the weighted ones; when every record of a priority has weight 0 they come in
// a uniformly random order. The random source is injectable ([Config].Rand).
//
// A single SRV record whose target is "." means the domain decidedly offers
// no IMX service: the lookup fails with [ErrNoService]. Records with port 0
// are ignored, and a "." among other records too.
//
// When there is no SRV record at all (NXDOMAIN or NODATA for the SRV name),
// the domain's own A and AAAA records are used at [DefaultPort], as SMTP falls
// back from MX to the domain's address. A domain without SRV and without
// address gives [ErrNoSuchDomain] (the name does not exist) or [ErrNoAddress].
//
// _imxs._tcp.<domain> ([ServiceIMXS], direct TLS) is looked up the same way
// but has no fallback: direct TLS is offered only by publishing the SRV
// record (as XEP-0368 does for XMPP), because falling back would make every
// domain seem to offer TLS on a port that almost none listens on. Without the
// record the lookup fails with [ErrNoService].
//
// # Endpoints and addresses
//
// Every SRV target is resolved to its A and AAAA records (queried in
// parallel). When the SRV answer carries address records for a target in its
// additional section ("glue"), those are used and no query is sent for that
// target. Targets that have no address are left out; when none has one, the
// lookup fails with [ErrNoAddress]. At most [MaxTargets] SRV records, those of
// lowest priority, are used, which bounds the work a hostile domain can cause.
//
// An [Endpoint] keeps the target's host name, for logs and diagnostics, beside
// its addresses (IPv6 first, then IPv4; a dialer may race them as in RFC
// 8305). The host name is not what a TLS certificate is checked against:
// without DNSSEC the SRV answer is not trusted, so the certificate must name
// the IMX domain itself (RFC 6125, RFC 7673). discovery does not filter
// addresses (loopback, private ranges): that policy belongs to the dialer.
//
// # Resolver
//
// Queries go to the DNS server named in [Config].Server or, by default, to
// the name servers of /etc/resolv.conf (read once, by [New]; its search list
// and ndots are not used, since every name asked is absolute). Each query is
// sent over UDP with EDNS(0) (1232-byte payload) and repeated over TCP when
// the answer is truncated; every query has its own deadline
// ([Config].QueryTimeout), and a query that times out is tried on the next
// name server, each server at most twice. A whole lookup, targets included,
// has a deadline too ([Config].LookupTimeout).
//
// # Cache
//
// Results are cached per service and domain, in a cache bounded in entries
// ([Config].CacheSize, least recently used evicted):
//
//   - a result with endpoints for the smallest TTL of the records it used
//     (the SRV records and the address records of the targets kept, or, in
//     the fallback, the domain's address records and the negative TTL of the
//     missing SRV record), bounded to [Config].MinTTL (30 s) and
//     [Config].MaxTTL (1 h). When some target could not be resolved because
//     of a transient failure, the result is kept only [Config].FailureTTL, so
//     that the target is retried soon;
//   - a negative result ([ErrNoService], [ErrNoSuchDomain], [ErrNoAddress])
//     for the negative TTL of RFC 2308, the smaller of the SOA record's TTL
//     and its MINIMUM field when the answer carries an SOA, or the TTL of the
//     "." record, bounded to 5 s and [Config].MaxNegativeTTL (5 min); without
//     an SOA, for [Config].NegativeTTL (30 s);
//   - a failure (timeout, SERVFAIL, unreachable server) for
//     [Config].FailureTTL (5 s), so that a dead domain does not make every
//     caller wait for a timeout, as RFC 9520 recommends.
//
// Expiry is measured with [Config].Now, which tests replace. Concurrent
// lookups of the same service and domain share one set of queries. The
// shared lookup runs in a goroutine owned by the [Resolver], detached from
// the callers' contexts: a caller whose context ends stops waiting and gets
// an error, the lookup goes on and its result is cached for the next caller.
// [Resolver.Close] cancels the lookups in flight and waits for them.
//
// # Errors
//
// Errors name the DNS name looked up and what failed, as in
// "discovery: lookup _imx._tcp.example.com: no IMX service: …", and match
// with errors.Is one of the sentinels [ErrNoService], [ErrNoSuchDomain],
// [ErrNoAddress], [ErrTimeout], [ErrServerFailure] or [ErrClosed], or
// context.Canceled when the caller gave up; a timeout also matches
// context.DeadlineExceeded when the deadline was the caller's.
//
// discovery parses no text by hand: DNS messages are decoded by
// github.com/miekg/dns, and the server address by net/netip. The code that
// interprets decoded answers, which come from the network, is fuzzed
// (FuzzInterpret), as is the ordering (FuzzOrder).
package discovery
