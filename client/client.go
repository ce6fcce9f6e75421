// Package client is the Go client library of imx: it connects to an imx
// server's client listener (a WebSocket carrying the IMX wire records, see
// docs/client-api.md), logs in, sends instant messages and waits for their
// final results, and receives incoming messages. The imx CLI, the tests
// and bots use it.
//
//	c, err := client.Dial(ctx, "http://127.0.0.1:7480", nil)
//	...
//	defer c.Close()
//	if _, err := c.Login(ctx, "alice@alpha.example", password, false); err != nil { ... }
//	res, err := c.Send(ctx, "bob@beta.example", "text/plain", "Hello Bob!")
//	// res.Code: delivered (res.Count sessions), stored, offline, unknown-user, ...
//	for m := range c.Messages() { ... }
//
// A Client is one connection and, after Login or Resume, one session. It
// does not reconnect by itself: after the connection ends (Done), dial
// again and Resume with the session token; a message sent again with the
// same id (SendMessage) is not delivered twice.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/imxproject/imx/c2s"
	"github.com/imxproject/imx/internal/link"
	"github.com/imxproject/imx/wire"
)

// DefaultSoftware is the client name sent in HELLO and LOGIN when Options
// names none.
const DefaultSoftware = "imx-go/0.1"

// DefaultMessageBuffer is the default of Options.MessageBuffer.
const DefaultMessageBuffer = 256

// ErrClosed: the connection has ended (or is closing). When the server
// closed it with CLOSE, the error also wraps the CLOSE's status, such as
// wire.StatusShuttingDown.
var ErrClosed = errors.New("client: connection closed")

// Options configure Dial. The zero value gives the defaults.
type Options struct {
	// Software is the client's name and version, sent in HELLO and LOGIN.
	Software string
	// HTTPClient makes the WebSocket handshake; nil uses a transport of
	// the client's own (proxies from the environment, as
	// http.DefaultTransport), which lets the client send the frames it
	// has queued together in one write.
	HTTPClient *http.Client
	// Header is added to the handshake request.
	Header http.Header
	// MaxBody is the largest frame body the client accepts (announced in
	// HELLO); 0: the protocol's default, 256 KiB.
	MaxBody uint32
	// KeepAlive pings a server that has been silent this long; 0: the
	// link default (30 s); negative disables.
	KeepAlive time.Duration
	// MessageBuffer is how many incoming messages wait for Messages'
	// reader. When it is full the client stops reading from the server
	// (so read Messages on a goroutine of its own, apart from Send): the
	// server then holds the messages, and drops a session that stays
	// full as a slow consumer.
	MessageBuffer int
	// AckDelay is how long the acknowledgement of a message taken from
	// Messages may wait for others to share its write, as TCP delays its
	// ACKs: 0 means DefaultAckDelay; negative acknowledges each message at
	// once. The server only counts acknowledgements (docs/client-api.md),
	// so the delay costs nothing but lets a busy session send one write
	// where it sent one per message. Close sends those still waiting.
	AckDelay time.Duration
	// Logger receives log lines; nil discards them.
	Logger *slog.Logger
}

// DefaultAckDelay is Options.AckDelay's default.
const DefaultAckDelay = 5 * time.Millisecond

// maxAckBatch acknowledgements waiting are sent without waiting longer.
const maxAckBatch = 64

// Session is a successful login.
type Session struct {
	// User is the address logged in, as the server normalised it.
	User string
	// Token logs in again without the password (Resume), when the login
	// asked to be remembered; Expires is its lifetime.
	Token   []byte
	Expires time.Duration
	// ID names the session on the server.
	ID string
}

// Incoming is a message received.
type Incoming struct {
	// From and To are the envelope: the sender and this session's user.
	From, To string
	// ID is the message's id, unique for the sender's domain.
	ID []byte
	// ContentType is the media type without parameters: "text/plain" or
	// "text/html-lite".
	ContentType string
	// Body is the text of the message.
	Body string
	// Date is the Date header, zero if absent or unreadable.
	Date time.Time
	// Header holds all the MIME headers, nil if the message could not be
	// parsed, in which case Body is the whole MIME text.
	Header mail.Header
	// MIME is the message as received.
	MIME []byte
	// Attrs are the sender's attributes that rode along.
	Attrs []wire.Attr
}

