package gate

import (
	"math"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// The default test of a 1% budget: good 0.5%, bad 2%, alpha = beta = 1%.
// Its steps are ln(4) = 1.3863 per failure and ln(0.98/0.995) = -0.015190
// per success; it fails at ln(100) = 4.6052 and passes at -4.6052. So it
// fails on the 4th failure in a row (3 give 4.159), passes after 304
// successes (303 give -4.6025), and one failure costs 91 more successes
// (1 failure + 395 successes = 396 requests).
func TestSPRTBoundaries(t *testing.T) {
	good, bad := Hypotheses(0.01, 2)
	if good != 0.005 || bad != 0.02 {
		t.Fatalf("Hypotheses(1%%, 2) = %v, %v", good, bad)
	}
	fresh := func() SPRT { return NewSPRT(good, bad, 0.01, 0.01) }
	s := fresh()
	if got := s.CleanPass(); got != 304 {
		t.Errorf("CleanPass = %d, want 304", got)
	}
	if got := s.QuickFail(); got != 4 {
		t.Errorf("QuickFail = %d, want 4", got)
	}
	if got := s.BadCost(); math.Abs(got-91.26) > 0.01 {
		t.Errorf("BadCost = %.3f, want 91.26", got)
	}
	type step struct {
		ok, bad int // successes, then failures
	}
	tests := []struct {
		name        string
		steps       []step
		wantFail    bool
		wantFailN   uint64
		wantPassing bool
	}{
		{"3 failures do not fail", []step{{0, 3}}, false, 0, false},
		{"the 4th failure in a row fails", []step{{0, 4}}, true, 4, false},
		{"a FAIL is latched", []step{{0, 4}, {10000, 0}}, true, 4, false},
		{"303 successes are not enough", []step{{303, 0}}, false, 0, false},
		{"304 successes pass", []step{{304, 0}}, false, 0, true},
		{"1 failure then 394 successes", []step{{0, 1}, {394, 0}}, false, 0, false},
		{"1 failure then 395 successes pass", []step{{0, 1}, {395, 0}}, false, 0, true},
		{"3 failures early are forgiven", []step{{0, 3}, {997, 0}}, false, 0, true},
		{"a pass is not latched", []step{{1000, 0}, {0, 14}}, false, 0, false},
		{"failures after a pass still fail", []step{{1000, 0}, {0, 15}}, true, 1015, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fresh()
			for _, st := range tt.steps {
				for i := 0; i < st.ok; i++ {
					s.Add(false)
				}
				for i := 0; i < st.bad; i++ {
					s.Add(true)
				}
			}
			if s.Failed != tt.wantFail || s.FailN != tt.wantFailN || s.Passing() != tt.wantPassing {
				t.Fatalf("failed=%v at %d, passing=%v (LLR %.4f); want failed=%v at %d, passing=%v",
					s.Failed, s.FailN, s.Passing(), s.LLR, tt.wantFail, tt.wantFailN, tt.wantPassing)
			}
		})
	}
}

func TestSPRTAddNMatchesAdd(t *testing.T) {
	a, b := NewSPRT(0.005, 0.02, 0.01, 0.01), NewSPRT(0.005, 0.02, 0.01, 0.01)
	for i := 0; i < 500; i++ {
		a.Add(i%100 == 0)
	}
	b.AddN(500, 5)
	if math.Abs(a.LLR-b.LLR) > 1e-9 || a.N != b.N || a.K != b.K {
		t.Fatalf("Add: %v/%d/%d, AddN: %v/%d/%d", a.LLR, a.N, a.K, b.LLR, b.N, b.K)
	}
}

