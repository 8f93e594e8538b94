package gate

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// compare judges a target (the canary) against a baseline target tapped in
// the same window: its error rate may exceed the baseline's by at most
// MaxIncrease (CompareErrorRate), or its q-quantile may be at most
// MaxRatio times (or MaxIncreaseLatency above) the baseline's
// (CompareLatency).
//
// The baseline's true value is only known from its own sample, so the
// sequential decision is two one-sided SPRTs on the canary's samples whose
// hypotheses follow an anytime-valid confidence sequence of the baseline
// (confseq.go), each side taking half of its error budget:
//
//   - the fail side assumes the baseline is as bad as its upper bound: for
//     rates it tests good = U + increase/k against bad = U + increase*k;
//     for latency it counts canary requests slower than the bound computed
//     from the baseline quantile's upper bound. On the event that the
//     bound holds (probability >= 1-beta/2), every hypothesis it uses is at
//     least as lenient as the truth, so a canary within good fails with
//     probability at most beta/2 + beta/2 = beta;
//   - the pass side does the same with the lower bound, so a canary at bad
//     or worse passes with probability at most alpha.
//
// Each canary sample is tested against the hypotheses in force when it
// arrives, which depend on the baseline only, never on the canary's own
// outcomes, so each side stays a supermartingale and Ville's inequality
// applies as in sequential.go. The fail side starts once the baseline has
// its minimum sample. The pass side waits until the baseline's lower bound
// is tight enough that a target exactly like the baseline would count as
// good against it: earlier, a loose bound would count a healthy target's
// samples against it for good . When a side starts, the canary
// samples seen before are tested in one batch against the hypotheses of
// that moment. When to start depends on the baseline only, so the bounds
// hold.
//
// This assumes, as every test here does, that each target's requests are
// independent with a rate that does not drift during the window; a traffic
// shift that hits both targets alike moves the baseline's bounds too.
type compare struct {
	r          *Rule
	tp         TestParams
	need       uint64
	target     *ruleState // the compared target's state
	targetName string

	// The baseline's sample.
	bN, bBad    uint64
	bSketch     *Sketch
	nextRefresh uint64

	// lo and hi bound the baseline's value (rate, or quantile seconds);
	// hiOK is false while no upper bound exists.
	lo, hi     float64
	hiOK       bool
	boundsSeen bool

	// failT tests against the upper bound, passT against the lower.
	failT, passT             SPRT
	failStarted, passStarted bool
	// tauHi and tauLo are the latency bounds the sides count against.
	tauHi, tauLo time.Duration

	failAt      time.Duration
	failAtKnown bool
}

func newCompare(r *Rule, p *Policy) *compare {
	tp := r.Params(p)
	c := &compare{r: r, tp: tp, need: uint64(r.RequiredSamples(p))}
	c.failT = NewSPRT(0, 0, tp.Alpha()/2, tp.Beta()/2)
	c.passT = NewSPRT(0, 0, tp.Alpha()/2, tp.Beta()/2)
	if r.Kind == CompareLatency {
		c.bSketch = NewSketch()
		good, bad := Hypotheses(1-r.Quantile, tp.Tolerance)
		c.failT.SetHypotheses(good, bad)
		c.passT.SetHypotheses(good, bad)
	}
	return c
}

// sequentialOn reports whether the rule decides sequentially.
func (c *compare) sequentialOn() bool { return c.tp.Decision != Estimate }

// addBaseline counts one baseline sample and, on a schedule that depends
// only on the baseline's count, refreshes its bounds. It reports whether
// the canary's samples so far, tested at once when the fail side starts,
// failed the rule.
func (c *compare) addBaseline(_ *ruleState, s sample) bool {
	c.bN++
	if s.bad {
		c.bBad++
	}
	if c.bSketch != nil {
		c.bSketch.Add(s.value)
	}
	if !c.sequentialOn() || c.bN < c.need || c.bN < c.nextRefresh {
		return false
	}
	c.nextRefresh = c.bN + max(16, c.bN/32)
	if c.refresh() {
		c.failAt, c.failAtKnown = s.at, s.hasTime
		return true
	}
	return false
}

