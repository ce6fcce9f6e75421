package wire

import (
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// shape is what a record's header must look like.
type shape uint8

const (
	shapeRequest  shape = iota // tag != 0, FlagResponse clear
	shapeResponse              // tag != 0, FlagResponse set
	shapeNotice                // FlagResponse clear, any tag
	shapeEither                // tag != 0, FlagResponse either (HELLO)
)

type recordSpec struct {
	typ      Type
	name     string
	shape    shape
	fields   []fieldSpec
	required uint32    // bit i set: fields[i] is required
	hasBytes bool      // some field is of KindBytes
	keyIdx   [256]int8 // field key -> index in fields, -1 if unknown
}

func newSpec(t Type, name string, sh shape, fields ...fieldSpec) *recordSpec {
	rs := &recordSpec{typ: t, name: name, shape: sh, fields: append(fields, nodeSpec)}
	for i := range rs.keyIdx {
		rs.keyIdx[i] = -1
	}
	for i, f := range rs.fields {
		if f.req {
			rs.required |= 1 << i
		}
		rs.hasBytes = rs.hasBytes || f.kind == KindBytes
		rs.keyIdx[f.key] = int8(i)
	}
	return rs
}

func text(key uint8, name string, req bool, min, max uint64) fieldSpec {
	return fieldSpec{key: key, name: name, kind: KindText, req: req, min: min, max: max}
}

func bytesF(key uint8, name string, req bool, min, max uint64) fieldSpec {
	return fieldSpec{key: key, name: name, kind: KindBytes, req: req, min: min, max: max}
}

func uintF(key uint8, name string, req bool, min, max uint64) fieldSpec {
	return fieldSpec{key: key, name: name, kind: KindUint, req: req, min: min, max: max}
}

func attrs(key uint8) fieldSpec {
	return fieldSpec{key: key, name: "attr", kind: KindAttr, rep: true}
}

func address(key uint8, name string) fieldSpec { return text(key, name, true, 1, MaxAddressLen) }
func domain(key uint8, name string) fieldSpec  { return text(key, name, true, 1, MaxDomainLen) }

var (
	specHello = newSpec(TypeHello, "HELLO", shapeEither,
		uintF(1, "version-min", true, 1, math.MaxUint16),
		uintF(2, "version-max", true, 1, math.MaxUint16),
		fieldSpec{key: 3, name: "capability", kind: KindText, rep: true, token: true, min: 1, max: MaxTokenLen},
		text(4, "software", false, 0, MaxSoftwareLen),
		uintF(5, "max-frame", false, MinFrameBody, MaxFrameBody),
	)
	specClose = newSpec(TypeClose, "CLOSE", shapeNotice,
		uintF(1, "code", true, 0, math.MaxUint16),
		text(2, "text", false, 0, MaxTextLen),
	)
	specRedirect = newSpec(TypeRedirect, "REDIRECT", shapeNotice,
		text(1, "host", true, 1, MaxDomainLen),
		uintF(2, "port", true, 1, math.MaxUint16),
		text(3, "text", false, 0, MaxTextLen),
	)
	specPing = newSpec(TypePing, "PING", shapeRequest,
		bytesF(1, "data", false, 0, MaxPingDataLen),
	)
	specPong = newSpec(TypePong, "PONG", shapeResponse,
		bytesF(1, "data", false, 0, MaxPingDataLen),
	)
	specResult = newSpec(TypeResult, "RESULT", shapeResponse,
		uintF(1, "code", true, 0, math.MaxUint16),
		text(2, "text", false, 0, MaxTextLen),
		uintF(3, "count", false, 0, math.MaxUint32),
		uintF(4, "expires", false, 0, math.MaxUint32),
		uintF(5, "presence", false, 1, math.MaxUint8),
		text(6, "status", false, 0, MaxTextLen),
		attrs(7),
	)
	specDBToken = newSpec(TypeDBToken, "DB-TOKEN", shapeRequest,
		domain(1, "from"),
		domain(2, "to"),
		bytesF(3, "token", true, 1, MaxDialbackLen),
	)
	specDBVerify = newSpec(TypeDBVerify, "DB-VERIFY", shapeRequest,
		domain(1, "from"),
		domain(2, "to"),
		bytesF(3, "token", true, 1, MaxDialbackLen),
		bytesF(4, "secret", true, MinSecretLen, MaxSecretLen),
	)
	specDBSecret = newSpec(TypeDBSecret, "DB-SECRET", shapeNotice,
		domain(1, "from"),
		domain(2, "to"),
		bytesF(3, "secret", true, MinSecretLen, MaxSecretLen),
	)
	specDBOutcome = newSpec(TypeDBOutcome, "DB-OUTCOME", shapeResponse,
		domain(1, "from"),
		domain(2, "to"),
		uintF(3, "code", true, 0, math.MaxUint16),
		text(4, "text", false, 0, MaxTextLen),
	)
	specMessage = newSpec(TypeMessage, "MESSAGE", shapeRequest,
		address(1, "from"),
		address(2, "to"),
		bytesF(3, "id", true, 1, MaxMessageIDLen),
		bytesF(4, "mime", true, 1, MaxFrameBody),
		attrs(5),
	)
	specSubscribe = newSpec(TypeSubscribe, "SUBSCRIBE", shapeRequest,
		address(1, "watcher"),
		address(2, "presentity"),
		uintF(3, "expires", true, 1, math.MaxUint32),
	)
	specUnsubscribe = newSpec(TypeUnsubscribe, "UNSUBSCRIBE", shapeRequest,
		address(1, "watcher"),
		address(2, "presentity"),
	)
	specNotify = newSpec(TypeNotify, "NOTIFY", shapeNotice,
		address(1, "presentity"),
		fieldSpec{key: 2, name: "watcher", kind: KindText, req: true, rep: true, min: 1, max: MaxAddressLen},
		uintF(3, "presence", true, 1, math.MaxUint8),
		text(4, "status", false, 0, MaxTextLen),
		attrs(5),
	)
	specGetAttrs = newSpec(TypeGetAttrs, "GET-ATTRIBUTES", shapeRequest,
		address(1, "requester"),
		address(2, "target"),
		fieldSpec{key: 3, name: "name", kind: KindText, rep: true, token: true, min: 1, max: MaxTokenLen},
	)
	specAttrs = newSpec(TypeAttrs, "ATTRIBUTES", shapeResponse,
		address(1, "target"),
		attrs(2),
	)

	specLogin = newSpec(TypeLogin, "LOGIN", shapeRequest,
		address(1, "user"),
		fieldSpec{key: 2, name: "password", kind: KindText, once: true, min: 1, max: MaxTextLen},
		bytesF(3, "session", false, MinSecretLen, MaxSecretLen),
		text(4, "client", false, 0, MaxSoftwareLen),
		uintF(5, "remember", false, 0, 1),
	)
	specSession = newSpec(TypeSession, "SESSION", shapeResponse,
		address(1, "user"),
		bytesF(2, "session", false, MinSecretLen, MaxSecretLen),
		uintF(3, "expires", false, 0, math.MaxUint32),
		text(4, "id", false, 0, MaxNodeLen),
	)
	specSend = newSpec(TypeSend, "SEND", shapeRequest,
		address(1, "to"),
		text(2, "content-type", false, 0, MaxTokenLen),
		fieldSpec{key: 3, name: "body", kind: KindText, req: true, once: true, min: 1, max: MaxFrameBody},
		bytesF(4, "id", false, 1, MaxMessageIDLen),
		attrs(5),
	)

	specContactAdd = newSpec(TypeContactAdd, "CONTACT-ADD", shapeRequest,
		address(1, "address"),
		text(2, "alias", false, 0, MaxAliasLen),
	)
	specContactRemove = newSpec(TypeContactRemove, "CONTACT-REMOVE", shapeRequest,
		address(1, "address"),
	)
	specContacts    = newSpec(TypeContacts, "CONTACTS", shapeRequest)
	specContactList = newSpec(TypeContactList, "CONTACT-LIST", shapeResponse,
		fieldSpec{key: 1, name: "contact", kind: KindText, rep: true, min: 1, max: MaxAddressLen + 1 + MaxTokenLen + 1 + MaxAliasLen},
	)
	specApprove = newSpec(TypeApprove, "APPROVE", shapeRequest,
		address(1, "address"),
		uintF(2, "approve", true, 0, 1),
	)
	specPresenceSet = newSpec(TypePresenceSet, "PRESENCE-SET", shapeRequest,
		uintF(1, "presence", true, 1, math.MaxUint8),
		text(2, "status", false, 0, MaxTextLen),
	)
	specBlock = newSpec(TypeBlock, "BLOCK", shapeRequest,
		address(1, "pattern"),
		uintF(2, "block", true, 0, 1),
	)
	specRequest = newSpec(TypeRequest, "REQUEST", shapeNotice,
		address(1, "watcher"),
		text(2, "alias", false, 0, MaxAliasLen),
	)
	specAttrsSet = newSpec(TypeAttrsSet, "ATTRIBUTES-SET", shapeRequest,
		attrs(1),
	)

	specs = func() [0x10C]*recordSpec {
		var a [0x10C]*recordSpec
		for _, s := range []*recordSpec{specHello, specClose, specRedirect, specPing, specPong,
			specResult, specDBToken, specDBVerify, specDBSecret, specDBOutcome, specMessage,
			specSubscribe, specUnsubscribe, specNotify, specGetAttrs, specAttrs,
			specLogin, specSession, specSend,
			specContactAdd, specContactRemove, specContacts, specContactList,
			specApprove, specPresenceSet, specBlock, specRequest, specAttrsSet} {
			a[s.typ] = s
		}
		return a
	}()
)

func specOf(t Type) *recordSpec {
	if int(t) < len(specs) {
		return specs[t]
	}
	return nil
}

// checkShape checks the header rules of rs for flags and tag.
func checkShape(rs *recordSpec, f Flags, tag uint32) error {
	switch rs.shape {
	case shapeRequest:
		if f.Has(FlagResponse) {
			return formatErr(rs.typ, "", ErrBadHeader, "request with the response flag")
		}
	case shapeResponse:
		if !f.Has(FlagResponse) {
			return formatErr(rs.typ, "", ErrBadHeader, "response without the response flag")
		}
	case shapeNotice:
		if f.Has(FlagResponse) {
			return formatErr(rs.typ, "", ErrBadHeader, "response flag on a record that answers nothing")
		}
		return nil
	}
	if tag == 0 {
		return formatErr(rs.typ, "", ErrBadHeader, "tag 0 on a record that needs one")
	}
	return nil
}

// begin starts encoding a frame of rs with header h into b. Encoders set
// FlagResponse for response records and clear it for requests and notices,
// so callers need only set the tag.
func begin(b []byte, rs *recordSpec, h Head) encoder {
	f := h.Flags & knownFlags
	switch rs.shape {
	case shapeResponse:
		f |= FlagResponse
	case shapeRequest, shapeNotice:
		f &^= FlagResponse
	}
	e := encoder{b: b, start: len(b), rs: rs}
	e.err = checkShape(rs, f, h.Tag)
	e.b = appendHeader(e.b, rs.typ, f, h.Tag, 0)
	return e
}

// Hello opens a connection (§4.4.1). The side that dialled sends it as a
// request with its range of versions and its capabilities; the side that
// accepted answers with a Hello response whose range is the single version
// chosen (the highest in both ranges), or with CLOSE version-unsupported.
type Hello struct {
	Head
	MinVersion   uint16
	MaxVersion   uint16
	Capabilities []string // tokens such as "dialback", "tls"
	Software     string   // "imx/0.1"; informational
	MaxFrame     uint32   // the largest body this side accepts; 0: DefaultMaxFrameBody
}

// Close ends a connection in an orderly way (§4.4.3). The sender stops
// sending after it; the receiver finishes what it is writing and closes.
type Close struct {
	Head
	Code Status // StatusOK for a normal close
	Text string
}

// Redirect tells the peer to reconnect to another host and port and move its
// traffic there (§4.4.4).
type Redirect struct {
	Head
	Host string // a host name or an IP address literal
	Port uint16
	Text string
}

// Ping asks the peer for a Pong with the same tag and data.
type Ping struct {
	Head
	Data []byte
}

// Pong answers a Ping.
type Pong struct {
	Head
	Data []byte
}

// Result answers a request: MESSAGE, SUBSCRIBE, UNSUBSCRIBE, NOTIFY (when
// tagged), GET-ATTRIBUTES (on failure), DB-VERIFY, and any request that
// cannot be served (for example StatusUnsupported).
type Result struct {
	Head
	Code     Status
	Text     string   // human-readable detail; never a Go error string
	Count    uint32   // MESSAGE delivered: the number of sessions reached
	Expires  uint32   // SUBSCRIBE: the granted expiry in seconds
	Presence Presence // SUBSCRIBE: the presentity's current presence, if shared
	Status   string   // SUBSCRIBE: the presentity's status text, if shared
	Attrs    []Attr   // attributes that ride along (§4.6.1)
}

// Err returns nil for a success code and the code as an error otherwise.
func (r *Result) Err() error {
	if r.Code.Success() {
		return nil
	}
	return r.Code
}

// DBToken is step 1 of dial-back (§6.3.1), sent by the originating server
// on connection 1: "I am From, I want to talk to To, here is my token".
type DBToken struct {
	Head
	From  string // the originating (claimed) domain
	To    string // the receiving domain
	Token []byte // opaque to the receiver; lets From find connection 1 again
}

// DBVerify is step 3 of dial-back, sent by the receiving server on
// connection 2, which it dialled itself after resolving To through DNS:
// the token it was given and a fresh secret.
type DBVerify struct {
	Head
	From   string // the receiving server's domain (A)
	To     string // the claimed originating domain (B)
	Token  []byte
	Secret []byte
}

// DBSecret is step 4 of dial-back: the originating server returns the secret
// on connection 1.
type DBSecret struct {
	Head
	From   string // the originating domain (B)
	To     string // the receiving domain (A)
	Secret []byte
}

// DBOutcome answers DB-TOKEN on connection 1 with the result of dial-back:
// StatusOK when the pair From/To is now authenticated on that connection.
type DBOutcome struct {
	Head
	From string // the receiving domain (A)
	To   string // the originating domain (B)
	Code Status
	Text string
}

// Message carries one instant message (§4.7, §5). From and To are the
// envelope (§4.7.1); MIME is the message in the MIME subset of §5.
type Message struct {
	Head
	From  string
	To    string
	ID    []byte // unique per originating domain; resends reuse it
	MIME  []byte
	Attrs []Attr // the sender's attributes, unsolicited (§4.6.1)
}

// Subscribe asks for presence notifications (§4.5.1). Renewal is a new
// Subscribe; the answer is a Result with the granted Expires.
type Subscribe struct {
	Head
	Watcher    string
	Presentity string
	Expires    uint32 // requested expiry in seconds
}

// Unsubscribe cancels a subscription.
type Unsubscribe struct {
	Head
	Watcher    string
	Presentity string
}

// Notify carries a presentity's presence to one or more of its watchers on
// the receiving domain (§4.5.2).
type Notify struct {
	Head
	Presentity string
	Watchers   []string
	Presence   Presence
	Status     string
	Attrs      []Attr
}

// GetAttrs asks for named attributes of a user or a domain (§4.4.5,
// §4.4.6). Target is an address or, for domain attributes, a bare domain.
// No names asks for every attribute the requester may see.
type GetAttrs struct {
	Head
	Requester string // the user (or bare domain) asking
	Target    string
	Names     []string
}

// Attrs answers GetAttrs on the same connection (§4.4.8).
type Attrs struct {
	Head
	Target string
	Attrs  []Attr
}

// Login opens a client session (client API): with a password, or with a
// session token from an earlier Session. Answered by Session, or RESULT
// auth-failed.
type Login struct {
	Head
	User     string // the user's address
	Password string
	Session  []byte // a token from an earlier Session, instead of Password
	Client   string // the client's name and version, for the session list
	Remember bool   // ask for a session token to log in again later
}

// Session answers a successful Login.
type Session struct {
	Head
	User    string // the normalised address logged in
	Session []byte // the session token, when Login asked to be remembered
	Expires uint32 // the token's lifetime in seconds
	ID      string // this session's id, for logs and the session list
}

// Send is a client's instant message (client API): the server builds the
// MIME message of §5 from it and routes it. Answered by RESULT with the
// message's final outcome.
type Send struct {
	Head
	To          string // the recipient's address
	ContentType string // "text/plain" (default) or "text/html-lite"
	Body        string
	ID          []byte // the client's id for the message; a retry reuses it
	Attrs       []Attr // extra X- headers: name "x-…", value
}

// ContactAdd adds a contact to the user's list (or changes its alias) and
// asks the contact for permission to see their presence. Answered by
// RESULT.
type ContactAdd struct {
	Head
	Address string
	Alias   string
}

// ContactRemove removes a contact and cancels the subscription to it.
type ContactRemove struct {
	Head
	Address string
}

// Contacts asks for the user's contact list; answered by ContactList.
type Contacts struct {
	Head
}

// ContactList answers Contacts: one text per contact, "address state" or
// "address state alias", state being asked, approved or denied.
type ContactList struct {
	Head
	Contacts []string
}

// Approve answers a request to watch the user's presence: approve or deny.
type Approve struct {
	Head
	Address string // the watcher
	Approve bool
}

// PresenceSet sets the user's presence and status text.
type PresenceSet struct {
	Head
	Presence Presence
	Status   string
}

// Block blocks (or unblocks) an address, or a whole domain as "@domain".
type Block struct {
	Head
	Pattern string
	Block   bool
}

// Request tells a client that someone asks to watch the user's presence.
type Request struct {
	Head
	Watcher string
	Alias   string
}

// AttrsSet sets attributes of the user, or of the session, that sent it
// (client API): alias, capabilities, max-message-length. Answered by
// RESULT.
type AttrsSet struct {
	Head
	Attrs []Attr
}

// Unknown is a record of a type this package does not know, received
// without FlagMustUnderstand. It is kept whole so that it can be logged,
// counted or forwarded.
type Unknown struct {
	Head
	RecordType Type
	Body       []byte
}

func (*Hello) Type() Type         { return TypeHello }
func (*Close) Type() Type         { return TypeClose }
func (*Redirect) Type() Type      { return TypeRedirect }
func (*Ping) Type() Type          { return TypePing }
func (*Pong) Type() Type          { return TypePong }
func (*Result) Type() Type        { return TypeResult }
func (*DBToken) Type() Type       { return TypeDBToken }
func (*DBVerify) Type() Type      { return TypeDBVerify }
func (*DBSecret) Type() Type      { return TypeDBSecret }
func (*DBOutcome) Type() Type     { return TypeDBOutcome }
func (*Message) Type() Type       { return TypeMessage }
func (*Subscribe) Type() Type     { return TypeSubscribe }
func (*Unsubscribe) Type() Type   { return TypeUnsubscribe }
func (*Notify) Type() Type        { return TypeNotify }
func (*GetAttrs) Type() Type      { return TypeGetAttrs }
func (*Attrs) Type() Type         { return TypeAttrs }
func (*Login) Type() Type         { return TypeLogin }
func (*Session) Type() Type       { return TypeSession }
func (*Send) Type() Type          { return TypeSend }
func (*ContactAdd) Type() Type    { return TypeContactAdd }
func (*ContactRemove) Type() Type { return TypeContactRemove }
func (*Contacts) Type() Type      { return TypeContacts }
func (*ContactList) Type() Type   { return TypeContactList }
func (*Approve) Type() Type       { return TypeApprove }
func (*PresenceSet) Type() Type   { return TypePresenceSet }
func (*Block) Type() Type         { return TypeBlock }
func (*Request) Type() Type       { return TypeRequest }
func (*AttrsSet) Type() Type      { return TypeAttrsSet }
func (u *Unknown) Type() Type     { return u.RecordType }

func (*Hello) isRecord()         {}
func (*Close) isRecord()         {}
func (*Redirect) isRecord()      {}
func (*Ping) isRecord()          {}
func (*Pong) isRecord()          {}
func (*Result) isRecord()        {}
func (*DBToken) isRecord()       {}
func (*DBVerify) isRecord()      {}
func (*DBSecret) isRecord()      {}
func (*DBOutcome) isRecord()     {}
func (*Message) isRecord()       {}
func (*Subscribe) isRecord()     {}
func (*Unsubscribe) isRecord()   {}
func (*Notify) isRecord()        {}
func (*GetAttrs) isRecord()      {}
func (*Attrs) isRecord()         {}
func (*Login) isRecord()         {}
func (*Session) isRecord()       {}
func (*Send) isRecord()          {}
func (*ContactAdd) isRecord()    {}
func (*ContactRemove) isRecord() {}
func (*Contacts) isRecord()      {}
func (*ContactList) isRecord()   {}
func (*Approve) isRecord()       {}
func (*PresenceSet) isRecord()   {}
func (*Block) isRecord()         {}
func (*Request) isRecord()       {}
func (*AttrsSet) isRecord()      {}
func (*Unknown) isRecord()       {}

// AppendBinary implements Record.
func (r *Hello) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specHello, r.Head)
	e.uint(1, uint64(r.MinVersion))
	e.uint(2, uint64(r.MaxVersion))
	e.texts(3, r.Capabilities)
	e.text(4, r.Software)
	e.uint(5, uint64(r.MaxFrame))
	if r.MinVersion > r.MaxVersion {
		e.fail(formatErr(TypeHello, "version-max", ErrOutOfRange, "below version-min"))
	}
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Close) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specClose, r.Head)
	e.uint(1, uint64(r.Code))
	e.text(2, r.Text)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Redirect) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specRedirect, r.Head)
	e.text(1, r.Host)
	e.uint(2, uint64(r.Port))
	e.text(3, r.Text)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Ping) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specPing, r.Head)
	e.bytes(1, r.Data)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Pong) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specPong, r.Head)
	e.bytes(1, r.Data)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Result) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specResult, r.Head)
	e.uint(1, uint64(r.Code))
	e.text(2, r.Text)
	e.uint(3, uint64(r.Count))
	e.uint(4, uint64(r.Expires))
	e.uint(5, uint64(r.Presence))
	e.text(6, r.Status)
	e.attrs(7, r.Attrs)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *DBToken) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specDBToken, r.Head)
	e.text(1, r.From)
	e.text(2, r.To)
	e.bytes(3, r.Token)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *DBVerify) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specDBVerify, r.Head)
	e.text(1, r.From)
	e.text(2, r.To)
	e.bytes(3, r.Token)
	e.bytes(4, r.Secret)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *DBSecret) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specDBSecret, r.Head)
	e.text(1, r.From)
	e.text(2, r.To)
	e.bytes(3, r.Secret)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *DBOutcome) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specDBOutcome, r.Head)
	e.text(1, r.From)
	e.text(2, r.To)
	e.uint(3, uint64(r.Code))
	e.text(4, r.Text)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Message) AppendBinary(b []byte) ([]byte, error) {
	if r.fastOK() {
		return r.appendFast(b), nil
	}
	return r.appendChecked(b)
}

