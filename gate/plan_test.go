package gate

import (
	"strings"
	"testing"
	"time"
)

func TestExplain(t *testing.T) {
	p := &Policy{Window: time.Minute, MinRequests: 100, Targets: []Target{{Name: "web"}, {Name: "canary", MaxRPS: 10}}, Rules: []Rule{
		{Name: "sr", Kind: SuccessRate, Min: 0.99},
		{Name: "est", Kind: ErrorRate, Max: 0.01, Decision: Estimate},
		{Name: "p99", Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: 300 * time.Millisecond, Target: "canary"},
		{Name: "cmp", Kind: CompareErrorRate, Baseline: "web", MaxIncrease: 0.01},
		{Name: "n", Kind: ResponseCount, Max: 3, Count: []Cond{{Kind: CondStatus, Code: 503}}},
	}}
	plans := Explain(p, 5)
	text := func(pl RulePlan) string {
		return strings.Join(append([]string{pl.Check, pl.Decides, pl.Window}, pl.Needs...), "\n")
	}
	tests := []struct {
		rule  int
		want  []string
		short bool
	}{
		// The numbers of TestSPRTBoundaries, in words; 5 rps for 60s is
		// 300 requests, fewer than a good release needs.
		{0, []string{"success rate >= 99% on every target", "success 98% or less passes at most 1%", "passes after 304 requests if none fail", "costs about 91 more", "4 in a row fail it", "holds about 300 requests: too short"}, true},
		// At 300 requests the point estimate is wrong as often as the
		// binomial distribution says: P(Bin(300, 2%) <= 3) = 14.9%.
		{1, []string{"point estimate", "still passes 14.9% of the time", "fails 6.5% of the time"}, false},
		{2, []string{"target canary", "passes after 304 samples"}, true},
		{3, []string{"every target but web", "two-sample", "increase of 2pp or more passes at most 1%"}, true},
		{4, []string{"fails as soon as more than 3 responses are 503"}, false},
	}
	for _, tt := range tests {
		pl := plans[tt.rule]
		got := text(pl)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("rule %s: %q not in\n%s", pl.Rule.Name, w, got)
			}
		}
		if pl.ShortWindow != tt.short {
			t.Errorf("rule %s: short window %v, want %v", pl.Rule.Name, pl.ShortWindow, tt.short)
		}
	}
	// maxRPS caps what tap passes.
	capped := Explain(p, 50)[2]
	if !strings.Contains(capped.Window, "tap passes at most 10 rps of it") {
		t.Errorf("maxRPS cap not applied: %s", capped.Window)
	}
}
