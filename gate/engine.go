package gate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits bound the engine's memory whatever the traffic looks like.
type Limits struct {
	// MaxInFlight is the most requests per target awaiting their response;
	// past it the oldest-looking entry is evicted and counted, never as a
	// success.
	MaxInFlight int
	// MaxPods is the most pods per target with their own statistics; the
	// rest are counted together as "other".
	MaxPods int
}

// DefaultLimits are generous for any real deployment.
var DefaultLimits = Limits{MaxInFlight: 200000, MaxPods: 256}

// Engine keeps the window statistics of a policy's targets and evaluates its
// rules. It is not safe for concurrent use: sources serialize Observe calls.
// Memory is bounded by Limits, never by the number of requests.
type Engine struct {
	p       *Policy
	limits  Limits
	targets []*targetState
	sawTime bool
	noTime  bool
}

type targetState struct {
	t        *Target
	inflight map[streamKey]pending
	all      *cell
	pods     map[string]*cell
	podOther *cell
	rules    []*ruleState

	warmup, orphans, evicted, late uint64
	coverage                       float64
	coverageKnown                  bool
	notes                          []string
}

// pending is a request whose outcome is not known yet.
type pending struct {
	method, authority, path, pod string
	status                       uint32
	latency                      time.Duration
	hasInit                      bool
	warm                         bool
	grpc                         int32
	ignoreRoutes                 uint64 // bit i: Classification.Ignore[i] route matched
	routes                       uint64 // bit i: rules[i] route matched
}

type ruleState struct {
	r        *Rule
	bit      uint64
	started  uint64 // requests begun in the window (for requestRate)
	samples  uint64
	failures uint64
	matched  uint64 // count rule
	exceed   uint64 // latency rule: samples slower than the threshold
	sketch   *Sketch
}

// NewEngine prepares an engine for a validated policy.
func NewEngine(p *Policy, limits Limits) (*Engine, error) {
	if limits.MaxInFlight <= 0 {
		limits.MaxInFlight = DefaultLimits.MaxInFlight
	}
	if limits.MaxPods <= 0 {
		limits.MaxPods = DefaultLimits.MaxPods
	}
	if n := len(p.Classification.Ignore); n > 64 {
		return nil, fmt.Errorf("classification.ignore has %d entries; at most 64 are supported", n)
	}
	e := &Engine{p: p, limits: limits}
	for i := range p.Targets {
		ts := &targetState{
			t:        &p.Targets[i],
			inflight: make(map[streamKey]pending),
			all:      newCell(),
			pods:     make(map[string]*cell),
			coverage: 1,
		}
		e.targets = append(e.targets, ts)
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		found := r.Target == ""
		for _, ts := range e.targets {
			if r.Target != "" && r.Target != ts.t.Name {
				continue
			}
			found = true
			if len(ts.rules) >= 64 {
				return nil, fmt.Errorf("target %q has more than 64 rules", ts.t.Name)
			}
			rs := &ruleState{r: r, bit: 1 << uint(len(ts.rules))}
			if r.Kind == LatencyQuantile {
				rs.sketch = NewSketch()
			}
			ts.rules = append(ts.rules, rs)
		}
		if !found {
			return nil, fmt.Errorf("rule %q names unknown target %q", r.Name, r.Target)
		}
	}
	return e, nil
}

// Policy returns the policy the engine evaluates.
func (e *Engine) Policy() *Policy { return e.p }

// LiveClock tells the engine that time is known even before any event:
// a live tap stamps every arrival, so zero events over a window means zero
// requests in that window, not a recording without timestamps.
func (e *Engine) LiveClock() { e.sawTime = true }

// SetCoverage records the share of the window target i was actually tapped.
func (e *Engine) SetCoverage(i int, c float64) {
	if i < 0 || i >= len(e.targets) {
		return
	}
	e.targets[i].coverage = c
	e.targets[i].coverageKnown = true
}

