package sqlite

import (
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
)

func TestSchemaVersion(t *testing.T) {
	if v := SchemaVersion(); v != 4 {
		t.Fatalf("SchemaVersion() = %d, want 4", v)
	}
}

// TestUpgradeFromVersion1 makes a database at schema 1 with data in it, as
// imxd before presence left it, then opens it: migration 0002 adds the
// presence tables, keeps the data, and the new tables work, foreign keys
// and all.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "imx.db")
	alice := addr.MustParse("alice@alpha.example")
	dave := addr.MustParse("dave@beta.example")

	// Version 1, through the same writer settings as Open.
	w, err := sql.Open("sqlite", dsn(path, map[string][]string{"_foreign_keys": {"on"}, "_journal_mode": {"WAL"}}))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := fs.ReadFile(migrationFiles, "migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, w, fstest.MapFS{"migrations/0001_init.sql": {Data: v1}}); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	hash, err := store.HashPassword("pw", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO accounts (domain, local, password) VALUES (?, ?, ?)`,
		alice.Domain(), alice.Local(), hash); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := w.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil || v != 1 {
		t.Fatalf("schema version %d, %v; want 1", v, err)
	}
	var n int
	if err := w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'contacts'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a version 1 database has a contacts table: %d, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	s := openAt(t, path, Options{})
	defer s.Close()
	if err := s.r.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil || v != SchemaVersion() {
		t.Fatalf("schema version after Open %d, %v; want %d", v, err, SchemaVersion())
	}
	if err := s.Authenticate(ctx, alice, "pw"); err != nil {
		t.Fatalf("the account of version 1 after the upgrade: %v", err)
	}
	if err := s.PutContact(ctx, store.Contact{Owner: alice, Contact: dave, State: store.ContactAsked}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSubOut(ctx, store.SubOut{Watcher: alice, Presentity: dave, Expires: t0().Add(time.Hour), RenewAt: t0()}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserAttr(ctx, alice, "alias", "Alice"); err != nil {
		t.Fatal(err)
	}
	var ok string
	if err := s.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check = %q, %v", ok, err)
	}
	if err := s.r.QueryRowContext(ctx, `PRAGMA foreign_key_check`).Scan(&ok); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("foreign_key_check: %v", err)
	}
	if err := s.DeleteAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"contacts", "subs_out", "user_attrs"} {
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after the account's deletion: %d rows, %v", table, n, err)
		}
	}
}

// TestCheckConstraints: the schema itself refuses states the code would
// never write, so a row written by hand (the sqlite3 shell) cannot hold one.
func TestCheckConstraints(t *testing.T) {
	s := newStore(t, Options{})
	ctx := t.Context()
	alice := addr.MustParse("alice@alpha.example")
	if err := s.CreateAccount(ctx, alice, "pw"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO contacts (account, contact, state) SELECT id, 'd@beta.example', 'friends' FROM accounts`,
		`INSERT INTO approvals (account, watcher, state, asked_at) SELECT id, 'd@beta.example', 'maybe', 0 FROM accounts`,
		`INSERT INTO subs_in (account, watcher_domain, watcher_local, expires, active) SELECT id, 'beta.example', 'd', 0, 2 FROM accounts`,
		`INSERT INTO contacts (account, contact, state) VALUES (999, 'd@beta.example', 'asked')`,
		`INSERT INTO user_attrs (account, name, value) SELECT id, 'alias', '' FROM accounts`,
		`INSERT INTO user_attrs (account, name, value) SELECT id, '', 'x' FROM accounts`,
		`INSERT INTO user_attrs (account, name, value) VALUES (999, 'alias', 'x')`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: accepted", q)
		}
	}
}
