package c2s

import (
	"context"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/internal/testutil"
	"github.com/imxproject/imx/wire"
)

// contactBook is a small in-process Presence: contacts in a map, and a log
// of the session counts and logins it was told about.
type contactBook struct {
	mu       sync.Mutex
	contacts map[addr.Address][]string
	presence map[addr.Address]wire.Presence
	sessions []int
	logins   int
	h        *Handler
}

func (b *contactBook) AddContact(_ context.Context, owner, contact addr.Address, alias string) wire.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.contacts[owner] = append(b.contacts[owner], contact.String()+" asked "+alias)
	return wire.StatusOK
}

func (b *contactBook) RemoveContact(context.Context, addr.Address, addr.Address) wire.Status {
	return wire.StatusNotSubscribed
}

func (b *contactBook) ContactList(_ context.Context, owner addr.Address) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.contacts[owner]...), nil
}

func (b *contactBook) Approve(context.Context, addr.Address, addr.Address, bool) wire.Status {
	return wire.StatusOK
}

func (b *contactBook) Block(context.Context, addr.Address, string, bool) wire.Status {
	return wire.StatusOK
}

func (b *contactBook) SetPresence(_ context.Context, user addr.Address, p wire.Presence, _ string) {
	b.mu.Lock()
	b.presence[user] = p
	b.mu.Unlock()
}

func (b *contactBook) SessionsChanged(_ context.Context, _ addr.Address, n int) {
	b.mu.Lock()
	b.sessions = append(b.sessions, n)
	b.mu.Unlock()
}

func (b *contactBook) Attributes(_ context.Context, requester addr.Address, target string, _ []string) wire.Record {
	if target == "nobody@alpha.example" {
		return &wire.Result{Code: wire.StatusUnknownUser}
	}
	return &wire.Attrs{Target: target, Attrs: []wire.Attr{{Name: "asked-by", Value: requester.String()}}}
}

func (b *contactBook) LoggedIn(ctx context.Context, user addr.Address) {
	b.mu.Lock()
	b.logins++
	b.mu.Unlock()
	// What a presence service does at login: push a pending request.
	b.h.Push(ctx, user, &wire.Request{Watcher: "carol@alpha.example", Alias: "Carol"})
}

// TestPresenceRecords: the contact and presence records reach the
// Presence, with their answers, and logins and logouts are reported.
func TestPresenceRecords(t *testing.T) {
	book := &contactBook{contacts: map[addr.Address][]string{}, presence: map[addr.Address]wire.Presence{}}
	srv := startServer(t, func(c *Config) { c.Presence = book })
	book.h = srv.h
	c := loggedIn(t, srv, alice, "alice pw")
	if r, ok := c.mustRead().(*wire.Request); !ok || r.Watcher != "carol@alpha.example" {
		t.Fatalf("no REQUEST pushed at login")
	}
	c.write(&wire.ContactAdd{Head: wire.Head{Tag: 10}, Address: "bob@beta.example", Alias: "Bob"})
	c.expectResult(10, wire.StatusOK)
	c.write(&wire.ContactRemove{Head: wire.Head{Tag: 11}, Address: "nobody@beta.example"})
	c.expectResult(11, wire.StatusNotSubscribed)
	c.write(&wire.ContactAdd{Head: wire.Head{Tag: 12}, Address: "not an address"})
	c.expectResult(12, wire.StatusBadRequest)
	c.write(&wire.Contacts{Head: wire.Head{Tag: 13}})
	rec := c.mustRead()
	if l, ok := rec.(*wire.ContactList); !ok || l.Tag != 13 || len(l.Contacts) != 1 || l.Contacts[0] != "bob@beta.example asked Bob" {
		t.Fatalf("CONTACTS answered %#v", rec)
	}
	c.write(&wire.GetAttrs{Head: wire.Head{Tag: 15}, Requester: alice.String(), Target: "bob@beta.example"})
	if a, ok := c.mustRead().(*wire.Attrs); !ok || a.Tag != 15 || len(a.Attrs) != 1 || a.Attrs[0].Value != alice.String() {
		t.Fatalf("GET-ATTRIBUTES answered %#v", a)
	}
	c.write(&wire.GetAttrs{Head: wire.Head{Tag: 16}, Requester: alice.String(), Target: "nobody@alpha.example"})
	c.expectResult(16, wire.StatusUnknownUser)
	c.write(&wire.PresenceSet{Head: wire.Head{Tag: 14}, Presence: wire.PresenceAway, Status: "lunch"})
	c.expectResult(14, wire.StatusOK)
	book.mu.Lock()
	if book.presence[alice] != wire.PresenceAway {
		t.Errorf("presence %v", book.presence[alice])
	}
	book.mu.Unlock()
	_ = c.ws.Close(websocket.StatusNormalClosure, "bye")
	testutil.WaitFor(t, "logout reported", func() bool {
		book.mu.Lock()
		defer book.mu.Unlock()
		return len(book.sessions) == 2 && book.sessions[0] == 1 && book.sessions[1] == 0 && book.logins == 1
	})
}
