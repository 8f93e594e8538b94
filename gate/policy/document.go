package policy

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
	"go.yaml.in/yaml/v3"

	"github.com/tapgate/tapgate/gate"
)

// The types below are the YAML document exactly as users write it. They are
// the single source of the accepted keys: the strict decoder walks them by
// reflection, the JSON Schema is generated from them, and Render/Marshal
// write them. Semantic checks and defaults live in build.go.

// APIVersion and Kind are the only accepted document type.
const (
	APIVersion = "tapgate.dev/v1alpha1"
	Kind       = "GatePolicy"
)

// Document is a GatePolicy file.
type Document struct {
	APIVersion string    `yaml:"apiVersion" jsonschema:"required,enum=tapgate.dev/v1alpha1" jsonschema_description:"Always tapgate.dev/v1alpha1."`
	Kind       string    `yaml:"kind" jsonschema:"required,enum=GatePolicy" jsonschema_description:"Always GatePolicy."`
	Metadata   *Metadata `yaml:"metadata" jsonschema:"required"`
	Spec       *Spec     `yaml:"spec" jsonschema:"required"`
}

// Metadata names the policy; labels and annotations are accepted so that
// Kubernetes-shaped files (e.g. kept in a ConfigMap's repository) work.
type Metadata struct {
	Name        string            `yaml:"name" jsonschema:"required,minLength=1" jsonschema_description:"Policy name, shown in reports."`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Spec is the gate itself.
type Spec struct {
	Window         *Duration           `yaml:"window" jsonschema:"required" jsonschema_description:"How long to tap, e.g. 60s. Must be longer than warmup."`
	Warmup         *Duration           `yaml:"warmup,omitempty" jsonschema_description:"Tapped but not evaluated, before the window starts (a run taps warmup + window). Default 0s."`
	MinRequests    *int                `yaml:"minRequests,omitempty" jsonschema:"minimum=1" jsonschema_description:"Default minimum sample for every rule (default 100); a rule never passes on fewer requests."`
	OnInconclusive string              `yaml:"onInconclusive,omitempty" jsonschema:"enum=fail,enum=pass,enum=inconclusive" jsonschema_description:"Exit as fail, pass or inconclusive (code 3, the default) when there is not enough evidence."`
	CoverageFloor  *Percent            `yaml:"coverageFloor,omitempty" jsonschema_description:"Share of the window a target must have been tapped for its rules to decide (default 90%)."`
	Decision       string              `yaml:"decision,omitempty" jsonschema:"enum=sequential,enum=estimate" jsonschema_description:"sequential (default): a threshold is a claim about the true rate, decided by a sequential test with those error bounds, and a live run stops on a decided FAIL; estimate: compare the sample's point estimate with the threshold, as k6 or Flagger thresholds do, with no error bounds."`
	Confidence     *Percent            `yaml:"confidence,omitempty" jsonschema_description:"How sure a decision must be: at 99%, a release twice over budget (see tolerance) passes at most 1% of the time and one at half the budget fails at most 1% of the time. Default 99%; above 50% and below 100%. Higher needs more traffic to decide."`
	Tolerance      *Factor             `yaml:"tolerance,omitempty" jsonschema_description:"How far from the budget the error bounds are stated: 2 means at half and at twice the budget; between those the rule may need more traffic and stay inconclusive. Default 2; greater than 1. Closer to 1 needs much more traffic to decide."`
	StopOnPass     *bool               `yaml:"stopOnPass,omitempty" jsonschema_description:"End a live run as soon as every rule has passed (default false: a release should also live through the window's time)."`
	StopOnFail     *bool               `yaml:"stopOnFail,omitempty" jsonschema_description:"End a live run as soon as a rule's FAIL is decided, which no later traffic can undo (default true); false taps the whole window for the report."`
	Classification *ClassificationSpec `yaml:"classification,omitempty"`
	CrossCheck     *CrossCheckSpec     `yaml:"crossCheck,omitempty" jsonschema_description:"Compare the tapped sample with what the proxies counted themselves (Linkerd's Prometheus): volume coverage, and a test that the sample is representative."`
	RedactHeaders  []string            `yaml:"redactHeaders,omitempty" jsonschema_description:"Extra header names whose values are secret, on top of the built-in list (authorization, cookie, ...)."`
	Targets        []TargetSpec        `yaml:"targets" jsonschema:"required,minItems=1"`
	Rules          []RuleSpec          `yaml:"rules" jsonschema:"required,minItems=1"`
}

// CrossCheckSpec configures the cross-check against the proxies' own
// counters in Linkerd's Prometheus.
type CrossCheckSpec struct {
	Enabled           *bool           `yaml:"enabled,omitempty" jsonschema_description:"Run the cross-check on live runs (default true; a replay has no Prometheus to ask)."`
	Prometheus        *PrometheusSpec `yaml:"prometheus,omitempty"`
	OnMismatch        string          `yaml:"onMismatch,omitempty" jsonschema:"enum=warn,enum=inconclusive" jsonschema_description:"When the tapped error rate differs significantly from the proxies' (at the policy's confidence): warn (default) in the report, or make the target's rules inconclusive."`
	MinVolumeCoverage *Percent        `yaml:"minVolumeCoverage,omitempty" jsonschema_description:"Share of the target's requests tap must have seen for its rules to pass (default 0%: any share)."`
	Required          *bool           `yaml:"required,omitempty" jsonschema_description:"Fail with exit 4 before tapping when Prometheus cannot be reached (default false: the run goes on without the cross-check and says so)."`
}

// PrometheusSpec says where the proxies' counters are.
type PrometheusSpec struct {
	URL       string `yaml:"url,omitempty" jsonschema_description:"HTTP API base URL of a Prometheus, Thanos or Mimir holding Linkerd's proxy metrics; default: linkerd-viz's Prometheus through the Kubernetes apiserver's service proxy."`
	Namespace string `yaml:"namespace,omitempty" jsonschema_description:"Namespace of the Prometheus service reached through the apiserver (default linkerd-viz)."`
	Service   string `yaml:"service,omitempty" jsonschema_description:"Name of that service (default prometheus)."`
	Port      *int   `yaml:"port,omitempty" jsonschema:"minimum=1,maximum=65535" jsonschema_description:"Its port (default 9090)."`
}

// ClassificationSpec widens or narrows what counts as a failed request.
type ClassificationSpec struct {
	FailOn []Condition  `yaml:"failOn,omitempty" jsonschema:"minItems=1" jsonschema_description:"Responses that are failures. Default: 5xx, grpc-error, reset (Linkerd's own classification). A stream with no response is always a failure."`
	Ignore []IgnoreSpec `yaml:"ignore,omitempty" jsonschema_description:"Failures to count as successes, optionally only on a route."`
}

// IgnoreSpec makes matching failures count as successes.
type IgnoreSpec struct {
	When  []Condition `yaml:"when" jsonschema:"required,minItems=1"`
	Route *RouteSpec  `yaml:"route,omitempty"`
}

// TargetSpec is a set of workloads to tap.
type TargetSpec struct {
	Name          string     `yaml:"name" jsonschema:"required,minLength=1"`
	Resource      string     `yaml:"resource,omitempty" jsonschema_description:"TYPE/NAME to tap, e.g. deploy/api. Required live; may be omitted in a file and given on the command line, or in a replay to take every event."`
	Namespace     string     `yaml:"namespace,omitempty" jsonschema_description:"Namespace of the resource (default: the kubeconfig's)."`
	To            string     `yaml:"to,omitempty" jsonschema_description:"Only traffic to this destination, e.g. svc/backend or deploy/backend."`
	ToNamespace   string     `yaml:"toNamespace,omitempty" jsonschema_description:"Namespace of the destination (default: the target's)."`
	LabelSelector string     `yaml:"labelSelector,omitempty" jsonschema_description:"Only pods matching this label selector, e.g. rollouts-pod-template-hash=abc."`
	Direction     string     `yaml:"direction,omitempty" jsonschema:"enum=inbound,enum=outbound,enum=any" jsonschema_description:"Which proxy side to evaluate (default any)."`
	MaxRPS        *float64   `yaml:"maxRPS,omitempty" jsonschema:"minimum=0" jsonschema_description:"Tap sample rate limit, split across pods; 0 means Linkerd's default of 100."`
	Match         *MatchSpec `yaml:"match,omitempty" jsonschema_description:"Server-side tap filter (Linkerd's http match)."`
}

// MatchSpec is the server-side http match Linkerd's tap implements.
type MatchSpec struct {
	Scheme     string `yaml:"scheme,omitempty" jsonschema:"enum=http,enum=https"`
	Method     string `yaml:"method,omitempty" jsonschema_description:"Exact HTTP method, e.g. POST."`
	Authority  string `yaml:"authority,omitempty" jsonschema_description:"Exact authority (host[:port])."`
	PathPrefix string `yaml:"pathPrefix,omitempty" jsonschema:"pattern=^/"`
}

// RuleSpec is one check. Exactly one of successRate, errorRate, latency,
// requestRate, count and compare must be set.
type RuleSpec struct {
	Name        string           `yaml:"name" jsonschema:"required,minLength=1"`
	Target      string           `yaml:"target,omitempty" jsonschema_description:"Name of the target this rule applies to (default: every target; for a compare rule, every target but its baseline)."`
	Route       *RouteSpec       `yaml:"route,omitempty" jsonschema_description:"Only requests on this route."`
	SuccessRate *SuccessRateSpec `yaml:"successRate,omitempty"`
	ErrorRate   *ErrorRateSpec   `yaml:"errorRate,omitempty"`
	Latency     *LatencySpec     `yaml:"latency,omitempty"`
	RequestRate *RequestRateSpec `yaml:"requestRate,omitempty"`
	Count       *CountSpec       `yaml:"count,omitempty"`
	Compare     *CompareSpec     `yaml:"compare,omitempty" jsonschema_description:"Judge the target against a baseline target tapped in the same window (e.g. a canary against stable)."`
	MinRequests *int             `yaml:"minRequests,omitempty" jsonschema:"minimum=1" jsonschema_description:"Minimum sample for this rule; overrides the spec default and the quantile floor (100 for p99)."`
	Decision    string           `yaml:"decision,omitempty" jsonschema:"enum=sequential,enum=estimate" jsonschema_description:"Overrides spec.decision for this rule (successRate, errorRate, latency and compare rules only)."`
	Confidence  *Percent         `yaml:"confidence,omitempty" jsonschema_description:"Overrides spec.confidence for this rule (sequential successRate, errorRate, latency and compare rules only)."`
	Tolerance   *Factor          `yaml:"tolerance,omitempty" jsonschema_description:"Overrides spec.tolerance for this rule (sequential successRate, errorRate, latency and compare rules only)."`
	DryRun      bool             `yaml:"dryRun,omitempty" jsonschema_description:"Report the rule but do not let it decide the verdict."`
}

// ruleKinds are the check keys of a rule, in document order.
var ruleKinds = []string{"successRate", "errorRate", "latency", "requestRate", "count", "compare"}

// JSONSchemaExtend requires exactly one check kind, and states the range
// of confidence (Percent alone accepts 0% to 100%).
func (RuleSpec) JSONSchemaExtend(s *jsonschema.Schema) {
	for _, k := range ruleKinds {
		s.OneOf = append(s.OneOf, &jsonschema.Schema{Required: []string{k}})
	}
	confidenceRange(s)
}

// JSONSchemaExtend states the range of confidence.
func (Spec) JSONSchemaExtend(s *jsonschema.Schema) { confidenceRange(s) }

// confidencePattern is the schema pattern of a confidence percentage:
// above 50% and below 100%.
const confidencePattern = `^(50\.[0-9]*[1-9][0-9]*|5[1-9](\.[0-9]+)?|[6-9][0-9](\.[0-9]+)?)%$`

func confidenceRange(s *jsonschema.Schema) {
	p, ok := s.Properties.Get("confidence")
	if !ok {
		return
	}
	p.OneOf = []*jsonschema.Schema{
		{Type: "number", ExclusiveMinimum: "0.5", ExclusiveMaximum: "1"},
		{Type: "string", Pattern: confidencePattern},
	}
	p.Examples = []any{"99%", "99.9%", 0.95}
}

// JSONSchemaExtend sets the resource patterns from the parser's own tables.
func (TargetSpec) JSONSchemaExtend(s *jsonschema.Schema) {
	if p, ok := s.Properties.Get("resource"); ok {
		p.Pattern = resourcePattern(false)
	}
	if p, ok := s.Properties.Get("to"); ok {
		p.Pattern = resourcePattern(true)
	}
}

// RouteSpec selects requests client-side; empty fields match everything.
type RouteSpec struct {
	Method    string `yaml:"method,omitempty" jsonschema_description:"HTTP method, exact (case-insensitive)."`
	Path      string `yaml:"path,omitempty" jsonschema_description:"Regular expression (Go RE2 syntax) on the request path; anchor it with ^."`
	Authority string `yaml:"authority,omitempty" jsonschema_description:"Exact authority (case-insensitive)."`
}

// SuccessRateSpec: the share of successful requests must be at least Min.
type SuccessRateSpec struct {
	Min *Percent `yaml:"min" jsonschema:"required"`
}

// ErrorRateSpec: the share of failed requests must be at most Max.
type ErrorRateSpec struct {
	Max *Percent `yaml:"max" jsonschema:"required"`
}

// LatencySpec: the Quantile of latency (or duration) must be at most Max.
type LatencySpec struct {
	Quantile *float64  `yaml:"quantile" jsonschema:"required,exclusiveMinimum=0,exclusiveMaximum=1" jsonschema_description:"e.g. 0.99 for p99."`
	Max      *Duration `yaml:"max" jsonschema:"required"`
	Metric   string    `yaml:"metric,omitempty" jsonschema:"enum=latency,enum=duration" jsonschema_description:"latency: time to response headers (default); duration: time to end of stream."`
}

// RequestRateSpec: tap must see at least Min requests per second.
type RequestRateSpec struct {
	Min *float64 `yaml:"min" jsonschema:"required,exclusiveMinimum=0" jsonschema_description:"Requests per second seen by tap (a sample: see maxRPS)."`
}

// CountSpec: at most Max responses may meet any of Of.
type CountSpec struct {
	Of  []Condition `yaml:"of" jsonschema:"required,minItems=1"`
	Max *int        `yaml:"max,omitempty" jsonschema:"minimum=0" jsonschema_description:"Default 0."`
}

// CompareSpec judges the rule's target against a baseline target tapped in
// the same window. Exactly one of ErrorRate and Latency must be set.
type CompareSpec struct {
	Baseline  string                `yaml:"baseline" jsonschema:"required,minLength=1" jsonschema_description:"Name of the target to compare with, e.g. stable: a declared target other than the one judged."`
	ErrorRate *CompareErrorRateSpec `yaml:"errorRate,omitempty" jsonschema_description:"The error rate may exceed the baseline's by at most maxIncrease."`
	Latency   *CompareLatencySpec   `yaml:"latency,omitempty" jsonschema_description:"The quantile may be at most maxRatio times, or maxIncrease above, the baseline's."`
}

// compareKinds are the keys of a comparison, in document order.
var compareKinds = []string{"errorRate", "latency"}

// JSONSchemaExtend requires exactly one comparison.
func (CompareSpec) JSONSchemaExtend(s *jsonschema.Schema) {
	for _, k := range compareKinds {
		s.OneOf = append(s.OneOf, &jsonschema.Schema{Required: []string{k}})
	}
}

// CompareErrorRateSpec: the error rate may be at most MaxIncrease above the
// baseline's, in absolute terms.
type CompareErrorRateSpec struct {
	MaxIncrease *Points `yaml:"maxIncrease" jsonschema:"required" jsonschema_description:"How much higher than the baseline's the error rate may be, in percentage points: with 1pp (also written 1% or 0.01) a baseline failing 0.2% of requests allows up to 1.2%."`
}

// unknownKeyHint explains why there is no maxRatio for error rates.
func (CompareErrorRateSpec) unknownKeyHint(key string) string {
	if strings.EqualFold(key, "maxRatio") {
		return "maxRatio cannot bound an error rate: a baseline with no failures has an error rate of 0, and no ratio of it can be decided (any multiple of 0 is 0); bound the increase in percentage points instead, e.g. maxIncrease: 1pp"
	}
	return ""
}

// CompareLatencySpec: the Quantile may be at most MaxRatio times, or
// MaxIncrease above, the baseline's. Exactly one of the two must be set.
type CompareLatencySpec struct {
	Quantile    *float64  `yaml:"quantile" jsonschema:"required,exclusiveMinimum=0,exclusiveMaximum=1" jsonschema_description:"e.g. 0.99 for p99."`
	MaxRatio    *float64  `yaml:"maxRatio,omitempty" jsonschema:"exclusiveMinimum=1" jsonschema_description:"The quantile may be at most this many times the baseline's, e.g. 1.2 for at most 20% slower. Greater than 1."`
	MaxIncrease *Duration `yaml:"maxIncrease,omitempty" jsonschema_description:"The quantile may be at most this much above the baseline's, e.g. 50ms. Longer than 0."`
	Metric      string    `yaml:"metric,omitempty" jsonschema:"enum=latency,enum=duration" jsonschema_description:"latency: time to response headers (default); duration: time to end of stream."`
}

// JSONSchemaExtend requires exactly one of maxRatio and maxIncrease.
func (CompareLatencySpec) JSONSchemaExtend(s *jsonschema.Schema) {
	for _, k := range []string{"maxRatio", "maxIncrease"} {
		s.OneOf = append(s.OneOf, &jsonschema.Schema{Required: []string{k}})
	}
}

// keyHinter is implemented by document types that explain why a key they
// do not accept is wrong, beyond "unknown key".
type keyHinter interface {
	unknownKeyHint(key string) string
}

// scalar is implemented by document types that decode one YAML scalar
// themselves. decodeScalar returns a message saying what is wrong and how to
// fix it, or "".
type scalar interface {
	decodeScalar(n *yaml.Node) string
}

// Duration is a Go duration string such as 500ms, 1.5s or 2m.
type Duration struct {
	Value time.Duration
	Raw   string // as written; Render keeps it so that Parse sees it verbatim
}

const durationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

var durationRE = regexp.MustCompile(durationPattern)

// NewDuration returns the Duration for d.
func NewDuration(d time.Duration) *Duration { return &Duration{Value: d} }

func (d *Duration) decodeScalar(n *yaml.Node) string {
	d.Raw = n.Value
	if t := n.ShortTag(); t != "!!str" {
		var zero int
		if t == "!!int" && n.Decode(&zero) == nil && zero == 0 {
			// A bare 0 needs no unit (warmup: 0).
			d.Value = 0
			return ""
		}
		if t == "!!int" || t == "!!float" {
			return fmt.Sprintf("%s has no unit: write a duration such as %ss or %sms", n.Value, n.Value, n.Value)
		}
		return fmt.Sprintf("expected a duration such as 500ms, 1.5s or 2m, got %s", describe(n))
	}
	s := strings.TrimSpace(n.Value)
	if strings.HasPrefix(s, "-") {
		return fmt.Sprintf("duration %q is negative: durations must be 0 or more, e.g. 10s", n.Value)
	}
	if !durationRE.MatchString(s) {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return fmt.Sprintf("%s has no unit: write a duration such as %ss or %sms", s, s, s)
		}
		return fmt.Sprintf("invalid duration %q: write a Go duration such as 500ms, 1.5s, 2m or 1h30m", n.Value)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Sprintf("invalid duration %q (%v): write a Go duration such as 500ms, 1.5s, 2m or 1h30m", n.Value, err)
	}
	d.Value = v
	return ""
}

