package gate

import (
	"time"
)

// Outcome is the verdict of a rule or of the whole gate.
type Outcome uint8

const (
	Pass Outcome = iota + 1
	Fail
	Inconclusive
)

func (o Outcome) String() string {
	switch o {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case Inconclusive:
		return "inconclusive"
	}
	return "unknown"
}

// ParseOutcome parses "pass", "fail" or "inconclusive".
func ParseOutcome(s string) (Outcome, bool) {
	switch s {
	case "pass":
		return Pass, true
	case "fail":
		return Fail, true
	case "inconclusive":
		return Inconclusive, true
	}
	return 0, false
}

// Request is one completed request, the unit every statistic counts.
type Request struct {
	Method    string
	Authority string
	Path      string
	Pod       string

	Status     uint32 // HTTP status; 0 when there was no ResponseInit
	GRPC       int32  // gRPC status from eos or trailer; -1 when none
	Reset      bool
	ResetCode  uint32
	NoResponse bool // ended without ResponseInit and without eos

	Latency    time.Duration // ResponseInit.since_request_init
	HasLatency bool
	Duration   time.Duration // ResponseEnd.since_request_init

	Failed bool

	// ignoreKnown says ignoreRoutes holds, per Classification.Ignore
	// entry, whether its route matched the full request (the engine
	// matches at RequestInit and keeps only a bounded copy of the path).
	ignoreKnown  bool
	ignoreRoutes uint64
}

// Interval is a two-sided confidence interval.
type Interval struct {
	Low  float64
	High float64
}

// Quantiles holds latency quantiles in a report.
type Quantiles struct {
	P50, P95, P99 time.Duration
	// CI50, CI95 and CI99 are their distribution-free 95% intervals.
	CI50, CI95, CI99 DurationInterval
	Valid            bool // false when there were no samples
}

// Stats are the counts of one target, pod or route cell.
type Stats struct {
	Requests    uint64 // completed requests
	Successes   uint64
	Failures    uint64
	InFlight    uint64 // started but not finished at evaluation time
	SuccessRate float64
	Interval    Interval // 95% Wilson interval of SuccessRate
	Latency     Quantiles
	Duration    Quantiles
	Status      map[uint32]uint64 // HTTP status -> count
	GRPC        map[uint32]uint64 // gRPC status (non-OK included) -> count
	Resets      uint64
	NoResponse  uint64
}

// PodStats are the statistics of one pod of a target.
type PodStats struct {
	Pod string
	Stats
}

// TargetResult is what the gate saw of one target.
type TargetResult struct {
	Name     string
	Resource string
	Stats
	Pods []PodStats
	// PodsOther counts requests from pods beyond the per-target pod cap.
	PodsOther uint64
	// Warmup counts requests started during warmup, not evaluated.
	Warmup uint64
	// Orphans counts response events whose request began before the tap.
	Orphans uint64
	// Evicted counts in-flight requests dropped when the in-flight table was
	// full; they are never counted as successes.
	Evicted uint64
	// Coverage is the share of the window the target was actually tapped;
	// 1 when the source cannot tell.
	Coverage float64
	// Notes are source-level facts worth a line in the report.
	Notes []string
	// CrossCheck compares the tapped sample with the proxies' own counts;
	// nil when none ran.
	CrossCheck *CrossCheck
}

// RuleResult is the outcome of one rule on one target.
type RuleResult struct {
	Name      string
	Kind      RuleKind
	Target    string
	Route     string
	Outcome   Outcome
	Observed  float64 // ratio, seconds or count: see Kind
	HasValue  bool    // false when nothing was observed (no samples)
	Threshold string
	Samples   uint64
	Required  int
	Interval  *Interval // for rates
	Reason    string
	DryRun    bool
	Line      int

	// Decision is how the rule decided (Sequential or Estimate); zero for
	// counting rules (count, requestRate).
	Decision Decision
	// Decided says no further traffic can change the outcome: a latched
	// sequential FAIL, a count already over its maximum. A live run stops
	// on a decided FAIL.
	Decided bool
	// Test holds the sequential test's figures; nil for estimate and
	// counting rules.
	Test *TestResult
	// QuantileCI is the distribution-free 95% interval of a latency rule's
	// observed quantile.
	QuantileCI *DurationInterval
	// Compare holds what a compare rule saw of both targets.
	Compare *CompareResult
}

