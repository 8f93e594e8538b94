package gate

import (
	"fmt"
	"time"
)

// sequential is `decision: sequential`, the default for successRate,
// errorRate and latency rules: the threshold is a claim about the
// service's true rate, decided by Wald's SPRT (sprt.go) on the rule's "bad"
// samples (failed requests; for latency rules, requests slower than the
// bound, whose share the quantile caps at 1-q) between good = budget/k and
// bad = budget*k, k the tolerance.
//
// With confidence c, a release whose true rate is bad or worse passes with
// probability at most 1-c, and one at good or better fails with
// probability at most 1-c, however often the verdict is looked at while
// tapping. Between the two, or with too little traffic, the rule stays
// INCONCLUSIVE and says how many more requests would likely decide it. A
// FAIL is final the moment it is reached, which lets a live run stop. The
// minimum sample still applies to a PASS.
type sequential struct {
	t SPRT
	// failAt is when the FAIL was reached, as time into the window.
	failAt      time.Duration
	failAtKnown bool
}

func newSequential(r *Rule, tp TestParams) *sequential {
	good, bad := Hypotheses(r.Budget(), tp.Tolerance)
	return &sequential{t: NewSPRT(good, bad, tp.Alpha(), tp.Beta())}
}

func (s *sequential) add(_ *ruleState, x sample) bool {
	if s.t.Add(x.bad) {
		s.failAt, s.failAtKnown = x.at, x.hasTime
		return true
	}
	return false
}

// words are the rule's terms for its samples and its two hypotheses.
type words struct {
	bad        string // "failed", "slower than 300ms"
	good, poor func(p float64) string
	// rate names a rate of bad samples in the rule's terms.
	rate func(p float64) string
}

func wordsOf(r *Rule) words {
	switch r.Kind {
	case LatencyQuantile:
		slow := "slower than " + FormatDuration(r.MaxLatency)
		return words{bad: slow,
			good: func(p float64) string { return FormatPercent(p) + " or fewer " + slow },
			poor: func(p float64) string { return FormatPercent(p) + " or more " + slow },
			rate: func(p float64) string { return FormatPercent(p) + " slower" }}
	case SuccessRate:
		return words{bad: "failed",
			good: func(p float64) string { return "success " + FormatPercent(1-p) + " or more" },
			poor: func(p float64) string { return "success " + FormatPercent(1-p) + " or less" },
			rate: func(p float64) string { return "success " + FormatPercent(1-p) }}
	}
	return words{bad: "failed",
		good: func(p float64) string { return FormatPercent(p) + " or fewer failing" },
		poor: func(p float64) string { return FormatPercent(p) + " or more failing" },
		rate: func(p float64) string { return FormatPercent(p) + " failing" }}
}

func (s *sequential) decide(rs *ruleState, res *RuleResult, c *evalContext) {
	r, t := rs.r, &s.t
	n, k := rs.samples, rs.bad
	if r.Kind == LatencyQuantile {
		latencyView(rs, res)
	} else {
		rateView(rs, res)
	}
	tr := &TestResult{
		Confidence:   c.params.Confidence,
		Tolerance:    c.params.Tolerance,
		Good:         t.Good,
		Bad:          t.Bad,
		BadSamples:   k,
		LLR:          t.LLR,
		PassLLR:      t.LLR,
		FailBoundary: t.FailBoundary(),
		PassBoundary: t.PassBoundary(),
		CleanPass:    t.CleanPass(),
		MoreSamples:  -1,
	}
	res.Test = tr
	w := wordsOf(r)
	conf := FormatPercent(c.params.Confidence)
	risk := FormatPercent(1 - c.params.Confidence)
	noun := "requests"
	if r.Kind == LatencyQuantile {
		noun = "samples"
	}
	observed := fmt.Sprintf("%d of %d %s", k, n, w.bad)
	if n > 0 {
		observed += fmt.Sprintf(" (%s)", FormatPercent(float64(k)/float64(n)))
	}
	switch {
	case t.Failed:
		res.Outcome, res.Decided = Fail, true
		tr.DecidedAfter = t.FailN
		if s.failAtKnown {
			tr.DecidedAt = s.failAt
		}
		tr.MoreSamples = 0
		res.Reason = fmt.Sprintf("failed at %s confidence after %d %s, %d %s: a release with %s fails at most %s of the time; no later traffic can undo it", conf, t.FailN, noun, t.FailK, w.bad, w.good(t.Good), risk)
		if n > t.FailN {
			res.Reason += fmt.Sprintf(" (%s in all)", observed)
		}
	case n == 0:
		res.Outcome = Inconclusive
		res.Reason = "no requests matched this rule: zero traffic is never a pass"
		if r.Kind == LatencyQuantile {
			res.Reason = "no completed requests with a " + r.Metric.String() + ": zero traffic is never a pass"
		}
		tr.MoreSamples = int64(max(t.CleanPass(), c.need))
	case t.Passing() && n >= c.need:
		res.Outcome = Pass
		res.Reason = fmt.Sprintf("passed at %s confidence: %s; a release with %s passes at most %s of the time", conf, observed, w.poor(t.Bad), risk)
		tr.MoreSamples = 0
	case t.Passing():
		res.Outcome = Inconclusive
		tr.MoreSamples = int64(c.need - n)
		res.Reason = fmt.Sprintf("the test stands at pass (%s), but a rule never passes on fewer than %d %s: %d more needed", observed, c.need, noun, c.need-n)
	default:
		res.Outcome = Inconclusive
		more := t.More(float64(k) / float64(n))
		if more < float64(c.need-min(n, c.need)) {
			more = float64(c.need - min(n, c.need))
		}
		tr.MoreSamples = clampMore(more)
		res.Reason = fmt.Sprintf("undecided at %s confidence: %s, not yet enough to tell %s from %s; %s", conf, observed, w.rate(t.Good), w.rate(t.Bad), moreText(more, noun, c, n))
	}
}
