package sim

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapgate/tapgate/gate"
)

// The proxies' own metrics, as Linkerd's Prometheus holds them after
// scraping every simulated proxy (linkerd-viz's linkerd-proxy job): GET
// /metrics on the simulator's address. Names, labels, classification and
// histogram buckets follow linkerd2-proxy (linkerd/app/core/src/metrics.rs,
// classify.rs, linkerd/http-metrics, linkerd/metrics/src/histogram.rs);
// the target labels follow the linkerd-proxy scrape job's relabeling in
// linkerd-viz's prometheus.yaml.

// latencyBoundsMs are the upper bounds of response_latency_ms, +Inf
// implied: linkerd2-proxy's latency buckets, the set Linkerd's dashboards
// and `linkerd viz stat` quantiles interpolate in.
var latencyBoundsMs = [...]float64{
	1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
	1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
}

const (
	metricRequests  = "request_total"
	metricResponses = "response_total"
	metricLatency   = "response_latency_ms"
	helpRequests    = "Total count of HTTP requests."
	helpResponses   = "Total count of HTTP responses."
	helpLatency     = "Elapsed times between a request's headers being received and its response stream completing"
	// resetErrorLabel is the error label of a stream reset with
	// INTERNAL_ERROR (the proxy's h2_error: "h2(" + the h2 reason + ")").
	resetErrorLabel = "h2(INTERNAL_ERROR)"
	// maxPrecreated bounds the zero-valued series created before traffic
	// (beyond it, series appear with their first request).
	maxPrecreated = 20000
)

// epKey identifies one proxy's endpoint series: Linkerd keeps request
// metrics per direction, authority, target address and TLS peer.
type epKey struct {
	proxy     *pod
	dir       gate.Direction
	authority string
	clientID  string // inbound: the caller's mesh identity; "": none (not meshed, outside the model)
	peerPod   *pod   // outbound: the callee's pod
}

// endpoint is one label set of request_total and the response series
// under it. Guarded by Simulator.mu.
type endpoint struct {
	labels   map[string]string
	target   map[string]bool // the names of the target labels among them
	requests uint64
	reqDesc  *prometheus.Desc
	statuses []*statusSeries
}

// statusSeries is one status_code under an endpoint (0: the stream was
// reset before response headers, which has no status_code label and no
// latency).
type statusSeries struct {
	code     uint32
	buckets  [len(latencyBoundsMs) + 1]uint64 // per bucket (not cumulative), +Inf last
	count    uint64
	sumMs    uint64
	histDesc *prometheus.Desc
	classes  []*classSeries
}

// classSeries is one response_total series: a classification with its
// grpc_status or error label.
type classSeries struct {
	failure bool
	grpc    int32  // grpc_status, -1: none
	err     string // error label, "": none
	n       uint64
	desc    *prometheus.Desc
}

// metricsState holds every endpoint series. Guarded by Simulator.mu.
type metricsState struct {
	cpNS string
	eps  map[epKey]*endpoint
	list []*endpoint // creation order
}

// reset drops every series and creates, at zero, those the model can
// produce, so Prometheus sees them before the first request (a series that
// first appears with a count already in it loses that count to increase()).
func (ms *metricsState) reset(m *model) {
	ms.cpNS = m.cpNS
	ms.eps = map[epKey]*endpoint{}
	ms.list = nil
	n := 0
	for _, f := range m.flows {
		if f.dst.meshed {
			n += len(f.dst.pods) * len(f.routes)
		}
		if f.src != nil && f.src.meshed {
			n += len(f.src.pods) * len(f.dst.pods) * len(f.routes)
		}
	}
	if n > maxPrecreated {
		return
	}
	for _, f := range m.flows {
		var outs []resolved
		for i := range f.routes {
			outs = append(outs, routeOutcomes(&f.routes[i], f.dst.phases)...)
		}
		for i := range f.routes {
			rt := &f.routes[i]
			for _, dp := range f.dst.pods {
				if f.dst.meshed {
					ms.precreate(epKey{proxy: dp, dir: gate.Inbound, authority: rt.authority, clientID: ms.clientID(f.src)}, rt, outs)
				}
				if f.src != nil && f.src.meshed {
					for _, sp := range f.src.pods {
						ms.precreate(epKey{proxy: sp, dir: gate.Outbound, authority: rt.authority, peerPod: dp}, rt, outs)
					}
				}
			}
		}
	}
}

