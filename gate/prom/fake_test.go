package prom

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// fakeProm speaks the part of Prometheus' HTTP API the client uses: GET
// /api/v1/query with a range selector (metric{...}[Ns]) answers the raw
// samples of the metric's series in [time-N, time], and vector(1) a
// vector. It does not evaluate label matchers: the tests check the
// queries themselves.
type fakeProm struct {
	t      *testing.T
	prefix string // path before /api/v1/query

	mu      sync.Mutex
	series  map[string][]*model.SampleStream // by metric name
	queries []string
	methods []string
	header  http.Header // of the last request
	// fail, when set, answers instead of the fake.
	fail http.HandlerFunc
}

func newFakeProm(t *testing.T, prefix string) (*fakeProm, *httptest.Server) {
	f := &fakeProm{t: t, prefix: prefix, series: map[string][]*model.SampleStream{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// add adds a series of metric with labels (name=value pairs) and samples.
func (f *fakeProm) add(metric string, labels []string, samples []model.SamplePair) {
	m := model.Metric{model.MetricNameLabel: model.LabelValue(metric)}
	for i := 0; i+1 < len(labels); i += 2 {
		m[model.LabelName(labels[i])] = model.LabelValue(labels[i+1])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.series[metric] = append(f.series[metric], &model.SampleStream{Metric: m, Values: samples})
}

func (f *fakeProm) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

var rangeQuery = regexp.MustCompile(`^([a-z_]+)\{.*\}\[(\d+)s\]$`)

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.methods = append(f.methods, r.Method)
	f.header = r.Header.Clone()
	if r.URL.Path != f.prefix+"/api/v1/query" {
		f.mu.Unlock()
		f.t.Errorf("request to %s, want %s/api/v1/query", r.URL.Path, f.prefix)
		http.Error(w, "wrong path", http.StatusTeapot)
		return
	}
	if len(body) > 0 {
		f.t.Errorf("request with a body %q: queries must be GETs", body)
	}
	q := r.URL.Query()
	f.queries = append(f.queries, q.Get("query"))
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		fail(w, r)
		return
	}

	ts, err := strconv.ParseFloat(q.Get("time"), 64)
	if err != nil {
		http.Error(w, "bad time", http.StatusBadRequest)
		return
	}
	at := model.Time(math.Round(ts * 1000))
	if q.Get("query") == "vector(1)" {
		writeData(w, "vector", fmt.Sprintf(`[{"metric":{},"value":[%v,"1"]}]`, ts))
		return
	}
	m := rangeQuery.FindStringSubmatch(q.Get("query"))
	if m == nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"status":"error","errorType":"bad_data","error":"fake: unsupported query"}`)
		return
	}
	secs, _ := strconv.ParseInt(m[2], 10, 64)
	since := at.Add(-time.Duration(secs) * time.Second)
	f.mu.Lock()
	var out model.Matrix
	for _, s := range f.series[m[1]] {
		var vals []model.SamplePair
		for _, p := range s.Values {
			if p.Timestamp >= since && p.Timestamp <= at {
				vals = append(vals, p)
			}
		}
		if len(vals) > 0 {
			out = append(out, &model.SampleStream{Metric: s.Metric, Values: vals})
		}
	}
	f.mu.Unlock()
	if out == nil {
		out = model.Matrix{}
	}
	b, err := json.Marshal(out)
	if err != nil {
		f.t.Error(err)
	}
	writeData(w, "matrix", string(b))
}

func writeData(w http.ResponseWriter, typ, result string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":%q,"result":%s}}`, typ, result)
}

// ramp is a counter's samples every step in [start, end]: value(t) for
// each sample time t.
func ramp(start, end time.Time, step time.Duration, value func(t time.Time) float64) []model.SamplePair {
	var v []model.SamplePair
	for t := start; !t.After(end); t = t.Add(step) {
		v = append(v, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: model.SampleValue(value(t))})
	}
	return v
}

// linear is a counter at base + rate/s since t0.
func linear(t0 time.Time, base, rate float64) func(time.Time) float64 {
	return func(t time.Time) float64 { return base + rate*t.Sub(t0).Seconds() }
}

func contains(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}