// Client is a connection to an imx server. Its methods are safe for
// concurrent use.
type Client struct {
	lc       *link.Conn
	software string
	log      *slog.Logger

	msgs       chan Incoming    // Messages; unbuffered: a receive is a hand-over
	pending    chan pendingMsg  // received, not yet handed over
	events     chan wire.Record // NOTIFY and REQUEST; dropped when full
	closing    chan struct{}    // closed by Close
	ackDelay   time.Duration    // Options.AckDelay; ≤ 0: none
	acks       []uint32         // the dispatcher's: tags to acknowledge,
	ackTimer   *time.Timer      // and the timer for the oldest,
	acksDue    <-chan time.Time // its channel while it runs
	dispatched chan struct{}    // closed when the dispatcher has ended
	closeOnce  sync.Once
	wg         sync.WaitGroup // the connection and the dispatcher
}

type pendingMsg struct {
	in  Incoming
	tag uint32
}

// Dial connects to the client listener at serverURL and runs the HELLO
// exchange. serverURL is ws://, wss://, http:// or https://; a URL without
// a path gets c2s.Path ("/imx"). opts may be nil.
func Dial(ctx context.Context, serverURL string, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Software == "" {
		o.Software = DefaultSoftware
	}
	if o.MessageBuffer <= 0 {
		o.MessageBuffer = DefaultMessageBuffer
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AckDelay == 0 {
		o.AckDelay = DefaultAckDelay
	}
	u, err := endpoint(serverURL)
	if err != nil {
		return nil, err
	}
	fc, err := DialFrameConn(ctx, serverURL, o.HTTPClient, o.Header)
	if err != nil {
		return nil, err
	}
	lc, err := link.Initiate(ctx, fc, link.Config{
		Software:      o.Software,
		MaxBody:       o.MaxBody,
		KeepAlive:     o.KeepAlive,
		FramePerWrite: true,
		Logger:        o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("client: connect to %s: %w", u.Redacted(), err)
	}
	c := &Client{
		lc:         lc,
		software:   o.Software,
		log:        lc.Logger(),
		msgs:       make(chan Incoming),
		pending:    make(chan pendingMsg, o.MessageBuffer),
		events:     make(chan wire.Record, o.MessageBuffer),
		closing:    make(chan struct{}),
		ackDelay:   o.AckDelay,
		dispatched: make(chan struct{}),
	}
	c.wg.Go(func() { _ = lc.Run(context.Background(), c.handle) })
	c.wg.Go(c.dispatch)
	return c, nil
}

// DialFrameConn makes the WebSocket connection of the client API at
// serverURL (as Dial: ws, wss, http or https; without a path, c2s.Path)
// and returns it as a c2s.FrameConn, one frame per message, before any
// HELLO. With hc nil it dials through a c2s.CorkConn of its own and tells
// the FrameConn (UseCork), so that frames queued together leave in one
// write; header is added to the handshake request. Dial runs the client
// protocol on it; a caller that drives the frames itself (imxbench) may
// too.
func DialFrameConn(ctx context.Context, serverURL string, hc *http.Client, header http.Header) (*c2s.FrameConn, error) {
	u, err := endpoint(serverURL)
	if err != nil {
		return nil, err
	}
	var cork *c2s.CorkConn
	if hc == nil {
		tr := &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				nc, err := (&net.Dialer{}).DialContext(ctx, network, address)
				if err != nil {
					return nil, err
				}
				cork = c2s.NewCorkConn(nc)
				return cork, nil
			},
			ForceAttemptHTTP2: false,
		}
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	ws, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient:   hc,
		HTTPHeader:   header,
		Subprotocols: []string{c2s.Subprotocol},
	})
	if err != nil {
		return nil, fmt.Errorf("client: connect to %s: %w", u.Redacted(), err)
	}
	if ws.Subprotocol() != c2s.Subprotocol {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("client: %s does not speak %s", u.Redacted(), c2s.Subprotocol)
	}
	fc := c2s.NewFrameConn(ws, nil, urlAddr(u.Host))
	if cork != nil {
		fc.UseCork(cork)
	}
	return fc, nil
}