// refresh recomputes the baseline's bounds and the hypotheses or latency
// bounds that follow from them, and starts a side that can start. It
// reports whether starting the fail side failed the rule.
func (c *compare) refresh() bool {
	a, b := c.tp.Alpha()/2, c.tp.Beta()/2
	k := c.tp.Tolerance
	c.boundsSeen = true
	if c.r.Kind == CompareErrorRate {
		lo, _ := RateBounds(c.bBad, c.bN, a)
		_, hi := RateBounds(c.bBad, c.bN, b)
		c.lo, c.hi, c.hiOK = lo, hi, true
		d := c.r.MaxIncrease
		c.failT.SetHypotheses(hi+d/k, hi+d*k)
		c.passT.SetHypotheses(lo+d/k, lo+d*k)
		if c.passReady(float64(c.bBad) / float64(c.bN)) {
			c.start(&c.passT, &c.passStarted, c.target.samples, c.target.bad)
		}
		return c.start(&c.failT, &c.failStarted, c.target.samples, c.target.bad)
	}
	q := c.r.Quantile
	loRank, _ := QuantileRanks(c.bN, q, a)
	_, hiRank := QuantileRanks(c.bN, q, b)
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
		if !c.passStarted && c.passReady(float64(over)/float64(c.bN)) {
			// Canary samples so far, counted against the bound from their
			// sketch: every one that may be slower counts on the pass side.
			_, possible := c.target.sketch.CountAbove(c.tauLo)
			c.start(&c.passT, &c.passStarted, c.target.samples, possible)
		}
	}
	failed := false
	if c.hiOK {
		c.tauHi = c.bound(c.hi)
		if !c.failStarted {
			// Only those certainly slower count on the fail side.
			certain, _ := c.target.sketch.CountAbove(c.tauHi)
			failed = c.start(&c.failT, &c.failStarted, c.target.samples, certain)
		}
	}
	return failed
}

// passReady says whether the pass side may start: a target exactly like
// the baseline, whose share of bad samples against the pass side would be
// like, must move towards a pass at least half as fast as a good one.
// Before that, a loose lower bound would count a healthy target's samples
// against it for good.
func (c *compare) passReady(like float64) bool {
	t := &c.passT
	if !t.Active() {
		return false
	}
	good, _ := t.drift(t.Good)
	mu, _ := t.drift(like)
	return mu <= good/2
}

// bound is the canary's latency bound for a baseline quantile of b seconds.
func (c *compare) bound(b float64) time.Duration {
	d := time.Duration(b * float64(time.Second))
	if c.r.MaxIncreaseLatency > 0 {
		return d + c.r.MaxIncreaseLatency
	}
	return time.Duration(float64(d) * c.r.MaxRatio)
}

// start begins a side with the canary's samples so far, tested at once,
// and reports whether that failed it.
func (c *compare) start(t *SPRT, started *bool, n, k uint64) bool {
	if *started || !t.Active() {
		return false
	}
	*started = true
	return t.AddN(n, k) && t == &c.failT
}

// add counts one canary sample on each side that has started.
func (c *compare) add(_ *ruleState, s sample) bool {
	if !c.sequentialOn() {
		return false
	}
	if c.passStarted {
		bad := s.bad
		if c.r.Kind == CompareLatency {
			bad = s.value > c.tauLo
		}
		c.passT.Add(bad)
	}
	if c.failStarted {
		bad := s.bad
		if c.r.Kind == CompareLatency {
			bad = s.value > c.tauHi
		}
		if c.failT.Add(bad) {
			c.failAt, c.failAtKnown = s.at, s.hasTime
			return true
		}
	}
	return false
}

