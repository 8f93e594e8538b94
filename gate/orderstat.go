package gate

import (
	"time"

	"gonum.org/v1/gonum/mathext"
)

// Distribution-free confidence intervals for quantiles, from order
// statistics: for any continuous distribution, the number of samples below
// the true q-quantile is Binomial(n, q), so the interval [X(l), X(u)]
// between two order statistics covers it with a probability that only
// depends on n, q, l and u. This is the classical fixed-sample interval
// (e.g. Conover, "Practical Nonparametric Statistics", §3.2), shown next
// to every reported quantile.

// QuantileCILevel is the level of the reported quantile intervals, the
// same as the reported rate intervals.
const QuantileCILevel = 0.95

// binomCDF is P(B <= k) for B ~ Binomial(n, p).
func binomCDF(k, n uint64, p float64) float64 {
	if k >= n {
		return 1
	}
	// P(B <= k) = I_{1-p}(n-k, k+1)
	return mathext.RegIncBeta(float64(n-k), float64(k+1), 1-p)
}

// OrderStatRanks returns the ranks l and u (1-based) with
// P(X(l) <= q-quantile <= X(u)) >= level, each tail at most (1-level)/2.
// l is 0 when even the smallest sample is not a low enough bound, and u is
// n+1 when the largest is not a high enough one: too few samples for that
// side of the interval.
func OrderStatRanks(n uint64, q, level float64) (l, u uint64) {
	if n == 0 {
		return 0, 1
	}
	tail := (1 - level) / 2
	// l: the largest rank with P(B <= l-1) <= tail. The CDF rises with k.
	if binomCDF(0, n, q) > tail {
		l = 0
	} else {
		a, b := uint64(1), n+1 // CDF(a-1) <= tail, CDF(b-1) > tail (b-1 = n: CDF 1)
		for b-a > 1 {
			m := a + (b-a)/2
			if binomCDF(m-1, n, q) <= tail {
				a = m
			} else {
				b = m
			}
		}
		l = a
	}
	// u: the smallest rank with P(B <= u-1) >= 1-tail.
	if binomCDF(n-1, n, q) < 1-tail {
		return l, n + 1
	}
	a, b := uint64(0), n // CDF(a-1) < 1-tail (a=0: CDF(-1)=0), CDF(b-1) >= 1-tail
	for b-a > 1 {
		m := a + (b-a)/2
		if binomCDF(m-1, n, q) >= 1-tail {
			b = m
		} else {
			a = m
		}
	}
	u = b
	if u < 1 {
		u = 1
	}
	return l, u
}

// DurationInterval is a confidence interval of a duration. HighKnown is
// false when the sample is too small to bound it from above; Low is then
// still a valid lower bound (0 when none).
type DurationInterval struct {
	Low, High time.Duration
	HighKnown bool
}

// QuantileCI is the distribution-free QuantileCILevel interval of the
// sketch's q-quantile. The sketch's relative accuracy widens it by its
// stated error. ok is false for an empty sketch.
func (k *Sketch) QuantileCI(q float64) (iv DurationInterval, ok bool) {
	n := k.Count()
	if n == 0 {
		return iv, false
	}
	l, u := OrderStatRanks(n, q, QuantileCILevel)
	if l >= 1 {
		if v, ok := k.ValueAtRank(l); ok {
			iv.Low = time.Duration(float64(v) * (1 - SketchRelativeAccuracy))
		}
	}
	if u <= n {
		if v, ok := k.ValueAtRank(u); ok {
			iv.High = time.Duration(float64(v) * (1 + SketchRelativeAccuracy))
			iv.HighKnown = true
		}
	}
	return iv, true
}
