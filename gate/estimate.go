package gate

import (
	"fmt"
	"time"
)

// estimate is `decision: estimate`: the point estimate of the sample is
// compared with the threshold once the minimum sample is reached, exactly
// as tapgate decided before sequential tests, and as k6 thresholds and
// Prometheus-query gates do. It has no error bounds: at a few hundred
// requests a release twice over budget passes about one time in seven. A
// FAIL below the minimum sample (when the failures already seen exceed what
// the minimum allows) is not final: the rate can still fall once the
// window has more requests, so an estimate rule never stops a run early.
type estimate struct{}

func (estimate) add(*ruleState, sample) bool { return false }

func (estimate) decide(rs *ruleState, res *RuleResult, c *evalContext) {
	if rs.r.Kind == LatencyQuantile {
		estimateLatency(rs, res, c.need)
		return
	}
	estimateRate(rs, res, c.need)
}

// rateView fills a rate rule's observed value and 95% Wilson interval.
func rateView(rs *ruleState, res *RuleResult) {
	r := rs.r
	n := rs.samples
	succ := n - rs.bad
	iv := Wilson(succ, n)
	if n > 0 {
		rate := float64(succ) / float64(n)
		res.HasValue = true
		res.Observed = rate
		if r.Kind == ErrorRate {
			res.Observed = 1 - rate
			iv = Interval{Low: 1 - iv.High, High: 1 - iv.Low}
		}
	}
	res.Interval = &iv
}

func estimateRate(rs *ruleState, res *RuleResult, N uint64) {
	r := rs.r
	n := rs.samples
	rateView(rs, res)
	iv := *res.Interval
	// Compare as error rates: failures over max(n, N) is the best the
	// rate can still become once the minimum sample is reached.
	maxErr := r.Budget()
	what := "error rate"
	if r.Kind == SuccessRate {
		what = "success rate"
	}
	switch {
	case n == 0:
		res.Outcome, res.Reason = Inconclusive, "no requests matched this rule: zero traffic is never a pass"
	case n < N:
		best := float64(rs.bad) / float64(N)
		if best > maxErr+eps {
			res.Outcome = Fail
			res.Reason = fmt.Sprintf("%d failures in %d requests already exceed what %d requests allow (%s); more traffic cannot fix that", rs.bad, n, N, r.Threshold())
		} else {
			res.Outcome = Inconclusive
			res.Reason = fmt.Sprintf("only %d of the %d requests needed", n, N)
		}
	case float64(rs.bad)/float64(n) > maxErr+eps:
		res.Outcome = Fail
		res.Reason = fmt.Sprintf("%s %s violates %s (%d of %d requests failed)", what, FormatPercent(res.Observed), r.Threshold(), rs.bad, n)
	default:
		res.Outcome = Pass
		res.Reason = fmt.Sprintf("%s %s meets %s (%d of %d requests failed)", what, FormatPercent(res.Observed), r.Threshold(), rs.bad, n)
		if (r.Kind == SuccessRate && iv.Low < r.Min) || (r.Kind == ErrorRate && iv.High > r.Max) {
			res.Reason += "; the threshold is inside the 95% interval, so this is a narrow pass"
		}
	}
}

// latencyView fills a latency rule's observed quantile and its interval.
func latencyView(rs *ruleState, res *RuleResult) {
	q := rs.r.Quantile
	if d, ok := rs.sketch.Quantile(q); ok {
		res.HasValue = true
		res.Observed = d.Seconds()
		if iv, ok := rs.sketch.QuantileCI(q); ok {
			res.QuantileCI = &iv
		}
	}
}

func estimateLatency(rs *ruleState, res *RuleResult, N uint64) {
	r := rs.r
	n := rs.samples
	q := r.Quantile
	latencyView(rs, res)
	obs := FormatDuration(time.Duration(res.Observed * float64(time.Second)))
	switch {
	case n == 0:
		res.Outcome, res.Reason = Inconclusive, "no completed requests with a "+r.Metric.String()+": zero traffic is never a pass"
	case n < N:
		// With N samples and every missing one fast, the rank ceil(qN)
		// value is still slow when too many are already slow.
		if N-rs.bad < NearestRank(q, N) {
			res.Outcome = Fail
			res.Reason = fmt.Sprintf("%d of %d requests are already slower than %s, more than %d requests allow for %s", rs.bad, n, FormatDuration(r.MaxLatency), N, QuantileName(q))
		} else {
			res.Outcome = Inconclusive
			res.Reason = fmt.Sprintf("only %d of the %d samples a %s needs", n, N, QuantileName(q))
		}
	default:
		allowed := n - NearestRank(q, n)
		if rs.bad > allowed {
			res.Outcome = Fail
			res.Reason = fmt.Sprintf("%s %s ≈ %s > %s: %d of %d requests slower than %s, %d allowed", QuantileName(q), r.Metric, obs, FormatDuration(r.MaxLatency), rs.bad, n, FormatDuration(r.MaxLatency), allowed)
		} else {
			res.Outcome = Pass
			res.Reason = fmt.Sprintf("%s %s ≈ %s <= %s: %d of %d requests slower than %s, %d allowed", QuantileName(q), r.Metric, obs, FormatDuration(r.MaxLatency), rs.bad, n, FormatDuration(r.MaxLatency), allowed)
		}
	}
}