// resolved is a possible outcome of a route.
type resolved struct {
	rt     *route
	status uint32
	grpc   int32
	reset  bool
}

// routeOutcomes lists what requests on rt can end as in any phase.
func routeOutcomes(rt *route, phases []params) []resolved {
	var out []resolved
	add := func(o *outcome, early bool) {
		st, g, rs := resolveOutcome(rt, o, early)
		out = append(out, resolved{rt: rt, status: st, grpc: g, reset: rs})
	}
	add(nil, false)
	for _, p := range phases {
		for i := range p.errs {
			o := &p.errs[i].outcome
			add(o, false)
			if o.reset {
				add(o, true)
			}
		}
	}
	return out
}

func (ms *metricsState) precreate(k epKey, rt *route, outs []resolved) {
	ep := ms.endpoint(k)
	for _, o := range outs {
		if o.rt != rt {
			continue
		}
		ep.status(o.status).class(o.grpc, o.reset, failedOutcome(o.status, o.grpc, o.reset))
	}
}

// endpoint returns the series of k, creating them.
func (ms *metricsState) endpoint(k epKey) *endpoint {
	if ep := ms.eps[k]; ep != nil {
		return ep
	}
	ep := &endpoint{}
	ep.labels, ep.target = ms.labelsFor(k)
	ep.reqDesc = prometheus.NewDesc(metricRequests, helpRequests, nil, ep.labels)
	ms.eps[k] = ep
	ms.list = append(ms.list, ep)
	return ep
}

func (ep *endpoint) status(code uint32) *statusSeries {
	for _, s := range ep.statuses {
		if s.code == code {
			return s
		}
	}
	s := &statusSeries{code: code}
	if code != 0 {
		s.histDesc = prometheus.NewDesc(metricLatency, helpLatency, nil, ep.withLabels("status_code", strconv.Itoa(int(code))))
	}
	ep.statuses = append(ep.statuses, s)
	return s
}

// class returns the response_total series of an outcome under this status.
func (s *statusSeries) class(grpc int32, reset, failure bool) *classSeries {
	errLabel := ""
	if reset {
		errLabel, grpc = resetErrorLabel, -1
	}
	for _, c := range s.classes {
		if c.failure == failure && c.grpc == grpc && c.err == errLabel {
			return c
		}
	}
	c := &classSeries{failure: failure, grpc: grpc, err: errLabel}
	s.classes = append(s.classes, c)
	return c
}

// classDesc builds the descriptor of a response_total series: the
// endpoint's labels, status_code when there were response headers, then
// Linkerd's Class labels.
func classDesc(ep *endpoint, s *statusSeries, c *classSeries) *prometheus.Desc {
	var kv []string
	if s.code != 0 {
		kv = append(kv, "status_code", strconv.Itoa(int(s.code)))
	}
	if c.failure {
		kv = append(kv, "classification", "failure")
	} else {
		kv = append(kv, "classification", "success")
	}
	switch {
	case c.err != "":
		kv = append(kv, "error", c.err)
	case c.grpc >= 0:
		kv = append(kv, "grpc_status", strconv.Itoa(int(c.grpc)))
	}
	return prometheus.NewDesc(metricResponses, helpResponses, nil, ep.withLabels(kv...))
}

// start counts a request at every meshed proxy that sees it
// (request_total grows when the request stream begins).
func (ms *metricsState) start(r *request) {
	for i := 0; i < r.nviews; i++ {
		v := &r.views[i]
		if !v.emit {
			continue
		}
		k := epKey{proxy: v.proxy, dir: v.dir, authority: r.route.authority}
		if v.dir == gate.Outbound {
			k.peerPod = r.dst
		} else if r.src != nil {
			k.clientID = ms.clientID(r.src.dep)
		}
		v.ep = ms.endpoint(k)
		v.ep.requests++
	}
}

// done counts a finished request's response and latency at every proxy
// that counted it. Both proxies count it when the callee finishes, so the
// counters always agree with Truth.
func (ms *metricsState) done(r *request) {
	for i := 0; i < r.nviews; i++ {
		v := &r.views[i]
		if v.ep == nil {
			continue
		}
		s := v.ep.status(r.status)
		if r.status != 0 {
			lat := latencyMs(r.latency + v.extra)
			s.buckets[bucketOf(lat)]++
			s.count++
			s.sumMs += lat
		}
		s.class(r.grpc, r.reset, r.failed()).n++
		v.ep = nil
	}
}