// UnmarshalYAML lets plain yaml.Unmarshal decode a Document too.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return scalarError(d, n) }

// MarshalYAML writes the duration as it was written, or in its shortest
// whole unit ("60s" rather than "1m0s").
func (d Duration) MarshalYAML() (any, error) {
	if d.Raw != "" {
		return d.Raw, nil
	}
	return formatDuration(d.Value), nil
}

// JSONSchema describes a duration string.
func (Duration) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		OneOf: []*jsonschema.Schema{
			{Type: "string", Pattern: durationPattern},
			{Type: "integer", Const: 0},
		},
		Examples: []any{"500ms", "60s", "2m"},
	}
}

func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}

// Percent is a ratio written as a percentage string ("99.5%") or a number
// between 0 and 1 (0.995).
type Percent struct {
	Value float64
	Raw   string // as written; a number is written back as a number
}

// percentPattern is the schema pattern of the string form, 0% to 100%.
const percentPattern = `^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)%$`

var percentRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?)%$`)

// NewPercent returns the Percent for a ratio v.
func NewPercent(v float64) *Percent { return &Percent{Value: v} }

func (p *Percent) decodeScalar(n *yaml.Node) string {
	p.Raw = n.Value
	switch n.ShortTag() {
	case "!!str":
		s := strings.TrimSpace(n.Value)
		m := percentRE.FindStringSubmatch(s)
		if m == nil || len(s) > 40 {
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				return fmt.Sprintf("%q is a quoted number: write a ratio such as 0.995 unquoted, or a percentage such as 99.5%%", n.Value)
			}
			return fmt.Sprintf("%q is not a percentage: write e.g. 99.5%% or 0.995", n.Value)
		}
		r, ok := new(big.Rat).SetString(m[1])
		if !ok {
			return fmt.Sprintf("%q is not a percentage: write e.g. 99.5%% or 0.995", n.Value)
		}
		if r.Cmp(big.NewRat(100, 1)) > 0 {
			return fmt.Sprintf("%s is more than 100%%: write a percentage between 0%% and 100%%", s)
		}
		// Exact decimal arithmetic: "99.5%" is the same float as 0.995.
		p.Value, _ = r.Quo(r, big.NewRat(100, 1)).Float64()
		return ""
	case "!!int", "!!float":
		var v float64
		if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprintf("%s is not a finite number: write a ratio such as 0.995 or a percentage such as 99.5%%", n.Value)
		}
		if v < 0 || v > 1 {
			hint := ""
			if v > 1 && v <= 100 {
				hint = fmt.Sprintf(" (did you mean %s%%?)", n.Value)
			}
			return fmt.Sprintf("%s is not a ratio between 0 and 1%s: write a ratio such as 0.995 or a percentage such as 99.5%%", n.Value, hint)
		}
		p.Value = v
		return ""
	}
	return fmt.Sprintf("expected a percentage such as 99.5%% or a ratio such as 0.995, got %s", describe(n))
}

// UnmarshalYAML lets plain yaml.Unmarshal decode a Document too.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error { return scalarError(p, n) }

// MarshalYAML writes a percentage string as a string and a ratio as a
// number, so that Parse reads back exactly what was meant.
func (p Percent) MarshalYAML() (any, error) {
	raw := strings.TrimSpace(p.Raw)
	if raw == "" {
		return formatPercent(p.Value), nil
	}
	if !strings.HasSuffix(raw, "%") {
		if _, err := strconv.ParseFloat(raw, 64); err == nil {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: raw}, nil
		}
	}
	return raw, nil
}

// JSONSchema accepts a ratio 0..1 or a percentage string 0%..100%.
func (Percent) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		OneOf: []*jsonschema.Schema{
			{Type: "number", Minimum: "0", Maximum: "1"},
			{Type: "string", Pattern: percentPattern},
		},
		Examples: []any{"99.5%", 0.995},
	}
}

// formatPercent renders a ratio as a percentage string by moving the
// decimal point of its shortest representation, which Parse reads back as
// the identical float.
func formatPercent(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	ip, fp, _ := strings.Cut(s, ".")
	for len(fp) < 2 {
		fp += "0"
	}
	ip = strings.TrimLeft(ip+fp[:2], "0")
	if ip == "" {
		ip = "0"
	}
	fp = strings.TrimRight(fp[2:], "0")
	if fp != "" {
		ip += "." + fp
	}
	return ip + "%"
}

// Points is an absolute increase of a rate, written in percentage points
// ("1pp", or "1%", which means the same here) or as a ratio (0.01).
type Points struct {
	Value float64
	Raw   string // as written; a number is written back as a number
}

// pointsPattern is the schema pattern of the string form, 0pp to 99.x pp.
const pointsPattern = `^[0-9]{1,2}(\.[0-9]+)?(pp|%)$`

var pointsRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?)(pp|%)$`)

