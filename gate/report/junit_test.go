package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

func TestJUnitGolden(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			golden(t, f.name+".junit.xml.golden", render(t, JUnit, f))
		})
	}
}

// parseJUnit decodes a report the way a CI system would, with a generic
// token walk (strict: any malformed XML is an error) and into our types.
func parseJUnit(t *testing.T, data []byte) junitSuites {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, data)
		}
	}
	var doc junitSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return doc
}

// TestJUnitParses checks every fixture parses back and that the counts CI
// systems display agree with the elements inside.
func TestJUnitParses(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			v, _ := f.build()
			doc := parseJUnit(t, render(t, JUnit, f))
			if len(doc.Suites) != 1 {
				t.Fatalf("%d suites, want 1", len(doc.Suites))
			}
			s := doc.Suites[0]
			if s.Name != v.Policy {
				t.Errorf("suite name %q, want %q", s.Name, v.Policy)
			}
			var failures, skipped int
			for _, c := range s.Cases {
				if c.Failure != nil {
					failures++
				}
				if c.Skipped != nil {
					skipped++
				}
				if c.Failure != nil && c.Skipped != nil {
					t.Errorf("case %s is both failed and skipped", c.Name)
				}
			}
			if s.Tests != len(v.Rules) || len(s.Cases) != len(v.Rules) {
				t.Errorf("tests=%d cases=%d, want %d", s.Tests, len(s.Cases), len(v.Rules))
			}
			if s.Failures != failures || s.Skipped != skipped {
				t.Errorf("suite says failures=%d skipped=%d, cases have %d and %d", s.Failures, s.Skipped, failures, skipped)
			}
			if doc.Tests != s.Tests || doc.Failures != s.Failures || doc.Skipped != s.Skipped {
				t.Errorf("testsuites totals %d/%d/%d differ from the suite's", doc.Tests, doc.Failures, doc.Skipped)
			}
			props := map[string]string{}
			for _, p := range s.Properties {
				props[p.Name] = p.Value
			}
			if props["verdict"] != v.Outcome.String() {
				t.Errorf("verdict property %q", props["verdict"])
			}
			if _, ok := props["exitCode"]; !ok {
				t.Error("no exitCode property")
			}
		})
	}
}

// TestJUnitOutcomes pins the mapping of outcomes to JUnit elements,
// including inconclusive rules under each onInconclusive setting.
func TestJUnitOutcomes(t *testing.T) {
	rule := func(o gate.Outcome, dry bool) gate.RuleResult {
		return gate.RuleResult{Name: "r", Kind: gate.SuccessRate, Target: "t", Outcome: o, DryRun: dry,
			HasValue: true, Observed: 0.9, Threshold: ">= 99%", Samples: 10, Required: 100, Reason: "why"}
	}
	for _, tc := range []struct {
		name    string
		rule    gate.RuleResult
		onInc   gate.Outcome
		want    string // "pass", "failure", "skipped"
		typ     string
		message string
	}{
		{"pass", rule(gate.Pass, false), 0, "pass", "", ""},
		{"fail", rule(gate.Fail, false), 0, "failure", "fail", "success rate 90.00% < 99% (n=10)"},
		{"dry-run fail", rule(gate.Fail, true), 0, "skipped", "", "dry-run, does not count: would fail: success rate 90.00% < 99% (n=10)"},
		// A pass at 90% is not ">= 99%": the summary claims no comparison
		// the numbers do not show (a sequential PASS can stand on a point
		// estimate just past the threshold).
		{"dry-run pass", rule(gate.Pass, true), 0, "skipped", "", "dry-run, does not count: would pass: success rate 90.00%, threshold >= 99% (n=10)"},
		{"inconclusive", rule(gate.Inconclusive, false), gate.Inconclusive, "skipped", "", "inconclusive: why"},
		{"inconclusive as pass", rule(gate.Inconclusive, false), gate.Pass, "skipped", "", "inconclusive: why"},
		{"inconclusive as fail", rule(gate.Inconclusive, false), gate.Fail, "failure", "inconclusive", "inconclusive (onInconclusive: fail): why"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &gate.Verdict{Policy: "p", Outcome: gate.Combine([]gate.RuleResult{tc.rule}), Final: true, Rules: []gate.RuleResult{tc.rule}}
			var b bytes.Buffer
			if err := JUnit(&b, v, Meta{OnInconclusive: tc.onInc}); err != nil {
				t.Fatal(err)
			}
			c := parseJUnit(t, b.Bytes()).Suites[0].Cases[0]
			got, msg, typ := "pass", "", ""
			if c.Failure != nil {
				got, msg, typ = "failure", c.Failure.Message, c.Failure.Type
			}
			if c.Skipped != nil {
				got, msg = "skipped", c.Skipped.Message
			}
			if got != tc.want || msg != tc.message || typ != tc.typ {
				t.Errorf("got %s type=%q %q, want %s type=%q %q", got, typ, msg, tc.want, tc.typ, tc.message)
			}
		})
	}
}

