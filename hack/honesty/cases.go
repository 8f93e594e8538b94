package main

import (
	"fmt"
	"math"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// expect says which verdict would be wrong for a case.
type expect uint8

const (
	// expectNone: at the budget or between the hypotheses; neither verdict
	// is wrong, the row is for information.
	expectNone expect = iota
	// expectFail: a bad release (at or beyond the test's bad hypothesis):
	// a PASS is a false pass.
	expectFail
	// expectPass: a good release (at or within the good hypothesis): a
	// FAIL is a false fail.
	expectPass
)

// section groups the cases of one table.
type section uint8

const (
	secRate section = iota + 1
	secP99
	secEarly
	secCompareRate
	secCompareLatency
)

// caseSpec is one table row: a policy, the traffic each simulated gate
// gets, and what to check.
type caseSpec struct {
	id       string // stable; seeds the case's random streams
	sec      section
	decision gate.Decision
	truth    string // the true value, in words
	expect   expect
	// short names the true value in a list of rows ("+0.5pp").
	short string
	// hypothesis marks a row whose true value is exactly a hypothesis
	// of the test rather than the study's headline ratio.
	hypothesis bool
	n          int // requests in the window (the canary's for compare cases)
	rule       string
	window     time.Duration
	policy     func() *gate.Policy
	traffic    trafficSpec
	// exact, for one-sample rules: the independent computation.
	exact *exactCheck
}

// exactCheck is what the independent check needs for a one-sample case.
type exactCheck struct {
	test oneSample
	p    float64 // true share of bad samples
	// estimate rows: the point estimate fails on more than allowed bad.
	estimate bool
	allowed  int
}

// Study constants.
const (
	confidence  = 0.99 // the engine's default, restated for the check
	tolerance   = 2.0
	minRequests = 100
	seqWindow   = 60 * time.Second
	// seqSpan is when the last request of a window arrives: every request
	// completes before the window ends, so each rule sees exactly N
	// samples (a request still in flight at the end would not count).
	seqSpan  = 58 * time.Second
	bodyTime = 2 * time.Millisecond
)

// Traffic shapes.
var (
	// healthyLatency is the demo's stable checkout: p50 35ms, p99 120ms.
	healthyLatency = lognormalBetween(35*time.Millisecond, 120*time.Millisecond)
	// canaryLatency is the demo's broken canary: p50 70ms, p99 280ms.
	canaryLatency = lognormalBetween(70*time.Millisecond, 280*time.Millisecond)
)

// p99Sigma is the lognormal shape of the latency cases.
const p99Sigma = 0.6

var (
	p99Bound     = 300 * time.Millisecond
	compareBase  = lognormalWithQuantile(200*time.Millisecond, 0.99, p99Sigma)
	compareRatio = 1.2
)

// lognormalBetween is the lognormal with the given median and p99.
func lognormalBetween(p50, p99 time.Duration) latencyModel {
	sigma := (logSec(p99) - logSec(p50)) / normQuantile(0.99)
	return lognormalWithQuantile(p50, 0.5, sigma)
}

var ns = []int{300, 1000, 3000}

func basePolicy(name string, window time.Duration, targets []gate.Target, rule gate.Rule) func() *gate.Policy {
	return func() *gate.Policy {
		return &gate.Policy{
			Name:           name,
			Window:         window,
			MinRequests:    minRequests,
			OnInconclusive: gate.Inconclusive,
			CoverageFloor:  gate.DefaultCoverageFloor,
			Targets:        append([]gate.Target(nil), targets...),
			Rules:          []gate.Rule{rule},
		}
	}
}

var (
	checkoutTarget = gate.Target{Name: "checkout", Resource: gate.ResourceRef{Type: "deployment", Name: "checkout", Namespace: "shop"}}
	stableTarget   = gate.Target{Name: "stable", Resource: gate.ResourceRef{Type: "deployment", Name: "checkout", Namespace: "shop"}}
	canaryTarget   = gate.Target{Name: "canary", Resource: gate.ResourceRef{Type: "deployment", Name: "checkout-canary", Namespace: "shop"}}
)

func decisionName(d gate.Decision) string {
	if d == gate.Estimate {
		return "estimate"
	}
	return "sequential"
}

// allCases returns the study's cases in table order.
func allCases() []*caseSpec {
	var cs []*caseSpec
	decisions := []gate.Decision{gate.DecisionDefault, gate.Estimate}

	// 1. errorRate max 1%.
	const budget = 0.01
	rates := []struct {
		p      float64
		truth  string
		expect expect
	}{
		{0.02, "2% (2x budget)", expectFail},
		{0.005, "0.5% (0.5x)", expectPass},
		{0.01, "1% (at the budget)", expectNone},
	}
	for _, rt := range rates {
		for _, d := range decisions {
			for _, n := range ns {
				rule := gate.Rule{Name: "error-rate", Kind: gate.ErrorRate, Max: budget, Decision: d}
				c := &caseSpec{
					id: fmt.Sprintf("rate/%s/%g/%d", decisionName(d), rt.p, n), sec: secRate, decision: d,
					truth: rt.truth, expect: rt.expect, n: n, rule: "errorRate max 1%", window: seqWindow,
					policy: basePolicy("honesty-error-rate", seqWindow, []gate.Target{checkoutTarget}, rule),
					traffic: trafficSpec{span: seqSpan, body: bodyTime, targets: []targetTraffic{
						{count: n, pods: 3, fail: failModel{rate: rt.p, w500: 0.6, w503: 0.4}, lat: healthyLatency}}},
				}
				c.exact = &exactCheck{test: newOneSample(budget, tolerance, confidence, minRequests), p: rt.p,
					estimate: d == gate.Estimate, allowed: allowedBad(n, budget)}
				cs = append(cs, c)
			}
		}
	}

	// 2. latency p99 max 300ms, lognormal latencies of shape p99Sigma.
	lats := []struct {
		lat        latencyModel
		expect     expect
		hypothesis bool
	}{
		{lognormalWithQuantile(400*time.Millisecond, 0.99, p99Sigma), expectFail, false},
		{lognormalWithQuantile(200*time.Millisecond, 0.99, p99Sigma), expectPass, false},
		// The shares the test's bounds are stated at: exactly 2% and 0.5%
		// of requests slower than 300ms.
		{lognormalWithShare(0.02), expectFail, true},
		{lognormalWithShare(0.005), expectPass, true},
	}
	for _, lt := range lats {
		lat := lt.lat
		p99 := lat.quantile(0.99)
		over := lat.over(p99Bound)
		truth := fmt.Sprintf("p99 %s (%.2fx): %s over 300ms", fmtMS(p99), p99.Seconds()/p99Bound.Seconds(), pct(over, 2))
		for _, d := range decisions {
			for _, n := range ns {
				rule := gate.Rule{Name: "p99", Kind: gate.LatencyQuantile, Quantile: 0.99, MaxLatency: p99Bound, Metric: gate.MetricLatency, Decision: d}
				c := &caseSpec{
					id: fmt.Sprintf("p99/%s/%.4f/%d", decisionName(d), over, n), sec: secP99, decision: d,
					truth: truth, expect: lt.expect, hypothesis: lt.hypothesis, n: n, rule: "latency p99 max 300ms", window: seqWindow,
					policy: basePolicy("honesty-p99", seqWindow, []gate.Target{checkoutTarget}, rule),
					traffic: trafficSpec{span: seqSpan, body: bodyTime, slow: p99Bound, targets: []targetTraffic{
						{count: n, pods: 3, lat: lat}}},
				}
				c.exact = &exactCheck{test: newOneSample(1-0.99, tolerance, confidence, minRequests), p: over,
					estimate: d == gate.Estimate, allowed: allowedBad(n, 1-0.99)}
				cs = append(cs, c)
			}
		}
	}

	// 3. Early stop: the demo's broken canary (5% 500, 3% 503, 1% resets)
	// at 20 rps against successRate min 99%, 3s warmup + 40s window.
	for _, d := range decisions {
		const warmup, window = 3 * time.Second, 40 * time.Second
		rule := gate.Rule{Name: "success-rate", Kind: gate.SuccessRate, Min: 0.99, Decision: d}
		pf := basePolicy("honesty-early-stop", window, []gate.Target{canaryTarget}, rule)
		cs = append(cs, &caseSpec{
			id: "early/" + decisionName(d), sec: secEarly, decision: d, truth: "9% failing (9x budget)", expect: expectFail,
			n: 1200, rule: "successRate min 99%", window: window,
			policy: func() *gate.Policy { p := pf(); p.Warmup = warmup; return p },
			traffic: trafficSpec{span: warmup + window, body: bodyTime, targets: []targetTraffic{
				{rate: 20, pods: 1, fail: failModel{rate: 0.09, w500: 5, w503: 3, wReset: 1}, lat: canaryLatency}}},
		})
	}

	// 4. Compare rules: the canary against a stable baseline with 3x its
	// traffic.
	const baseRate, maxIncrease = 0.005, 0.01
	incs := []struct {
		d            float64
		truth, short string
		expect       expect
	}{
		{0.02, "canary 2.5% vs 0.5%: +2pp (bad)", "+2pp", expectFail},
		{0.005, "canary 1% vs 0.5%: +0.5pp (good)", "+0.5pp", expectPass},
		{0, "canary 0.5% vs 0.5%: +0 (equal)", "+0", expectPass},
	}
	for _, in := range incs {
		for _, n := range []int{1000, 3000} {
			rule := gate.Rule{Name: "error-rate-vs-stable", Kind: gate.CompareErrorRate, Target: "canary", Baseline: "stable", MaxIncrease: maxIncrease}
			cs = append(cs, &caseSpec{
				id: fmt.Sprintf("cmp-rate/%g/%d", in.d, n), sec: secCompareRate, truth: in.truth, short: in.short, expect: in.expect, n: n,
				rule: "compare errorRate maxIncrease 1pp", window: seqWindow,
				policy: basePolicy("honesty-compare-rate", seqWindow, []gate.Target{stableTarget, canaryTarget}, rule),
				traffic: trafficSpec{span: seqSpan, body: bodyTime, judged: 1, targets: []targetTraffic{
					{count: 3 * n, pods: 3, fail: failModel{rate: baseRate, w500: 0.6, w503: 0.4}, lat: healthyLatency},
					{count: n, pods: 1, fail: failModel{rate: baseRate + in.d, w500: 0.6, w503: 0.4}, lat: healthyLatency}}},
			})
		}
	}
	limit := compareLimit()
	shares := []struct {
		share  float64
		label  string
		expect expect
	}{
		{0.02, "bad", expectFail},
		{0.005, "good", expectPass},
		{compareBase.over(limit), "equal", expectPass},
	}
	for _, sh := range shares {
		canary := sh.share
		lat := compareCanary(canary)
		truth := fmt.Sprintf("%s over 1.2x stable's p99 (%s): canary p99 %s vs %s (%s)", pct(canary, 2), fmtMS(limit), fmtMS(lat.quantile(0.99)), fmtMS(compareBase.quantile(0.99)), sh.label)
		if sh.label == "equal" {
			truth = fmt.Sprintf("canary = stable, p99 %s: %s over 1.2x (equal)", fmtMS(compareBase.quantile(0.99)), pct(canary, 2))
		}
		for _, n := range []int{1000, 3000} {
			rule := gate.Rule{Name: "p99-vs-stable", Kind: gate.CompareLatency, Target: "canary", Baseline: "stable", Quantile: 0.99, MaxRatio: compareRatio, Metric: gate.MetricLatency}
			cs = append(cs, &caseSpec{
				id: fmt.Sprintf("cmp-lat/%s/%d", sh.label, n), sec: secCompareLatency, truth: truth, short: fmt.Sprintf("%s over (%s)", pct(canary, 2), sh.label), expect: sh.expect, n: n,
				rule: "compare latency p99 maxRatio 1.2", window: seqWindow,
				policy: basePolicy("honesty-compare-latency", seqWindow, []gate.Target{stableTarget, canaryTarget}, rule),
				traffic: trafficSpec{span: seqSpan, body: bodyTime, judged: 1, targets: []targetTraffic{
					{count: 3 * n, pods: 3, lat: compareBase},
					{count: n, pods: 1, lat: lat}}},
			})
		}
	}
	return cs
}

// lognormalWithShare is the lognormal of shape p99Sigma with exactly the
// given share of requests slower than p99Bound.
func lognormalWithShare(share float64) latencyModel {
	return latencyModel{mu: logSec(p99Bound) - p99Sigma*normQuantile(1-share), sigma: p99Sigma}
}

func logSec(d time.Duration) float64 { return math.Log(d.Seconds()) }

// compareLimit is 1.2x the baseline's true p99.
func compareLimit() time.Duration {
	return time.Duration(float64(compareBase.quantile(0.99)) * compareRatio)
}

// compareCanary is the canary latency of the baseline's shape with the
// given share of requests slower than compareLimit.
func compareCanary(share float64) latencyModel {
	return latencyModel{mu: logSec(compareLimit()) - p99Sigma*normQuantile(1-share), sigma: p99Sigma}
}
