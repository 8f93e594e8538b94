package policy

import (
	"os"
	"strings"
	"testing"

	"github.com/tapgate/tapgate/gate"
)

// TestReadmePolicy keeps the README's policy example valid: it is what
// people copy.
func TestReadmePolicy(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## Policies\n")
	if !ok {
		t.Fatal("README has no Policies section")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	if !ok {
		t.Fatal("the Policies section has no yaml example")
	}
	doc, _, _ := strings.Cut(rest, "```")
	p, err := Parse("README.md", []byte(doc))
	if err != nil {
		t.Fatalf("the README's policy example is invalid:\n%v", err)
	}
	var kinds []gate.RuleKind
	for _, r := range p.Rules {
		kinds = append(kinds, r.Kind)
	}
	if p.Decision != gate.Sequential || len(p.Targets) != 2 || len(kinds) == 0 || kinds[len(kinds)-1] != gate.CompareErrorRate {
		t.Errorf("the README's example no longer shows the decision knobs and a compare rule: %+v", p)
	}
}
