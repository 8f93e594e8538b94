package gate

import (
	"fmt"
	"math"
	"math/rand"
	"net/netip"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// tapReq is one request as a test writes it; events() turns it into the
// three tap events a proxy would emit.
type tapReq struct {
	pod      string
	ip       string
	stream   uint64
	method   string
	path     string
	status   uint32 // 0: no ResponseInit
	latency  time.Duration
	duration time.Duration
	eos      EOS
	trailers []Header
	headers  []Header
	at       time.Duration
	hasTime  bool
}

func (r tapReq) events() []*Event {
	ip := r.ip
	if ip == "" {
		ip = "10.0.0.1"
	}
	dst := Endpoint{Addr: netip.AddrPortFrom(netip.MustParseAddr(ip), 8080), Labels: map[string]string{"pod": r.pod, "deployment": "web", "namespace": "prod"}}
	src := Endpoint{Addr: netip.MustParseAddrPort("10.9.9.9:41000"), Labels: map[string]string{}}
	base := Event{Direction: Inbound, ID: StreamID{Base: 1, Stream: r.stream}, Source: src, Destination: dst, At: r.at, HasTime: r.hasTime}
	method := r.method
	if method == "" {
		method = "GET"
	}
	path := r.path
	if path == "" {
		path = "/"
	}
	init := base
	init.Kind, init.Method, init.Path, init.Authority, init.Headers = RequestInit, method, path, "web.prod:8080", r.headers
	out := []*Event{&init}
	if r.status != 0 {
		ri := base
		ri.Kind, ri.HTTPStatus, ri.SinceRequestInit = ResponseInit, r.status, r.latency
		out = append(out, &ri)
	}
	end := base
	end.Kind, end.SinceRequestInit, end.EOS, end.Trailers = ResponseEnd, r.duration, r.eos, r.trailers
	if end.SinceRequestInit == 0 {
		end.SinceRequestInit = r.latency + time.Millisecond
	}
	out = append(out, &end)
	return out
}

func testPolicy(rules ...Rule) *Policy {
	return &Policy{
		Name:        "test",
		Window:      time.Minute,
		MinRequests: 10,
		Targets:     []Target{{Name: "web", Resource: ResourceRef{Type: "deployment", Name: "web"}}},
		Rules:       rules,
	}
}

func feed(t *testing.T, e *Engine, reqs []tapReq) {
	t.Helper()
	for _, r := range reqs {
		for _, ev := range r.events() {
			e.Observe(0, ev)
		}
	}
}

func TestClassification(t *testing.T) {
	grpcEOS := func(c uint32) EOS { return EOS{Kind: EOSGRPCStatus, Code: c} }
	tests := []struct {
		name   string
		failOn []string
		ignore []IgnoreRule
		req    tapReq
		failed bool
	}{
		{name: "200 ok", req: tapReq{status: 200}, failed: false},
		{name: "404 is success by default", req: tapReq{status: 404}, failed: false},
		{name: "429 success by default", req: tapReq{status: 429}, failed: false},
		{name: "500 fails", req: tapReq{status: 500}, failed: true},
		{name: "503 fails", req: tapReq{status: 503}, failed: true},
		{name: "grpc ok in eos", req: tapReq{status: 200, eos: grpcEOS(0)}, failed: false},
		{name: "grpc unavailable in eos", req: tapReq{status: 200, eos: grpcEOS(14)}, failed: true},
		{name: "grpc-status trailer", req: tapReq{status: 200, trailers: []Header{{Name: "grpc-status", Value: "13"}}}, failed: true},
		{name: "grpc-status 0 trailer", req: tapReq{status: 200, trailers: []Header{{Name: "grpc-status", Value: "0"}}}, failed: false},
		{name: "reset", req: tapReq{status: 200, eos: EOS{Kind: EOSReset, Code: 2}}, failed: true},
		{name: "no response at all", req: tapReq{status: 0}, failed: true},
		{name: "reset without response", req: tapReq{eos: EOS{Kind: EOSReset, Code: 7}}, failed: true},
		{name: "429 with failOn 429", failOn: []string{"5xx", "429"}, req: tapReq{status: 429}, failed: true},
		{name: "404 with failOn 4xx", failOn: []string{"4xx"}, req: tapReq{status: 404}, failed: true},
		{name: "500 not failure with only 4xx", failOn: []string{"4xx"}, req: tapReq{status: 500}, failed: false},
		{name: "named grpc code only", failOn: []string{"UNAVAILABLE"}, req: tapReq{status: 200, eos: grpcEOS(14)}, failed: true},
		{name: "other grpc code not in list", failOn: []string{"UNAVAILABLE"}, req: tapReq{status: 200, eos: grpcEOS(5)}, failed: false},
		{name: "reset not failure when narrowed", failOn: []string{"5xx"}, req: tapReq{status: 200, eos: EOS{Kind: EOSReset, Code: 2}}, failed: false},
		{name: "ignored 503 on maintenance path", req: tapReq{status: 503, path: "/maintenance/ping"},
			ignore: []IgnoreRule{{When: []Cond{{Kind: CondStatus, Code: 503}}, Route: &Route{Path: regexp.MustCompile("^/maintenance")}}}, failed: false},
		{name: "503 elsewhere still fails", req: tapReq{status: 503, path: "/api"},
			ignore: []IgnoreRule{{When: []Cond{{Kind: CondStatus, Code: 503}}, Route: &Route{Path: regexp.MustCompile("^/maintenance")}}}, failed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy(Rule{Name: "sr", Kind: SuccessRate, Min: 0.5, MinRequests: 1, MinExplicit: true})
			for _, s := range tt.failOn {
				c, err := ParseCond(s)
				if err != nil {
					t.Fatal(err)
				}
				p.Classification.FailOn = append(p.Classification.FailOn, c)
			}
			p.Classification.Ignore = tt.ignore
			e, err := NewEngine(p, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			tt.req.pod = "web-1"
			feed(t, e, []tapReq{tt.req})
			v := e.Evaluate(time.Minute, true)
			st := v.Targets[0].Stats
			if st.Requests != 1 {
				t.Fatalf("requests = %d, want 1", st.Requests)
			}
			if got := st.Failures == 1; got != tt.failed {
				t.Fatalf("failed = %v, want %v", got, tt.failed)
			}
		})
	}
}

func TestParseCond(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  bool
	}{
		{"5xx", "5xx", false}, {"4XX", "4xx", false}, {"429", "429", false},
		{"grpc-error", "grpc-error", false}, {"UNAVAILABLE", "UNAVAILABLE", false},
		{"unavailable", "UNAVAILABLE", false}, {"grpc:14", "UNAVAILABLE", false},
		{"deadline-exceeded", "DEADLINE_EXCEEDED", false}, {"reset", "reset", false},
		{"no-response", "no-response", false},
		{"OK", "", true}, {"600", "", true}, {"6xx", "", true}, {"teapot", "", true}, {"", "", true},
	}
	for _, tt := range tests {
		c, err := ParseCond(tt.in)
		if (err != nil) != tt.err {
			t.Fatalf("ParseCond(%q) err = %v, want error %v", tt.in, err, tt.err)
		}
		if err == nil && c.String() != tt.want {
			t.Fatalf("ParseCond(%q) = %s, want %s", tt.in, c, tt.want)
		}
	}
}

