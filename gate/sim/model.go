package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// model is a scenario compiled for generation.
type model struct {
	deps  []*deployment
	pods  []*pod
	flows []*flow
	cpNS  string
	dur   time.Duration
	seed  uint64
}

type deployment struct {
	ns, name, kind string
	meshed, tap    bool
	sa             string
	port           uint16
	hash           string // pod-template-hash
	labels         map[string]string
	pods           []*pod
	routes         []route
	routeCum       []float64
	phases         []params // phases[0] starts at 0
}

// params is the traffic in effect from a point in time.
type params struct {
	from    time.Duration
	rps     float64
	errs    []errChoice // cumulative probabilities
	late    float64     // errors fall in the last `late` of each second; 1: anywhere
	latency Latency
}

type errChoice struct {
	cum float64
	outcome
}

type route struct {
	method, path, authority string
	grpc                    bool
	bytes                   int
}

type pod struct {
	dep                      *deployment
	name                     string
	addr                     netip.Addr
	labels                   map[string]string // Kubernetes pod labels, for label selectors
	meta                     map[string]string // tap endpoint metadata
	srcMeta, inMeta, outMeta map[string]string
	// Encoded EndpointMeta of the three label sets.
	srcMetaEnc, inMetaEnc, outMetaEnc []byte
	base                              uint32 // stream id base of this proxy
	stream                            uint64 // next stream id; generator goroutine only
}

// flow is one Poisson arrival process: a deployment's ingress traffic
// (src nil) or a caller edge.
type flow struct {
	src, dst *deployment
	rps      float64 // callers: fixed; ingress: from dst phases
	routes   []route
	routeCum []float64
	rng      *rand.Rand
	clients  []netip.Addr
	key      string // truth key of a caller edge
}

func (m *model) phase(d *deployment, t time.Duration) *params {
	p := &d.phases[0]
	for i := range d.phases {
		if d.phases[i].from <= t {
			p = &d.phases[i]
		}
	}
	return p
}

func (f *flow) rate(m *model, t time.Duration) float64 {
	if f.src != nil {
		return f.rps
	}
	return m.phase(f.dst, t).rps
}

