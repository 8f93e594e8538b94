package gate

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Tap is a sample: each proxy forwards the first maxRPS/pods requests of
// every second, so at high rates tapgate judges a few percent of the
// traffic, and not a random few percent (bursts, retries and slow requests
// are under-represented). The proxies' own counters, which Linkerd's
// Prometheus scrapes, count every request. A cross-check compares the two.

// ProxyCounts is what a target's proxies counted themselves over the tapped
// window (Linkerd's response_total and response_latency_ms_bucket): every
// request, not only the tapped sample. Counts are floats, as Prometheus
// keeps them.
type ProxyCounts struct {
	Requests float64
	Failures float64
	// Buckets are the cumulative latency histogram: requests with a
	// latency to response headers at most UpperMs, ascending, +Inf last.
	Buckets []HistogramBucket
	// From and To are the times the counts cover; they may differ from the
	// tap window by up to a scrape interval.
	From, To time.Time
	// Source says where the counts came from ("prometheus via the
	// apiserver's service proxy", a URL).
	Source string
	// Notes are caveats worth a line in the report (a label selector the
	// metrics cannot apply, ...).
	Notes []string
}

// HistogramBucket is one cumulative bucket of a Prometheus histogram.
type HistogramBucket struct {
	UpperMs float64 // +Inf for the last
	Count   float64
}

// CrossCheckPolicy configures the cross-check against the proxies' own
// counters. Where they are read from is the adapters' business (gate/prom);
// the policy only carries it.
type CrossCheckPolicy struct {
	// Disabled turns the cross-check off.
	Disabled bool
	// URL is a Prometheus (or Thanos, Mimir) HTTP API base URL; empty
	// means linkerd-viz's Prometheus through the Kubernetes apiserver's
	// service proxy: Service Port in Namespace (defaults linkerd-viz,
	// prometheus, 9090).
	URL       string
	Namespace string
	Service   string
	Port      int
	// Required makes an unreachable Prometheus an infrastructure error
	// (exit 4, before tapping) instead of a note.
	Required bool
	// MismatchInconclusive makes a target's tested rules INCONCLUSIVE
	// when its tapped error rate differs significantly from the proxies'
	// (onMismatch: inconclusive); otherwise a mismatch is a warning.
	MismatchInconclusive bool
	// MinVolumeCoverage, when positive, is the share of the target's
	// requests tap must have seen for its rules to PASS.
	MinVolumeCoverage float64
}

// CrossCheck is what a target's cross-check found.
type CrossCheck struct {
	TappedRequests uint64
	TappedFailures uint64
	TotalRequests  float64
	TotalFailures  float64
	// VolumeCoverage is tapped / total requests (0..1; may exceed 1 by
	// scrape misalignment, then it is reported as 1).
	VolumeCoverage  float64
	TappedErrorRate float64
	TotalErrorRate  float64
	// Mismatch says the tapped error rate differs from the untapped
	// requests' more than chance allows at the policy's confidence; PValue
	// is the test's two-sided p-value.
	Mismatch bool
	PValue   float64
	// Latency holds quantiles interpolated in the histogram's buckets, as
	// Prometheus' histogram_quantile does.
	Latency Quantiles
	Source  string
	Notes   []string
}

// FailedByLabels classifies a series of the proxies' response counters by
// what its labels say of the responses (HTTP status, gRPC status, a reset),
// with the policy's failOn, so that the cross-check counts failures as the
// tap sample does. exact is false when an ignore rule of the policy has a
// route, which the metrics cannot tell apart: its failures then count as
// failures, and the caller says so.
func (c *Classification) FailedByLabels(status uint32, grpc int32, reset bool) (failed, exact bool) {
	r := Request{Status: status, GRPC: grpc, Reset: reset}
	exact = true
	ignore := c.Ignore
	for i := range ignore {
		if !ignore[i].Route.IsZero() {
			exact = false
		}
	}
	// Only the route-less ignore rules apply to every request.
	cc := Classification{FailOn: c.FailOn}
	for _, ig := range ignore {
		if ig.Route.IsZero() {
			cc.Ignore = append(cc.Ignore, IgnoreRule{When: ig.When})
		}
	}
	return cc.Failed(&r), exact
}

// SetProxyCounts gives target i the proxies' own counts for the window;
// the next Evaluate cross-checks the tapped sample against them.
func (e *Engine) SetProxyCounts(i int, c ProxyCounts) {
	if i < 0 || i >= len(e.targets) {
		return
	}
	e.targets[i].proxy = &c
}

