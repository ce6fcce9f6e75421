package router_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/message"
	"github.com/imxproject/imx/router"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/sqlite"
	"github.com/imxproject/imx/wire"
)

// oneSession is a Local target where every user has one session, which
// takes each message without keeping it: the benchmarks measure the
// router, not a session's queue.
type oneSession struct{ n atomic.Int64 }

func (o *oneSession) Deliver(_ context.Context, _ addr.Address, m *wire.Message) int {
	if len(m.MIME) == 0 {
		return 0
	}
	o.n.Add(1)
	return 1
}

// answering is a Remote whose domain answers every MESSAGE delivered at
// once, as a server connection's RESULT does: BenchmarkSendRemote
// measures the sending router, and BenchmarkMessageFrames (s2s) the
// connection.
type answering struct{ n atomic.Int64 }

func (a *answering) Request(_ context.Context, _, _ string, rec wire.Record) (wire.Record, error) {
	if _, ok := rec.(*wire.Message); !ok {
		return &wire.Result{Code: wire.StatusUnsupported}, nil
	}
	a.n.Add(1)
	return &wire.Result{Code: wire.StatusDelivered, Count: 1}, nil
}

const benchUsers = 8

// runMessages runs the b.N messages of a benchmark from several
// goroutines: message n, with a new id that starts with the time (as the
// client package's ids do), must give delivered.
func runMessages(b *testing.B, message func(n uint64, id []byte) *wire.Result) {
	var seq atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := make([]byte, 16)
		for pb.Next() {
			n := seq.Add(1)
			binary.BigEndian.PutUint64(id[:8], uint64(time.Now().UnixNano()))
			binary.BigEndian.PutUint64(id[8:], n)
			if res := message(n, id); res.Code != wire.StatusDelivered {
				b.Errorf("message %d: %v %q", n, res.Code, res.Text)
				return
			}
		}
	})
}

// BenchmarkReceive is the receiving server's work for one MESSAGE from
// another domain, as imxbench e2e sends them: Router.Receive's checks,
// its dedup in memory and in a real SQLite file, the MIME check, the
// delivery to one session, and the claim recorded in the group commit.
// The messages come from several goroutines, as from s2s's workers.
func BenchmarkReceive(b *testing.B) {
	local := &oneSession{}
	rt, st := receiver(b, filepath.Join(b.TempDir(), "imx.db"), local)
	defer st.Close()
	ctx := context.Background()
	from := addr.MustParse("alice@alpha.example")
	var msgs [benchUsers]wire.Message
	builder := message.Builder{}
	for i := range msgs {
		to := addr.MustParse("bob" + string(rune('0'+i)) + "@beta.example")
		if err := st.CreateAccount(ctx, to, "pw"); err != nil {
			b.Fatal(err)
		}
		mime, err := builder.Build(message.Draft{From: from, To: to, Body: strings.Repeat("x", 200), ID: []byte("0123456789abcdef")}, 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = wire.Message{From: from.String(), To: to.String(), MIME: mime}
	}
	runMessages(b, func(n uint64, id []byte) *wire.Result {
		m := msgs[n%benchUsers] // a copy: the caller's record, reused
		m.ID = id
		return rt.Receive(ctx, "alpha.example", "beta.example", &m)
	})
	b.StopTimer()
	rt.Wait() // the claims recorded, before the store closes
	if got := local.n.Load(); got < int64(b.N) {
		b.Fatalf("%d delivered of %d", got, b.N)
	}
}

// BenchmarkSendRemote is the sending server's work for one SEND from a
// local client to another domain, as imxbench e2e sends them (between
// strangers: no attributes ride along): Router.Send's checks and rate
// limit, the message id, the MIME built, and the request handed to s2s,
// whose domain answers at once.
func BenchmarkSendRemote(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "imx.db"), sqlite.Options{Password: store.PasswordParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	remote := &answering{}
	rt, err := router.New(router.Config{
		Domains: map[string]router.Policy{"alpha.example": {MaxMessageSize: 64 << 10, RateLimit: 1e9, RateBurst: 1 << 20}},
		Local:   &oneSession{},
		Remote:  remote,
		Users:   st, Dedup: st, Outbox: st, Offline: st, Blocks: st,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var senders [benchUsers]addr.Address
	for i := range senders {
		senders[i] = addr.MustParse("alice" + string(rune('0'+i)) + "@alpha.example")
	}
	body := strings.Repeat("x", 200)
	runMessages(b, func(n uint64, id []byte) *wire.Result {
		s := wire.Send{To: "bob" + string(rune('0'+n%benchUsers)) + "@beta.example", Body: body, ID: id}
		return rt.Send(ctx, senders[n%benchUsers], &s)
	})
	b.StopTimer()
	rt.Wait()
	if got := remote.n.Load(); got < int64(b.N) {
		b.Fatalf("%d sent of %d", got, b.N)
	}
}
