package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// savedSession is the content of session.json.
type savedSession struct {
	Server  string    `json:"server"`
	User    string    `json:"user"`
	Token   []byte    `json:"token"` // base64 in JSON
	Expires time.Time `json:"expires"`
}

// errNotLoggedIn: there is no saved session.
var errNotLoggedIn = errors.New("not logged in: run imx login SERVER-URL USER")

// sessionPath returns the path of session.json: $XDG_CONFIG_HOME/imx, or
// ~/.config/imx when XDG_CONFIG_HOME is not set.
func sessionPath(e *env) (string, error) {
	dir := e.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := e.getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set")
		}
		dir = filepath.Join(home, ".config")
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("config directory %q is not an absolute path", dir)
	}
	return filepath.Join(dir, "imx", "session.json"), nil
}

func loadSession(e *env) (savedSession, error) {
	var s savedSession
	path, err := sessionPath(e)
	if err != nil {
		return s, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, errNotLoggedIn
	}
	if err != nil {
		return s, fmt.Errorf("read the session: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("read the session %s: %w", path, err)
	}
	if s.Server == "" || s.User == "" || len(s.Token) == 0 {
		return s, fmt.Errorf("the session %s is incomplete; run imx login again", path)
	}
	return s, nil
}

// saveSession writes session.json with mode 0600 (its directory 0700),
// atomically: a reader sees the old file or the new one.
func saveSession(e *env, s savedSession) (string, error) {
	path, err := sessionPath(e)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("save the session: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", fmt.Errorf("save the session: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".session-*.json")
	if err != nil {
		return "", fmt.Errorf("save the session: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", fmt.Errorf("save the session: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return "", fmt.Errorf("save the session: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("save the session: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("save the session: %w", err)
	}
	return path, nil
}

// removeSession deletes session.json and reports whether there was one.
func removeSession(e *env) (bool, error) {
	path, err := sessionPath(e)
	if err != nil {
		return false, err
	}
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove the session: %w", err)
	}
	return true, nil
}
