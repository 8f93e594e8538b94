package gate

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Compare rules judge a target (the canary) against a baseline target
// tapped in the same window: its error rate may exceed the baseline's by at
// most MaxIncrease (compareRate, comparerate.go), or its q-quantile may be
// at most MaxRatio times, or MaxIncreaseLatency above, the baseline's
// (compareLatency, comparelatency.go). Each keeps a state on the baseline
// target too, which feeds it the baseline's samples on the same route.

// comparer is a compare rule's decider, fed by both targets.
type comparer interface {
	decider
	// addBaseline counts one baseline sample and reports whether that
	// decided a FAIL.
	addBaseline(s sample) bool
	// attach names the compared target's state.
	attach(target *ruleState, name string)
	// compared is the compared target's name.
	compared() string
}

// compareBase is what both compare rules keep.
type compareBase struct {
	r          *Rule
	tp         TestParams
	need       uint64
	target     *ruleState
	targetName string
	// The baseline's sample.
	bN, bBad uint64
	// failAt is when a FAIL was decided, as time into the window.
	failAt      time.Duration
	failAtKnown bool
}

func (c *compareBase) attach(rs *ruleState, name string) { c.target, c.targetName = rs, name }
func (c *compareBase) compared() string                  { return c.targetName }

// sequentialOn reports whether the rule decides sequentially.
func (c *compareBase) sequentialOn() bool { return c.tp.Decision != Estimate }

func (c *compareBase) failedAt(s sample) {
	c.failAt, c.failAtKnown = s.at, s.hasTime
}

// precheck handles what every compare rule says before testing: no traffic
// on either side. It reports whether the outcome is settled.
func (c *compareBase) precheck(rs *ruleState, res *RuleResult) bool {
	switch {
	case rs.samples == 0:
		res.Outcome, res.Reason = Inconclusive, "no requests matched this rule on "+res.Target+": zero traffic is never a pass"
		return true
	case c.bN == 0:
		res.Outcome, res.Reason = Inconclusive, "the baseline "+c.r.Baseline+" had no matching requests: there is nothing to compare with"
		return true
	}
	return false
}

// decideEstimate compares the point estimates, `decision: estimate`.
func (c *compareBase) decideEstimate(rs *ruleState, res *RuleResult, ec *evalContext, desc string) {
	n := rs.samples
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

// testResult starts the figures of a sequential comparison.
func (c *compareBase) testResult(good, bad float64) *TestResult {
	return &TestResult{
		Confidence:  c.tp.Confidence,
		Tolerance:   c.tp.Tolerance,
		Good:        good,
		Bad:         bad,
		MoreSamples: -1,
	}
}

// sides is the state of a comparison's two one-sided tests for reasons.
type sides struct {
	failed, passing        bool
	failStarted, passStart bool
	failN                  uint64
	// more estimates the canary samples either side needs; +Inf when
	// neither moves.
	more float64
	// good and bad describe the design points in words.
	good, bad string
	// wait says why a side has not started, when one has not.
	wait []string
}

// finish sets the outcome and reason of a sequential comparison.
func (c *compareBase) finish(rs *ruleState, res *RuleResult, ec *evalContext, sd sides, desc string) {
	tr := res.Test
	n := rs.samples
	conf := FormatPercent(c.tp.Confidence)
	risk := FormatPercent(1 - c.tp.Confidence)
	switch {
	case sd.failed:
		res.Outcome, res.Decided = Fail, true
		tr.DecidedAfter = sd.failN
		if c.failAtKnown {
			tr.DecidedAt = c.failAt
		}
		tr.MoreSamples = 0
		res.Reason = fmt.Sprintf("failed at %s confidence after %d requests: %s; a target with %s fails at most %s of the time; no later traffic can undo it", conf, sd.failN, desc, sd.good, risk)
	case sd.passing && n >= ec.need && c.bN >= ec.need:
		res.Outcome = Pass
		tr.MoreSamples = 0
		res.Reason = fmt.Sprintf("passed at %s confidence: %s; a target with %s passes at most %s of the time", conf, desc, sd.bad, risk)
	case sd.passing:
		res.Outcome = Inconclusive
		tr.MoreSamples = int64(ec.need - min(n, c.bN, ec.need))
		res.Reason = fmt.Sprintf("the test stands at pass (%s), but a rule never passes on fewer than %d requests on each side", desc, ec.need)
	case !sd.failStarted && !sd.passStart:
		res.Outcome = Inconclusive
		res.Reason = "not testing yet: " + strings.Join(sd.wait, "; ") + ": " + desc
	default:
		res.Outcome = Inconclusive
		tr.MoreSamples = clampMore(sd.more)
		hint := moreText(sd.more, "requests", ec, n)
		if math.IsInf(sd.more, 1) {
			hint = "at the observed rates neither side of the test is moving towards a decision yet"
		}
		if len(sd.wait) > 0 {
			hint = strings.Join(sd.wait, "; ") + "; " + hint
		}
		res.Reason = fmt.Sprintf("undecided at %s confidence: %s; %s", conf, desc, hint)
	}
}

func secs(s float64) string { return FormatDuration(time.Duration(s * float64(time.Second))) }