func hashString(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

const hashAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func podHash(seed uint64, n int, parts ...string) string {
	r := rand.New(rand.NewPCG(seed, hashString(parts...)))
	b := make([]byte, n)
	for i := range b {
		b[i] = hashAlphabet[r.IntN(len(hashAlphabet))]
	}
	return string(b)
}

func compile(s *Scenario) (*model, error) {
	m := &model{cpNS: s.ControlPlaneNamespace, dur: time.Duration(s.Duration), seed: s.Seed}
	if m.cpNS == "" {
		m.cpNS = "linkerd"
	}
	byName := map[string]*deployment{}
	ipN := uint32(0)
	for _, ns := range s.Namespaces {
		for _, sd := range ns.Deployments {
			d := &deployment{
				ns: ns.Name, name: sd.Name, kind: sd.Kind,
				meshed: sd.Meshed == nil || *sd.Meshed,
				tap:    sd.TapEnabled == nil || *sd.TapEnabled,
				sa:     sd.ServiceAccount, port: uint16(sd.Port), labels: sd.Labels,
			}
			if d.kind == "" {
				d.kind = "deployment"
			}
			if d.sa == "" {
				d.sa = "default"
			}
			if d.port == 0 {
				d.port = 8080
			}
			d.hash = podHash(s.Seed, 10, ns.Name, sd.Name)
			d.routes, d.routeCum = compileRoutes(sd.Routes, d)
			d.compilePhases(&sd)
			for i := 0; i < sd.Pods; i++ {
				ipN++
				p := &pod{dep: d, addr: netip.AddrFrom4([4]byte{10, 42, byte(ipN >> 8), byte(ipN)})}
				switch d.kind {
				case "statefulset":
					p.name = d.name + "-" + strconv.Itoa(i)
				case "daemonset":
					p.name = d.name + "-" + podHash(s.Seed, 5, ns.Name, sd.Name, strconv.Itoa(i))
				default:
					p.name = d.name + "-" + d.hash + "-" + podHash(s.Seed, 5, ns.Name, sd.Name, strconv.Itoa(i))
				}
				p.base = uint32(hashString(strconv.FormatUint(s.Seed, 10), ns.Name, p.name)%1000) + 1
				p.labels = map[string]string{}
				for k, v := range d.labels {
					p.labels[k] = v
				}
				p.meta = map[string]string{
					"namespace":      d.ns,
					"pod":            p.name,
					"serviceaccount": d.sa,
				}
				if d.kind == "deployment" {
					p.labels["pod-template-hash"] = d.hash
					p.meta["deployment"] = d.name
					p.meta["replicaset"] = d.name + "-" + d.hash
					p.meta["pod_template_hash"] = d.hash
				} else {
					p.meta[d.kind] = d.name
				}
				if d.meshed {
					p.labels["linkerd.io/control-plane-ns"] = m.cpNS
					p.labels["linkerd.io/proxy-"+d.kind] = d.name
					p.labels["linkerd.io/workload-ns"] = d.ns
					p.meta["control_plane_ns"] = m.cpNS
				}
				p.buildMeta()
				d.pods = append(d.pods, p)
				m.pods = append(m.pods, p)
			}
			m.deps = append(m.deps, d)
			byName[ns.Name+"/"+sd.Name] = d
		}
	}
	fi := uint64(0)
	newRNG := func() *rand.Rand {
		fi++
		return rand.New(rand.NewPCG(s.Seed, fi*0x9e3779b97f4a7c15))
	}
	for _, ns := range s.Namespaces {
		for _, sd := range ns.Deployments {
			d := byName[ns.Name+"/"+sd.Name]
			f := &flow{dst: d, routes: d.routes, routeCum: d.routeCum, rng: newRNG()}
			for i := 0; i < 8; i++ {
				f.clients = append(f.clients, netip.AddrFrom4([4]byte{10, 0, byte(len(m.flows)), byte(10 + i)}))
			}
			m.flows = append(m.flows, f)
			for _, c := range sd.Callers {
				to := c.To
				if !strings.Contains(to, "/") {
					to = ns.Name + "/" + to
				}
				dst := byName[to]
				if dst == nil {
					return nil, fmt.Errorf("caller target %q not found", c.To)
				}
				cf := &flow{src: d, dst: dst, rps: c.RPS, routes: dst.routes, routeCum: dst.routeCum, rng: newRNG(),
					key: d.ns + "/" + d.name + " -> " + dst.ns + "/" + dst.name}
				if len(c.Routes) > 0 {
					cf.routes, cf.routeCum = compileRoutes(c.Routes, dst)
				}
				m.flows = append(m.flows, cf)
			}
		}
	}
	return m, nil
}

func compileRoutes(rs []Route, d *deployment) ([]route, []float64) {
	out := make([]route, len(rs))
	cum := make([]float64, len(rs))
	total := 0.0
	for i, r := range rs {
		w := r.Weight
		if w == 0 {
			w = 1
		}
		total += w
		cum[i] = total
		out[i] = route{method: r.Method, path: r.Path, authority: r.Authority, grpc: r.GRPC, bytes: r.Bytes}
		if out[i].method == "" {
			out[i].method = "GET"
			if r.GRPC {
				out[i].method = "POST"
			}
		}
		if out[i].authority == "" {
			out[i].authority = fmt.Sprintf("%s.%s.svc.cluster.local:%d", d.name, d.ns, d.port)
		}
		if out[i].bytes == 0 {
			out[i].bytes = 512
		}
	}
	for i := range cum {
		cum[i] /= total
	}
	return out, cum
}

func (d *deployment) compilePhases(sd *Deployment) {
	base := params{late: 1, latency: Latency{Constant: Duration(10 * time.Millisecond)}}
	apply := func(p *params, t *Traffic) {
		if t.RPS != nil {
			p.rps = *t.RPS
		}
		if t.Errors != nil {
			p.errs = nil
			cum := 0.0
			for _, k := range sortedErrorKeys(t.Errors) {
				o, _ := parseErrorKey(k) // validated
				cum += float64(t.Errors[k])
				p.errs = append(p.errs, errChoice{cum: cum, outcome: o})
			}
		}
		if t.ErrorsLateInSecond != nil {
			p.late = float64(*t.ErrorsLateInSecond)
		}
		if t.Latency != nil {
			p.latency = *t.Latency
		}
	}
	apply(&base, &sd.Traffic)
	d.phases = []params{base}
	cur := base
	for _, ph := range sd.Phases {
		cur.from = time.Duration(ph.From)
		apply(&cur, &ph.Traffic)
		if cur.from == 0 {
			d.phases[0] = cur
			continue
		}
		d.phases = append(d.phases, cur)
	}
	sort.SliceStable(d.phases, func(i, j int) bool { return d.phases[i].from < d.phases[j].from })
}

// z99 is the standard normal quantile of 0.99.
const z99 = 2.3263478740408408

func (l *Latency) draw(r *rand.Rand) time.Duration {
	if l.Constant > 0 {
		return time.Duration(l.Constant)
	}
	mu := math.Log(float64(l.P50))
	sigma := (math.Log(float64(l.P99)) - mu) / z99
	v := math.Exp(mu + sigma*r.NormFloat64())
	if v > float64(time.Minute) {
		v = float64(time.Minute)
	}
	if v < float64(time.Microsecond) {
		v = float64(time.Microsecond)
	}
	return time.Duration(v)
}

func pick(cum []float64, u float64) int {
	i := sort.SearchFloat64s(cum, u)
	if i >= len(cum) {
		i = len(cum) - 1
	}
	return i
}

// Linkerd's reset code for a stream the server gave up on (h2 INTERNAL_ERROR).
const resetInternalError = 2

// hop is the one-way network time between a caller's proxy and the callee's.
const hop = 200 * time.Microsecond

// request is one generated HTTP request and its predetermined outcome.
type request struct {
	start    time.Duration
	flow     *flow
	src, dst *pod // src nil: ingress client
	srcAddr  netip.AddrPort
	dstAddr  netip.AddrPort
	route    *route
	status   uint32
	grpc     int32 // -1: no grpc-status
	reset    bool
	early    bool // reset before response headers
	latency  time.Duration
	body     time.Duration
	bytes    uint64
	auth     string // bearer token, "" for none
	reqID    string
	views    [2]view
	nviews   int
}

// view is a request as one proxy sees it.
type view struct {
	req   *request
	dir   gate.Direction
	proxy *pod
	emit  bool // the pod runs a proxy
	id    gate.StreamID
	src   gate.Endpoint
	dst   gate.Endpoint
	// srcMeta and dstMeta are the encoded label sets of src and dst.
	srcMeta, dstMeta []byte
	offset           time.Duration // RequestInit time relative to req.start
	extra            time.Duration // added to latency (outbound sees the round trip)
	taps             []*subscription
	ep               *endpoint // the proxy's metrics series; set when the request starts
}

func (v *view) initAt() time.Duration { return v.req.start + v.offset }
func (v *view) respAt() time.Duration { return v.initAt() + v.req.latency + v.extra }
func (v *view) endAt() time.Duration {
	r := v.req
	if r.reset && r.early {
		return v.respAt()
	}
	if r.reset {
		return v.respAt() + r.body/2
	}
	return v.respAt() + r.body
}

func (r *request) failed() bool {
	return failedOutcome(r.status, r.grpc, r.reset)
}

// failedOutcome is Linkerd's default classification: HTTP >= 500, a gRPC
// status other than OK, or a reset.
func failedOutcome(status uint32, grpc int32, reset bool) bool {
	return status >= 500 || grpc > 0 || reset
}

// resolveOutcome is what a request on route rt looks like when the error
// o is drawn (nil: none): its HTTP status (0: reset before response
// headers), grpc-status (-1: none) and whether the stream was reset. A gRPC
// code applies to gRPC routes only; an HTTP error on a gRPC route carries
// no grpc-status, as when the proxy answers itself; a reset has no
// grpc-status, and response headers (200) only when it came after them.
func resolveOutcome(rt *route, o *outcome, early bool) (status uint32, grpc int32, reset bool) {
	status, grpc = 200, -1
	if rt.grpc {
		grpc = 0
	}
	switch {
	case o == nil:
	case o.reset:
		grpc = -1
		if early {
			status = 0
		}
		return status, grpc, true
	case o.grpc >= 0:
		if rt.grpc {
			grpc = o.grpc
		}
	default:
		status = o.status
		grpc = -1
	}
	return status, grpc, false
}

// newRequest draws the next request of f at time t.
func (m *model) newRequest(f *flow, t time.Duration, n uint64) *request {
	rng := f.rng
	r := &request{start: t, flow: f, grpc: -1}
	r.route = &f.routes[pick(f.routeCum, rng.Float64())]
	r.dst = f.dst.pods[rng.IntN(len(f.dst.pods))]
	r.dstAddr = netip.AddrPortFrom(r.dst.addr, f.dst.port)
	eph := uint16(32768 + rng.IntN(28000))
	if f.src != nil {
		r.src = f.src.pods[rng.IntN(len(f.src.pods))]
		r.srcAddr = netip.AddrPortFrom(r.src.addr, eph)
	} else {
		r.srcAddr = netip.AddrPortFrom(f.clients[rng.IntN(len(f.clients))], eph)
	}
	p := m.phase(f.dst, t)
	u := rng.Float64()
	if p.late < 1 {
		// Errors only in the last p.late of each second, each 1/p.late as
		// likely there: the same overall share.
		if float64(t%time.Second) < (1-p.late)*float64(time.Second) {
			u = 2 // above every cumulative probability: no error
		} else {
			u *= p.late
		}
	}
	var chosen *outcome
	for i := range p.errs {
		if u < p.errs[i].cum {
			chosen = &p.errs[i].outcome
			if chosen.reset {
				r.early = rng.IntN(2) == 0
			}
			break
		}
	}
	r.status, r.grpc, r.reset = resolveOutcome(r.route, chosen, r.early)
	r.latency = p.latency.draw(rng)
	r.body = r.latency/20 + time.Duration(rng.IntN(500))*time.Microsecond
	if r.body > 5*time.Millisecond {
		r.body = 5 * time.Millisecond
	}
	r.bytes = uint64(r.route.bytes/2 + rng.IntN(r.route.bytes+1))
	if r.reset {
		r.bytes /= 3
	}
	if rng.IntN(4) == 0 {
		r.auth = "Bearer s3cr3t-" + strconv.FormatUint(rng.Uint64()%1e12, 36)
	}
	r.reqID = strconv.FormatUint(n, 16)

	// The callee's proxy sees it inbound; a meshed caller's proxy outbound.
	in := &r.views[0]
	*in = view{req: r, dir: gate.Inbound, proxy: r.dst, emit: r.dst.dep.meshed,
		src: gate.Endpoint{Addr: r.srcAddr}, dst: gate.Endpoint{Addr: r.dstAddr, Labels: r.dst.inMeta},
		dstMeta: r.dst.inMetaEnc}
	r.nviews = 1
	if r.src != nil {
		in.offset = hop
		in.src.Labels, in.srcMeta = r.src.srcMeta, r.src.srcMetaEnc
		out := &r.views[1]
		*out = view{req: r, dir: gate.Outbound, proxy: r.src, emit: r.src.dep.meshed, extra: 2 * hop,
			src: gate.Endpoint{Addr: r.srcAddr, Labels: r.src.srcMeta}, srcMeta: r.src.srcMetaEnc,
			dst: gate.Endpoint{Addr: r.dstAddr, Labels: r.dst.outMeta}, dstMeta: r.dst.outMetaEnc}
		r.nviews = 2
	} else {
		in.src.Labels, in.srcMeta = clientMeta, clientMetaEnc
	}
	return r
}

// clientMeta is what an inbound proxy reports for a client without a
// mesh identity.
var (
	clientMeta    = map[string]string{"tls": "no_identity"}
	clientMetaEnc = encodeMeta(clientMeta)
)

// buildMeta fills the label sets Linkerd reports for the pod: the tap
// server hydrates pod metadata by IP, the inbound proxy adds the peer's TLS
// status, and an outbound proxy reports what service discovery returned.
func (p *pod) buildMeta() {
	tls := "true"
	if !p.dep.meshed {
		tls = "no_identity"
	}
	cp := func(extra ...string) map[string]string {
		m := make(map[string]string, len(p.meta)+len(extra)/2)
		for k, v := range p.meta {
			m[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	p.srcMeta = cp("tls", tls)
	p.inMeta = cp("tls", tls)
	p.outMeta = cp("tls", tls, "service", p.dep.name)
	p.srcMetaEnc, p.inMetaEnc, p.outMetaEnc = encodeMeta(p.srcMeta), encodeMeta(p.inMeta), encodeMeta(p.outMeta)
}
