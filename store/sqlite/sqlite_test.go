package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// cheap are argon2 parameters that make tests fast: 64 KiB, one pass.
var cheap = store.PasswordParams{Memory: 64, Time: 1, Threads: 1}

// openAt opens the store at path with cheap passwords, failing t on error.
func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	if opts.Password == (store.PasswordParams{}) {
		opts.Password = cheap
	}
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newStore opens a new store in a fresh directory and closes it when t ends.
func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s := openAt(t, filepath.Join(t.TempDir(), "imx.db"), opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) store.Store {
			return openAt(t, filepath.Join(t.TempDir(), "imx.db"), Options{})
		},
		storetest.Reopen(func(t *testing.T, s store.Store) store.Store {
			path := s.(*Store).Path()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openAt(t, path, Options{})
		}),
	)
}

// TestPathWithSpecialCharacters checks that the file: URI escapes the path.
func TestPathWithSpecialCharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars&_txlock=x")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "imx.db")
	s := openAt(t, path, Options{})
	defer s.Close()
	if err := s.CreateAccount(t.Context(), addr.MustParse("a@b.example"), "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
}

func TestPragmas(t *testing.T) {
	s := newStore(t, Options{})
	for _, c := range []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.w, "journal_mode", "wal"},
		{s.r, "journal_mode", "wal"},
		{s.w, "synchronous", "1"}, // NORMAL
		{s.w, "foreign_keys", "1"},
		{s.w, "busy_timeout", "5000"},
		{s.r, "busy_timeout", "5000"},
		{s.r, "query_only", "1"},
		{s.w, "query_only", "0"},
	} {
		var got string
		if err := c.db.QueryRowContext(t.Context(), "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			name := "writer"
			if c.db == s.r {
				name = "reader"
			}
			t.Errorf("%s: PRAGMA %s = %s, want %s", name, c.pragma, got, c.want)
		}
	}
	if got := s.w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool allows %d connections, want 1", got)
	}
	if got := s.r.Stats().MaxOpenConnections; got != DefaultReaders {
		t.Errorf("reader pool allows %d connections, want %d", got, DefaultReaders)
	}
}

func TestReadersRefuseWrites(t *testing.T) {
	s := newStore(t, Options{})
	_, err := s.r.ExecContext(t.Context(), `DELETE FROM accounts`)
	if err == nil {
		t.Fatal("a write on the read pool succeeded")
	}
}

func TestMigrationsFromEmpty(t *testing.T) {
	s := newStore(t, Options{})
	rows, err := s.r.QueryContext(t.Context(), `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
		if !strings.HasPrefix(name, "000") {
			t.Errorf("migration %d is named %q", v, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(versions) != SchemaVersion() || versions[len(versions)-1] != SchemaVersion() {
		t.Fatalf("applied versions %v, want 1 to %d", versions, SchemaVersion())
	}
	for _, table := range []string{"accounts", "sessions", "claims", "outbox", "offline",
		"contacts", "approvals", "blocks", "subs_in", "subs_out", "user_attrs"} {
		var n int
		if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: %d, %v", table, n, err)
		}
	}
	// The schema passes SQLite's own consistency checks.
	var ok string
	if err := s.r.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check = %q, %v", ok, err)
	}
	if err := s.r.QueryRowContext(t.Context(), `PRAGMA foreign_key_check`).Scan(&ok); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("foreign_key_check: %v", err)
	}
}

func TestReopenKeepsSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imx.db")
	for range 3 {
		s := openAt(t, path, Options{})
		var n int
		if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != SchemaVersion() {
			t.Fatalf("schema_migrations has %d rows, want %d", n, SchemaVersion())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imx.db")
	s := openAt(t, path, Options{})
	next := SchemaVersion() + 1
	if _, err := s.w.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied) VALUES (?, '9999_future', 0)`, next); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), path, Options{Password: cheap})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{path, "newer", "version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 || m.sql == "" {
			t.Errorf("migration %d: %+v", i, m)
		}
	}
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for name, fsys := range map[string]fstest.MapFS{
		"gap":       {"migrations/0001_a.sql": file("x"), "migrations/0003_c.sql": file("x")},
		"repeat":    {"migrations/0001_a.sql": file("x"), "migrations/0001_b.sql": file("x")},
		"not one":   {"migrations/0002_b.sql": file("x")},
		"bad name":  {"migrations/1_a.sql": file("x")},
		"no number": {"migrations/init.sql": file("x")},
		"empty":     {},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations accepted it", name)
		}
	}
}