func TestHypotheses(t *testing.T) {
	tests := []struct{ budget, k, good, bad float64 }{
		{0.01, 2, 0.005, 0.02},
		{0.001, 2, 0.0005, 0.002},
		{0.01, 1.5, 0.01 / 1.5, 0.015},
		{0.5, 2, 0.25, 0.75}, // p50: symmetric, not 100%
		{0.4, 2, 0.2, 0.7},   // 0.8 would be further from the budget than 0.7
	}
	for _, tt := range tests {
		g, b := Hypotheses(tt.budget, tt.k)
		if math.Abs(g-tt.good) > 1e-12 || math.Abs(b-tt.bad) > 1e-12 {
			t.Errorf("Hypotheses(%v, %v) = %v, %v; want %v, %v", tt.budget, tt.k, g, b, tt.good, tt.bad)
		}
	}
}

// TestExpectedExit checks the Brownian approximation against its limits:
// deterministic walks and the zero-drift formula.
func TestExpectedExit(t *testing.T) {
	if got := expectedExit(0, -4.6, 4.6, -0.0152, 0); math.Abs(got-4.6/0.0152) > 1e-9 {
		t.Errorf("deterministic down: %v", got)
	}
	if got := expectedExit(0, -4, 4, 0, 2); math.Abs(got-8) > 1e-9 {
		t.Errorf("zero drift: %v, want 16/2", got)
	}
	// Tiny drift is continuous with zero drift.
	if got := expectedExit(0, -4, 4, 1e-9, 2); math.Abs(got-8) > 1e-3 {
		t.Errorf("near-zero drift: %v", got)
	}
	// Strong drift: about distance/drift, never NaN or negative.
	for _, mu := range []float64{-50, -1, 1, 50} {
		got := expectedExit(0, -4, 4, mu, 0.5)
		if math.IsNaN(got) || got < 0 || math.Abs(got-4/math.Abs(mu)) > 4/math.Abs(mu)*0.5+0.1 {
			t.Errorf("drift %v: %v", mu, got)
		}
	}
}

// seqPolicy is testPolicy with the default sequential decision and a 1%
// error budget.
func seqPolicy(rules ...Rule) *Policy {
	p := testPolicy(rules...)
	p.MinRequests = 100
	return p
}

// outcomeSeq feeds requests whose failures are given by fail(i) and
// returns the rule's result.
func outcomeSeq(t *testing.T, r Rule, n int, fail func(i int) bool, lat func(i int) time.Duration) RuleResult {
	t.Helper()
	r.Name = "r"
	e, err := NewEngine(seqPolicy(r), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		st := uint32(200)
		if fail != nil && fail(i) {
			st = 500
		}
		l := 10 * time.Millisecond
		if lat != nil {
			l = lat(i)
		}
		for _, ev := range (tapReq{pod: "p", stream: uint64(i), status: st, latency: l}).events() {
			e.Observe(0, ev)
		}
	}
	return e.Evaluate(time.Minute, true).Rules[0]
}

