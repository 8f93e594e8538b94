package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// APIVersion and Kind identify the JSON report document. Field names are a
// contract: add fields, never rename or repurpose them within a version.
const (
	APIVersion = "tapgate.dev/v1alpha1"
	Kind       = "GateReport"
)

// Document is the JSON report.
type Document struct {
	APIVersion     string   `json:"apiVersion"`
	Kind           string   `json:"kind"`
	Metadata       Metadata `json:"metadata"`
	Verdict        string   `json:"verdict"` // pass | fail | inconclusive
	Reason         string   `json:"reason"`  // "1 of 4 rules failed"
	ExitCode       int      `json:"exitCode"`
	OnInconclusive string   `json:"onInconclusive"` // pass | fail | inconclusive
	Final          bool     `json:"final"`          // false: the window did not close
	WindowSeconds  float64  `json:"windowSeconds"`
	ElapsedSeconds float64  `json:"elapsedSeconds"`
	// TimeKnown is false for recordings without event times: warmup was not
	// applied and window/elapsed are not measured.
	TimeKnown bool `json:"timeKnown"`
	// StoppedEarly says the run ended before the window closed because the
	// verdict was decided (a FAIL no traffic can undo, or every rule passed
	// with stopOnPass); elapsedSeconds is then the time actually tapped.
	StoppedEarly bool `json:"stoppedEarly"`
	// StopReason says why it stopped; omitted when it did not.
	StopReason string   `json:"stopReason,omitempty"`
	Targets    []Target `json:"targets"`
	Rules      []Rule   `json:"rules"`
}

// Metadata says what was gated, with what and from where.
type Metadata struct {
	Policy         string `json:"policy"`
	PolicyFile     string `json:"policyFile"`
	TapgateVersion string `json:"tapgateVersion"`
	Source         string `json:"source"`
	StartTime      string `json:"startTime,omitempty"` // RFC 3339, UTC
}

// Interval is a 95% interval of a ratio.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Quantiles are latency or duration quantiles in milliseconds, rounded to
// the microsecond. A target's quantiles carry their distribution-free 95%
// intervals; a pod's do not.
type Quantiles struct {
	P50         float64 `json:"p50"`
	P95         float64 `json:"p95"`
	P99         float64 `json:"p99"`
	P50Interval *Bounds `json:"p50Interval,omitempty"`
	P95Interval *Bounds `json:"p95Interval,omitempty"`
	P99Interval *Bounds `json:"p99Interval,omitempty"`
}

// Bounds is a 95% interval of a duration, in the unit of the value it
// belongs to (milliseconds in latencyMs and durationMs, seconds in a
// rule). Low is 0 when the sample gives no lower bound; High is null when
// it gives no upper one (too few samples for that quantile).
type Bounds struct {
	Low  float64  `json:"low"`
	High *float64 `json:"high"`
}

// Target is what the gate saw of one target.
type Target struct {
	Name      string `json:"name"`
	Resource  string `json:"resource"`
	Requests  uint64 `json:"requests"`
	Successes uint64 `json:"successes"`
	Failures  uint64 `json:"failures"`
	InFlight  uint64 `json:"inFlight"`
	// SuccessRate and its interval are null when there were no requests.
	SuccessRate         *float64  `json:"successRate"`
	SuccessRateInterval *Interval `json:"successRateInterval"`
	// LatencyMs is time to response headers, DurationMs time to end of
	// stream; null when no request completed.
	LatencyMs   *Quantiles        `json:"latencyMs"`
	DurationMs  *Quantiles        `json:"durationMs"`
	StatusCodes map[string]uint64 `json:"statusCodes"` // "200": n
	GRPCCodes   map[string]uint64 `json:"grpcCodes"`   // "UNAVAILABLE": n
	Resets      uint64            `json:"resets"`
	NoResponse  uint64            `json:"noResponse"`
	// WarmupRequests started during warmup and were not evaluated.
	WarmupRequests uint64 `json:"warmupRequests"`
	// OrphanEvents are response events of requests that began before the tap.
	OrphanEvents uint64 `json:"orphanEvents"`
	// EvictedInFlight were dropped when the in-flight table was full.
	EvictedInFlight uint64 `json:"evictedInFlight"`
	// OtherPodsRequests came from pods beyond the per-target pod cap; they
	// are in the totals but not in Pods.
	OtherPodsRequests uint64 `json:"otherPodsRequests"`
	// Coverage is the share of the window the target was tapped (0..1).
	Coverage float64 `json:"coverage"`
	// CrossCheck compares the tapped sample with the proxies' own counts;
	// omitted when none ran.
	CrossCheck *CrossCheck `json:"crossCheck,omitempty"`
	Pods       []Pod       `json:"pods"`
	Notes      []string    `json:"notes"`
}