// TestJUnitHostileText: names and reasons with XML specials, control
// characters, CDATA terminators and invalid UTF-8 still give valid XML.
func TestJUnitHostileText(t *testing.T) {
	evil := "a<b>&\"'c]]>\x00\x01\x1b[31m\xff\xfe\n--> <!-- x"
	v := &gate.Verdict{
		Policy: evil, Outcome: gate.Fail, Final: true, Elapsed: time.Second,
		Targets: []gate.TargetResult{{Name: evil, Notes: []string{evil}}},
		Rules: []gate.RuleResult{{Name: evil, Target: evil, Route: evil, Kind: gate.LatencyQuantile, Outcome: gate.Fail,
			HasValue: true, Observed: 1, Threshold: evil, Reason: evil, Line: 3}},
	}
	var b bytes.Buffer
	if err := JUnit(&b, v, Meta{PolicyFile: evil, Source: evil, Version: evil}); err != nil {
		t.Fatal(err)
	}
	doc := parseJUnit(t, b.Bytes())
	if c := doc.Suites[0].Cases[0]; c.Failure == nil || !strings.Contains(c.Failure.Body, "a<b>&") {
		t.Errorf("failure lost its text: %+v", c.Failure)
	}
}

func TestRuleSummary(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    gate.RuleResult
		want string
	}{
		{"latency fail", gate.RuleResult{Kind: gate.LatencyQuantile, Outcome: gate.Fail, HasValue: true, Observed: 0.812,
			Threshold: "p99 <= 500ms", Samples: 4210}, "p99 ≈ 812ms > 500ms (n=4210)"},
		{"latency pass", gate.RuleResult{Kind: gate.LatencyQuantile, Outcome: gate.Pass, HasValue: true, Observed: 0.120,
			Threshold: "p99.9 <= 2s", Samples: 4210}, "p99.9 120ms <= 2s (n=4210)"},
		{"success rate fail", gate.RuleResult{Kind: gate.SuccessRate, Outcome: gate.Fail, HasValue: true, Observed: 0.971,
			Threshold: ">= 99.5%", Samples: 1200}, "success rate 97.10% < 99.5% (n=1200)"},
		{"error rate fail", gate.RuleResult{Kind: gate.ErrorRate, Outcome: gate.Fail, HasValue: true, Observed: 0.0025,
			Threshold: "<= 0.1%", Samples: 400}, "error rate 0.25% > 0.1% (n=400)"},
		{"request rate fail", gate.RuleResult{Kind: gate.RequestRate, Outcome: gate.Fail, HasValue: true, Observed: 0.2,
			Threshold: ">= 1 rps", Samples: 12}, "request rate 0.2 rps < 1 rps (n=12)"},
		{"count fail", gate.RuleResult{Kind: gate.ResponseCount, Outcome: gate.Fail, HasValue: true, Observed: 12,
			Threshold: "<= 10", Samples: 900}, "count 12 > 10 (n=900)"},
		{"no value", gate.RuleResult{Kind: gate.LatencyQuantile, Outcome: gate.Inconclusive,
			Threshold: "p95 <= 250ms", Required: 100}, "p95: no value (n=0, need 100)"},
		{"too few", gate.RuleResult{Kind: gate.SuccessRate, Outcome: gate.Inconclusive, HasValue: true, Observed: 1,
			Threshold: ">= 99.5%", Samples: 57, Required: 100}, "success rate 100.00%, threshold >= 99.5% (n=57, need 100)"},
		{"odd threshold", gate.RuleResult{Kind: gate.SuccessRate, Outcome: gate.Fail, HasValue: true, Observed: 0.5,
			Threshold: "custom", Samples: 2}, "success rate 50.00%, threshold custom (n=2)"},
		// A sequential FAIL latched early stands when later traffic brings
		// the rate back: the summary does not claim 99.7% < 99.5%.
		{"latched fail, rate recovered", gate.RuleResult{Kind: gate.SuccessRate, Outcome: gate.Fail, HasValue: true, Observed: 0.997,
			Threshold: ">= 99.5%", Samples: 4000, Decision: gate.Sequential, Decided: true, Test: &gate.TestResult{DecidedAfter: 63}},
			"success rate 99.70%, threshold >= 99.5% (n=4000, decided after 63)"},
		{"decided fail", gate.RuleResult{Kind: gate.SuccessRate, Outcome: gate.Fail, HasValue: true, Observed: 59.0 / 63,
			Threshold: ">= 99.5%", Samples: 63, Decision: gate.Sequential, Decided: true, Test: &gate.TestResult{DecidedAfter: 63}},
			"success rate 93.651% < 99.5% (n=63)"},
		// A sequential PASS may stand on a point estimate just past the
		// threshold.
		{"sequential pass past the threshold", gate.RuleResult{Kind: gate.ErrorRate, Outcome: gate.Pass, HasValue: true, Observed: 0.0052,
			Threshold: "<= 0.5%", Samples: 9000, Decision: gate.Sequential}, "error rate 0.52%, threshold <= 0.5% (n=9000)"},
		{"latency pass past the bound", gate.RuleResult{Kind: gate.LatencyQuantile, Outcome: gate.Pass, HasValue: true, Observed: 0.31,
			Threshold: "p99 <= 300ms", Samples: 9000, Decision: gate.Sequential}, "p99 310ms, threshold <= 300ms (n=9000)"},
		{"compare error rate fail", gate.RuleResult{Kind: gate.CompareErrorRate, Outcome: gate.Fail, HasValue: true, Observed: 0.083,
			Threshold: "<= stable + 1pp", Samples: 489, Compare: &gate.CompareResult{TargetObserved: 0.0835, TargetHasValue: true,
				BaselineObserved: 0.0005, BaselineHasValue: true, Bound: 0.0105}},
			"error rate increase +8.3pp > stable + 1pp (n=489)"},
		{"compare latency pass", gate.RuleResult{Kind: gate.CompareLatency, Outcome: gate.Pass, HasValue: true, Observed: 1.05,
			Threshold: "p99 <= 1.2x stable", Samples: 3000, Compare: &gate.CompareResult{TargetObserved: 0.105, TargetHasValue: true,
				BaselineObserved: 0.1, BaselineHasValue: true, Bound: 0.12}},
			"p99 1.05x <= 1.2x stable (n=3000)"},
		{"compare latency fail under the bound", gate.RuleResult{Kind: gate.CompareLatency, Outcome: gate.Fail, HasValue: true, Observed: 1.1,
			Threshold: "p99 <= 1.2x stable", Samples: 3000, Compare: &gate.CompareResult{TargetObserved: 0.11, TargetHasValue: true,
				BaselineObserved: 0.1, BaselineHasValue: true, Bound: 0.12}},
			"p99 ≈ 1.1x, threshold <= 1.2x stable (n=3000)"},
	} {
		if got := RuleSummary(&tc.r); got != tc.want {
			t.Errorf("%s: RuleSummary = %q, want %q", tc.name, got, tc.want)
		}
	}
}
