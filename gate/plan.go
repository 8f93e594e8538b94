package gate

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// RulePlan explains one rule before a run: what it checks and how it
// decides in plain words, and how much traffic it needs.
type RulePlan struct {
	Rule *Rule
	// Check is what the rule checks ("error rate <= 1% on every target").
	Check string
	// Decides is how it decides, with its error bounds.
	Decides string
	// Needs are sample-size facts, one per line.
	Needs []string
	// Window says, when an expected request rate was given, whether the
	// window is long enough; empty otherwise.
	Window string
	// ShortWindow is set when the window is expected to be too short to
	// pass a good release.
	ShortWindow bool
}

// Explain returns a plan per rule. expectedRPS, when positive, is the
// request rate each target is expected to receive: tap passes at most the
// target's maxRPS (Linkerd's default 100) of it.
func Explain(p *Policy, expectedRPS float64) []RulePlan {
	out := make([]RulePlan, 0, len(p.Rules))
	for i := range p.Rules {
		out = append(out, explainRule(p, &p.Rules[i], expectedRPS))
	}
	return out
}

// tappedRPS is the rate tap passes for the rule's targets: the lowest
// maxRPS among them caps it.
func tappedRPS(p *Policy, r *Rule, rps float64) (float64, bool) {
	capped := false
	for _, t := range p.Targets {
		if r.Target != "" && r.Target != t.Name {
			continue
		}
		m := t.MaxRPS
		if m <= 0 {
			m = 100
		}
		if rps > m {
			rps, capped = m, true
		}
	}
	return rps, capped
}

func explainRule(p *Policy, r *Rule, rps float64) RulePlan {
	pl := RulePlan{Rule: r, Check: checkWords(r)}
	need := r.RequiredSamples(p)
	tp := r.Params(p)
	switch {
	case r.Kind == ResponseCount:
		pl.Decides = fmt.Sprintf("fails as soon as more than %d responses are %s; passes on at least %d requests", uint64(r.Max), condList(r.Count), need)
		return pl
	case r.Kind == RequestRate:
		pl.Decides = fmt.Sprintf("passes once tap has seen %s requests (%s rps over the %s window); fails if the window closes with fewer", trimFloat(r.Min*p.Window.Seconds()), trimFloat(r.Min), FormatWindow(p.Window))
		return pl
	case tp.Decision == Estimate:
		pl.Decides = fmt.Sprintf("point estimate (decision: estimate): compares the observed value with the threshold once %d requests were seen; no error bounds", need)
		explainEstimate(p, r, rps, &pl)
		return pl
	}
	conf, risk := FormatPercent(tp.Confidence), FormatPercent(1-tp.Confidence)
	if r.Kind == CompareErrorRate {
		explainCompareRate(p, r, rps, tp, &pl)
		return pl
	}
	alpha, beta := tp.Alpha(), tp.Beta()
	if r.Kind == CompareLatency {
		alpha, beta = alpha/2, beta/2
	}
	good, bad := Hypotheses(r.Budget(), tp.Tolerance)
	t := NewSPRT(good, bad, alpha, beta)
	w := wordsOf(r)
	unit, noun := "requests", "fail"
	if r.Kind == LatencyQuantile || r.Kind == CompareLatency {
		unit, noun = "samples", "are slower than the bound"
	}
	if r.Kind == CompareLatency {
		pl.Decides = fmt.Sprintf("sequential test at %s confidence, tolerance %s, against %s tapped in the same window: a target with %s or more of its requests over the bound passes at most %s of the time, one with %s or fewer fails at most %s",
			conf, trimFloat(tp.Tolerance), r.Baseline, FormatPercent(bad), risk, FormatPercent(good), risk)
	} else {
		pl.Decides = fmt.Sprintf("sequential test at %s confidence, tolerance %s: a release with %s passes at most %s of the time, one with %s fails at most %s; in between it may need more traffic and stay inconclusive",
			conf, trimFloat(tp.Tolerance), w.poor(bad), risk, w.good(good), risk)
	}
	clean := max(t.CleanPass(), uint64(need))
	pl.Needs = append(pl.Needs, fmt.Sprintf("passes after %d %s if none %s (minimum %d); each one that does costs about %s more %s; %d in a row fail it at once",
		clean, unit, noun, need, trimFloat(math.Round(t.BadCost())), unit, t.QuickFail()))
	atGood, atBad := math.Max(t.Expected(good), float64(need)), t.Expected(bad)
	mid := midRate(&t)
	atMid := t.Expected(mid)
	pl.Needs = append(pl.Needs, fmt.Sprintf("expected %s to decide: about %s at %s (pass), %s at %s (fail), up to about %s near %s, where it may stay inconclusive",
		unit, roundCount(atGood), FormatPercent(good), roundCount(atBad), FormatPercent(bad), roundCount(atMid), FormatPercent(mid)))
	if r.Kind == CompareLatency {
		pl.Needs = append(pl.Needs, "these figures assume a perfectly known baseline: its quantile is only known from its own sample, which takes several times more traffic (make honesty: a canary at the bad share decides in about a quarter of runs at 3,000 requests against a baseline with 9,000)")
	}
	if rps > 0 && p.Window > 0 {
		if r.Kind == CompareLatency {
			// The baseline's uncertainty dominates: say what the
			// simulation study measured rather than the figures above.
			explainWindow(p, r, rps, math.Max(atGood, compareLatencyTypical), math.Max(atBad, compareLatencyTypical), &pl)
		} else {
			explainWindow(p, r, rps, atGood, atBad, &pl)
		}
	}
	return pl
}

