package gate

import (
	"fmt"
	"math"
	"time"
)

// compareLatency is a compare rule on a latency quantile: the target's
// q-quantile may be at most MaxRatio times (or MaxIncreaseLatency above)
// the baseline's. Like a latency rule it counts the target's requests over
// the bound, whose share a q-quantile within the bound keeps at most 1-q,
// and states its error bounds at (1-q)/k ("good") and (1-q)*k ("bad").
//
// The bound depends on the baseline's true quantile, known only from its
// own sample, and no distribution-free two-sample shortcut exists for
// quantiles. So each side counts against a bound taken from an
// anytime-valid confidence sequence of the baseline's quantile
// (QuantileRanks, confseq.go), each taking half of its side's error
// budget:
//
//   - the fail side counts the target's requests over the bound computed
//     from the quantile's upper confidence bound, which on the event that
//     the bound holds (probability >= 1-beta/2) is at least the true
//     bound, and tests them against good with an adaptive SPRT
//     (eprocess.go) at beta/2: a target within good fails with
//     probability at most beta;
//   - the pass side does the same with the lower bound against bad, so a
//     target at bad or worse passes with probability at most alpha.
//
// Each target sample is tested against the bound in force when it
// arrives, which depends on the baseline only, so each side stays a
// supermartingale. The fail side starts once the baseline has its minimum
// sample and an upper bound. The pass side waits until the lower bound is
// tight enough that a target exactly like the baseline would move towards
// a pass: earlier, a loose bound would count a healthy target's samples
// against it. When a side starts, the target's samples so far are tested
// in one batch against its sketch. This assumes each target's requests are
// independent with a distribution that does not drift in the window.
type compareLatency struct {
	compareBase
	bSketch     *Sketch
	nextRefresh uint64
	// lo and hi bound the baseline's quantile (seconds); hiOK is false
	// while no upper bound exists.
	lo, hi     float64
	hiOK       bool
	boundsSeen bool
	// fail tests against the bound from hi, pass against the one from lo.
	fail, pass               *adaptiveTest
	failStarted, passStarted bool
	tauHi, tauLo             time.Duration
	failN                    uint64
	good, bad                float64
}

func newCompareLatency(r *Rule, p *Policy) *compareLatency {
	tp := r.Params(p)
	c := &compareLatency{compareBase: compareBase{r: r, tp: tp, need: uint64(r.RequiredSamples(p))}, bSketch: NewSketch()}
	c.good, c.bad = Hypotheses(1-r.Quantile, tp.Tolerance)
	c.fail = newAdaptive(c.good, c.bad, true, tp.Beta()/2)
	c.pass = newAdaptive(c.bad, c.good, false, tp.Alpha()/2)
	return c
}

func (c *compareLatency) addBaseline(s sample) bool {
	c.bN++
	c.bSketch.Add(s.value)
	if !c.sequentialOn() || c.bN < c.need || c.bN < c.nextRefresh {
		return false
	}
	// The bounds are refreshed on a schedule of the baseline's count only.
	c.nextRefresh = c.bN + max(16, c.bN/32)
	if c.refresh() {
		c.failedAt(s)
		return true
	}
	return false
}

// refresh recomputes the baseline's quantile bounds and the target's
// bounds that follow, and starts a side that can start. It reports whether
// starting the fail side failed the rule.
func (c *compareLatency) refresh() bool {
	q := c.r.Quantile
	loRank, _ := QuantileRanks(c.bN, q, c.tp.Alpha()/2)
	_, hiRank := QuantileRanks(c.bN, q, c.tp.Beta()/2)
	c.boundsSeen = true
	c.lo, c.hiOK = 0, false
	if loRank >= 1 {
		if v, ok := c.bSketch.ValueAtRank(loRank); ok {
			c.lo = v.Seconds() * (1 - SketchRelativeAccuracy)
		}
	}
	if hiRank <= c.bN {
		if v, ok := c.bSketch.ValueAtRank(hiRank); ok {
			c.hi, c.hiOK = v.Seconds()*(1+SketchRelativeAccuracy), true
		}
	}
	if c.lo > 0 {
		c.tauLo = c.bound(c.lo)
		_, over := c.bSketch.CountAbove(c.tauLo)
		if !c.passStarted && c.pass.growth(float64(over)/float64(c.bN)) >= c.pass.growth(c.good)/2 {
			// Every target sample so far that may be slower counts.
			_, possible := c.target.sketch.CountAbove(c.tauLo)
			c.passStarted = true
			c.pass.addN(c.target.samples, possible)
		}
	}
	if c.hiOK {
		c.tauHi = c.bound(c.hi)
		if !c.failStarted {
			// Only those certainly slower count.
			certain, _ := c.target.sketch.CountAbove(c.tauHi)
			c.failStarted = true
			if c.fail.addN(c.target.samples, certain) {
				c.failN = c.target.samples
				return true
			}
		}
	}
	return false
}

