// Package wire is the IMX wire protocol: the records that IMX servers (and
// imx clients) exchange, their binary encoding, and a bounded frame reader.
//
// The byte-by-byte specification is docs/protocol.md at the repository root;
// this package is its reference implementation, and the hex examples of that
// document are the golden vectors in testdata/.
//
// # Frames
//
// Every record travels in one frame: a 12-byte header (type, flags, tag,
// body length, all big-endian) followed by a body made of typed,
// length-prefixed fields (§4.4.9 of draft-aol-imx-00). Unknown record types
// and unknown field keys are skipped, unless the frame carries
// [FlagMustUnderstand], in which case the receiver answers with
// [StatusUnsupported] (§4.4.2).
//
// # Flow
//
// A connection starts with HELLO from the side that dialled, answered by a
// HELLO response from the side that accepted; both name the highest common
// version (§4.4.1). On a server connection the dialling side then
// authenticates each domain pair by dial-back (§6.3.1):
//
//	B → A  connection 1: DB-TOKEN(from B, to A, token)          tag t1
//	A → B  connection 2: DB-VERIFY(from A, to B, token, secret) tag t2
//	B → A  connection 2: RESULT(ok)                             tag t2, response
//	B → A  connection 1: DB-SECRET(from B, to A, secret)
//	A → B  connection 1: DB-OUTCOME(from A, to B, ok)           tag t1, response
//
// After that, requests (MESSAGE, SUBSCRIBE, UNSUBSCRIBE, NOTIFY,
// GET-ATTRIBUTES, PING) flow in both directions, each with a tag that is
// unique for the node that issued it; responses (RESULT, ATTRIBUTES, PONG)
// carry the same tag and the [FlagResponse] flag and may arrive on any
// connection between the two domains (§4.4.7, §4.4.8). Either side ends the
// connection with CLOSE, or moves its peer elsewhere with REDIRECT.
//
// # API
//
// Each record type implements [encoding.BinaryAppender]: AppendBinary
// appends the whole frame, header included, and allocates nothing when the
// destination has room. [Parse] decodes one frame and never panics; every
// malformed input yields a [*FormatError] that names the record, the field
// and the problem, and maps to a [Status] with [StatusOf]. [Reader] reads
// frames from a stream and checks each length against its limit before it
// allocates.
package wire
