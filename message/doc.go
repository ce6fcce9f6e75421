// Package message is the instant-message format of draft-aol-imx-00 §5 as
// imx implements it: a small subset of MIME (RFC 2045, RFC 5322 with the
// UTF-8 headers of RFC 6532), one part, text/plain or text/html-lite, in
// UTF-8. The bytes travel in the mime field of a MESSAGE record; its from and
// to fields are the envelope (docs/protocol.md §5.7, draft §4.7.1).
//
// The originating server calls [Build] (or [Builder.Build]) on what its
// client sent; the receiving server calls [Parse] on what a peer sent, and
// stores and delivers the canonical bytes Parse returns, never the bytes it
// received. [Status] turns their errors into the status of the RESULT.
//
// # The canonical form
//
// Build writes, and Parse re-writes, every message in one form. Byte for byte,
// with every line ended by CR LF (shown as ␍␊):
//
//	From: alice@alpha.example␍␊
//	To: bob@beta.example␍␊
//	Date: Sat, 14 Mar 2026 15:09:26 +0000␍␊
//	Message-ID: <01935b10c47e7000@alpha.example>␍␊
//	MIME-Version: 1.0␍␊
//	Content-Type: text/plain; charset=utf-8␍␊
//	Content-Transfer-Encoding: 8bit␍␊
//	X-Client: imx-web␍␊
//	␍␊
//	Hello Bob! This paragraph is sent as one long line, however long it is.
//
// The headers come in this order and no other appear:
//
//   - From and To: required (§5 item 1), each the bare normalised address
//     of package addr (no display name: a user's alias is the alias
//     attribute), equal to the envelope.
//   - Date: an RFC 5322 date-time in UTC. Build takes it from the Builder's
//     clock; Parse keeps the sender's (converted to UTC) and writes none if
//     the sender wrote none.
//   - Message-ID: <id@sender-domain>. Build derives id from the MESSAGE
//     record's id (hex) when it is given, so that a message re-sent with
//     the same id is the same message, and otherwise uses 128 random bits
//     (hex). Parse keeps the sender's, or writes none.
//   - MIME-Version: 1.0, Content-Type with charset=utf-8, and
//     Content-Transfer-Encoding: 8bit, always.
//   - X- headers, in the order given, names canonicalised ("x-client"
//     becomes "X-Client"), values trimmed of white space and never folded.
//
// After the blank line comes the body: for text/plain the text as sent, with
// every line end (CRLF, CR or LF) turned into CRLF and nothing else changed.
// Long lines are not wrapped (§5 item 3): a paragraph is one line, and the
// receiving client wraps it. A text/html-lite body is sanitized (see
// below) by Build and again by Parse.
//
// # What is refused, and what is dropped
//
// A message is at most maxSize octets, headers included: the
// max-message-size domain attribute ([DefaultMaxSize] if the caller gives
// none). Build checks the message it made; Parse checks the bytes it
// received, and lets the canonical form it returns exceed the limit by
// [CanonicalSlack] octets at most (headers a minimal message lacks), so a
// non-canonical body that sanitizing makes much longer is refused too.
//
// The body is valid UTF-8 ([ErrUTF8]) of the characters XML 1.0 allows: no
// NUL or other C0 control but tab, CR and LF, no U+FFFE or U+FFFF
// ([ErrControl]). So any IMX message can cross an XMPP gateway unchanged,
// and none can carry terminal control sequences to a command-line client.
//
// Build accepts extra headers only if they are X- headers with RFC 5322
// field names and values free of CR, LF and other control characters but
// tab: anything else is [ErrHeader], which rules out header injection.
// Subject is refused too: IMX does not use it (§5 item 1), and a client that
// sends one should learn at once that nobody will see it.
//
// Parse is strict about everything that could be read two ways: header lines
// end in CRLF and a bare CR or LF in the header section is refused; a field
// name is followed directly by its colon; From, To, Date, Message-ID,
// MIME-Version, Content-Type and Content-Transfer-Encoding appear at most
// once; a folded line is unfolded. Headers that are neither those nor X-
// headers (Subject, Received, Reply-To, Cc, ...) are accepted, since §5 says
// any number of headers may exist, and dropped: nothing but the headers
// above reaches the recipient. A missing Content-Type means text/plain, a
// missing charset means utf-8 (IMX is UTF-8 throughout), and other
// Content-Type parameters are ignored.
//
// Only the identity transfer encodings 7bit and 8bit are accepted;
// quoted-printable, base64 and binary are [ErrEncoding]. The wire carries
// length-prefixed 8-bit data and §5 item 3 keeps long lines as they are, so
// an IMX message never needs an encoding; accepting them would give one
// message several spellings, hide html-lite from the sanitizer behind one
// more decoder that hostile input could aim at, and let a sender grow a
// message by a third inside the same size limit.
//
// # text/html-lite
//
// The draft leaves text/html-lite undefined beyond "a strict subset of HTML
// with support for only a few basic formatting tags (such as <B>...</B>,
// <I>...</I>)". imx allows the elements a, b, blockquote, br, code, em, i, p,
// pre, s, strong and u, with no attribute but a's href, which must be an
// absolute http or https URL with a host and no user name, or a mailto URL;
// every link gets rel="nofollow noopener noreferrer". Everything else is
// removed: the text of unknown elements is kept, the content of script,
// style, iframe, object, template and the like is removed with them;
// comments and doctypes go too. Tags are balanced and lower-case. The
// enforcement is a bluemonday policy built once, followed by a pass that
// checks its output again and writes it in one canonical form;
// [SanitizeHTMLLite] is idempotent. docs/html-lite.md at the repository
// root gives the subset with examples and reasons.
//
// # Errors
//
// Every error wraps one of the sentinels [ErrTooLarge], [ErrFromMismatch],
// [ErrToMismatch], [ErrSenderDomain], [ErrContentType], [ErrCharset],
// [ErrEncoding], [ErrHeader], [ErrUTF8] and [ErrControl], with detail for the
// log (which header, which octet, which sizes); test them with errors.Is.
// [Status] maps them to the status a server answers with: too-large,
// not-authorized (the sender is not the one the connection vouches for), or
// bad-request.
package message