// NewPoints returns the Points for a ratio v.
func NewPoints(v float64) *Points { return &Points{Value: v} }

func (p *Points) decodeScalar(n *yaml.Node) string {
	p.Raw = n.Value
	switch n.ShortTag() {
	case "!!str":
		s := strings.TrimSpace(n.Value)
		m := pointsRE.FindStringSubmatch(s)
		if m == nil || len(s) > 40 {
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				return fmt.Sprintf("%q is a quoted number: write a ratio such as 0.01 unquoted, or percentage points such as 1pp", n.Value)
			}
			if strings.HasPrefix(s, "-") {
				return fmt.Sprintf("%q is negative: write how much higher the rate may be, e.g. 1pp", n.Value)
			}
			return fmt.Sprintf("%q is not an increase: write percentage points such as 1pp (or 1%%), or a ratio such as 0.01", n.Value)
		}
		r, ok := new(big.Rat).SetString(m[1])
		if !ok {
			return fmt.Sprintf("%q is not an increase: write percentage points such as 1pp (or 1%%), or a ratio such as 0.01", n.Value)
		}
		if r.Cmp(big.NewRat(100, 1)) > 0 {
			return fmt.Sprintf("%s is more than 100 percentage points: a rate cannot rise by more than 100%%", s)
		}
		p.Value, _ = r.Quo(r, big.NewRat(100, 1)).Float64()
		return ""
	case "!!int", "!!float":
		var v float64
		if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprintf("%s is not a finite number: write percentage points such as 1pp, or a ratio such as 0.01", n.Value)
		}
		if v < 0 || v > 1 {
			hint := ""
			if v > 1 && v <= 100 {
				hint = fmt.Sprintf(" (did you mean %spp?)", n.Value)
			}
			return fmt.Sprintf("%s is not a ratio between 0 and 1%s: write percentage points such as 1pp, or a ratio such as 0.01", n.Value, hint)
		}
		p.Value = v
		return ""
	}
	return fmt.Sprintf("expected percentage points such as 1pp or a ratio such as 0.01, got %s", describe(n))
}