// Note adds a line about target i to the report (reconnects, pods, ...).
func (e *Engine) Note(i int, format string, args ...any) {
	if i < 0 || i >= len(e.targets) {
		return
	}
	e.targets[i].notes = append(e.targets[i].notes, fmt.Sprintf(format, args...))
}

// Observe feeds one event of target i.
func (e *Engine) Observe(i int, ev *Event) {
	if i < 0 || i >= len(e.targets) || ev == nil {
		return
	}
	ts := e.targets[i]
	if ev.HasTime {
		e.sawTime = true
		if ev.At > e.p.Warmup+e.p.Window && e.p.Window > 0 {
			// After the window: the request stays in flight if it began
			// inside it, as DESIGN §2 asks.
			ts.late++
			return
		}
	} else {
		e.noTime = true
	}
	key := keyOf(ev)
	switch ev.Kind {
	case RequestInit:
		e.requestInit(ts, key, ev)
	case ResponseInit:
		p, ok := ts.inflight[key]
		if !ok {
			ts.orphans++
			return
		}
		p.hasInit = true
		p.status = ev.HTTPStatus
		p.latency = ev.SinceRequestInit
		if g, ok := grpcStatusOf(ev.Headers); ok && p.grpc < 0 {
			// Trailers-only gRPC responses carry grpc-status in headers.
			p.grpc = g
		}
		ts.inflight[key] = p
	case ResponseEnd:
		p, ok := ts.inflight[key]
		if !ok {
			ts.orphans++
			return
		}
		delete(ts.inflight, key)
		e.complete(ts, &p, ev)
	}
}

func (e *Engine) requestInit(ts *targetState, key streamKey, ev *Event) {
	if len(ts.inflight) >= e.limits.MaxInFlight {
		if _, dup := ts.inflight[key]; !dup {
			for k := range ts.inflight {
				delete(ts.inflight, k)
				ts.evicted++
				break
			}
		}
	}
	p := pending{
		method:    bounded(ev.Method),
		authority: bounded(ev.Authority),
		path:      bounded(ev.Path),
		pod:       bounded(ev.Pod()),
		grpc:      -1,
		warm:      ev.HasTime && ev.At < e.p.Warmup,
	}
	// Routes are matched now, on the full strings; only bounded copies
	// are kept while the request is in flight.
	for i := range e.p.Classification.Ignore {
		if i < 64 && e.p.Classification.Ignore[i].Route.Matches(ev.Method, ev.Authority, ev.Path) {
			p.ignoreRoutes |= 1 << uint(i)
		}
	}
	if !p.warm {
		for _, rs := range ts.rules {
			if rs.r.Route.Matches(ev.Method, ev.Authority, ev.Path) {
				p.routes |= rs.bit
				rs.started++
			}
		}
	}
	ts.inflight[key] = p
}

func (e *Engine) complete(ts *targetState, p *pending, ev *Event) {
	if p.warm {
		ts.warmup++
		return
	}
	r := Request{
		Method:    p.method,
		Authority: p.authority,
		Path:      p.path,
		Pod:       p.pod,
		Status:    p.status,
		GRPC:      p.grpc,
		Latency:   p.latency,
		Duration:  ev.SinceRequestInit,

		ignoreKnown:  true,
		ignoreRoutes: p.ignoreRoutes,
	}
	r.HasLatency = p.hasInit
	switch ev.EOS.Kind {
	case EOSGRPCStatus:
		r.GRPC = int32(ev.EOS.Code)
	case EOSReset:
		r.Reset = true
		r.ResetCode = ev.EOS.Code
	}
	if r.GRPC < 0 {
		if g, ok := grpcStatusOf(ev.Trailers); ok {
			r.GRPC = g
		}
	}
	r.NoResponse = !p.hasInit && ev.EOS.Kind == EOSNone
	r.Failed = e.p.Classification.Failed(&r)

	ts.all.add(&r)
	e.podCell(ts, r.Pod).add(&r)
	for _, rs := range ts.rules {
		if p.routes&rs.bit == 0 {
			continue
		}
		rs.observe(&r)
	}
}

