package gate

import (
	"fmt"
	"time"
)

// countRule is a count rule: at most Max responses may meet its
// conditions. It counts, it does not estimate: once over the maximum it
// has failed for good, and it passes only on the minimum sample.
type countRule struct{}

func (countRule) add(rs *ruleState, s sample) bool {
	return s.bad && rs.matched == uint64(rs.r.Max)+1
}

func (countRule) decide(rs *ruleState, res *RuleResult, c *evalContext) {
	r := rs.r
	n, N := rs.samples, c.need
	res.HasValue = true
	res.Observed = float64(rs.matched)
	max := uint64(r.Max)
	switch {
	case rs.matched > max:
		res.Outcome = Fail
		res.Decided = true
		res.Reason = fmt.Sprintf("%d responses were %s, at most %d allowed", rs.matched, condList(r.Count), max)
	case n < N:
		res.Outcome = Inconclusive
		res.Reason = fmt.Sprintf("%d matching so far, but only %d of the %d requests needed", rs.matched, n, N)
	default:
		res.Outcome = Pass
		res.Reason = fmt.Sprintf("%d of %d responses were %s, at most %d allowed", rs.matched, n, condList(r.Count), max)
	}
}

// requestRateRule is a requestRate rule: tap must see at least Min
// requests per second over the window. It passes as soon as enough
// requests were seen for the whole window, and fails only when the window
// has closed without them. A run that stops early judges the time it
// actually tapped.
type requestRateRule struct{}

func (requestRateRule) add(*ruleState, sample) bool { return false }

func (requestRateRule) decide(rs *ruleState, res *RuleResult, c *evalContext) {
	r, v, p := rs.r, c.v, c.p
	res.Samples = rs.started
	res.Required = 0
	window := p.Window.Seconds()
	el := v.Elapsed.Seconds()
	switch {
	case !v.TimeKnown:
		res.Outcome = Inconclusive
		res.Reason = "the events carry no time (a plain linkerd viz tap recording), so a rate per second is unknown; record with tapgate to keep arrival times"
	case window > 0 && rs.started > 0 && float64(rs.started) >= r.Min*window-eps:
		res.HasValue = true
		res.Observed = float64(rs.started) / el
		if v.Elapsed <= 0 {
			res.Observed = 0
		}
		res.Outcome = Pass
		res.Reason = fmt.Sprintf("%d requests seen, at least %s over the %s window", rs.started, trimFloat(r.Min*window), p.Window)
	case c.stopped && el > 0 && rs.started > 0 && float64(rs.started) >= r.Min*el-eps:
		res.HasValue = true
		res.Observed = float64(rs.started) / el
		res.Outcome = Pass
		res.Reason = fmt.Sprintf("%d requests in the %s tapped before the run stopped: %s rps, at least %s", rs.started, v.Elapsed.Round(time.Millisecond), trimFloat(res.Observed), trimFloat(r.Min))
	case !v.Final || c.stopped:
		res.Outcome = Inconclusive
		res.Reason = fmt.Sprintf("%d requests so far; the window is still open", rs.started)
		if c.stopped {
			res.Reason = fmt.Sprintf("%d requests in the %s tapped before the run stopped, below %s rps", rs.started, v.Elapsed.Round(time.Millisecond), trimFloat(r.Min))
		}
	default:
		if el > 0 {
			res.HasValue = true
			res.Observed = float64(rs.started) / el
		}
		res.Outcome = Fail
		res.Reason = fmt.Sprintf("%d requests in %s is %s rps, below %s rps", rs.started, v.Elapsed.Round(time.Millisecond), trimFloat(res.Observed), trimFloat(r.Min))
	}
}
