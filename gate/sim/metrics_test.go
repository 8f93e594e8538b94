package sim

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"

	"github.com/tapgate/tapgate/gate"
)

// series is one scraped series: a counter, or a histogram's buckets.
type series struct {
	name    string
	labels  map[string]string
	value   float64      // counters
	buckets [][2]float64 // histograms: cumulative {le, count}, +Inf last
	count   uint64
	sum     float64
}

func (s series) key() string {
	names := make([]string, 0, len(s.labels))
	for k := range s.labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(s.name)
	for _, k := range names {
		fmt.Fprintf(&b, ",%s=%q", k, s.labels[k])
	}
	return b.String()
}

// scrape GETs /metrics and parses it as Prometheus would (legacy names).
func scrape(t testing.TB, base string) []series {
	t.Helper()
	ss, err := scrapeErr(base)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func scrapeErr(base string) ([]series, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("GET /metrics: Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(pmodel.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	var out []series
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			s := series{name: name, labels: map[string]string{}}
			for _, lp := range m.GetLabel() {
				if _, dup := s.labels[lp.GetName()]; dup {
					return nil, fmt.Errorf("%s: label %s twice", name, lp.GetName())
				}
				s.labels[lp.GetName()] = lp.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					s.buckets = append(s.buckets, [2]float64{b.GetUpperBound(), float64(b.GetCumulativeCount())})
				}
				s.count, s.sum = h.GetSampleCount(), h.GetSampleSum()
			default:
				return nil, fmt.Errorf("%s: unexpected type %v", name, f.GetType())
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// runToEnd runs a fast-forward simulation of sc for dur with no tap at
// all, serving it, and returns it once the clock has stopped.
func runToEnd(t testing.TB, sc *Scenario, dur time.Duration) (*Simulator, string) {
	t.Helper()
	s, base := server(t, sc, Options{FastForward: true, Duration: dur, LatencyCap: 1 << 30}, false)
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, base
}

const kindsScenario = `
name: kinds
seed: 9
controlPlaneNamespace: linkerd
namespaces:
- name: data
  deployments:
  - name: db
    kind: statefulset
    pods: 2
    labels: {app.kubernetes.io/name: db}
    serviceAccount: db
    rps: 40
    routes: [{method: POST, path: /query}]
    errors: {"500": 5%, reset: 2%}
    latency: {p50: 3ms, p99: 900ms}
  - name: agent
    kind: daemonset
    pods: 2
    labels: {app: agent}
    rps: 10
    routes: [{path: /metrics}]
    errors: {"429": 10%}
    callers:
    - to: db
      rps: 20
    - to: legacy
      rps: 5
  - name: legacy
    pods: 1
    meshed: false
    labels: {app: legacy}
    rps: 0
    routes: [{path: /old}]
    callers:
    - to: web
      rps: 8
  - name: web
    pods: 2
    labels: {app: web, rollouts-pod-template-hash: 6f9c}
    serviceAccount: web
    rps: 30
    routes: [{path: /}]
    phases:
    - from: 5s
      errors: {"503": 20%}
`

// perPod sums scraped series by direction and pod.
type podAgg struct {
	requests, responses, failures float64
	latCount                      uint64
	latSum                        float64
	buckets                       map[float64]float64
	status                        map[string]float64
	grpc                          map[string]float64
}

func aggregate(ss []series) map[string]*podAgg {
	out := map[string]*podAgg{}
	get := func(s series) *podAgg {
		k := s.labels["direction"] + " " + s.labels["namespace"] + "/" + s.labels["pod"]
		a := out[k]
		if a == nil {
			a = &podAgg{buckets: map[float64]float64{}, status: map[string]float64{}, grpc: map[string]float64{}}
			out[k] = a
		}
		return a
	}
	for _, s := range ss {
		a := get(s)
		switch s.name {
		case metricRequests:
			a.requests += s.value
		case metricResponses:
			a.responses += s.value
			if s.labels["classification"] == "failure" {
				a.failures += s.value
			}
			if c, ok := s.labels["status_code"]; ok {
				a.status[c] += s.value
			}
			if g, ok := s.labels["grpc_status"]; ok {
				a.grpc[g] += s.value
			}
		case metricLatency:
			a.latCount += s.count
			a.latSum += s.sum
			for _, b := range s.buckets {
				a.buckets[b[0]] += b[1]
			}
		}
	}
	return out
}

// TestMetricsShape checks names, types, label sets and bucket bounds
// against Linkerd's, for every kind of workload and traffic.
func TestMetricsShape(t *testing.T) {
	grpc, err := Load("../../examples/scenarios/grpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sc   *Scenario
	}{
		{"demo", DemoScenario()},
		{"grpc", grpc},
		{"kinds", mustParse(t, kindsScenario)},
	}
	wantBounds := []float64{1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000, math.Inf(1)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := runToEnd(t, tt.sc, 20*time.Second)
			pods := map[string]PodInfo{}
			for _, p := range s.Pods() {
				pods[p.Namespace+"/"+p.Name] = p
			}
			ss := scrape(t, base)
			if len(ss) == 0 {
				t.Fatal("no series")
			}
			// No two series collide (the handler would drop one).
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(metricsCollector{s})
			if _, err := reg.Gather(); err != nil {
				t.Fatalf("gather: %v", err)
			}
			// The base labels (without the response ones) of every series of
			// one endpoint must be the same set, so every endpoint's
			// request_total names exactly one such set.
			base2names := map[string]bool{}
			for _, x := range ss {
				if x.name == metricRequests {
					base2names[baseKey(x)] = true
				}
			}
			for _, x := range ss {
				l := x.labels
				if x.name != metricRequests && x.name != metricResponses && x.name != metricLatency {
					t.Fatalf("unexpected metric %s", x.name)
				}
				if !base2names[baseKey(x)] {
					t.Fatalf("%s: no request_total with its endpoint labels", x.key())
				}
				p, ok := pods[l["namespace"]+"/"+l["pod"]]
				if !ok || !p.Meshed {
					t.Fatalf("%s: pod is not a meshed pod of the scenario", x.key())
				}
				kind, owner, _ := strings.Cut(p.Owner, "/")
				if l[kind] != owner {
					t.Errorf("%s: want %s=%q", x.key(), kind, owner)
				}
				if h := p.Labels["pod-template-hash"]; l["pod_template_hash"] != h {
					t.Errorf("%s: pod_template_hash %q, pod's %q", x.key(), l["pod_template_hash"], h)
				}
				for k, v := range p.Labels {
					name := sanitizeLabelName(strings.TrimPrefix(k, "linkerd.io/"))
					if strings.HasPrefix(k, "linkerd.io/proxy-") {
						continue
					}
					if l[name] != v {
						t.Errorf("%s: pod label %s=%q not there as %s", x.key(), k, v, name)
					}
				}
				for _, k := range []string{"authority", "tls", "target_addr", "target_ip", "target_port", "control_plane_ns", "workload_ns"} {
					if l[k] == "" {
						t.Errorf("%s: no %s label", x.key(), k)
					}
				}
				for _, k := range []string{"job", "instance", "replicaset"} {
					if _, ok := l[k]; ok {
						t.Errorf("%s: label %s is not Linkerd's", x.key(), k)
					}
				}
				switch l["direction"] {
				case "inbound":
					if l["target_ip"] != p.IP.String() {
						t.Errorf("%s: inbound target_ip is not the pod's %v", x.key(), p.IP)
					}
					for k := range l {
						if strings.HasPrefix(k, "dst_") {
							t.Errorf("%s: inbound series with %s", x.key(), k)
						}
					}
					if (l["tls"] == "true") != (l["client_id"] != "") || (l["tls"] == "no_identity") != (l["no_tls_reason"] != "") {
						t.Errorf("%s: tls labels", x.key())
					}
				case "outbound":
					dst, ok := pods[l["dst_namespace"]+"/"+l["dst_pod"]]
					if !ok {
						t.Fatalf("%s: dst_pod is not a pod of the scenario", x.key())
					}
					dk, downer, _ := strings.Cut(dst.Owner, "/")
					if l["dst_"+dk] != downer || l["dst_serviceaccount"] == "" || l["dst_service"] != downer || l["target_ip"] != dst.IP.String() {
						t.Errorf("%s: dst labels of %+v", x.key(), dst)
					}
					if wantTLS := map[bool]string{true: "true", false: "no_identity"}[dst.Meshed]; l["tls"] != wantTLS || dst.Meshed != (l["server_id"] != "") {
						t.Errorf("%s: tls to a meshed=%v pod", x.key(), dst.Meshed)
					}
				default:
					t.Fatalf("%s: direction", x.key())
				}
				switch x.name {
				case metricRequests:
					for _, k := range []string{"status_code", "classification", "grpc_status", "error"} {
						if _, ok := l[k]; ok {
							t.Errorf("%s: request_total with %s", x.key(), k)
						}
					}
				case metricResponses:
					code, hasCode := l["status_code"]
					n, _ := strconv.Atoi(code)
					g, hasG := l["grpc_status"]
					e, hasE := l["error"]
					if hasE && (hasG || e != "h2(INTERNAL_ERROR)") || !hasCode && !hasE {
						t.Errorf("%s: response labels", x.key())
					}
					fail := n >= 500 || hasG && g != "0" || hasE
					if want := map[bool]string{true: "failure", false: "success"}[fail]; l["classification"] != want {
						t.Errorf("%s: classification, want %s", x.key(), want)
					}
				case metricLatency:
					if _, ok := l["status_code"]; !ok {
						t.Errorf("%s: latency without status_code", x.key())
					}
					if _, ok := l["classification"]; ok {
						t.Errorf("%s: latency with classification", x.key())
					}
					var got []float64
					prev := 0.0
					for _, b := range x.buckets {
						got = append(got, b[0])
						if b[1] < prev {
							t.Errorf("%s: buckets not cumulative", x.key())
						}
						prev = b[1]
					}
					if !slices.Equal(got, wantBounds) {
						t.Fatalf("%s: bucket bounds %v, want Linkerd's %v", x.key(), got, wantBounds)
					}
					if uint64(prev) != x.count {
						t.Errorf("%s: +Inf bucket %v, count %d", x.key(), prev, x.count)
					}
				}
			}
		})
	}
}

// baseKey is a series' identity without its response labels.
func baseKey(x series) string {
	b := series{name: "", labels: map[string]string{}}
	for k, v := range x.labels {
		switch k {
		case "status_code", "classification", "grpc_status", "error", "le":
			continue
		}
		b.labels[k] = v
	}
	return b.key()
}

// TestMetricsMatchTruth: with no tap ever open, the counters count every
// request, equal to the ground truth per pod, status, gRPC code and
// latency bucket.
func TestMetricsMatchTruth(t *testing.T) {
	grpc, err := Load("../../examples/scenarios/grpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sc   *Scenario
		dur  time.Duration
	}{
		{"demo", DemoScenario(), 30 * time.Second},
		{"grpc", grpc, 60 * time.Second},
		{"kinds", mustParse(t, kindsScenario), 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := runToEnd(t, tt.sc, tt.dur)
			truth := s.Truth()
			agg := aggregate(scrape(t, base))
			meshed := map[string]bool{}
			for _, p := range s.Pods() {
				meshed[p.Namespace+"/"+p.Name] = p.Meshed
			}
			checked := 0
			check := func(key string, a *podAgg, c *Counts, latencies bool) {
				t.Helper()
				if c == nil || c.Started == 0 {
					t.Fatalf("%s: no traffic in the truth", key)
				}
				checked++
				if a == nil {
					t.Fatalf("%s: no series", key)
				}
				if uint64(a.requests) != c.Started || uint64(a.responses) != c.Requests || uint64(a.failures) != c.Failures {
					t.Errorf("%s: metrics %v requests / %v responses / %v failures; truth %d / %d / %d",
						key, a.requests, a.responses, a.failures, c.Started, c.Requests, c.Failures)
				}
				var withHeaders uint64
				for code, n := range c.Status {
					withHeaders += n
					if uint64(a.status[strconv.Itoa(int(code))]) != n {
						t.Errorf("%s: status %d: metrics %v, truth %d", key, code, a.status[strconv.Itoa(int(code))], n)
					}
				}
				for code, n := range c.GRPC {
					if uint64(a.grpc[strconv.Itoa(int(code))]) != n {
						t.Errorf("%s: grpc_status %d: metrics %v, truth %d", key, code, a.grpc[strconv.Itoa(int(code))], n)
					}
				}
				if a.latCount != withHeaders {
					t.Errorf("%s: latency count %d, %d responses with headers", key, a.latCount, withHeaders)
				}
				if !latencies {
					return
				}
				if uint64(len(c.Latencies)) != withHeaders {
					t.Fatalf("latency cap reached")
				}
				want := map[float64]float64{}
				var sum float64
				for _, d := range c.Latencies {
					ms := math.Floor(float64(d) / float64(time.Millisecond))
					sum += ms
					for _, ub := range append(latencyBoundsMs[:], math.Inf(1)) {
						if ms <= ub {
							want[ub]++
						}
					}
				}
				if sum != a.latSum {
					t.Errorf("%s: latency sum %v ms, truth %v", key, a.latSum, sum)
				}
				for ub, n := range want {
					if a.buckets[ub] != n {
						t.Errorf("%s: bucket le=%v: %v, truth %v", key, ub, a.buckets[ub], n)
					}
				}
			}
			for key, c := range truth.Pods {
				a := agg["inbound "+key]
				if !meshed[key] {
					if a != nil {
						t.Errorf("%s: unmeshed pod has series", key)
					}
					continue
				}
				check("inbound "+key, a, c, true)
			}
			for key, c := range truth.CallerPods {
				a := agg["outbound "+key]
				if !meshed[key] {
					if a != nil {
						t.Errorf("%s: unmeshed caller has outbound series", key)
					}
					continue
				}
				check("outbound "+key, a, c, false)
			}
			if checked == 0 || len(agg) != checked {
				t.Errorf("checked %d pods, %d have series", checked, len(agg))
			}
		})
	}
}