// endpoint turns a server URL into the WebSocket URL of its client API.
func endpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("client: server URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return nil, fmt.Errorf("client: server URL %q: scheme must be ws, wss, http or https", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q has no host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = c2s.Path
	}
	return u, nil
}

// urlAddr is the server's address as a net.Addr, for logs.
type urlAddr string

func (a urlAddr) Network() string { return "websocket" }
func (a urlAddr) String() string  { return string(a) }

// Login logs in with a password. With remember the server returns a
// session token for Resume. A refused login is an error wrapping its
// status: errors.Is(err, wire.StatusAuthFailed). Three failed logins end
// the connection.
func (c *Client) Login(ctx context.Context, user, password string, remember bool) (Session, error) {
	return c.login(ctx, &wire.Login{User: user, Password: password, Remember: remember, Client: c.software})
}

// Resume logs in with a session token from an earlier Login.
func (c *Client) Resume(ctx context.Context, user string, token []byte) (Session, error) {
	return c.login(ctx, &wire.Login{User: user, Session: token, Client: c.software})
}

func (c *Client) login(ctx context.Context, l *wire.Login) (Session, error) {
	rec, err := c.request(ctx, l, &l.Head)
	if err != nil {
		return Session{}, fmt.Errorf("client: login as %s: %w", l.User, err)
	}
	switch r := rec.(type) {
	case *wire.Session:
		return Session{User: r.User, Token: r.Session, Expires: time.Duration(r.Expires) * time.Second, ID: r.ID}, nil
	case *wire.Result:
		return Session{}, fmt.Errorf("client: login as %s: %w", l.User, resultErr(r))
	}
	return Session{}, fmt.Errorf("client: login as %s: unexpected answer %s", l.User, rec.Type())
}

// resultErr is a failed RESULT as an error that wraps its status.
func resultErr(r *wire.Result) error {
	if r.Text != "" {
		return fmt.Errorf("%w (%s)", r.Code, r.Text)
	}
	return r.Code
}

// request sends rec, whose head is h, with a fresh tag and waits for its
// response.
func (c *Client) request(ctx context.Context, rec wire.Record, h *wire.Head) (wire.Record, error) {
	call := c.lc.Requests().Start()
	h.Tag = call.Tag()
	if err := c.lc.Send(ctx, rec); err != nil {
		call.Cancel()
		return nil, c.wrapErr(err)
	}
	resp, err := call.Wait(ctx, c.lc.Done())
	if err != nil {
		return nil, c.wrapErr(err)
	}
	return resp, nil
}

// wrapErr turns link's ErrClosed into ErrClosed with the server's reason.
func (c *Client) wrapErr(err error) error {
	if !errors.Is(err, link.ErrClosed) {
		return err
	}
	if pc := c.lc.PeerClose(); pc != nil {
		return fmt.Errorf("%w by the server: %w (%s)", ErrClosed, pc.Code, pc.Text)
	}
	return ErrClosed
}

// Send sends a message to the address to and waits for its final result
// (see SendMessage). contentType is "text/plain" (also for "") or
// "text/html-lite".
func (c *Client) Send(ctx context.Context, to, contentType, body string) (*wire.Result, error) {
	return c.SendMessage(ctx, &wire.Send{To: to, ContentType: contentType, Body: body})
}

