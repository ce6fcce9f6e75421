package s2s

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/dialback"
	"github.com/imxproject/imx/internal/link"
	"github.com/imxproject/imx/wire"
)

// maxAuthsPerConn is how many dial-backs the originator runs at once on one
// connection.
const maxAuthsPerConn = 8

// pair is a domain pair as this server sees it.
type pair struct{ local, remote string }

// verification is a dial-back in progress on this server as the receiving
// side, for one pair on one inbound connection.
type verification struct {
	tag    uint32    // of the DB-TOKEN, answered by DB-OUTCOME
	result chan bool // the secret check, from DB-SECRET
}

// sconn is a server connection and what this server knows about it.
type sconn struct {
	*link.Conn
	srv      *Server
	outbound bool
	remote   string         // outbound: the remote domain dialled
	endpoint string         // outbound: host:port dialled
	dialled  netip.AddrPort // outbound: the address dialled
	chain    []string       // outbound: the redirect chain that led here

	// authSlots bounds the dial-backs this side runs at once on the
	// connection as the originator, below the receiver's per-connection
	// bound (dialback.DefaultMaxPerConn), so that it is not refused busy.
	authSlots chan struct{}

	// handling bounds the records handled concurrently (MaxConcurrent);
	// handlers counts them, so that a shutdown can wait for their
	// responses.
	handling chan struct{}
	handlers sync.WaitGroup
	// ordered holds, under mu, the presence records waiting for the one of
	// their key being handled (orderKey).
	ordered map[orderKey][]queued

	// authed holds the authenticated pairs, read on every record. It is a
	// map, not a list: an aggregator's connection can carry thousands of
	// pairs, and each dial-back adds one.
	authedMu sync.RWMutex
	authed   map[pair]struct{}

	mu        sync.Mutex
	authing   map[pair]chan struct{}
	verifying map[pair]*verification
	// conn2 is, on an outbound connection 1, the inbound connection 2
	// that brought the receiver's DB-VERIFY for a pair: it is trusted once
	// DB-OUTCOME says ok on connection 1, when the receiver trusts it too.
	conn2      map[pair]*sconn
	claimed    map[string]bool // inbound: remote domains claimed by DB-TOKEN
	violations int
	draining   bool
}

func (s *Server) newConn(lc *link.Conn, outbound bool, remote, endpoint string, dialled netip.AddrPort, chain []string) *sconn {
	c := &sconn{
		dialled:   dialled,
		Conn:      lc,
		srv:       s,
		outbound:  outbound,
		remote:    remote,
		endpoint:  endpoint,
		chain:     chain,
		authing:   map[pair]chan struct{}{},
		verifying: map[pair]*verification{},
		conn2:     map[pair]*sconn{},
		claimed:   map[string]bool{},
		authSlots: make(chan struct{}, maxAuthsPerConn),
		handling:  make(chan struct{}, s.cfg.MaxConcurrent),
		ordered:   map[orderKey][]queued{},
	}
	s.mu.Lock()
	s.byID[lc.ID()] = c
	s.mu.Unlock()
	return c
}

func (c *sconn) connKey() dialback.ConnKey {
	k := dialback.ConnKey{ID: c.ID()}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		k.Addr = ta.AddrPort().Addr().Unmap()
	}
	return k
}

func (c *sconn) isAuthed(local, remote string) bool {
	return c.hasPair(pair{local, remote})
}

func (c *sconn) hasPair(p pair) bool {
	c.authedMu.RLock()
	_, ok := c.authed[p]
	c.authedMu.RUnlock()
	return ok
}

// pairs returns a copy of the authenticated pairs.
func (c *sconn) pairs() []pair {
	c.authedMu.RLock()
	defer c.authedMu.RUnlock()
	out := make([]pair, 0, len(c.authed))
	for p := range c.authed {
		out = append(out, p)
	}
	return out
}

func (c *sconn) usable() bool {
	select {
	case <-c.Closing():
		return false
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.draining
}

func (c *sconn) setDraining() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
}

// markAuthed records that pair is authenticated on c and puts c in the
// remote domain's pool.
func (s *Server) markAuthed(c *sconn, p pair) {
	c.authedMu.Lock()
	if c.authed == nil {
		c.authed = map[pair]struct{}{}
	}
	c.authed[p] = struct{}{}
	c.authedMu.Unlock()
	s.mu.Lock()
	pe := s.peer(p.remote)
	if !slices.Contains(pe.conns, c) {
		pe.conns = append(pe.conns, c)
	}
	s.mu.Unlock()
}