func TestSequentialRules(t *testing.T) {
	firstK := func(k int) func(int) bool { return func(i int) bool { return i < k } }
	everyK := func(k int) func(int) bool { return func(i int) bool { return i%k == 0 } }
	slowFirst := func(k int) func(int) time.Duration {
		return func(i int) time.Duration {
			if i < k {
				return time.Second
			}
			return 10 * time.Millisecond
		}
	}
	errRate := Rule{Kind: ErrorRate, Max: 0.01}
	tests := []struct {
		name     string
		rule     Rule
		n        int
		fail     func(int) bool
		lat      func(int) time.Duration
		want     Outcome
		decided  bool
		failN    uint64
		reasonIn string
	}{
		{"zero traffic", errRate, 0, nil, nil, Inconclusive, false, 0, "zero traffic is never a pass"},
		{"303 clean requests are not enough", errRate, 303, nil, nil, Inconclusive, false, 0, "about 1 more"},
		{"304 clean requests pass", errRate, 304, nil, nil, Pass, false, 0, "passed at 99% confidence"},
		{"4 failures first fail at the 4th", errRate, 1000, firstK(4), nil, Fail, true, 4, "after 4 requests, 4 failed"},
		{"3 failures first, then enough successes", errRate, 1000, firstK(3), nil, Pass, false, 0, "3 of 1000 failed"},
		{"1% at the budget stays undecided", errRate, 1000, everyK(100), nil, Inconclusive, false, 0, "would likely decide it"},
		{"success rate is the same test", Rule{Kind: SuccessRate, Min: 0.99}, 304, nil, nil, Pass, false, 0, "success 98% or less passes at most 1%"},
		{"9% failures fail fast", errRate, 1000, everyK(11), nil, Fail, true, 0, "no later traffic can undo it"},
		{"p99: 304 fast samples pass", Rule{Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: 300 * time.Millisecond}, 304, nil, nil, Pass, false, 0, "0 of 304 slower than 300ms"},
		{"p99: 4 slow samples first fail", Rule{Kind: LatencyQuantile, Quantile: 0.99, MaxLatency: 300 * time.Millisecond}, 500, nil, slowFirst(4), Fail, true, 4, "slower than 300ms"},
		{"minimum sample still applies to a pass", Rule{Kind: ErrorRate, Max: 0.1, MinRequests: 100}, 50, nil, nil, Inconclusive, false, 0, "never passes on fewer than 100"},
		{"a wide budget passes at its minimum", Rule{Kind: ErrorRate, Max: 0.1, MinRequests: 100}, 100, nil, nil, Pass, false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := outcomeSeq(t, tt.rule, tt.n, tt.fail, tt.lat)
			if r.Outcome != tt.want || r.Decided != tt.decided || r.Decision != Sequential {
				t.Fatalf("outcome %s decided=%v decision=%s; want %s decided=%v (reason: %s)", r.Outcome, r.Decided, r.Decision, tt.want, tt.decided, r.Reason)
			}
			if r.Test == nil {
				t.Fatal("no test figures")
			}
			if tt.failN != 0 && r.Test.DecidedAfter != tt.failN {
				t.Errorf("decided after %d, want %d", r.Test.DecidedAfter, tt.failN)
			}
			if !strings.Contains(r.Reason, tt.reasonIn) {
				t.Errorf("reason %q does not say %q", r.Reason, tt.reasonIn)
			}
			if r.Outcome == Inconclusive && tt.n > 0 && r.Test.MoreSamples < 1 {
				t.Errorf("undecided without an estimate of more samples: %d", r.Test.MoreSamples)
			}
		})
	}
}

// TestDecidedFailStopsEngine: the first decided FAIL of a counted rule is
// reported once, with its rule and time; a dry-run rule's is not.
func TestDecidedFail(t *testing.T) {
	p := seqPolicy(Rule{Name: "dry", Kind: ErrorRate, Max: 0.01, DryRun: true}, Rule{Name: "real", Kind: ErrorRate, Max: 0.02})
	p.Warmup = time.Second
	e, err := NewEngine(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		for _, ev := range (tapReq{pod: "p", stream: uint64(i), status: 500, latency: time.Millisecond, at: time.Second + time.Duration(i)*100*time.Millisecond, hasTime: true}).events() {
			e.Observe(0, ev)
			if d := e.Decided(); d != nil && d.Rule == "dry" {
				t.Fatal("a dry-run rule stopped the gate")
			}
		}
	}
	d := e.Decided()
	if d == nil || d.Rule != "real" || d.Target != "web" || !d.AtKnown {
		t.Fatalf("Decided() = %+v", d)
	}
	// 4 failures in a row fail a 2% budget too (ln 4 steps, 4.6 to go):
	// the 4th request, 300ms into the window.
	if d.At != 300*time.Millisecond {
		t.Errorf("decided at %s, want 300ms into the window", d.At)
	}
}

