package gate

import (
	"math"
)

// SPRT is Wald's sequential probability ratio test on a stream of
// Bernoulli samples ("bad": a failed request, or one slower than a latency
// bound), between the rates Good and Bad (Good < Bad).
//
// Its boundaries are Ville's rather than Wald's approximations: the test
// FAILs once the likelihood ratio of Bad over Good reaches 1/Beta, and
// stands at PASS while the ratio is at most Alpha. For a true rate at or
// below Good the ratio is a nonnegative supermartingale starting at 1, so
// by Ville's inequality it ever reaches 1/Beta with probability at most
// Beta; symmetrically, at or above Bad the inverse ratio reaches 1/Alpha
// with probability at most Alpha. Both bounds hold however often the test is
// looked at and whenever the looking stops, which is what lets a live gate
// show its verdict continuously and stop on a FAIL.
//
// A FAIL is latched: once reached, no later sample undoes it. A PASS is
// read at the moment of asking.
type SPRT struct {
	Good, Bad   float64
	Alpha, Beta float64

	// incBad and incOK are the log-likelihood-ratio steps of a bad and a
	// good sample; failAt and passAt the log boundaries.
	incBad, incOK  float64
	failAt, passAt float64

	// LLR is the log likelihood ratio; frozen once Failed.
	LLR float64
	// N and K count the samples and the bad ones.
	N, K uint64
	// Failed is latched when LLR first reaches the fail boundary, after
	// FailN samples of which FailK were bad.
	Failed       bool
	FailN, FailK uint64
}

// NewSPRT returns a test between good and bad with false-pass bound alpha
// and false-fail bound beta.
func NewSPRT(good, bad, alpha, beta float64) SPRT {
	s := SPRT{Alpha: alpha, Beta: beta, failAt: -math.Log(beta), passAt: math.Log(alpha)}
	s.SetHypotheses(good, bad)
	return s
}

// SetHypotheses changes the rates the next samples are tested against; the
// ratio accumulated so far is kept. The compare rules use it to follow
// their baseline (compare.go). good must be below bad for a sample to count.
func (s *SPRT) SetHypotheses(good, bad float64) {
	s.Good, s.Bad = good, bad
	if !(good > 0 && bad > good && bad < 1) {
		// No test between these rates: samples count, the ratio does not move.
		s.incBad, s.incOK = 0, 0
		return
	}
	s.incBad = math.Log(bad / good)
	s.incOK = math.Log1p(-bad) - math.Log1p(-good)
}

// Active reports whether samples currently move the ratio.
func (s *SPRT) Active() bool { return s.incBad != 0 }

// Add records one sample and reports whether the test has just failed.
func (s *SPRT) Add(bad bool) bool {
	s.N++
	if bad {
		s.K++
	}
	if s.Failed {
		return false
	}
	if bad {
		s.LLR += s.incBad
	} else {
		s.LLR += s.incOK
	}
	return s.check()
}

// AddN records n samples of which k were bad at once. Looking only at the
// end of a batch is looking less often, which the bounds allow.
func (s *SPRT) AddN(n, k uint64) bool {
	s.N += n
	s.K += k
	if s.Failed {
		return false
	}
	s.LLR += float64(k)*s.incBad + float64(n-k)*s.incOK
	return s.check()
}

func (s *SPRT) check() bool {
	if s.LLR >= s.failAt-1e-12 {
		s.Failed, s.FailN, s.FailK = true, s.N, s.K
		return true
	}
	return false
}

// Passing reports whether the evidence stands at the pass boundary now.
func (s *SPRT) Passing() bool { return !s.Failed && s.LLR <= s.passAt+1e-12 }

// FailBoundary and PassBoundary are the log-likelihood-ratio boundaries.
func (s *SPRT) FailBoundary() float64 { return s.failAt }

// PassBoundary is the log-likelihood-ratio boundary at or below which the
// test passes.
func (s *SPRT) PassBoundary() float64 { return s.passAt }

