package s2s

import (
	"fmt"
	"testing"
)

// TestDomainLabelsBounded: beyond MaxDomainLabels remote domains, the
// label is "other"; the domains named before keep their names.
func TestDomainLabelsBounded(t *testing.T) {
	m := newMetrics(nil)
	for i := range MaxDomainLabels {
		d := fmt.Sprintf("d%d.example", i)
		if got := m.domain(d); got != d {
			t.Fatalf("domain(%s) = %s", d, got)
		}
	}
	if got := m.domain("late.example"); got != otherDomain {
		t.Errorf("domain beyond the bound = %s, want %s", got, otherDomain)
	}
	if got := m.domain("d0.example"); got != "d0.example" {
		t.Errorf("a domain named before the bound = %s", got)
	}
	if got := m.domain(""); got != unknownDomain {
		t.Errorf("empty domain = %s, want %s", got, unknownDomain)
	}
}