func (rs *ruleState) observe(r *Request) {
	switch rs.r.Kind {
	case LatencyQuantile:
		v, ok := r.Latency, r.HasLatency
		if rs.r.Metric == MetricDuration {
			v, ok = r.Duration, true
		}
		if !ok {
			// No response headers: no latency sample, though the request
			// still counts for rates.
			return
		}
		rs.samples++
		rs.sketch.Add(v)
		if v > rs.r.MaxLatency {
			rs.exceed++
		}
	case ResponseCount:
		rs.samples++
		for _, c := range rs.r.Count {
			if c.Matches(r) {
				rs.matched++
				break
			}
		}
	default:
		rs.samples++
		if r.Failed {
			rs.failures++
		}
	}
}

func (e *Engine) podCell(ts *targetState, pod string) *cell {
	if pod == "" {
		pod = "unknown"
	}
	if c, ok := ts.pods[pod]; ok {
		return c
	}
	if len(ts.pods) >= e.limits.MaxPods {
		if ts.podOther == nil {
			ts.podOther = newCell()
		}
		return ts.podOther
	}
	c := newCell()
	ts.pods[pod] = c
	return c
}

// grpcStatusOf finds a grpc-status header or trailer.
func grpcStatusOf(hs []Header) (int32, bool) {
	for _, h := range hs {
		if len(h.Name) == len("grpc-status") && strings.EqualFold(h.Name, "grpc-status") {
			n, err := strconv.ParseUint(strings.TrimSpace(h.Value), 10, 31)
			if err != nil {
				return 0, false
			}
			return int32(n), true
		}
	}
	return 0, false
}

// Evaluate returns the verdict as of now, the time since the tap began
// (warmup included). It may be called at any moment; final says the window
// has closed, which lets rules that need the whole window decide.
func (e *Engine) Evaluate(now time.Duration, final bool) *Verdict {
	v := &Verdict{
		Policy:    e.p.Name,
		Final:     final,
		Window:    e.p.Window,
		TimeKnown: e.sawTime && !e.noTime,
	}
	elapsed := now - e.p.Warmup
	if e.p.Window > 0 && elapsed > e.p.Window {
		elapsed = e.p.Window
	}
	if elapsed < 0 {
		elapsed = 0
	}
	v.Elapsed = elapsed
	for _, ts := range e.targets {
		v.Targets = append(v.Targets, e.targetResult(ts))
		for _, rs := range ts.rules {
			v.Rules = append(v.Rules, e.evaluateRule(ts, rs, v))
		}
	}
	v.Outcome = Combine(v.Rules)
	return v
}

func (e *Engine) targetResult(ts *targetState) TargetResult {
	var inFlight uint64
	podFlight := map[string]uint64{}
	for _, p := range ts.inflight {
		if !p.warm {
			inFlight++
			podFlight[p.pod]++
		}
	}
	tr := TargetResult{
		Name:     ts.t.Name,
		Resource: ts.t.Resource.String(),
		Stats:    ts.all.stats(inFlight),
		Warmup:   ts.warmup,
		Orphans:  ts.orphans,
		Evicted:  ts.evicted,
		Coverage: ts.coverage,
		Notes:    append([]string(nil), ts.notes...),
	}
	names := make([]string, 0, len(ts.pods))
	for n := range ts.pods {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		tr.Pods = append(tr.Pods, PodStats{Pod: n, Stats: ts.pods[n].stats(podFlight[n])})
	}
	if ts.podOther != nil {
		tr.PodsOther = ts.podOther.requests
		tr.Notes = append(tr.Notes, fmt.Sprintf("%d requests from pods beyond the first %d are counted in the target totals only", ts.podOther.requests, e.limits.MaxPods))
	}
	if ts.evicted > 0 {
		tr.Notes = append(tr.Notes, fmt.Sprintf("%d in-flight requests were dropped when more than %d were open at once; they count as neither success nor failure", ts.evicted, e.limits.MaxInFlight))
	}
	if ts.orphans > 0 {
		tr.Notes = append(tr.Notes, fmt.Sprintf("%d response events belonged to requests that began before the tap and were not counted", ts.orphans))
	}
	if ts.warmup > 0 {
		tr.Notes = append(tr.Notes, fmt.Sprintf("%d requests started during the %s warmup and were not evaluated", ts.warmup, e.p.Warmup))
	}
	return tr
}

