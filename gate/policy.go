package gate

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Policy is a validated gate policy. The YAML loader (gate/policy) and the
// ad-hoc flags both build this; the core never sees YAML.
type Policy struct {
	Name           string
	File           string // where it came from, for annotations; may be empty
	Window         time.Duration
	Warmup         time.Duration
	MinRequests    int
	OnInconclusive Outcome // Inconclusive (default), Fail or Pass
	// CoverageFloor is the share of the window a target must have been
	// tapped for its rules to decide; below it they are inconclusive.
	CoverageFloor  float64
	Classification Classification
	Targets        []Target
	Rules          []Rule
	// RedactHeaders are extra secret header names (lower case), added to
	// DefaultSecretHeaders: see NewRedactor.
	RedactHeaders []string

	// Decision, Confidence and Tolerance are the defaults of every rate
	// and latency rule's test (see decision.go); zero values mean
	// Sequential, DefaultConfidence and DefaultTolerance.
	Decision   Decision
	Confidence float64
	Tolerance  float64
	// StopOnPass ends a run as soon as every rule has passed. Off by
	// default: a release should also live through the window's time.
	StopOnPass bool
	// KeepTapping turns off the early stop on a decided FAIL, for those
	// who want the whole window in the report.
	KeepTapping bool
	// CrossCheck says what a cross-check against the proxies' own
	// counters does to the verdict (crosscheck.go).
	CrossCheck CrossCheckPolicy
}

// DefaultMinRequests is used when a policy sets no minRequests.
const DefaultMinRequests = 100

// DefaultCoverageFloor is the coverage below which a target cannot decide.
const DefaultCoverageFloor = 0.9

// ResourceRef names a Kubernetes resource: Type is canonical ("deployment",
// "namespace", "service", ...).
type ResourceRef struct {
	Type      string
	Name      string
	Namespace string
}

func (r ResourceRef) String() string {
	if r.Type == "" {
		return ""
	}
	if r.Name == "" {
		return r.Type
	}
	return r.Type + "/" + r.Name
}

// IsZero reports whether no resource is named.
func (r ResourceRef) IsZero() bool { return r.Type == "" }

// Target is a set of workloads to tap.
type Target struct {
	Name          string
	Resource      ResourceRef // may be zero in a replay: take every event
	To            ResourceRef // optional destination filter
	LabelSelector string
	Direction     Direction // DirectionUnknown means "any"
	MaxRPS        float64
	// Match narrows the tap server-side (exact method/authority, path prefix).
	Match HTTPMatch
	Line  int
}

// HTTPMatch is the server-side http match Linkerd's tap implements.
type HTTPMatch struct {
	Scheme     string
	Method     string
	Authority  string
	PathPrefix string
}

// RuleKind is the kind of check a rule performs.
type RuleKind uint8

const (
	SuccessRate RuleKind = iota + 1
	ErrorRate
	LatencyQuantile
	RequestRate
	ResponseCount
	// CompareErrorRate and CompareLatency judge a target against a
	// baseline target tapped in the same window (compare.go).
	CompareErrorRate
	CompareLatency
)

func (k RuleKind) String() string {
	switch k {
	case SuccessRate:
		return "successRate"
	case ErrorRate:
		return "errorRate"
	case LatencyQuantile:
		return "latency"
	case RequestRate:
		return "requestRate"
	case ResponseCount:
		return "count"
	case CompareErrorRate:
		return "compareErrorRate"
	case CompareLatency:
		return "compareLatency"
	}
	return "unknown"
}

// IsCompare reports whether the kind compares two targets.
func (k RuleKind) IsCompare() bool { return k == CompareErrorRate || k == CompareLatency }

// Tested reports whether rules of this kind decide with a statistical test
// (sequential or estimate); count and requestRate rules count events.
func (k RuleKind) Tested() bool {
	switch k {
	case SuccessRate, ErrorRate, LatencyQuantile, CompareErrorRate, CompareLatency:
		return true
	}
	return false
}

// LatencyMetric picks which time a latency rule measures.
type LatencyMetric uint8

const (
	// MetricLatency is time to response headers (ResponseInit.since_request_init).
	MetricLatency LatencyMetric = iota
	// MetricDuration is time to end of stream (ResponseEnd.since_request_init).
	MetricDuration
)

func (m LatencyMetric) String() string {
	if m == MetricDuration {
		return "duration"
	}
	return "latency"
}

// Route selects requests client-side. Empty fields match everything.
type Route struct {
	Method    string         // exact, case-insensitive
	Path      *regexp.Regexp // regex on the request path
	Authority string         // exact, case-insensitive
}

// IsZero reports whether the route matches every request.
func (r *Route) IsZero() bool {
	return r == nil || (r.Method == "" && r.Path == nil && r.Authority == "")
}

