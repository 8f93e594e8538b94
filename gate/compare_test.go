package gate

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"
	"time"
)

func comparePolicy(rules ...Rule) *Policy {
	return &Policy{
		Name:        "cmp",
		Window:      time.Minute,
		MinRequests: 100,
		Targets: []Target{
			{Name: "stable", Resource: ResourceRef{Type: "deployment", Name: "web"}},
			{Name: "canary", Resource: ResourceRef{Type: "deployment", Name: "web-canary"}},
		},
		Rules: rules,
	}
}

// traffic is one target's simulated requests.
type traffic struct {
	n        int
	failRate float64
	latency  func(rng *rand.Rand) time.Duration
}

// runCompare interleaves both targets' requests (baseline first in each
// round) and returns the compare rule's result on the canary.
func runCompare(t *testing.T, r Rule, stable, canary traffic, seed int64) (RuleResult, *Engine) {
	t.Helper()
	r.Name = "cmp"
	e, err := NewEngine(comparePolicy(r), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	lat := func(tr traffic) time.Duration {
		if tr.latency == nil {
			return 10 * time.Millisecond
		}
		return tr.latency(rng)
	}
	emit := func(target int, tr traffic, i int) {
		st := uint32(200)
		if rng.Float64() < tr.failRate {
			st = 503
		}
		ip := fmt.Sprintf("10.0.%d.1", target)
		for _, ev := range (tapReq{pod: fmt.Sprintf("pod-%d", target), ip: ip, stream: uint64(i), status: st, latency: lat(tr)}).events() {
			e.Observe(target, ev)
		}
	}
	rounds := max(stable.n, canary.n)
	for i := 0; i < rounds; i++ {
		if i < stable.n {
			emit(0, stable, i)
		}
		if i < canary.n {
			emit(1, canary, i)
		}
	}
	v := e.Evaluate(time.Minute, true)
	for _, res := range v.Rules {
		if res.Name == "cmp" {
			return res, e
		}
	}
	t.Fatalf("no compare result in %+v", v.Rules)
	return RuleResult{}, nil
}

func lognormal(median time.Duration, sigma float64) func(*rand.Rand) time.Duration {
	return func(rng *rand.Rand) time.Duration {
		return time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
	}
}

func TestCompareRules(t *testing.T) {
	errRule := Rule{Kind: CompareErrorRate, Target: "canary", Baseline: "stable", MaxIncrease: 0.01}
	latRule := Rule{Kind: CompareLatency, Target: "canary", Baseline: "stable", Quantile: 0.99, MaxRatio: 1.2}
	fast, slow := lognormal(30*time.Millisecond, 0.5), lognormal(60*time.Millisecond, 0.5)
	tests := []struct {
		name           string
		rule           Rule
		stable, canary traffic
		want           Outcome
		decided        bool
		reasonIn       string
	}{
		{"broken canary fails", errRule, traffic{n: 2000, failRate: 0.002}, traffic{n: 2000, failRate: 0.09}, Fail, true, "no later traffic can undo it"},
		{"canary like its baseline passes", errRule, traffic{n: 6000, failRate: 0.002}, traffic{n: 3000, failRate: 0.002}, Pass, false, "passed at 99% confidence"},
		{"baseline without traffic", errRule, traffic{n: 0}, traffic{n: 500}, Inconclusive, false, "nothing to compare with"},
		{"canary without traffic", errRule, traffic{n: 500}, traffic{n: 0}, Inconclusive, false, "zero traffic"},
		{"baseline below its minimum", errRule, traffic{n: 50}, traffic{n: 500, failRate: 0.002}, Inconclusive, false, "undecided"},
		{"latency baseline below its minimum", latRule, traffic{n: 50, latency: fast}, traffic{n: 500, latency: fast}, Inconclusive, false, "starts once the baseline"},
		{"twice as slow fails", latRule, traffic{n: 3000, latency: fast}, traffic{n: 3000, latency: slow}, Fail, true, "p99"},
		{"as fast passes", latRule, traffic{n: 6000, latency: fast}, traffic{n: 6000, latency: fast}, Pass, false, "passed"},
		{"estimate: point comparison", Rule{Kind: CompareErrorRate, Target: "canary", Baseline: "stable", MaxIncrease: 0.01, Decision: Estimate},
			traffic{n: 1000, failRate: 0.002}, traffic{n: 1000, failRate: 0.05}, Fail, false, "over the bound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := runCompare(t, tt.rule, tt.stable, tt.canary, 1)
			if r.Outcome != tt.want || r.Decided != tt.decided {
				t.Fatalf("outcome %s decided=%v, want %s decided=%v (reason: %s)", r.Outcome, r.Decided, tt.want, tt.decided, r.Reason)
			}
			if !strings.Contains(r.Reason, tt.reasonIn) {
				t.Errorf("reason %q does not say %q", r.Reason, tt.reasonIn)
			}
			if r.Compare == nil || r.Target != "canary" {
				t.Fatalf("compare figures missing: %+v", r)
			}
		})
	}
}