// Stream ids are unique per proxy only: the same id on two pods is two
// requests, and must not be merged or cross-matched.
func TestCorrelationCollidingStreamIDs(t *testing.T) {
	p := testPolicy(Rule{Name: "sr", Kind: SuccessRate, Min: 0.9})
	e, _ := NewEngine(p, Limits{})
	a := tapReq{pod: "web-a", ip: "10.0.0.1", stream: 7, status: 200, latency: 10 * time.Millisecond}.events()
	b := tapReq{pod: "web-b", ip: "10.0.0.2", stream: 7, status: 503, latency: 90 * time.Millisecond}.events()
	// Interleave: both inits, then the responses crosswise.
	for _, ev := range []*Event{a[0], b[0], b[1], a[1], a[2], b[2]} {
		e.Observe(0, ev)
	}
	v := e.Evaluate(time.Minute, true)
	tr := v.Targets[0]
	if tr.Requests != 2 || tr.Failures != 1 || tr.Orphans != 0 {
		t.Fatalf("requests=%d failures=%d orphans=%d, want 2 1 0", tr.Requests, tr.Failures, tr.Orphans)
	}
	if len(tr.Pods) != 2 || tr.Pods[0].Pod != "web-a" || tr.Pods[0].Failures != 0 || tr.Pods[1].Failures != 1 {
		t.Fatalf("per-pod attribution wrong: %+v", tr.Pods)
	}
	if tr.Pods[1].Latency.P50 < 89*time.Millisecond {
		t.Fatalf("web-b latency %v: status/latency crossed between pods", tr.Pods[1].Latency.P50)
	}
}