// drift returns the expected step and its variance at true rate p.
func (s *SPRT) drift(p float64) (mu, v float64) {
	d := s.incBad - s.incOK
	return s.incOK + p*d, p * (1 - p) * d * d
}

// More estimates how many more samples the test needs to reach a boundary
// if the true rate is p, from where it stands now (a Brownian
// approximation of the log-likelihood walk, Wald's ASN without overshoot).
// It is 0 once failed and +Inf when the test cannot move.
func (s *SPRT) More(p float64) float64 {
	if s.Failed {
		return 0
	}
	if !s.Active() {
		return math.Inf(1)
	}
	mu, v := s.drift(p)
	return expectedExit(s.LLR, s.passAt, s.failAt, mu, v)
}

// ToFail estimates the samples until the ratio reaches the fail boundary
// at true rate p, ignoring the pass boundary (+Inf when it drifts away).
func (s *SPRT) ToFail(p float64) float64 {
	if s.Failed {
		return 0
	}
	mu, _ := s.drift(p)
	if !s.Active() || mu <= 0 {
		return math.Inf(1)
	}
	return math.Max(0, s.failAt-s.LLR) / mu
}

// ToPass estimates the samples until the ratio reaches the pass boundary
// at true rate p, ignoring the fail boundary (+Inf when it drifts away).
func (s *SPRT) ToPass(p float64) float64 {
	if s.Failed {
		return math.Inf(1)
	}
	mu, _ := s.drift(p)
	if !s.Active() || mu >= 0 {
		return math.Inf(1)
	}
	return math.Max(0, s.LLR-s.passAt) / -mu
}

// Expected estimates the samples a fresh test needs to decide at true
// rate p.
func (s *SPRT) Expected(p float64) float64 {
	if !s.Active() {
		return math.Inf(1)
	}
	mu, v := s.drift(p)
	return expectedExit(0, s.passAt, s.failAt, mu, v)
}

// CleanPass is the number of samples, none of them bad, that takes a
// fresh test to its pass boundary: the shortest possible pass.
func (s *SPRT) CleanPass() uint64 {
	if !s.Active() || s.incOK >= 0 {
		return 0
	}
	return uint64(math.Ceil(s.passAt/s.incOK - 1e-9))
}

// BadCost is how many good samples one bad sample costs on the way to a
// pass.
func (s *SPRT) BadCost() float64 {
	if !s.Active() || s.incOK >= 0 {
		return math.Inf(1)
	}
	return s.incBad / -s.incOK
}

// QuickFail is the number of bad samples in a row that fail a fresh test.
func (s *SPRT) QuickFail() uint64 {
	if !s.Active() {
		return 0
	}
	return uint64(math.Ceil(s.failAt/s.incBad - 1e-9))
}

// expectedExit is the expected time for a Brownian motion with drift mu
// and variance v per step, started at x in [lo, hi], to leave the interval.
func expectedExit(x, lo, hi, mu, v float64) float64 {
	if x <= lo || x >= hi {
		return 0
	}
	a, w := x-lo, hi-lo
	if v <= 0 {
		switch {
		case mu < 0:
			return a / -mu
		case mu > 0:
			return (hi - x) / mu
		}
		return math.Inf(1)
	}
	theta := 2 * mu / v
	if math.Abs(theta*w) < 1e-6 {
		return a * (hi - x) / v
	}
	// Probability of leaving through hi, written so that no exponent is
	// positive.
	var pHi float64
	if theta > 0 {
		pHi = -math.Expm1(-theta*a) / -math.Expm1(-theta*w)
	} else {
		phi := -theta
		pHi = math.Exp(phi*(a-w)) * -math.Expm1(-phi*a) / -math.Expm1(-phi*w)
	}
	return (pHi*(hi-x) - (1-pHi)*a) / mu
}
