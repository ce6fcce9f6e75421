package c2s

import (
	"context"
	"testing"
	"time"
)

func TestSharedDeadline(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	const d = 640 * time.Millisecond // slices of 10 ms
	s := newSharedDeadline(parent, d)
	if s.slice != 10*time.Millisecond {
		t.Fatalf("slice %v, want 10ms", s.slice)
	}
	before := time.Now()
	a, b := s.get(), s.get()
	after := time.Now()
	if a != b {
		t.Fatal("two SENDs in the same slice got different contexts")
	}
	dl, ok := a.Deadline()
	if !ok {
		t.Fatal("no deadline")
	}
	if dl.Before(before.Add(d)) || dl.After(after.Add(d)) {
		t.Fatalf("deadline %v after the start, want %v", dl.Sub(before), d)
	}
	time.Sleep(s.slice + time.Millisecond)
	c := s.get()
	if c == a {
		t.Fatal("a SEND after the slice got the old context")
	}
	// Every SEND gets at least d-slice: the one that starts last in a
	// slice.
	if cd, _ := c.Deadline(); time.Until(cd) < d-s.slice {
		t.Fatalf("a new SEND has %v left, want at least %v", time.Until(cd), d-s.slice)
	}
	// The deadline ends it by itself; the parent's end ends them all.
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the shared context outlived its deadline")
	}
	if a.Err() != context.DeadlineExceeded {
		t.Fatalf("err %v, want DeadlineExceeded", a.Err())
	}
	cancel()
	<-c.Done()
	if c.Err() != context.Canceled {
		t.Fatalf("after the parent's end: err %v, want Canceled", c.Err())
	}
}

func TestSharedDeadlineLongTimeout(t *testing.T) {
	s := newSharedDeadline(context.Background(), DefaultSendTimeout)
	if s.slice != time.Second {
		t.Fatalf("slice %v for %v, want 1s", s.slice, DefaultSendTimeout)
	}
}