// TestMetricsBeforeTraffic: every series is there at zero before the
// clock starts, so Prometheus sees the counters' first increase.
func TestMetricsBeforeTraffic(t *testing.T) {
	s, base := server(t, DemoScenario(), ffOptions(5*time.Second), false)
	before := scrape(t, base)
	if len(before) == 0 {
		t.Fatal("no series before traffic")
	}
	for _, x := range before {
		if x.value != 0 || x.count != 0 {
			t.Fatalf("%s = %v before traffic", x.key(), x.value)
		}
	}
	// AdoptPods renames the series.
	ids := []PodIdentity{
		{Name: "checkout-abc-1", IP: netip.MustParseAddr("10.9.0.1")},
		{Name: "checkout-abc-2", IP: netip.MustParseAddr("10.9.0.2")},
		{Name: "checkout-abc-3", IP: netip.MustParseAddr("10.9.0.3")},
	}
	if err := s.AdoptPods("shop", "checkout", "abc", ids); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, base)
	if len(after) != len(before) {
		t.Fatalf("%d series after AdoptPods, %d before", len(after), len(before))
	}
	n := 0
	for _, x := range after {
		if x.labels["deployment"] == "checkout" && x.labels["direction"] == "inbound" {
			if !strings.HasPrefix(x.labels["pod"], "checkout-abc-") || x.labels["pod_template_hash"] != "abc" || !strings.HasPrefix(x.labels["target_ip"], "10.9.0.") {
				t.Fatalf("after AdoptPods: %s", x.key())
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no inbound checkout series")
	}
}

// TestMetricsCountUntappedTraffic: with maxRps 100 over 3 pods at 1500 rps
// tap sees 6.6% of the requests; the counters count all of them.
func TestMetricsCountUntappedTraffic(t *testing.T) {
	sc, err := Load("../../examples/scenarios/high-rate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const seconds = 10
	s, base := server(t, sc, Options{FastForward: true, StartAfterTaps: 1, Duration: seconds * time.Second}, true)
	res := tapTarget(t, base, gate.Target{Name: "api", Resource: deploy("api"), MaxRPS: 100}, "shop")
	if res.status != 200 || res.readErr != nil || res.apiError != "" {
		t.Fatalf("tap: %d %v %q", res.status, res.readErr, res.apiError)
	}
	tapped := 0
	for _, e := range res.events {
		if e.Kind == gate.ResponseEnd {
			tapped++
		}
	}
	<-s.Done()
	truth := s.Truth().Deployments["shop/api"]
	var requests, responses, failures float64
	for _, x := range scrape(t, base) {
		switch x.name {
		case metricRequests:
			requests += x.value
		case metricResponses:
			responses += x.value
			if x.labels["classification"] == "failure" {
				failures += x.value
			}
		}
	}
	if uint64(requests) != truth.Started || uint64(responses) != truth.Requests || uint64(failures) != truth.Failures {
		t.Errorf("metrics %v / %v / %v, truth %d / %d / %d", requests, responses, failures, truth.Started, truth.Requests, truth.Failures)
	}
	if r := requests / seconds; r < 1400 || r > 1600 {
		t.Errorf("%.0f rps counted, want ~1500", r)
	}
	if want := 3 * 33 * seconds; tapped > want || tapped < want-3*3 {
		t.Errorf("tap saw %d requests, want ~%d (33 a pod a second)", tapped, want)
	}
	if cov := float64(tapped) / responses; cov < 0.06 || cov > 0.07 {
		t.Errorf("volume coverage %.4f, want ~0.066", cov)
	}
	if rate := failures / responses; rate < 0.007 || rate > 0.013 {
		t.Errorf("failure rate %.4f, want ~1%%", rate)
	}
}

// TestMetricsScrapeUnderLoad scrapes concurrently while the simulation
// runs flat out with a tap open: counters never decrease, the set of
// series never changes, and the counters equal the truth taken at the
// same moment.
func TestMetricsScrapeUnderLoad(t *testing.T) {
	sc, err := Load("../../examples/scenarios/high-rate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, base := server(t, sc, Options{FastForward: true, StartAfterTaps: 1, Duration: 20 * time.Second}, true)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	scrapes := make([]int, 3)
	for w := range scrapes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[string]float64{}
			nseries := -1
			for i := 0; ; i++ {
				ended := false
				select {
				case <-s.Done():
					ended = true
				default:
				}
				ss, err := scrapeErr(base)
				if err != nil {
					errs <- err
					return
				}
				scrapes[w]++
				if nseries >= 0 && len(ss) != nseries {
					errs <- fmt.Errorf("scrape %d: %d series, %d before", i, len(ss), nseries)
					return
				}
				nseries = len(ss)
				for _, x := range ss {
					v := x.value + float64(x.count)
					if v < last[x.key()] {
						errs <- fmt.Errorf("scrape %d: %s went from %v to %v", i, x.key(), last[x.key()], v)
						return
					}
					last[x.key()] = v
				}
				if ended {
					return
				}
			}
		}()
	}
	// Meanwhile, the counters and the truth agree at every moment.
	moments := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-s.Done():
				return
			case <-time.After(2 * time.Millisecond):
			}
			s.mu.Lock()
			pods := cloneCounts(s.truth.pods)
			got := map[string][3]uint64{}
			for _, ep := range s.prom.list {
				k := ep.labels["namespace"] + "/" + ep.labels["pod"]
				g := got[k]
				g[0] += ep.requests
				for _, st := range ep.statuses {
					for _, c := range st.classes {
						g[1] += c.n
						if c.failure {
							g[2] += c.n
						}
					}
				}
				got[k] = g
			}
			s.mu.Unlock()
			for k, c := range pods {
				if g := got[k]; g != [3]uint64{c.Started, c.Requests, c.Failures} {
					errs <- fmt.Errorf("%s: metrics %v, truth %d/%d/%d at the same moment", k, g, c.Started, c.Requests, c.Failures)
					return
				}
			}
			moments++
		}
	}()
	res := tapTarget(t, base, gate.Target{Name: "api", Resource: deploy("api"), MaxRPS: 100}, "shop")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if res.status != 200 || len(res.events) == 0 {
		t.Errorf("tap during the scrapes: %d, %d events", res.status, len(res.events))
	}
	t.Logf("scrapes %v, same-moment checks %d", scrapes, moments)
}