// SendMessage sends m and waits for its final result: delivered (with the
// number of sessions reached), stored, offline, unknown-user, refused, ...
// An error means that no result came (the connection ended, ctx ended); a
// result that is a failure is returned as it is, with a nil error
// (res.Err() tells). If m.ID is empty SendMessage sets it to a fresh id
// (NewMessageID), so that the caller can send m again after a reconnect
// without it being delivered twice. m is not kept.
func (c *Client) SendMessage(ctx context.Context, m *wire.Send) (*wire.Result, error) {
	if len(m.ID) == 0 {
		m.ID = NewMessageID()
	}
	cp := *m
	rec, err := c.request(ctx, &cp, &cp.Head)
	if err != nil {
		return nil, fmt.Errorf("client: send to %s: %w", m.To, err)
	}
	r, ok := rec.(*wire.Result)
	if !ok {
		return nil, fmt.Errorf("client: send to %s: unexpected answer %s", m.To, rec.Type())
	}
	return r, nil
}

// NewMessageID returns a fresh message id of 16 bytes: the time in Unix
// milliseconds (48 bits, big-endian), then 80 random bits. Ids that grow
// with time let the servers' dedup indexes grow at their end, which is
// much cheaper than inserting at random places (docs/client-api.md).
func NewMessageID() []byte {
	b := make([]byte, 16)
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return b
}

// Ping checks that the server answers.
func (c *Client) Ping(ctx context.Context) error {
	p := &wire.Ping{}
	rec, err := c.request(ctx, p, &p.Head)
	if err != nil {
		return fmt.Errorf("client: ping: %w", err)
	}
	if _, ok := rec.(*wire.Pong); !ok {
		return fmt.Errorf("client: ping: unexpected answer %s", rec.Type())
	}
	return nil
}

// Messages returns the channel of incoming messages. Each is acknowledged
// to the server once it has been received from the channel, within
// Options.AckDelay. The channel is closed after the connection has ended
// and the messages that arrived before have been handed over (or Close was
// called). Until it is read,
// up to Options.MessageBuffer messages wait; then the client stops reading
// from the server until they are taken.
func (c *Client) Messages() <-chan Incoming { return c.msgs }

// Events returns the presence events the server pushes: *wire.Notify (a
// contact's presence) and *wire.Request (someone asks to see the user's
// presence). It is buffered like Messages; when full, events are dropped
// (presence is state: the next one supersedes).
func (c *Client) Events() <-chan wire.Record { return c.events }

// result sends a request and returns its RESULT.
func (c *Client) result(ctx context.Context, what string, rec wire.Record, h *wire.Head) (*wire.Result, error) {
	resp, err := c.request(ctx, rec, h)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", what, err)
	}
	r, ok := resp.(*wire.Result)
	if !ok {
		return nil, fmt.Errorf("client: %s: unexpected answer %s", what, resp.Type())
	}
	return r, nil
}

// AddContact adds a contact (or changes its alias) and asks the contact
// for permission to see their presence.
func (c *Client) AddContact(ctx context.Context, address, alias string) (*wire.Result, error) {
	r := &wire.ContactAdd{Address: address, Alias: alias}
	return c.result(ctx, "add contact "+address, r, &r.Head)
}

// RemoveContact removes a contact.
func (c *Client) RemoveContact(ctx context.Context, address string) (*wire.Result, error) {
	r := &wire.ContactRemove{Address: address}
	return c.result(ctx, "remove contact "+address, r, &r.Head)
}

// Contacts returns the contact list: "address state" or "address state
// alias" per contact.
func (c *Client) Contacts(ctx context.Context) ([]string, error) {
	r := &wire.Contacts{}
	resp, err := c.request(ctx, r, &r.Head)
	if err != nil {
		return nil, fmt.Errorf("client: contacts: %w", err)
	}
	switch x := resp.(type) {
	case *wire.ContactList:
		return x.Contacts, nil
	case *wire.Result:
		return nil, fmt.Errorf("client: contacts: %w", x.Code)
	}
	return nil, fmt.Errorf("client: contacts: unexpected answer %s", resp.Type())
}

// Approve approves (or denies) a request to see the user's presence.
func (c *Client) Approve(ctx context.Context, watcher string, approve bool) (*wire.Result, error) {
	r := &wire.Approve{Address: watcher, Approve: approve}
	return c.result(ctx, "approve "+watcher, r, &r.Head)
}

