package gate

import (
	"math"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
)

// SketchRelativeAccuracy is the relative error of every quantile tapgate
// reports. 0.5% keeps the reported value within the 1% promise even after
// rounding for display.
const SketchRelativeAccuracy = 0.005

// sketchMaxBins bounds a sketch's memory. At 0.5% accuracy 2048 bins span a
// ratio of about 8e8 (1µs to 800s); beyond that the lowest bins collapse,
// which keeps the high quantiles a gate cares about exact to the bound.
const sketchMaxBins = 2048

// Sketch is a mergeable quantile sketch over durations, with nearest-rank
// quantiles (DESIGN §2) within SketchRelativeAccuracy.
type Sketch struct {
	s *ddsketch.DDSketch
}

// NewSketch returns an empty sketch.
func NewSketch() *Sketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(SketchRelativeAccuracy, sketchMaxBins)
	if err != nil {
		// Only an invalid accuracy constant can get here.
		panic(err)
	}
	return &Sketch{s: s}
}

// Add records one duration. Negative durations are recorded as zero.
func (k *Sketch) Add(d time.Duration) {
	v := d.Seconds()
	if v < 0 {
		v = 0
	}
	_ = k.s.Add(v)
}

// Merge adds every value of o.
func (k *Sketch) Merge(o *Sketch) {
	_ = k.s.MergeWith(o.s)
}

// Count returns how many values were added.
func (k *Sketch) Count() uint64 { return uint64(k.s.GetCount() + 0.5) }

// Quantile returns the nearest-rank p-quantile: the value of rank ceil(p·n)
// in sorted order. ok is false for an empty sketch.
func (k *Sketch) Quantile(p float64) (time.Duration, bool) {
	return k.ValueAtRank(NearestRank(p, k.Count()))
}

// ValueAtRank returns the value of the given 1-based rank in sorted order,
// within the sketch's relative accuracy. Ranks beyond the count are
// clamped; ok is false for an empty sketch.
func (k *Sketch) ValueAtRank(rank uint64) (time.Duration, bool) {
	n := k.s.GetCount()
	if n < 1 {
		return 0, false
	}
	count := uint64(n + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > count {
		rank = count
	}
	// ddsketch answers rank q·(n-1) (0-based) with the first bin whose
	// cumulative count exceeds it; aim at the middle of the wanted rank so
	// float rounding cannot land on a neighbour.
	q := 1.0
	if n > 1 {
		q = math.Min(1, math.Max(0, (float64(rank)-0.5)/(n-1)))
	}
	v, err := k.s.GetValueAtQuantile(q)
	if err != nil {
		return 0, false
	}
	return time.Duration(v * float64(time.Second)), true
}

// CountAbove returns how many values are certainly above d and how many
// may be: values in bins entirely above d, and values in bins that reach
// above it, given the sketch's relative accuracy.
func (k *Sketch) CountAbove(d time.Duration) (certain, possible uint64) {
	t := d.Seconds()
	var c, p float64
	k.s.ForEach(func(value, count float64) bool {
		if value > t*(1+SketchRelativeAccuracy) {
			c += count
		}
		if value > t*(1-SketchRelativeAccuracy) {
			p += count
		}
		return false
	})
	return uint64(c + 0.5), uint64(p + 0.5)
}

// NearestRank is ceil(p·n) clamped to [1, n].
func NearestRank(p float64, n uint64) uint64 {
	if n == 0 {
		return 0
	}
	r := uint64(math.Ceil(p*float64(n) - 1e-9))
	if r < 1 {
		r = 1
	}
	if r > n {
		r = n
	}
	return r
}

// Wilson returns the 95% Wilson score interval of k successes in n trials.
func Wilson(k, n uint64) Interval {
	if n == 0 {
		return Interval{Low: 0, High: 1}
	}
	const z = 1.959963984540054
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	den := 1 + z2/nf
	centre := (p + z2/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	return Interval{Low: math.Max(0, centre-half), High: math.Min(1, centre+half)}
}

// cell accumulates the counters of one target, pod or route.
type cell struct {
	requests, successes, failures uint64
	resets, noResponse            uint64
	status                        map[uint32]uint64
	grpc                          map[uint32]uint64
	latency, duration             *Sketch
}

func newCell() *cell {
	return &cell{
		status:   make(map[uint32]uint64, 8),
		grpc:     make(map[uint32]uint64, 4),
		latency:  NewSketch(),
		duration: NewSketch(),
	}
}

// maxStatusKeys bounds the status maps: HTTP statuses and gRPC codes are
// small sets, but hostile input can send any number.
const maxStatusKeys = 64

func (c *cell) add(r *Request) {
	c.requests++
	if r.Failed {
		c.failures++
	} else {
		c.successes++
	}
	if r.Status != 0 {
		if _, ok := c.status[r.Status]; ok || len(c.status) < maxStatusKeys {
			c.status[r.Status]++
		}
	}
	if r.GRPC >= 0 {
		if _, ok := c.grpc[uint32(r.GRPC)]; ok || len(c.grpc) < maxStatusKeys {
			c.grpc[uint32(r.GRPC)]++
		}
	}
	if r.Reset {
		c.resets++
	}
	if r.NoResponse {
		c.noResponse++
	}
	if r.HasLatency {
		c.latency.Add(r.Latency)
	}
	c.duration.Add(r.Duration)
}

// quantilesOf returns a sketch's quantiles; the intervals are computed
// only with withCI (targets, not every pod: they cost a few binomial
// inversions each).
func quantilesOf(s *Sketch, withCI bool) Quantiles {
	var q Quantiles
	var ok bool
	if q.P50, ok = s.Quantile(0.50); !ok {
		return Quantiles{}
	}
	q.P95, _ = s.Quantile(0.95)
	q.P99, _ = s.Quantile(0.99)
	q.Valid = true
	if withCI {
		q.CI50, _ = s.QuantileCI(0.50)
		q.CI95, _ = s.QuantileCI(0.95)
		q.CI99, _ = s.QuantileCI(0.99)
	}
	return q
}

func (c *cell) stats(inFlight uint64, withCI bool) Stats {
	st := Stats{
		Requests:   c.requests,
		Successes:  c.successes,
		Failures:   c.failures,
		InFlight:   inFlight,
		Interval:   Wilson(c.successes, c.requests),
		Latency:    quantilesOf(c.latency, withCI),
		Duration:   quantilesOf(c.duration, withCI),
		Status:     make(map[uint32]uint64, len(c.status)),
		GRPC:       make(map[uint32]uint64, len(c.grpc)),
		Resets:     c.resets,
		NoResponse: c.noResponse,
	}
	if c.requests > 0 {
		st.SuccessRate = float64(c.successes) / float64(c.requests)
	}
	for k, v := range c.status {
		st.Status[k] = v
	}
	for k, v := range c.grpc {
		st.GRPC[k] = v
	}
	return st
}
