package policies

import (
	"strings"
	"testing"
)

// Parsing and validation of each policy is tested in gate/policy; this
// checks the embedding itself.
func TestEmbedded(t *testing.T) {
	names := Names()
	if len(names) < 3 {
		t.Fatalf("Names() = %v", names)
	}
	for _, n := range names {
		data, ok := Get(n)
		if !ok || !strings.Contains(string(data), "kind: GatePolicy") || !strings.Contains(string(data), "name: "+n+"\n") {
			t.Errorf("Get(%q): metadata.name must equal the file name", n)
		}
	}
	// Every ready policy writes out how its rules decide, so that a reader
	// of the file sees the test and its error bounds, not only thresholds.
	for _, n := range names {
		data, _ := Get(n)
		for _, key := range []string{"decision: ", "confidence: ", "tolerance: "} {
			if !strings.Contains(string(data), "\n  "+key) {
				t.Errorf("%s does not set spec.%s", n, strings.TrimSuffix(key, ": "))
			}
		}
	}
	if _, ok := Get("embed.go"); ok {
		t.Errorf("Get returned a non-policy file")
	}
}
