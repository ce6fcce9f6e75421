package wire

// Parse decodes one whole frame, header and body, from b. len(b) must be
// exactly HeaderLen plus the header's length. The record does not retain b.
//
// Parse never panics. A malformed frame gives a *FormatError; a frame of a
// type this package does not know gives an *Unknown, unless it is marked
// must-understand, which gives a *FormatError wrapping ErrUnsupported.
func Parse(b []byte) (Record, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Len > MaxFrameBody {
		return nil, formatErr(h.Type, "", ErrFrameTooLarge, "body of "+itoa(uint64(h.Len))+" bytes")
	}
	if uint64(len(b)-HeaderLen) != uint64(h.Len) {
		return nil, formatErr(h.Type, "", ErrLength, "header says "+itoa(uint64(h.Len))+" body bytes, "+itoa(uint64(len(b)-HeaderLen))+" given")
	}
	return ParseBody(h, b[HeaderLen:])
}

// ParseBody decodes the record whose header is h from its body. It checks
// len(body) against h.Len but not h.Len against a limit: the caller (such
// as Reader) has done that before reading the body. The record does not
// retain body.
func ParseBody(h Header, body []byte) (Record, error) {
	return decode(h, body, nil, nil)
}

// decodeTarget is a record that decode can fill.
type decodeTarget interface {
	Record
	setter
	head() *Head
}

// decode decodes body into r, or into a new record of h.Type if r is nil,
// in which case byte fields get a copy of body. in, if not nil, interns
// strings.
func decode(h Header, body []byte, r decodeTarget, in *interner) (Record, error) {
	if uint64(len(body)) != uint64(h.Len) {
		return nil, formatErr(h.Type, "", ErrLength, "header says "+itoa(uint64(h.Len))+" body bytes, "+itoa(uint64(len(body)))+" given")
	}
	rs := specOf(h.Type)
	if rs == nil {
		if h.Type == 0 {
			return nil, formatErr(0, "", ErrBadHeader, "record type 0")
		}
		if h.Flags.Has(FlagMustUnderstand) {
			return nil, formatErr(h.Type, "", ErrUnsupported, "unknown record type")
		}
		return &Unknown{Head: Head{Tag: h.Tag, Flags: h.Flags}, RecordType: h.Type, Body: clone(body)}, nil
	}
	if err := checkShape(rs, h.Flags, h.Tag); err != nil {
		return nil, err
	}
	if r == nil {
		r = newRecord(h.Type)
		if rs.hasBytes {
			// One copy of the body backs every bytes field of the
			// record, so that it does not retain the caller's buffer.
			body = append(make([]byte, 0, len(body)), body...)
		}
	}
	hd := r.head()
	hd.Tag, hd.Flags = h.Tag, h.Flags
	if err := walk(rs, h.Flags, body, hd, r, in); err != nil {
		return nil, err
	}
	if hl, ok := r.(*Hello); ok && hl.MinVersion > hl.MaxVersion {
		return nil, formatErr(TypeHello, "version-max", ErrOutOfRange, "below version-min")
	}
	return r, nil
}

func newRecord(t Type) decodeTarget {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeClose:
		return new(Close)
	case TypeRedirect:
		return new(Redirect)
	case TypePing:
		return new(Ping)
	case TypePong:
		return new(Pong)
	case TypeResult:
		return new(Result)
	case TypeDBToken:
		return new(DBToken)
	case TypeDBVerify:
		return new(DBVerify)
	case TypeDBSecret:
		return new(DBSecret)
	case TypeDBOutcome:
		return new(DBOutcome)
	case TypeMessage:
		return new(Message)
	case TypeSubscribe:
		return new(Subscribe)
	case TypeUnsubscribe:
		return new(Unsubscribe)
	case TypeNotify:
		return new(Notify)
	case TypeGetAttrs:
		return new(GetAttrs)
	case TypeAttrs:
		return new(Attrs)
	case TypeLogin:
		return new(Login)
	case TypeSession:
		return new(Session)
	case TypeSend:
		return new(Send)
	case TypeContactAdd:
		return new(ContactAdd)
	case TypeContactRemove:
		return new(ContactRemove)
	case TypeContacts:
		return new(Contacts)
	case TypeContactList:
		return new(ContactList)
	case TypeApprove:
		return new(Approve)
	case TypePresenceSet:
		return new(PresenceSet)
	case TypeBlock:
		return new(Block)
	case TypeRequest:
		return new(Request)
	case TypeAttrsSet:
		return new(AttrsSet)
	}
	panic("wire: newRecord of unknown type " + t.String()) // unreachable: callers check specOf first
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func (h *Head) head() *Head { return h }

func (r *Hello) set(f *field) {
	switch f.spec.key {
	case 1:
		r.MinVersion = uint16(f.u)
	case 2:
		r.MaxVersion = uint16(f.u)
	case 3:
		r.Capabilities = append(r.Capabilities, f.text())
	case 4:
		r.Software = f.text()
	case 5:
		r.MaxFrame = uint32(f.u)
	}
}

func (r *Close) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Code = Status(f.u)
	case 2:
		r.Text = f.text()
	}
}

