package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/c2s"
	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/internal/link"
	"github.com/imxproject/imx/wire"
)

// framesDriver drives the e2e sessions on the client protocol's frames
// itself, as wrk drives HTTP: a session is a link.Conn over the WebSocket,
// as in the client package, but a sender keeps its messages in flight
// without a goroutine or a link.Call each (it counts the RESULTs as they
// come, in link.Config.Responses, and a closed-loop sender sends the next
// SEND from there), and a receiver reads each MESSAGE's body where the
// MIME puts it instead of parsing the MIME. So imxbench takes less of the
// CPU that the two servers share with it. The servers see the same frames
// as from the client package: SEND with a fresh message id, and a RESULT
// ok for each MESSAGE, delayed up to client.DefaultAckDelay to share a
// write as the client package does.
type framesDriver struct {
	sendPool[*frameSession]
	recv []*frameSession
	// The sessions' writers, on long-lived goroutines: a writer started
	// for each SEND (a new goroutine, its stack grown through the write
	// path) was 7% of imxbench's CPU.
	writers *link.WriterPool
}

// Tags of the driver's SENDs: tagOurs is set on all, tagLoop on those of
// the closed loop. The rest of the tag counts; link.Requests (LOGIN) uses
// small tags.
const (
	tagOurs = 1 << 31
	tagLoop = 1 << 30
)

// frameSession is one session of the framesDriver.
type frameSession struct {
	*rawSession
	d    *framesDriver
	to   string
	tags atomic.Uint32

	sendLoop // senders

	// Receivers.
	mu       sync.Mutex
	got      arrivals
	acks     []uint32
	ackLC    *link.Conn // the connection the MESSAGEs came on
	ackTimer *time.Timer
}

