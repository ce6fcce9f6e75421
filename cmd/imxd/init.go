package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/config"
)

// writeInit writes dir/imxd.toml for domain and creates its data directory.
// It never overwrites an existing configuration.
func writeInit(domain, dir string) (path, dataDir string, err error) {
	d, err := addr.ParseDomain(domain)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "imxd.toml")
	dataDir = filepath.Join(dir, "imx-data")
	if _, err := os.Stat(path); err == nil {
		return "", "", fmt.Errorf("%s exists; not overwriting it", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", err
	}
	if _, err := f.Write(config.Template(d, abs)); err != nil {
		f.Close()
		return "", "", err
	}
	return path, abs, f.Close()
}