const eps = 1e-12

func (e *Engine) evaluateRule(ts *targetState, rs *ruleState, v *Verdict) RuleResult {
	r := rs.r
	need := r.RequiredSamples(e.p)
	res := RuleResult{
		Name:      r.Name,
		Kind:      r.Kind,
		Target:    ts.t.Name,
		Route:     r.Route.String(),
		Threshold: r.Threshold(),
		Samples:   rs.samples,
		Required:  need,
		DryRun:    r.DryRun,
		Line:      r.Line,
	}
	floor := e.p.CoverageFloor
	if floor <= 0 {
		// A zero Policy value means the default, never "no floor".
		floor = DefaultCoverageFloor
	}
	lowCoverage := ts.coverageKnown && ts.coverage+eps < floor
	n := rs.samples
	N := uint64(need)

	switch r.Kind {
	case SuccessRate, ErrorRate:
		succ := n - rs.failures
		iv := Wilson(succ, n)
		if n > 0 {
			rate := float64(succ) / float64(n)
			res.HasValue = true
			res.Observed = rate
			if r.Kind == ErrorRate {
				res.Observed = 1 - rate
				iv = Interval{Low: 1 - iv.High, High: 1 - iv.Low}
			}
		}
		res.Interval = &iv
		// Compare as error rates: failures over max(n, N) is the best the
		// rate can still become once the minimum sample is reached.
		maxErr := r.Max
		if r.Kind == SuccessRate {
			maxErr = 1 - r.Min
		}
		what := "error rate"
		if r.Kind == SuccessRate {
			what = "success rate"
		}
		switch {
		case n == 0:
			res.Outcome, res.Reason = Inconclusive, "no requests matched this rule: zero traffic is never a pass"
		case n < N:
			best := float64(rs.failures) / float64(N)
			if best > maxErr+eps {
				res.Outcome = Fail
				res.Reason = fmt.Sprintf("%d failures in %d requests already exceed what %d requests allow (%s); more traffic cannot fix that", rs.failures, n, N, r.Threshold())
			} else {
				res.Outcome = Inconclusive
				res.Reason = fmt.Sprintf("only %d of the %d requests needed", n, N)
			}
		case float64(rs.failures)/float64(n) > maxErr+eps:
			res.Outcome = Fail
			res.Reason = fmt.Sprintf("%s %s violates %s (%d of %d requests failed)", what, FormatPercent(res.Observed), r.Threshold(), rs.failures, n)
		default:
			res.Outcome = Pass
			res.Reason = fmt.Sprintf("%s %s meets %s (%d of %d requests failed)", what, FormatPercent(res.Observed), r.Threshold(), rs.failures, n)
			if (r.Kind == SuccessRate && iv.Low < r.Min) || (r.Kind == ErrorRate && iv.High > r.Max) {
				res.Reason += "; the threshold is inside the 95% interval, so this is a narrow pass"
			}
		}
	case LatencyQuantile:
		q := r.Quantile
		if d, ok := rs.sketch.Quantile(q); ok {
			res.HasValue = true
			res.Observed = d.Seconds()
		}
		obs := FormatDuration(time.Duration(res.Observed * float64(time.Second)))
		switch {
		case n == 0:
			res.Outcome, res.Reason = Inconclusive, "no completed requests with a "+r.Metric.String()+": zero traffic is never a pass"
		case n < N:
			// With N samples and every missing one fast, the rank ceil(qN)
			// value is still slow when too many are already slow.
			if N-rs.exceed < NearestRank(q, N) {
				res.Outcome = Fail
				res.Reason = fmt.Sprintf("%d of %d requests are already slower than %s, more than %d requests allow for %s", rs.exceed, n, FormatDuration(r.MaxLatency), N, QuantileName(q))
			} else {
				res.Outcome = Inconclusive
				res.Reason = fmt.Sprintf("only %d of the %d samples a %s needs", n, N, QuantileName(q))
			}
		default:
			allowed := n - NearestRank(q, n)
			if rs.exceed > allowed {
				res.Outcome = Fail
				res.Reason = fmt.Sprintf("%s %s ≈ %s > %s: %d of %d requests slower than %s, %d allowed", QuantileName(q), r.Metric, obs, FormatDuration(r.MaxLatency), rs.exceed, n, FormatDuration(r.MaxLatency), allowed)
			} else {
				res.Outcome = Pass
				res.Reason = fmt.Sprintf("%s %s ≈ %s <= %s: %d of %d requests slower than %s, %d allowed", QuantileName(q), r.Metric, obs, FormatDuration(r.MaxLatency), rs.exceed, n, FormatDuration(r.MaxLatency), allowed)
			}
		}
	case ResponseCount:
		res.HasValue = true
		res.Observed = float64(rs.matched)
		max := uint64(r.Max)
		switch {
		case rs.matched > max:
			res.Outcome = Fail
			res.Reason = fmt.Sprintf("%d responses were %s, at most %d allowed", rs.matched, condList(r.Count), max)
		case n < N:
			res.Outcome = Inconclusive
			res.Reason = fmt.Sprintf("%d matching so far, but only %d of the %d requests needed", rs.matched, n, N)
		default:
			res.Outcome = Pass
			res.Reason = fmt.Sprintf("%d of %d responses were %s, at most %d allowed", rs.matched, n, condList(r.Count), max)
		}
	case RequestRate:
		res.Samples = rs.started
		res.Required = 0
		window := e.p.Window.Seconds()
		switch {
		case !v.TimeKnown:
			res.Outcome = Inconclusive
			res.Reason = "the events carry no time (a plain linkerd viz tap recording), so a rate per second is unknown; record with tapgate to keep arrival times"
		case window > 0 && rs.started > 0 && float64(rs.started) >= r.Min*window-eps:
			res.HasValue = true
			res.Observed = float64(rs.started) / v.Elapsed.Seconds()
			if v.Elapsed <= 0 {
				res.Observed = 0
			}
			res.Outcome = Pass
			res.Reason = fmt.Sprintf("%d requests seen, at least %s over the %s window", rs.started, trimFloat(r.Min*window), e.p.Window)
		case !v.Final:
			res.Outcome = Inconclusive
			res.Reason = fmt.Sprintf("%d requests so far; the window is still open", rs.started)
		default:
			el := v.Elapsed.Seconds()
			if el > 0 {
				res.HasValue = true
				res.Observed = float64(rs.started) / el
			}
			res.Outcome = Fail
			res.Reason = fmt.Sprintf("%d requests in %s is %s rps, below %s rps", rs.started, v.Elapsed.Round(time.Millisecond), trimFloat(res.Observed), trimFloat(r.Min))
		}
	}
	if lowCoverage && res.Outcome == Pass {
		res.Outcome = Inconclusive
		res.Reason = fmt.Sprintf("the target was tapped for only %s of the window (floor %s); %s", FormatPercent(ts.coverage), FormatPercent(floor), res.Reason)
	}
	return res
}

func condList(cs []Cond) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, " or ")
}

// maxKeptString bounds each string kept per in-flight request, so hostile
// traffic (megabyte paths or authorities) cannot multiply memory by the
// in-flight limit.
const maxKeptString = 1024

// bounded returns s, or a copy of its first maxKeptString bytes that does
// not keep the original (possibly huge) backing array alive.
func bounded(s string) string {
	if len(s) <= maxKeptString {
		return s
	}
	return strings.Clone(s[:maxKeptString])
}
