package report

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// none is printed where there is no value (no samples, no traffic).
const none = "-"

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// percentNumber renders a ratio as a percentage number with 2 or 3 decimals
// ("99.62", "99.623", "100.00"). It never rounds a ratio below 1 up to 100 or
// a ratio above 0 down to 0: a gate that printed "100.00%" next to a failed
// success-rate rule would be lying.
func percentNumber(v float64) string {
	s := strconv.FormatFloat(v*100, 'f', 3, 64)
	switch {
	case s == "100.000" && v < 1:
		return ">99.999"
	case s == "0.000" && v > 0:
		return "<0.001"
	case s == "-0.000":
		s = "0.000"
	}
	return strings.TrimSuffix(s, "0")
}

// percent renders a ratio as "99.62%".
func percent(v float64) string {
	if !finite(v) {
		return none
	}
	return percentNumber(v) + "%"
}

// interval renders a 95% interval of a ratio as "99.10-99.85%". Bounds are
// rounded outward to 2 decimals: an interval is a bound, so it may widen
// but never narrow, and 2 decimals keep the targets table within 120
// columns.
func interval(iv gate.Interval) string {
	if !finite(iv.Low) || !finite(iv.High) {
		return none
	}
	// The epsilon keeps float noise (0.9993*1e4 = 9992.9999...) from moving
	// a bound that is already on a 2-decimal boundary.
	low := math.Max(0, math.Floor(iv.Low*1e4+1e-6)/100)
	high := math.Min(100, math.Ceil(iv.High*1e4-1e-6)/100)
	return strconv.FormatFloat(low, 'f', 2, 64) + "-" + strconv.FormatFloat(high, 'f', 2, 64) + "%"
}

// shortResource abbreviates the long Kubernetes type names the way kubectl
// users write them ("deploy/api"), to keep the targets table narrow.
func shortResource(r string) string {
	typ, name, ok := strings.Cut(r, "/")
	if !ok {
		return r
	}
	switch typ {
	case "deployment":
		typ = "deploy"
	case "statefulset":
		typ = "sts"
	case "daemonset":
		typ = "ds"
	case "replicaset":
		typ = "rs"
	case "replicationcontroller":
		typ = "rc"
	}
	return typ + "/" + name
}