// Matches reports whether a request's method, authority and path match.
func (r *Route) Matches(method, authority, path string) bool {
	if r == nil {
		return true
	}
	if r.Method != "" && !strings.EqualFold(r.Method, method) {
		return false
	}
	if r.Authority != "" && !strings.EqualFold(r.Authority, authority) {
		return false
	}
	if r.Path != nil && !r.Path.MatchString(path) {
		return false
	}
	return true
}

func (r *Route) String() string {
	if r.IsZero() {
		return ""
	}
	var parts []string
	if r.Method != "" {
		parts = append(parts, r.Method)
	}
	if r.Authority != "" {
		parts = append(parts, r.Authority)
	}
	if r.Path != nil {
		parts = append(parts, r.Path.String())
	}
	return strings.Join(parts, " ")
}

// Rule is one check. Exactly the threshold fields of its Kind are used.
type Rule struct {
	Name   string
	Kind   RuleKind
	Target string // "" applies the rule to every target
	Route  *Route

	// SuccessRate: Min (0..1). ErrorRate: Max (0..1). RequestRate: Min (req/s).
	// ResponseCount: Max (count).
	Min float64
	Max float64

	// LatencyQuantile.
	Quantile   float64
	MaxLatency time.Duration
	Metric     LatencyMetric

	// ResponseCount: which responses are counted.
	Count []Cond

	// Compare rules: the baseline target, and how much worse than it this
	// target may be. CompareErrorRate: MaxIncrease is the allowed increase
	// of the error rate in absolute terms (0.01 = 1 percentage point).
	// CompareLatency (with Quantile and Metric): the bound is the
	// baseline's quantile times MaxRatio, or plus MaxIncreaseLatency.
	Baseline           string
	MaxIncrease        float64
	MaxRatio           float64
	MaxIncreaseLatency time.Duration

	// Decision, Confidence and Tolerance override the policy's for this
	// rule; zero values inherit.
	Decision   Decision
	Confidence float64
	Tolerance  float64

	// MinRequests is the rule's minimum sample; 0 means the policy default.
	// MinExplicit is set when the rule names it itself, which is the only way
	// to go below the floor a quantile needs (100 for p99, 1000 for p99.9).
	MinRequests int
	MinExplicit bool
	DryRun      bool
	Line        int
}

// RequiredSamples is the minimum sample the rule needs to pass.
func (r *Rule) RequiredSamples(p *Policy) int {
	n := p.MinRequests
	if n <= 0 {
		n = DefaultMinRequests
	}
	if r.MinRequests > 0 {
		n = r.MinRequests
	}
	if (r.Kind == LatencyQuantile || r.Kind == CompareLatency) && !r.MinExplicit {
		if floor := QuantileFloor(r.Quantile); floor > n {
			n = floor
		}
	}
	if n < 1 {
		n = 1
	}
	return n
}

// QuantileFloor is the smallest sample from which a quantile is more than the
// maximum: ceil(1/(1-q)), so p99 needs 100 requests and p99.9 needs 1000.
func QuantileFloor(q float64) int {
	if q <= 0 || q >= 1 {
		return 1
	}
	f := 1 / (1 - q)
	n := int(f)
	if float64(n) < f-1e-9 {
		n++
	}
	return n
}

// Threshold renders the rule's threshold for reports ("≥ 99.5%", "≤ 300ms").
func (r *Rule) Threshold() string {
	switch r.Kind {
	case SuccessRate:
		return ">= " + FormatPercent(r.Min)
	case ErrorRate:
		return "<= " + FormatPercent(r.Max)
	case LatencyQuantile:
		return fmt.Sprintf("%s <= %s", QuantileName(r.Quantile), FormatDuration(r.MaxLatency))
	case RequestRate:
		return fmt.Sprintf(">= %s rps", trimFloat(r.Min))
	case ResponseCount:
		return fmt.Sprintf("<= %d", uint64(r.Max))
	case CompareErrorRate:
		return fmt.Sprintf("<= %s + %spp", r.Baseline, trimFloat(r.MaxIncrease*100))
	case CompareLatency:
		if r.MaxIncreaseLatency > 0 {
			return fmt.Sprintf("%s <= %s + %s", QuantileName(r.Quantile), r.Baseline, FormatDuration(r.MaxIncreaseLatency))
		}
		return fmt.Sprintf("%s <= %sx %s", QuantileName(r.Quantile), trimFloat(r.MaxRatio), r.Baseline)
	}
	return ""
}

// QuantileName renders 0.99 as "p99" and 0.999 as "p99.9".
func QuantileName(q float64) string {
	return "p" + trimFloat(q*100)
}

// FormatPercent renders a ratio as a percentage with up to 3 decimals.
func FormatPercent(v float64) string {
	return trimFloat(v*100) + "%"
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// FormatDuration renders a duration in ms with sensible precision.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return trimFloat(d.Seconds()) + "s"
	case d >= time.Millisecond:
		return trimFloat(float64(d)/float64(time.Millisecond)) + "ms"
	default:
		return trimFloat(float64(d)/float64(time.Microsecond)) + "µs"
	}
}
