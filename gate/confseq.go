package gate

import (
	"math"
)

// Anytime-valid confidence sequences for a Bernoulli rate, from Robbins'
// beta-binomial mixture martingale (Robbins 1970; Howard et al. 2021,
// "Time-uniform, nonparametric, nonasymptotic confidence sequences").
//
// For a true rate p, M_n(p) = B(a+k, b+n-k) / B(a, b) / (p^k (1-p)^(n-k))
// is a nonnegative martingale with M_0 = 1, so by Ville's inequality
// M_n(p) ever reaches 1/gamma with probability at most gamma. The set of p
// with M_n(p) < 1/gamma therefore covers the true rate at every n at once
// with probability at least 1-gamma. The compare rules use it for their
// baseline, whose rate is only known from its own sample.

// The mixture's prior is Jeffreys' Beta(1/2, 1/2).
const mixA, mixB = 0.5, 0.5

func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// RateBounds returns the anytime-valid 1-gamma confidence interval of a
// Bernoulli rate after k bad samples in n.
func RateBounds(k, n uint64, gamma float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	if k > n {
		k = n
	}
	kf, nf := float64(k), float64(n)
	// ln M_n(p) < ln(1/gamma)  <=>  loglik(p) > t
	t := lbeta(mixA+kf, mixB+nf-kf) - lbeta(mixA, mixB) + math.Log(gamma)
	loglik := func(p float64) float64 {
		var l float64
		if k > 0 {
			l += kf * math.Log(p)
		}
		if k < n {
			l += (nf - kf) * math.Log1p(-p)
		}
		return l
	}
	inside := func(p float64) bool { return loglik(p) > t }
	// loglik is concave with its maximum at the observed rate, which is
	// always inside.
	phat := kf / nf
	lo, hi = 0, 1
	if k > 0 {
		lo = outerEdge(phat, 0, inside)
	}
	if k < n {
		hi = outerEdge(phat, 1, inside)
	}
	return lo, hi
}

// outerEdge bisects between a point inside a set and one outside it and
// returns the last point found outside: bounds err on the wide side.
func outerEdge(in, out float64, inside func(float64) bool) float64 {
	for i := 0; i < 100 && math.Abs(out-in) > 1e-15; i++ {
		m := (in + out) / 2
		if inside(m) {
			in = m
		} else {
			out = m
		}
	}
	return out
}

// lastInside bisects between an integer inside a set and one outside it
// and returns the last integer inside.
func lastInside(in, out uint64, inside func(uint64) bool) uint64 {
	for in != out && in+1 != out && out+1 != in {
		m := in/2 + out/2 + (in%2+out%2)/2
		if inside(m) {
			in = m
		} else {
			out = m
		}
	}
	return in
}

// CountBounds returns the range [lo, hi] that the number of successes of n
// Bernoulli(p) trials stays within at every n at once with probability at
// least 1-gamma (the same mixture, at a known p). Order statistics turn it
// into a confidence sequence for a quantile (QuantileBounds).
func CountBounds(n uint64, p, gamma float64) (lo, hi uint64) {
	if n == 0 {
		return 0, 0
	}
	nf := float64(n)
	lp, lq := math.Log(p), math.Log1p(-p)
	base := lbeta(mixA, mixB)
	limit := -math.Log(gamma)
	// f is convex in x, so its sublevel set is an interval around its
	// minimum near n*p.
	f := func(x uint64) float64 {
		xf := float64(x)
		return lbeta(mixA+xf, mixB+nf-xf) - base - xf*lp - (nf-xf)*lq
	}
	m := uint64(math.Round(nf * p))
	if m > n {
		m = n
	}
	// The nearest integers to n*p are inside; take the better one.
	if m > 0 && f(m-1) < f(m) {
		m--
	} else if m < n && f(m+1) < f(m) {
		m++
	}
	inside := func(x uint64) bool { return f(x) < limit }
	if !inside(m) {
		return m, m
	}
	lo, hi = 0, n
	if !inside(0) {
		lo = lastInside(m, 0, inside)
	}
	if !inside(n) {
		hi = lastInside(m, n, inside)
	}
	return lo, hi
}

// QuantileRanks returns the ranks of order statistics that bound the
// q-quantile at every n at once with probability at least 1-gamma on each
// side: X(lo) <= quantile <= X(hi). lo is 0 when no order statistic bounds
// it from below yet, hi is n+1 when none bounds it from above. (Howard and
// Ramdas 2022, "Sequential estimation of quantiles": the number of samples
// at or below the quantile is Binomial(n, q).)
func QuantileRanks(n uint64, q, gamma float64) (lo, hi uint64) {
	if n == 0 {
		return 0, 1
	}
	clo, chi := CountBounds(n, q, gamma)
	return clo, chi + 1
}
