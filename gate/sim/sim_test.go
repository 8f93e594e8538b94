package sim

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

func TestScenarioFiles(t *testing.T) {
	files, err := filepath.Glob("../../examples/scenarios/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("example scenarios: %v %v", files, err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	ex, err := os.ReadFile("../../examples/scenarios/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ex, demoYAML) {
		t.Error("examples/scenarios/demo.yaml and gate/sim/scenarios/demo.yaml differ: copy one over the other")
	}
	d := DemoScenario()
	if d.Namespaces[0].Name != "shop" || d.Namespaces[0].Deployments[0].Name != "checkout" {
		t.Errorf("demo scenario: unexpected shape %+v", d.Namespaces[0])
	}
}

func TestParseErrors(t *testing.T) {
	const head = "name: x\nnamespaces:\n- name: shop\n  deployments:\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", head + "  - name: web\n    pods: 1\n    rsp: 3\n    routes: [{path: /}]\n", `test.yaml:7: unknown key "rsp" in a deployment`},
		{"duplicate key", head + "  - name: web\n    pods: 1\n    pods: 2\n    routes: [{path: /}]\n", `test.yaml:7: mapping key "pods" already defined at line 6`},
		{"bare duration", head + "  - name: web\n    routes: [{path: /}]\n    latency: {constant: 5}\n", `test.yaml:7: "5" is not a duration`},
		{"bad error key", head + "  - name: web\n    routes: [{path: /}]\n    errors: {\"700\": 0.1}\n", `test.yaml:7: error key "700" is not an HTTP status`},
		{"grpc code on http", head + "  - name: web\n    routes: [{path: /}]\n    errors: {UNAVAILABLE: 1%}\n", `test.yaml:7: gRPC code "UNAVAILABLE" given but no route has grpc: true`},
		{"probabilities", head + "  - name: web\n    routes: [{path: /}]\n    errors: {\"500\": 0.7, \"503\": 60%}\n", `test.yaml:7: error probabilities add up to 1.3`},
		{"p99 below p50", head + "  - name: web\n    routes: [{path: /}]\n    latency: {p50: 20ms, p99: 10ms}\n", `test.yaml:7: latency p99 (10ms) is below p50 (20ms)`},
		{"unknown caller", head + "  - name: web\n    routes: [{path: /}]\n    callers:\n    - to: nope\n", `test.yaml:8: caller target "nope" is not a deployment`},
		{"no routes", head + "  - name: web\n    pods: 1\n", `test.yaml:5: deployment "web" has no routes`},
		{"phase order", head + "  - name: web\n    routes: [{path: /}]\n    phases:\n    - from: 20s\n    - from: 10s\n", `test.yaml:9: phases must be in increasing order`},
		{"empty", "", "empty scenario"},
		{"late zero", head + "  - name: web\n    routes: [{path: /}]\n    errorsLateInSecond: 0\n", `test.yaml:7: errorsLateInSecond must be above 0 and at most 1`},
		{"late above 1", head + "  - name: web\n    routes: [{path: /}]\n    errorsLateInSecond: 150%\n", `test.yaml:7: errorsLateInSecond must be above 0 and at most 1 (a share of each second, e.g. 0.5 or "50%"; 1 spreads the errors evenly), got 1.5`},
		{"late negative", head + "  - name: web\n    routes: [{path: /}]\n    phases:\n    - from: 1s\n      errorsLateInSecond: -0.5\n", `test.yaml:9: errorsLateInSecond must be above 0`},
		{"late not a ratio", head + "  - name: web\n    routes: [{path: /}]\n    errorsLateInSecond: half\n", `test.yaml:7: "half" is not a probability`},
		{"late too small", head + "  - name: web\n    routes: [{path: /}]\n    errors: {\"503\": 20%, \"500\": 10%}\n    errorsLateInSecond: 0.25\n", `test.yaml:8: errorsLateInSecond 0.25 cannot hold errors that add up to 0.3 of all requests: they must fit in the last 25% of each second (raise errorsLateInSecond to at least 0.3 or lower the errors)`},
		{"phase errors too many", head + "  - name: web\n    routes: [{path: /}]\n    errors: {\"503\": 1%}\n    errorsLateInSecond: 0.1\n    phases:\n    - from: 10s\n      errors: {\"503\": 50%}\n", `test.yaml:11: errorsLateInSecond 0.1 cannot hold errors that add up to 0.5`},
		{"phase late too small", head + "  - name: web\n    routes: [{path: /}]\n    errors: {\"503\": 30%}\n    phases:\n    - from: 10s\n      errorsLateInSecond: 0.2\n", `test.yaml:10: errorsLateInSecond 0.2 cannot hold errors that add up to 0.3`},
		{"late key case", head + "  - name: web\n    routes: [{path: /}]\n    errorslateinsecond: 0.5\n", `test.yaml:7: unknown key "errorslateinsecond" in a deployment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "test.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func collect(t *testing.T, sc *Scenario, n int) []gate.Event {
	t.Helper()
	s, err := New(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []gate.Event
	got, err := s.Generate(n, func(e *gate.Event) { out = append(out, *e) })
	if err != nil || got != n {
		t.Fatalf("Generate = %d, %v; want %d", got, err, n)
	}
	return out
}

func TestGenerateDeterministic(t *testing.T) {
	a := collect(t, DemoScenario(), 3000)
	b := collect(t, DemoScenario(), 3000)
	for i := range a {
		if a[i].At != b[i].At || a[i].ID != b[i].ID || a[i].Path != b[i].Path || a[i].SinceRequestInit != b[i].SinceRequestInit {
			t.Fatalf("event %d differs between runs with the same seed:\n%+v\n%+v", i, a[i], b[i])
		}
	}
	sc := DemoScenario()
	sc.Seed++
	c := collect(t, sc, 3000)
	same := 0
	for i := range a {
		if a[i].At == c[i].At {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("a different seed produced the same traffic")
	}
}

// TestGenerateModel checks the demo's traffic has the shape its comments
// promise, from the events alone (deterministic: fixed seed).
func TestGenerateModel(t *testing.T) {
	type agg struct {
		n, fail, resets int
		lat             []time.Duration
	}
	by := map[string]*agg{}
	var last time.Duration
	evs := collect(t, DemoScenario(), 200000)
	for i := range evs {
		e := &evs[i]
		if e.At < last {
			t.Fatalf("event %d at %v is before the previous one at %v", i, e.At, last)
		}
		last = e.At
		if e.Direction != gate.Inbound {
			continue
		}
		d := e.Destination.Labels["deployment"]
		a := by[d]
		if a == nil {
			a = &agg{}
			by[d] = a
		}
		switch e.Kind {
		case gate.ResponseInit:
			a.lat = append(a.lat, e.SinceRequestInit)
			if e.HTTPStatus >= 500 {
				a.fail++
			}
		case gate.ResponseEnd:
			a.n++
			if e.EOS.Kind == gate.EOSReset {
				a.fail++
				a.resets++
			}
		}
	}
	if _, ok := by["legacy-batch"]; ok {
		t.Error("an unmeshed deployment emitted tap events")
	}
	p99 := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[int(math.Ceil(0.99*float64(len(d))))-1]
	}
	checks := []struct {
		dep              string
		minRate, maxRate float64
		minP99, maxP99   time.Duration
	}{
		{"checkout", 0.0003, 0.003, 100 * time.Millisecond, 145 * time.Millisecond},
		{"checkout-canary", 0.07, 0.11, 230 * time.Millisecond, 340 * time.Millisecond},
	}
	for _, c := range checks {
		a := by[c.dep]
		if a == nil || a.n < 1000 {
			t.Fatalf("%s: too few requests: %+v", c.dep, a)
		}
		rate := float64(a.fail) / float64(a.n)
		if rate < c.minRate || rate > c.maxRate {
			t.Errorf("%s: failure rate %.4f outside [%v, %v]", c.dep, rate, c.minRate, c.maxRate)
		}
		if p := p99(a.lat); p < c.minP99 || p > c.maxP99 {
			t.Errorf("%s: p99 %v outside [%v, %v]", c.dep, p, c.minP99, c.maxP99)
		}
	}
	if by["checkout-canary"].resets == 0 {
		t.Error("canary: no resets")
	}
	// The stable deployment gets ~80 rps, its canary ~20 rps.
	if r := float64(by["checkout"].n) / float64(by["checkout-canary"].n); r < 3.4 || r > 4.6 {
		t.Errorf("checkout/canary request ratio %.2f, want ~4", r)
	}
}

func TestGRPCScenarioPhases(t *testing.T) {
	sc, err := Load("../../examples/scenarios/grpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Count UNAVAILABLE per 10s bucket of emoji's inbound responses.
	total, unavailable := map[int]int{}, map[int]int{}
	for _, e := range collect(t, sc, 30000) {
		if e.Kind != gate.ResponseEnd || e.Direction != gate.Inbound || e.Destination.Labels["deployment"] != "emoji" {
			continue
		}
		b := int(e.At / (10 * time.Second))
		total[b]++
		if e.EOS.Kind == gate.EOSGRPCStatus && e.EOS.Code == 14 {
			unavailable[b]++
			if len(e.Trailers) == 0 || e.Trailers[0] != (gate.Header{Name: "grpc-status", Value: "14"}) {
				t.Fatalf("UNAVAILABLE without grpc-status trailer: %+v", e.Trailers)
			}
		}
	}
	for b := 0; b < 6; b++ {
		rate := float64(unavailable[b]) / float64(total[b])
		burst := b == 2 || b == 3
		if burst && (rate < 0.2 || rate > 0.3) || !burst && rate > 0.01 {
			t.Errorf("bucket %ds: UNAVAILABLE rate %.3f (burst phase: %v)", b*10, rate, burst)
		}
	}
}

func TestPerPodLimit(t *testing.T) {
	tests := []struct {
		maxRps float32
		pods   int
		want   uint32
	}{
		{0, 1, 100}, {0, 3, 33}, {100, 3, 33}, {2, 3, 1}, {10, 4, 2}, {1.5, 1, 1}, {7, 2, 3}, {1000, 1, 1000}, {-5, 1, 1}, {1e12, 1, math.MaxUint32},
	}
	for _, tt := range tests {
		if got := perPodLimit(tt.maxRps, tt.pods); got != tt.want {
			t.Errorf("perPodLimit(%v, %d) = %d, want %d", tt.maxRps, tt.pods, got, tt.want)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	s, err := New(DemoScenario(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	got, _ := s.Generate(b.N, func(*gate.Event) { n++ })
	if got != b.N {
		b.Fatalf("generated %d of %d", got, b.N)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
