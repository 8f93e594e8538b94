package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// linkerdBuckets are the upper bounds (ms) of linkerd-proxy's
// response_latency_ms histogram: linkerd2-proxy linkerd/metrics/src/latency.rs,
// 25 bounds since 2018 (linkerd/linkerd2#1218), the set Linkerd's Prometheus
// queries interpolate in.
var linkerdBuckets = []float64{
	1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
	1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
}

// linkerdBucketsCoarse are the 11 bounds a later linkerd2-proxy revision of
// the same file uses.
var linkerdBucketsCoarse = []float64{1, 10, 50, 100, 200, 300, 400, 500, 1000, 5000, 10000}

// histogram counts values (ms) the way linkerd-proxy records them: the
// latency truncated to whole milliseconds, in the first bucket whose bound
// is >= it, the rest in +Inf. counts are cumulative, as Prometheus sees
// them; the last one is +Inf.
func histogram(bounds []float64, valuesMs []float64) []float64 {
	counts := make([]float64, len(bounds)+1)
	for _, v := range valuesMs {
		v = math.Floor(v)
		i := sort.SearchFloat64s(bounds, v) // first bound >= v
		counts[i]++
	}
	for i := 1; i < len(counts); i++ {
		counts[i] += counts[i-1]
	}
	return counts
}

// promQuantile is PromQL's histogram_quantile over cumulative counts
// (last: +Inf): find the first bucket whose count reaches q·total and
// interpolate linearly inside it, from 0 for the first bucket; a rank in
// the +Inf bucket answers the highest finite bound.
func promQuantile(q float64, bounds, cum []float64) float64 {
	total := cum[len(cum)-1]
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	b := sort.Search(len(cum)-1, func(i int) bool { return cum[i] >= rank })
	if b == len(cum)-1 {
		return bounds[len(bounds)-1]
	}
	lo, below := 0.0, 0.0
	if b > 0 {
		lo, below = bounds[b-1], cum[b-1]
	}
	n := cum[b] - below
	return lo + (bounds[b]-lo)*((rank-below)/n)
}

// nearestRank is DESIGN §2's quantile of sorted values: rank ceil(q·n).
func nearestRank(q float64, sorted []time.Duration) time.Duration {
	return sorted[gate.NearestRank(q, uint64(len(sorted)))-1]
}

type distribution struct {
	name, desc string
	draw       func(r *rand.Rand) float64 // ms
}

func lognormal(p50, p99 float64) func(r *rand.Rand) float64 {
	sigma := math.Log(p99/p50) / 2.3263478740408408
	return func(r *rand.Rand) float64 { return p50 * math.Exp(sigma*r.NormFloat64()) }
}

var distributions = []distribution{
	{"lognormal", "p50 35 ms, p99 120 ms (a healthy service)", lognormal(35, 120)},
	{"bimodal", "90% lognormal p50 20 ms / p99 45 ms, 10% lognormal p50 800 ms / p99 1.5 s (cache hits and misses)", func(r *rand.Rand) float64 {
		if r.Float64() < 0.9 {
			return lognormal(20, 45)(r)
		}
		return lognormal(800, 1500)(r)
	}},
	{"uniform", "1 ms to 1 s", func(r *rand.Rand) float64 { return 1 + 999*r.Float64() }},
	{"pareto", "x_m 5 ms, α 1.5 (heavy tail)", func(r *rand.Rand) float64 { return 5 / math.Pow(1-r.Float64(), 1/1.5) }},
}

var accuracyQuantiles = []float64{0.50, 0.95, 0.99, 0.999}

// engineQuantiles feeds the latencies through a gate.Engine as tap events
// and returns what its latency rules observed, one rule per quantile.
func engineQuantiles(lat []time.Duration) ([]time.Duration, error) {
	p := &gate.Policy{Name: "accuracy", Window: time.Hour, Targets: []gate.Target{{Name: "t"}}}
	for _, q := range accuracyQuantiles {
		p.Rules = append(p.Rules, gate.Rule{Name: gate.QuantileName(q), Kind: gate.LatencyQuantile, Quantile: q, MaxLatency: time.Hour, MinRequests: 1})
	}
	e, err := gate.NewEngine(p, gate.Limits{})
	if err != nil {
		return nil, err
	}
	dst := gate.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.1:8080")}
	for i, d := range lat {
		id := gate.StreamID{Base: 1, Stream: uint64(i)}
		e.Observe(0, &gate.Event{Kind: gate.RequestInit, Direction: gate.Inbound, ID: id, Destination: dst, Method: "GET", Path: "/"})
		e.Observe(0, &gate.Event{Kind: gate.ResponseInit, Direction: gate.Inbound, ID: id, Destination: dst, HTTPStatus: 200, SinceRequestInit: d})
		e.Observe(0, &gate.Event{Kind: gate.ResponseEnd, Direction: gate.Inbound, ID: id, Destination: dst, SinceRequestInit: d + time.Millisecond})
	}
	v := e.Evaluate(time.Hour, true)
	out := make([]time.Duration, len(v.Rules))
	for i, r := range v.Rules {
		if !r.HasValue || r.Samples != uint64(len(lat)) {
			return nil, fmt.Errorf("rule %s: %d samples, value %v", r.Name, r.Samples, r.HasValue)
		}
		out[i] = time.Duration(math.Round(r.Observed * float64(time.Second)))
	}
	return out, nil
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / want }