// UnmarshalYAML lets plain yaml.Unmarshal decode a Document too.
func (p *Points) UnmarshalYAML(n *yaml.Node) error { return scalarError(p, n) }

// MarshalYAML writes the increase as written, or in percentage points.
func (p Points) MarshalYAML() (any, error) {
	raw := strings.TrimSpace(p.Raw)
	if raw == "" {
		return strings.TrimSuffix(formatPercent(p.Value), "%") + "pp", nil
	}
	return Percent{Raw: raw}.MarshalYAML()
}

// JSONSchema accepts a ratio 0..1 or a percentage-point string.
func (Points) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		OneOf: []*jsonschema.Schema{
			{Type: "number", ExclusiveMinimum: "0", ExclusiveMaximum: "1"},
			{Type: "string", Pattern: pointsPattern},
		},
		Examples: []any{"1pp", "0.5pp", 0.01},
	}
}

// Factor is a plain number, kept as written, such as a tolerance of 2 or
// 1.5.
type Factor struct {
	Value float64
	Raw   string // as written; Render keeps it so that Parse sees it verbatim
}

// NewFactor returns the Factor for v.
func NewFactor(v float64) *Factor { return &Factor{Value: v} }

func (f *Factor) decodeScalar(n *yaml.Node) string {
	f.Raw = n.Value
	switch n.ShortTag() {
	case "!!int", "!!float":
		var v float64
		if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprintf("expected a finite number, got %s", n.Value)
		}
		f.Value = v
		return ""
	}
	return fmt.Sprintf("expected a number such as 2 or 1.5, got %s%s", describe(n), unquoteHint(n))
}