func TestOrphansAndInFlight(t *testing.T) {
	e, _ := NewEngine(testPolicy(Rule{Name: "sr", Kind: SuccessRate, Min: 0.9}), Limits{})
	evs := tapReq{pod: "p", stream: 1, status: 200}.events()
	e.Observe(0, evs[1]) // response without request: began before the tap
	e.Observe(0, evs[2])
	open := tapReq{pod: "p", stream: 2, status: 200}.events()
	e.Observe(0, open[0])
	e.Observe(0, open[1])
	v := e.Evaluate(time.Minute, true)
	tr := v.Targets[0]
	if tr.Orphans != 2 || tr.Requests != 0 || tr.InFlight != 1 {
		t.Fatalf("orphans=%d requests=%d inflight=%d", tr.Orphans, tr.Requests, tr.InFlight)
	}
	if v.Outcome == Pass {
		t.Fatal("in-flight requests must never make a pass")
	}
}

func TestInFlightBounded(t *testing.T) {
	e, _ := NewEngine(testPolicy(Rule{Name: "sr", Kind: SuccessRate, Min: 0.9}), Limits{MaxInFlight: 100})
	for i := 0; i < 1000; i++ {
		e.Observe(0, tapReq{pod: "p", stream: uint64(i)}.events()[0])
	}
	v := e.Evaluate(time.Minute, true)
	if v.Targets[0].InFlight != 100 || v.Targets[0].Evicted != 900 {
		t.Fatalf("inflight=%d evicted=%d", v.Targets[0].InFlight, v.Targets[0].Evicted)
	}
}

func TestPodCardinalityBounded(t *testing.T) {
	e, _ := NewEngine(testPolicy(Rule{Name: "sr", Kind: SuccessRate, Min: 0.9}), Limits{MaxPods: 3})
	for i := 0; i < 10; i++ {
		feed(t, e, []tapReq{{pod: fmt.Sprintf("p%d", i), stream: uint64(i), status: 200}})
	}
	v := e.Evaluate(time.Minute, true)
	if len(v.Targets[0].Pods) != 3 || v.Targets[0].PodsOther != 7 || v.Targets[0].Requests != 10 {
		t.Fatalf("pods=%d other=%d requests=%d", len(v.Targets[0].Pods), v.Targets[0].PodsOther, v.Targets[0].Requests)
	}
}

func exactNearestRank(vals []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), vals...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[NearestRank(p, uint64(len(s)))-1]
}