// TestMigrateSteps applies migrations from a test file system: an upgrade
// of an existing database by one version, then a migration that fails
// halfway, which must leave neither its tables nor its version behind.
func TestMigrateSteps(t *testing.T) {
	s := newStore(t, Options{})
	ctx := t.Context()
	fsys := fstest.MapFS{}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		data, err := fs.ReadFile(migrationFiles, name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: data}
	}
	next := SchemaVersion() + 1
	fsys[fmt.Sprintf("migrations/%04d_more.sql", next)] = &fstest.MapFile{
		Data: []byte(`CREATE TABLE more (x INTEGER) STRICT; INSERT INTO more VALUES (42);`)}
	if err := migrate(ctx, s.w, fsys); err != nil {
		t.Fatalf("upgrade to version %d: %v", next, err)
	}
	var x int
	if err := s.w.QueryRowContext(ctx, `SELECT x FROM more`).Scan(&x); err != nil || x != 42 {
		t.Fatalf("migration %d did not run: %d, %v", next, x, err)
	}
	if err := migrate(ctx, s.w, fsys); err != nil {
		t.Fatalf("migrating an up-to-date database: %v", err)
	}

	half := fmt.Sprintf("%04d_half", next+1)
	fsys["migrations/"+half+".sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE half (x INTEGER); CREATE TABLE more (y INTEGER);`)}
	err = migrate(ctx, s.w, fsys)
	if err == nil || !strings.Contains(err.Error(), half) {
		t.Fatalf("a failing migration: %v, want an error naming it", err)
	}
	var n, v int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("table of a failed migration: %d, %v", n, err)
	}
	if err := s.w.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil || v != next {
		t.Fatalf("schema version after a failed migration: %d, %v; want %d", v, err, next)
	}
	// The real migrations now find a database newer than they know.
	if err := migrate(ctx, s.w, migrationFiles); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("migrate to an older version: %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for name, c := range map[string]struct {
		path string
		opts Options
	}{
		"empty path":     {"", Options{}},
		"no directory":   {filepath.Join(t.TempDir(), "missing", "imx.db"), Options{}},
		"bad params":     {filepath.Join(t.TempDir(), "imx.db"), Options{Password: store.PasswordParams{Memory: 1, Time: 1, Threads: 1}}},
		"negative pool":  {filepath.Join(t.TempDir(), "imx.db"), Options{Readers: -1}},
		"negative busy":  {filepath.Join(t.TempDir(), "imx.db"), Options{BusyTimeout: -1}},
		"not a database": {notADatabase(t), Options{}},
	} {
		if s, err := Open(t.Context(), c.path, c.opts); err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "store/sqlite: open ") {
			t.Errorf("%s: error %q does not name the operation", name, err)
		}
	}
}