// UnmarshalYAML lets plain yaml.Unmarshal decode a Document too.
func (f *Factor) UnmarshalYAML(n *yaml.Node) error { return scalarError(f, n) }

// MarshalYAML writes the number as written: a number stays a number,
// anything else becomes a string, so that Parse reports it.
func (f Factor) MarshalYAML() (any, error) {
	raw := strings.TrimSpace(f.Raw)
	if raw == "" {
		return f.Value, nil
	}
	if _, err := strconv.ParseFloat(raw, 64); err == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: raw}, nil
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.Raw}, nil
}

// JSONSchema accepts a number greater than 1.
func (Factor) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "number", ExclusiveMinimum: "1", Examples: []any{2, 1.5}}
}

// Condition is a response condition: a status class ("5xx"), an HTTP status
// (429, quoted or not), "grpc-error", a gRPC code name ("UNAVAILABLE"),
// "reset" or "no-response".
type Condition struct {
	Cond gate.Cond
	Raw  string
}

func (c *Condition) decodeScalar(n *yaml.Node) string {
	c.Raw = n.Value
	switch n.ShortTag() {
	case "!!str", "!!int":
	default:
		return fmt.Sprintf("expected a response condition such as 5xx, 429, grpc-error, UNAVAILABLE or reset, got %s", describe(n))
	}
	cond, err := gate.ParseCond(n.Value)
	if err != nil {
		return err.Error()
	}
	c.Cond = cond
	return ""
}

