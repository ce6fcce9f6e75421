package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTemplateIsTheDefaults(t *testing.T) {
	fromTemplate, err := Parse(Template("example.com", "/var/lib/imxd"))
	if err != nil {
		t.Fatalf("the template does not parse: %v", err)
	}
	minimal, err := Parse([]byte("data_dir = \"/var/lib/imxd\"\n[[domain]]\nname = \"example.com\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromTemplate, minimal) {
		t.Errorf("the template's values differ from the defaults:\ntemplate %+v\ndefaults %+v", fromTemplate, minimal)
	}
	if minimal.Federation.DialTimeout.D() != 5*time.Second || minimal.Domains[0].MaxMessageSize != DefaultMaxMessageSize {
		t.Errorf("defaults not applied: %+v", minimal)
	}
}

func TestUnknownKeyNamed(t *testing.T) {
	_, err := Parse([]byte("[[domain]]\nname = \"example.com\"\n\n[federation]\ndial_timeot = \"5s\"\n"))
	var ke *KeyError
	if !errors.As(err, &ke) || !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want an unknown-key KeyError", err)
	}
	if ke.Key != "federation.dial_timeot" || ke.Line != 5 {
		t.Errorf("key %q line %d, want federation.dial_timeot line 5", ke.Key, ke.Line)
	}
	if !strings.Contains(err.Error(), "federation.dial_timeot (line 5): unknown key") {
		t.Errorf("message %q", err)
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		name, file, key string
	}{
		{"bad duration", "[federation]\ndial_timeout = \"5 parsecs\"\n[[domain]]\nname = \"a.example\"\n", "federation.dial_timeout"},
		{"wrong type", "[federation]\nmax_inbound = \"many\"\n[[domain]]\nname = \"a.example\"\n", "federation.max_inbound"},
		{"no domain", "data_dir = \"x\"\n", "domain"},
		{"domain not normal", "[[domain]]\nname = \"Example.COM\"\n", "domain[0].name"},
		{"domain twice", "[[domain]]\nname = \"a.example\"\n[[domain]]\nname = \"a.example\"\n", "domain[1].name"},
		{"ip domain", "[[domain]]\nname = \"127.0.0.1\"\n", "domain[0].name"},
		{"admin not loopback", "[listen]\nadmin = \"0.0.0.0:7481\"\n[[domain]]\nname = \"a.example\"\n", "listen.admin"},
		{"bad listen", "[listen]\nclient = \"localhost\"\n[[domain]]\nname = \"a.example\"\n", "listen.client"},
		{"log level", "[log]\nlevel = \"loud\"\n[[domain]]\nname = \"a.example\"\n", "log.level"},
		{"message size", "[[domain]]\nname = \"a.example\"\nmax_message_size = 10\n", "domain[0].max_message_size"},
		{"backoff order", "[federation]\nmin_backoff = \"1m\"\nmax_backoff = \"1s\"\n[[domain]]\nname = \"a.example\"\n", "federation.max_backoff"},
		{"negative", "[federation]\nmax_conns_per_domain = -1\n[[domain]]\nname = \"a.example\"\n", "federation.max_conns_per_domain"},
		{"client cap", "[clients]\nmax_connections = -5\n[[domain]]\nname = \"a.example\"\n", "clients.max_connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name %s", err, tt.key)
			}
		})
	}
}

// TestAllProblemsReported: validation reports every problem, not the first.
func TestAllProblemsReported(t *testing.T) {
	_, err := Parse([]byte("[log]\nlevel = \"x\"\nformat = \"y\"\n[[domain]]\nname = \"a.example\"\nrate_limit = -1\n"))
	for _, key := range []string{"log.level", "log.format", "domain[0].rate_limit"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imxd.toml")
	if err := os.WriteFile(path, Template("b.example", "data"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DomainNames(); len(got) != 1 || got[0] != "b.example" {
		t.Errorf("domains %v", got)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("a missing file loaded")
	}
}

// keys returns every key of the file format, from the toml tags.
func keys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" {
			continue
		}
		full := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Duration(0)) {
			out = append(out, keys(ft, full+".")...)
			continue
		}
		out = append(out, full)
	}
	return out
}

// TestEveryKeyDocumented: docs/configuration.md names every key, and the
// template shows every key.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := string(Template("example.com", "d"))
	all := keys(reflect.TypeOf(Config{}), "")
	if len(all) < 25 {
		t.Fatalf("found only %d keys: %v", len(all), all)
	}
	for _, k := range all {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/configuration.md does not document `%s`", k)
		}
		leaf := k[strings.LastIndexByte(k, '.')+1:]
		if !strings.Contains(tmpl, "\n"+leaf+" = ") {
			t.Errorf("the template does not show %s", k)
		}
	}
}