func TestQuantilesWithinOnePercentOfNearestRank(t *testing.T) {
	for _, n := range []int{1, 2, 7, 100, 101, 1000, 12345} {
		rng := rand.New(rand.NewSource(int64(n)))
		var vals []time.Duration
		sk := NewSketch()
		for i := 0; i < n; i++ {
			d := time.Duration(math.Exp(rng.NormFloat64()*0.8+3) * float64(time.Millisecond))
			vals = append(vals, d)
			sk.Add(d)
		}
		for _, p := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
			want := exactNearestRank(vals, p)
			got, ok := sk.Quantile(p)
			if !ok {
				t.Fatal("empty sketch")
			}
			if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
				t.Errorf("n=%d p=%v: got %v, exact %v (rel err %.4f)", n, p, got, want, rel)
			}
		}
	}
}

func TestNearestRank(t *testing.T) {
	tests := []struct {
		p    float64
		n    uint64
		want uint64
	}{{0.5, 1, 1}, {0.5, 2, 1}, {0.5, 3, 2}, {0.99, 100, 99}, {0.99, 101, 100}, {0.999, 1000, 999}, {1, 5, 5}, {0, 5, 1}}
	for _, tt := range tests {
		if got := NearestRank(tt.p, tt.n); got != tt.want {
			t.Errorf("NearestRank(%v,%d)=%d want %d", tt.p, tt.n, got, tt.want)
		}
	}
}

func TestWilson(t *testing.T) {
	// Reference values computed from the closed form.
	tests := []struct {
		k, n      uint64
		low, high float64
	}{
		{0, 10, 0, 0.2775},
		{10, 10, 0.7225, 1},
		{95, 100, 0.8882, 0.9785},
		{995, 1000, 0.9884, 0.9979},
	}
	for _, tt := range tests {
		iv := Wilson(tt.k, tt.n)
		if math.Abs(iv.Low-tt.low) > 5e-4 || math.Abs(iv.High-tt.high) > 5e-4 {
			t.Errorf("Wilson(%d,%d) = [%.4f, %.4f], want [%.4f, %.4f]", tt.k, tt.n, iv.Low, iv.High, tt.low, tt.high)
		}
	}
}

func manyReqs(n, failEvery int, lat func(i int) time.Duration) []tapReq {
	var out []tapReq
	for i := 0; i < n; i++ {
		st := uint32(200)
		if failEvery > 0 && i%failEvery == 0 {
			st = 500
		}
		out = append(out, tapReq{pod: fmt.Sprintf("p%d", i%3), ip: fmt.Sprintf("10.0.0.%d", 1+i%3), stream: uint64(i), status: st, latency: lat(i)})
	}
	return out
}

