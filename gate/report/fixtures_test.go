package report

import (
	"math"
	"strings"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// Hand-built verdicts for the golden tests. Notes use the engine's wording
// (gate/engine.go) so the reports look like real ones.

// wilson is the 95% Wilson interval, kept here so the fixtures do not
// depend on the engine's helper.
func wilson(k, n uint64) gate.Interval {
	if n == 0 {
		return gate.Interval{Low: 0, High: 1}
	}
	const z = 1.959963984540054
	nf := float64(n)
	p := float64(k) / nf
	den := 1 + z*z/nf
	centre := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return gate.Interval{Low: math.Max(0, centre-half), High: math.Min(1, centre+half)}
}

func msDur(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// quantileCI is a plausible distribution-free 95% interval of the
// q-quantile p of n samples, kept here so the fixtures do not depend on the
// engine: the order-statistic ranks from the normal approximation of the
// binomial, mapped to values as if the tail were exponential. The high end
// is unknown when the rank passes n, as it does for a p99 of 64 samples.
func quantileCI(p time.Duration, n uint64, q float64) gate.DurationInterval {
	var iv gate.DurationInterval
	if n == 0 {
		return iv
	}
	nf := float64(n)
	half := 1.959963984540054 * math.Sqrt(nf*q*(1-q))
	l := math.Floor(nf*q - half)
	u := math.Ceil(nf*q+half) + 1
	at := func(rank float64) time.Duration {
		prob := (rank - 0.5) / nf
		return time.Duration(float64(p) * math.Log(1/(1-prob)) / math.Log(1/(1-q))).Round(time.Microsecond)
	}
	if l >= 1 {
		iv.Low = at(l)
	}
	if u <= nf {
		iv.High, iv.HighKnown = at(u), true
	}
	return iv
}

// quants builds target quantiles with their intervals.
func quants(n uint64, p50, p95, p99 float64) gate.Quantiles {
	q := gate.Quantiles{P50: msDur(p50), P95: msDur(p95), P99: msDur(p99), Valid: true}
	q.CI50 = quantileCI(q.P50, n, 0.5)
	q.CI95 = quantileCI(q.P95, n, 0.95)
	q.CI99 = quantileCI(q.P99, n, 0.99)
	return q
}

// sequentialTest fills a sequential test's figures the way the engine
// does (gate/sequential.go) for a one-target rule with the given budget,
// at 99% confidence and tolerance 2: n samples, k of them bad.
func sequentialTest(budget float64, n, k uint64) *gate.TestResult {
	good, bad := budget/2, math.Min(budget*2, 1-(1-budget)/2)
	boundary := math.Log(1 / 0.01)
	step := math.Log((1 - bad) / (1 - good))
	llr := float64(k)*math.Log(bad/good) + float64(n-k)*step
	return &gate.TestResult{
		Confidence: 0.99, Tolerance: 2, Good: good, Bad: bad, BadSamples: k,
		LLR: llr, PassLLR: llr, FailBoundary: boundary, PassBoundary: -boundary,
		CleanPass: uint64(math.Ceil(boundary / -step)),
	}
}

// estimated marks the rate and latency rules of an older-style fixture as
// decided by point estimate, as their reasons are worded, and gives latency
// rules the quantile interval the engine always reports.
func estimated(v *gate.Verdict) {
	for i := range v.Rules {
		r := &v.Rules[i]
		if !r.Kind.Tested() {
			continue
		}
		r.Decision = gate.Estimate
		if r.Kind == gate.LatencyQuantile && r.HasValue {
			q := 0.99
			switch {
			case strings.HasPrefix(r.Threshold, "p99.9 "):
				q = 0.999
			case strings.HasPrefix(r.Threshold, "p95 "):
				q = 0.95
			}
			iv := quantileCI(seconds(r.Observed), r.Samples, q)
			r.QuantileCI = &iv
		}
	}
}

// stats builds consistent counts: rate and interval from successes/requests.
func stats(requests, failures, inFlight uint64, p50, p95, p99 float64) gate.Stats {
	s := gate.Stats{
		Requests:  requests,
		Successes: requests - failures,
		Failures:  failures,
		InFlight:  inFlight,
		Status:    map[uint32]uint64{},
		GRPC:      map[uint32]uint64{},
	}
	if requests > 0 {
		s.SuccessRate = float64(s.Successes) / float64(requests)
		s.Interval = wilson(s.Successes, requests)
		s.Latency = quants(requests, p50, p95, p99)
		// Durations a little above latencies, as streaming bodies are.
		s.Duration = quants(requests, p50*1.5, p95*1.5, p99*1.5)
	} else {
		s.Interval = wilson(0, 0)
	}
	return s
}

func pod(name string, requests, failures uint64, p99 float64) gate.PodStats {
	p := gate.PodStats{Pod: name, Stats: stats(requests, failures, 0, p99/4, p99/2, p99)}
	// The engine keeps no intervals per pod.
	for _, q := range []*gate.Quantiles{&p.Latency, &p.Duration} {
		q.CI50, q.CI95, q.CI99 = gate.DurationInterval{}, gate.DurationInterval{}, gate.DurationInterval{}
	}
	return p
}

func rateRule(name, target string, kind gate.RuleKind, threshold string, succ, n uint64, required int, outcome gate.Outcome, reason string) gate.RuleResult {
	r := gate.RuleResult{
		Name: name, Kind: kind, Target: target, Outcome: outcome,
		Threshold: threshold, Samples: n, Required: required, Reason: reason,
	}
	iv := wilson(succ, n)
	if n > 0 {
		r.HasValue = true
		r.Observed = float64(succ) / float64(n)
		if kind == gate.ErrorRate {
			r.Observed = 1 - r.Observed
			iv = gate.Interval{Low: 1 - iv.High, High: 1 - iv.Low}
		}
	}
	r.Interval = &iv
	return r
}

var start = time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC)

// passTwoTargets: a clean pass with two targets, several pods each.
func passTwoTargets() (*gate.Verdict, Meta) {
	gw := gate.TargetResult{
		Name: "gateway", Resource: "deployment/api-gateway",
		Stats:    stats(4820, 7, 0, 12.4, 48.9, 121.7),
		Coverage: 1,
		Pods: []gate.PodStats{
			pod("api-gateway-7d9f8b6c5-x2x9z", 1611, 3, 125.2),
			pod("api-gateway-7d9f8b6c5-abcde", 1602, 2, 118.9),
			pod("api-gateway-7d9f8b6c5-k8s2p", 1607, 2, 120.4),
		},
		Warmup: 912,
		Notes:  []string{"912 requests started during the 10s warmup and were not evaluated"},
	}
	gw.Status[200] = 4801
	gw.Status[404] = 12
	gw.Status[503] = 7
	be := gate.TargetResult{
		Name: "backend", Resource: "deployment/backend",
		Stats:    stats(2410, 0, 0, 3.2, 9.75, 22.125),
		Coverage: 1,
		Pods: []gate.PodStats{
			pod("backend-5c6d7e8f9-aaaaa", 1204, 0, 21.9),
			pod("backend-5c6d7e8f9-bbbbb", 1206, 0, 22.3),
		},
	}
	be.GRPC[0] = 2410
	v := &gate.Verdict{
		Policy: "api-gateway-release", Outcome: gate.Pass, Final: true,
		Window: 60 * time.Second, Elapsed: 50 * time.Second, TimeKnown: true,
		Targets: []gate.TargetResult{gw, be},
		Rules: []gate.RuleResult{
			rateRule("success-rate", "gateway", gate.SuccessRate, ">= 99.5%", 4813, 4820, 100, gate.Pass,
				"success rate 99.855% meets >= 99.5% (7 failures in 4820 requests)"),
			rateRule("success-rate", "backend", gate.SuccessRate, ">= 99.5%", 2410, 2410, 100, gate.Pass,
				"success rate 100% meets >= 99.5% (0 failures in 2410 requests)"),
			{Name: "p99-latency", Kind: gate.LatencyQuantile, Target: "gateway", Outcome: gate.Pass,
				Observed: 0.1217, HasValue: true, Threshold: "p99 <= 300ms", Samples: 4820, Required: 100,
				Reason: "p99 latency ≈ 121.7ms <= 300ms: 3 of 4820 requests slower than 300ms, 48 allowed", Line: 22},
			{Name: "p99-latency", Kind: gate.LatencyQuantile, Target: "backend", Outcome: gate.Pass,
				Observed: 0.022125, HasValue: true, Threshold: "p99 <= 300ms", Samples: 2410, Required: 100,
				Reason: "p99 latency ≈ 22.125ms <= 300ms: 0 of 2410 requests slower than 300ms, 24 allowed", Line: 22},
			{Name: "traffic-present", Kind: gate.RequestRate, Target: "gateway", Outcome: gate.Pass,
				Observed: 96.4, HasValue: true, Threshold: ">= 1 rps", Samples: 4820, Required: 1,
				Reason: "4820 requests seen, at least 50 over the 50s window", Line: 30},
		},
	}
	v.Rules[0].Line, v.Rules[1].Line = 18, 18
	estimated(v)
	return v, Meta{
		Version: "v0.1.0", PolicyFile: "policies/api-gateway.yaml",
		Source: "live tap via https://10.96.0.1:443", StartTime: start,
		ExitCode: gate.ExitPass, OnInconclusive: gate.Fail,
	}
}

// failDryRun: one real failure, a dry-run failure, a route rule, a count
// rule, and every kind of target note.
func failDryRun() (*gate.Verdict, Meta) {
	co := gate.TargetResult{
		Name: "checkout", Resource: "deployment/checkout",
		Stats:    stats(1250, 19, 3, 35.5, 180.25, 412.0),
		Coverage: 0.95,
		Pods: []gate.PodStats{
			pod("checkout-6b7c8d9e0-qwert", 640, 17, 530.1),
			pod("checkout-6b7c8d9e0-asdfg", 590, 2, 290.7),
		},
		PodsOther: 20,
		Warmup:    210,
		Orphans:   4,
		Evicted:   2,
		Notes: []string{
			"20 requests from pods beyond the first 2 are counted in the target totals only",
			"2 in-flight requests were dropped when more than 10000 were open at once; they count as neither success nor failure",
			"4 response events belonged to requests that began before the tap and were not counted",
			"210 requests started during the 10s warmup and were not evaluated",
		},
	}
	co.Status[200] = 1180
	co.Status[201] = 40
	co.Status[429] = 8
	co.Status[503] = 16
	co.Resets = 2
	co.NoResponse = 1
	v := &gate.Verdict{
		Policy: "checkout-release", Outcome: gate.Fail, Final: true,
		Window: 2 * time.Minute, Elapsed: 110 * time.Second, TimeKnown: true,
		Targets: []gate.TargetResult{co},
		Rules: []gate.RuleResult{
			rateRule("success-rate", "checkout", gate.SuccessRate, ">= 98%", 1231, 1250, 100, gate.Pass,
				"success rate 98.48% meets >= 98% (19 failures in 1250 requests)"),
			rateRule("checkout-errors", "checkout", gate.ErrorRate, "<= 0.1%", 399, 400, 50, gate.Fail,
				"error rate 0.25% violates <= 0.1% (1 failures in 400 requests)"),
			{Name: "p99-latency", Kind: gate.LatencyQuantile, Target: "checkout", Outcome: gate.Pass,
				Observed: 0.412, HasValue: true, Threshold: "p99 <= 500ms", Samples: 1250, Required: 100,
				Reason: "p99 latency ≈ 412ms <= 500ms: 9 of 1250 requests slower than 500ms, 12 allowed", Line: 27},
			{Name: "no-429", Kind: gate.ResponseCount, Target: "checkout", Outcome: gate.Pass,
				Observed: 8, HasValue: true, Threshold: "<= 10", Samples: 1250, Required: 100,
				Reason: "8 of 1250 responses were 429, at most 10 allowed", Line: 31},
			{Name: "tail", Kind: gate.LatencyQuantile, Target: "checkout", Outcome: gate.Fail,
				Observed: 2.75, HasValue: true, Threshold: "p99.9 <= 2s", Samples: 1250, Required: 1000,
				Reason: "p99.9 duration ≈ 2.75s > 2s: 3 of 1250 requests slower than 2s, 1 allowed", DryRun: true, Line: 35},
		},
	}
	v.Rules[0].Line = 19
	v.Rules[1].Route = "POST ^/api/v[0-9]+/checkout"
	v.Rules[1].Line = 22
	estimated(v)
	return v, Meta{
		Version: "v0.1.0", PolicyFile: "policies/checkout.yaml",
		Source: "live tap via https://10.96.0.1:443", StartTime: start,
		ExitCode: gate.ExitFail, OnInconclusive: gate.Inconclusive,
	}
}

// inconclusiveZero: the target saw no traffic; nothing has a value.
func inconclusiveZero() (*gate.Verdict, Meta) {
	t := gate.TargetResult{
		Name: "payments", Resource: "deployment/payments",
		Stats: stats(0, 0, 0, 0, 0, 0), Coverage: 1,
	}
	noTraffic := "no requests matched this rule: zero traffic is never a pass"
	v := &gate.Verdict{
		Policy: "payments-canary", Outcome: gate.Inconclusive, Final: true,
		Window: 30 * time.Second, Elapsed: 30 * time.Second, TimeKnown: true,
		Targets: []gate.TargetResult{t},
		Rules: []gate.RuleResult{
			rateRule("success-rate", "payments", gate.SuccessRate, ">= 99.9%", 0, 0, 100, gate.Inconclusive, noTraffic),
			{Name: "p95-latency", Kind: gate.LatencyQuantile, Target: "payments", Outcome: gate.Inconclusive,
				Threshold: "p95 <= 250ms", Required: 100,
				Reason: "no completed requests with a latency: zero traffic is never a pass", Line: 14},
			{Name: "traffic-present", Kind: gate.RequestRate, Target: "payments", Outcome: gate.Fail,
				HasValue: true, Observed: 0, Threshold: ">= 0.5 rps", Required: 1,
				Reason: "0 requests in 30s is 0 rps, below 0.5 rps", DryRun: true, Line: 17},
		},
	}
	v.Rules[0].Line = 11
	estimated(v)
	return v, Meta{
		Version: "v0.1.0", PolicyFile: "payments.yaml",
		Source: "live tap via https://10.96.0.1:443", StartTime: start,
		ExitCode: gate.ExitFail, OnInconclusive: gate.Fail,
	}
}

// replayUnknownTime: a plain `linkerd viz tap -o json` recording: no times,
// no start time, one pod, a request-rate rule that cannot decide.
func replayUnknownTime() (*gate.Verdict, Meta) {
	t := gate.TargetResult{
		Name: "web", Resource: "",
		Stats: stats(312, 1, 0, 4.1, 15.5, 60.0), Coverage: 1,
		Pods:  []gate.PodStats{pod("web-0", 312, 1, 60.0)},
		Notes: []string{"the recording has no event times; warmup was not applied"},
	}
	t.Status[200] = 311
	t.Status[500] = 1
	v := &gate.Verdict{
		Policy: "web-smoke", Outcome: gate.Inconclusive, Final: true,
		Targets: []gate.TargetResult{t},
		Rules: []gate.RuleResult{
			rateRule("success-rate", "web", gate.SuccessRate, ">= 99%", 311, 312, 100, gate.Pass,
				"success rate 99.679% meets >= 99% (1 failures in 312 requests)"),
			{Name: "traffic-present", Kind: gate.RequestRate, Target: "web", Outcome: gate.Inconclusive,
				Threshold: ">= 1 rps", Samples: 312, Required: 1,
				Reason: "the events carry no time (a plain linkerd viz tap recording), so a rate per second is unknown; record with tapgate to keep arrival times", Line: 12},
		},
	}
	v.Rules[0].Line = 9
	estimated(v)
	return v, Meta{
		Version: "v0.1.0", PolicyFile: "examples/web-smoke.yaml",
		Source: "replay examples/web-tap.json", ExitCode: gate.ExitInconclusive,
	}
}

// interruptedPartial: SIGINT half way through a live run; the source URL
// carries credentials that must not be printed.
func interruptedPartial() (*gate.Verdict, Meta) {
	t := gate.TargetResult{
		Name: "api", Resource: "deployment/api",
		Stats: stats(57, 0, 5, 8, 20, 31), Coverage: 1,
		Pods: []gate.PodStats{pod("api-1", 57, 0, 31)},
	}
	v := &gate.Verdict{
		Policy: "api", Outcome: gate.Inconclusive, Final: false,
		Window: 60 * time.Second, Elapsed: 12500 * time.Millisecond, TimeKnown: true,
		Targets: []gate.TargetResult{t},
		Rules: []gate.RuleResult{
			rateRule("success-rate", "api", gate.SuccessRate, ">= 99.5%", 57, 57, 100, gate.Inconclusive,
				"only 57 of the 100 requests needed"),
		},
	}
	estimated(v)
	return v, Meta{
		Version:  "v0.1.0",
		Source:   "live tap via https://admin:s3cret-pass@k8s.example.com:6443",
		ExitCode: gate.ExitInterrupted, StartTime: start,
	}
}

// seqRate is a sequential rate rule: succ of n requests succeeded.
func seqRate(name, target string, kind gate.RuleKind, threshold string, budget float64, succ, n uint64, required int, outcome gate.Outcome, reason string) gate.RuleResult {
	r := rateRule(name, target, kind, threshold, succ, n, required, outcome, reason)
	r.Decision = gate.Sequential
	r.Test = sequentialTest(budget, n, n-succ)
	return r
}

// seqLatency is a sequential latency rule on the q-quantile: slow of n
// samples were slower than the bound.
func seqLatency(name, target, threshold string, q, observedMs float64, n, slow uint64, required int, outcome gate.Outcome, reason string) gate.RuleResult {
	obs := msDur(observedMs)
	iv := quantileCI(obs, n, q)
	return gate.RuleResult{
		Name: name, Kind: gate.LatencyQuantile, Target: target, Outcome: outcome,
		Observed: obs.Seconds(), HasValue: n > 0, Threshold: threshold, Samples: n, Required: required,
		Reason: reason, Decision: gate.Sequential, Test: sequentialTest(1-q, n, slow), QuantileCI: &iv,
	}
}

// failedAt latches a sequential FAIL the way the engine does: the ratio
// froze when the failN-th sample (failK of them bad) reached the boundary.
func failedAt(r gate.RuleResult, budget float64, failN, failK uint64, at time.Duration) gate.RuleResult {
	t := sequentialTest(budget, failN, failK)
	t.BadSamples = r.Test.BadSamples
	t.DecidedAfter, t.DecidedAt = failN, at
	r.Test, r.Decided = t, true
	return r
}

// sequentialMix: a full window decided by sequential tests: passes, an
// undecided route rule with a hint, a point-estimate rule, and a dry-run
// tail rule whose FAIL was decided early (dry-run rules never stop a run)
// with a quantile interval the sample cannot bound from above.
func sequentialMix() (*gate.Verdict, Meta) {
	co := gate.TargetResult{
		Name: "checkout", Resource: "deployment/checkout",
		Stats:    stats(3000, 8, 0, 18.2, 96.4, 212.7),
		Coverage: 1,
		Pods: []gate.PodStats{
			pod("checkout-7d9f8b6c5-m8p3z", 1004, 3, 220.1),
			pod("checkout-7d9f8b6c5-t6w9n", 998, 2, 208.4),
			pod("checkout-7d9f8b6c5-x2k4q", 998, 3, 209.9),
		},
		Warmup: 480,
		Notes:  []string{"480 requests started during the 10s warmup and were not evaluated"},
	}
	co.Status[200] = 2992
	co.Status[503] = 8
	v := &gate.Verdict{
		Policy: "checkout-release", Outcome: gate.Inconclusive, Final: true,
		Window: 60 * time.Second, Elapsed: 60 * time.Second, TimeKnown: true,
		Targets: []gate.TargetResult{co},
		Rules: []gate.RuleResult{
			seqRate("success-rate", "checkout", gate.SuccessRate, ">= 99.5%", 0.005, 2992, 3000, 100, gate.Pass,
				"passed at 99% confidence: 8 of 3000 failed (0.267%); a release with success 99% or less passes at most 1% of the time"),
			seqLatency("p99-latency", "checkout", "p99 <= 300ms", 0.99, 212.7, 3000, 4, 100, gate.Pass,
				"passed at 99% confidence: 4 of 3000 slower than 300ms (0.133%); a release with 2% or more slower than 300ms passes at most 1% of the time"),
			seqRate("checkout-errors", "checkout", gate.ErrorRate, "<= 1%", 0.01, 406, 412, 50, gate.Inconclusive,
				"undecided at 99% confidence: 6 of 412 failed (1.456%), not yet enough to tell 0.5% failing from 2% failing; about 472 more requests would likely decide it at the observed rate (~1m9s at 6.9/s)"),
			{Name: "checkout-p95", Kind: gate.LatencyQuantile, Target: "checkout", Outcome: gate.Pass,
				Observed: 0.1813, HasValue: true, Threshold: "p95 <= 250ms", Samples: 412, Required: 100, Decision: gate.Estimate,
				Reason: "p95 latency ≈ 181.3ms <= 250ms: 14 of 412 requests slower than 250ms, 20 allowed"},
			failedAt(seqLatency("tail", "checkout", "p99.9 <= 1000ms", 0.999, 1420, 3000, 9, 1000, gate.Fail,
				"failed at 99% confidence after 580 samples, 4 slower than 1000ms: a release with 0.05% or fewer slower than 1000ms fails at most 1% of the time; no later traffic can undo it (9 of 3000 slower than 1000ms (0.3%) in all)"),
				0.001, 580, 4, 11600*time.Millisecond),
			{Name: "traffic-present", Kind: gate.RequestRate, Target: "checkout", Outcome: gate.Pass,
				Observed: 50, HasValue: true, Threshold: ">= 1 rps", Samples: 3000, Required: 1,
				Reason: "3000 requests seen, at least 60 over the 1m0s window", Line: 33},
		},
	}
	route := "POST ^/api/v[0-9]+/checkout"
	v.Rules[2].Route, v.Rules[3].Route = route, route
	v.Rules[2].Test.MoreSamples = 472
	iv := quantileCI(msDur(181.3), 412, 0.95)
	v.Rules[3].QuantileCI = &iv
	v.Rules[4].DryRun = true
	for i, l := range []int{18, 21, 24, 28, 36} {
		v.Rules[i].Line = l
	}
	return v, Meta{
		Version: "v0.2.0", PolicyFile: "policies/checkout.yaml",
		Source: "live tap via https://10.96.0.1:443", StartTime: start,
		ExitCode: gate.ExitInconclusive, OnInconclusive: gate.Inconclusive,
	}
}

// stoppedEarly: a live run that stopped 2.1s into a 40s window on the
// canary's decided success-rate FAIL. The other rules are undecided, and
// 64 samples cannot bound a p99 from above.
func stoppedEarly() (*gate.Verdict, Meta) {
	st := gate.TargetResult{
		Name: "stable", Resource: "deployment/checkout",
		Stats:    stats(64, 0, 1, 21.3, 74.8, 98.1),
		Coverage: 1,
		Pods: []gate.PodStats{
			pod("checkout-7d9f8b6c5-m8p3z", 22, 0, 98.1),
			pod("checkout-7d9f8b6c5-t6w9n", 21, 0, 80.2),
			pod("checkout-7d9f8b6c5-x2k4q", 21, 0, 91.7),
		},
		Warmup: 301,
		Notes:  []string{"301 requests started during the 10s warmup and were not evaluated"},
	}
	st.Status[200] = 64
	ca := gate.TargetResult{
		Name: "canary", Resource: "deployment/checkout-canary",
		Stats:    stats(63, 4, 2, 24.9, 161.2, 402.5),
		Coverage: 1,
		Pods:     []gate.PodStats{pod("checkout-canary-6f9c7b-q2w3e", 63, 4, 402.5)},
		Warmup:   296,
		Notes:    []string{"296 requests started during the 10s warmup and were not evaluated"},
	}
	ca.Status[200] = 59
	ca.Status[503] = 4
	const tapped = 2100 * time.Millisecond
	v := &gate.Verdict{
		Policy: "checkout-canary", Outcome: gate.Fail, Final: true,
		Window: 40 * time.Second, Elapsed: tapped, TimeKnown: true,
		StoppedEarly: true,
		StopReason:   "canary/success-rate failed 2.1s into the window and no later traffic can undo it",
		Targets:      []gate.TargetResult{st, ca},
		Rules: []gate.RuleResult{
			seqRate("success-rate", "stable", gate.SuccessRate, ">= 99.5%", 0.005, 64, 64, 100, gate.Inconclusive,
				"undecided at 99% confidence: 0 of 64 failed (0%), not yet enough to tell success 99.75% from success 99%; about 547 more requests would likely decide it at the observed rate (~18s at 30.5/s)"),
			seqLatency("p99-latency", "stable", "p99 <= 300ms", 0.99, 98.1, 64, 0, 100, gate.Inconclusive,
				"undecided at 99% confidence: 0 of 64 slower than 300ms (0%), not yet enough to tell 0.5% slower from 2% slower; about 240 more samples would likely decide it at the observed rate (~8s at 30.5/s)"),
			{Name: "traffic-present", Kind: gate.RequestRate, Target: "stable", Outcome: gate.Pass,
				Observed: 65 / tapped.Seconds(), HasValue: true, Threshold: ">= 1 rps", Samples: 65, Required: 1,
				Reason: "65 requests in the 2.1s tapped before the run stopped: 30.952 rps, at least 1"},
			failedAt(seqRate("success-rate", "canary", gate.SuccessRate, ">= 99.5%", 0.005, 59, 63, 100, gate.Fail,
				"failed at 99% confidence after 63 requests, 4 failed: a release with success 99.75% or more fails at most 1% of the time; no later traffic can undo it"),
				0.005, 63, 4, tapped),
			seqLatency("p99-latency", "canary", "p99 <= 300ms", 0.99, 402.5, 63, 1, 100, gate.Inconclusive,
				"undecided at 99% confidence: 1 of 63 slower than 300ms (1.587%), not yet enough to tell 0.5% slower from 2% slower; about 586 more samples would likely decide it at the observed rate (~20s at 30.0/s)"),
			{Name: "traffic-present", Kind: gate.RequestRate, Target: "canary", Outcome: gate.Pass,
				Observed: 65 / tapped.Seconds(), HasValue: true, Threshold: ">= 1 rps", Samples: 65, Required: 1,
				Reason: "65 requests in the 2.1s tapped before the run stopped: 30.952 rps, at least 1"},
		},
	}
	v.Rules[0].Test.MoreSamples = 547
	v.Rules[1].Test.MoreSamples = 240
	v.Rules[4].Test.MoreSamples = 586
	for i, l := range []int{25, 27, 33, 25, 27, 33} {
		v.Rules[i].Line = l
	}
	return v, Meta{
		Version: "v0.2.0", PolicyFile: "policies/checkout-canary.yaml",
		Source: "live tap via https://10.96.0.1:443", StartTime: start,
		ExitCode: gate.ExitFail, OnInconclusive: gate.Inconclusive,
	}
}

// compareBaseline: a canary judged against its stable baseline over a full
// window: an error-rate comparison that passes, a p99 ratio the
// baseline's bounds cannot decide yet, a p50 increase that passes, a
// dry-run p95 ratio whose FAIL was decided, and a route comparison waiting
// for the baseline's minimum sample. Figures as the engine computed them
// for a simulated canary.
func compareBaseline() (*gate.Verdict, Meta) {
	st := gate.TargetResult{
		Name: "stable", Resource: "deployment/checkout",
		Stats: stats(3000, 7, 0, 18.778, 63.607, 93.946), Coverage: 1,
	}
	st.Status[200] = 2993
	st.Status[503] = 7
	ca := gate.TargetResult{
		Name: "canary", Resource: "deployment/checkout-canary",
		Stats: stats(3000, 28, 0, 25.348, 86.723, 125.553), Coverage: 1,
	}
	ca.Status[200] = 2972
	ca.Status[503] = 28
	b := math.Log(2 / 0.01) // each side of a comparison has half the error budget
	test := func(good, bad float64, k uint64, llr, passLLR float64, more int64) *gate.TestResult {
		return &gate.TestResult{Confidence: 0.99, Tolerance: 2, Good: good, Bad: bad, BadSamples: k,
			LLR: llr, PassLLR: passLLR, FailBoundary: b, PassBoundary: -b, MoreSamples: more}
	}
	dur := func(ms float64) time.Duration { return msDur(ms).Round(time.Microsecond) }
	ci := func(lo, hi float64) *gate.DurationInterval {
		return &gate.DurationInterval{Low: dur(lo), High: dur(hi), HighKnown: true}
	}
	v := &gate.Verdict{
		Policy: "checkout-canary-compare", Outcome: gate.Inconclusive, Final: true,
		Window: 60 * time.Second, Elapsed: 60 * time.Second, TimeKnown: true,
		Targets: []gate.TargetResult{st, ca},
		Rules: []gate.RuleResult{
			{Name: "errors-vs-stable", Kind: gate.CompareErrorRate, Target: "canary", Outcome: gate.Pass,
				Observed: 0.007, HasValue: true, Threshold: "<= stable + 1pp", Samples: 3000, Required: 100, Line: 30,
				Reason:   "passed at 99% confidence: canary 0.933% (28 of 3000 failed) vs stable 0.233% (7 of 3000); a target with an increase of 2pp or more passes at most 1% of the time",
				Decision: gate.Sequential, Test: test(0.013755076810806496, 0.02025221321619229, 28, -31.57269201943267, -7.038649203738352, 0),
				Compare: &gate.CompareResult{Baseline: "stable", BaselineSamples: 3000, BaselineObserved: 7.0 / 3000, BaselineHasValue: true,
					TargetObserved: 28.0 / 3000, TargetHasValue: true, BaselineLow: 0.00025221321619229155, BaselineHigh: 0.008755076810806497, Bound: 7.0/3000 + 0.01}},
			{Name: "p99-vs-stable", Kind: gate.CompareLatency, Target: "canary", Outcome: gate.Inconclusive,
				Observed: 125.553 / 93.946, HasValue: true, Threshold: "p99 <= 1.2x stable", Samples: 3000, Required: 100, Line: 34,
				Reason:   "undecided at 99% confidence: canary p99 125.553ms (3000 samples) vs stable 93.946ms (3000 samples), bound 112.735ms; at the observed rate the test is unlikely to decide: it is too close to the threshold for any practical sample",
				Decision: gate.Sequential, Test: test(0.005, 0.02, 9, -32.95713574240259, 75.29780097171343, -1),
				QuantileCI: ci(121.233, 132.65),
				Compare: &gate.CompareResult{Baseline: "stable", BaselineSamples: 3000, BaselineObserved: 0.093946, BaselineHasValue: true,
					TargetObserved: 0.125553, TargetHasValue: true, BaselineLow: 0.08208123548, BaselineHigh: 0.115320161145, Bound: 0.1127352}},
			{Name: "p50-vs-stable", Kind: gate.CompareLatency, Target: "canary", Outcome: gate.Pass,
				Observed: 0.025348 - 0.018778, HasValue: true, Threshold: "p50 <= stable + 20ms", Samples: 3000, Required: 100, Line: 38,
				Reason:   "passed at 99% confidence: canary p50 25.348ms (3000 samples) vs stable 18.778ms (3000 samples), bound 38.778ms; a target with 75% or more over it passes at most 1% of the time",
				Decision: gate.Sequential, Test: test(0.25, 0.75, 790, -1560.0294499087668, -1056.8650216987476, 0),
				QuantileCI: ci(24.233, 26.515),
				Compare: &gate.CompareResult{Increase: true, Baseline: "stable", BaselineSamples: 3000, BaselineObserved: 0.018778, BaselineHasValue: true,
					TargetObserved: 0.025348, TargetHasValue: true, BaselineLow: 0.016906467875, BaselineHigh: 0.02064964053, Bound: 0.038778}},
			{Name: "p95-vs-stable", Kind: gate.CompareLatency, Target: "canary", Outcome: gate.Fail, Decided: true, DryRun: true,
				Observed: 86.723 / 63.607, HasValue: true, Threshold: "p95 <= 1.1x stable", Samples: 3000, Required: 100, Line: 42,
				Reason:   "failed at 99% confidence after 1161 requests: canary p95 86.723ms (3000 samples) vs stable 63.607ms (3000 samples), bound 69.967ms; a target with 2.5% or fewer of its requests over the bound fails at most 1% of the time; no later traffic can undo it",
				Decision: gate.Sequential, Test: test(0.025, 0.1, 173, 5.315000000183139, 41.73, 0),
				QuantileCI: ci(82.081, 93.477),
				Compare: &gate.CompareResult{Baseline: "stable", BaselineSamples: 3000, BaselineObserved: 0.063607, BaselineHasValue: true,
					TargetObserved: 0.086723, TargetHasValue: true, BaselineLow: 0.057841500195, BaselineHigh: 0.07064788602, Bound: 0.0699677}},
			{Name: "checkout-errors-vs-stable", Kind: gate.CompareErrorRate, Target: "canary", Route: "POST ^/api/v[0-9]+/checkout", Outcome: gate.Inconclusive,
				Observed: 2.0/41 - 0.0/37, HasValue: true, Threshold: "<= stable + 1pp", Samples: 41, Required: 50, Line: 46,
				Reason:   "the comparison starts once the baseline stable has 50 requests (it has 37): canary 4.878% (2 of 41 failed) vs stable 0% (0 of 37)",
				Decision: gate.Sequential, Test: test(0, 0, 0, 0, 0, -1),
				Compare: &gate.CompareResult{Baseline: "stable", BaselineSamples: 37, BaselineHasValue: true,
					TargetObserved: 2.0 / 41, TargetHasValue: true, BaselineHigh: math.Inf(1), Bound: 0.01}},
		},
	}
	v.Rules[3].Test.DecidedAfter, v.Rules[3].Test.DecidedAt = 1161, 23200*time.Millisecond
	return v, Meta{
		Version: "v0.2.0", PolicyFile: "policies/checkout-compare.yaml",
		Source: "live tap via https://10.96.0.1:443", StartTime: start,
		ExitCode: gate.ExitInconclusive, OnInconclusive: gate.Inconclusive,
	}
}

type fixture struct {
	name  string
	build func() (*gate.Verdict, Meta)
}

// crossChecked: passTwoTargets with a cross-check against Prometheus: the
// first target's sample is representative at 6.7% of the volume (3 pods
// at 500 rps, maxRPS 100), the second's is not: its errors fall late in
// each second, where first-N-per-second sampling does not look.
func crossChecked() (*gate.Verdict, Meta) {
	v, meta := passTwoTargets()
	src := "prometheus via the apiserver's service proxy (linkerd-viz/prometheus:9090)"
	buckets := func(total float64) gate.Quantiles {
		return gate.HistogramQuantiles([]gate.HistogramBucket{{UpperMs: 10, Count: total * 0.2}, {UpperMs: 50, Count: total * 0.9}, {UpperMs: 100, Count: total * 0.985}, {UpperMs: 200, Count: total * 0.998}, {UpperMs: math.Inf(1), Count: total}})
	}
	for i := range v.Targets {
		t := &v.Targets[i]
		total := float64(t.Requests) * 15
		cc := &gate.CrossCheck{
			TappedRequests: t.Requests, TappedFailures: t.Failures, TotalRequests: total,
			VolumeCoverage: float64(t.Requests) / total, TappedErrorRate: 1 - t.SuccessRate,
			Latency: buckets(total), Source: src, PValue: 0.62,
		}
		cc.TotalFailures = cc.TappedErrorRate * total
		cc.TotalErrorRate = cc.TappedErrorRate
		if i == 1 {
			cc.TotalFailures = 0.04 * total
			cc.TotalErrorRate = 0.04
			cc.Mismatch, cc.PValue = true, 3.1e-9
			cc.Notes = []string{"labelSelector track!=canary cannot be applied to the metrics (only equality terms map to labels): the counts cover every pod of the target"}
		}
		t.CrossCheck = cc
	}
	return v, meta
}

var fixtures = []fixture{
	{"pass-two-targets", passTwoTargets},
	{"fail-dry-run", failDryRun},
	{"inconclusive-zero-traffic", inconclusiveZero},
	{"replay-unknown-time", replayUnknownTime},
	{"interrupted-partial", interruptedPartial},
	{"sequential-mix", sequentialMix},
	{"stopped-early", stoppedEarly},
	{"compare-baseline", compareBaseline},
	{"cross-check", crossChecked},
}
