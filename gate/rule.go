package gate

import (
	"fmt"
	"math"
	"time"
)

// sample is what one completed request means to one rule.
type sample struct {
	// bad: the request failed (rate rules) or was slower than the bound
	// (latency rules).
	bad bool
	// value is the latency or duration of a latency rule's sample.
	value time.Duration
	// at is the time into the window, when hasTime.
	at      time.Duration
	hasTime bool
}

// decider is one rule's decision procedure. Each is a small type in its own
// file: estimate.go (point estimate), sequential.go (Wald's SPRT),
// compare.go (target against baseline), counting.go (count and
// requestRate). add sees every sample of the rule as it completes and
// reports whether it has just decided a FAIL that no later traffic can
// undo; decide turns the rule's state into an outcome when asked.
type decider interface {
	add(rs *ruleState, s sample) (failedNow bool)
	decide(rs *ruleState, res *RuleResult, c *evalContext)
}

// evalContext is what a decider may know when asked.
type evalContext struct {
	p        *Policy
	v        *Verdict
	need     uint64 // the rule's minimum sample
	params   TestParams
	stopped  bool // the run stops early now
	rateKnow bool // v.Elapsed is a measured time, so rates per second are known
}

// perSecond returns the rule's sample rate per second when time is known.
func (c *evalContext) perSecond(n uint64) (float64, bool) {
	if !c.rateKnow || c.v.Elapsed <= 0 || n == 0 {
		return 0, false
	}
	return float64(n) / c.v.Elapsed.Seconds(), true
}

// ruleState is the window state of one rule on one target.
type ruleState struct {
	r   *Rule
	bit uint64
	// started counts requests begun in the window (requestRate).
	started uint64
	// samples counts completed requests that matched the rule (for
	// latency rules: those with a latency); bad those that failed or were
	// slower than the bound; matched those meeting a count rule's
	// conditions.
	samples, bad, matched uint64
	sketch                *Sketch // latency kinds
	dec                   decider
	// baselineOf is set on the state a compare rule keeps on its baseline
	// target: it feeds the comparison and yields no result of its own.
	baselineOf comparer
}

func newRuleState(r *Rule, p *Policy, bit uint64) *ruleState {
	rs := &ruleState{r: r, bit: bit}
	if r.Kind == LatencyQuantile || r.Kind == CompareLatency {
		rs.sketch = NewSketch()
	}
	params := r.Params(p)
	switch {
	case r.Kind == ResponseCount:
		rs.dec = countRule{}
	case r.Kind == RequestRate:
		rs.dec = requestRateRule{}
	case r.Kind == CompareErrorRate:
		rs.dec = newCompareRate(r, p)
	case r.Kind == CompareLatency:
		rs.dec = newCompareLatency(r, p)
	case params.Decision == Estimate:
		rs.dec = estimate{}
	default:
		rs.dec = newSequential(r, params)
	}
	return rs
}

// observe counts one completed request that matched the rule's route and
// reports whether it decided a FAIL.
func (rs *ruleState) observe(r *Request, at time.Duration, hasTime bool) bool {
	s := sample{at: at, hasTime: hasTime}
	switch rs.r.Kind {
	case LatencyQuantile, CompareLatency:
		v, ok := r.Latency, r.HasLatency
		if rs.r.Metric == MetricDuration {
			v, ok = r.Duration, true
		}
		if !ok {
			// No response headers: no latency sample, though the request
			// still counts for rates.
			return false
		}
		s.value = v
		s.bad = rs.r.Kind == LatencyQuantile && v > rs.r.MaxLatency
	case ResponseCount:
		for _, c := range rs.r.Count {
			if c.Matches(r) {
				s.bad = true
				break
			}
		}
	default:
		s.bad = r.Failed
	}
	if rs.baselineOf != nil {
		return rs.baselineOf.addBaseline(s)
	}
	rs.samples++
	if s.bad {
		if rs.r.Kind == ResponseCount {
			rs.matched++
		} else {
			rs.bad++
		}
	}
	if rs.sketch != nil {
		rs.sketch.Add(s.value)
	}
	return rs.dec.add(rs, s)
}

// evaluate returns the rule's result on target ts.
func (e *Engine) evaluateRule(ts *targetState, rs *ruleState, v *Verdict) RuleResult {
	r := rs.r
	need := r.RequiredSamples(e.p)
	res := RuleResult{
		Name:      r.Name,
		Kind:      r.Kind,
		Target:    ts.t.Name,
		Route:     r.Route.String(),
		Threshold: r.Threshold(),
		Samples:   rs.samples,
		Required:  need,
		DryRun:    r.DryRun,
		Line:      r.Line,
	}
	c := &evalContext{p: e.p, v: v, need: uint64(need), params: r.Params(e.p), stopped: e.stopped, rateKnow: v.TimeKnown}
	rs.dec.decide(rs, &res, c)
	if r.Kind.Tested() {
		res.Decision = c.params.Decision
	}
	floor := e.p.CoverageFloor
	if floor <= 0 {
		// A zero Policy value means the default, never "no floor".
		floor = DefaultCoverageFloor
	}
	if ts.coverageKnown && ts.coverage+eps < floor && res.Outcome == Pass {
		res.Outcome = Inconclusive
		res.Reason = fmt.Sprintf("the target was tapped for only %s of the window (floor %s); %s", FormatPercent(ts.coverage), FormatPercent(floor), res.Reason)
	}
	return res
}

// moreText renders an estimate of the samples still needed, with the time
// it takes at the observed rate when that is known ("about 640 more
// requests, ~21s at the observed 30 rps").
func moreText(more float64, noun string, c *evalContext, n uint64) string {
	if math.IsInf(more, 1) || math.IsNaN(more) || more > 1e9 {
		return "at the observed rate the test is unlikely to decide: it is too close to the threshold for any practical sample"
	}
	m := uint64(math.Ceil(more))
	if m < 1 {
		m = 1
	}
	s := fmt.Sprintf("about %d more %s would likely decide it at the observed rate", m, noun)
	if rps, ok := c.perSecond(n); ok {
		s += fmt.Sprintf(" (~%s at %.1f/s)", roundTime(time.Duration(float64(m)/rps*float64(time.Second))), rps)
	}
	return s
}

// clampMore converts an estimate to the TestResult field.
func clampMore(more float64) int64 {
	if math.IsInf(more, 0) || math.IsNaN(more) || more > 1e15 {
		return -1
	}
	return int64(math.Ceil(more))
}

// roundTime renders a duration for a hint: whole seconds, or
// milliseconds below one second.
func roundTime(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