func pct(x float64) string {
	switch {
	case x == 0:
		return "0%"
	case x < 0.0001:
		return fmt.Sprintf("%.4f%%", 100*x)
	case x < 0.1:
		return fmt.Sprintf("%.2f%%", 100*x)
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

func fmtMs(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.1f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.2f ms", ms)
	}
	return fmt.Sprintf("%.3f ms", ms)
}

func accuracyCmd(args []string) error {
	fs := newFlags("accuracy")
	n := fs.Int("n", 1000000, "samples per distribution")
	seed := fs.Uint64("seed", 42, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w := os.Stdout
	var sb strings.Builder
	worst := 0.0
	worstProm := 0.0
	for di, d := range distributions {
		r := rand.New(rand.NewPCG(*seed, uint64(di)))
		lat := make([]time.Duration, *n)
		ms := make([]float64, *n)
		for i := range lat {
			lat[i] = time.Duration(d.draw(r) * float64(time.Millisecond))
			ms[i] = float64(lat[i]) / float64(time.Millisecond)
		}
		got, err := engineQuantiles(lat)
		if err != nil {
			return err
		}
		sorted := slices.Clone(lat)
		slices.Sort(sorted)
		fine := histogram(linkerdBuckets, ms)
		coarse := histogram(linkerdBucketsCoarse, ms)
		fmt.Fprintf(&sb, "**%s** — %s, %s samples\n\n", d.name, d.desc, si(float64(*n)))
		var rows [][]string
		for qi, q := range accuracyQuantiles {
			exact := float64(nearestRank(q, sorted)) / float64(time.Millisecond)
			tg := float64(got[qi]) / float64(time.Millisecond)
			pf := promQuantile(q, linkerdBuckets, fine)
			pc := promQuantile(q, linkerdBucketsCoarse, coarse)
			e := relErr(tg, exact)
			worst = math.Max(worst, e)
			worstProm = math.Max(worstProm, relErr(pf, exact))
			rows = append(rows, []string{gate.QuantileName(q), fmtMs(exact),
				fmtMs(tg), pct(e), met(e <= 0.01),
				fmtMs(pf), pct(relErr(pf, exact)),
				fmtMs(pc), pct(relErr(pc, exact))})
		}
		table(&sb, []string{"quantile", "exact (nearest rank)", "tapgate", "tapgate error", "target <= 1%",
			"Prometheus, 25 buckets", "error", "Prometheus, 11 buckets", "error"}, rows)
		fmt.Fprintln(&sb)
	}
	fmt.Fprintln(w, "## 4. Accuracy")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "tapgate's latency quantiles (a gate.Engine with one latency rule per quantile, fed RequestInit/ResponseInit/ResponseEnd "+
		"events; the rules use gate.NewSketch, DDSketch at %.1f%% relative accuracy) against the exact nearest-rank quantile "+
		"(rank ceil(q·n) of the sorted values, DESIGN §2) of the same latencies. Beside them, what Linkerd's Prometheus view "+
		"answers for the same traffic: PromQL histogram_quantile (linear interpolation inside the bucket, from 0 in the first one; "+
		"the highest finite bound for a rank in +Inf) over linkerd-proxy's response_latency_ms buckets, latencies truncated to whole "+
		"milliseconds as the proxy records them. \"25 buckets\" is 1, 2, 3, 4, 5, 10, 20, ..., 50000 ms (linkerd2-proxy "+
		"linkerd/metrics/src/latency.rs since linkerd/linkerd2#1218, the set Linkerd dashboards and alerts have interpolated in for years); "+
		"\"11 buckets\" is 1, 10, 50, 100, 200, 300, 400, 500, 1000, 5000, 10000 ms, the coarser set in a later revision of the same file.\n\n",
		100*gate.SketchRelativeAccuracy)
	fmt.Fprintf(w, "Worst tapgate error over every distribution and quantile: %s (target <= 1%%: %s). Worst Prometheus error (25 buckets): %s.\n\n",
		pct(worst), met(worst <= 0.01), pct(worstProm))
	fmt.Fprint(w, sb.String())
	return nil
}