// SetPresence sets the user's presence and status text.
func (c *Client) SetPresence(ctx context.Context, p wire.Presence, status string) (*wire.Result, error) {
	r := &wire.PresenceSet{Presence: p, Status: status}
	return c.result(ctx, "set presence", r, &r.Head)
}

// Attributes asks for named attributes (all that the user may see, when
// names is empty) of target, an address or a bare domain on any domain.
func (c *Client) Attributes(ctx context.Context, target string, names ...string) ([]wire.Attr, error) {
	r := &wire.GetAttrs{Requester: "-", Target: target, Names: names}
	resp, err := c.request(ctx, r, &r.Head)
	if err != nil {
		return nil, fmt.Errorf("client: attributes of %s: %w", target, err)
	}
	switch x := resp.(type) {
	case *wire.Attrs:
		return x.Attrs, nil
	case *wire.Result:
		return nil, fmt.Errorf("client: attributes of %s: %w", target, x.Code)
	}
	return nil, fmt.Errorf("client: attributes of %s: unexpected answer %s", target, resp.Type())
}

// SetAttributes sets attributes with ATTRIBUTES-SET: the user's alias and
// max-message-length (kept by the server), and this session's
// capabilities (space-separated tokens such as "html-lite"; the user's are
// the union over the sessions). An empty value removes an attribute. A
// name the server does not let clients set is answered bad-request, with
// a text that says why, and nothing is changed.
func (c *Client) SetAttributes(ctx context.Context, attrs ...wire.Attr) (*wire.Result, error) {
	r := &wire.AttrsSet{Attrs: attrs}
	return c.result(ctx, "set attributes", r, &r.Head)
}

// AttrValue returns the value of the attribute name among attrs (those of
// an Incoming message, of a NOTIFY from Events, or from Attributes), and
// whether it is there.
func AttrValue(attrs []wire.Attr, name string) (string, bool) {
	for _, a := range attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// Alias returns the sender's alias, if it rode along with the message:
// the sender's server attaches it only when the sender approved the
// recipient as a watcher.
func (m Incoming) Alias() string {
	v, _ := AttrValue(m.Attrs, "alias")
	return v
}

// Block blocks (or unblocks) an address, or a domain as "@domain".
func (c *Client) Block(ctx context.Context, pattern string, block bool) (*wire.Result, error) {
	r := &wire.Block{Pattern: pattern, Block: block}
	return c.result(ctx, "block "+pattern, r, &r.Head)
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.lc.Done() }

// Err returns why the connection ended: nil after an orderly close, an
// error wrapping ErrClosed and the server's status when the server closed
// it with a reason other than ok, or the failure. Valid after Done.
func (c *Client) Err() error {
	if pc := c.lc.PeerClose(); pc != nil && pc.Code != wire.StatusOK {
		return fmt.Errorf("%w by the server: %w (%s)", ErrClosed, pc.Code, pc.Text)
	}
	return c.lc.Err()
}

// Close ends the connection with CLOSE ok and waits for it to end (at
// most a few seconds for a server that does not answer). Messages not yet
// received from Messages are dropped, unacknowledged.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		<-c.dispatched // it sends the acknowledgements still waiting
		c.lc.Close(wire.StatusOK, "")
	})
	c.wg.Wait()
	return nil
}

// handle receives the server's requests and notices on the reader
// goroutine.
func (c *Client) handle(lc *link.Conn, rec wire.Record) {
	hd := rec.FrameHead()
	switch rec.(type) {
	case *wire.Notify, *wire.Request:
		// Presence is state: when the reader of Events falls behind, an
		// older event is dropped rather than the connection stalled.
		if kept, err := wire.Clone(rec); err == nil {
			select {
			case c.events <- kept:
			default:
				c.log.Warn("presence events not read; dropping one", "type", rec.Type())
			}
		}
		if hd.Tag != 0 {
			lc.TrySend(&wire.Result{Head: wire.Head{Tag: hd.Tag}, Code: wire.StatusOK})
		}
		return
	}
	m, ok := rec.(*wire.Message)
	if !ok {
		if hd.Tag != 0 {
			lc.TrySend(&wire.Result{Head: wire.Head{Tag: hd.Tag}, Code: wire.StatusUnsupported})
		}
		return
	}
	// A full buffer stops the reader: the server's queue for this session
	// fills, and the server treats the session as a slow consumer, rather
	// than the client refusing (and so losing) a message it was handed.
	select {
	case c.pending <- pendingMsg{in: parseIncoming(m), tag: m.Tag}:
	case <-lc.Closing():
	}
}