func (c *compare) decide(rs *ruleState, res *RuleResult, ec *evalContext) {
	r := c.r
	n := rs.samples
	cr := &CompareResult{Baseline: r.Baseline, BaselineSamples: c.bN, BaselineHigh: math.Inf(1), Increase: r.MaxIncreaseLatency > 0}
	res.Compare = cr
	// Point estimates of both, and the observed comparison.
	if r.Kind == CompareErrorRate {
		rateView(rs, res)
		res.Interval = nil
		if n > 0 {
			cr.TargetObserved, cr.TargetHasValue = float64(rs.bad)/float64(n), true
		}
		if c.bN > 0 {
			cr.BaselineObserved, cr.BaselineHasValue = float64(c.bBad)/float64(c.bN), true
			cr.Bound = cr.BaselineObserved + r.MaxIncrease
		}
		res.HasValue = cr.TargetHasValue && cr.BaselineHasValue
		res.Observed = cr.TargetObserved - cr.BaselineObserved
	} else {
		latencyView(rs, res)
		cr.TargetObserved, cr.TargetHasValue = res.Observed, res.HasValue
		if v, ok := c.bSketch.Quantile(r.Quantile); ok {
			cr.BaselineObserved, cr.BaselineHasValue = v.Seconds(), true
			cr.Bound = c.bound(v.Seconds()).Seconds()
		}
		res.HasValue = cr.TargetHasValue && cr.BaselineHasValue && cr.BaselineObserved > 0
		res.Observed = 0
		if res.HasValue {
			if r.MaxIncreaseLatency > 0 {
				res.Observed = cr.TargetObserved - cr.BaselineObserved
			} else {
				res.Observed = cr.TargetObserved / cr.BaselineObserved
			}
		}
	}
	if c.boundsSeen {
		cr.BaselineLow = c.lo
		if c.hiOK {
			cr.BaselineHigh = c.hi
		}
	}
	switch {
	case n == 0:
		res.Outcome, res.Reason = Inconclusive, "no requests matched this rule on "+res.Target+": zero traffic is never a pass"
		return
	case c.bN == 0:
		res.Outcome, res.Reason = Inconclusive, "the baseline "+r.Baseline+" had no matching requests: there is nothing to compare with"
		return
	}
	if !c.sequentialOn() {
		c.decideEstimate(rs, res, ec)
		return
	}
	c.decideSequential(rs, res, ec)
}

// describe renders both sides for a reason: "canary 9.1% (12 of 132) vs
// stable 0.2% (1 of 498)".
func (c *compare) describe(rs *ruleState, res *RuleResult) string {
	cr := res.Compare
	if c.r.Kind == CompareErrorRate {
		return fmt.Sprintf("%s %s (%d of %d failed) vs %s %s (%d of %d)", res.Target, FormatPercent(cr.TargetObserved), rs.bad, rs.samples,
			c.r.Baseline, FormatPercent(cr.BaselineObserved), c.bBad, c.bN)
	}
	qn := QuantileName(c.r.Quantile)
	return fmt.Sprintf("%s %s %s (%d samples) vs %s %s (%d samples), bound %s", res.Target, qn, secs(cr.TargetObserved), rs.samples,
		c.r.Baseline, secs(cr.BaselineObserved), c.bN, secs(cr.Bound))
}

func secs(s float64) string { return FormatDuration(time.Duration(s * float64(time.Second))) }

func (c *compare) decideEstimate(rs *ruleState, res *RuleResult, ec *evalContext) {
	n := rs.samples
	desc := c.describe(rs, res)
	switch {
	case n < ec.need || c.bN < ec.need:
		res.Outcome = Inconclusive
		res.Reason = fmt.Sprintf("only %d and %d of the %d requests needed on each side: %s", n, c.bN, ec.need, desc)
	case res.Compare.TargetObserved > res.Compare.Bound+eps:
		res.Outcome = Fail
		res.Reason = desc + ": over the bound"
	default:
		res.Outcome = Pass
		res.Reason = desc + ": within the bound"
	}
}

