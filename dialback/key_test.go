package dialback

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

func TestNewKey(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || len(b) != KeySize {
		t.Fatalf("key sizes %d, %d, want %d", len(a), len(b), KeySize)
	}
	if bytes.Equal(a, b) {
		t.Error("two new keys are equal")
	}
	if _, err := NewIssuer(a, IssuerConfig{}); err != nil {
		t.Errorf("NewIssuer refuses a new key: %v", err)
	}
}

func TestLoadOrCreateKeyCreates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dialback.key")
	key, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != KeySize {
		t.Fatalf("len(key) = %d, want %d", len(key), KeySize)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(key) + "\n"; string(text) != want {
		t.Errorf("file holds %q, want %q", text, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, key) {
		t.Error("second LoadOrCreateKey returned another key")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only the key file", names)
	}
}

func TestLoadOrCreateKeyReads(t *testing.T) {
	good := hex.EncodeToString(testKey())
	tests := []struct {
		name    string
		content string
		wantErr error
	}{
		{"hex and newline", good + "\n", nil},
		{"hex alone", good, nil},
		{"surrounding space", "  " + good + "\r\n\n", nil},
		{"upper case hex", hexUpper(good), nil},
		{"empty", "", ErrBadKey},
		{"not hex", "zz" + good[2:], ErrBadKey},
		{"odd length", good[1:], ErrBadKey},
		{"short", good[:62], ErrBadKey},
		{"long", good + "00", ErrBadKey},
		{"raw bytes", string(testKey()), ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dialback.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := LoadOrCreateKey(path)
			if !matchErr(err, tt.wantErr) {
				t.Fatalf("LoadOrCreateKey error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(key, testKey()) {
				t.Errorf("key = %x, want %x", key, testKey())
			}
			if err != nil {
				assertNoSecret(t, err, testKey())
				// A bad file is reported, never replaced.
				if text, _ := os.ReadFile(path); string(text) != tt.content {
					t.Error("a bad key file was overwritten")
				}
			}
		})
	}
}

func hexUpper(s string) string {
	return string(bytes.ToUpper([]byte(s)))
}

func TestLoadOrCreateKeyErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateKey(filepath.Join(dir, "missing", "dialback.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: error = %v, want fs.ErrNotExist", err)
	}
	// A directory where the file should be.
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Error("a directory as key file: no error")
	}
	if err := writeKeyExclusive(filepath.Join(dir, "k"), testKey()); err != nil {
		t.Fatal(err)
	}
	if err := writeKeyExclusive(filepath.Join(dir, "k"), testKey()); !errors.Is(err, fs.ErrExist) {
		t.Errorf("writing over an existing key: error = %v, want fs.ErrExist", err)
	}
}

// TestLoadOrCreateKeyRace starts several loaders on one missing file: they
// must all return the same key, the one in the file.
func TestLoadOrCreateKeyRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dialback.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	onDisk, err := readKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("loader %d: %v", i, errs[i])
		} else if !bytes.Equal(keys[i], onDisk) {
			t.Errorf("loader %d returned a key that is not the one on disk", i)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file", len(entries))
	}
}
