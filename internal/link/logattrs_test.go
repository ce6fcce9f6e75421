package link

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestWithAttrs(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := WithAttrs(WithAttrs(base, slog.Int("conn", 7)), slog.String("user", "alice@alpha.example"))
	l.Debug("not shown")
	l.Info("hello", "err", "boom")
	l.WithGroup("g").Info("grouped", "k", "v")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"msg=hello", "err=boom", "conn=7", "user=alice@alpha.example"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %s", lines[0], want)
		}
	}
	for _, want := range []string{"conn=7", "user=alice@alpha.example", "g.k=v"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("line %q lacks %s", lines[1], want)
		}
	}
	if d := slog.New(slog.DiscardHandler); WithAttrs(d, slog.Int("conn", 1)) != d {
		t.Error("a discarding logger was wrapped")
	}
}