// UnmarshalYAML lets plain yaml.Unmarshal decode a Document too.
func (c *Condition) UnmarshalYAML(n *yaml.Node) error { return scalarError(c, n) }

// MarshalYAML writes the condition as written (an HTTP status as a number).
func (c Condition) MarshalYAML() (any, error) {
	raw := c.Raw
	if raw == "" {
		raw = c.Cond.String()
	}
	if n, err := strconv.Atoi(raw); err == nil {
		return n, nil
	}
	return raw, nil
}

// JSONSchema accepts a condition string or an HTTP status number.
func (Condition) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		OneOf: []*jsonschema.Schema{
			{Type: "string", MinLength: ptrUint(1)},
			{Type: "integer", Minimum: "100", Maximum: "599"},
		},
		Examples: []any{"5xx", 429, "grpc-error", "UNAVAILABLE", "reset", "no-response"},
	}
}

func ptrUint(v uint64) *uint64 { return &v }

func scalarError(s scalar, n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a scalar, got %s", n.Line, describe(n))
	}
	if msg := s.decodeScalar(n); msg != "" {
		return fmt.Errorf("line %d: %s", n.Line, msg)
	}
	return nil
}

// describe names a node for messages: `a mapping`, `integer 123`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "boolean " + v
	case "!!int":
		return "integer " + v
	case "!!float":
		return "number " + v
	case "!!str":
		return fmt.Sprintf("string %q", v)
	}
	return fmt.Sprintf("%s %q", n.ShortTag(), v)
}