// respond sends rec as the response with the given tag.
func (c *sconn) respond(ctx context.Context, tag uint32, node string, rec wire.Record) error {
	switch r := rec.(type) {
	case *wire.Result:
		r.Tag, r.Node = tag, node
	case *wire.Attrs:
		r.Tag, r.Node = tag, node
	case *wire.Pong:
		r.Tag, r.Node = tag, node
	default:
		return fmt.Errorf("s2s: %s is not a response", rec.Type())
	}
	return c.Send(ctx, rec)
}

func (c *sconn) result(tag uint32, code wire.Status, text string) {
	if tag != 0 {
		c.TrySend(&wire.Result{Head: wire.Head{Tag: tag}, Code: code, Text: text})
	}
}

// refuse answers a record that authorization refused, and closes the
// connection after too many.
func (c *sconn) refuse(tag uint32, code wire.Status, why string, args ...any) {
	c.srv.Stats.Refused.Add(1)
	c.srv.metrics.refuse(code)
	c.mu.Lock()
	c.violations++
	n := c.violations
	c.mu.Unlock()
	c.Logger().Warn("refused record: "+why, append(args, "code", code, "violations", n)...)
	c.result(tag, code, why)
	if n >= c.srv.cfg.MaxViolations {
		c.Logger().Warn("closing connection after repeated violations", "violations", n)
		c.Close(code, "too many refused records")
	}
}

// handle is the link Handler: dial-back, REDIRECT and authorized records.
func (c *sconn) handle(_ *link.Conn, rec wire.Record) {
	s := c.srv
	switch r := rec.(type) {
	case *wire.DBToken:
		s.onDBToken(c, r)
	case *wire.DBVerify:
		s.onDBVerify(c, r)
	case *wire.DBSecret:
		s.onDBSecret(c, r)
	case *wire.Redirect:
		s.onRedirect(c, r)
	case *wire.Hello:
		c.refuse(r.Tag, wire.StatusProtocolError, "HELLO after the handshake")
	default:
		s.dispatch(c, rec)
	}
}

// parties returns the sender and recipient domains of a record.
func parties(rec wire.Record) (from, to string, err error) {
	switch r := rec.(type) {
	case *wire.Message:
		return domainOf(r.From), domainOf(r.To), nil
	case *wire.Subscribe:
		return domainOf(r.Watcher), domainOf(r.Presentity), nil
	case *wire.Unsubscribe:
		return domainOf(r.Watcher), domainOf(r.Presentity), nil
	case *wire.Notify:
		to = domainOf(r.Watchers[0])
		for _, w := range r.Watchers[1:] {
			if domainOf(w) != to {
				return "", "", errors.New("watchers of one NOTIFY must share a domain")
			}
		}
		return domainOf(r.Presentity), to, nil
	case *wire.GetAttrs:
		return domainOf(r.Requester), domainOf(r.Target), nil
	}
	return "", "", fmt.Errorf("%s is not for server connections", rec.Type())
}

// dispatch authorizes a record (§4.3.3, §6.2.2.1) and hands it to the
// Handler.
func (s *Server) dispatch(c *sconn, rec wire.Record) {
	hd := rec.FrameHead()
	from, to, err := parties(rec)
	if err != nil {
		c.refuse(hd.Tag, wire.StatusUnsupported, err.Error())
		return
	}
	if !s.local[to] {
		c.refuse(hd.Tag, wire.StatusRelayDenied, "recipient domain not served here", "type", rec.Type(), "to", to)
		return
	}
	if !c.isAuthed(to, from) {
		c.refuse(hd.Tag, wire.StatusNotAuthorized, "sender domain not authenticated on this connection", "type", rec.Type(), "from", from, "to", to)
		return
	}
	if s.cfg.Handler == nil {
		c.result(hd.Tag, wire.StatusUnsupported, "no handler")
		return
	}
	in := Inbound{From: from, To: to, Record: rec, tag: hd.Tag, node: hd.Node, conn: c}
	if s.cfg.Inline {
		s.handle(c, in, hd)
		return
	}
	// The decoder reuses rec once this returns: the workers get a copy.
	// A full set of slots stops the reading (back-pressure).
	kept, err := wire.Clone(rec)
	if err != nil { // rec came from the decoder: cannot happen
		c.result(hd.Tag, wire.StatusInternal, "")
		return
	}
	in.Record = kept
	c.handling <- struct{}{}
	c.handlers.Add(1)
	key, ordered := orderKeyOf(kept)
	if ordered {
		// Presence records of one key are handled one after another, in
		// the order they came: one job runs while the key has any
		// waiting, and takes them in turn (runJob).
		c.mu.Lock()
		if q, busy := c.ordered[key]; busy {
			c.ordered[key] = append(q, queued{in, hd})
			c.mu.Unlock()
			return
		}
		c.ordered[key] = nil
		c.mu.Unlock()
	}
	s.workers.Go(job{c: c, in: in, hd: hd, key: key, ordered: ordered})
}