// fastOK reports whether the message is valid and plain (no node, no
// attributes), the common case that appendFast encodes without the
// field-by-field machinery. Anything else, including every invalid
// message, takes appendChecked, which reports the precise problem.
func (r *Message) fastOK() bool {
	return r.Tag != 0 && r.Node == "" && len(r.Attrs) == 0 &&
		len(r.From) >= 1 && len(r.From) <= MaxAddressLen &&
		len(r.To) >= 1 && len(r.To) <= MaxAddressLen &&
		len(r.ID) >= 1 && len(r.ID) <= MaxMessageIDLen &&
		len(r.MIME) >= 1 && len(r.MIME) <= MaxFrameBody-2*(3+MaxAddressLen)-(3+MaxMessageIDLen)-6 &&
		utf8.ValidString(r.From) && utf8.ValidString(r.To)
}

// appendFast encodes a message that fastOK accepted; the bytes are those
// of appendChecked (TestMessageFastPath).
func (r *Message) appendFast(b []byte) []byte {
	start := len(b)
	b = appendHeader(b, TypeMessage, r.Flags&^FlagResponse, r.Tag, 0)
	b = append(appendFieldHead(b, 1, KindText, len(r.From)), r.From...)
	b = append(appendFieldHead(b, 2, KindText, len(r.To)), r.To...)
	b = append(appendFieldHead(b, 3, KindBytes, len(r.ID)), r.ID...)
	b = append(appendFieldHead(b, 4, KindBytes, len(r.MIME)), r.MIME...)
	binary.BigEndian.PutUint32(b[start+8:], uint32(len(b)-start-HeaderLen))
	return b
}

