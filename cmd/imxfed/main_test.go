package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoBinary builds imxfed and runs it as a real process, as the README
// tells a newcomer to: two domains must find each other, authenticate, and
// deliver a message each way.
func TestDemoBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "imxfed")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-once").CombinedOutput()
	if err != nil {
		t.Fatalf("imxfed -once: %v\n%s", err, out)
	}
	for _, want := range []string{
		`beta.localhost received from alice@alpha.localhost (authenticated domain alpha.localhost): "Hello Bob!"`,
		`alice@alpha.localhost → bob@beta.localhost: "Hello Bob!": delivered`,
		`alpha.localhost received from bob@beta.localhost (authenticated domain beta.localhost)`,
		`bob@beta.localhost → alice@alpha.localhost: "Hi Alice, loud and clear.": delivered`,
		"dial-backs: alpha.localhost ran 0 as receiver, beta.localhost ran 1",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "level=ERROR") {
		t.Errorf("errors logged:\n%s", out)
	}
}