// queued is a presence record waiting for the one before it of its key.
type queued struct {
	in Inbound
	hd wire.Head
}

// orderKey is the key under which records are handled in order. It is a
// struct of the strings the record holds, not one string made of them, so
// that computing it allocates nothing.
type orderKey struct {
	kind byte // 'n' NOTIFY: presentity, watchers' domain; 's' (UN)SUBSCRIBE: watcher, presentity
	a, b string
}

// orderKeyOf returns the key under which records are handled in order:
// presence is state, and a later change must not be overtaken by an
// earlier one. A NOTIFY is ordered per presentity and watchers' domain,
// SUBSCRIBE and UNSUBSCRIBE per watcher and presentity. MESSAGE and
// GET-ATTRIBUTES have no order (asynchronous tagged requests, §4.4.8).
func orderKeyOf(rec wire.Record) (orderKey, bool) {
	switch r := rec.(type) {
	case *wire.Notify:
		return orderKey{'n', r.Presentity, domainOf(r.Watchers[0])}, true
	case *wire.Subscribe:
		return orderKey{'s', r.Watcher, r.Presentity}, true
	case *wire.Unsubscribe:
		return orderKey{'s', r.Watcher, r.Presentity}, true
	}
	return orderKey{}, false
}

// handleOne handles one record on a worker. The caller frees its slot
// (release).
func (s *Server) handleOne(c *sconn, in Inbound, hd wire.Head) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in a record handler; connection dropped", "conn", c.ID(), "type", in.Record.Type(), "panic", r)
			c.Abort(fmt.Errorf("panic: %v", r))
		}
	}()
	s.handle(c, in, hd)
}

// release frees the slot of a record that was handled.
func (c *sconn) release() {
	<-c.handling
	c.handlers.Done()
}

// handle runs the Handler for in and sends its response.
func (s *Server) handle(c *sconn, in Inbound, hd wire.Head) {
	resp := s.cfg.Handler.HandleS2S(s.ctx, in)
	if resp != nil && hd.Tag != 0 {
		if err := c.respond(s.ctx, hd.Tag, hd.Node, resp); err != nil {
			c.Logger().Info("response not sent", "err", err)
		}
	}
}