// latencyMs is a latency as linkerd2-proxy records it: whole
// milliseconds, truncated.
func latencyMs(d time.Duration) uint64 {
	if d < 0 {
		return 0
	}
	return uint64(d / time.Millisecond)
}

// bucketOf is the index of the first bucket whose bound is >= ms
// (len(latencyBoundsMs): +Inf).
func bucketOf(ms uint64) int {
	return sort.SearchFloat64s(latencyBoundsMs[:], float64(ms))
}

// withLabels is the endpoint's labels and the proxy's response labels kv;
// one that a target label already holds becomes exported_*, as
// Prometheus renames it.
func (ep *endpoint) withLabels(kv ...string) map[string]string {
	l := make(map[string]string, len(ep.labels)+len(kv)/2)
	for k, v := range ep.labels {
		l[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i]
		if ep.target[k] {
			k = "exported_" + k
		}
		l[k] = kv[i+1]
	}
	return l
}

// identity is a workload's mesh identity (its ServiceAccount's).
func (ms *metricsState) identity(d *deployment) string {
	return d.sa + "." + d.ns + ".serviceaccount.identity." + ms.cpNS + ".cluster.local"
}

// clientID is the identity an inbound proxy sees for a caller: none for
// one outside the model or not meshed.
func (ms *metricsState) clientID(d *deployment) string {
	if d == nil || !d.meshed {
		return ""
	}
	return ms.identity(d)
}

// labelsFor is an endpoint's full label set: what the proxy writes for it
// and, over it, the target labels Prometheus attaches to the proxy's pod
// (whose names it also returns).
func (ms *metricsState) labelsFor(k epKey) (map[string]string, map[string]bool) {
	p := k.proxy
	var peer *pod
	if k.dir == gate.Outbound {
		peer = k.peerPod
	} else {
		peer = p
	}
	port := strconv.Itoa(int(peer.dep.port))
	ip := peer.addr.String()
	l := map[string]string{
		"authority":   k.authority,
		"target_addr": ip + ":" + port,
		"target_ip":   ip,
		"target_port": port,
	}
	if k.dir == gate.Inbound {
		l["direction"] = "inbound"
		if k.clientID != "" {
			l["tls"], l["client_id"] = "true", k.clientID
		} else {
			l["tls"], l["no_tls_reason"] = "no_identity", "no_tls_from_remote"
		}
		// The default policy: no Server or route resources in the model.
		l["srv_group"], l["srv_kind"], l["srv_name"], l["srv_port"] = "", "default", "all-unauthenticated", port
		l["route_group"], l["route_kind"], l["route_name"] = "", "default", "default"
		l["authz_group"], l["authz_kind"], l["authz_name"] = "", "default", "all-unauthenticated"
	} else {
		l["direction"] = "outbound"
		if peer.dep.meshed {
			l["tls"], l["server_id"] = "true", ms.identity(peer.dep)
		} else {
			l["tls"], l["no_tls_reason"] = "no_identity", "not_provided_by_service_discovery"
		}
		for k, v := range dstMetricLabels(peer) {
			l["dst_"+k] = v
		}
	}
	// Prometheus keeps its target labels and renames clashing scraped
	// ones exported_* (honor_labels: false).
	tl := targetLabels(p)
	names := make(map[string]bool, len(tl))
	for k, v := range tl {
		if old, ok := l[k]; ok {
			l["exported_"+k] = old
		}
		l[k] = v
		names[k] = true
	}
	return l, names
}

// dstMetricLabels are the metric labels Linkerd's destination service
// gives an outbound proxy for an endpoint pod (GetPodLabels, with the
// service's namespace and name); the proxy writes them dst_*.
func dstMetricLabels(p *pod) map[string]string {
	l := map[string]string{
		"pod":            p.name,
		p.dep.kind:       p.dep.name,
		"serviceaccount": p.dep.sa,
		"namespace":      p.dep.ns,
		"service":        p.dep.name,
	}
	if cp := p.labels["linkerd.io/control-plane-ns"]; cp != "" {
		l["control_plane_ns"] = cp
	}
	if h := p.labels["pod-template-hash"]; h != "" {
		l["pod_template_hash"] = h
	}
	return l
}

