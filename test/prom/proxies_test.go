package prom

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Linkerd's response_latency_ms bucket bounds.
var bounds = []float64{1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
	1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000}

// proxies stands for the Linkerd proxies of a few pods as Prometheus sees
// them once it has scraped them all: one /metrics page with every proxy's
// series, each with its pod's labels (the scrape uses honor_labels). The
// test drives requests through it and keeps the truth: the requests it
// tags, with the time each was counted.
type proxies struct {
	mu     sync.Mutex
	series map[string]*series // by label set
	truth  map[string][]request
}

type series struct {
	labels  string // without classification/status or le
	outcome map[[2]string]float64
	buckets []float64 // per bound, not cumulative; +Inf last
	sum     float64
}

type request struct {
	at      time.Time
	failure bool
	ms      float64
}

func newProxies() *proxies {
	return &proxies{series: map[string]*series{}, truth: map[string][]request{}}
}

// inbound is the label set of pod's inbound series.
func inbound(deploy, pod, hash string) string {
	return fmt.Sprintf(`direction="inbound",namespace="shop",deployment=%q,pod=%q,pod_template_hash=%q,tls="true"`, deploy, pod, hash)
}

// serve counts one response on the series with labels, and in the truth
// under tag unless tag is empty.
func (p *proxies) serve(labels, status string, ms float64, tag string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.series[labels]
	if s == nil {
		s = &series{labels: labels, outcome: map[[2]string]float64{}, buckets: make([]float64, len(bounds)+1)}
		p.series[labels] = s
	}
	class := "success"
	if strings.HasPrefix(status, "5") {
		class = "failure"
	}
	s.outcome[[2]string{class, status}]++
	i := sort.SearchFloat64s(bounds, ms) // first bound >= ms
	s.buckets[i]++
	s.sum += ms
	if tag != "" {
		p.truth[tag] = append(p.truth[tag], request{at: time.Now(), failure: class == "failure", ms: ms})
	}
}

// preload makes a series look long-lived: n responses counted before the
// test began (not part of the truth).
func (p *proxies) preload(labels, status string, n float64) {
	p.serve(labels, status, 1, "")
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.series[labels]
	class := "success"
	if strings.HasPrefix(status, "5") {
		class = "failure"
	}
	s.outcome[[2]string{class, status}] += n
	s.buckets[0] += n
}

// restart drops every series whose labels contain pod: its proxy starts
// again from zero.
func (p *proxies) restart(pod string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.series {
		if strings.Contains(k, fmt.Sprintf("pod=%q", pod)) {
			delete(p.series, k)
		}
	}
}

// counted is the truth under tag over [from, to]: requests, failures, and
// the cumulative count at or below each bound (+Inf last).
func (p *proxies) counted(tag string, from, to time.Time) (n, failures float64, cum []float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cum = make([]float64, len(bounds)+1)
	for _, r := range p.truth[tag] {
		if r.at.Before(from) || r.at.After(to) {
			continue
		}
		n++
		if r.failure {
			failures++
		}
		for i := range cum {
			if i == len(bounds) || r.ms <= bounds[i] {
				cum[i]++
			}
		}
	}
	return n, failures, cum
}

func (p *proxies) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.series))
	for k := range p.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# TYPE response_total counter\n")
	for _, k := range keys {
		s := p.series[k]
		for o, n := range s.outcome {
			fmt.Fprintf(&b, "response_total{%s,classification=%q,status_code=%q} %s\n", s.labels, o[0], o[1], num(n))
		}
	}
	b.WriteString("# TYPE response_latency_ms histogram\n")
	for _, k := range keys {
		s := p.series[k]
		cum := 0.0
		for i, n := range s.buckets {
			cum += n
			le := "+Inf"
			if i < len(bounds) {
				le = num(bounds[i])
			}
			fmt.Fprintf(&b, "response_latency_ms_bucket{%s,le=%q} %s\n", s.labels, le, num(cum))
		}
		fmt.Fprintf(&b, "response_latency_ms_sum{%s} %s\n", s.labels, num(s.sum))
		fmt.Fprintf(&b, "response_latency_ms_count{%s} %s\n", s.labels, num(cum))
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
