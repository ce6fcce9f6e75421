package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

// More addresses of the presence tests: remote users and a remote domain.
var (
	dave = addr.MustParse("dave@beta.example")
	erin = addr.MustParse("erin@gamma.example")
)

func wantContacts(t *testing.T, s store.Store, owner addr.Address, want ...store.Contact) {
	t.Helper()
	got, err := s.ListContacts(t.Context(), owner)
	must(t, "ListContacts", err)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ListContacts(%s) = %v, want %v", owner, got, want)
	}
	if n, err := s.CountContacts(t.Context(), owner); err != nil || n != len(want) {
		t.Fatalf("CountContacts(%s) = %d, %v; want %d", owner, n, err, len(want))
	}
}

var contactTests = []subtest{
	{"PutGetList", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		// Added out of order; listed by address.
		cs := []store.Contact{
			{Owner: alice, Contact: dave, Alias: "Dave", State: store.ContactAsked},
			{Owner: alice, Contact: bob, Alias: "", State: store.ContactApproved},
			{Owner: alice, Contact: carol, Alias: "Carol ✓", State: store.ContactDenied},
		}
		for _, c := range cs {
			must(t, "PutContact", s.PutContact(ctx, c))
		}
		wantContacts(t, s, alice, cs[1], cs[2], cs[0])
		wantContacts(t, s, bob)
		got, err := s.GetContact(ctx, alice, carol)
		must(t, "GetContact", err)
		if got != cs[2] {
			t.Fatalf("GetContact = %+v, want %+v", got, cs[2])
		}
		_, err = s.GetContact(ctx, bob, carol)
		wantErr(t, "GetContact of another owner's contact", err, store.ErrNotFound)

		// A second put replaces alias and state.
		upd := store.Contact{Owner: alice, Contact: dave, Alias: "D.", State: store.ContactApproved}
		must(t, "PutContact again", s.PutContact(ctx, upd))
		wantContacts(t, s, alice, cs[1], cs[2], upd)

		// SetContactState keeps the alias.
		must(t, "SetContactState", s.SetContactState(ctx, alice, dave, store.ContactDenied))
		upd.State = store.ContactDenied
		if got, err := s.GetContact(ctx, alice, dave); err != nil || got != upd {
			t.Fatalf("GetContact after SetContactState = %+v, %v; want %+v", got, err, upd)
		}
		wantErr(t, "SetContactState of an unknown contact", s.SetContactState(ctx, bob, dave, store.ContactApproved), store.ErrNotFound)
	}},
	{"Invalid", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		for name, c := range map[string]store.Contact{
			"zero owner":   {Contact: dave, State: store.ContactAsked},
			"zero contact": {Owner: alice, State: store.ContactAsked},
			"no state":     {Owner: alice, Contact: dave},
			"bad state":    {Owner: alice, Contact: dave, State: "friends"},
		} {
			wantErr(t, "PutContact with "+name, s.PutContact(ctx, c), store.ErrInvalid)
		}
		wantErr(t, "PutContact for an unknown owner",
			s.PutContact(ctx, store.Contact{Owner: bob, Contact: dave, State: store.ContactAsked}), store.ErrNotFound)
		must(t, "PutContact", s.PutContact(ctx, store.Contact{Owner: alice, Contact: dave, State: store.ContactAsked}))
		wantErr(t, "SetContactState with a bad state", s.SetContactState(ctx, alice, dave, "friends"), store.ErrInvalid)
		wantContacts(t, s, alice, store.Contact{Owner: alice, Contact: dave, State: store.ContactAsked})
	}},
	{"Delete", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		a := store.Contact{Owner: alice, Contact: dave, State: store.ContactAsked}
		b := store.Contact{Owner: bob, Contact: dave, State: store.ContactApproved}
		must(t, "PutContact", s.PutContact(ctx, a))
		must(t, "PutContact", s.PutContact(ctx, b))
		must(t, "DeleteContact", s.DeleteContact(ctx, alice, dave))
		wantErr(t, "DeleteContact twice", s.DeleteContact(ctx, alice, dave), store.ErrNotFound)
		wantErr(t, "DeleteContact for an unknown owner", s.DeleteContact(ctx, carol, dave), store.ErrNotFound)
		wantContacts(t, s, alice)
		wantContacts(t, s, bob, b)
	}},
	{"Owners", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, bob, alice, carol)
		for _, owner := range []addr.Address{carol, bob, alice} {
			must(t, "PutContact", s.PutContact(ctx, store.Contact{Owner: owner, Contact: dave, State: store.ContactAsked}))
		}
		must(t, "PutContact", s.PutContact(ctx, store.Contact{Owner: alice, Contact: erin, State: store.ContactAsked}))
		got, err := s.ContactOwners(ctx, dave)
		must(t, "ContactOwners", err)
		if fmt.Sprint(got) != fmt.Sprint([]addr.Address{alice, bob, carol}) {
			t.Fatalf("ContactOwners(dave) = %v, want [alice bob carol]", got)
		}
		got, err = s.ContactOwners(ctx, addr.MustParse("nobody@beta.example"))
		if err != nil || len(got) != 0 {
			t.Fatalf("ContactOwners of an address nobody has = %v, %v; want none", got, err)
		}
	}},
	{"CascadeOnAccountDeletion", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		must(t, "PutContact", s.PutContact(ctx, store.Contact{Owner: alice, Contact: dave, State: store.ContactAsked}))
		must(t, "PutContact", s.PutContact(ctx, store.Contact{Owner: bob, Contact: alice, State: store.ContactApproved}))
		must(t, "DeleteAccount", s.DeleteAccount(ctx, alice))
		wantContacts(t, s, alice)
		if got, err := s.ContactOwners(ctx, dave); err != nil || len(got) != 0 {
			t.Fatalf("ContactOwners after the owner's deletion = %v, %v; want none", got, err)
		}
		// Bob's entry for alice names an address, not an account: it stays.
		wantContacts(t, s, bob, store.Contact{Owner: bob, Contact: alice, State: store.ContactApproved})
		// A new account of the same name starts with an empty list.
		mustCreate(t, s, alice)
		wantContacts(t, s, alice)
	}},
	{"Concurrent", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			wg.Go(func() {
				c := addr.MustParse(fmt.Sprintf("u%02d@beta.example", i))
				errs <- s.PutContact(ctx, store.Contact{Owner: alice, Contact: c, State: store.ContactAsked})
				errs <- s.PutContact(ctx, store.Contact{Owner: alice, Contact: c, Alias: "x", State: store.ContactApproved})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, "concurrent PutContact", err)
		}
		cs, err := s.ListContacts(ctx, alice)
		must(t, "ListContacts", err)
		if len(cs) != n {
			t.Fatalf("%d contacts after %d concurrent adds, want %d", len(cs), n, n)
		}
		for i, c := range cs {
			if want := fmt.Sprintf("u%02d@beta.example", i); c.Contact.String() != want || c.State != store.ContactApproved || c.Alias != "x" {
				t.Fatalf("contact %d = %+v, want %s approved with alias x", i, c, want)
			}
		}
	}},
}