// bound is the target's latency bound for a baseline quantile of b seconds.
func (c *compareLatency) bound(b float64) time.Duration {
	d := time.Duration(b * float64(time.Second))
	if c.r.MaxIncreaseLatency > 0 {
		return d + c.r.MaxIncreaseLatency
	}
	return time.Duration(float64(d) * c.r.MaxRatio)
}

func (c *compareLatency) add(rs *ruleState, s sample) bool {
	if !c.sequentialOn() {
		return false
	}
	if c.passStarted {
		c.pass.add(s.value > c.tauLo)
	}
	if c.failStarted && c.fail.add(s.value > c.tauHi) {
		c.failedAt(s)
		c.failN = rs.samples
		return true
	}
	return false
}

func (c *compareLatency) decide(rs *ruleState, res *RuleResult, ec *evalContext) {
	r := c.r
	cr := &CompareResult{Baseline: r.Baseline, BaselineSamples: c.bN, BaselineHigh: math.Inf(1), Increase: r.MaxIncreaseLatency > 0}
	res.Compare = cr
	latencyView(rs, res)
	cr.TargetObserved, cr.TargetHasValue = res.Observed, res.HasValue
	if v, ok := c.bSketch.Quantile(r.Quantile); ok {
		cr.BaselineObserved, cr.BaselineHasValue = v.Seconds(), true
		cr.Bound = c.bound(v.Seconds()).Seconds()
	}
	res.HasValue = cr.TargetHasValue && cr.BaselineHasValue && cr.BaselineObserved > 0
	res.Observed = 0
	if res.HasValue {
		if cr.Increase {
			res.Observed = cr.TargetObserved - cr.BaselineObserved
		} else {
			res.Observed = cr.TargetObserved / cr.BaselineObserved
		}
	}
	if c.boundsSeen {
		cr.BaselineLow = c.lo
		if c.hiOK {
			cr.BaselineHigh = c.hi
		}
	}
	if c.precheck(rs, res) {
		return
	}
	qn := QuantileName(r.Quantile)
	desc := fmt.Sprintf("%s %s %s (%d samples) vs %s %s (%d samples), bound %s", res.Target, qn, secs(cr.TargetObserved), rs.samples,
		r.Baseline, secs(cr.BaselineObserved), c.bN, secs(cr.Bound))
	if !c.sequentialOn() {
		c.decideEstimate(rs, res, ec, desc)
		return
	}
	tr := c.testResult(c.good, c.bad)
	tr.LLR, tr.PassLLR = math.NaN(), math.NaN()
	if c.failStarted {
		tr.LLR = c.fail.logE
	}
	if c.passStarted {
		tr.PassLLR = -c.pass.logE
	}
	tr.FailBoundary, tr.PassBoundary = c.fail.boundary(), -c.pass.boundary()
	tr.BadSamples = c.fail.k
	res.Test = tr
	sd := sides{
		failed:      c.fail.reached,
		failN:       c.failN,
		passing:     c.passStarted && c.pass.logE >= c.pass.boundary()-1e-12,
		failStarted: c.failStarted, passStart: c.passStarted,
		good: fmt.Sprintf("%s or fewer of its requests over the bound", FormatPercent(c.good)),
		bad:  fmt.Sprintf("%s or more over it", FormatPercent(c.bad)),
		more: math.Inf(1),
	}
	if c.bN < ec.need {
		sd.wait = append(sd.wait, fmt.Sprintf("the comparison starts once the baseline %s has %d samples (it has %d)", r.Baseline, ec.need, c.bN))
	} else {
		if !c.failStarted {
			sd.wait = append(sd.wait, fmt.Sprintf("it cannot fail before the baseline's %s is bounded from above (more baseline traffic)", qn))
		}
		if !c.passStarted {
			sd.wait = append(sd.wait, "it cannot pass before the baseline's bounds are tight enough (more baseline traffic)")
		}
	}
	if c.failStarted && c.fail.n > 0 {
		if g := c.fail.growth(float64(c.fail.k) / float64(c.fail.n)); g > 0 {
			sd.more = math.Max(0, c.fail.boundary()-c.fail.logE) / g
		}
	}
	if c.passStarted && c.pass.n > 0 {
		if g := c.pass.growth(float64(c.pass.k) / float64(c.pass.n)); g > 0 {
			sd.more = math.Min(sd.more, math.Max(0, c.pass.boundary()-c.pass.logE)/g)
		}
	}
	c.finish(rs, res, ec, sd, desc)
}
