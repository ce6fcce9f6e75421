// Package testutil holds the small helpers that the tests of several
// packages share: a TCP pair on loopback, waiting for a condition, a deep
// call, a goroutine's id. It is imported only by _test.go files (TestImportTiers),
// and imports nothing of the project's, so that the lowest tiers' tests
// can use it too.
package testutil

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// WaitFor polls cond every millisecond until it holds, and fails the test
// if it does not within 5 seconds; what says what it waited for.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Deep uses about n×512 bytes of stack, as a deep handler (router, store,
// message parsing) does.
//
//go:noinline
func Deep(n int) byte {
	var pad [480]byte
	pad[n%len(pad)] = byte(n)
	if n <= 0 {
		return pad[0]
	}
	return Deep(n-1) + pad[n%len(pad)]
}

// Goid returns the id of the calling goroutine.
func Goid() string {
	var b [64]byte
	f := strings.Fields(string(b[:runtime.Stack(b[:], false)]))
	return f[1]
}

// TCPPair returns the two ends of a real TCP connection on loopback, both
// closed when the test ends.
func TCPPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
