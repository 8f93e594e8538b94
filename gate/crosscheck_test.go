package gate

import (
	"math"
	"math/rand"
	"strings"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	// 100 requests: 50 at or below 10ms, 90 at or below 100ms, 99 at or
	// below 200ms, one above. histogram_quantile interpolates linearly.
	b := []HistogramBucket{{UpperMs: 10, Count: 50}, {UpperMs: 100, Count: 90}, {UpperMs: 200, Count: 99}, {UpperMs: math.Inf(1), Count: 100}}
	q := HistogramQuantiles(b)
	if !q.Valid || q.P50 != 10*time.Millisecond || q.P95 != 155555555 || q.P99 != 200*time.Millisecond {
		t.Errorf("quantiles = %+v", q)
	}
	// A rank in +Inf is reported at the highest finite bound, as
	// Prometheus does.
	if q := HistogramQuantiles([]HistogramBucket{{UpperMs: 5, Count: 1}, {UpperMs: math.Inf(1), Count: 10}}); q.P99 != 5*time.Millisecond {
		t.Errorf("p99 in +Inf = %v", q.P99)
	}
	if q := HistogramQuantiles(nil); q.Valid {
		t.Error("no buckets gave quantiles")
	}
}

func TestTwoProportionP(t *testing.T) {
	tests := []struct {
		k1, n1, k2, n2 float64
		lo, hi         float64
	}{
		{10, 1000, 100, 10000, 0.5, 1},    // the same rate
		{0, 1000, 400, 10000, 0, 1e-9},    // 0% tapped, 4% in the rest
		{30, 1000, 200, 10000, 0.01, 0.1}, // 3% vs 2%: borderline
		{0, 0, 5, 100, 1, 1},
	}
	for _, tt := range tests {
		if p := twoProportionP(tt.k1, tt.n1, tt.k2, tt.n2); p < tt.lo || p > tt.hi {
			t.Errorf("twoProportionP(%v/%v vs %v/%v) = %v, want in [%v, %v]", tt.k1, tt.n1, tt.k2, tt.n2, p, tt.lo, tt.hi)
		}
	}
}

// TestCrossCheck: the proxies' counts give volume coverage and a
// representativeness test; a mismatch or too little volume turns rules
// inconclusive only when the policy says so.
func TestCrossCheck(t *testing.T) {
	rule := Rule{Name: "sr", Kind: ErrorRate, Max: 0.01}
	count := Rule{Name: "n", Kind: ResponseCount, Max: 1000, Count: []Cond{{Kind: CondStatus, Code: 503}}}
	tests := []struct {
		name      string
		cp        CrossCheckPolicy
		counts    ProxyCounts
		mismatch  bool
		want      Outcome
		reasonIn  string
		coverage  float64
		countRule Outcome
	}{
		{"representative", CrossCheckPolicy{}, ProxyCounts{Requests: 4000, Failures: 4}, false, Pass, "passed", 0.1, Pass},
		{"mismatch warns by default", CrossCheckPolicy{}, ProxyCounts{Requests: 4000, Failures: 160}, true, Pass, "passed", 0.1, Pass},
		{"mismatch inconclusive", CrossCheckPolicy{MismatchInconclusive: true}, ProxyCounts{Requests: 4000, Failures: 160}, true, Inconclusive, "not representative", 0.1, Pass},
		{"too little volume", CrossCheckPolicy{MinVolumeCoverage: 0.2}, ProxyCounts{Requests: 4000, Failures: 4}, false, Inconclusive, "minVolumeCoverage", 0.1, Pass},
		{"enough volume", CrossCheckPolicy{MinVolumeCoverage: 0.05}, ProxyCounts{Requests: 4000, Failures: 4}, false, Pass, "passed", 0.1, Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := seqPolicy(rule, count)
			p.CrossCheck = tt.cp
			e, err := NewEngine(p, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 400; i++ {
				for _, ev := range (tapReq{pod: "p", stream: uint64(i), status: 200, latency: time.Millisecond}).events() {
					e.Observe(0, ev)
				}
			}
			e.SetProxyCounts(0, tt.counts)
			v := e.Evaluate(time.Minute, true)
			cc := v.Targets[0].CrossCheck
			if cc == nil || cc.Mismatch != tt.mismatch || math.Abs(cc.VolumeCoverage-tt.coverage) > 1e-9 {
				t.Fatalf("cross-check %+v, want mismatch %v, coverage %v", cc, tt.mismatch, tt.coverage)
			}
			r := v.Rules[0]
			if r.Outcome != tt.want || !strings.Contains(r.Reason, tt.reasonIn) {
				t.Errorf("rule: %s (%s), want %s with %q", r.Outcome, r.Reason, tt.want, tt.reasonIn)
			}
			if v.Rules[1].Outcome != tt.countRule {
				t.Errorf("a count rule is not a sample statistic: %s", v.Rules[1].Outcome)
			}
		})
	}
	// No counts, no cross-check.
	e, _ := NewEngine(seqPolicy(rule), Limits{})
	if v := e.Evaluate(time.Minute, true); v.Targets[0].CrossCheck != nil {
		t.Error("a cross-check without counts")
	}
}

// TestMismatchFalseAlarms checks the representativeness test by
// simulation: when tap's sample is a random part of the traffic, the
// cross-check calls it unrepresentative at most 1-confidence of the time
// (the continuity-corrected z test is conservative); when the sample
// misses the failures, it says so.
func TestMismatchFalseAlarms(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	const trials = 2000
	p := seqPolicy(Rule{Name: "sr", Kind: ErrorRate, Max: 0.01})
	alarms := 0
	for i := 0; i < trials; i++ {
		// 10,000 requests at 1% failing; tap sees a random 700 of them.
		var tapped, tappedFail, fail uint64
		for j := 0; j < 10000; j++ {
			f := rng.Float64() < 0.01
			if f {
				fail++
			}
			if rng.Float64() < 0.07 {
				tapped++
				if f {
					tappedFail++
				}
			}
		}
		e, _ := NewEngine(p, Limits{})
		ts := e.targets[0]
		ts.all.requests, ts.all.failures = tapped, tappedFail
		ts.proxy = &ProxyCounts{Requests: 10000, Failures: float64(fail)}
		if e.crossCheck(ts).Mismatch {
			alarms++
		}
	}
	if share := float64(alarms) / trials; share > 0.01 {
		t.Errorf("a representative sample was called unrepresentative %d times in %d (%.2f%%), want at most 1%%", alarms, trials, 100*share)
	}
	// The biased case: tap sees none of the 2% failures in 600 requests.
	e, _ := NewEngine(p, Limits{})
	ts := e.targets[0]
	ts.all.requests, ts.all.failures = 600, 0
	ts.proxy = &ProxyCounts{Requests: 9000, Failures: 180}
	if cc := e.crossCheck(ts); !cc.Mismatch || cc.PValue > 0.01 {
		t.Errorf("0 of 600 tapped against 2%% of 9000: %+v", cc)
	}
	t.Logf("false alarms: %d of %d", alarms, trials)
}
