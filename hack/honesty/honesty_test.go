package main

import (
	"context"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// TestOperatingMatchesEnumeration checks the dynamic program against the
// brute force: every sequence of N samples, weighted by its probability,
// replayed through the test. The parameters are lax enough that both
// boundaries and the minimum sample matter at small N.
func TestOperatingMatchesEnumeration(t *testing.T) {
	for _, tc := range []struct {
		budget, tol, conf float64
		minN, n           int
		p                 float64
	}{
		{0.2, 2, 0.9, 5, 14, 0.1},
		{0.2, 2, 0.9, 5, 14, 0.3},
		{0.2, 2, 0.9, 9, 12, 0.05},
		{0.3, 3, 0.8, 1, 13, 0.25},
		{0.6, 2, 0.9, 3, 12, 0.5}, // bad taken from the other end: 1-(1-b)/k
	} {
		o := newOneSample(tc.budget, tc.tol, tc.conf, tc.minN)
		got := o.operating(tc.p, tc.n)
		var pass, fail, inc float64
		failAt := make([]float64, tc.n+1)
		bad := make([]bool, tc.n)
		for mask := 0; mask < 1<<tc.n; mask++ {
			k := 0
			for i := range bad {
				bad[i] = mask&(1<<i) != 0
				if bad[i] {
					k++
				}
			}
			w := math.Pow(tc.p, float64(k)) * math.Pow(1-tc.p, float64(tc.n-k))
			switch out, at := o.replay(bad); out {
			case "pass":
				pass += w
			case "fail":
				fail += w
				failAt[at] += w
			default:
				inc += w
			}
		}
		const eps = 1e-12
		if math.Abs(got.pass-pass) > eps || math.Abs(got.fail-fail) > eps || math.Abs(got.inconclusive-inc) > eps {
			t.Errorf("%+v: DP pass %g fail %g inc %g, enumeration %g %g %g", tc, got.pass, got.fail, got.inconclusive, pass, fail, inc)
		}
		for n := range failAt {
			if math.Abs(got.failAt[n]-failAt[n]) > eps {
				t.Errorf("%+v: P(FAIL at %d) DP %g, enumeration %g", tc, n, got.failAt[n], failAt[n])
			}
		}
		if fail == 0 || pass == 0 {
			t.Errorf("%+v: a boundary is never reached; the case tests nothing", tc)
		}
	}
}

func TestOneSampleDefinition(t *testing.T) {
	o := newOneSample(0.01, 2, 0.99, 100)
	if math.Abs(o.good-0.005) > 1e-15 || math.Abs(o.bad-0.02) > 1e-15 {
		t.Fatalf("hypotheses %g %g, want 0.005 0.02", o.good, o.bad)
	}
	// Four failures in a row fail a fresh test (4 ln 4 > ln 100 > 3 ln 4);
	// 304 clean samples are the shortest pass (304 ln(0.98/0.995) < ln 0.01).
	if !o.fails(4, 4) || o.fails(3, 3) {
		t.Error("quick fail is not 4 bad samples")
	}
	if !o.passes(304, 0) || o.passes(303, 0) {
		t.Error("the shortest pass is not 304 clean samples")
	}
	// The minimum sample: lax parameters pass early, never below minN.
	lax := newOneSample(0.2, 2, 0.9, 50)
	if lax.passes(20, 0) || !lax.passes(50, 0) {
		t.Error("a pass below the minimum sample")
	}
}

func TestEstimateExact(t *testing.T) {
	for _, tc := range []struct {
		n       int
		b       float64
		allowed int
	}{{300, 0.01, 3}, {1000, 0.01, 10}, {3000, 0.01, 30}, {300, 1 - 0.99, 3}, {3000, 1 - 0.99, 30}} {
		if got := allowedBad(tc.n, tc.b); got != tc.allowed {
			t.Errorf("allowedBad(%d, %g) = %d, want %d", tc.n, tc.b, got, tc.allowed)
		}
	}
	// About one time in seven: the README's figure for the old behaviour.
	if p := estimatePass(0.02, 300, 3); p < 0.14 || p > 0.16 {
		t.Errorf("estimate passes a 2x release at 300 requests with probability %g, want about 0.15", p)
	}
	if s := binomCDF(3000, 3000, 0.5); s != 1 {
		t.Errorf("binomCDF(n, n) = %g", s)
	}
}

func TestClopperPearson(t *testing.T) {
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{
		{0, 1000, 0, 0.003682},
		{5, 100, 0.016432, 0.112835},
		{1000, 1000, 0.996318, 1},
	} {
		lo, hi := clopperPearson(tc.k, tc.n)
		if math.Abs(lo-tc.lo) > 1e-5 || math.Abs(hi-tc.hi) > 1e-5 {
			t.Errorf("clopperPearson(%d, %d) = %g, %g, want %g, %g", tc.k, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
	if p := binomTest(50, 1000, 0.05); p < 0.9 {
		t.Errorf("binomTest at the expectation: p = %g", p)
	}
	if p := binomTest(80, 1000, 0.05); p > 1e-4 {
		t.Errorf("binomTest far off: p = %g", p)
	}
}

func TestLatencyModels(t *testing.T) {
	l := lognormalWithQuantile(400*time.Millisecond, 0.99, 0.6)
	if d := l.quantile(0.99); d < 399*time.Millisecond || d > 401*time.Millisecond {
		t.Errorf("p99 %v, want 400ms", d)
	}
	if s := l.over(300 * time.Millisecond); math.Abs(s-0.0324) > 0.0005 {
		t.Errorf("share over 300ms %g, want about 3.24%%", s)
	}
	if s := lognormalWithShare(0.02).over(p99Bound); math.Abs(s-0.02) > 1e-12 {
		t.Errorf("lognormalWithShare(2%%) has %g over the bound", s)
	}
	if s := compareCanary(0.005).over(compareLimit()); math.Abs(s-0.005) > 1e-12 {
		t.Errorf("compareCanary(0.5%%) has %g over the limit", s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	over := 0
	const n = 200000
	for range n {
		if l.draw(r) > 300*time.Millisecond {
			over++
		}
	}
	if got := float64(over) / n; math.Abs(got-l.over(300*time.Millisecond)) > 0.002 {
		t.Errorf("drawn share over 300ms %g, model %g", got, l.over(300*time.Millisecond))
	}
}

// recorder is a sink that keeps copies of the events.
type recorder struct{ evs []gate.Event }

func (r *recorder) Observe(_ int, ev *gate.Event) { r.evs = append(r.evs, *ev) }

func TestSourceEvents(t *testing.T) {
	spec := &trafficSpec{span: 2 * time.Second, body: bodyTime, targets: []targetTraffic{
		{count: 300, pods: 3, fail: failModel{rate: 0.1, w500: 1, wReset: 1}, lat: lognormalWithQuantile(400*time.Millisecond, 0.99, 0.6)},
		{count: 100, pods: 1, lat: healthyLatency},
	}}
	src := newGenerator().generate(spec, rand.New(rand.NewPCG(3, 4)))
	var rec recorder
	if err := src.Run(context.Background(), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.evs) != 3*400 || src.emitted != len(rec.evs) {
		t.Fatalf("%d events (%d emitted), want %d", len(rec.evs), src.emitted, 3*400)
	}
	type key struct {
		pod    netip.AddrPort
		stream uint64
	}
	next := map[key]gate.EventKind{}
	streams := map[uint64]int{}
	overlap, inFlight, maxInFlight := false, 0, 0
	var last time.Duration
	for _, ev := range rec.evs {
		if !ev.HasTime || ev.At < last {
			t.Fatalf("event at %v after %v: not in time order", ev.At, last)
		}
		last = ev.At
		k := key{ev.Destination.Addr, ev.ID.Stream}
		want, seen := next[k]
		switch {
		case !seen && ev.Kind != gate.RequestInit, seen && ev.Kind != want:
			t.Fatalf("stream %v: %v out of order", k, ev.Kind)
		}
		switch ev.Kind {
		case gate.RequestInit:
			streams[ev.ID.Stream]++
			next[k] = gate.ResponseInit
			inFlight++
			maxInFlight = max(maxInFlight, inFlight)
		case gate.ResponseInit:
			next[k] = gate.ResponseEnd
			if ev.SinceRequestInit <= 0 || ev.HTTPStatus == 0 {
				t.Fatalf("responseInit without latency or status: %+v", ev)
			}
		case gate.ResponseEnd:
			next[k] = 0
			inFlight--
		}
	}
	if last > spec.span+10*time.Second {
		t.Errorf("last event at %v", last)
	}
	for _, n := range streams {
		if n > 1 {
			overlap = true
		}
	}
	if !overlap {
		t.Error("no stream id repeats across proxies: correlation by proxy is not exercised")
	}
	if maxInFlight < 2 {
		t.Error("requests never overlap")
	}
	// A reset and a 500 both occur, and count as failures of target 0.
	if got := len(src.completions); got != 300 {
		t.Errorf("%d completions of the judged target, want 300", got)
	}
}

func TestSourceStopsOnCancel(t *testing.T) {
	spec := &trafficSpec{span: time.Minute, body: bodyTime, targets: []targetTraffic{{count: 10000, pods: 1, lat: healthyLatency}}}
	src := newGenerator().generate(spec, rand.New(rand.NewPCG(5, 6)))
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := src.Run(ctx, gate.SinkFunc(func(int, *gate.Event) {
		n++
		if n == 50 {
			cancel()
		}
	}))
	if err == nil || n != 50 {
		t.Fatalf("after cancel: err %v, %d events delivered, want context.Canceled after 50", err, n)
	}
}

func TestReplaceSection(t *testing.T) {
	const head = "# bench\n\nsome text\n"
	got, err := replaceSection(head, "## 6. x\nbody")
	if err != nil {
		t.Fatal(err)
	}
	want := head + "\n" + beginMarker + "\n## 6. x\nbody\n" + endMarker + "\n"
	if got != want {
		t.Fatalf("appended:\n%q\nwant\n%q", got, want)
	}
	again, err := replaceSection(got+"tail\n", "new")
	if err != nil {
		t.Fatal(err)
	}
	if want := head + "\n" + beginMarker + "\nnew\n" + endMarker + "\ntail\n"; again != want {
		t.Fatalf("replaced:\n%q\nwant\n%q", again, want)
	}
	if _, err := replaceSection(head+beginMarker+"\n", "x"); err == nil {
		t.Error("a lone marker was accepted")
	}
	if _, err := replaceSection(got+got, "x"); err == nil {
		t.Error("two sections were accepted")
	}
}

// TestStudySmall runs a few cases through the real runner: the engine
// agrees with the replayed test on every gate, nothing is inconsistent,
// and the same seed gives the same tables whatever the number of workers.
func TestStudySmall(t *testing.T) {
	gates := 12
	if testing.Short() {
		gates = 4
	}
	var cases []*caseSpec
	for _, c := range allCases() {
		switch c.id {
		case "rate/sequential/0.02/300", "rate/estimate/0.005/300", "p99/sequential/0.0324/300", "early/sequential", "cmp-rate/0.02/1000", "cmp-lat/bad/1000":
			cases = append(cases, c)
		}
	}
	if len(cases) != 6 {
		t.Fatalf("found %d of the 6 cases: ids changed?", len(cases))
	}
	render := func(workers int) string {
		st := &study{cases: cases, gates: gates, seed: 42, workers: workers}
		st.run(false)
		res := &results{gates: gates, seed: 42}
		for i, c := range cases {
			s := summarize(c, st.results[i])
			if len(s.errors) > 0 || s.replicaMismatch > 0 || s.stopMismatch > 0 || s.afterMismatch > 0 || s.shortSamples > 0 {
				t.Errorf("%s: errors %v, replica %d, stop %d, after %d, short %d", c.id, s.errors, s.replicaMismatch, s.stopMismatch, s.afterMismatch, s.shortSamples)
			}
			res.sums = append(res.sums, s)
		}
		var b strings.Builder
		res.readmeTable(&b)
		oneSampleTable(&b, res, secRate)
		oneSampleTable(&b, res, secP99)
		earlyTable(&b, res)
		compareTable(&b, res, secCompareRate)
		compareTable(&b, res, secCompareLatency)
		return b.String()
	}
	a, b := render(1), render(3)
	if a != b {
		t.Errorf("the same seed gave different tables:\n%s\n---\n%s", a, b)
	}
	if !strings.Contains(a, "| sequential |") {
		t.Errorf("tables look empty:\n%s", a)
	}
}
