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
// rate in req/s, counts as integers.
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
