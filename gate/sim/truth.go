package sim

import (
	"maps"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// Counts is the ground truth of what was sent to (or by) a workload.
type Counts struct {
	// Started counts requests that arrived; Requests those that completed.
	Started  uint64
	Requests uint64
	// Failures uses Linkerd's default classification: HTTP >= 500, a gRPC
	// status other than OK, or a reset.
	Failures uint64
	Resets   uint64
	Status   map[uint32]uint64 // HTTP status of completed requests with headers
	GRPC     map[uint32]uint64 // grpc-status of completed gRPC requests
	// Latencies are the exact times to response headers of the first
	// completed requests that had headers (Options.LatencyCap of them).
	Latencies []time.Duration
}

// Record is one inbound request as sent, kept when Options.Record > 0.
type Record struct {
	ID      gate.StreamID
	Pod     string
	Start   time.Duration // simulated time of the callee's RequestInit
	Method  string
	Path    string
	Status  uint32 // 0: reset before headers
	GRPC    int32  // -1: none
	Reset   bool
	Failed  bool
	Latency time.Duration
	// Outbound is true for a request from a modeled caller.
	FromCaller bool
}

// Truth is a snapshot of the ground truth.
type Truth struct {
	// Deployments and Pods count inbound requests, keyed "namespace/name".
	Deployments map[string]*Counts
	Pods        map[string]*Counts
	// Edges count caller traffic, keyed "ns/caller -> ns/callee".
	Edges map[string]*Counts
	// CallerPods count caller traffic by the calling pod, keyed
	// "namespace/pod": what each caller's proxy sees OUTBOUND (the
	// latencies are the callee's).
	CallerPods map[string]*Counts
	// Records holds each pod's first inbound requests, keyed "namespace/pod".
	Records map[string][]Record
	// Now is the simulated time of the snapshot.
	Now time.Duration
}

type truthState struct {
	deps, pods, edges, callers map[string]*Counts
	records                    map[string][]Record
}

func (t *truthState) init() {
	t.deps, t.pods, t.edges, t.callers = map[string]*Counts{}, map[string]*Counts{}, map[string]*Counts{}, map[string]*Counts{}
	t.records = map[string][]Record{}
}

func counts(m map[string]*Counts, k string) *Counts {
	c := m[k]
	if c == nil {
		c = &Counts{Status: map[uint32]uint64{}, GRPC: map[uint32]uint64{}}
		m[k] = c
	}
	return c
}

func (t *truthState) each(r *request, fn func(c *Counts)) {
	d := r.dst.dep
	fn(counts(t.deps, d.ns+"/"+d.name))
	fn(counts(t.pods, d.ns+"/"+r.dst.name))
	if r.flow.key != "" {
		fn(counts(t.edges, r.flow.key))
	}
	if r.src != nil {
		fn(counts(t.callers, r.src.dep.ns+"/"+r.src.name))
	}
}

func (t *truthState) start(r *request, keep int) {
	t.each(r, func(c *Counts) { c.Started++ })
	if keep <= 0 {
		return
	}
	k := r.dst.dep.ns + "/" + r.dst.name
	if len(t.records[k]) >= keep {
		return
	}
	in := &r.views[0]
	lat := r.latency
	if r.reset && r.early {
		lat = 0
	}
	t.records[k] = append(t.records[k], Record{
		ID: in.id, Pod: r.dst.name, Start: in.initAt(), Method: r.route.method, Path: r.route.path,
		Status: r.status, GRPC: r.grpc, Reset: r.reset, Failed: r.failed(), Latency: lat,
		FromCaller: r.src != nil,
	})
}

func (t *truthState) done(r *request, latCap int) {
	t.each(r, func(c *Counts) {
		c.Requests++
		if r.failed() {
			c.Failures++
		}
		if r.reset {
			c.Resets++
		}
		if r.status != 0 {
			c.Status[r.status]++
			if len(c.Latencies) < latCap {
				c.Latencies = append(c.Latencies, r.latency)
			}
		}
		if r.grpc >= 0 {
			c.GRPC[uint32(r.grpc)]++
		}
	})
}

func cloneCounts(m map[string]*Counts) map[string]*Counts {
	out := make(map[string]*Counts, len(m))
	for k, c := range m {
		cc := *c
		cc.Status = maps.Clone(c.Status)
		cc.GRPC = maps.Clone(c.GRPC)
		cc.Latencies = append([]time.Duration(nil), c.Latencies...)
		out[k] = &cc
	}
	return out
}

// Truth returns a copy of the ground truth so far.
func (s *Simulator) Truth() Truth {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := Truth{
		Deployments: cloneCounts(s.truth.deps),
		Pods:        cloneCounts(s.truth.pods),
		Edges:       cloneCounts(s.truth.edges),
		CallerPods:  cloneCounts(s.truth.callers),
		Records:     make(map[string][]Record, len(s.truth.records)),
		Now:         time.Duration(s.cur.Load()),
	}
	for k, v := range s.truth.records {
		t.Records[k] = append([]Record(nil), v...)
	}
	return t
}