// TestRateBoundsCoverage checks the mixture confidence sequence by
// simulation: paths of Bernoulli samples leave it at some time with a share
// well within gamma.
func TestRateBoundsCoverage(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	const paths, steps, gamma = 400, 3000, 0.05
	for _, p := range []float64{0.005, 0.05, 0.5} {
		escaped := 0
		for i := 0; i < paths; i++ {
			var k uint64
			for n := uint64(1); n <= steps; n++ {
				if rng.Float64() < p {
					k++
				}
				if n%50 != 0 && n > 100 {
					continue // look often, not every step: keeps the test quick
				}
				lo, hi := RateBounds(k, n, gamma)
				if p < lo || p > hi {
					escaped++
					break
				}
			}
		}
		if share := float64(escaped) / paths; share > gamma {
			t.Errorf("p=%v: %d of %d paths left the %v confidence sequence", p, escaped, paths, 1-gamma)
		}
	}
	lo, hi := RateBounds(0, 0, 0.01)
	if lo != 0 || hi != 1 {
		t.Errorf("no samples: [%v, %v]", lo, hi)
	}
	// Wider than a fixed-sample interval (Clopper-Pearson 99.5%: about
	// 0.1%-1.5%): the price of holding at every n at once.
	lo, hi = RateBounds(5, 1000, 0.005)
	if !(lo > 0 && lo < 0.005 && hi > 0.005 && hi < 0.025) {
		t.Errorf("5 of 1000: [%v, %v]", lo, hi)
	}
}

func TestCountBoundsContainMean(t *testing.T) {
	for _, n := range []uint64{1, 10, 100, 1000, 100000} {
		for _, p := range []float64{0.01, 0.5, 0.99} {
			lo, hi := CountBounds(n, p, 0.005)
			m := float64(n) * p
			if float64(lo) > m+1 || float64(hi) < m-1 || hi > n {
				t.Errorf("CountBounds(%d, %v) = [%d, %d], mean %v", n, p, lo, hi, m)
			}
		}
	}
	// Too few samples for a p99 to be bounded from above.
	if _, hi := QuantileRanks(50, 0.99, 0.005); hi != 51 {
		t.Errorf("p99 of 50: upper rank %d, want unbounded (51)", hi)
	}
}

func TestOrderStatRanks(t *testing.T) {
	// Exact ranks from the binomial distribution (checked with Python's
	// math.comb): P(B <= l-1) <= 2.5% < P(B <= l), and u the smallest rank
	// with P(B <= u-1) >= 97.5%.
	tests := []struct {
		n    uint64
		q    float64
		l, u uint64
	}{
		{100, 0.5, 40, 61},
		{20, 0.5, 6, 15},
		{100, 0.99, 97, 101},
		{300, 0.99, 293, 301},
		{1000, 0.99, 983, 997},
		{10, 0.99, 9, 11},
		{1000, 0.999, 997, 1001},
	}
	for _, tt := range tests {
		l, u := OrderStatRanks(tt.n, tt.q, 0.95)
		if l != tt.l || u != tt.u {
			t.Errorf("OrderStatRanks(%d, %v) = %d, %d; want %d, %d", tt.n, tt.q, l, u, tt.l, tt.u)
		}
	}
}

func TestQuantileCI(t *testing.T) {
	s := NewSketch()
	for i := 1; i <= 1000; i++ {
		s.Add(time.Duration(i) * time.Millisecond)
	}
	iv, ok := s.QuantileCI(0.99)
	if !ok || !iv.HighKnown {
		t.Fatalf("QuantileCI = %+v, %v", iv, ok)
	}
	// Ranks 983 and 997, widened by the sketch's 0.5%.
	if iv.Low < 975*time.Millisecond || iv.Low > 984*time.Millisecond || iv.High < 996*time.Millisecond || iv.High > 1003*time.Millisecond {
		t.Errorf("p99 CI of 1..1000ms = %s..%s", iv.Low, iv.High)
	}
	small := NewSketch()
	for i := 0; i < 50; i++ {
		small.Add(time.Millisecond)
	}
	if iv, _ := small.QuantileCI(0.99); iv.HighKnown {
		t.Errorf("50 samples bound a p99 from above: %+v", iv)
	}
}