func notADatabase(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "imx.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not sqlite ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPasswordsAtRest checks what the database holds of a password: an
// argon2id hash with the configured parameters, nothing else.
func TestPasswordsAtRest(t *testing.T) {
	s := newStore(t, Options{})
	alice := addr.MustParse("alice@alpha.example")
	if err := s.CreateAccount(t.Context(), alice, "hunter2"); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := s.r.QueryRowContext(t.Context(), `SELECT password FROM accounts`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	h, err := store.ParsePasswordHash(stored)
	if err != nil {
		t.Fatal(err)
	}
	if h.Params != cheap || len(h.Salt) != store.PasswordSaltLen || len(h.Key) != store.PasswordKeyLen {
		t.Fatalf("stored hash %s, want parameters %+v", stored, cheap)
	}
	if strings.Contains(stored, "hunter2") {
		t.Fatal("the password is stored in the clear")
	}
}

// TestRehashOnLogin changes the parameters between two opens: the old hash
// still checks, and a successful login replaces it with one made with the
// new parameters.
func TestRehashOnLogin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imx.db")
	alice := addr.MustParse("alice@alpha.example")
	s := openAt(t, path, Options{})
	if err := s.CreateAccount(t.Context(), alice, "hunter2"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	stronger := store.PasswordParams{Memory: 128, Time: 2, Threads: 2}
	s = openAt(t, path, Options{Password: stronger})
	defer s.Close()
	hash := func() store.PasswordHash {
		var stored string
		if err := s.r.QueryRowContext(t.Context(), `SELECT password FROM accounts`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		h, err := store.ParsePasswordHash(stored)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if err := s.Authenticate(t.Context(), alice, "wrong"); !errors.Is(err, store.ErrBadPassword) {
		t.Fatalf("Authenticate with a wrong password: %v", err)
	}
	if got := hash().Params; got != cheap {
		t.Fatalf("a failed login rehashed: %+v", got)
	}
	if err := s.Authenticate(t.Context(), alice, "hunter2"); err != nil {
		t.Fatal(err)
	}
	if got := hash().Params; got != stronger {
		t.Fatalf("after a login the hash has parameters %+v, want %+v", got, stronger)
	}
	if err := s.Authenticate(t.Context(), alice, "hunter2"); err != nil {
		t.Fatalf("Authenticate with the rehashed password: %v", err)
	}
}

// TestDamagedHash checks that a hash that does not parse is reported as
// ErrBadHash, not as a wrong password, and that nothing panics.
func TestDamagedHash(t *testing.T) {
	s := newStore(t, Options{})
	alice := addr.MustParse("alice@alpha.example")
	if err := s.CreateAccount(t.Context(), alice, "hunter2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(t.Context(), `UPDATE accounts SET password = '$2y$10$bcrypt'`); err != nil {
		t.Fatal(err)
	}
	before := store.HashCount()
	err := s.Authenticate(t.Context(), alice, "hunter2")
	if !errors.Is(err, store.ErrBadHash) {
		t.Fatalf("Authenticate against a damaged hash: %v, want ErrBadHash", err)
	}
	if store.HashCount() == before {
		t.Error("Authenticate against a damaged hash did no hash work")
	}
}

func TestErrorsNameTheOperation(t *testing.T) {
	s := newStore(t, Options{})
	alice := addr.MustParse("alice@alpha.example")
	if err := s.CreateAccount(t.Context(), alice, "pw"); err != nil {
		t.Fatal(err)
	}
	err := s.CreateAccount(t.Context(), alice, "pw")
	if want := "store/sqlite: create account alice@alpha.example: store: already exists"; err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if _, err := s.LookupSession(t.Context(), []byte("secret-token"), t0()); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("LookupSession error %q quotes the token", err)
	}
}

// t0 is the tests' "now".
func t0() time.Time { return time.Date(2000, 6, 15, 12, 0, 0, 0, time.UTC) }

// TestCheckpointsOffTheWriter: the writer does not checkpoint (its
// automatic checkpoint is off) and the checkpointer does: the log is
// copied into the database while the store runs.
func TestCheckpointsOffTheWriter(t *testing.T) {
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "imx.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var auto int
	if err := st.w.QueryRow("PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer wal_autocheckpoint = %d (%v), want 0", auto, err)
	}
	ctx := context.Background()
	for i := range 200 {
		if _, _, err := st.Claim(ctx, "alpha.example", []byte{byte(i), byte(i >> 8)}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// The checkpointer copies the log into the database by itself.
	deadline := time.Now().Add(10 * time.Second)
	for st.checkpoints.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the checkpointer copied nothing in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