// TestCompareEveryTarget: a compare rule without a target judges every
// target but its baseline, and a decided FAIL is reported for the
// compared target.
func TestCompareEveryTarget(t *testing.T) {
	p := comparePolicy(Rule{Name: "cmp", Kind: CompareErrorRate, Baseline: "stable", MaxIncrease: 0.01})
	e, err := NewEngine(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	v := e.Evaluate(0, false)
	if len(v.Rules) != 1 || v.Rules[0].Target != "canary" {
		t.Fatalf("rules = %+v", v.Rules)
	}
	_, e = runCompare(t, Rule{Kind: CompareErrorRate, Baseline: "stable", MaxIncrease: 0.01}, traffic{n: 500, failRate: 0.001}, traffic{n: 500, failRate: 0.2}, 3)
	if d := e.Decided(); d == nil || d.Target != "canary" || d.Rule != "cmp" {
		t.Fatalf("Decided() = %+v", d)
	}
}

func TestCompareUnknownBaseline(t *testing.T) {
	if _, err := NewEngine(comparePolicy(Rule{Name: "x", Kind: CompareErrorRate, Baseline: "nope", MaxIncrease: 0.01}), Limits{}); err == nil {
		t.Fatal("unknown baseline accepted")
	}
}

// TestTwoSampleBlockIsAnEValue checks the two-sample test's validity
// exactly: for blocks of a canary and b baseline samples and alternatives
// on either side, the block's e-value has expectation at most 1 under
// every point of its null (p_c <= p_b + d for the fail side, p_c >= p_b + d
// for the pass side), by summing over every outcome.
func TestTwoSampleBlockIsAnEValue(t *testing.T) {
	binom := func(n, k uint64) float64 {
		r := 1.0
		for i := uint64(0); i < k; i++ {
			r = r * float64(n-i) / float64(i+1)
		}
		return r
	}
	rng := rand.New(rand.NewSource(11))
	worst := 0.0
	for trial := 0; trial < 300; trial++ {
		a, b := uint64(1+rng.Intn(4)), uint64(1+rng.Intn(6))
		d := []float64{0.005, 0.02, 0.1}[rng.Intn(3)]
		above := rng.Intn(2) == 0
		ts := newTwoSample(d, d*4, above, 0.01)
		if !above {
			ts = newTwoSample(d, d/4, false, 0.01)
		}
		// Some history to make the alternative interesting.
		ts.nc, ts.kc, ts.nb, ts.kb = uint64(rng.Intn(200)), 0, uint64(rng.Intn(400)), 0
		ts.kc, ts.kb = uint64(rng.Intn(int(ts.nc)/4+1)), uint64(rng.Intn(int(ts.nb)/8+1))
		qc, qb, ok := ts.alternative()
		if !ok {
			continue
		}
		pcs, pbs := nullPoint(float64(a), float64(b), qc, qb, d)
		lr := func(k, n uint64, q, p float64) float64 {
			return math.Exp(float64(k)*math.Log(q/p) + float64(n-k)*(math.Log1p(-q)-math.Log1p(-p)))
		}
		for i := 0; i < 50; i++ {
			pb := rng.Float64()
			pc := rng.Float64()
			if above && pc > pb+d || !above && pc < pb+d {
				continue // not in the null
			}
			var e float64
			for kc := uint64(0); kc <= a; kc++ {
				for kb := uint64(0); kb <= b; kb++ {
					p := binom(a, kc) * math.Pow(pc, float64(kc)) * math.Pow(1-pc, float64(a-kc)) *
						binom(b, kb) * math.Pow(pb, float64(kb)) * math.Pow(1-pb, float64(b-kb))
					e += p * lr(kc, a, qc, pcs) * lr(kb, b, qb, pbs)
				}
			}
			worst = math.Max(worst, e)
			if e > 1+1e-9 {
				t.Fatalf("a=%d b=%d d=%v above=%v q=(%v,%v) null point (%v,%v): E = %v at (pc %v, pb %v)", a, b, d, above, qc, qb, pcs, pbs, e, pc, pb)
			}
		}
	}
	t.Logf("largest expectation under the null: %.12f", worst)
}

// BenchmarkIngestCompare is BenchmarkIngest (run them together) with a
// canary and a baseline target and both compare rules on top of the
// canary's own: what the two-sample blocks and the baseline's bounds cost
// per event.
func BenchmarkIngestCompare(b *testing.B) {
	p := comparePolicy(
		Rule{Name: "sr", Kind: SuccessRate, Min: 0.99},
		Rule{Name: "p99", Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: 300 * time.Millisecond},
		Rule{Name: "cmp-errors", Kind: CompareErrorRate, Baseline: "stable", MaxIncrease: 0.01},
		Rule{Name: "cmp-p99", Kind: CompareLatency, Baseline: "stable", Quantile: 0.99, MaxRatio: 1.2},
	)
	e, _ := NewEngine(p, Limits{})
	type tev struct {
		target int
		ev     *Event
	}
	var evs []tev
	for i := 0; i < 4096; i++ {
		st := uint32(200)
		if i%97 == 0 {
			st = 503
		}
		target := 0
		if i%4 == 3 {
			target = 1 // a canary with a quarter of the traffic
		}
		for _, ev := range (tapReq{pod: fmt.Sprintf("p%d", i%5), ip: fmt.Sprintf("10.0.%d.%d", target, i%5), stream: uint64(i), status: st, latency: time.Duration(i%300) * time.Millisecond, path: "/api/v1/items"}).events() {
			evs = append(evs, tev{target, ev})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := evs[i%len(evs)]
		e.Observe(x.target, x.ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