// TestResult are the figures behind a sequential decision.
type TestResult struct {
	Confidence float64
	Tolerance  float64
	// Good and Bad are the rates of "bad" samples (failures, or requests
	// slower than the bound) the error bounds are stated at.
	Good, Bad float64
	// BadSamples counts the samples the test counted as bad.
	BadSamples uint64
	// LLR is the log likelihood ratio of Bad over Good; the rule fails at
	// FailBoundary and passes at or below PassBoundary. For compare rules
	// these are the fail-side test's; PassLLR is the pass side's. A side
	// that has not started yet (compare.go) has a NaN ratio.
	LLR, PassLLR               float64
	FailBoundary, PassBoundary float64
	// DecidedAfter is the sample count at which a FAIL was decided, and
	// DecidedAt the time into the window (when time is known); 0 when not
	// decided.
	DecidedAfter uint64
	DecidedAt    time.Duration
	// MoreSamples estimates how many more samples would likely decide the
	// rule at the observed rate; 0 when decided, -1 when it cannot be told
	// (nothing observed yet, or the test cannot move at that rate).
	MoreSamples int64
	// CleanPass is the number of samples, none bad, that pass a fresh
	// test: the plain-words size of the test.
	CleanPass uint64
}

// CompareResult is what a compare rule saw of its target and baseline.
type CompareResult struct {
	Baseline string
	// Samples and Observed of the baseline: its error rate, or its
	// quantile in seconds.
	BaselineSamples  uint64
	BaselineObserved float64
	BaselineHasValue bool
	// Target's own value: error rate or quantile (seconds).
	TargetObserved float64
	TargetHasValue bool
	// BaselineLow and BaselineHigh are the anytime-valid bounds of the
	// baseline's value the test used (rate, or quantile in seconds); High
	// is +Inf when not bounded yet.
	BaselineLow, BaselineHigh float64
	// Bound is the threshold the target is held to, from the baseline's
	// point estimate: rate (baseline + increase) or latency seconds.
	Bound float64
	// Increase says a CompareLatency rule bounds the difference of the
	// quantiles (Observed in seconds) rather than their ratio.
	Increase bool
}

// Verdict is the gate's decision at one moment.
type Verdict struct {
	Policy  string
	Outcome Outcome
	Final   bool          // the window has closed, or the run stopped on a decided verdict
	Elapsed time.Duration // evaluated time (after warmup)
	Window  time.Duration
	Targets []TargetResult
	Rules   []RuleResult
	// TimeKnown is false when events carried no time (plain tap recordings):
	// warmup could not be applied and rates per second are unknown.
	TimeKnown bool
	// StoppedEarly says the run ended before the window closed because the
	// verdict was decided (a FAIL no traffic can undo, or every rule
	// passed with stopOnPass); StopReason says which. Elapsed is then the
	// time actually tapped.
	StoppedEarly bool
	StopReason   string
}

// Combine applies DESIGN §3: any FAIL -> FAIL; else any INCONCLUSIVE ->
// INCONCLUSIVE; else PASS. Dry-run rules do not count; no rules at all is
// inconclusive, never a pass.
func Combine(rules []RuleResult) Outcome {
	out := Pass
	counted := 0
	for _, r := range rules {
		if r.DryRun {
			continue
		}
		counted++
		switch r.Outcome {
		case Fail:
			return Fail
		case Inconclusive:
			out = Inconclusive
		case Pass:
		default:
			out = Inconclusive
		}
	}
	if counted == 0 {
		return Inconclusive
	}
	return out
}

// Exit codes, DESIGN §3.
const (
	ExitPass         = 0
	ExitFail         = 1
	ExitUsage        = 2
	ExitInconclusive = 3
	ExitInfra        = 4
	ExitInterrupted  = 5
)

// ExitCode maps a verdict to its exit code, honouring onInconclusive.
func ExitCode(o Outcome, onInconclusive Outcome) int {
	switch o {
	case Pass:
		return ExitPass
	case Fail:
		return ExitFail
	}
	switch onInconclusive {
	case Pass:
		return ExitPass
	case Fail:
		return ExitFail
	}
	return ExitInconclusive
}