// TestErrorsLateInSecond: the errors fall only where the option says, at
// the overall share the errors say; a phase inherits the option or
// changes it.
func TestErrorsLateInSecond(t *testing.T) {
	tests := []struct {
		name  string
		late  string // errorsLateInSecond, "" for none
		phase string // a phase from 30s
		share [2]float64
	}{
		{"last half", "0.5", "", [2]float64{0.5, 0.5}},
		{"last quarter", "25%", "", [2]float64{0.25, 0.25}},
		{"whole second", "1", "", [2]float64{1, 1}},
		{"absent", "", "", [2]float64{1, 1}},
		{"phase spreads them", "0.5", "errorsLateInSecond: 1", [2]float64{0.5, 1}},
		{"phase inherits it", "0.5", "errors: {\"503\": 10%}", [2]float64{0.5, 0.5}},
		{"phase sets it", "", "errorsLateInSecond: 0.2", [2]float64{1, 0.2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			y := "name: late\nseed: 3\nnamespaces:\n- name: ns\n  deployments:\n  - name: one\n    pods: 1\n    rps: 400\n    routes: [{path: /a}]\n    errors: {\"503\": 10%}\n    latency: {constant: 2ms}\n"
			if tt.late != "" {
				y += "    errorsLateInSecond: " + tt.late + "\n"
			}
			if tt.phase != "" {
				y += "    phases:\n    - from: 30s\n      " + tt.phase + "\n"
			}
			s, err := New(mustParse(t, y), Options{FastForward: true, Duration: 60 * time.Second, Record: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Per half of the run: requests and failures early and late in
			// their second (late: the last `share` of it, or its last half
			// when the errors may fall anywhere).
			var n, fail [2][2]int
			for _, r := range s.Truth().Records["ns/"+s.m.pods[0].name] {
				h := 0
				if r.Start >= 30*time.Second {
					h = 1
				}
				share := tt.share[h]
				if share == 1 {
					share = 0.5
				}
				part := 0
				if frac := float64(r.Start%time.Second) / float64(time.Second); frac >= 1-share {
					part = 1
				}
				n[h][part]++
				if r.Failed {
					fail[h][part]++
				}
			}
			for h := 0; h < 2; h++ {
				all := float64(fail[h][0]+fail[h][1]) / float64(n[h][0]+n[h][1])
				if all < 0.085 || all > 0.115 {
					t.Errorf("half %d: failure share %.4f, want ~10%% overall", h, all)
				}
				early, late := float64(fail[h][0])/float64(n[h][0]), float64(fail[h][1])/float64(n[h][1])
				if tt.share[h] < 1 {
					if fail[h][0] != 0 {
						t.Errorf("half %d: %d failures before the last %v of their second", h, fail[h][0], tt.share[h])
					}
					if want := 0.1 / tt.share[h]; math.Abs(late-want) > 0.2*want {
						t.Errorf("half %d: failure share %.4f late in the second, want ~%.3f", h, late, want)
					}
				} else if math.Abs(early-0.1) > 0.025 || math.Abs(late-0.1) > 0.025 {
					t.Errorf("half %d: failure shares %.4f early, %.4f late in the second, want ~10%% both", h, early, late)
				}
			}
		})
	}
}

// TestBiasedScenarioHidesErrorsFromTap: biased.yaml with the tap opened as
// the clock starts: tap sees no failure at all, the counters see 2%.
func TestBiasedScenarioHidesErrorsFromTap(t *testing.T) {
	sc, err := Load("../../examples/scenarios/biased.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, base := server(t, sc, Options{FastForward: true, StartAfterTaps: 1, Duration: 20 * time.Second}, true)
	res := tapTarget(t, base, gate.Target{Name: "api", Resource: deploy("api"), MaxRPS: 100}, "shop")
	tapped, tappedFail := 0, 0
	for _, e := range res.events {
		if e.Kind == gate.ResponseInit && e.HTTPStatus >= 500 {
			tappedFail++
		}
		if e.Kind == gate.ResponseEnd {
			tapped++
		}
	}
	<-s.Done()
	var responses, failures float64
	for _, x := range scrape(t, base) {
		if x.name == metricResponses {
			responses += x.value
			if x.labels["classification"] == "failure" {
				failures += x.value
			}
		}
	}
	if tapped < 1500 || tappedFail != 0 {
		t.Errorf("tap saw %d failures in %d requests, want none", tappedFail, tapped)
	}
	if rate := failures / responses; rate < 0.017 || rate > 0.023 {
		t.Errorf("the counters' failure rate %.4f, want ~2%%", rate)
	}
}

func TestLatencyBuckets(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want float64 // the bucket's bound
	}{
		{0, 1}, {999 * time.Microsecond, 1}, {time.Millisecond, 1}, {1999 * time.Microsecond, 1},
		{2 * time.Millisecond, 2}, {5999 * time.Microsecond, 5}, {6 * time.Millisecond, 10}, {10 * time.Millisecond, 10},
		{10*time.Millisecond + 999*time.Microsecond, 10}, {11 * time.Millisecond, 20},
		{50 * time.Second, 50000}, {50*time.Second + time.Millisecond, math.Inf(1)}, {-time.Second, 1},
	}
	for _, tt := range tests {
		i := bucketOf(latencyMs(tt.d))
		got := math.Inf(1)
		if i < len(latencyBoundsMs) {
			got = latencyBoundsMs[i]
		}
		if got != tt.want {
			t.Errorf("%v: bucket le=%v, want le=%v", tt.d, got, tt.want)
		}
	}
}

func TestTargetLabels(t *testing.T) {
	tests := []struct {
		name   string
		kind   string
		labels map[string]string
		want   map[string]string
		absent []string
	}{
		{"deployment", "deployment", map[string]string{
			"app": "web", "rollouts-pod-template-hash": "6f9c", "pod-template-hash": "abc",
			"linkerd.io/control-plane-ns": "linkerd", "linkerd.io/proxy-deployment": "web", "linkerd.io/workload-ns": "ns",
		}, map[string]string{
			"namespace": "ns", "pod": "p", "app": "web", "rollouts_pod_template_hash": "6f9c", "pod_template_hash": "abc",
			"control_plane_ns": "linkerd", "deployment": "web", "workload_ns": "ns",
		}, []string{"proxy_deployment", "linkerd_io_proxy_deployment", "linkerd_io_control_plane_ns"}},
		{"job", "deployment", map[string]string{"linkerd.io/proxy-job": "batch", "app.kubernetes.io/name": "x"},
			map[string]string{"k8s_job": "batch", "app_kubernetes_io_name": "x"}, []string{"job", "proxy_job"}},
		{"statefulset", "statefulset", map[string]string{"linkerd.io/proxy-statefulset": "db"},
			map[string]string{"statefulset": "db"}, []string{"pod_template_hash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pod{dep: &deployment{ns: "ns", name: "x", kind: tt.kind}, name: "p", labels: tt.labels}
			got := targetLabels(p)
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s present: %v", k, got)
				}
			}
		})
	}
}
