package sim

import (
	"container/heap"
	"strconv"
	"time"

	"github.com/tapgate/tapgate/gate"
)

type itemKind uint8

const (
	itArrival itemKind = iota
	itInit
	itResp
	itEnd
)

// item is something that happens at a simulated time: a request arrives,
// or one proxy's view of a request reaches RequestInit, ResponseInit or
// ResponseEnd.
type item struct {
	at   time.Duration
	seq  uint64 // ties keep scheduling order, so generation is deterministic
	kind itemKind
	flow *flow
	view *view
}

type itemHeap []item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// hooks are what the engine reports while it advances.
type hooks struct {
	start func(r *request)                                     // a request arrived
	init  func(v *view)                                        // before a view's RequestInit is emitted
	emit  func(v *view, kind gate.EventKind, at time.Duration) // a meshed proxy emits an event
	done  func(r *request)                                     // the callee finished the request
}

// engine advances a model through simulated time. Not safe for concurrent
// use: one goroutine drives it.
type engine struct {
	m   *model
	h   itemHeap
	seq uint64
	n   uint64
	hk  hooks
}

func newEngine(m *model, hk hooks) *engine {
	e := &engine{m: m, hk: hk}
	for _, f := range m.flows {
		if len(f.dst.pods) == 0 || (f.src != nil && len(f.src.pods) == 0) {
			continue
		}
		e.scheduleArrival(f, 0)
	}
	return e
}

func (e *engine) push(it item) {
	e.seq++
	it.seq = e.seq
	heap.Push(&e.h, it)
}

// scheduleArrival draws the next Poisson arrival of f after t. A flow
// whose rate is 0 sleeps until the next phase that may change it.
func (e *engine) scheduleArrival(f *flow, t time.Duration) {
	for {
		rate := f.rate(e.m, t)
		if rate > 0 {
			gap := time.Duration(f.rng.ExpFloat64() / rate * float64(time.Second))
			if gap < time.Nanosecond {
				gap = time.Nanosecond
			}
			next := t + gap
			// Crossing into a phase with another rate restarts the draw there.
			if b, ok := e.nextBoundary(f, t); ok && next >= b && f.rate(e.m, b) != rate {
				t = b
				continue
			}
			e.push(item{at: next, kind: itArrival, flow: f})
			return
		}
		b, ok := e.nextBoundary(f, t)
		if !ok {
			return
		}
		t = b
	}
}

func (e *engine) nextBoundary(f *flow, t time.Duration) (time.Duration, bool) {
	if f.src != nil {
		return 0, false
	}
	for _, p := range f.dst.phases {
		if p.from > t {
			return p.from, true
		}
	}
	return 0, false
}

// peek returns the time of the next item.
func (e *engine) peek() (time.Duration, bool) {
	if len(e.h) == 0 {
		return 0, false
	}
	return e.h[0].at, true
}

// step processes the next item; it returns false when nothing is left.
func (e *engine) step() bool {
	if len(e.h) == 0 {
		return false
	}
	it := heap.Pop(&e.h).(item)
	switch it.kind {
	case itArrival:
		e.n++
		r := e.m.newRequest(it.flow, it.at, e.n)
		for i := 0; i < r.nviews; i++ {
			v := &r.views[i]
			if v.emit {
				v.id = gate.StreamID{Base: v.proxy.base, Stream: v.proxy.stream}
				v.proxy.stream++
			}
			e.push(item{at: v.initAt(), kind: itInit, view: v})
		}
		if e.hk.start != nil {
			e.hk.start(r)
		}
		e.scheduleArrival(it.flow, it.at)
	case itInit:
		v := it.view
		if v.emit {
			if e.hk.init != nil {
				e.hk.init(v)
			}
			e.hk.emit(v, gate.RequestInit, it.at)
		}
		if !(v.req.reset && v.req.early) {
			e.push(item{at: v.respAt(), kind: itResp, view: v})
		}
		e.push(item{at: v.endAt(), kind: itEnd, view: v})
	case itResp:
		if it.view.emit {
			e.hk.emit(it.view, gate.ResponseInit, it.at)
		}
	case itEnd:
		v := it.view
		if v.emit {
			e.hk.emit(v, gate.ResponseEnd, it.at)
		}
		if v == &v.req.views[0] && e.hk.done != nil {
			e.hk.done(v.req)
		}
		v.taps = nil
	}
	return true
}

// fill writes the event kind of view v into ev. Label maps are shared and
// must not be modified.
func (v *view) fill(kind gate.EventKind, headers bool, ev *gate.Event) {
	r := v.req
	*ev = gate.Event{
		Kind:        kind,
		Direction:   v.dir,
		ID:          v.id,
		Source:      v.src,
		Destination: v.dst,
		RouteMeta:   emptyLabels,
	}
	switch kind {
	case gate.RequestInit:
		ev.Method = r.route.method
		ev.Scheme = "http"
		ev.Authority = r.route.authority
		ev.Path = r.route.path
		if headers {
			ev.Headers = r.requestHeaders(v)
		}
	case gate.ResponseInit:
		ev.HTTPStatus = r.status
		ev.SinceRequestInit = r.latency + v.extra
		if headers {
			ev.Headers = r.responseHeaders()
		}
	case gate.ResponseEnd:
		ev.SinceRequestInit = v.endAt() - v.initAt()
		if !(r.reset && r.early) {
			ev.SinceResponseInit = v.endAt() - v.respAt()
		}
		ev.ResponseBytes = r.bytes
		switch {
		case r.reset:
			ev.EOS = gate.EOS{Kind: gate.EOSReset, Code: resetInternalError}
		case r.grpc >= 0:
			ev.EOS = gate.EOS{Kind: gate.EOSGRPCStatus, Code: uint32(r.grpc)}
			if headers {
				ev.Trailers = r.trailers()
			}
		}
	}
}

var emptyLabels = map[string]string{}

func (r *request) requestHeaders(v *view) []gate.Header {
	hs := make([]gate.Header, 0, 8)
	if r.route.grpc {
		hs = append(hs,
			gate.Header{Name: "content-type", Value: "application/grpc"},
			gate.Header{Name: "te", Value: "trailers"},
			gate.Header{Name: "user-agent", Value: "grpc-go/1.64.0"})
	} else {
		hs = append(hs,
			gate.Header{Name: "user-agent", Value: "Go-http-client/1.1"},
			gate.Header{Name: "accept", Value: "application/json"})
	}
	hs = append(hs, gate.Header{Name: "x-request-id", Value: r.reqID})
	if r.auth != "" {
		hs = append(hs, gate.Header{Name: "authorization", Value: r.auth})
	}
	if v.dir == gate.Outbound {
		hs = append(hs, gate.Header{Name: "l5d-dst-canonical", Value: r.route.authority})
	}
	return hs
}

func (r *request) responseHeaders() []gate.Header {
	if r.route.grpc && r.grpc >= 0 {
		return []gate.Header{{Name: "content-type", Value: "application/grpc"}}
	}
	hs := []gate.Header{{Name: "content-type", Value: "application/json"}}
	if r.auth != "" {
		hs = append(hs, gate.Header{Name: "set-cookie", Value: "session=s3cr3t-" + r.reqID + "; HttpOnly"})
	}
	return hs
}

func (r *request) trailers() []gate.Header {
	hs := []gate.Header{{Name: "grpc-status", Value: strconv.Itoa(int(r.grpc))}}
	if r.grpc > 0 {
		hs = append(hs, gate.Header{Name: "grpc-message", Value: gate.GRPCCodeName(uint32(r.grpc))})
	}
	return hs
}