func newFramesDriver(ctx context.Context, s *e2eState, a, b *imxdProc, sl, rl []string) (*framesDriver, error) {
	d := &framesDriver{sendPool: newSendPool[*frameSession](ctx, s, len(sl)), recv: make([]*frameSession, len(rl)), writers: link.NewWriterPool(0)}
	if err := parallel(ctx, len(sl), 4, func(ctx context.Context, i int) (err error) {
		d.senders[i], err = d.dial(ctx, a, sl[i]+"@"+a.domain, s.to[i%len(s.to)])
		return err
	}); err != nil {
		d.close()
		return nil, err
	}
	if err := parallel(ctx, len(rl), 4, func(ctx context.Context, i int) (err error) {
		d.recv[i], err = d.dial(ctx, b, s.to[i], "")
		return err
	}); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// dial connects a frameSession to p and logs in as user; a sender sends
// to to.
func (d *framesDriver) dial(ctx context.Context, p *imxdProc, user, to string) (*frameSession, error) {
	fs := &frameSession{d: d, to: to}
	if to != "" {
		fs.sendLoop = newSendLoop()
	}
	var err error
	fs.rawSession, err = dialRaw(ctx, p, &wire.Login{User: user, Password: benchPassword, Client: "imxbench"}, link.Config{
		Responses: fs.response,
		Writers:   d.writers,
	}, fs.request)
	if err != nil {
		return nil, err
	}
	return fs, nil
}

// rawSession is a client session that imxbench drives frame by frame: a
// link.Conn over the client API's WebSocket, as in the client package.
type rawSession struct {
	lc   *link.Conn
	done chan struct{} // closed when Run has returned
}

// dialRaw connects to p's client listener as the client package does
// (client.DialFrameConn), runs the connection with h, and logs in with
// login. cfg gives the link's Responses and Writers.
func dialRaw(ctx context.Context, p *imxdProc, login *wire.Login, cfg link.Config, h link.Handler) (*rawSession, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fc, err := client.DialFrameConn(ctx, "ws://"+p.client+c2s.Path, nil, nil)
	if err != nil {
		return nil, err
	}
	cfg.Software = "imxbench"
	cfg.FramePerWrite = true
	cfg.KeepAlive = -1
	lc, err := link.Initiate(ctx, fc, cfg)
	if err != nil { // Initiate closed fc
		return nil, fmt.Errorf("connect to %s: %w", p.client, err)
	}
	rs := &rawSession{lc: lc, done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		_ = lc.Run(context.Background(), h)
	}()
	rec, err := rs.request(ctx, login, &login.Head)
	if _, ok := rec.(*wire.Session); err != nil || !ok {
		rs.close()
		if err == nil {
			err = fmt.Errorf("answer %v", rec)
		}
		return nil, fmt.Errorf("login %s: %w", login.User, err)
	}
	return rs, nil
}

// request sends rec, whose head is hd, and waits for its response.
func (rs *rawSession) request(ctx context.Context, rec wire.Record, hd *wire.Head) (wire.Record, error) {
	call := rs.lc.Requests().Start()
	hd.Tag = call.Tag()
	if err := rs.lc.Send(ctx, rec); err != nil {
		call.Cancel()
		return nil, err
	}
	return call.Wait(ctx, rs.lc.Done())
}

// close closes the session and waits for its end.
func (rs *rawSession) close() {
	rs.lc.Close(wire.StatusOK, "")
	select {
	case <-rs.done:
	case <-time.After(10 * time.Second):
		rs.lc.Abort(errors.New("imxbench: close timed out"))
		<-rs.done
	}
}

// send queues one SEND; false if the connection has no room or has ended
// (counted as failed).
func (fs *frameSession) send(phase int, sched time.Time, loop bool) bool {
	tag := fs.tags.Add(1)&(tagLoop-1) | tagOurs
	if loop {
		tag |= tagLoop
	}
	m := &wire.Send{Head: wire.Head{Tag: tag}, To: fs.to, Body: fs.d.s.body(phase, sched), ID: client.NewMessageID()}
	if !fs.lc.TrySend(m) {
		fs.d.s.fail("SEND not queued: the connection is full or closed")
		return false
	}
	return true
}

// response takes the RESULTs of the driver's SENDs, on the reader
// goroutine.
func (fs *frameSession) response(_ *link.Conn, rec wire.Record) bool {
	tag := rec.FrameHead().Tag
	if tag&tagOurs == 0 {
		return false // LOGIN's: link.Requests
	}
	if r, ok := rec.(*wire.Result); ok {
		fs.d.s.result(r.Code, r.Text)
	} else {
		fs.d.s.fail("SEND answered with " + rec.Type().String())
	}
	fs.d.answered(fs, tag&tagLoop != 0)
	return true
}

func (fs *frameSession) state() *sendLoop       { return &fs.sendLoop }
func (fs *frameSession) ended() <-chan struct{} { return fs.done }

// request handles the server's requests: a receiver's MESSAGEs.
func (fs *frameSession) request(lc *link.Conn, rec wire.Record) {
	m, ok := rec.(*wire.Message)
	if !ok {
		if tag := rec.FrameHead().Tag; tag != 0 {
			lc.TrySend(&wire.Result{Head: wire.Head{Tag: tag}, Code: wire.StatusOK})
		}
		return
	}
	now := time.Now()
	body := m.MIME
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		body = body[i+4:]
	}
	fs.mu.Lock()
	fs.ackLC = lc
	fs.d.s.arrived(body, len(m.Attrs) > 0, now, &fs.got)
	fs.acks = append(fs.acks, m.Tag)
	switch {
	case len(fs.acks) >= 64:
		fs.flushLocked()
	case len(fs.acks) == 1:
		if fs.ackTimer == nil {
			fs.ackTimer = time.AfterFunc(client.DefaultAckDelay, fs.flush)
		} else {
			fs.ackTimer.Reset(client.DefaultAckDelay)
		}
	}
	fs.mu.Unlock()
}

func (fs *frameSession) flush() {
	fs.mu.Lock()
	fs.flushLocked()
	fs.mu.Unlock()
}

// flushLocked queues the acknowledgements waiting.
func (fs *frameSession) flushLocked() {
	for _, tag := range fs.acks {
		if !fs.ackLC.TrySend(&wire.Result{Head: wire.Head{Tag: tag}, Code: wire.StatusOK}) {
			break // the connection is full or ending; the server copes
		}
	}
	fs.acks = fs.acks[:0]
}

func (fs *frameSession) close() {
	fs.mu.Lock()
	if fs.ackTimer != nil {
		fs.ackTimer.Stop()
	}
	fs.mu.Unlock()
	fs.flush()
	fs.rawSession.close()
}

func (d *framesDriver) close() {
	all := append(slices.Clone(d.senders), d.recv...)
	closeEach(all, len(all), (*frameSession).close)
	d.writers.Close()
	d.writers.Wait()
	for _, fs := range d.recv {
		if fs != nil {
			d.s.keep(fs.got)
		}
	}
}
