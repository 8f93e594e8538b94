package gate

import (
	"math"
)

// adaptiveTest is a one-sided anytime-valid test of a Bernoulli rate
// against a null boundary p0 whose alternative is estimated from the
// samples so far: Robbins and Siegmund's adaptive SPRT. Each sample's
// factor (q/p0)^x ((1-q)/(1-p0))^(1-x), with q fixed before the sample is
// seen and kept on the alternative's side of p0, has expectation at most 1
// under every rate of the null (at or below p0 when above, at or above p0
// otherwise), so the product is a nonnegative supermartingale and Ville's
// inequality bounds the chance it ever reaches 1/gamma. The compare
// latency rule uses it on each side (comparelatency.go): unlike a fixed
// alternative, the estimate follows a true rate that sits between the two
// design points, which is where a bound widened by the baseline's own
// uncertainty puts most canaries.
type adaptiveTest struct {
	p0    float64
	above bool
	// floor is where the alternative stays at least (above) or at most:
	// a quarter of the way from p0 to the other design point.
	floor   float64
	gamma   float64
	logE    float64
	reached bool
	n, k    uint64
}

func newAdaptive(p0, design float64, above bool, gamma float64) *adaptiveTest {
	return &adaptiveTest{p0: p0, above: above, floor: p0 + (design-p0)/4, gamma: gamma}
}

func (t *adaptiveTest) boundary() float64 { return -math.Log(t.gamma) }

func (t *adaptiveTest) q() float64 {
	q := smoothed(t.k, t.n)
	if t.above {
		return math.Max(q, t.floor)
	}
	return math.Min(q, t.floor)
}

func (t *adaptiveTest) step(k, n uint64, q float64) bool {
	t.logE += float64(k)*math.Log(q/t.p0) + float64(n-k)*(math.Log1p(-q)-math.Log1p(-t.p0))
	t.n, t.k = t.n+n, t.k+k
	if !t.reached && t.logE >= t.boundary()-1e-12 {
		t.reached = true
		return true
	}
	return false
}

// add tests one sample; it reports whether the boundary was just reached.
func (t *adaptiveTest) add(bad bool) bool {
	var k uint64
	if bad {
		k = 1
	}
	return t.step(k, 1, t.q())
}

// addN tests a batch of n samples, k bad, seen before the test started:
// their alternative cannot come from themselves, so it is the floor.
func (t *adaptiveTest) addN(n, k uint64) bool {
	return t.step(k, n, t.floor)
}

// growth is the expected log e-value gained per sample at true rate p with
// the alternative settled at it; <= 0 when not moving.
func (t *adaptiveTest) growth(p float64) float64 {
	q := p
	if t.above {
		q = math.Max(q, t.floor)
	} else {
		q = math.Min(q, t.floor)
	}
	if q <= 0 || q >= 1 {
		return 0
	}
	return p*math.Log(q/t.p0) + (1-p)*(math.Log1p(-q)-math.Log1p(-t.p0))
}