// dispatch hands the received messages over to Messages' reader, in
// order, and acknowledges each: at once, or within ackDelay together with
// the others taken meanwhile.
func (c *Client) dispatch() {
	defer close(c.msgs)
	defer close(c.dispatched)
	defer func() {
		if c.ackTimer != nil {
			c.ackTimer.Stop()
		}
		c.sendAcks(false) // Close waits for these before its CLOSE
	}()
	for {
		select {
		case p := <-c.pending:
			if !c.handOver(p) {
				return
			}
		case <-c.acksDue:
			c.sendAcks(true)
		case <-c.closing:
			return
		case <-c.lc.Done():
			for {
				select {
				case p := <-c.pending:
					if !c.handOver(p) {
						return
					}
				default:
					return
				}
			}
		}
	}
}

// handOver gives a message to Messages' reader and notes its tag to
// acknowledge. The acknowledgements that fall due meanwhile are sent, not
// held behind a busy reader.
func (c *Client) handOver(p pendingMsg) bool {
	for {
		select {
		case c.msgs <- p.in:
			c.acks = append(c.acks, p.tag)
			switch {
			case c.ackDelay <= 0 || len(c.acks) >= maxAckBatch:
				c.sendAcks(true)
			case c.acksDue == nil:
				if c.ackTimer == nil {
					c.ackTimer = time.NewTimer(c.ackDelay)
				} else {
					c.ackTimer.Reset(c.ackDelay)
				}
				c.acksDue = c.ackTimer.C
			}
			return true
		case <-c.acksDue:
			c.sendAcks(true)
		case <-c.closing:
			return false
		}
	}
}

// sendAcks queues the acknowledgements waiting, all at once so that the
// writer sends them in one write. With wait, it waits for room in a full
// queue (up to the write timeout); without, what does not fit is dropped.
func (c *Client) sendAcks(wait bool) {
	for _, tag := range c.acks {
		ack := &wire.Result{Head: wire.Head{Tag: tag}, Code: wire.StatusOK}
		if !wait {
			c.lc.TrySend(ack)
			continue
		}
		if err := c.lc.SendWithin(context.Background(), ack, link.DefaultWriteTimeout); err != nil {
			if !errors.Is(err, link.ErrClosed) {
				c.log.Warn("could not acknowledge a message", "err", err)
			}
			break
		}
	}
	c.acks = c.acks[:0]
	if c.acksDue != nil {
		c.ackTimer.Stop()
		c.acksDue = nil
	}
}

// parseIncoming copies m, which is valid only during the handler, and
// reads its MIME headers.
//
// It tries parseMIMECanonical first, and net/mail only for what that
// refuses. Every message that an imx server hands over has its header
// section in the canonical form (message.Build, message.Parse), and
// net/mail's generic reading of it was about 8% of a load generator's CPU:
// in BenchmarkParseIncoming (a 255-octet message) it takes 25 allocations,
// 2 KB and more than twice the time; parseMIMECanonical 7 and 1 KB.
func parseIncoming(m *wire.Message) Incoming {
	in := copyIncoming(m)
	if !in.parseMIMECanonical() {
		in.parseMIMEGeneral()
	}
	return in
}

// parseIncomingGeneral is parseIncoming without the fast path.
func parseIncomingGeneral(m *wire.Message) Incoming {
	in := copyIncoming(m)
	in.parseMIMEGeneral()
	return in
}