// authenticate runs dial-back as the originating server for (local, remote)
// on c, an outbound connection to remote (steps 1 and 5 of §6.3.1 on our
// side; steps 3–4 happen in onDBVerify).
func (s *Server) authenticate(ctx context.Context, c *sconn, local, remote string) (err error) {
	p := pair{local, remote}
	for {
		c.mu.Lock()
		if c.hasPair(p) {
			c.mu.Unlock()
			return nil
		}
		ch := c.authing[p]
		if ch == nil {
			break // c.mu still held
		}
		c.mu.Unlock()
		select {
		case <-ch:
			c.mu.Lock()
			ok := c.hasPair(p)
			c.mu.Unlock()
			if !ok {
				return fmt.Errorf("%w: %s → %s", ErrAuth, local, remote)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	done := make(chan struct{})
	c.authing[p] = done
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.authing, p)
		c.mu.Unlock()
		close(done)
		s.metrics.dialbackDone("originator", remote, err == nil)
	}()

	actx, cancel := context.WithTimeout(ctx, s.cfg.AuthTimeout)
	defer cancel()
	select {
	case c.authSlots <- struct{}{}:
		defer func() { <-c.authSlots }()
	case <-actx.Done():
		return fmt.Errorf("%w: %s → %s: %w", ErrAuth, local, remote, actx.Err())
	}
	call := s.reqs.StartScoped(connScope{c.Conn})
	tok := &wire.DBToken{Head: wire.Head{Tag: call.Tag()}, From: local, To: remote, Token: s.issuer.Issue(local, remote, c.ID())}
	if err := c.Send(actx, tok); err != nil {
		call.Cancel()
		return fmt.Errorf("%w: %s → %s: %w", ErrAuth, local, remote, err)
	}
	resp, err := call.Wait(actx, c.Done())
	if err != nil {
		return fmt.Errorf("%w: %s → %s: %w", ErrAuth, local, remote, err)
	}
	out, ok := resp.(*wire.DBOutcome)
	if !ok {
		if r, isResult := resp.(*wire.Result); isResult {
			return fmt.Errorf("%w: %s → %s: %w (%s)", ErrAuth, local, remote, r.Code, r.Text)
		}
		return fmt.Errorf("%w: %s → %s: answered with %s", ErrAuth, local, remote, resp.Type())
	}
	if out.Code != wire.StatusOK || out.From != remote || out.To != local {
		return fmt.Errorf("%w: %s → %s: %w (%s)", ErrAuth, local, remote, out.Code, out.Text)
	}
	s.markAuthed(c, p)
	c.mu.Lock()
	c2 := c.conn2[p]
	delete(c.conn2, p)
	c.mu.Unlock()
	if c2 != nil {
		// Connection 2 reached us with the token that only the receiving
		// server got; that server trusts it from before its DB-OUTCOME.
		s.markAuthed(c2, p)
	}
	c.Logger().Info("domain pair authenticated", "local", local, "remote", remote, "as", "originator")
	return nil
}

// onDBToken: we are the receiving server A; the peer claims domain r.From
// on connection 1 (§6.3.1 step 1).
func (s *Server) onDBToken(c *sconn, r *wire.DBToken) {
	outcome := func(code wire.Status, text string) {
		c.TrySend(&wire.DBOutcome{Head: wire.Head{Tag: r.Tag}, From: r.To, To: r.From, Code: code, Text: text})
	}
	claimed, err := addr.ParseDomain(r.From)
	switch {
	case c.outbound:
		outcome(wire.StatusNotAuthorized, "dial-back runs on the connection the originator opened")
		return
	case !s.local[r.To]:
		s.Stats.AuthFailed.Add(1)
		s.metrics.dialbackDone("receiver", "", false)
		c.refuse(0, wire.StatusRelayDenied, "DB-TOKEN for a domain not served here", "to", r.To)
		outcome(wire.StatusRelayDenied, "domain not served here")
		return
	case err != nil || claimed != r.From || s.local[r.From]:
		s.Stats.AuthFailed.Add(1)
		s.metrics.dialbackDone("receiver", "", false)
		outcome(wire.StatusNotAuthorized, "invalid originating domain")
		return
	}
	p := pair{local: r.To, remote: r.From}
	c.mu.Lock()
	if c.hasPair(p) {
		c.mu.Unlock()
		outcome(wire.StatusOK, "")
		return
	}
	if c.verifying[p] != nil {
		c.mu.Unlock()
		outcome(wire.StatusBusy, "dial-back for this pair already in progress")
		return
	}
	newClaim := !c.claimed[r.From]
	c.mu.Unlock()
	if newClaim {
		s.mu.Lock()
		full := s.claimed[r.From] >= s.cfg.MaxInboundPerDomain
		if !full {
			s.claimed[r.From]++
		}
		s.mu.Unlock()
		if full {
			c.Logger().Warn("too many inbound connections for one remote domain", "domain", r.From, "max", s.cfg.MaxInboundPerDomain)
			outcome(wire.StatusBusy, "too many connections from "+r.From)
			c.mu.Lock()
			empty := len(c.claimed) == 0
			c.mu.Unlock()
			if empty {
				c.Close(wire.StatusBusy, "too many connections from "+r.From)
			}
			return
		}
		c.mu.Lock()
		c.claimed[r.From] = true
		c.mu.Unlock()
	}
	secret, err := s.verifier.Begin(c.connKey(), r.From, r.To)
	if err != nil {
		c.Logger().Warn("dial-back refused", "from", r.From, "err", err)
		outcome(wire.StatusBusy, "too many dial-backs pending")
		return
	}
	v := &verification{tag: r.Tag, result: make(chan bool, 1)}
	c.mu.Lock()
	c.verifying[p] = v
	c.mu.Unlock()
	token := slices.Clone(r.Token)
	s.wg.Go(func() { s.verify(c, p, v, token, secret) })
}

// verify runs steps 2–5 of §6.3.1 as the receiving server, off the reader
// goroutine.
func (s *Server) verify(c *sconn, p pair, v *verification, token, secret []byte) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.AuthTimeout)
	defer cancel()
	code, text := s.verifyPair(ctx, c, p, v, token, secret)
	c.mu.Lock()
	delete(c.verifying, p)
	c.mu.Unlock()
	if code == wire.StatusOK {
		s.Stats.AuthOK.Add(1)
		s.metrics.dialbackDone("receiver", p.remote, true)
		s.markAuthed(c, p)
		c.Logger().Info("domain pair authenticated", "local", p.local, "remote", p.remote, "as", "receiver")
	} else {
		s.Stats.AuthFailed.Add(1)
		s.metrics.dialbackDone("receiver", p.remote, false)
		c.Logger().Warn("dial-back failed", "local", p.local, "remote", p.remote, "code", code, "why", text)
	}
	c.TrySend(&wire.DBOutcome{Head: wire.Head{Tag: v.tag}, From: p.local, To: p.remote, Code: code, Text: text})
}