// coverage renders a share of the window with at most one decimal ("87.5%").
func coverage(v float64) string {
	if !finite(v) {
		return none
	}
	s := strconv.FormatFloat(v*100, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + "%"
}

// latency renders a quantile cell.
func latency(d time.Duration, valid bool) string {
	if !valid {
		return none
	}
	return gate.FormatDuration(d)
}

// seconds converts a float number of seconds to a duration, rounded to the
// nanosecond.
func seconds(v float64) time.Duration {
	return time.Duration(math.Round(v * float64(time.Second)))
}

// trimFloat renders v with up to prec decimals, trailing zeros removed.
func trimFloat(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// observed renders a rule's observed value in the unit of its kind: rates
// as percentages, latency (seconds in the verdict) as a duration, request
// rate in req/s, counts as integers; a compared error rate as the
// difference in percentage points ("+8.3pp"), a compared latency as a
// factor ("1.234x") or an increase ("+21.5ms").
func observed(r *gate.RuleResult) string {
	if !r.HasValue || !finite(r.Observed) {
		return none
	}
	switch r.Kind {
	case gate.SuccessRate, gate.ErrorRate:
		return percent(r.Observed)
	case gate.LatencyQuantile:
		return gate.FormatDuration(seconds(r.Observed))
	case gate.RequestRate:
		return trimFloat(r.Observed, 2) + " rps"
	case gate.ResponseCount:
		return strconv.FormatFloat(r.Observed, 'f', 0, 64)
	case gate.CompareErrorRate:
		return signedPoints(r.Observed)
	case gate.CompareLatency:
		if isLatencyIncrease(r) {
			return signedDuration(r.Observed)
		}
		return trimFloat(r.Observed, 3) + "x"
	}
	return trimFloat(r.Observed, 3)
}

// isRate reports whether a rule kind's observed value is a ratio with an
// interval.
func isRate(k gate.RuleKind) bool {
	return k == gate.SuccessRate || k == gate.ErrorRate
}

// unit names the unit of a rule kind's observed value in the JSON report.
func unit(k gate.RuleKind) string {
	switch k {
	case gate.SuccessRate, gate.ErrorRate:
		return "ratio"
	case gate.LatencyQuantile:
		return "seconds"
	case gate.RequestRate:
		return "rps"
	case gate.ResponseCount:
		return "count"
	}
	return ""
}

// cell makes a string safe for one tab-separated table cell or one line:
// control characters (tabs, newlines, escapes) from names or reasons would
// break the layout or the terminal.
func cell(s string) string {
	if s == "" {
		return none
	}
	return line(s)
}

// line replaces control characters with spaces.
func line(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// isLatencyIncrease reports whether a compareLatency rule bounds the
// increase of the quantile ("p99 <= stable + 50ms", observed in seconds)
// rather than its ratio ("p99 <= 1.2x stable", observed as a factor).
func isLatencyIncrease(r *gate.RuleResult) bool {
	return r.Kind == gate.CompareLatency && r.Compare != nil && r.Compare.Increase
}

// ruleUnit names the unit of a rule's observed value in the JSON report.
func ruleUnit(r *gate.RuleResult) string {
	switch r.Kind {
	case gate.CompareErrorRate:
		return "ratio" // a difference of two error rates
	case gate.CompareLatency:
		if isLatencyIncrease(r) {
			return "seconds"
		}
		return "factor"
	}
	return unit(r.Kind)
}

// signedPoints renders a difference of two ratios in percentage points
// ("+8.3pp", "-0.05pp").
func signedPoints(v float64) string {
	s := trimFloat(v*100, 2)
	if s == "0" {
		// A difference too small for two decimals is not zero.
		switch {
		case v > 0:
			return "<+0.01pp"
		case v < 0:
			return ">-0.01pp"
		}
		return "0pp"
	}
	if v > 0 {
		s = "+" + s
	}
	return s + "pp"
}

// signedDuration renders a difference of two latencies ("+21.5ms").
func signedDuration(v float64) string {
	switch {
	case v < 0:
		return "-" + gate.FormatDuration(seconds(-v))
	case v > 0:
		return "+" + gate.FormatDuration(seconds(v))
	}
	return "0ms"
}

// durationUnit picks the unit FormatDuration would render d in.
func durationUnit(d time.Duration) (time.Duration, string) {
	switch {
	case d >= 10*time.Second:
		return time.Second, "s"
	case d >= time.Millisecond:
		return time.Millisecond, "ms"
	}
	return time.Microsecond, "µs"
}

// boundDecimals is the number of decimals that gives v (in its unit) about
// three significant digits.
func boundDecimals(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	case v >= 1:
		return 2
	}
	return 3
}

// durationBounds renders a quantile's interval in the unit of ref, its
// point estimate, with about three significant digits rounded outward (an
// interval may widen, never narrow): "85.4-104.4ms", ">117.6ms" when the
// sample gives no upper bound, "<14.7ms" when it gives no lower one. It
// returns "" when the interval bounds nothing, which is also what a zero
// DurationInterval (pods, old verdicts) means.
func durationBounds(iv gate.DurationInterval, ref time.Duration, withUnit bool) string {
	if iv.Low <= 0 && !iv.HighKnown {
		return ""
	}
	u, name := durationUnit(ref)
	lo := float64(iv.Low) / float64(u)
	hi := float64(iv.High) / float64(u)
	d := boundDecimals(lo)
	if lo <= 0 {
		d = boundDecimals(hi)
	}
	scale := math.Pow(10, float64(d))
	// The epsilon keeps float noise from moving a bound that is already
	// on a boundary, as in interval.
	loS := strconv.FormatFloat(math.Floor(lo*scale+1e-6)/scale, 'f', d, 64)
	hiS := strconv.FormatFloat(math.Ceil(hi*scale-1e-6)/scale, 'f', d, 64)
	var s string
	switch {
	case !iv.HighKnown:
		s = ">" + loS
	case iv.Low <= 0:
		s = "<" + hiS
	default:
		s = loS + "-" + hiS
	}
	if withUnit {
		s += name
	}
	return s
}

// latencyCI renders a targets-table quantile with its interval:
// "92.086ms (85.4-104.4)", or the bare quantile when there is no interval.
func latencyCI(d time.Duration, iv gate.DurationInterval, valid bool) string {
	if !valid {
		return none
	}
	s := gate.FormatDuration(d)
	if b := durationBounds(iv, d, false); b != "" {
		s += " (" + b + ")"
	}
	return s
}

// ruleCI renders the 95% CI cell of a rule: the Wilson interval of a rate,
// the distribution-free interval of a latency quantile, or "-".
func ruleCI(r *gate.RuleResult) string {
	switch {
	case isRate(r.Kind) && r.HasValue && r.Interval != nil:
		return interval(*r.Interval)
	case r.Kind == gate.LatencyQuantile && r.HasValue && r.QuantileCI != nil && finite(r.Observed):
		if b := durationBounds(*r.QuantileCI, seconds(r.Observed), true); b != "" {
			return b
		}
	}
	return none
}

// hasDecisions reports whether any rule says how it decided; verdicts of
// counting rules only (and older verdicts) have no TEST column.
func hasDecisions(rules []gate.RuleResult) bool {
	for i := range rules {
		if rules[i].Decision != 0 {
			return true
		}
	}
	return false
}

// testLabel renders how a rule decided, compactly: "seq 99%/2x" for a
// sequential test at 99% confidence and tolerance 2, "estimate" for a point
// estimate, "-" for counting rules.
func testLabel(r *gate.RuleResult) string {
	switch r.Decision {
	case gate.Sequential:
		if r.Test == nil {
			return "seq"
		}
		return "seq " + percentShort(r.Test.Confidence) + "/" + trimFloat(r.Test.Tolerance, 2) + "x"
	case gate.Estimate:
		return "estimate"
	}
	return none
}

// percentShort renders a ratio as a percentage with only the decimals it
// needs ("99%", "99.9%"), for knobs such as a confidence.
func percentShort(v float64) string {
	if !finite(v) {
		return none
	}
	return trimFloat(v*100, 3) + "%"
}

// span renders a time span for a sentence, rounded to what a person reads:
// "540ms", "2.1s", "110s".
func span(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return trimFloat(d.Round(100*time.Millisecond).Seconds(), 1) + "s"
}

// eta renders the time a number of requests takes at a rate: "~21s",
// "~3m9s", "~540ms".
func eta(requests int64, perSecond float64) string {
	d := time.Duration(float64(requests) / perSecond * float64(time.Second))
	if d < time.Second {
		return "~" + d.Round(time.Millisecond).String()
	}
	return "~" + d.Round(time.Second).String()
}

// perSecond renders a rate per second with about three significant digits
// ("50/s", "16.8/s", "0.25/s").
func perSecond(v float64) string {
	d := 0
	switch {
	case v < 10:
		d = 2
	case v < 100:
		d = 1
	}
	return trimFloat(v, d) + "/s"
}