func (c *compare) decideSequential(rs *ruleState, res *RuleResult, ec *evalContext) {
	n := rs.samples
	tr := &TestResult{
		Confidence:   c.tp.Confidence,
		Tolerance:    c.tp.Tolerance,
		Good:         c.failT.Good,
		Bad:          c.passT.Bad,
		BadSamples:   c.failT.K,
		LLR:          c.failT.LLR,
		PassLLR:      c.passT.LLR,
		FailBoundary: c.failT.FailBoundary(),
		PassBoundary: c.passT.PassBoundary(),
		MoreSamples:  -1,
	}
	if !c.failStarted {
		tr.LLR = math.NaN()
	}
	if !c.passStarted {
		tr.PassLLR = math.NaN()
	}
	res.Test = tr
	conf := FormatPercent(c.tp.Confidence)
	risk := FormatPercent(1 - c.tp.Confidence)
	desc := c.describe(rs, res)
	var good, bad string
	if c.r.Kind == CompareErrorRate {
		k := c.tp.Tolerance
		good = fmt.Sprintf("an increase of %spp or less", trimFloat(c.r.MaxIncrease/k*100))
		bad = fmt.Sprintf("an increase of %spp or more", trimFloat(c.r.MaxIncrease*k*100))
	} else {
		g, b := Hypotheses(1-c.r.Quantile, c.tp.Tolerance)
		good = fmt.Sprintf("%s or fewer of its requests over the bound", FormatPercent(g))
		bad = fmt.Sprintf("%s or more over it", FormatPercent(b))
	}
	switch {
	case c.failT.Failed:
		res.Outcome, res.Decided = Fail, true
		tr.DecidedAfter = c.failT.FailN
		if c.failAtKnown {
			tr.DecidedAt = c.failAt
		}
		tr.MoreSamples = 0
		res.Reason = fmt.Sprintf("failed at %s confidence after %d requests: %s; a target with %s fails at most %s of the time; no later traffic can undo it", conf, c.failT.FailN, desc, good, risk)
	case c.passStarted && c.passT.Passing() && n >= ec.need:
		res.Outcome = Pass
		tr.MoreSamples = 0
		res.Reason = fmt.Sprintf("passed at %s confidence: %s; a target with %s passes at most %s of the time", conf, desc, bad, risk)
	case c.bN < ec.need:
		res.Outcome = Inconclusive
		res.Reason = fmt.Sprintf("the comparison starts once the baseline %s has %d requests (it has %d): %s", c.r.Baseline, ec.need, c.bN, desc)
	case !c.failStarted && !c.passStarted:
		res.Outcome = Inconclusive
		res.Reason = fmt.Sprintf("the baseline's %s cannot be bounded tightly enough yet from %d samples: %s", c.what(), c.bN, desc)
	default:
		res.Outcome = Inconclusive
		more := math.Inf(1)
		if c.failStarted && c.failT.N > 0 {
			more = math.Min(more, c.failT.ToFail(float64(c.failT.K)/float64(c.failT.N)))
		}
		if c.passStarted && c.passT.N > 0 {
			more = math.Min(more, c.passT.ToPass(float64(c.passT.K)/float64(c.passT.N)))
		}
		if c.passStarted && c.passT.Passing() && n < ec.need {
			more = float64(ec.need - n)
		}
		tr.MoreSamples = clampMore(more)
		var waits []string
		if !c.failStarted {
			waits = append(waits, "it cannot fail before the baseline's "+c.what()+" is bounded from above")
		}
		if !c.passStarted {
			waits = append(waits, "it cannot pass before the baseline's bounds are tight enough")
		}
		hint := moreText(more, "requests", ec, n)
		if math.IsInf(more, 1) {
			hint = "at the observed rates the test is not moving towards a decision yet; the baseline's bounds narrow as it gets more traffic"
		}
		if len(waits) > 0 {
			hint = strings.Join(waits, "; ") + " (more baseline traffic); " + hint
		}
		res.Reason = fmt.Sprintf("undecided at %s confidence: %s; %s", conf, desc, hint)
	}
}

// what names the baseline's compared value.
func (c *compare) what() string {
	if c.r.Kind == CompareErrorRate {
		return "error rate"
	}
	return QuantileName(c.r.Quantile)
}
