package gate

import (
	"math"
)

// twoSample is an anytime-valid test that one Bernoulli stream (the
// canary's failures) exceeds another (the baseline's) by more than d, with
// no need to know the baseline's rate: a "safe test" for a 2x2 table
// (Turner, Ly and Grünwald, "Generic E-variables for exact sequential
// k-sample tests that allow for optional stopping", 2024), here for the
// shifted null p_c <= p_b + d (fail side) or p_c >= p_b + d (pass side).
//
// Samples are taken in blocks holding at least one of each stream; a
// block closes when it has them, which depends only on which stream the
// requests came from, never on their outcomes. For a block of a canary and
// b baseline samples, and an alternative (qc, qb) estimated from the blocks
// before it, the block's e-value is the likelihood ratio of (qc, qb) over
// the point (pc*, pb*) on the null line that makes a*s_c + b*s_b = 0, with
// s the slope of each stream's expected factor. Its logarithm is a sum of
// logarithms of affine functions, hence concave, and zero at that point:
// under every (p_c, p_b) of the null its expectation is at most 1. The
// product over blocks is a nonnegative supermartingale, so by Ville's
// inequality it ever reaches 1/gamma with probability at most gamma. This
// holds even when both rates drift during the window, as long as the null
// holds within each block: a shift that hits both targets alike does not
// fail the canary.
type twoSample struct {
	d     float64 // the null line's offset
	above bool    // evidence against p_c <= p_b + d (fail side); else against p_c >= p_b + d
	// floor is the offset the alternative keeps at least (above) or at
	// most (below): a quarter of the way from the null line to the test's
	// other design point ("bad" for the fail side, "good" for the pass
	// side), so that a few unlucky first samples cannot point it at the
	// null.
	floor float64
	gamma float64
	// logE is the log e-value; reached says it once reached log(1/gamma).
	logE    float64
	reached bool
	// Totals of the blocks closed so far, for the next alternative.
	nc, kc, nb, kb uint64
	blocks         uint64
}

func newTwoSample(d, design float64, above bool, gamma float64) *twoSample {
	return &twoSample{d: d, floor: d + (design-d)/4, above: above, gamma: gamma}
}

// boundary is log(1/gamma).
func (t *twoSample) boundary() float64 { return -math.Log(t.gamma) }

// smoothed is a rate estimate for a plug-in alternative: never 0 or 1, and
// starting near 1%, where the rates a gate cares about are, rather than at
// 1/2 with no samples. Any estimate fixed before the sample it is used for
// keeps the tests valid; a good one makes them quick.
func smoothed(k, n uint64) float64 { return (float64(k) + 0.1) / (float64(n) + 10) }

// alternative is the rates the next block is tested for: the estimates so
// far (a plug-in, as in Robbins and Siegmund's adaptive SPRT), kept on the
// alternative's side of the null line.
func (t *twoSample) alternative() (qc, qb float64, ok bool) {
	qb = smoothed(t.kb, t.nb)
	qc = smoothed(t.kc, t.nc)
	if t.above {
		qc = math.Max(qc, qb+t.floor)
	} else {
		qc = math.Min(qc, qb+t.floor)
	}
	const lim = 1e-9
	if qc <= lim || qc >= 1-lim || qb <= lim || qb >= 1-lim || qb+t.d >= 1 {
		return 0, 0, false
	}
	if t.above && qc <= qb+t.d || !t.above && qc >= qb+t.d {
		return 0, 0, false
	}
	return qc, qb, true
}

// nullPoint returns the point (pc, pb) of the null line pc = pb + d at
// which a*s_c(pc) + b*s_b(pb) = 0, s_x(p) = q_x/p - (1-q_x)/(1-p). The sum
// falls as pb rises and runs from +Inf to -Inf over (0, 1-d), so bisection
// finds it.
func nullPoint(a, b, qc, qb, d float64) (pc, pb float64) {
	slope := func(q, p float64) float64 { return q/p - (1-q)/(1-p) }
	lo, hi := 0.0, 1-d
	for i := 0; i < 200 && hi-lo > 1e-15*math.Max(hi, 1e-300); i++ {
		m := (lo + hi) / 2
		if a*slope(qc, m+d)+b*slope(qb, m) > 0 {
			lo = m
		} else {
			hi = m
		}
	}
	pb = (lo + hi) / 2
	return pb + d, pb
}

// block tests one closed block of a canary samples (kc bad) and b baseline
// samples (kb bad), and reports whether the e-value has just reached its
// boundary.
func (t *twoSample) block(a, kc, b, kb uint64) bool {
	qc, qb, ok := t.alternative()
	t.nc, t.kc, t.nb, t.kb = t.nc+a, t.kc+kc, t.nb+b, t.kb+kb
	t.blocks++
	if !ok {
		return false
	}
	pc, pb := nullPoint(float64(a), float64(b), qc, qb, t.d)
	lr := func(k, n uint64, q, p float64) float64 {
		return float64(k)*math.Log(q/p) + float64(n-k)*(math.Log1p(-q)-math.Log1p(-p))
	}
	t.logE += lr(kc, a, qc, pc) + lr(kb, b, qb, pb)
	if !t.reached && t.logE >= t.boundary()-1e-12 {
		t.reached = true
		return true
	}
	return false
}

// growth estimates the expected log e-value gained per canary sample if
// the rates are pc and pb and the baseline sends r samples per canary
// sample, for "how much more traffic" estimates; <= 0 when the test is
// not moving towards its boundary at those rates.
func (t *twoSample) growth(pc, pb, r float64) float64 {
	qc, qb := pc, pb
	if t.above {
		qc = math.Max(qc, qb+t.floor)
	} else {
		qc = math.Min(qc, qb+t.floor)
	}
	if qc <= 0 || qc >= 1 || qb <= 0 || qb >= 1 || qb+t.d >= 1 {
		return 0
	}
	a, b := 1.0, math.Max(r, 1e-3)
	if r < 1 {
		a, b = 1/math.Max(r, 1e-3), 1
	}
	nc, nb := nullPoint(a, b, qc, qb, t.d)
	e := func(p, q, n float64) float64 { return p*math.Log(q/n) + (1-p)*(math.Log1p(-q)-math.Log1p(-n)) }
	return (a*e(pc, qc, nc) + b*e(pb, qb, nb)) / a
}
