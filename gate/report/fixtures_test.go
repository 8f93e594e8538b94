package report

import (
	"math"
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
		s.Latency = gate.Quantiles{P50: msDur(p50), P95: msDur(p95), P99: msDur(p99), Valid: true}
		// Durations a little above latencies, as streaming bodies are.
		s.Duration = gate.Quantiles{P50: msDur(p50 * 1.5), P95: msDur(p95 * 1.5), P99: msDur(p99 * 1.5), Valid: true}
	} else {
		s.Interval = wilson(0, 0)
	}
	return s
}

func pod(name string, requests, failures uint64, p99 float64) gate.PodStats {
	return gate.PodStats{Pod: name, Stats: stats(requests, failures, 0, p99/4, p99/2, p99)}
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
	return v, Meta{
		Version:  "v0.1.0",
		Source:   "live tap via https://admin:s3cret-pass@k8s.example.com:6443",
		ExitCode: gate.ExitInterrupted, StartTime: start,
	}
}

type fixture struct {
	name  string
	build func() (*gate.Verdict, Meta)
}

var fixtures = []fixture{
	{"pass-two-targets", passTwoTargets},
	{"fail-dry-run", failDryRun},
	{"inconclusive-zero-traffic", inconclusiveZero},
	{"replay-unknown-time", replayUnknownTime},
	{"interrupted-partial", interruptedPartial},
}