// TestEstimateRules pins `decision: estimate` to the point-estimate
// verdicts tapgate gave before sequential tests, unchanged.
func TestEstimateRules(t *testing.T) {
	ms := func(i int) time.Duration { return time.Duration(i%100+1) * time.Millisecond }
	tests := []struct {
		name    string
		rule    Rule
		reqs    []tapReq
		want    Outcome
		samples uint64
	}{
		{"success rate pass", Rule{Kind: SuccessRate, Min: 0.99}, manyReqs(1000, 200, ms), Pass, 1000},
		{"success rate fail", Rule{Kind: SuccessRate, Min: 0.995}, manyReqs(1000, 100, ms), Fail, 1000},
		{"success rate boundary passes", Rule{Kind: SuccessRate, Min: 0.99}, manyReqs(1000, 100, ms), Pass, 1000},
		{"error rate pass", Rule{Kind: ErrorRate, Max: 0.01}, manyReqs(1000, 100, ms), Pass, 1000},
		{"error rate fail", Rule{Kind: ErrorRate, Max: 0.001}, manyReqs(1000, 100, ms), Fail, 1000},
		{"too few requests", Rule{Kind: SuccessRate, Min: 0.9, MinRequests: 50}, manyReqs(20, 0, ms), Inconclusive, 20},
		{"too few but already failed", Rule{Kind: SuccessRate, Min: 0.99, MinRequests: 100}, manyReqs(20, 2, ms), Fail, 20},
		{"p99 pass", Rule{Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: 100 * time.Millisecond}, manyReqs(1000, 0, ms), Pass, 1000},
		{"p99 fail", Rule{Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: 98 * time.Millisecond}, manyReqs(1000, 0, ms), Fail, 1000},
		{"p99 exact boundary", Rule{Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: 99 * time.Millisecond}, manyReqs(1000, 0, ms), Pass, 1000},
		{"p99 on 50 requests is inconclusive", Rule{Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: time.Second}, manyReqs(50, 0, ms), Inconclusive, 50},
		{"p99 with explicit lower minimum", Rule{Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: time.Second, MinRequests: 20, MinExplicit: true}, manyReqs(50, 0, ms), Pass, 50},
		{"p99.9 needs 1000", Rule{Kind: LatencyQuantile, Quantile: 0.999, MaxLatency: time.Second}, manyReqs(999, 0, ms), Inconclusive, 999},
		{"duration metric", Rule{Kind: LatencyQuantile, Quantile: 0.5, Metric: MetricDuration, MaxLatency: 50 * time.Millisecond}, manyReqs(100, 0, func(int) time.Duration { return 40 * time.Millisecond }), Pass, 100},
		{"duration metric fail", Rule{Kind: LatencyQuantile, Quantile: 0.5, Metric: MetricDuration, MaxLatency: 40 * time.Millisecond}, manyReqs(100, 0, func(int) time.Duration { return 40 * time.Millisecond }), Fail, 100},
		{"count pass", Rule{Kind: ResponseCount, Max: 10, Count: []Cond{{Kind: CondStatus, Code: 500}}}, manyReqs(1000, 100, ms), Pass, 1000},
		{"count fail", Rule{Kind: ResponseCount, Max: 9, Count: []Cond{{Kind: CondStatus, Code: 500}}}, manyReqs(1000, 100, ms), Fail, 1000},
		{"route filter", Rule{Kind: SuccessRate, Min: 1, Route: &Route{Path: regexp.MustCompile("^/ok")}},
			append(manyReqs(100, 2, ms), tapReq{pod: "p", stream: 9999, path: "/ok/1", status: 200}), Inconclusive, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rule.Name = "r"
			p := testPolicy(tt.rule)
			p.MinRequests = 10
			p.Decision = Estimate
			e, err := NewEngine(p, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			feed(t, e, tt.reqs)
			v := e.Evaluate(time.Minute, true)
			r := v.Rules[0]
			if r.Outcome != tt.want || r.Samples != tt.samples {
				t.Fatalf("outcome=%s samples=%d, want %s %d (reason: %s)", r.Outcome, r.Samples, tt.want, tt.samples, r.Reason)
			}
			if v.Outcome != tt.want {
				t.Fatalf("verdict %s, want %s", v.Outcome, tt.want)
			}
		})
	}
}

func TestRequestRate(t *testing.T) {
	mk := func(n int, hasTime bool) []tapReq {
		var out []tapReq
		for i := 0; i < n; i++ {
			out = append(out, tapReq{pod: "p", stream: uint64(i), status: 200, at: time.Duration(i) * 100 * time.Millisecond, hasTime: hasTime})
		}
		return out
	}
	tests := []struct {
		name  string
		n     int
		time  bool
		final bool
		want  Outcome
	}{
		{"enough", 600, true, true, Pass},
		{"enough before the end", 600, true, false, Pass},
		{"too few at the end", 300, true, true, Fail},
		{"too few while open", 300, true, false, Inconclusive},
		{"zero traffic", 0, true, true, Fail},
		{"no timestamps", 600, false, true, Inconclusive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := NewEngine(testPolicy(Rule{Name: "rps", Kind: RequestRate, Min: 10}), Limits{})
			feed(t, e, mk(tt.n, tt.time))
			if tt.n == 0 {
				// Something with a time must arrive for the time to be known.
				e.sawTime = true
			}
			v := e.Evaluate(time.Minute, tt.final)
			if v.Rules[0].Outcome != tt.want {
				t.Fatalf("outcome %s want %s (%s)", v.Rules[0].Outcome, tt.want, v.Rules[0].Reason)
			}
		})
	}
}