func (r *Message) appendChecked(b []byte) ([]byte, error) {
	e := begin(b, specMessage, r.Head)
	e.text(1, r.From)
	e.text(2, r.To)
	e.bytes(3, r.ID)
	e.bytes(4, r.MIME)
	e.attrs(5, r.Attrs)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Subscribe) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specSubscribe, r.Head)
	e.text(1, r.Watcher)
	e.text(2, r.Presentity)
	e.uint(3, uint64(r.Expires))
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Unsubscribe) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specUnsubscribe, r.Head)
	e.text(1, r.Watcher)
	e.text(2, r.Presentity)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Notify) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specNotify, r.Head)
	e.text(1, r.Presentity)
	e.texts(2, r.Watchers)
	e.uint(3, uint64(r.Presence))
	e.text(4, r.Status)
	e.attrs(5, r.Attrs)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *GetAttrs) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specGetAttrs, r.Head)
	e.text(1, r.Requester)
	e.text(2, r.Target)
	e.texts(3, r.Names)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Attrs) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specAttrs, r.Head)
	e.text(1, r.Target)
	e.attrs(2, r.Attrs)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Login) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specLogin, r.Head)
	e.text(1, r.User)
	e.text(2, r.Password)
	e.bytes(3, r.Session)
	e.text(4, r.Client)
	if r.Remember {
		e.uint(5, 1)
	}
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Session) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specSession, r.Head)
	e.text(1, r.User)
	e.bytes(2, r.Session)
	e.uint(3, uint64(r.Expires))
	e.text(4, r.ID)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Send) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specSend, r.Head)
	e.text(1, r.To)
	e.text(2, r.ContentType)
	e.text(3, r.Body)
	e.bytes(4, r.ID)
	e.attrs(5, r.Attrs)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *ContactAdd) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specContactAdd, r.Head)
	e.text(1, r.Address)
	e.text(2, r.Alias)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *ContactRemove) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specContactRemove, r.Head)
	e.text(1, r.Address)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Contacts) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specContacts, r.Head)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *ContactList) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specContactList, r.Head)
	e.texts(1, r.Contacts)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Approve) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specApprove, r.Head)
	e.text(1, r.Address)
	e.uint(2, boolUint(r.Approve))
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *PresenceSet) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specPresenceSet, r.Head)
	e.uint(1, uint64(r.Presence))
	e.text(2, r.Status)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Block) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specBlock, r.Head)
	e.text(1, r.Pattern)
	e.uint(2, boolUint(r.Block))
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *Request) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specRequest, r.Head)
	e.text(1, r.Watcher)
	e.text(2, r.Alias)
	return e.finish(r.Head)
}

// AppendBinary implements Record.
func (r *AttrsSet) AppendBinary(b []byte) ([]byte, error) {
	e := begin(b, specAttrsSet, r.Head)
	e.attrs(1, r.Attrs)
	return e.finish(r.Head)
}

func boolUint(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

// AppendBinary implements Record. The body is written as it was received.
func (r *Unknown) AppendBinary(b []byte) ([]byte, error) {
	if specOf(r.RecordType) != nil || r.RecordType == 0 {
		return b, formatErr(r.RecordType, "", ErrBadHeader, "Unknown with a known or zero type")
	}
	if len(r.Body) > MaxFrameBody {
		return b, formatErr(r.RecordType, "", ErrFrameTooLarge, "body of "+itoa(uint64(len(r.Body)))+" bytes")
	}
	b = appendHeader(b, r.RecordType, r.Flags, r.Tag, uint32(len(r.Body)))
	return append(b, r.Body...), nil
}
