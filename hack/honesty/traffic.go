package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// failModel is how a target's requests fail: the share that fails, and
// how (HTTP 500, HTTP 503 or a reset stream, by weight; no weights means
// every failure is a 500).
type failModel struct {
	rate               float64
	w500, w503, wReset float64
}

// latencyModel is a lognormal latency: ln(seconds) ~ Normal(mu, sigma).
type latencyModel struct {
	mu, sigma float64
}

// lognormalWithQuantile returns the lognormal with the given sigma whose
// q-quantile is d.
func lognormalWithQuantile(d time.Duration, q, sigma float64) latencyModel {
	return latencyModel{mu: math.Log(d.Seconds()) - sigma*normQuantile(q), sigma: sigma}
}

// quantile is the model's true q-quantile.
func (l latencyModel) quantile(q float64) time.Duration {
	return time.Duration(math.Exp(l.mu+l.sigma*normQuantile(q)) * float64(time.Second))
}

// over is the true share of requests slower than d.
func (l latencyModel) over(d time.Duration) float64 {
	return 1 - normCDF((math.Log(d.Seconds())-l.mu)/l.sigma)
}

func (l latencyModel) draw(r *rand.Rand) time.Duration {
	return time.Duration(math.Exp(l.mu+l.sigma*r.NormFloat64()) * float64(time.Second))
}

// targetTraffic is one target's share of a simulated window.
type targetTraffic struct {
	// count requests arrive in the span (a Poisson process conditioned
	// on its count); when count is 0, they arrive as a Poisson process of
	// rate per second instead.
	count int
	rate  float64
	pods  int
	fail  failModel
	lat   latencyModel
}

// trafficSpec is the traffic of one simulated gate: what every target
// receives during [0, span) of the tap's clock.
type trafficSpec struct {
	span    time.Duration
	targets []targetTraffic
	// body is the time from response headers to the end of stream.
	body time.Duration
	// judged is the target whose completions the source records for the
	// independent replica of the one-sample test, and slow, when set, the
	// latency above which a completion counts as bad (else: failed).
	judged int
	slow   time.Duration
}

func (t *trafficSpec) expectedRequests() float64 {
	var n float64
	for _, tt := range t.targets {
		if tt.count > 0 {
			n += float64(tt.count)
		} else {
			n += tt.rate * t.span.Seconds()
		}
	}
	return n
}

// request is one simulated request.
type request struct {
	start   time.Duration
	latency time.Duration
	status  uint32
	reset   bool
	target  int32
	pod     int32
	stream  uint64
}

func (r *request) failed() bool { return r.status >= 500 || r.reset }

// pod is one simulated proxy: its endpoint and its next stream id.
type pod struct {
	target int
	ep     gate.Endpoint
	next   uint64
}

// source is an in-memory gate.Source: the three tap events of every
// request (requestInit, responseInit with the status and the latency,
// responseEnd), in the order of their timestamps, as a tap stream delivers
// them. Requests overlap as they would in a live tap; stream ids are
// unique per proxy and repeat across proxies. It returns as soon as its
// context is done, which is how the runner stops a run on a decided FAIL.
//
// One Event value is reused for every call, as the replay source does:
// the engine keeps nothing of an event after Observe returns.
type source struct {
	spec   *trafficSpec
	reqs   []request
	pods   []pod
	client gate.Endpoint
	// heap holds the pending response events of requests in flight.
	heap eventHeap
	// completions records, in the order the judged target's requests
	// completed (responseEnd), whether each was bad for the rule.
	completions []bool
	// emitted counts the events delivered.
	emitted int
}

// generator builds one gate's traffic. It keeps its buffers between
// gates; one generator per worker.
type generator struct {
	src   source
	label []int32
	cum   []float64
}

func newGenerator() *generator {
	return &generator{src: source{client: gate.Endpoint{Addr: netip.MustParseAddrPort("10.9.0.1:41000"), Labels: map[string]string{"pod": "loadgen"}}}}
}

