package client

import (
	"context"
	"testing"
	"time"

	"github.com/imxproject/imx/wire"
)

// benchPair logs bob and alice in; alice's messages are drained.
func benchPair(b *testing.B) (bob *Client, ctx context.Context) {
	be := startBackend(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	alice, bob := dial(b, be), dial(b, be)
	if _, err := alice.Login(ctx, "alice@alpha.example", "alice pw", false); err != nil {
		b.Fatal(err)
	}
	if _, err := bob.Login(ctx, "bob@alpha.example", "bob pw", false); err != nil {
		b.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range alice.Messages() {
		}
	}()
	b.Cleanup(func() { _ = alice.Close(); <-drained })
	return bob, ctx
}

// BenchmarkSendRoundTrip: one session sends to a user with one online
// session, through c2s and the test router over loopback, waiting for each
// final RESULT before the next SEND. The recipient's client acknowledges
// each MESSAGE.
//
//	go test -run '^$' -bench SendRoundTrip -benchtime 5s ./client
func BenchmarkSendRoundTrip(b *testing.B) {
	bob, ctx := benchPair(b)
	b.ReportAllocs()
	for b.Loop() {
		res, err := bob.Send(ctx, "alice@alpha.example", "", "Hello Alice, this is a benchmark.")
		if err != nil || res.Code != wire.StatusDelivered {
			b.Fatalf("%+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "round-trips/s")
}

// BenchmarkSendPipelined is BenchmarkSendRoundTrip with 64 SENDs in flight
// on the one session (the server's default limit per session).
func BenchmarkSendPipelined(b *testing.B) {
	bob, ctx := benchPair(b)
	b.ReportAllocs()
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := bob.Send(ctx, "alice@alpha.example", "", "Hello Alice, this is a benchmark.")
			if err != nil || res.Code != wire.StatusDelivered {
				b.Errorf("%+v, %v", res, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "round-trips/s")
}
