package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/imxproject/imx/store"
)

// sameSession reports whether two sessions are equal, times by Equal.
func sameSession(a, b store.Session) bool {
	return a.ID == b.ID && a.User == b.User && a.Client == b.Client &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}

var sessionTests = []subtest{
	{"CreateAndLookup", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		in := store.Session{ID: "ignored", User: alice, Client: "imx-cli/0.1", Created: t0, Expires: at(time.Hour)}
		tok, got, err := s.CreateSession(ctx, in)
		must(t, "CreateSession", err)
		if len(tok) != store.SessionTokenLen {
			t.Fatalf("token of %d bytes, want %d", len(tok), store.SessionTokenLen)
		}
		if got.ID == "" || got.ID == "ignored" {
			t.Fatalf("CreateSession returned ID %q, want one the store assigned", got.ID)
		}
		in.ID = got.ID
		if !sameSession(got, in) {
			t.Fatalf("CreateSession returned %+v, want %+v", got, in)
		}

		for _, now := range []time.Time{t0.Add(-time.Hour), t0, at(time.Hour - time.Microsecond)} {
			found, err := s.LookupSession(ctx, tok, now)
			must(t, "LookupSession at "+now.String(), err)
			if !sameSession(found, got) {
				t.Fatalf("LookupSession = %+v, want %+v", found, got)
			}
		}
		for _, now := range []time.Time{at(time.Hour), at(48 * time.Hour)} {
			_, err := s.LookupSession(ctx, tok, now)
			wantErr(t, "LookupSession at expiry or later", err, store.ErrNotFound)
		}

		// Unknown tokens, including a token with one bit changed and
		// tokens of other lengths.
		flipped := bytes.Clone(tok)
		flipped[0] ^= 1
		for _, bad := range [][]byte{flipped, nil, {}, tok[:16], append(bytes.Clone(tok), 0)} {
			_, err := s.LookupSession(ctx, bad, t0)
			wantErr(t, "LookupSession of an unknown token", err, store.ErrNotFound)
		}

		tok2, got2, err := s.CreateSession(ctx, in)
		must(t, "second CreateSession", err)
		if bytes.Equal(tok, tok2) || got.ID == got2.ID {
			t.Fatal("two sessions share a token or an id")
		}
	}},
	{"UnknownUser", func(t *testing.T, h *harness) {
		s := h.store(t)
		_, _, err := s.CreateSession(t.Context(), store.Session{User: bob, Created: t0, Expires: at(time.Hour)})
		wantErr(t, "CreateSession for an unknown account", err, store.ErrNotFound)
	}},
	{"List", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		var want []store.Session
		for i, exp := range []time.Duration{3 * time.Hour, time.Hour, 30 * time.Minute, 2 * time.Hour} {
			_, sess, err := s.CreateSession(ctx, store.Session{User: alice, Client: "c", Created: at(time.Duration(i) * time.Minute), Expires: at(exp)})
			must(t, "CreateSession", err)
			if exp > 45*time.Minute {
				want = append(want, sess)
			}
		}
		_, _, err := s.CreateSession(ctx, store.Session{User: bob, Created: t0, Expires: at(time.Hour)})
		must(t, "CreateSession(bob)", err)

		got, err := s.ListSessions(ctx, alice, at(45*time.Minute))
		must(t, "ListSessions", err)
		if len(got) != len(want) {
			t.Fatalf("ListSessions = %+v, want %+v", got, want)
		}
		for i := range got {
			if !sameSession(got[i], want[i]) {
				t.Fatalf("ListSessions[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
		none, err := s.ListSessions(ctx, carol, t0)
		if err != nil || len(none) != 0 {
			t.Fatalf("ListSessions(unknown account) = %v, %v; want none", none, err)
		}
	}},
	{"Delete", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice, bob)
		tok1, s1, err := s.CreateSession(ctx, store.Session{User: alice, Created: t0, Expires: at(time.Hour)})
		must(t, "CreateSession", err)
		tok2, _, err := s.CreateSession(ctx, store.Session{User: alice, Created: t0, Expires: at(time.Hour)})
		must(t, "CreateSession", err)

		wantErr(t, "DeleteSession of another user's session", s.DeleteSession(ctx, bob, s1.ID), store.ErrNotFound)
		wantErr(t, "DeleteSession of an unknown id", s.DeleteSession(ctx, alice, "no such id"), store.ErrNotFound)
		must(t, "DeleteSession", s.DeleteSession(ctx, alice, s1.ID))
		_, err = s.LookupSession(ctx, tok1, t0)
		wantErr(t, "LookupSession of a deleted session", err, store.ErrNotFound)
		_, err = s.LookupSession(ctx, tok2, t0)
		must(t, "LookupSession of the other session", err)
		wantErr(t, "DeleteSession twice", s.DeleteSession(ctx, alice, s1.ID), store.ErrNotFound)

		_, _, err = s.CreateSession(ctx, store.Session{User: alice, Created: t0, Expires: at(time.Hour)})
		must(t, "CreateSession", err)
		tokB, _, err := s.CreateSession(ctx, store.Session{User: bob, Created: t0, Expires: at(time.Hour)})
		must(t, "CreateSession(bob)", err)
		n, err := s.DeleteSessions(ctx, alice)
		if err != nil || n != 2 {
			t.Fatalf("DeleteSessions = %d, %v; want 2", n, err)
		}
		_, err = s.LookupSession(ctx, tok2, t0)
		wantErr(t, "LookupSession after DeleteSessions", err, store.ErrNotFound)
		_, err = s.LookupSession(ctx, tokB, t0)
		must(t, "LookupSession of bob after DeleteSessions(alice)", err)
		if n, err := s.DeleteSessions(ctx, alice); err != nil || n != 0 {
			t.Fatalf("DeleteSessions with none left = %d, %v; want 0", n, err)
		}
	}},
	{"Prune", func(t *testing.T, h *harness) {
		s := h.store(t)
		ctx := t.Context()
		mustCreate(t, s, alice)
		var live [][]byte
		for _, exp := range []time.Duration{time.Minute, time.Hour, 2 * time.Hour, 10 * time.Minute} {
			tok, _, err := s.CreateSession(ctx, store.Session{User: alice, Created: t0, Expires: at(exp)})
			must(t, "CreateSession", err)
			if exp >= time.Hour {
				live = append(live, tok)
			}
		}
		n, err := s.PruneSessions(ctx, at(time.Hour-time.Microsecond))
		if err != nil || n != 2 {
			t.Fatalf("PruneSessions = %d, %v; want 2", n, err)
		}
		for _, tok := range live {
			_, err := s.LookupSession(ctx, tok, t0)
			must(t, "LookupSession of a live session after PruneSessions", err)
		}
		if n, err := s.PruneSessions(ctx, at(time.Hour)); err != nil || n != 1 {
			t.Fatalf("PruneSessions at the expiry of one = %d, %v; want 1", n, err)
		}
	}},
}