// generate draws one gate's requests from spec with r and returns the
// source that will emit them.
func (g *generator) generate(spec *trafficSpec, r *rand.Rand) *source {
	s := &g.src
	s.spec = spec
	s.reqs = s.reqs[:0]
	s.completions = s.completions[:0]
	s.emitted = 0
	s.heap = s.heap[:0]
	// Pods: target i's pods get addresses 10.<i+1>.0.<j+1>.
	s.pods = s.pods[:0]
	podBase := make([]int, len(spec.targets))
	for i, tt := range spec.targets {
		podBase[i] = len(s.pods)
		for j := 0; j < max(1, tt.pods); j++ {
			addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i + 1), 0, byte(j + 1)}), 8080)
			s.pods = append(s.pods, pod{target: i, ep: gate.Endpoint{Addr: addr, Labels: map[string]string{
				"pod": fmt.Sprintf("t%d-pod-%d", i, j), "namespace": "shop"}}})
		}
	}

	fixed := spec.targets[0].count > 0
	span := float64(spec.span)
	if fixed {
		// M arrivals as the order statistics of M uniforms on the span:
		// cumulative sums of M+1 exponential gaps, normalized.
		g.label = g.label[:0]
		for i, tt := range spec.targets {
			for j := 0; j < tt.count; j++ {
				g.label = append(g.label, int32(i))
			}
		}
		r.Shuffle(len(g.label), func(a, b int) { g.label[a], g.label[b] = g.label[b], g.label[a] })
		m := len(g.label)
		g.cum = g.cum[:0]
		sum := 0.0
		for j := 0; j < m; j++ {
			sum += r.ExpFloat64()
			g.cum = append(g.cum, sum)
		}
		sum += r.ExpFloat64()
		for j := 0; j < m; j++ {
			s.reqs = append(s.reqs, request{start: time.Duration(g.cum[j] / sum * span), target: g.label[j]})
		}
	} else {
		// Superposed Poisson processes: gaps at the total rate, each
		// arrival labelled with probability rate_i/total.
		total := 0.0
		for _, tt := range spec.targets {
			total += tt.rate
		}
		t := 0.0
		for {
			t += r.ExpFloat64() / total * float64(time.Second)
			if t >= span {
				break
			}
			u, i := r.Float64()*total, 0
			for i < len(spec.targets)-1 && u >= spec.targets[i].rate {
				u -= spec.targets[i].rate
				i++
			}
			s.reqs = append(s.reqs, request{start: time.Duration(t), target: int32(i)})
		}
	}
	for j := range s.reqs {
		q := &s.reqs[j]
		tt := &spec.targets[q.target]
		q.pod = int32(podBase[q.target] + r.IntN(max(1, tt.pods)))
		p := &s.pods[q.pod]
		p.next++
		q.stream = p.next
		q.latency = tt.lat.draw(r)
		q.status = 200
		if r.Float64() < tt.fail.rate {
			w := tt.fail.w500 + tt.fail.w503 + tt.fail.wReset
			switch u := r.Float64() * w; {
			case w == 0 || u < tt.fail.w500:
				q.status = 500
			case u < tt.fail.w500+tt.fail.w503:
				q.status = 503
			default:
				q.reset = true
			}
		}
	}
	return s
}

// Event kinds in the heap.
const (
	evInit uint8 = iota
	evEnd
)

type pending struct {
	at   time.Duration
	req  int32
	kind uint8
}

// eventHeap is a binary min-heap on time (then request order, so that the
// order is reproducible).
type eventHeap []pending

func (h eventHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].req < h[j].req
}

func (h *eventHeap) push(p pending) {
	*h = append(*h, p)
	a := *h
	for i := len(a) - 1; i > 0; {
		up := (i - 1) / 2
		if !a.less(i, up) {
			break
		}
		a[i], a[up] = a[up], a[i]
		i = up
	}
}

func (h *eventHeap) pop() pending {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(a) && a.less(l, m) {
			m = l
		}
		if r < len(a) && a.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}

// Run emits every request's events in time order until done or ctx ends.
func (s *source) Run(ctx context.Context, sink gate.Sink) error {
	done := ctx.Done()
	var ev gate.Event
	emit := func(i int32, kind gate.EventKind, at time.Duration) error {
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		q := &s.reqs[i]
		p := &s.pods[q.pod]
		ev = gate.Event{
			Kind:        kind,
			Direction:   gate.Inbound,
			ID:          gate.StreamID{Base: 1, Stream: q.stream},
			Source:      s.client,
			Destination: p.ep,
			At:          at,
			HasTime:     true,
		}
		switch kind {
		case gate.RequestInit:
			ev.Method, ev.Scheme, ev.Authority, ev.Path = "GET", "http", "checkout.shop.svc.cluster.local:8080", "/api/v1/cart"
		case gate.ResponseInit:
			ev.HTTPStatus = q.status
			ev.SinceRequestInit = q.latency
		case gate.ResponseEnd:
			ev.SinceRequestInit = q.latency + s.spec.body
			ev.SinceResponseInit = s.spec.body
			ev.ResponseBytes = 1800
			if q.reset {
				ev.EOS = gate.EOS{Kind: gate.EOSReset, Code: 2}
			}
			if int(q.target) == s.spec.judged {
				bad := q.failed()
				if s.spec.slow > 0 {
					bad = q.latency > s.spec.slow
				}
				s.completions = append(s.completions, bad)
			}
		}
		s.emitted++
		sink.Observe(p.target, &ev)
		return nil
	}
	flush := func(until time.Duration, all bool) error {
		for len(s.heap) > 0 && (all || s.heap[0].at <= until) {
			e := s.heap.pop()
			q := &s.reqs[e.req]
			if e.kind == evInit {
				if err := emit(e.req, gate.ResponseInit, e.at); err != nil {
					return err
				}
				s.heap.push(pending{at: q.start + q.latency + s.spec.body, req: e.req, kind: evEnd})
				continue
			}
			if err := emit(e.req, gate.ResponseEnd, e.at); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range s.reqs {
		q := &s.reqs[i]
		if err := flush(q.start, false); err != nil {
			return err
		}
		if err := emit(int32(i), gate.RequestInit, q.start); err != nil {
			return err
		}
		s.heap.push(pending{at: q.start + q.latency, req: int32(i), kind: evInit})
	}
	return flush(0, true)
}
