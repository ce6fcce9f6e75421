package router_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/imxtest"
	"github.com/imxproject/imx/router"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/sqlite"
	"github.com/imxproject/imx/wire"
)

// gatedSessions delivers like sessions, but each Deliver first waits for
// the gate to open, and says on entered that it started.
type gatedSessions struct {
	*sessions
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedSessions) Deliver(ctx context.Context, to addr.Address, m *wire.Message) int {
	g.entered <- struct{}{}
	<-g.gate
	return g.sessions.Deliver(ctx, to, m)
}

// receiver is a router for beta.example alone, over a real SQLite file,
// that only receives (Remote is never used).
func receiver(t testing.TB, path string, local router.Local) (*router.Router, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{Password: store.PasswordParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := router.New(router.Config{
		Domains: map[string]router.Policy{"beta.example": open},
		Local:   local,
		Remote:  nowhere{},
		Users:   st, Dedup: st, Outbox: st, Offline: st, Blocks: st,
		RetryFor: time.Second,
		Logger:   imxtest.TestLogger(t),
	})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return rt, st
}

type nowhere struct{}

func (nowhere) Request(context.Context, string, string, wire.Record) (wire.Record, error) {
	return nil, context.DeadlineExceeded
}

func incoming(id string) *wire.Message {
	return &wire.Message{From: "alice@alpha.example", To: "bob@beta.example", ID: []byte(id),
		MIME: []byte("From: alice@alpha.example\r\nTo: bob@beta.example\r\n\r\nonce")}
}

// TestReceiveRepeatWhileDelivering: a repeat that arrives while the first
// copy is being delivered is answered busy and delivers nothing; one that
// arrives after gets the first copy's result, as "duplicate".
func TestReceiveRepeatWhileDelivering(t *testing.T) {
	bob := addr.MustParse("bob@beta.example")
	g := &gatedSessions{sessions: newSessions(), entered: make(chan struct{}, 4), gate: make(chan struct{})}
	g.login(bob, 2)
	rt, st := receiver(t, filepath.Join(t.TempDir(), "imx.db"), g)
	defer st.Close()
	defer rt.Wait()
	if err := st.CreateAccount(t.Context(), bob, "pw"); err != nil {
		t.Fatal(err)
	}
	first := make(chan *wire.Result, 1)
	go func() { first <- rt.Receive(context.Background(), "alpha.example", "beta.example", incoming("m-1")) }()
	<-g.entered // the first copy is being delivered
	second := make(chan *wire.Result, 1)
	go func() { second <- rt.Receive(context.Background(), "alpha.example", "beta.example", incoming("m-1")) }()
	select {
	case res := <-second:
		expect(t, res, wire.StatusBusy, 0)
	case <-time.After(5 * time.Second):
		close(g.gate)
		t.Fatalf("the repeat went on to deliver: %v", <-second)
	}
	close(g.gate)
	expect(t, <-first, wire.StatusDelivered, 2)
	again := rt.Receive(t.Context(), "alpha.example", "beta.example", incoming("m-1"))
	expect(t, again, wire.StatusDelivered, 2)
	if again.Text != "duplicate" {
		t.Errorf("repeat answered %q, want duplicate", again.Text)
	}
	rt.Wait() // recorded now: the store answers, not the memory
	expect(t, rt.Receive(t.Context(), "alpha.example", "beta.example", incoming("m-1")), wire.StatusDelivered, 2)
	if n := len(g.received(bob)); n != 1 {
		t.Errorf("bob received %d copies, want 1", n)
	}
	// The same id from another domain is another message.
	other := incoming("m-1")
	other.From = "carol@gamma.example"
	other.MIME = []byte("From: carol@gamma.example\r\nTo: bob@beta.example\r\n\r\nonce")
	expect(t, rt.Receive(t.Context(), "gamma.example", "beta.example", other), wire.StatusDelivered, 2)
	<-g.entered
	if n := len(g.received(bob)); n != 2 {
		t.Errorf("bob received %d messages, want 2", n)
	}
}

// TestReceiveRepeatsConcurrent: of many copies of one message arriving at
// once, exactly one is delivered; the others are answered busy or with
// the first copy's result.
func TestReceiveRepeatsConcurrent(t *testing.T) {
	bob := addr.MustParse("bob@beta.example")
	s := newSessions()
	s.login(bob, 1)
	rt, st := receiver(t, filepath.Join(t.TempDir(), "imx.db"), s)
	defer st.Close()
	defer rt.Wait()
	if err := st.CreateAccount(t.Context(), bob, "pw"); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		id := "m-" + string(rune('a'+round))
		var wg sync.WaitGroup
		results := make([]*wire.Result, 16)
		for i := range results {
			wg.Go(func() { results[i] = rt.Receive(t.Context(), "alpha.example", "beta.example", incoming(id)) })
		}
		wg.Wait()
		delivered := 0
		for _, r := range results {
			switch {
			case r.Code == wire.StatusDelivered && r.Text != "duplicate":
				delivered++
			case r.Code == wire.StatusDelivered, r.Code == wire.StatusBusy:
			default:
				t.Fatalf("round %d: result %v %q", round, r.Code, r.Text)
			}
		}
		if delivered != 1 {
			t.Fatalf("round %d: %d copies delivered, want 1", round, delivered)
		}
	}
	if n := len(s.received(bob)); n != 20 {
		t.Errorf("bob received %d messages, want 20", n)
	}
}

// TestReceiveResultSurvivesRestart: the result recorded after a delivery
// answers a repeat that comes after the receiving server restarted.
func TestReceiveResultSurvivesRestart(t *testing.T) {
	bob := addr.MustParse("bob@beta.example")
	path := filepath.Join(t.TempDir(), "imx.db")
	s := newSessions()
	s.login(bob, 3)
	rt, st := receiver(t, path, s)
	if err := st.CreateAccount(t.Context(), bob, "pw"); err != nil {
		t.Fatal(err)
	}
	expect(t, rt.Receive(t.Context(), "alpha.example", "beta.example", incoming("m-1")), wire.StatusDelivered, 3)
	rt.Wait()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	s.login(bob, 1)
	rt, st = receiver(t, path, s)
	defer st.Close()
	defer rt.Wait()
	again := rt.Receive(t.Context(), "alpha.example", "beta.example", incoming("m-1"))
	expect(t, again, wire.StatusDelivered, 3) // the first copy's count
	if again.Text != "duplicate" {
		t.Errorf("repeat answered %q, want duplicate", again.Text)
	}
	if n := len(s.received(bob)); n != 1 {
		t.Errorf("bob received %d copies, want 1", n)
	}
	// A message that was not delivered (no such user) is recorded too,
	// and its repeat gets the same answer without a lookup.
	m := incoming("m-2")
	m.To, m.MIME = "nobody@beta.example", []byte("From: alice@alpha.example\r\nTo: nobody@beta.example\r\n\r\nx")
	expect(t, rt.Receive(t.Context(), "alpha.example", "beta.example", m), wire.StatusUnknownUser, 0)
}