func TestWarmupAndWindow(t *testing.T) {
	p := testPolicy(Rule{Name: "sr", Kind: SuccessRate, Min: 0.5, MinRequests: 1, MinExplicit: true})
	p.Warmup = 10 * time.Second
	p.Window = 20 * time.Second
	e, _ := NewEngine(p, Limits{})
	feed(t, e, []tapReq{
		{pod: "p", stream: 1, status: 500, at: 5 * time.Second, hasTime: true},  // warmup
		{pod: "p", stream: 2, status: 200, at: 15 * time.Second, hasTime: true}, // window
		{pod: "p", stream: 3, status: 500, at: 31 * time.Second, hasTime: true}, // after
	})
	v := e.Evaluate(40*time.Second, true)
	tr := v.Targets[0]
	if tr.Requests != 1 || tr.Failures != 0 || tr.Warmup != 1 || v.Elapsed != 20*time.Second || !v.TimeKnown {
		t.Fatalf("requests=%d failures=%d warmup=%d elapsed=%v timeKnown=%v", tr.Requests, tr.Failures, tr.Warmup, v.Elapsed, v.TimeKnown)
	}
}

func TestLowCoverageNeverPasses(t *testing.T) {
	p := testPolicy(Rule{Name: "sr", Kind: SuccessRate, Min: 0.9})
	p.CoverageFloor = 0.9
	e, _ := NewEngine(p, Limits{})
	feed(t, e, manyReqs(500, 0, func(int) time.Duration { return time.Millisecond }))
	e.SetCoverage(0, 0.5)
	if v := e.Evaluate(time.Minute, true); v.Outcome != Inconclusive {
		t.Fatalf("verdict %s with 50%% coverage, want inconclusive", v.Outcome)
	}
	e.SetCoverage(0, 0.95)
	if v := e.Evaluate(time.Minute, true); v.Outcome != Pass {
		t.Fatalf("verdict %s with 95%% coverage, want pass", v.Outcome)
	}
}

