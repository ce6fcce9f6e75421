package router

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
)

// TestMessageID: the id of a message is the same for the same sender and
// client id (so a repeated SEND is caught), differs between senders, and
// starts with a time, so that the receiver's dedup index grows at its end.
func TestMessageID(t *testing.T) {
	alice, bob := addr.MustParse("alice@alpha.example"), addr.MustParse("bob@alpha.example")
	now := time.UnixMilli(0x0102_0304_0506)
	cid := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 'r', 'a', 'n', 'd'}
	a1, a2 := messageID(alice, cid, now), messageID(alice, cid, now.Add(time.Hour))
	if !bytes.Equal(a1, a2) || len(a1) != 16 {
		t.Fatalf("same client id gave %x and %x", a1, a2)
	}
	if !bytes.Equal(a1[:6], cid[:6]) {
		t.Errorf("id %x does not start with the client id's time %x", a1, cid[:6])
	}
	// The rest is the start of SHA-256 of the sender, a zero octet and the
	// client id: it must not change between versions, or a SEND repeated
	// to an upgraded server would be delivered twice.
	if sum := sha256.Sum256([]byte("alice@alpha.example\x00\x01\x02\x03\x04\x05\x06rand")); !bytes.Equal(a1[6:], sum[:10]) {
		t.Errorf("id %x, want the hash %x after the time", a1, sum[:10])
	}
	if b := messageID(bob, cid, now); bytes.Equal(a1, b) || !bytes.Equal(a1[:6], b[:6]) {
		t.Errorf("two senders, one client id: %x and %x", a1, b)
	}
	if other := messageID(alice, append(cid[:6:6], 'x'), now); bytes.Equal(a1, other) {
		t.Error("two client ids with one time gave one id")
	}
	// No client id: random, after this server's clock.
	r1, r2 := messageID(alice, nil, now), messageID(alice, nil, now)
	if bytes.Equal(r1, r2) || !bytes.Equal(r1[:6], []byte{1, 2, 3, 4, 5, 6}) {
		t.Errorf("ids without a client id: %x, %x", r1, r2)
	}
	// A short client id is padded with zeros.
	if s := messageID(alice, []byte{7}, now); !bytes.Equal(s[:6], []byte{7, 0, 0, 0, 0, 0}) {
		t.Errorf("short client id gave %x", s)
	}
}