// copyIncoming copies what m holds into a new Incoming.
func copyIncoming(m *wire.Message) Incoming {
	return Incoming{
		From:  m.From,
		To:    m.To,
		ID:    bytes.Clone(m.ID),
		MIME:  bytes.Clone(m.MIME),
		Attrs: append([]wire.Attr(nil), m.Attrs...),
	}
}

// parseMIMEGeneral sets in's Header, Body, ContentType and Date from
// in.MIME with net/mail.
func (in *Incoming) parseMIMEGeneral() {
	br := mimeReaders.Get().(*bufio.Reader)
	defer mimeReaders.Put(br)
	br.Reset(bytes.NewReader(in.MIME))
	msg, err := mail.ReadMessage(br) // uses br as it is: it is large enough
	if err != nil {
		in.Body = string(in.MIME)
		return
	}
	in.Header = msg.Header
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		in.Body = string(in.MIME)
		return
	}
	in.Body = string(body)
	in.ContentType = "text/plain"
	if ct := msg.Header.Get("Content-Type"); ct != "" {
		in.ContentType = parseMediaType(ct)
	}
	in.Date = parseDate(msg.Header.Get("Date"))
}

// parseMIMECanonical is parseMIMEGeneral for a simple header section: lines
// "Name: value" ending in CRLF, each name a token (as net/textproto has
// it), none folded, then an empty line. It reports false, and leaves in as
// it is, for anything else. When it reports true, in is exactly what
// parseMIMEGeneral makes of it: net/mail takes such a line as a key
// canonicalized by textproto.CanonicalMIMEHeaderKey and a value with the
// spaces and tabs at both ends trimmed, and the body as the rest.
//
// The header values and the body are slices of one string copy of in.MIME.
func (in *Incoming) parseMIMECanonical() bool {
	s := string(in.MIME)
	end := strings.Index(s, "\r\n\r\n")
	if end < 0 {
		return false
	}
	head, body := s[:end+2], s[end+4:]
	values := make([]string, strings.Count(head, "\n"))
	h := make(mail.Header, len(values))
	for i := range values {
		n := strings.IndexByte(head, '\n')
		line, crlf := strings.CutSuffix(head[:n], "\r")
		head = head[n+1:]
		if !crlf || strings.IndexByte(line, '\r') >= 0 {
			return false // a bare LF or CR
		}
		// A folded line begins with a space or a tab, which are not token
		// characters.
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return false
		}
		values[i] = strings.Trim(value, " \t")
		key := textproto.CanonicalMIMEHeaderKey(name)
		if vs, ok := h[key]; ok {
			h[key] = append(vs, values[i]) // a repeated field, as net/mail has it
		} else {
			h[key] = values[i : i+1 : i+1] // no room to grow into the next one
		}
	}
	in.Header = h
	in.Body = body
	in.ContentType = "text/plain"
	if ct := h.Get("Content-Type"); ct != "" {
		in.ContentType = mediaType(ct)
	}
	in.Date = parseDate(h.Get("Date"))
	return true
}

// isToken reports whether s is a header field name that net/textproto
// canonicalizes: one or more token characters of RFC 7230.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// mediaType is parseMediaType, with the values that imx servers write
// known without mime.ParseMediaType.
func mediaType(ct string) string {
	switch ct {
	case "text/plain; charset=utf-8", "text/plain":
		return "text/plain"
	case "text/html-lite; charset=utf-8", "text/html-lite":
		return "text/html-lite"
	}
	return parseMediaType(ct)
}

// parseMediaType returns the media type of a Content-Type value, in lower
// case and without parameters.
func parseMediaType(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
}

// mimeReaders are the buffers parseMIMEGeneral reads MIME headers with:
// net/mail would make a 4 KiB one per message.
var mimeReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// parseDate reads a Date header: first in the form servers write
// (RFC 5322 with a numeric zone), then in any form net/mail knows, whose
// parser is slower. Zero if there is none or it cannot be read.
func parseDate(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC1123Z, v); err == nil {
		return t
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t
	}
	return time.Time{}
}