// Property: whatever the rules, a gate that saw no requests never passes.
func TestNoPolicyPassesOnZeroRequests(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	kinds := []RuleKind{SuccessRate, ErrorRate, LatencyQuantile, RequestRate, ResponseCount}
	for i := 0; i < 2000; i++ {
		var rules []Rule
		for j := 0; j < 1+rng.Intn(4); j++ {
			r := Rule{Name: fmt.Sprintf("r%d", j), Kind: kinds[rng.Intn(len(kinds))], DryRun: rng.Intn(4) == 0}
			r.Min = rng.Float64()
			r.Max = math.Floor(rng.Float64() * 10)
			r.Quantile = 0.01 + rng.Float64()*0.98
			r.MaxLatency = time.Duration(rng.Intn(1000)) * time.Millisecond
			r.Count = []Cond{{Kind: CondStatusClass, Code: 5}}
			if rng.Intn(2) == 0 {
				r.MinRequests, r.MinExplicit = rng.Intn(3), true
			}
			rules = append(rules, r)
		}
		p := testPolicy(rules...)
		p.MinRequests = rng.Intn(3)
		p.Warmup = time.Duration(rng.Intn(3)) * time.Second
		e, err := NewEngine(p, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		// Events that never complete a request: inits only, orphans.
		if rng.Intn(2) == 0 {
			evs := tapReq{pod: "p", stream: 1, status: 200, at: time.Second, hasTime: true}.events()
			e.Observe(0, evs[0])
			e.Observe(0, tapReq{pod: "p", stream: 2, status: 200}.events()[2])
		}
		for _, final := range []bool{false, true} {
			v := e.Evaluate(time.Duration(rng.Intn(120))*time.Second, final)
			if v.Outcome == Pass {
				t.Fatalf("policy %+v passed on zero requests", rules)
			}
		}
	}
}

func TestCombine(t *testing.T) {
	tests := []struct {
		in   []RuleResult
		want Outcome
	}{
		{nil, Inconclusive},
		{[]RuleResult{{Outcome: Pass}}, Pass},
		{[]RuleResult{{Outcome: Pass}, {Outcome: Inconclusive}}, Inconclusive},
		{[]RuleResult{{Outcome: Inconclusive}, {Outcome: Fail}}, Fail},
		{[]RuleResult{{Outcome: Pass}, {Outcome: Fail, DryRun: true}}, Pass},
		{[]RuleResult{{Outcome: Pass, DryRun: true}}, Inconclusive},
	}
	for i, tt := range tests {
		if got := Combine(tt.in); got != tt.want {
			t.Errorf("%d: Combine = %s, want %s", i, got, tt.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		o, on Outcome
		want  int
	}{
		{Pass, Inconclusive, 0}, {Fail, Pass, 1}, {Inconclusive, Inconclusive, 3},
		{Inconclusive, Fail, 1}, {Inconclusive, Pass, 0}, {Inconclusive, 0, 3},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.o, tt.on); got != tt.want {
			t.Errorf("ExitCode(%s,%s)=%d want %d", tt.o, tt.on, got, tt.want)
		}
	}
}

func BenchmarkIngest(b *testing.B) {
	p := testPolicy(
		Rule{Name: "sr", Kind: SuccessRate, Min: 0.99},
		Rule{Name: "p99", Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: 300 * time.Millisecond},
		Rule{Name: "checkout", Kind: ErrorRate, Max: 0.01, Route: &Route{Method: "POST", Path: regexp.MustCompile(`^/api/v[0-9]+/checkout`)}},
	)
	e, _ := NewEngine(p, Limits{})
	var evs []*Event
	for i := 0; i < 4096; i++ {
		st := uint32(200)
		if i%97 == 0 {
			st = 503
		}
		evs = append(evs, tapReq{pod: fmt.Sprintf("p%d", i%5), ip: fmt.Sprintf("10.0.0.%d", i%5), stream: uint64(i), status: st, latency: time.Duration(i%300) * time.Millisecond, path: "/api/v1/items"}.events()...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Observe(0, evs[i%len(evs)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestHugeStringsBounded: requests in flight with megabyte paths and
// authorities must not keep megabytes each, while route matching and
// ignore rules still see the full path.
func TestHugeStringsBounded(t *testing.T) {
	p := testPolicy(Rule{Name: "tail", Kind: ErrorRate, Max: 0.5, Route: &Route{Path: regexp.MustCompile("END$")}})
	p.Classification.Ignore = []IgnoreRule{{When: []Cond{{Kind: CondStatus, Code: 503}}, Route: &Route{Path: regexp.MustCompile("IGNORED$")}}}
	e, _ := NewEngine(p, Limits{})
	const n, size = 200, 1 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		// A distinct string per request, as a decoder would allocate.
		path := "/" + strings.Repeat("x", size) + fmt.Sprint(i) + "END"
		e.Observe(0, tapReq{pod: "p", stream: uint64(i), path: path}.events()[0])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 16<<20 {
		t.Errorf("heap grew %d MiB for %d in-flight requests with 1 MiB paths", grown>>20, n)
	}
	// Route and ignore matching used the full paths.
	feed(t, e, []tapReq{{pod: "p", stream: 10000, path: "/" + strings.Repeat("y", size) + "IGNORED", status: 503}})
	feed(t, e, []tapReq{{pod: "p", stream: 10001, path: "/" + strings.Repeat("y", size) + "END", status: 200}})
	v := e.Evaluate(time.Minute, true)
	if v.Targets[0].Failures != 0 || v.Targets[0].Requests != 2 || v.Rules[0].Samples != 1 {
		t.Errorf("failures=%d requests=%d tail samples=%d", v.Targets[0].Failures, v.Targets[0].Requests, v.Rules[0].Samples)
	}
}
