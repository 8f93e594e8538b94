package main

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// The independent check. Nothing here calls the engine: the one-sample
// test is rebuilt from its stated definition (DESIGN §3, gate/sprt.go's
// doc comment) and its operating characteristic computed exactly.

// oneSample is Wald's SPRT of a one-sample rule with budget b (the share
// of bad samples allowed), tolerance k and confidence c: good = b/k,
// bad = min(b*k, 1-(1-b)/k), alpha = beta = 1-c; a bad sample moves the log
// likelihood ratio by ln(bad/good), a good one by ln((1-bad)/(1-good)); the
// test FAILs the first time the ratio reaches ln(1/beta) and PASSes when,
// at the end, it is at most ln(alpha) on at least minN samples.
type oneSample struct {
	budget, tol, conf float64
	minN              int

	good, bad       float64
	stepBad, stepOK float64
	failAt, passAt  float64
}

func newOneSample(budget, tol, conf float64, minN int) oneSample {
	o := oneSample{budget: budget, tol: tol, conf: conf, minN: minN}
	o.good = budget / tol
	o.bad = math.Min(budget*tol, 1-(1-budget)/tol)
	o.stepBad = math.Log(o.bad / o.good)
	o.stepOK = math.Log((1 - o.bad) / (1 - o.good))
	risk := 1 - conf
	o.failAt = math.Log(1 / risk)
	o.passAt = math.Log(risk)
	return o
}

// llr is the log likelihood ratio after n samples of which k were bad,
// in closed form (the engine sums steps; the two agree to ~1e-12).
func (o *oneSample) llr(n, k int) float64 {
	return float64(k)*o.stepBad + float64(n-k)*o.stepOK
}

// boundaryTol is how close to a boundary counts as on it. A reachable
// state this close (nearBoundary) is the only place where rounding could
// make the engine and this check disagree.
const (
	boundaryTol  = 1e-9
	nearBoundary = 1e-6
)

func (o *oneSample) fails(n, k int) bool { return o.llr(n, k) >= o.failAt-boundaryTol }

func (o *oneSample) passes(n, k int) bool {
	return n >= o.minN && o.llr(n, k) <= o.passAt+boundaryTol
}

// oc is the operating characteristic at true bad-sample rate p and N
// samples.
type oc struct {
	pass, fail, inconclusive float64
	// failAt[n] is the probability that the FAIL is reached at exactly n
	// samples.
	failAt []float64
	// near is the probability of ever standing within nearBoundary of a
	// boundary (where rounding might matter).
	near float64
}

// operating computes the test's outcome probabilities exactly, by dynamic
// programming over (samples, bad samples): the fail boundary absorbs, and
// the pass condition is read at N.
func (o *oneSample) operating(p float64, N int) oc {
	res := oc{failAt: make([]float64, N+1)}
	cur := []float64{1}
	next := make([]float64, 0, 64)
	for n := 1; n <= N; n++ {
		next = next[:0]
		for range len(cur) + 1 {
			next = append(next, 0)
		}
		for k, m := range cur {
			next[k] += m * (1 - p)
			next[k+1] += m * p
		}
		// The ratio rises with k: the failing states are the top ones.
		top := len(next)
		for k := len(next) - 1; k >= 0; k-- {
			if math.Abs(o.llr(n, k)-o.failAt) < nearBoundary {
				res.near += next[k]
			}
			if !o.fails(n, k) {
				break
			}
			res.failAt[n] += next[k]
			top = k
		}
		next = next[:top]
		for len(next) > 0 && next[len(next)-1] == 0 {
			next = next[:len(next)-1]
		}
		cur, next = next, cur
	}
	for k, m := range cur {
		if math.Abs(o.llr(N, k)-o.passAt) < nearBoundary {
			res.near += m
		}
		if o.passes(N, k) {
			res.pass += m
		} else {
			res.inconclusive += m
		}
	}
	for _, f := range res.failAt {
		res.fail += f
	}
	return res
}

// medianDecision is the median number of samples at which a decided run
// decided: the FAIL's sample count, or N for a PASS. The lower median,
// as the simulation's.
func (r *oc) medianDecision(N int) float64 {
	total := r.fail + r.pass
	if total <= 0 {
		return math.NaN()
	}
	cum := 0.0
	for n, f := range r.failAt {
		cum += f
		if n == N {
			cum += r.pass
		}
		if cum >= total/2-1e-15 {
			return float64(n)
		}
	}
	return float64(N)
}

// replay runs the test on one sequence of samples (true = bad) and
// returns its outcome and, for a FAIL, the sample count it failed at.
func (o *oneSample) replay(bad []bool) (outcome string, at int) {
	k := 0
	for i, b := range bad {
		if b {
			k++
		}
		if o.fails(i+1, k) {
			return "fail", i + 1
		}
	}
	if o.passes(len(bad), k) {
		return "pass", len(bad)
	}
	return "inconclusive", len(bad)
}

// binomPMF is P(K = k) for K ~ Binomial(n, p).
func binomPMF(k, n int, p float64) float64 {
	if p <= 0 {
		if k == 0 {
			return 1
		}
		return 0
	}
	if p >= 1 {
		if k == n {
			return 1
		}
		return 0
	}
	ln, _ := math.Lgamma(float64(n + 1))
	lk, _ := math.Lgamma(float64(k + 1))
	lnk, _ := math.Lgamma(float64(n - k + 1))
	return math.Exp(ln - lk - lnk + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

// binomCDF is P(K <= k).
func binomCDF(k, n int, p float64) float64 {
	if k < 0 {
		return 0
	}
	if k >= n {
		return 1
	}
	s := 0.0
	for j := 0; j <= k; j++ {
		s += binomPMF(j, n, p)
	}
	return math.Min(1, s)
}

// estimatePass is the exact probability that the point-estimate decision
// passes N samples at true rate p: it fails when more than allowed of
// them are bad.
func estimatePass(p float64, N, allowed int) float64 { return binomCDF(allowed, N, p) }

// allowedBad is how many bad samples in N a point estimate tolerates: at
// most the budget's share, i.e. floor(N*b) (with the 1e-9 slack that
// keeps 300*1% = 3.0000000000000004 at 3).
func allowedBad(N int, budget float64) int {
	return int(math.Floor(float64(N)*budget + 1e-9))
}

// clopperPearson is the two-sided 95% Clopper-Pearson interval of k
// events in n trials.
func clopperPearson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	if k > 0 {
		lo = mathext.InvRegIncBeta(float64(k), float64(n-k+1), 0.025)
	}
	hi = 1
	if k < n {
		hi = mathext.InvRegIncBeta(float64(k+1), float64(n-k), 0.975)
	}
	return lo, hi
}

// binomTest is the two-sided p-value (doubling the smaller tail) of k
// events in n trials at probability p.
func binomTest(k, n int, p float64) float64 {
	switch {
	case p <= 0:
		if k == 0 {
			return 1
		}
		return 0
	case p >= 1:
		if k == n {
			return 1
		}
		return 0
	}
	lower := 1.0 // P(K <= k)
	if k < n {
		lower = mathext.RegIncBeta(float64(n-k), float64(k+1), 1-p)
	}
	upper := 1.0 // P(K >= k)
	if k > 0 {
		upper = mathext.RegIncBeta(float64(k), float64(n-k+1), p)
	}
	return math.Min(1, 2*math.Min(lower, upper))
}

func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

func normQuantile(u float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*u) }