// crossCheck compares a target's tapped sample with its proxies' counts.
func (e *Engine) crossCheck(ts *targetState) *CrossCheck {
	c := ts.proxy
	if c == nil {
		return nil
	}
	cc := &CrossCheck{
		TappedRequests: ts.all.requests,
		TappedFailures: ts.all.failures,
		TotalRequests:  c.Requests,
		TotalFailures:  c.Failures,
		Source:         c.Source,
		Notes:          append([]string(nil), c.Notes...),
		Latency:        HistogramQuantiles(c.Buckets),
		PValue:         1,
	}
	if c.Requests > 0 {
		cc.VolumeCoverage = math.Min(1, float64(cc.TappedRequests)/c.Requests)
		cc.TotalErrorRate = c.Failures / c.Requests
	}
	if cc.TappedRequests > 0 {
		cc.TappedErrorRate = float64(cc.TappedFailures) / float64(cc.TappedRequests)
	}
	// The untapped requests are the proxies' counts minus the sample; the
	// counts cover a window shifted by up to a scrape interval, so they are
	// clamped rather than trusted to the request.
	restN := math.Max(0, c.Requests-float64(cc.TappedRequests))
	restK := math.Min(restN, math.Max(0, c.Failures-float64(cc.TappedFailures)))
	if cc.TappedRequests > 0 && restN >= 1 {
		cc.PValue = twoProportionP(float64(cc.TappedFailures), float64(cc.TappedRequests), restK, restN)
		cc.Mismatch = cc.PValue < 1-confidenceOf(e.p)
	}
	return cc
}

// confidenceOf is the policy's default confidence.
func confidenceOf(p *Policy) float64 {
	if p.Confidence > 0 {
		return p.Confidence
	}
	return DefaultConfidence
}

// twoProportionP is the two-sided p-value of the pooled two-proportion z
// test (with continuity correction) that k1 of n1 and k2 of n2 come from
// the same rate. The cross-check runs it once, on the whole window: a
// fixed-sample test is the right one.
func twoProportionP(k1, n1, k2, n2 float64) float64 {
	if n1 <= 0 || n2 <= 0 {
		return 1
	}
	p := (k1 + k2) / (n1 + n2)
	v := p * (1 - p) * (1/n1 + 1/n2)
	if v <= 0 {
		return 1
	}
	d := math.Abs(k1/n1-k2/n2) - 0.5*(1/n1+1/n2)
	if d <= 0 {
		return 1
	}
	return math.Erfc(d / math.Sqrt(v) / math.Sqrt2)
}

// HistogramQuantiles interpolates p50, p95 and p99 in cumulative buckets
// linearly within the bucket that holds each rank, as Prometheus'
// histogram_quantile does; a rank in the +Inf bucket is reported at the
// highest finite bound.
func HistogramQuantiles(b []HistogramBucket) Quantiles {
	var q Quantiles
	if len(b) == 0 || b[len(b)-1].Count <= 0 {
		return q
	}
	b = append([]HistogramBucket(nil), b...)
	sort.Slice(b, func(i, j int) bool { return b[i].UpperMs < b[j].UpperMs })
	at := func(p float64) time.Duration {
		total := b[len(b)-1].Count
		rank := p * total
		lowB, lowC := 0.0, 0.0
		for _, x := range b {
			if x.Count >= rank {
				if math.IsInf(x.UpperMs, 1) {
					return time.Duration(lowB * float64(time.Millisecond))
				}
				f := 1.0
				if x.Count > lowC {
					f = (rank - lowC) / (x.Count - lowC)
				}
				return time.Duration((lowB + f*(x.UpperMs-lowB)) * float64(time.Millisecond))
			}
			lowB, lowC = x.UpperMs, x.Count
		}
		return time.Duration(lowB * float64(time.Millisecond))
	}
	q.P50, q.P95, q.P99 = at(0.5), at(0.95), at(0.99)
	q.Valid = true
	return q
}

// applyCrossCheck turns a target's tested rule INCONCLUSIVE when the
// cross-check says its sample cannot be trusted: a mismatch under
// onMismatch: inconclusive, or a PASS on too small a share of the traffic.
func (e *Engine) applyCrossCheck(cc *CrossCheck, res *RuleResult) {
	if cc == nil || !res.Kind.Tested() {
		return
	}
	cp := e.p.CrossCheck
	switch {
	case cc.Mismatch && cp.MismatchInconclusive && res.Outcome != Inconclusive:
		res.Outcome, res.Decided = Inconclusive, false
		res.Reason = fmt.Sprintf("the tap sample is not representative: its error rate %s differs from the %s the proxies counted (p = %.2g, onMismatch: inconclusive); %s",
			FormatPercent(cc.TappedErrorRate), FormatPercent(cc.TotalErrorRate), cc.PValue, res.Reason)
	case cp.MinVolumeCoverage > 0 && cc.VolumeCoverage+eps < cp.MinVolumeCoverage && res.Outcome == Pass:
		res.Outcome = Inconclusive
		res.Reason = fmt.Sprintf("tap saw only %s of the target's requests (minVolumeCoverage %s); %s",
			FormatPercent(cc.VolumeCoverage), FormatPercent(cp.MinVolumeCoverage), res.Reason)
	}
}
