package sqlite

import (
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/wire"
)

// TestUpgradeFromVersion2 makes a database at schema 2 with an account and
// a contact in it, as imxd before user attributes left it, then opens it:
// migration 0003 adds user_attrs, keeps the data, and the new table works,
// its cascade included.
func TestUpgradeFromVersion2(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "imx.db")
	alice := addr.MustParse("alice@alpha.example")
	dave := addr.MustParse("dave@beta.example")

	w, err := sql.Open("sqlite", dsn(path, map[string][]string{"_foreign_keys": {"on"}, "_journal_mode": {"WAL"}}))
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for _, name := range []string{"migrations/0001_init.sql", "migrations/0002_presence.sql"} {
		b, err := fs.ReadFile(migrationFiles, name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	if err := migrate(ctx, w, fsys); err != nil {
		t.Fatalf("migrate to version 2: %v", err)
	}
	hash, err := store.HashPassword("pw", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO accounts (domain, local, password) VALUES (?, ?, ?)`,
		alice.Domain(), alice.Local(), hash); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO contacts (account, contact, alias, state) SELECT id, ?, 'Dave', 'approved' FROM accounts`,
		dave.String()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'user_attrs'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a version 2 database has a user_attrs table: %d, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	s := openAt(t, path, Options{})
	defer s.Close()
	var v int
	if err := s.r.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil || v != SchemaVersion() {
		t.Fatalf("schema version after Open %d, %v; want %d", v, err, SchemaVersion())
	}
	if c, err := s.GetContact(ctx, alice, dave); err != nil || c.Alias != "Dave" || c.State != store.ContactApproved {
		t.Fatalf("the contact of version 2 after the upgrade: %+v, %v", c, err)
	}
	if err := s.SetUserAttr(ctx, alice, "alias", "Alice"); err != nil {
		t.Fatal(err)
	}
	if as, err := s.GetUserAttrs(ctx, alice); err != nil || len(as) != 1 || as[0] != (wire.Attr{Name: "alias", Value: "Alice"}) {
		t.Fatalf("GetUserAttrs = %v, %v", as, err)
	}
	var ok string
	if err := s.r.QueryRowContext(ctx, `PRAGMA foreign_key_check`).Scan(&ok); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("foreign_key_check: %v", err)
	}
	if err := s.DeleteAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM user_attrs`).Scan(&n); err != nil || n != 0 {
		t.Errorf("user_attrs after the account's deletion: %d rows, %v", n, err)
	}
}