func (s *Server) verifyPair(ctx context.Context, c *sconn, p pair, v *verification, token, secret []byte) (wire.Status, string) {
	// Step 2: connection 2, to the claimed domain as our own DNS names it
	// (never an address from connection 1).
	c2, err := s.verifyConn(ctx, p.remote)
	if err != nil {
		return wire.StatusAuthFailed, "could not reach " + p.remote + " through its IMX record"
	}
	// Step 3: token and a fresh secret.
	call := s.reqs.StartScoped(connScope{c2.Conn})
	req := &wire.DBVerify{Head: wire.Head{Tag: call.Tag()}, From: p.local, To: p.remote, Token: token, Secret: secret}
	if err := c2.Send(ctx, req); err != nil {
		call.Cancel()
		return wire.StatusAuthFailed, "connection 2 failed"
	}
	resp, err := call.Wait(ctx, c2.Done())
	if err != nil {
		return wire.StatusTimeout, "no answer to DB-VERIFY"
	}
	if r, ok := resp.(*wire.Result); !ok || r.Code != wire.StatusOK {
		return wire.StatusAuthFailed, p.remote + " did not recognise the token"
	}
	// Steps 4–5: the secret must come back on connection 1.
	select {
	case ok := <-v.result:
		if !ok {
			return wire.StatusAuthFailed, "wrong secret"
		}
	case <-ctx.Done():
		return wire.StatusTimeout, "the secret did not come back"
	case <-c.Done():
		return wire.StatusAuthFailed, "connection 1 closed"
	}
	// Both connections are now trusted for the pair (§6.3.1 step 5).
	s.markAuthed(c2, p)
	return wire.StatusOK, ""
}

// verifyConn returns an outbound connection to remote for DB-VERIFY: one we
// dialled through our own DNS. That is an open connection to remote, or one
// to an address that remote's IMX record lists (a server that serves
// several domains is reached once), or a new one.
func (s *Server) verifyConn(ctx context.Context, remote string) (*sconn, error) {
	s.mu.Lock()
	c := s.peer(remote).outbound()
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	eps, err := s.cfg.Resolver.Lookup(ctx, remote)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, remote, err)
	}
	s.mu.Lock()
	for _, ep := range eps {
		for _, a := range ep.Addrs {
			ap := netip.AddrPortFrom(a, ep.Port)
			for _, x := range s.byID {
				if x.outbound && x.dialled == ap && x.usable() {
					c = x
					break
				}
			}
		}
	}
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	return s.dialDomain(ctx, remote, nil)
}

// onDBVerify: we are the originating server B; the receiving server A
// dialled us (connection 2) with our token and its secret (§6.3.1 step 4).
func (s *Server) onDBVerify(c *sconn, r *wire.DBVerify) {
	// Our token was minted for (from = us, to = them) on connection 1.
	connID, err := s.issuer.Check(r.Token, r.To, r.From)
	if err != nil || !s.local[r.To] {
		c.Logger().Warn("DB-VERIFY with a token we did not issue for this pair", "from", r.From, "to", r.To, "err", err)
		c.result(r.Tag, wire.StatusNotAuthorized, "unknown token")
		return
	}
	s.mu.Lock()
	c1 := s.byID[connID]
	s.mu.Unlock()
	if c1 == nil || !c1.outbound || c1.remote != r.From {
		c.result(r.Tag, wire.StatusNotAuthorized, "connection 1 is gone")
		return
	}
	if err := c1.Send(s.ctx, &wire.DBSecret{From: r.To, To: r.From, Secret: slices.Clone(r.Secret)}); err != nil {
		c.result(r.Tag, wire.StatusNotAuthorized, "connection 1 is gone")
		return
	}
	// Connection 2 is trusted for the pair too (§6.3.1 step 5), once the
	// receiving server's DB-OUTCOME on connection 1 says that the secret
	// matched: not before, when it does not use connection 2 yet.
	p := pair{local: r.To, remote: r.From}
	c1.mu.Lock()
	c1.conn2[p] = c
	c1.mu.Unlock()
	if c1.isAuthed(p.local, p.remote) { // re-verified on an old connection 1
		s.markAuthed(c, p)
	}
	c.result(r.Tag, wire.StatusOK, "")
}

