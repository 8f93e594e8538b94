package gate

import (
	"fmt"
	"math"
	"strings"
)

// Decision says how a rate or latency rule turns its sample into a verdict.
type Decision uint8

const (
	// DecisionDefault inherits: a rule takes the policy's, a policy means
	// Sequential.
	DecisionDefault Decision = iota
	// Sequential: a threshold is a claim about the service's true rate,
	// decided by a sequential test with stated error bounds (sequential.go,
	// compare.go). The default.
	Sequential
	// Estimate: the point estimate of the sample is compared with the
	// threshold once the minimum sample is reached (estimate.go), as k6
	// thresholds and Prometheus-query gates do.
	Estimate
)

func (d Decision) String() string {
	switch d {
	case Sequential:
		return "sequential"
	case Estimate:
		return "estimate"
	}
	return "default"
}

// ParseDecision parses "sequential" or "estimate".
func ParseDecision(s string) (Decision, bool) {
	switch s {
	case "sequential":
		return Sequential, true
	case "estimate":
		return Estimate, true
	}
	return 0, false
}

// DefaultConfidence is the default confidence of every test: a release
// twice over budget passes at most 1% of the time, one at half the budget
// fails at most 1% of the time.
const DefaultConfidence = 0.99

// DefaultTolerance is the default factor between the budget and the rates
// the error bounds are stated at: budget/2 ("good") and budget*2 ("bad").
const DefaultTolerance = 2.0

// TestParams are a rule's resolved decision knobs.
type TestParams struct {
	Decision   Decision
	Confidence float64 // 0.5 < Confidence < 1
	Tolerance  float64 // > 1
}

// Alpha is the bound on false passes: the probability that a bad release
// passes.
func (t TestParams) Alpha() float64 { return 1 - t.Confidence }

// Beta is the bound on false fails: the probability that a good release
// fails.
func (t TestParams) Beta() float64 { return 1 - t.Confidence }

// Params resolves the rule's knobs against the policy's and the defaults.
func (r *Rule) Params(p *Policy) TestParams {
	t := TestParams{Decision: Sequential, Confidence: DefaultConfidence, Tolerance: DefaultTolerance}
	if p != nil {
		t.override(p.Decision, p.Confidence, p.Tolerance)
	}
	t.override(r.Decision, r.Confidence, r.Tolerance)
	return t
}

// override takes the knobs that are set (non-zero).
func (t *TestParams) override(d Decision, confidence, tolerance float64) {
	if d != DecisionDefault {
		t.Decision = d
	}
	if confidence > 0 {
		t.Confidence = confidence
	}
	if tolerance > 0 {
		t.Tolerance = tolerance
	}
}

// Budget is the share of "bad" samples a one-sample rule allows: failures
// for successRate and errorRate, requests slower than the bound for latency
// rules (1-q). Compare and counting rules have none (0).
func (r *Rule) Budget() float64 {
	switch r.Kind {
	case SuccessRate:
		return 1 - r.Min
	case ErrorRate:
		return r.Max
	case LatencyQuantile, CompareLatency:
		return 1 - r.Quantile
	}
	return 0
}

// Hypotheses returns the two rates a budget's test is designed around:
// good = budget/k and bad = budget*k. For budgets above 1/(k+1) the bad
// rate is taken symmetrically from the other end (1-(1-budget)/k), so that
// it stays below 1: a p50 rule's bad share is 75% at k = 2, not 100%.
func Hypotheses(budget, k float64) (good, bad float64) {
	good = budget / k
	bad = math.Min(budget*k, 1-(1-budget)/k)
	return good, bad
}

// CheckParams returns a problem with a rule's knobs in plain words, or
// nil. The policy loader reports it with the rule's line.
func CheckParams(r *Rule, p *Policy) error {
	if !r.Kind.Tested() {
		return nil
	}
	t := r.Params(p)
	if t.Confidence <= 0.5 || t.Confidence >= 1 {
		return fmt.Errorf("confidence %s must be above 50%% and below 100%%, e.g. 99%%", FormatPercent(t.Confidence))
	}
	if t.Tolerance <= 1 || math.IsInf(t.Tolerance, 0) || math.IsNaN(t.Tolerance) {
		return fmt.Errorf("tolerance %s must be greater than 1 (the default is 2: the bounds hold at half and at twice the budget)", trimFloat(t.Tolerance))
	}
	if t.Decision != Sequential {
		return nil
	}
	failures := "[5xx, grpc-error, reset]"
	if p != nil && len(p.Classification.FailOn) > 0 {
		failures = "[" + condListComma(p.Classification.FailOn) + "]"
	}
	switch r.Kind {
	case SuccessRate:
		if r.Min >= 1 {
			return fmt.Errorf("successRate min 100%% cannot be decided sequentially: no sample proves a failure rate of exactly 0; use count: {of: %s, max: 0}, or decision: estimate", failures)
		}
	case ErrorRate:
		if r.Max <= 0 {
			return fmt.Errorf("errorRate max 0%% cannot be decided sequentially: no sample proves a failure rate of exactly 0; use count: {of: %s, max: 0}, or decision: estimate", failures)
		}
	case CompareErrorRate:
		if r.MaxIncrease*t.Tolerance >= 1 {
			return fmt.Errorf("maxIncrease %spp times tolerance %s reaches 100%%: the test's bad case (an increase of %spp) cannot happen, so no sample could fail the rule; use a smaller maxIncrease or tolerance", trimFloat(r.MaxIncrease*100), trimFloat(t.Tolerance), trimFloat(r.MaxIncrease*t.Tolerance*100))
		}
	}
	return nil
}

func condListComma(cs []Cond) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}
