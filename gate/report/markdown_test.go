package report

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tapgate/tapgate/gate"
)

func TestMarkdownGolden(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			golden(t, f.name+".md.golden", render(t, Markdown, f))
		})
	}
}

// cellCount counts the pipes that delimit cells in a table row: those not
// escaped by an odd number of backslashes.
func cellCount(line string) int {
	n := 0
	for i := 0; i < len(line); i++ {
		if line[i] != '|' {
			continue
		}
		bs := 0
		for j := i - 1; j >= 0 && line[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			n++
		}
	}
	return n
}

// tableShapes checks every table line has as many cells as its header.
func tableShapes(t *testing.T, md string) {
	t.Helper()
	want := -1
	for _, l := range strings.Split(md, "\n") {
		if !strings.HasPrefix(l, "|") {
			want = -1
			continue
		}
		if want < 0 {
			want = cellCount(l)
			continue
		}
		if got := cellCount(l); got != want {
			t.Errorf("table row has %d cell delimiters, header has %d:\n%s", got, want, l)
		}
	}
}

func TestMarkdownEscaping(t *testing.T) {
	evil := "a|b\nc\\|d <script>alert(1)</script> [x](http://e) **bold** `code` \x1b[31m\xff"
	v := &gate.Verdict{
		Policy: evil, Outcome: gate.Fail, Final: true,
		Targets: []gate.TargetResult{{Name: evil, Resource: evil, Notes: []string{evil}, Coverage: 1}},
		Rules: []gate.RuleResult{{Name: evil, Target: evil, Route: "GET ^/a|b`c$", Kind: gate.SuccessRate,
			Outcome: gate.Fail, HasValue: true, Observed: 0.5, Threshold: evil, Reason: evil}},
	}
	var b bytes.Buffer
	if err := Markdown(&b, v, Meta{Source: evil}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	tableShapes(t, md)
	for _, bad := range []string{"<script>", "[x](", "**bold**", "\x1b", "a|b"} {
		if strings.Contains(md, bad) {
			t.Errorf("markup %q survived escaping:\n%s", bad, md)
		}
	}
	if !utf8.ValidString(md) {
		t.Error("invalid UTF-8 in the report")
	}
	if !strings.Contains(md, "``GET ^/a\\|b`c$``") {
		t.Errorf("route not rendered as code with an escaped pipe:\n%s", md)
	}
}

// TestMarkdownGoldenShapes: every golden table is well formed.
func TestMarkdownGoldenShapes(t *testing.T) {
	for _, f := range fixtures {
		tableShapes(t, string(render(t, Markdown, f)))
	}
}

func bigVerdict(targets, rules int) *gate.Verdict {
	v := &gate.Verdict{Policy: "big", Outcome: gate.Fail, Final: true}
	for i := 0; i < targets; i++ {
		v.Targets = append(v.Targets, gate.TargetResult{Name: fmt.Sprintf("target-%d", i), Coverage: 1,
			Notes: []string{strings.Repeat("note ", 40)}})
	}
	for i := 0; i < rules; i++ {
		v.Rules = append(v.Rules, gate.RuleResult{Name: fmt.Sprintf("rule-%d", i), Target: "t", Kind: gate.SuccessRate,
			Outcome: gate.Fail, HasValue: true, Observed: 0.5, Threshold: ">= 99%",
			Reason: strings.Repeat("a long reason ", 400)})
	}
	return v
}

func TestMarkdownLimit(t *testing.T) {
	for _, tc := range []struct {
		name             string
		targets, rules   int
		limit            int
		wantCut          []string
		wantNoCut        bool
		wantRulesAtLeast int
	}{
		{name: "fits", targets: 2, rules: 3, limit: MarkdownLimit, wantNoCut: true},
		{name: "rules cut", targets: 2, rules: 500, limit: 64 << 10, wantCut: []string{"rows of rules not shown"}, wantRulesAtLeast: 10},
		{name: "everything cut", targets: 5000, rules: 5000, limit: 64 << 10,
			wantCut: []string{"rows of targets not shown", "rows of rules not shown", "notes not shown"}, wantRulesAtLeast: 10},
		{name: "real limit", targets: 3000, rules: 3000, limit: MarkdownLimit, wantCut: []string{"rows of rules not shown"}, wantRulesAtLeast: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := string(markdown(bigVerdict(tc.targets, tc.rules), Meta{}, tc.limit))
			if len(md) > tc.limit {
				t.Errorf("report is %d bytes, over the %d limit", len(md), tc.limit)
			}
			for _, w := range tc.wantCut {
				if !strings.Contains(md, w) {
					t.Errorf("no %q line", w)
				}
			}
			if tc.wantNoCut && strings.Contains(md, "not shown") {
				t.Error("cut a report that fits")
			}
			if n := strings.Count(md, "| rule-"); n < tc.wantRulesAtLeast {
				t.Errorf("only %d rule rows kept", n)
			}
			// The reported number of cut rows plus the rows kept is the total.
			if m := regexp.MustCompile(`_(\d+) more rows? of rules`).FindStringSubmatch(md); m != nil {
				var cut int
				fmt.Sscan(m[1], &cut)
				if kept := strings.Count(md, "| rule-"); kept+cut != tc.rules {
					t.Errorf("kept %d + cut %d != %d rules", kept, cut, tc.rules)
				}
			}
			tableShapes(t, md)
		})
	}
}

func BenchmarkMarkdown(b *testing.B) {
	v := bigVerdict(100, 1000)
	for b.Loop() {
		_ = markdown(v, Meta{}, MarkdownLimit)
	}
}

func BenchmarkJUnit(b *testing.B) {
	v := bigVerdict(100, 1000)
	for b.Loop() {
		if err := JUnit(io.Discard, v, Meta{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMarkdownLimitGuidance: a verdict with thousands of undecided rules
// (each with a hint) stays under the limit, the hints cut with a line
// saying how many.
func TestMarkdownLimitGuidance(t *testing.T) {
	v := &gate.Verdict{Policy: "big", Outcome: gate.Inconclusive, Final: true, TimeKnown: true, Window: time.Minute, Elapsed: time.Minute,
		StoppedEarly: true, StopReason: strings.Repeat("why ", 50)}
	for i := 0; i < 20000; i++ {
		v.Rules = append(v.Rules, gate.RuleResult{Name: fmt.Sprintf("rule-%d-%s", i, strings.Repeat("x", 40)), Target: "t", Kind: gate.ErrorRate,
			Outcome: gate.Inconclusive, HasValue: true, Observed: 0.01, Threshold: "<= 1%", Samples: 400, Required: 100,
			Decision: gate.Sequential, Test: &gate.TestResult{Confidence: 0.99, Tolerance: 2, MoreSamples: 640},
			Reason: "undecided"})
	}
	for _, limit := range []int{64 << 10, MarkdownLimit} {
		md := string(markdown(v, Meta{}, limit))
		if len(md) > limit {
			t.Errorf("limit %d: report is %d bytes", limit, len(md))
		}
		if !strings.Contains(md, "undecided rules not shown") || !strings.Contains(md, "rows of rules not shown") {
			t.Errorf("limit %d: no cut lines", limit)
		}
		if !strings.Contains(md, "### Undecided when the run stopped") || strings.Count(md, "about 640 more requests") < 10 {
			t.Errorf("limit %d: the hints were dropped entirely", limit)
		}
		tableShapes(t, md)
	}
}
