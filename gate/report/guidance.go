package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/tapgate/tapgate/gate"
)

// guide is what would decide one undecided rule.
type guide struct {
	subject string // "canary/success-rate", "(dry-run)" appended
	text    string // "about 640 more requests would likely decide it (~21s at 30/s)"
}

// subject names a rule the way the runner's stop reason does
// ("canary/success-rate").
func subject(r *gate.RuleResult) string {
	s := r.Name
	if r.Target != "" {
		s = r.Target + "/" + s
	}
	if r.DryRun {
		s += " (dry-run)"
	}
	return s
}

// guidance lists, for each inconclusive rule, what would likely decide it,
// in the order of the rules. The figures are the engine's (Test.MoreSamples,
// the rule's minimum); the time is the rule's own request rate over the
// time evaluated, when that time is known. Rules about which nothing
// useful can be said (a request rate without time) are left out.
func guidance(v *gate.Verdict) []guide {
	var out []guide
	for i := range v.Rules {
		r := &v.Rules[i]
		if r.Outcome != gate.Inconclusive {
			continue
		}
		if t := guideText(v, r); t != "" {
			out = append(out, guide{subject: subject(r), text: t})
		}
	}
	return out
}

func guideText(v *gate.Verdict, r *gate.RuleResult) string {
	rate, rateKnown := 0.0, false
	if v.TimeKnown && v.Elapsed > 0 && r.Samples > 0 {
		rate, rateKnown = float64(r.Samples)/v.Elapsed.Seconds(), true
	}
	at := func(n int64) string {
		if !rateKnown || n <= 0 {
			return ""
		}
		return fmt.Sprintf(" (%s more at %s)", eta(n, rate), perSecond(rate))
	}
	t, c := r.Test, r.Compare
	switch {
	case c != nil && c.BaselineSamples < uint64(max(r.Required, 0)):
		return fmt.Sprintf("the comparison starts once the baseline %s has %d requests; it has %d", c.Baseline, r.Required, c.BaselineSamples)
	case r.Samples == 0 && t != nil && t.MoreSamples > 0:
		return fmt.Sprintf("no matching requests; at least %d needed", t.MoreSamples)
	case r.Samples == 0 && r.Kind.Tested():
		return fmt.Sprintf("no matching requests; at least %d needed", r.Required)
	case t != nil && t.MoreSamples > 0:
		return fmt.Sprintf("about %d more %s would likely decide it%s", t.MoreSamples, plural(uint64(t.MoreSamples), "request"), at(t.MoreSamples))
	case t != nil && t.MoreSamples < 0 && c != nil && c.BaselineLow <= 0 && math.IsInf(c.BaselineHigh, 1):
		return fmt.Sprintf("the baseline %s's %s cannot be bounded yet from %d requests", c.Baseline, quantileLabel(r), c.BaselineSamples)
	case t != nil && t.MoreSamples < 0 && c != nil:
		return "unlikely to decide at the observed rates: too close to the threshold for the baseline's bounds"
	case t != nil && t.MoreSamples < 0:
		return "unlikely to decide at the observed rate: it is too close to the threshold"
	case t == nil && r.Kind.Tested() && r.Samples < uint64(max(r.Required, 0)):
		m := int64(uint64(r.Required) - r.Samples)
		return fmt.Sprintf("at least %d more %s to reach its minimum of %d%s", m, plural(uint64(m), "request"), r.Required, at(m))
	}
	return ""
}

// quantileLabel is the quantile a latency threshold names ("p99"), or
// "quantile".
func quantileLabel(r *gate.RuleResult) string {
	if f := strings.Fields(r.Threshold); len(f) > 0 && strings.HasPrefix(f[0], "p") {
		return f[0]
	}
	return "quantile"
}

// badWord names a rule's "bad" samples: failing requests, or requests
// slower than a latency bound.
func badWord(k gate.RuleKind) string {
	if k == gate.LatencyQuantile || k == gate.CompareLatency {
		return "slow"
	}
	return "failing"
}

