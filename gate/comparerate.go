package gate

import (
	"fmt"
	"math"
)

// compareRate is a compare rule on error rates: the target's may exceed
// the baseline's by at most MaxIncrease (absolute: 0.01 is one percentage
// point). It decides with two anytime-valid two-sample tests
// (twosample.go) on blocks of requests from both targets, which need no
// estimate of the baseline's rate:
//
//   - the fail side against "the increase is at most MaxIncrease/k": it
//     fails a target whose increase is that small or smaller with
//     probability at most 1-confidence;
//   - the pass side against "the increase is at least MaxIncrease*k": it
//     passes a target at least that much worse with probability at most
//     1-confidence.
//
// Both hold however often the verdict is looked at, and even when both
// targets' rates drift during the window, provided the bound holds within
// each short block of requests. A FAIL is latched; a PASS is read at the
// moment of asking and needs the minimum sample on both targets.
type compareRate struct {
	compareBase
	fail, pass *twoSample
	// The block being filled.
	a, kc, b, kb uint64
	// failN is the target's sample count when the FAIL was reached.
	failN uint64
}

func newCompareRate(r *Rule, p *Policy) *compareRate {
	tp := r.Params(p)
	d, k := r.MaxIncrease, tp.Tolerance
	c := &compareRate{compareBase: compareBase{r: r, tp: tp, need: uint64(r.RequiredSamples(p))}}
	c.fail = newTwoSample(d/k, d*k, true, tp.Beta())
	c.pass = newTwoSample(d*k, d/k, false, tp.Alpha())
	return c
}

func (c *compareRate) addBaseline(s sample) bool {
	c.bN++
	c.b++
	if s.bad {
		c.bBad++
		c.kb++
	}
	return c.close(s)
}

func (c *compareRate) add(_ *ruleState, s sample) bool {
	c.a++
	if s.bad {
		c.kc++
	}
	return c.close(s)
}

// close tests the block once it holds a sample of each target.
func (c *compareRate) close(s sample) bool {
	if !c.sequentialOn() || c.a == 0 || c.b == 0 {
		return false
	}
	failed := c.fail.block(c.a, c.kc, c.b, c.kb)
	c.pass.block(c.a, c.kc, c.b, c.kb)
	c.a, c.kc, c.b, c.kb = 0, 0, 0, 0
	if failed {
		c.failedAt(s)
		c.failN = c.fail.nc
	}
	return failed
}

func (c *compareRate) decide(rs *ruleState, res *RuleResult, ec *evalContext) {
	r := c.r
	n := rs.samples
	cr := &CompareResult{Baseline: r.Baseline, BaselineSamples: c.bN, BaselineHigh: math.Inf(1)}
	res.Compare = cr
	if n > 0 {
		cr.TargetObserved, cr.TargetHasValue = float64(rs.bad)/float64(n), true
	}
	if c.bN > 0 {
		cr.BaselineObserved, cr.BaselineHasValue = float64(c.bBad)/float64(c.bN), true
		cr.Bound = cr.BaselineObserved + r.MaxIncrease
		cr.BaselineLow, cr.BaselineHigh = RateBounds(c.bBad, c.bN, 1-QuantileCILevel)
	}
	res.HasValue = cr.TargetHasValue && cr.BaselineHasValue
	res.Observed = cr.TargetObserved - cr.BaselineObserved
	if c.precheck(rs, res) {
		return
	}
	desc := fmt.Sprintf("%s %s (%d of %d failed) vs %s %s (%d of %d)", res.Target, FormatPercent(cr.TargetObserved), rs.bad, n,
		r.Baseline, FormatPercent(cr.BaselineObserved), c.bBad, c.bN)
	if !c.sequentialOn() {
		c.decideEstimate(rs, res, ec, desc)
		return
	}
	k := c.tp.Tolerance
	tr := c.testResult(r.MaxIncrease/k, r.MaxIncrease*k)
	tr.LLR, tr.PassLLR = c.fail.logE, -c.pass.logE
	tr.FailBoundary, tr.PassBoundary = c.fail.boundary(), -c.pass.boundary()
	tr.BadSamples = rs.bad
	res.Test = tr
	sd := sides{
		failed:      c.fail.reached,
		passing:     c.pass.logE >= c.pass.boundary()-1e-12,
		failStarted: true, passStart: true,
		good: fmt.Sprintf("an increase of %spp or less", trimFloat(r.MaxIncrease/k*100)),
		bad:  fmt.Sprintf("an increase of %spp or more", trimFloat(r.MaxIncrease*k*100)),
		more: math.Inf(1),
	}
	sd.failN = c.failN
	pc, pb := smoothed(rs.bad, n), smoothed(c.bBad, c.bN)
	ratio := float64(c.bN) / float64(n)
	if g := c.fail.growth(pc, pb, ratio); g > 0 {
		sd.more = math.Max(0, c.fail.boundary()-c.fail.logE) / g
	}
	if g := c.pass.growth(pc, pb, ratio); g > 0 {
		sd.more = math.Min(sd.more, math.Max(0, c.pass.boundary()-c.pass.logE)/g)
	}
	c.finish(rs, res, ec, sd, desc)
}