// Pod is one pod of a target.
type Pod struct {
	Name        string     `json:"name"`
	Requests    uint64     `json:"requests"`
	Successes   uint64     `json:"successes"`
	Failures    uint64     `json:"failures"`
	InFlight    uint64     `json:"inFlight"`
	SuccessRate *float64   `json:"successRate"`
	LatencyMs   *Quantiles `json:"latencyMs"`
}

// Rule is the outcome of one rule on one target.
type Rule struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"` // successRate | errorRate | latency | requestRate | count
	Target  string `json:"target"`
	Route   string `json:"route"`
	Verdict string `json:"verdict"`
	// Observed is in Unit; null when nothing was observed.
	Observed  *float64 `json:"observed"`
	Unit      string   `json:"unit"` // ratio | seconds | rps | count
	Threshold string   `json:"threshold"`
	Samples   uint64   `json:"samples"`
	Required  int      `json:"required"`
	// Interval is the 95% interval of a rate rule's observed ratio; omitted
	// for other kinds and when nothing was observed.
	Interval *Interval `json:"interval,omitempty"`
	Reason   string    `json:"reason"`
	DryRun   bool      `json:"dryRun"`
	Line     int       `json:"line"` // line of the rule in the policy file; 0 when unknown
	// Decision is how the rule decided: sequential | estimate; omitted for
	// counting rules (count, requestRate).
	Decision string `json:"decision,omitempty"`
	// Decided says no further traffic can change the verdict (a latched
	// sequential FAIL, a count over its maximum).
	Decided bool `json:"decided"`
	// Test holds a sequential test's figures; omitted for other rules.
	Test *Test `json:"test,omitempty"`
	// QuantileInterval is the distribution-free 95% interval, in seconds,
	// of a latency rule's observed quantile (for compareLatency, of the
	// target's quantile, compare.targetObserved); omitted for other kinds.
	QuantileInterval *Bounds `json:"quantileInterval,omitempty"`
	// Compare is what a compare rule saw of its target and baseline.
	Compare *Compare `json:"compare,omitempty"`
}

// Test are the figures behind a sequential decision. Rates are ratios of
// "bad" samples: failed requests, or requests slower than a latency bound.
type Test struct {
	Confidence *float64 `json:"confidence"` // 0.99
	Tolerance  *float64 `json:"tolerance"`  // 2: bounds hold at budget/2 and budget*2
	// Good and Bad are the bad-sample rates the error bounds are stated at:
	// a target at Good fails, one at Bad passes, each at most 1-confidence
	// of the time.
	Good       *float64 `json:"good"`
	Bad        *float64 `json:"bad"`
	BadSamples uint64   `json:"badSamples"`
	// LLR is the log likelihood ratio of Bad over Good: the rule fails at
	// FailBoundary and passes at or below PassBoundary. For compare rules
	// LLR is the fail side's test and PassLLR the pass side's.
	LLR          *float64 `json:"llr"`
	PassLLR      *float64 `json:"passLlr"`
	FailBoundary *float64 `json:"failBoundary"`
	PassBoundary *float64 `json:"passBoundary"`
	// DecidedAfter is the sample count at which a FAIL was decided (0 when
	// not decided); DecidedAtSeconds the time into the window, omitted when
	// not decided or unknown.
	DecidedAfter     uint64   `json:"decidedAfter"`
	DecidedAtSeconds *float64 `json:"decidedAtSeconds,omitempty"`
	// MoreSamples estimates how many more samples would likely decide the
	// rule at the observed rate: 0 when decided, null when it cannot be
	// told.
	MoreSamples *int64 `json:"moreSamples"`
	// CleanPass is the number of samples, none bad, that pass a fresh test.
	CleanPass uint64 `json:"cleanPass"`
}

// Compare is what a compare rule saw: values are error rates (unit
// "ratio") or quantiles in seconds (unit "seconds").
type Compare struct {
	Baseline        string `json:"baseline"`
	BaselineSamples uint64 `json:"baselineSamples"`
	Unit            string `json:"unit"` // ratio | seconds
	// BaselineObserved and TargetObserved are null when that side
	// observed nothing.
	BaselineObserved *float64 `json:"baselineObserved"`
	TargetObserved   *float64 `json:"targetObserved"`
	// BaselineLow and BaselineHigh are the anytime-valid bounds of the
	// baseline's value the sequential test used; High is null while
	// unbounded.
	BaselineLow  *float64 `json:"baselineLow"`
	BaselineHigh *float64 `json:"baselineHigh"`
	// Bound is the value the target is held to, from the baseline's point
	// estimate; null when the baseline observed nothing.
	Bound *float64 `json:"bound"`
}