// ruleDetails says in a few lines how a rule decided: its test, the
// interval of its quantile and, for compare rules, what the baseline
// showed. The JUnit report puts them in each case's output.
func ruleDetails(r *gate.RuleResult) []string {
	var out []string
	bad := badWord(r.Kind)
	switch r.Decision {
	case gate.Sequential:
		t := r.Test
		if t == nil {
			out = append(out, "sequential test")
			break
		}
		knobs := fmt.Sprintf("at %s confidence, tolerance %sx", percentShort(t.Confidence), trimFloat(t.Tolerance, 2))
		ratios := finite(t.LLR) && finite(t.PassLLR) && finite(t.FailBoundary) && finite(t.PassBoundary)
		switch {
		case r.Compare != nil && ((t.Good == 0 && t.Bad == 0) || r.Compare.BaselineSamples < uint64(max(r.Required, 0))):
			out = append(out, "sequential comparison "+knobs+": not started, the baseline has too few requests")
		case r.Compare != nil:
			// Two one-sided tests, against the baseline's upper and lower
			// bounds: their hypotheses differ, so only the ratios are shown.
			s := "sequential comparison " + knobs
			if ratios {
				s += fmt.Sprintf(": fail side at log-likelihood ratio %s (fails at %s), pass side at %s (passes at %s)",
					trimFloat(t.LLR, 2), trimFloat(t.FailBoundary, 2), trimFloat(t.PassLLR, 2), trimFloat(t.PassBoundary, 2))
			}
			out = append(out, s)
		default:
			s := fmt.Sprintf("sequential test %s: tells %s %s from %s %s; %d of %d %s", knobs,
				percentShort(t.Good), bad, percentShort(t.Bad), bad, t.BadSamples, r.Samples, bad)
			if ratios {
				s += fmt.Sprintf(", log-likelihood ratio %s (fails at %s, passes at %s)", trimFloat(t.LLR, 2), trimFloat(t.FailBoundary, 2), trimFloat(t.PassBoundary, 2))
			}
			out = append(out, s)
		}
		switch {
		case t.DecidedAfter > 0:
			s := fmt.Sprintf("decided after %d %s", t.DecidedAfter, plural(t.DecidedAfter, "request"))
			if t.DecidedAt > 0 {
				s += ", " + span(t.DecidedAt) + " into the window"
			}
			out = append(out, s)
		case t.MoreSamples > 0 && r.Outcome == gate.Inconclusive:
			out = append(out, fmt.Sprintf("about %d more %s would likely decide it", t.MoreSamples, plural(uint64(t.MoreSamples), "request")))
		}
		if t.CleanPass > 0 {
			out = append(out, fmt.Sprintf("a fresh test passes after %d %s with none %s", t.CleanPass, plural(t.CleanPass, "request"), bad))
		}
	case gate.Estimate:
		out = append(out, "point estimate (decision: estimate): compared with the threshold once the minimum sample is reached, without error bounds")
	}
	if r.Kind == gate.LatencyQuantile && r.QuantileCI != nil && r.HasValue && finite(r.Observed) {
		if b := durationBounds(*r.QuantileCI, seconds(r.Observed), true); b != "" {
			out = append(out, quantileLabel(r)+" 95% CI: "+b)
		}
	}
	if c := r.Compare; c != nil {
		out = append(out, compareDetails(r, c))
	}
	return out
}

// compareDetails renders what a compare rule saw of both targets:
// "baseline stable: 0.05% failing of 2000 requests, bounded 0-0.66% by the
// test; canary 8.35%, held to <= 1.05%".
func compareDetails(r *gate.RuleResult, c *gate.CompareResult) string {
	latency := r.Kind == gate.CompareLatency
	value := func(v float64) string {
		if latency {
			return gate.FormatDuration(seconds(v))
		}
		return percent(v)
	}
	q := ""
	if latency {
		q = quantileLabel(r) + " "
	}
	s := "baseline " + c.Baseline + ": "
	if c.BaselineHasValue && finite(c.BaselineObserved) {
		s += q + value(c.BaselineObserved)
		if !latency {
			s += " " + badWord(r.Kind)
		}
		s += " of "
	}
	s += fmt.Sprintf("%d %s", c.BaselineSamples, plural(c.BaselineSamples, "request"))
	hiKnown := finite(c.BaselineHigh)
	if c.BaselineLow > 0 || hiKnown {
		switch {
		case latency:
			iv := gate.DurationInterval{Low: seconds(c.BaselineLow), HighKnown: hiKnown}
			if hiKnown {
				iv.High = seconds(c.BaselineHigh)
			}
			s += ", bounded " + durationBounds(iv, seconds(c.BaselineObserved), true)
		case !hiKnown:
			s += ", bounded >" + percent(c.BaselineLow)
		default:
			s += ", bounded " + strings.TrimSuffix(percent(c.BaselineLow), "%") + "-" + percent(c.BaselineHigh)
		}
		s += " by the test"
	}
	target := r.Target
	if target == "" {
		target = "target"
	}
	s += "; " + target + " "
	if c.TargetHasValue && finite(c.TargetObserved) {
		s += q + value(c.TargetObserved)
	} else {
		s += "observed nothing"
	}
	if c.BaselineHasValue && finite(c.Bound) {
		s += ", held to <= " + value(c.Bound)
	}
	return s
}
