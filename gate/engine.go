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
	// failed is the first FAIL of a counted rule that no later traffic can
	// undo; a run stops on it (see Decided).
	failed *DecidedFail
	// stopped is set by Stop: the run ends before the window closes.
	stopped    bool
	stopReason string
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
	// proxy holds the proxies' own counts, when a cross-check ran.
	proxy *ProxyCounts
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
			if r.Kind.IsCompare() && r.Baseline == ts.t.Name {
				// A rule for every target compares all but the baseline.
				continue
			}
			rs := newRuleState(r, p, 1<<uint(len(ts.rules)))
			ts.rules = append(ts.rules, rs)
			if cmp, ok := rs.dec.(comparer); ok {
				if err := e.attachBaseline(cmp, rs, ts); err != nil {
					return nil, err
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("rule %q names unknown target %q", r.Name, r.Target)
		}
	}
	return e, nil
}

// attachBaseline gives a compare rule its state on the baseline target,
// which feeds the comparison with the baseline's samples on the same route.
func (e *Engine) attachBaseline(cmp comparer, rs *ruleState, ts *targetState) error {
	r := rs.r
	for _, bs := range e.targets {
		if bs.t.Name != r.Baseline {
			continue
		}
		if len(bs.rules) >= 64 {
			return fmt.Errorf("target %q has more than 64 rules", bs.t.Name)
		}
		cmp.attach(rs, ts.t.Name)
		b := &ruleState{r: r, bit: 1 << uint(len(bs.rules)), dec: cmp, baselineOf: cmp}
		bs.rules = append(bs.rules, b)
		return nil
	}
	return fmt.Errorf("rule %q compares with unknown baseline target %q", r.Name, r.Baseline)
}

// DecidedFail is a FAIL reached during the window that no later traffic
// can undo.
type DecidedFail struct {
	Rule, Target string
	// At is the time into the window, when known.
	At      time.Duration
	AtKnown bool
}

// Decided returns the first undoable FAIL of a counted (not dry-run) rule,
// or nil. It is cheap: a run checks it after every event.
func (e *Engine) Decided() *DecidedFail { return e.failed }

// Stop marks the run as stopped before the window closed, for reason; the
// next Evaluate reports it and judges requestRate rules on the time tapped.
func (e *Engine) Stop(reason string) { e.stopped, e.stopReason = true, reason }

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
	at := ev.At - e.p.Warmup
	for _, rs := range ts.rules {
		if p.routes&rs.bit == 0 {
			continue
		}
		if rs.observe(&r, at, ev.HasTime) && !rs.r.DryRun && e.failed == nil {
			name := ts.t.Name
			if rs.baselineOf != nil {
				name = rs.baselineOf.compared()
			}
			e.failed = &DecidedFail{Rule: rs.r.Name, Target: name, At: at, AtKnown: ev.HasTime}
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
	v.StoppedEarly, v.StopReason = e.stopped, e.stopReason
	checks := make([]*CrossCheck, len(e.targets))
	for i, ts := range e.targets {
		tr := e.targetResult(ts)
		checks[i] = e.crossCheck(ts)
		tr.CrossCheck = checks[i]
		v.Targets = append(v.Targets, tr)
	}
	for i, ts := range e.targets {
		for _, rs := range ts.rules {
			if rs.baselineOf == nil {
				res := e.evaluateRule(ts, rs, v)
				e.applyCrossCheck(checks[i], &res)
				v.Rules = append(v.Rules, res)
			}
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
		Stats:    ts.all.stats(inFlight, true),
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
		tr.Pods = append(tr.Pods, PodStats{Pod: n, Stats: ts.pods[n].stats(podFlight[n], false)})
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
