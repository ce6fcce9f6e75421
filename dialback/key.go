package dialback

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// NewKey returns KeySize bytes from crypto/rand, a fresh key for NewIssuer.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("dialback: new key: %w", err)
	}
	return key, nil
}

// LoadOrCreateKey returns the token key stored in the file at path,
// creating the file with a new key (NewKey) if it does not exist. The
// file holds the key as hexadecimal text and a newline, and is created
// with mode 0600; the directory must exist.
//
// Creation is atomic: the key is written and synced to a temporary file in
// the same directory, then linked into place only if path still does not
// exist. A reader never sees a partial file, and when two processes start
// at once both end up with the key that was linked first. The file system
// must support hard links.
//
// The directory is not synced: losing a new key in a crash costs only the
// tokens minted under it, which live DefaultMaxAge at most.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key, err = NewKey()
	if err != nil {
		return nil, err
	}
	if err := writeKeyExclusive(path, key); errors.Is(err, fs.ErrExist) {
		return readKey(path) // another process won the race
	} else if err != nil {
		return nil, err
	}
	return key, nil
}

// readKey reads and decodes a key file.
func readKey(path string) ([]byte, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dialback: read key: %w", err)
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(text)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not hexadecimal", ErrBadKey, path)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: %s: %d bytes, want %d", ErrBadKey, path, len(key), KeySize)
	}
	return key, nil
}

// writeKeyExclusive writes key to path through a temporary file and a hard
// link, failing with an error that wraps fs.ErrExist if path exists.
func writeKeyExclusive(path string, key []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("dialback: create key: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if rmErr := os.Remove(tmp); err == nil && rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			err = fmt.Errorf("dialback: create key: %w", rmErr)
		}
	}()
	// CreateTemp already uses 0600; Chmod states it and survives a change
	// of that default.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("dialback: create key: %w", err)
	}
	text := hex.AppendEncode(nil, key)
	text = append(text, '\n')
	if _, err := f.Write(text); err != nil {
		f.Close()
		return fmt.Errorf("dialback: create key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("dialback: create key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("dialback: create key: %w", err)
	}
	// Link, unlike Rename, never replaces an existing file.
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("dialback: create key: %w", err)
	}
	return nil
}
