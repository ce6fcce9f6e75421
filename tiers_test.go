package imx

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/imxproject/imx"

// readTiers parses the tier table between the tiers markers of
// docs/architecture.md: package path (relative to the module) -> tier.
func readTiers(t *testing.T) map[string]int {
	t.Helper()
	doc, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(doc, []byte("<!-- tiers:begin -->"))
	if !ok {
		t.Fatal("docs/architecture.md: no <!-- tiers:begin --> marker")
	}
	table, _, ok := bytes.Cut(rest, []byte("<!-- tiers:end -->"))
	if !ok {
		t.Fatal("docs/architecture.md: no <!-- tiers:end --> marker")
	}
	pkgRE := regexp.MustCompile("`([^`]+)`")
	tiers := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) < 4 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(cells[1]))
		if err != nil {
			continue // header or separator row
		}
		for _, m := range pkgRE.FindAllStringSubmatch(cells[2], -1) {
			tiers[m[1]] = n
		}
	}
	if len(tiers) == 0 {
		t.Fatal("docs/architecture.md: empty tier table")
	}
	return tiers
}

type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Standard     bool
}

func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,TestImports,XTestImports,Standard"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// isStd reports whether an import path belongs to the standard library:
// its first element has no dot.
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// tier0Forbidden are standard packages a pure codec must not import.
var tier0Forbidden = []string{"net", "os", "os/exec", "syscall", "unsafe", "net/http", "time"}

func TestImportTiers(t *testing.T) {
	tiers := readTiers(t)
	pkgs := goList(t, "./...")
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok || from == "" {
			continue
		}
		tier, ok := tiers[from]
		if !ok {
			t.Errorf("package %s is not in the tier table of docs/architecture.md", from)
			continue
		}
		for _, imp := range p.Imports {
			to, ours := rel(imp)
			switch {
			case !ours && tier == 0 && !isStd(imp) && !strings.HasPrefix(imp, "golang.org/x/"):
				t.Errorf("%s (tier 0) imports %s: tier 0 uses the standard library (and golang.org/x) only", from, imp)
			case !ours && tier == 0 && isStd(imp):
				for _, f := range tier0Forbidden {
					if imp == f {
						t.Errorf("%s (tier 0) imports %s: tier 0 does no I/O", from, imp)
					}
				}
			case !ours:
			case to == "imxtest" || to == "internal/testutil":
				t.Errorf("%s imports %s outside a _test.go file", from, to)
			default:
				toTier, known := tiers[to]
				if !known {
					t.Errorf("%s imports %s, which is not in the tier table", from, to)
				} else if toTier > tier {
					t.Errorf("%s (tier %d) imports %s (tier %d): upward import", from, tier, to, toTier)
				}
			}
			if (from == "s2s" && to == "c2s") || (from == "c2s" && to == "s2s") {
				t.Errorf("%s imports %s: s2s and c2s meet through router", from, to)
			}
			if to == "store/sqlite" && from != "server" && !strings.HasPrefix(from, "cmd/") {
				t.Errorf("%s imports store/sqlite: only server wires the concrete store", from)
			}
			if to == "config" && tier < 4 {
				t.Errorf("%s (tier %d) imports config: subsystems take their own Config", from, tier)
			}
		}
	}
}

// TestTierTableParses checks that the table is read as written, so that
// TestImportTiers cannot pass by reading nothing.
func TestTierTableParses(t *testing.T) {
	tiers := readTiers(t)
	for pkg, want := range map[string]int{"wire": 0, "addr": 0, "discovery": 1, "s2s": 3, "server": 4, "cmd/imxd": 5} {
		if got, ok := tiers[pkg]; !ok || got != want {
			t.Errorf("tier of %s = %d (listed %v), want %d", pkg, got, ok, want)
		}
	}
	if !isStd("net/http") || isStd("golang.org/x/net/idna") || isStd(module+"/wire") {
		t.Error("isStd misclassifies import paths")
	}
}
