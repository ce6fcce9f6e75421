package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// The benchmarks of docs/storage.md. Run them with
//
//	go test -run '^$' -bench . -benchtime 2s ./store/sqlite/

func opsPerSecond(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func msgID(n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("bench-"), n)
}

// BenchmarkClaim measures the receive path of deduplication: Claim of a new
// id (one write transaction), and Claim followed by SettleClaim (two), from
// one goroutine and from many at once.
func BenchmarkClaim(b *testing.B) {
	ctx := context.Background()
	now := t0()
	r := store.Result{Status: wire.StatusDelivered, Count: 1}
	for _, settle := range []bool{false, true} {
		name := "Claim"
		if settle {
			name = "ClaimSettle"
		}
		b.Run(name, func(b *testing.B) {
			s := newStore(b, Options{})
			var n uint64
			for b.Loop() {
				n++
				id := msgID(n)
				if _, _, err := s.Claim(ctx, "beta.example", id, now); err != nil {
					b.Fatal(err)
				}
				if settle {
					if err := s.SettleClaim(ctx, "beta.example", id, r); err != nil {
						b.Fatal(err)
					}
				}
			}
			opsPerSecond(b)
		})
		b.Run(name+"Parallel", func(b *testing.B) {
			s := newStore(b, Options{})
			var n atomic.Uint64
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := msgID(n.Add(1))
					if _, _, err := s.Claim(ctx, "beta.example", id, now); err != nil {
						b.Error(err)
						return
					}
					if settle {
						if err := s.SettleClaim(ctx, "beta.example", id, r); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
			opsPerSecond(b)
		})
	}
}

// BenchmarkOutboxPutDone measures the outbox of a message that is delivered
// at the first attempt: PutOutbox of a 300-byte message, then DoneOutbox.
func BenchmarkOutboxPutDone(b *testing.B) {
	ctx := context.Background()
	s := newStore(b, Options{})
	from, to := addr.MustParse("alice@alpha.example"), addr.MustParse("carol@beta.example")
	mime := make([]byte, 300)
	var n uint64
	for b.Loop() {
		n++
		e := store.OutboxEntry{ID: msgID(n), From: from, To: to, MIME: mime, Created: t0(), NextAttempt: t0()}
		if err := s.PutOutbox(ctx, e); err != nil {
			b.Fatal(err)
		}
		if err := s.DoneOutbox(ctx, e.ID); err != nil {
			b.Fatal(err)
		}
	}
	opsPerSecond(b)
}

// BenchmarkAuthenticate measures a login with the default argon2id
// parameters (m=19 MiB, t=2, p=1): almost all of it is the hash.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	s := newStore(b, Options{Password: store.DefaultPasswordParams})
	alice := addr.MustParse("alice@alpha.example")
	if err := s.CreateAccount(ctx, alice, "correct horse battery staple"); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		user addr.Address
		pw   string
	}{
		{"Match", alice, "correct horse battery staple"},
		{"Unknown", addr.MustParse("bob@alpha.example"), "correct horse battery staple"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				s.Authenticate(ctx, c.user, c.pw)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
		})
	}
}

// BenchmarkRenewSubIn measures a renewal (PutSubIn of a subscription that
// exists) at the presentity's server while the presentity's subscriptions
// are held in memory (after an ActiveSubsIn), for a presentity with 100
// and with 10,000 watchers: the cost must not grow with the watchers.
func BenchmarkRenewSubIn(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			s := newStore(b, Options{})
			alice := addr.MustParse("alice@alpha.example")
			if err := s.CreateAccount(ctx, alice, "password"); err != nil {
				b.Fatal(err)
			}
			subs := make([]store.SubIn, n)
			for i := range subs {
				subs[i] = store.SubIn{Presentity: alice, Watcher: addr.MustParse(fmt.Sprintf("w%d@beta.example", i)), Expires: t0().Add(time.Hour), Active: true}
				if err := s.PutSubIn(ctx, subs[i]); err != nil {
					b.Fatal(err)
				}
			}
			if got, err := s.ActiveSubsIn(ctx, alice, t0()); err != nil || len(got) != n {
				b.Fatalf("ActiveSubsIn = %d subscriptions, %v; want %d", len(got), err, n)
			}
			i := 0
			for b.Loop() {
				sub := subs[i%n]
				sub.Expires = sub.Expires.Add(time.Minute)
				subs[i%n] = sub
				if err := s.PutSubIn(ctx, sub); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.StopTimer()
			if got, err := s.ActiveSubsIn(ctx, alice, t0().Add(time.Hour)); err != nil || len(got) != min(i, n) {
				b.Fatalf("after %d renewals, %d subscriptions renewed past the first hour, %v", i, len(got), err)
			}
		})
	}
}

// BenchmarkCommit measures single-row write transactions on a bare table
// with synchronous=NORMAL and FULL, both in WAL mode: the measurement
// behind the durability choice of this package.
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run("synchronous="+mode, func(b *testing.B) {
			abs := filepath.Join(b.TempDir(), "commit.db")
			db, err := sql.Open("sqlite", dsn(abs, url.Values{
				"_journal_mode": {"WAL"},
				"_synchronous":  {mode},
				"_txlock":       {"immediate"},
			}))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB) STRICT`); err != nil {
				b.Fatal(err)
			}
			v := make([]byte, 64)
			for b.Loop() {
				if _, err := db.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, v); err != nil {
					b.Fatal(err)
				}
			}
			opsPerSecond(b)
		})
	}
}