// JSON writes the JSON report: the Document, indented two spaces, with a
// trailing newline.
func JSON(w io.Writer, v *gate.Verdict, meta Meta) error {
	if v == nil {
		return fmt.Errorf("json report: no verdict")
	}
	// Render into memory so a failing encode never leaves half a document
	// on w. HTML escaping is off: thresholds read ">= 99.5%", not
	// "\u003e= 99.5%", and the report is never embedded in HTML unquoted.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Build(v, meta)); err != nil { // Encode adds the final newline
		return fmt.Errorf("json report: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// num returns a pointer to v, or nil when v is not a finite number (JSON
// has no NaN; null is the honest rendering).
func num(v float64) *float64 {
	if !finite(v) {
		return nil
	}
	return &v
}

// orZero maps non-finite numbers to 0 for fields that cannot be null.
func orZero(v float64) float64 {
	if !finite(v) {
		return 0
	}
	return v
}

// ms converts a duration to milliseconds with 3 decimals.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// quantiles converts quantiles to milliseconds; withIntervals adds their
// intervals (targets have them, pods do not).
func quantiles(q gate.Quantiles, withIntervals bool) *Quantiles {
	if !q.Valid {
		return nil
	}
	out := &Quantiles{P50: ms(q.P50), P95: ms(q.P95), P99: ms(q.P99)}
	if withIntervals {
		out.P50Interval = msBounds(q.CI50)
		out.P95Interval = msBounds(q.CI95)
		out.P99Interval = msBounds(q.CI99)
	}
	return out
}

// msBounds converts a duration interval to milliseconds; seconds to
// seconds. Both round outward to the unit's last digit shown (a microsecond,
// a nanosecond), so an interval never narrows.
func msBounds(iv gate.DurationInterval) *Bounds {
	b := &Bounds{Low: math.Floor(float64(iv.Low)/float64(time.Microsecond)+1e-9) / 1000}
	if iv.HighKnown {
		h := math.Ceil(float64(iv.High)/float64(time.Microsecond)-1e-9) / 1000
		b.High = &h
	}
	return b
}

func secondsBounds(iv gate.DurationInterval) *Bounds {
	b := &Bounds{Low: iv.Low.Seconds()}
	if iv.HighKnown {
		h := iv.High.Seconds()
		b.High = &h
	}
	return b
}

func rate(s *gate.Stats) *float64 {
	if s.Requests == 0 {
		return nil
	}
	return num(s.SuccessRate)
}

func toInterval(iv gate.Interval) *Interval {
	if !finite(iv.Low) || !finite(iv.High) {
		return nil
	}
	return &Interval{Low: iv.Low, High: iv.High}
}

// Build turns a verdict into the JSON report document. Other reporters
// (JUnit, Markdown) may start from it too. Slices and maps are never nil so
// consumers always see [] and {} rather than null.
func Build(v *gate.Verdict, meta Meta) *Document {
	d := &Document{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata: Metadata{
			Policy:         v.Policy,
			PolicyFile:     meta.PolicyFile,
			TapgateVersion: meta.Version,
			Source:         cleanSource(meta.Source),
		},
		Verdict:        v.Outcome.String(),
		Reason:         Reason(v),
		ExitCode:       meta.ExitCode,
		OnInconclusive: meta.onInconclusive().String(),
		Final:          v.Final,
		WindowSeconds:  v.Window.Seconds(),
		ElapsedSeconds: v.Elapsed.Seconds(),
		TimeKnown:      v.TimeKnown,
		StoppedEarly:   v.StoppedEarly,
		StopReason:     v.StopReason,
		Targets:        make([]Target, 0, len(v.Targets)),
		Rules:          make([]Rule, 0, len(v.Rules)),
	}
	if !meta.StartTime.IsZero() {
		d.Metadata.StartTime = meta.StartTime.UTC().Format(time.RFC3339)
	}
	for i := range v.Targets {
		d.Targets = append(d.Targets, buildTarget(&v.Targets[i], v))
	}
	for i := range v.Rules {
		d.Rules = append(d.Rules, buildRule(&v.Rules[i]))
	}
	return d
}

func buildTarget(t *gate.TargetResult, v *gate.Verdict) Target {
	out := Target{
		Name:              t.Name,
		Resource:          t.Resource,
		Requests:          t.Requests,
		Successes:         t.Successes,
		Failures:          t.Failures,
		InFlight:          t.InFlight,
		SuccessRate:       rate(&t.Stats),
		LatencyMs:         quantiles(t.Latency, true),
		DurationMs:        quantiles(t.Duration, true),
		StatusCodes:       make(map[string]uint64, len(t.Status)),
		GRPCCodes:         make(map[string]uint64, len(t.GRPC)),
		Resets:            t.Resets,
		NoResponse:        t.NoResponse,
		WarmupRequests:    t.Warmup,
		OrphanEvents:      t.Orphans,
		EvictedInFlight:   t.Evicted,
		OtherPodsRequests: t.PodsOther,
		Coverage:          orZero(t.Coverage),
		CrossCheck:        buildCrossCheck(t),
		Pods:              make([]Pod, 0, len(t.Pods)),
		Notes:             Notes(t, v),
	}
	if t.Requests > 0 {
		out.SuccessRateInterval = toInterval(t.Interval)
	}
	for c, n := range t.Status {
		out.StatusCodes[strconv.FormatUint(uint64(c), 10)] += n
	}
	for c, n := range t.GRPC {
		out.GRPCCodes[gate.GRPCCodeName(c)] += n
	}
	for _, p := range sortedPods(t) {
		out.Pods = append(out.Pods, Pod{
			Name:        p.Pod,
			Requests:    p.Requests,
			Successes:   p.Successes,
			Failures:    p.Failures,
			InFlight:    p.InFlight,
			SuccessRate: rate(&p.Stats),
			LatencyMs:   quantiles(p.Latency, false),
		})
	}
	return out
}

func buildRule(r *gate.RuleResult) Rule {
	out := Rule{
		Name:      r.Name,
		Kind:      r.Kind.String(),
		Target:    r.Target,
		Route:     r.Route,
		Verdict:   r.Outcome.String(),
		Unit:      ruleUnit(r),
		Threshold: r.Threshold,
		Samples:   r.Samples,
		Required:  r.Required,
		Reason:    r.Reason,
		DryRun:    r.DryRun,
		Line:      r.Line,
	}
	if r.HasValue {
		out.Observed = num(r.Observed)
	}
	if isRate(r.Kind) && r.HasValue && r.Interval != nil {
		out.Interval = toInterval(*r.Interval)
	}
	switch r.Decision {
	case gate.Sequential, gate.Estimate:
		out.Decision = r.Decision.String()
	}
	out.Decided = r.Decided
	if r.Test != nil {
		out.Test = buildTest(r.Test)
	}
	if (r.Kind == gate.LatencyQuantile || r.Kind == gate.CompareLatency) && r.QuantileCI != nil {
		out.QuantileInterval = secondsBounds(*r.QuantileCI)
	}
	if r.Compare != nil {
		out.Compare = buildCompare(r)
	}
	return out
}

func buildTest(t *gate.TestResult) *Test {
	out := &Test{
		Confidence:   num(t.Confidence),
		Tolerance:    num(t.Tolerance),
		Good:         num(t.Good),
		Bad:          num(t.Bad),
		BadSamples:   t.BadSamples,
		LLR:          num(t.LLR),
		PassLLR:      num(t.PassLLR),
		FailBoundary: num(t.FailBoundary),
		PassBoundary: num(t.PassBoundary),
		DecidedAfter: t.DecidedAfter,
		CleanPass:    t.CleanPass,
	}
	if t.DecidedAt > 0 {
		out.DecidedAtSeconds = num(t.DecidedAt.Seconds())
	}
	if t.MoreSamples >= 0 {
		m := t.MoreSamples
		out.MoreSamples = &m
	}
	return out
}

func buildCompare(r *gate.RuleResult) *Compare {
	c := r.Compare
	out := &Compare{
		Baseline:        c.Baseline,
		BaselineSamples: c.BaselineSamples,
		Unit:            "ratio",
		BaselineLow:     num(c.BaselineLow),
		BaselineHigh:    num(c.BaselineHigh),
	}
	if r.Kind == gate.CompareLatency {
		out.Unit = "seconds"
	}
	if c.BaselineHasValue {
		out.BaselineObserved = num(c.BaselineObserved)
		out.Bound = num(c.Bound)
	}
	if c.TargetHasValue {
		out.TargetObserved = num(c.TargetObserved)
	}
	return out
}