// onDBSecret: we are the receiving server A; the originator returns our
// secret on connection 1 (§6.3.1 step 4).
func (s *Server) onDBSecret(c *sconn, r *wire.DBSecret) {
	p := pair{local: r.To, remote: r.From}
	err := s.verifier.Complete(c.connKey(), r.From, r.To, r.Secret)
	c.mu.Lock()
	v := c.verifying[p]
	c.mu.Unlock()
	if err != nil {
		// An unsolicited, replayed, expired or misdirected secret
		// authenticates nothing.
		c.refuse(0, wire.StatusAuthFailed, "dial-back secret rejected", "from", r.From, "to", r.To, "err", err)
		if v != nil {
			// A wrong secret ends this connection's own verification of
			// the pair at once, rather than at its deadline.
			select {
			case v.result <- false:
			default:
			}
		}
		return
	}
	if v != nil {
		select {
		case v.result <- true:
		default:
		}
	}
}

// onRedirect: the receiving server tells us, on a connection we dialled, to
// go elsewhere (§4.4.4).
func (s *Server) onRedirect(c *sconn, r *wire.Redirect) {
	target := net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))
	log := c.Logger().With("domain", c.remote, "target", target)
	switch {
	case !c.outbound:
		log.Warn("REDIRECT on an inbound connection; ignored")
		return
	case len(c.chain) >= MaxRedirects:
		log.Warn("too many redirects in a row; ignored", "chain", c.chain)
		return
	case slices.Contains(c.chain, target) || c.endpoint == target:
		log.Warn("redirect loop; ignored", "chain", c.chain)
		return
	}
	chain := append(slices.Clone(c.chain), c.endpoint)
	host, port := r.Host, r.Port // r is reused by the connection's decoder
	pairs := c.pairs()
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.AuthTimeout+s.cfg.DialTimeout)
		defer cancel()
		addrs, err := s.redirectAddrs(ctx, c.remote, host)
		if err != nil {
			log.Warn("REDIRECT refused", "err", err)
			return
		}
		var nc *sconn
		for _, a := range addrs {
			nc, err = s.dialAddr(ctx, c.remote, host, netip.AddrPortFrom(a, port), chain)
			if err == nil {
				break
			}
		}
		if nc == nil {
			log.Warn("REDIRECT target unreachable; keeping the old connection", "err", err)
			return
		}
		for _, p := range pairs {
			if err := s.authenticate(ctx, nc, p.local, p.remote); err != nil {
				log.Warn("REDIRECT target failed dial-back; keeping the old connection", "err", err)
				nc.Close(wire.StatusAuthFailed, "dial-back failed")
				return
			}
		}
		s.Stats.Redirects.Add(1)
		c.setDraining()
		c.Close(wire.StatusOK, "redirected")
		log.Info("followed REDIRECT", "new_conn", nc.ID())
	})
}

// redirectAddrs returns the addresses of host if the remote domain's IMX
// record lists it, or the configuration allows it.
func (s *Server) redirectAddrs(ctx context.Context, remote, host string) ([]netip.Addr, error) {
	eps, err := s.cfg.Resolver.Lookup(ctx, remote)
	if err != nil {
		return nil, err
	}
	ip, ipErr := netip.ParseAddr(host)
	for _, ep := range eps {
		if ep.Host == host {
			return ep.Addrs, nil
		}
		if ipErr == nil && slices.Contains(ep.Addrs, ip.Unmap()) {
			return []netip.Addr{ip.Unmap()}, nil
		}
	}
	if slices.Contains(s.cfg.RedirectAllow, host) {
		if ipErr == nil {
			return []netip.Addr{ip.Unmap()}, nil
		}
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	return nil, fmt.Errorf("host %s is not in the IMX record of %s nor in redirect_allow", host, remote)
}
