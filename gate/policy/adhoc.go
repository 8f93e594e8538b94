package policy

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// AdHoc is a policy given as command-line flags instead of a file.
type AdHoc struct {
	Resource      string // TYPE/NAME; may be empty in a replay
	Namespace     string
	To            string
	LabelSelector string
	Direction     string // inbound | outbound | any
	Window        time.Duration
	Warmup        time.Duration
	MinRequests   int // 0: the default
	// MinSuccessRate and MaxErrorRate are "99.5%" or "0.995"; empty: no rule.
	MinSuccessRate string
	MaxErrorRate   string
	// MaxLatency entries are "p99=300ms" (also "p99.9=1s", "0.99=300ms");
	// a "duration:" prefix measures time to end of stream: "duration:p99=2s".
	MaxLatency     []string
	MinRequestRate float64 // requests per second; 0: no rule
	OnInconclusive string  // fail | pass | inconclusive; empty: inconclusive
	MaxRPS         float64
	// Decision is sequential or estimate, Confidence a percentage such as
	// "99%" or "0.99", Tolerance a number such as "2"; empty: the default.
	// They are written as given, so Parse validates them as in a file.
	Decision   string
	Confidence string
	Tolerance  string
	// StopOnPass ends a live run as soon as every rule has passed.
	StopOnPass bool
}

// AdHocFile is the file name ad-hoc policies are reported under.
const AdHocFile = "<flags>"

// FromAdHoc builds the policy the flags describe. It renders the equivalent
// YAML document and parses it, so flags and files are validated by exactly
// the same code and mean exactly the same thing.
func FromAdHoc(a AdHoc) (*gate.Policy, error) {
	data, err := Render(a)
	if err != nil {
		return nil, err
	}
	return Parse(AdHocFile, data)
}

// Render returns the YAML policy document equivalent to the flags (what
// --print-policy shows). Values are written as given, so that invalid ones
// are reported by Parse with the same messages as in a file.
func Render(a AdHoc) ([]byte, error) {
	doc, err := adHocDocument(a)
	if err != nil {
		return nil, err
	}
	out, err := encode(doc)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Policy built from command-line flags.\n"), out...), nil
}

func adHocDocument(a AdHoc) (*Document, error) {
	t := TargetSpec{
		Name:          "target",
		Resource:      a.Resource,
		Namespace:     a.Namespace,
		To:            a.To,
		LabelSelector: a.LabelSelector,
		Direction:     a.Direction,
	}
	if _, name, ok := strings.Cut(a.Resource, "/"); ok && name != "" {
		t.Name = name
	}
	if a.MaxRPS != 0 {
		t.MaxRPS = ptr(a.MaxRPS)
	}
	s := &Spec{
		OnInconclusive: a.OnInconclusive,
		Targets:        []TargetSpec{t},
	}
	if a.Window != 0 {
		s.Window = NewDuration(a.Window)
	}
	if a.Warmup != 0 {
		s.Warmup = NewDuration(a.Warmup)
	}
	if a.MinRequests != 0 {
		s.MinRequests = ptr(a.MinRequests)
	}
	s.Decision = a.Decision
	if a.Confidence != "" {
		s.Confidence = &Percent{Raw: a.Confidence}
	}
	if a.Tolerance != "" {
		s.Tolerance = &Factor{Raw: a.Tolerance}
	}
	if a.StopOnPass {
		s.StopOnPass = ptr(true)
	}
	if a.MinSuccessRate != "" {
		s.Rules = append(s.Rules, RuleSpec{Name: "success-rate", SuccessRate: &SuccessRateSpec{Min: &Percent{Raw: a.MinSuccessRate}}})
	}
	if a.MaxErrorRate != "" {
		s.Rules = append(s.Rules, RuleSpec{Name: "error-rate", ErrorRate: &ErrorRateSpec{Max: &Percent{Raw: a.MaxErrorRate}}})
	}
	for _, l := range a.MaxLatency {
		q, metric, max, err := parseLatencyFlag(l)
		if err != nil {
			return nil, err
		}
		name := gate.QuantileName(q) + "-" + metric
		s.Rules = append(s.Rules, RuleSpec{Name: name, Latency: &LatencySpec{Quantile: ptr(q), Max: &Duration{Raw: max}, Metric: metricField(metric)}})
	}
	if a.MinRequestRate != 0 {
		s.Rules = append(s.Rules, RuleSpec{Name: "request-rate", RequestRate: &RequestRateSpec{Min: ptr(a.MinRequestRate)}})
	}
	return &Document{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   &Metadata{Name: "ad-hoc"},
		Spec:       s,
	}, nil
}

func metricField(m string) string {
	if m == "duration" {
		return "duration"
	}
	return ""
}

// parseLatencyFlag parses "p99=300ms", "p99.9=1s", "0.99=300ms" or
// "duration:p99=2s" into quantile, metric and the duration as written.
func parseLatencyFlag(s string) (q float64, metric, max string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("max latency %q: %s: write QUANTILE=DURATION, e.g. p99=300ms, p99.9=1s or duration:p99=2s", s, why)
	}
	metric = "latency"
	rest := strings.TrimSpace(s)
	if m, r, ok := strings.Cut(rest, ":"); ok {
		if m != "latency" && m != "duration" {
			return 0, "", "", bad(fmt.Sprintf("metric %q is not latency or duration", m))
		}
		metric, rest = m, r
	}
	qs, max, ok := strings.Cut(rest, "=")
	if !ok || max == "" {
		return 0, "", "", bad("missing =DURATION")
	}
	qs = strings.TrimSpace(qs)
	if p, ok := strings.CutPrefix(strings.ToLower(qs), "p"); ok {
		// Exact decimal arithmetic so that p99.9 is the same float as 0.999.
		r, ok := new(big.Rat).SetString(p)
		if !ok || strings.ContainsAny(p, "/eE") {
			return 0, "", "", bad(fmt.Sprintf("%q is not a percentile", qs))
		}
		q, _ = r.Quo(r, big.NewRat(100, 1)).Float64()
	} else {
		q, err = strconv.ParseFloat(qs, 64)
		if err != nil {
			return 0, "", "", bad(fmt.Sprintf("%q is not a quantile", qs))
		}
	}
	if q <= 0 || q >= 1 {
		return 0, "", "", bad("the quantile must be between p0 and p100 exclusive")
	}
	return q, metric, strings.TrimSpace(max), nil
}