func (r *Redirect) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Host = f.text()
	case 2:
		r.Port = uint16(f.u)
	case 3:
		r.Text = f.text()
	}
}

func (r *Ping) set(f *field) { r.Data = nilIfEmpty(f.val) }
func (r *Pong) set(f *field) { r.Data = nilIfEmpty(f.val) }

// nilIfEmpty returns nil for an empty field, so that a parsed record equals
// one built without the field, and otherwise b with its capacity cut to its
// length, so that an append to one field cannot overwrite the next.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}

func (r *Result) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Code = Status(f.u)
	case 2:
		r.Text = f.text()
	case 3:
		r.Count = uint32(f.u)
	case 4:
		r.Expires = uint32(f.u)
	case 5:
		r.Presence = Presence(f.u)
	case 6:
		r.Status = f.text()
	case 7:
		r.Attrs = append(r.Attrs, f.attr())
	}
}

func (r *DBToken) set(f *field) {
	switch f.spec.key {
	case 1:
		r.From = f.text()
	case 2:
		r.To = f.text()
	case 3:
		r.Token = f.val[:len(f.val):len(f.val)]
	}
}

func (r *DBVerify) set(f *field) {
	switch f.spec.key {
	case 1:
		r.From = f.text()
	case 2:
		r.To = f.text()
	case 3:
		r.Token = f.val[:len(f.val):len(f.val)]
	case 4:
		r.Secret = f.val[:len(f.val):len(f.val)]
	}
}

func (r *DBSecret) set(f *field) {
	switch f.spec.key {
	case 1:
		r.From = f.text()
	case 2:
		r.To = f.text()
	case 3:
		r.Secret = f.val[:len(f.val):len(f.val)]
	}
}

func (r *DBOutcome) set(f *field) {
	switch f.spec.key {
	case 1:
		r.From = f.text()
	case 2:
		r.To = f.text()
	case 3:
		r.Code = Status(f.u)
	case 4:
		r.Text = f.text()
	}
}

func (r *Message) set(f *field) {
	switch f.spec.key {
	case 1:
		r.From = f.text()
	case 2:
		r.To = f.text()
	case 3:
		r.ID = f.val[:len(f.val):len(f.val)]
	case 4:
		r.MIME = f.val[:len(f.val):len(f.val)]
	case 5:
		r.Attrs = append(r.Attrs, f.attr())
	}
}

func (r *Subscribe) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Watcher = f.text()
	case 2:
		r.Presentity = f.text()
	case 3:
		r.Expires = uint32(f.u)
	}
}

func (r *Unsubscribe) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Watcher = f.text()
	case 2:
		r.Presentity = f.text()
	}
}

func (r *Notify) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Presentity = f.text()
	case 2:
		r.Watchers = append(r.Watchers, f.text())
	case 3:
		r.Presence = Presence(f.u)
	case 4:
		r.Status = f.text()
	case 5:
		r.Attrs = append(r.Attrs, f.attr())
	}
}

func (r *GetAttrs) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Requester = f.text()
	case 2:
		r.Target = f.text()
	case 3:
		r.Names = append(r.Names, f.text())
	}
}

func (r *Attrs) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Target = f.text()
	case 2:
		r.Attrs = append(r.Attrs, f.attr())
	}
}

func (r *Login) set(f *field) {
	switch f.spec.key {
	case 1:
		r.User = f.text()
	case 2:
		r.Password = string(f.val) // never interned: secrets do not outlive the record
	case 3:
		r.Session = f.val[:len(f.val):len(f.val)]
	case 4:
		r.Client = f.text()
	case 5:
		r.Remember = f.u == 1
	}
}

func (r *Session) set(f *field) {
	switch f.spec.key {
	case 1:
		r.User = f.text()
	case 2:
		r.Session = f.val[:len(f.val):len(f.val)]
	case 3:
		r.Expires = uint32(f.u)
	case 4:
		r.ID = f.text()
	}
}

func (r *Send) set(f *field) {
	switch f.spec.key {
	case 1:
		r.To = f.text()
	case 2:
		r.ContentType = f.text()
	case 3:
		r.Body = string(f.val) // bodies are not interned
	case 4:
		r.ID = f.val[:len(f.val):len(f.val)]
	case 5:
		r.Attrs = append(r.Attrs, f.attr())
	}
}

func (r *ContactAdd) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Address = f.text()
	case 2:
		r.Alias = f.text()
	}
}

func (r *ContactRemove) set(f *field) { r.Address = f.text() }
func (r *Contacts) set(*field)        {}
func (r *ContactList) set(f *field)   { r.Contacts = append(r.Contacts, f.text()) }

func (r *Approve) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Address = f.text()
	case 2:
		r.Approve = f.u == 1
	}
}

func (r *PresenceSet) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Presence = Presence(f.u)
	case 2:
		r.Status = f.text()
	}
}

func (r *Block) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Pattern = f.text()
	case 2:
		r.Block = f.u == 1
	}
}

func (r *Request) set(f *field) {
	switch f.spec.key {
	case 1:
		r.Watcher = f.text()
	case 2:
		r.Alias = f.text()
	}
}

func (r *AttrsSet) set(f *field) { r.Attrs = append(r.Attrs, f.attr()) }
