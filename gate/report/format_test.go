package report

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{1, "100.00%"},
		{0, "0.00%"},
		{0.9962, "99.62%"},
		{0.99623, "99.623%"},
		{0.5, "50.00%"},
		{0.001, "0.10%"},
		{0.99995, "99.995%"},
		{0.9999999, ">99.999%"}, // never rounds a failure up to 100%
		{0.0000001, "<0.001%"},  // never rounds a failure down to 0%
		{-0.0000001, "0.00%"},
		{math.NaN(), "-"},
		{math.Inf(1), "-"},
	} {
		if got := percent(tc.in); got != tc.want {
			t.Errorf("percent(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestInterval(t *testing.T) {
	for _, tc := range []struct {
		iv   gate.Interval
		want string
	}{
		{gate.Interval{Low: 0.991, High: 0.9985}, "99.10-99.85%"},
		{gate.Interval{Low: 0.99701, High: 0.99929}, "99.70-99.93%"}, // outward
		{gate.Interval{Low: 0.9993, High: 0.9993}, "99.93-99.93%"},   // float noise
		{gate.Interval{Low: 0.998416, High: 1}, "99.84-100.00%"},
		{gate.Interval{Low: 0, High: 0.0001}, "0.00-0.01%"},
	} {
		if got := interval(tc.iv); got != tc.want {
			t.Errorf("interval(%v) = %q, want %q", tc.iv, got, tc.want)
		}
	}
	if got := interval(gate.Interval{Low: math.NaN(), High: 1}); got != "-" {
		t.Errorf("got %q", got)
	}
}

func TestCoverage(t *testing.T) {
	for in, want := range map[float64]string{1: "100%", 0.875: "87.5%", 0: "0%", 0.9999: "100%"} {
		if got := coverage(in); got != want {
			t.Errorf("coverage(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestObserved(t *testing.T) {
	for _, tc := range []struct {
		r    gate.RuleResult
		want string
	}{
		{gate.RuleResult{Kind: gate.SuccessRate, Observed: 0.9962, HasValue: true}, "99.62%"},
		{gate.RuleResult{Kind: gate.ErrorRate, Observed: 0.0025, HasValue: true}, "0.25%"},
		{gate.RuleResult{Kind: gate.LatencyQuantile, Observed: 0.1217, HasValue: true}, "121.7ms"},
		{gate.RuleResult{Kind: gate.LatencyQuantile, Observed: 12.5, HasValue: true}, "12.5s"},
		{gate.RuleResult{Kind: gate.LatencyQuantile, Observed: 0.00042, HasValue: true}, "420µs"},
		{gate.RuleResult{Kind: gate.RequestRate, Observed: 96.4, HasValue: true}, "96.4 rps"},
		{gate.RuleResult{Kind: gate.RequestRate, Observed: 1.0 / 3, HasValue: true}, "0.33 rps"},
		{gate.RuleResult{Kind: gate.ResponseCount, Observed: 8, HasValue: true}, "8"},
		{gate.RuleResult{Kind: gate.SuccessRate, Observed: 0, HasValue: false}, "-"},
		{gate.RuleResult{Kind: gate.LatencyQuantile, Observed: 0.3, HasValue: false}, "-"},
		{gate.RuleResult{Kind: gate.CompareErrorRate, Observed: 0.089, HasValue: true}, "+8.9pp"},
		{gate.RuleResult{Kind: gate.CompareErrorRate, Observed: -0.0005, HasValue: true}, "-0.05pp"},
		{gate.RuleResult{Kind: gate.CompareErrorRate, Observed: 0.00001, HasValue: true}, "<+0.01pp"},
		{gate.RuleResult{Kind: gate.CompareErrorRate, Observed: 0, HasValue: true}, "0pp"},
		{gate.RuleResult{Kind: gate.CompareLatency, Observed: 1.35, HasValue: true, Threshold: "p99 <= 1.2x stable"}, "1.35x"},
		{gate.RuleResult{Kind: gate.CompareLatency, Observed: 0.0215, HasValue: true, Threshold: "p99 <= stable + 50ms", Compare: &gate.CompareResult{Increase: true}}, "+21.5ms"},
		{gate.RuleResult{Kind: gate.CompareLatency, Observed: -0.004, HasValue: true, Threshold: "p50 <= stable + 20ms", Compare: &gate.CompareResult{Increase: true}}, "-4ms"},
		{gate.RuleResult{Kind: gate.CompareLatency, Observed: 1.2, HasValue: false, Threshold: "p99 <= 1.2x stable"}, "-"},
	} {
		if got := observed(&tc.r); got != tc.want {
			t.Errorf("observed(%v %v) = %q, want %q", tc.r.Kind, tc.r.Observed, got, tc.want)
		}
	}
}

func TestMs(t *testing.T) {
	for d, want := range map[time.Duration]float64{
		121700 * time.Microsecond:            121.7,
		1234567 * time.Nanosecond:            1.235,
		0:                                    0,
		2*time.Second + 500*time.Microsecond: 2000.5,
	} {
		if got := ms(d); got != want {
			t.Errorf("ms(%v) = %v, want %v", d, got, want)
		}
	}
}

func TestCell(t *testing.T) {
	if got := cell("a\tb\nc\x1b[31m"); got != "a b c [31m" {
		t.Errorf("got %q", got)
	}
	if got := cell(""); got != "-" {
		t.Errorf("got %q", got)
	}
}

func TestReasonAndHeadline(t *testing.T) {
	r := func(o gate.Outcome, dry bool) gate.RuleResult { return gate.RuleResult{Outcome: o, DryRun: dry} }
	for _, tc := range []struct {
		name string
		v    gate.Verdict
		meta Meta
		want string
	}{
		{"pass one", gate.Verdict{Policy: "p", Outcome: gate.Pass, Final: true, Rules: []gate.RuleResult{r(gate.Pass, false)}},
			Meta{ExitCode: 0}, "PASS  policy p: 1 rule passed (exit 0)"},
		{"pass many with dry-run failure", gate.Verdict{Policy: "p", Outcome: gate.Pass, Final: true,
			Rules: []gate.RuleResult{r(gate.Pass, false), r(gate.Pass, false), r(gate.Fail, true)}},
			Meta{ExitCode: 0}, "PASS  policy p: all 2 rules passed; 1 dry-run rule would fail (exit 0)"},
		{"fail", gate.Verdict{Policy: "checkout-release", Outcome: gate.Fail, Final: true,
			Rules: []gate.RuleResult{r(gate.Fail, false), r(gate.Pass, false), r(gate.Inconclusive, false), r(gate.Pass, false)}},
			Meta{ExitCode: 1}, "FAIL  policy checkout-release: 1 of 4 rules failed (exit 1)"},
		{"inconclusive mapped to fail", gate.Verdict{Outcome: gate.Inconclusive, Final: true,
			Rules: []gate.RuleResult{r(gate.Inconclusive, false), r(gate.Pass, false)}},
			Meta{ExitCode: 1, OnInconclusive: gate.Fail}, "INCONCLUSIVE  1 of 2 rules inconclusive (exit 1, onInconclusive: fail)"},
		{"inconclusive default", gate.Verdict{Outcome: gate.Inconclusive, Final: true,
			Rules: []gate.RuleResult{r(gate.Inconclusive, false)}},
			Meta{ExitCode: 3}, "INCONCLUSIVE  1 of 1 rule inconclusive (exit 3)"},
		{"only dry-run", gate.Verdict{Outcome: gate.Inconclusive, Final: true, Rules: []gate.RuleResult{r(gate.Pass, true)}},
			Meta{ExitCode: 3}, "INCONCLUSIVE  only dry-run rules, which do not count (exit 3)"},
		{"interrupted", gate.Verdict{Outcome: gate.Inconclusive, Final: false, Rules: []gate.RuleResult{r(gate.Inconclusive, false)}},
			Meta{ExitCode: 5, OnInconclusive: gate.Fail}, "INCONCLUSIVE  1 of 1 rule inconclusive; partial: the window did not close (exit 5, interrupted)"},
		{"verdict disagrees with rules", gate.Verdict{Outcome: gate.Fail, Final: true, Rules: []gate.RuleResult{r(gate.Pass, false)}},
			Meta{ExitCode: 1}, "FAIL  1 passed, 0 failed, 0 inconclusive of 1 rule (exit 1)"},
	} {
		if got := headline(&tc.v, tc.meta); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestCleanSource(t *testing.T) {
	for in, want := range map[string]string{
		"live tap via https://u:p@h:6443/x": "live tap via https://[REDACTED]@h:6443/x",
		"live tap via https://token@h":      "live tap via https://[REDACTED]@h",
		"replay a@b.json":                   "replay a@b.json",
		"live tap via https://10.0.0.1":     "live tap via https://10.0.0.1",
	} {
		if got := cleanSource(in); got != want {
			t.Errorf("cleanSource(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNotes(t *testing.T) {
	tr := gate.TargetResult{Notes: []string{"engine note"}, Coverage: 0.5}
	tr.InFlight = 1
	got := Notes(&tr, &gate.Verdict{Final: true})
	want := []string{"engine note",
		"1 request still in flight when the window closed: reported, not counted as samples",
		"tapped for only 50% of the window"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("note %d = %q, want %q", i, got[i], want[i])
		}
	}
	if n := Notes(&gate.TargetResult{Coverage: 0.99999}, &gate.Verdict{Final: true}); len(n) != 0 {
		t.Errorf("a clean target has no notes, got %q", n)
	}
	stopped := Notes(&gate.TargetResult{Stats: gate.Stats{InFlight: 2}, Coverage: 1}, &gate.Verdict{Final: true, StoppedEarly: true})
	if len(stopped) != 1 || !strings.Contains(stopped[0], "when the run stopped") {
		t.Errorf("a stopped run's in-flight note: %q", stopped)
	}
}

func TestDurationBounds(t *testing.T) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	for _, tc := range []struct {
		name string
		iv   gate.DurationInterval
		ref  time.Duration
		want string
	}{
		{"bounded", gate.DurationInterval{Low: ms(98.14), High: ms(121.27), HighKnown: true}, ms(105.9), "98.1-121.3ms"},
		// Rounded outward: an interval may widen, never narrow.
		{"outward", gate.DurationInterval{Low: ms(85.49), High: ms(104.31), HighKnown: true}, ms(92), "85.4-104.4ms"},
		{"exact boundary", gate.DurationInterval{Low: ms(14), High: ms(30.8), HighKnown: true}, ms(21), "14.0-30.8ms"},
		{"no upper bound", gate.DurationInterval{Low: ms(98.14)}, ms(120), ">98.1ms"},
		{"no lower bound", gate.DurationInterval{High: ms(14.7), HighKnown: true}, ms(12), "<14.7ms"},
		{"nothing bounded", gate.DurationInterval{}, ms(12), ""},
		{"large", gate.DurationInterval{Low: 1231 * time.Millisecond}, 1420 * time.Millisecond, ">1231ms"},
		{"seconds", gate.DurationInterval{Low: 11 * time.Second, High: 14500 * time.Millisecond, HighKnown: true}, 12 * time.Second, "11.0-14.5s"},
		{"microseconds", gate.DurationInterval{Low: 380 * time.Microsecond, High: 455 * time.Microsecond, HighKnown: true}, 420 * time.Microsecond, "380-455µs"},
	} {
		if got := durationBounds(tc.iv, tc.ref, true); got != tc.want {
			t.Errorf("%s: durationBounds = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := latencyCI(ms(105.9), gate.DurationInterval{Low: ms(98.14), High: ms(121.27), HighKnown: true}, true); got != "105.9ms (98.1-121.3)" {
		t.Errorf("latencyCI = %q", got)
	}
	if got := latencyCI(ms(105.9), gate.DurationInterval{}, true); got != "105.9ms" {
		t.Errorf("latencyCI without an interval = %q", got)
	}
	if got := latencyCI(0, gate.DurationInterval{}, false); got != "-" {
		t.Errorf("latencyCI without samples = %q", got)
	}
}

func TestTestLabel(t *testing.T) {
	for _, tc := range []struct {
		r    gate.RuleResult
		want string
	}{
		{gate.RuleResult{Decision: gate.Sequential, Test: &gate.TestResult{Confidence: 0.99, Tolerance: 2}}, "seq 99%/2x"},
		{gate.RuleResult{Decision: gate.Sequential, Test: &gate.TestResult{Confidence: 0.999, Tolerance: 1.5}}, "seq 99.9%/1.5x"},
		{gate.RuleResult{Decision: gate.Sequential}, "seq"},
		{gate.RuleResult{Decision: gate.Estimate}, "estimate"},
		{gate.RuleResult{Kind: gate.RequestRate}, "-"},
	} {
		if got := testLabel(&tc.r); got != tc.want {
			t.Errorf("testLabel(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestSpanAndEta(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2100 * time.Millisecond:    "2.1s",
		2049 * time.Millisecond:    "2s",
		540 * time.Millisecond:     "540ms",
		110 * time.Second:          "110s",
		1427384 * time.Microsecond: "1.4s",
	} {
		if got := span(d); got != want {
			t.Errorf("span(%v) = %q, want %q", d, got, want)
		}
	}
	if got := eta(472, 412.0/60); got != "~1m9s" {
		t.Errorf("eta = %q", got)
	}
	if got := eta(3, 30); got != "~100ms" {
		t.Errorf("eta = %q", got)
	}
	for v, want := range map[float64]string{30.476: "30.5/s", 6.8667: "6.87/s", 0.25: "0.25/s", 250: "250/s"} {
		if got := perSecond(v); got != want {
			t.Errorf("perSecond(%v) = %q, want %q", v, got, want)
		}
	}
}