// targetLabels are the labels linkerd-viz's Prometheus attaches to every
// series scraped from pod p's proxy: namespace and pod, the owner from
// linkerd.io/proxy-<kind> (deployment=..., k8s_job for jobs), every other
// pod label with its name sanitized (app, track, pod_template_hash,
// rollouts_pod_template_hash, ...), linkerd.io/ labels without the prefix
// (control_plane_ns, workload_ns). Prometheus itself adds job and
// instance.
func targetLabels(p *pod) map[string]string {
	meta := make(map[string]string, len(p.labels))
	for k, v := range p.labels {
		meta[sanitizeLabelName(k)] = v
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]string{"namespace": p.dep.ns, "pod": p.name}
	if v, ok := meta["linkerd_io_proxy_job"]; ok {
		out["k8s_job"] = v
		delete(meta, "linkerd_io_proxy_job")
	}
	// labelmap linkerd_io_proxy_(.+), then labeldrop of the originals.
	for _, k := range keys {
		if rest, ok := strings.CutPrefix(k, "linkerd_io_proxy_"); ok && rest != "" {
			if v, ok := meta[k]; ok {
				out[rest] = v
				delete(meta, k)
			}
		}
	}
	// labelmap linkerd_io_(.+).
	for _, k := range keys {
		if rest, ok := strings.CutPrefix(k, "linkerd_io_"); ok && rest != "" {
			if v, ok := meta[k]; ok {
				out[rest] = v
			}
		}
	}
	// Every pod label through __tmp_pod_label_*, linkerd_io_ prefixes
	// stripped (overriding a plain label of the same name).
	tmp := map[string]string{}
	for _, k := range keys {
		if v, ok := meta[k]; ok {
			tmp[k] = v
		}
	}
	for _, k := range keys {
		if rest, ok := strings.CutPrefix(k, "linkerd_io_"); ok && rest != "" {
			if v, ok := tmp[k]; ok {
				tmp[rest] = v
			}
		}
	}
	for k, v := range tmp {
		if strings.HasPrefix(k, "linkerd_io_") && len(k) > len("linkerd_io_") {
			continue
		}
		out[k] = v
	}
	return out
}

// sanitizeLabelName is how Kubernetes service discovery turns a label
// name into a Prometheus label name.
func sanitizeLabelName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// metricsCollector exposes the series. It describes nothing (an unchecked
// collector): label names differ between series of one metric, as in
// Linkerd (grpc_status, error and status_code are not always there).
type metricsCollector struct{ s *Simulator }

func (metricsCollector) Describe(chan<- *prometheus.Desc) {}

// sample is one series' values copied out under the lock.
type sample struct {
	desc    *prometheus.Desc
	counter float64
	hist    bool
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sm := range c.s.metricsSnapshot() {
		var m prometheus.Metric
		var err error
		if sm.hist {
			m, err = prometheus.NewConstHistogram(sm.desc, sm.count, sm.sum, sm.buckets)
		} else {
			m, err = prometheus.NewConstMetric(sm.desc, prometheus.CounterValue, sm.counter)
		}
		if err == nil {
			ch <- m
		}
	}
}

// metricsSnapshot copies every series' values at one moment.
func (s *Simulator) metricsSnapshot() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prom.snapshotLocked()
}

func (ms *metricsState) snapshotLocked() []sample {
	var out []sample
	for _, ep := range ms.list {
		out = append(out, sample{desc: ep.reqDesc, counter: float64(ep.requests)})
		for _, st := range ep.statuses {
			if st.histDesc != nil {
				b := make(map[float64]uint64, len(latencyBoundsMs))
				var cum uint64
				for i, ub := range latencyBoundsMs {
					cum += st.buckets[i]
					b[ub] = cum
				}
				out = append(out, sample{desc: st.histDesc, hist: true, count: st.count, sum: float64(st.sumMs), buckets: b})
			}
			for _, cl := range st.classes {
				if cl.desc == nil {
					cl.desc = classDesc(ep, st, cl)
				}
				out = append(out, sample{desc: cl.desc, counter: float64(cl.n)})
			}
		}
	}
	return out
}

// metricsHandler serves the series in Prometheus' text format.
func (s *Simulator) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricsCollector{s})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