// compareLatencyTypical is the target sample at which make honesty's
// latency comparisons (p99, ratio 1.2, a baseline with 3x the traffic)
// pass a target like its baseline in about 90% of runs.
const compareLatencyTypical = 3000

// compareBaselineRate and compareTrafficRatio are what the guidance of an
// error-rate comparison assumes of the baseline: 0.5% failing, with the
// same traffic as the target (a larger baseline decides sooner).
const compareBaselineRate, compareTrafficRatio = 0.005, 1.0

func explainCompareRate(p *Policy, r *Rule, rps float64, tp TestParams, pl *RulePlan) {
	d, k := r.MaxIncrease, tp.Tolerance
	good, bad := d/k, d*k
	risk := FormatPercent(1 - tp.Confidence)
	pl.Decides = fmt.Sprintf("two-sample sequential test at %s confidence, tolerance %s, against %s tapped in the same window: a target with an increase of %spp or more passes at most %s of the time, one with %spp or less fails at most %s; valid even when both targets' rates move together",
		FormatPercent(tp.Confidence), trimFloat(k), r.Baseline, trimFloat(bad*100), risk, trimFloat(good*100), risk)
	need := float64(r.RequiredSamples(p))
	pb := compareBaselineRate
	fail := newTwoSample(good, bad, true, tp.Beta())
	pass := newTwoSample(bad, good, false, tp.Alpha())
	atBad, atGood := math.Inf(1), math.Inf(1)
	if g := fail.growth(pb+bad, pb, compareTrafficRatio); g > 0 {
		atBad = fail.boundary() / g
	}
	if g := pass.growth(pb+good, pb, compareTrafficRatio); g > 0 {
		atGood = math.Max(need, pass.boundary()/g)
	}
	pl.Needs = append(pl.Needs, fmt.Sprintf("expected requests of the target to decide, against a baseline failing %s with as much traffic: about %s at +%spp (pass), %s at +%spp (fail); a baseline with more traffic decides sooner, and a pass needs at least %d requests on each",
		FormatPercent(pb), roundCount(atGood), trimFloat(good*100), roundCount(atBad), trimFloat(bad*100), r.RequiredSamples(p)))
	if rps > 0 && p.Window > 0 {
		explainWindow(p, r, rps, atGood, atBad, pl)
	}
}

// midRate is the rate at which the test's expected step is zero, where it
// takes longest.
func midRate(t *SPRT) float64 {
	if !t.Active() {
		return 0
	}
	return -t.incOK / (t.incBad - t.incOK)
}

func roundCount(v float64) string {
	switch {
	case math.IsInf(v, 0) || math.IsNaN(v):
		return "unbounded"
	case v >= 10000:
		return fmt.Sprintf("%.0f", math.Round(v/1000)*1000)
	case v >= 1000:
		return fmt.Sprintf("%.0f", math.Round(v/100)*100)
	case v >= 100:
		return fmt.Sprintf("%.0f", math.Round(v/10)*10)
	}
	return fmt.Sprintf("%.0f", math.Ceil(v))
}

func explainWindow(p *Policy, r *Rule, rps, atGood, atBad float64, pl *RulePlan) {
	tapped, capped := tappedRPS(p, r, rps)
	n := tapped * p.Window.Seconds()
	s := fmt.Sprintf("at %s rps", trimFloat(rps))
	if capped {
		s += fmt.Sprintf(" (tap passes at most %s rps of it: maxRPS)", trimFloat(tapped))
	}
	s += fmt.Sprintf(" the %s window holds about %s requests", FormatWindow(p.Window), roundCount(n))
	if r.Route != nil {
		s += " in all (fewer on the rule's route)"
	}
	switch {
	case n >= atGood && n >= atBad:
		s += fmt.Sprintf(": enough to pass a good release (%s) and fail a bad one (%s)", roundCount(atGood), roundCount(atBad))
	case n >= atBad:
		s += fmt.Sprintf(": enough to fail a bad release, not to pass a good one (about %s needed, %s at this rate)", roundCount(atGood), roundTime(time.Duration(atGood/tapped*float64(time.Second))))
		pl.ShortWindow = true
	default:
		s += fmt.Sprintf(": too short; a good release needs about %s (%s at this rate)", roundCount(atGood), roundTime(time.Duration(atGood/tapped*float64(time.Second))))
		pl.ShortWindow = true
	}
	pl.Window = s
}

// explainEstimate states a point-estimate rule's error rates at the
// expected sample, computed exactly from the binomial distribution.
func explainEstimate(p *Policy, r *Rule, rps float64, pl *RulePlan) {
	if r.Kind != SuccessRate && r.Kind != ErrorRate && r.Kind != LatencyQuantile {
		return
	}
	b := r.Budget()
	tp := r.Params(p)
	good, bad := Hypotheses(b, tp.Tolerance)
	n := uint64(r.RequiredSamples(p))
	if rps > 0 && p.Window > 0 {
		tapped, _ := tappedRPS(p, r, rps)
		n = max(n, uint64(tapped*p.Window.Seconds()))
	}
	// Passing means at most floor(b*n) bad samples (within float slack).
	allowed := uint64(math.Floor(b*float64(n) + 1e-9))
	falsePass := binomCDF(allowed, n, bad)
	falseFail := 1 - binomCDF(allowed, n, good)
	pl.Needs = append(pl.Needs, fmt.Sprintf("at %d requests a release with %s still passes %s of the time, and one with %s fails %s of the time (decision: sequential bounds both)",
		n, strings.TrimSuffix(wordsOf(r).poor(bad), " or more"), FormatPercent(math.Round(falsePass*1000)/1000), strings.TrimSuffix(wordsOf(r).good(good), " or fewer"), FormatPercent(math.Round(falseFail*1000)/1000)))
}

func checkWords(r *Rule) string {
	on := "every target"
	if r.Target != "" {
		on = "target " + r.Target
	}
	if r.Kind.IsCompare() && r.Target == "" {
		on = "every target but " + r.Baseline
	}
	if r.Route != nil {
		on += ", route " + r.Route.String()
	}
	var what string
	switch r.Kind {
	case SuccessRate:
		what = "success rate " + r.Threshold()
	case ErrorRate:
		what = "error rate " + r.Threshold()
	case LatencyQuantile:
		what = fmt.Sprintf("%s %s %s", QuantileName(r.Quantile), r.Metric, strings.TrimPrefix(r.Threshold(), QuantileName(r.Quantile)+" "))
	case CompareErrorRate:
		what = "error rate " + r.Threshold()
	case CompareLatency:
		what = fmt.Sprintf("%s %s", r.Metric, r.Threshold())
	case RequestRate:
		what = "request rate " + r.Threshold()
	case ResponseCount:
		what = fmt.Sprintf("responses %s %s", condList(r.Count), r.Threshold())
	}
	s := what + " on " + on
	if r.DryRun {
		s += " (dry run: reported, does not decide)"
	}
	return s
}

// FormatWindow renders a window or warmup as people write them in a
// policy: 60s, 90s, 5m, 1m30s, 500ms.
func FormatWindow(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.String()
	case d < 2*time.Minute && d%time.Second == 0:
		return fmt.Sprintf("%ds", int64(d/time.Second))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", int64(d/time.Hour))
	case d%time.Minute == 0:
		return strings.TrimSuffix(d.String(), "0s")
	}
	return d.String()
}
