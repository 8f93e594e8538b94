package policy

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

var update = flag.Bool("update", false, "rewrite golden files")

func fullAdHoc() AdHoc {
	return AdHoc{
		Resource:       "deploy/api-gateway",
		Namespace:      "production",
		To:             "svc/backend",
		LabelSelector:  "rollouts-pod-template-hash=abc",
		Direction:      "inbound",
		Window:         90 * time.Second,
		Warmup:         10 * time.Second,
		MinRequests:    50,
		MinSuccessRate: "99.5%",
		MaxErrorRate:   "0.001",
		MaxLatency:     []string{"p99=300ms", "p99.9=1s", "duration:0.5=2s"},
		MinRequestRate: 1.5,
		OnInconclusive: "fail",
		MaxRPS:         20,
		Decision:       "sequential",
		Confidence:     "99.9%",
		Tolerance:      "1.5",
		StopOnPass:     true,
	}
}

// TestFromAdHocEqualsFile: flags mean exactly what the equivalent file means.
func TestFromAdHocEqualsFile(t *testing.T) {
	got, err := FromAdHoc(fullAdHoc())
	if err != nil {
		t.Fatal(err)
	}
	file := `apiVersion: tapgate.dev/v1alpha1
kind: GatePolicy
metadata: {name: ad-hoc}
spec:
  window: 90s
  warmup: 10s
  minRequests: 50
  onInconclusive: fail
  decision: sequential
  confidence: 99.9%
  tolerance: 1.5
  stopOnPass: true
  targets:
  - name: api-gateway
    resource: deploy/api-gateway
    namespace: production
    to: svc/backend
    labelSelector: rollouts-pod-template-hash=abc
    direction: inbound
    maxRPS: 20
  rules:
  - {name: success-rate, successRate: {min: 99.5%}}
  - {name: error-rate, errorRate: {max: 0.1%}}
  - {name: p99-latency, latency: {quantile: 0.99, max: 300ms}}
  - {name: p99.9-latency, latency: {quantile: 0.999, max: 1s}}
  - {name: p50-duration, latency: {quantile: 0.5, max: 2s, metric: duration}}
  - {name: request-rate, requestRate: {min: 1.5}}
`
	want, err := Parse("file.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := canonical(t, got), canonical(t, want); a != b {
		t.Errorf("ad-hoc policy differs from the file:\n flags %s\n file  %s", a, b)
	}
	if got.File != AdHocFile {
		t.Errorf("File = %q", got.File)
	}
	if got.Rules[3].Quantile != 0.999 || got.Rules[1].Max != 0.001 || got.Rules[0].Min != 0.995 {
		t.Errorf("values: %v %v %v", got.Rules[3].Quantile, got.Rules[1].Max, got.Rules[0].Min)
	}
	if got.Decision != gate.Sequential || got.Confidence != 0.999 || got.Tolerance != 1.5 || !got.StopOnPass || got.KeepTapping {
		t.Errorf("knobs: %v %v %v %v %v", got.Decision, got.Confidence, got.Tolerance, got.StopOnPass, got.KeepTapping)
	}
	// Left empty, the knobs take the defaults and Render writes none of them.
	a := AdHoc{Window: time.Minute, MinSuccessRate: "99%"}
	out, err := Render(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"decision", "confidence", "tolerance", "stopOnPass", "stopOnFail"} {
		if strings.Contains(string(out), k) {
			t.Errorf("Render of default knobs writes %s:\n%s", k, out)
		}
	}
	p, err := FromAdHoc(a)
	if err != nil {
		t.Fatal(err)
	}
	if p.Decision != gate.Sequential || p.Confidence != gate.DefaultConfidence || p.Tolerance != gate.DefaultTolerance || p.StopOnPass || p.KeepTapping {
		t.Errorf("default knobs: %+v", p)
	}
	// decision: estimate takes a budget of zero, which a test cannot decide.
	if p, err := FromAdHoc(AdHoc{Window: time.Minute, MinSuccessRate: "100%", Decision: "estimate"}); err != nil || p.Decision != gate.Estimate {
		t.Errorf("estimate of 100%%: %v", err)
	}
}

func TestRenderGolden(t *testing.T) {
	out, err := Render(fullAdHoc())
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/adhoc.golden.yaml"
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(out) != string(want) {
		t.Errorf("Render output changed (go test -update to accept):\n%s", out)
	}
	// What --print-policy shows must be a policy file that loads as is.
	if _, err := Load(golden); err != nil {
		t.Errorf("rendered policy does not load: %v", err)
	}
}

func TestAdHocErrors(t *testing.T) {
	base := AdHoc{Window: time.Minute, MinSuccessRate: "99%"}
	tests := []struct {
		name string
		mod  func(*AdHoc)
		want string
	}{
		{"ratio that looks like a percentage", func(a *AdHoc) { a.MinSuccessRate = "99.5" }, `spec.rules[0].successRate.min: 99.5 is not a ratio between 0 and 1 (did you mean 99.5%?)`},
		{"no window", func(a *AdHoc) { a.Window = 0 }, "spec.window: window is required"},
		{"warmup too long", func(a *AdHoc) { a.Warmup = time.Hour }, "spec.warmup: warmup (1h) must be shorter than window (1m)"},
		{"negative window", func(a *AdHoc) { a.Window = -time.Second }, `spec.window: duration "-1s" is negative`},
		{"no rules", func(a *AdHoc) { a.MinSuccessRate = "" }, "spec.rules: at least one rule is required"},
		{"bad resource", func(a *AdHoc) { a.Resource = "deployment" }, `resource "deployment" names no object`},
		{"bad direction", func(a *AdHoc) { a.Direction = "in" }, `direction "in" is not one of inbound, outbound, any`},
		{"bad onInconclusive", func(a *AdHoc) { a.OnInconclusive = "retry" }, `onInconclusive "retry" is not one of`},
		{"latency without value", func(a *AdHoc) { a.MaxLatency = []string{"p99"} }, `max latency "p99": missing =DURATION`},
		{"latency bad quantile", func(a *AdHoc) { a.MaxLatency = []string{"p100=1s"} }, `max latency "p100=1s": the quantile must be between p0 and p100 exclusive`},
		{"latency bad metric", func(a *AdHoc) { a.MaxLatency = []string{"ttfb:p99=1s"} }, `metric "ttfb" is not latency or duration`},
		{"latency bad duration", func(a *AdHoc) { a.MaxLatency = []string{"p99=300"} }, "spec.rules[1].latency.max: 300 has no unit"},
		{"duplicate latency", func(a *AdHoc) { a.MaxLatency = []string{"p99=1s", "0.99=2s"} }, `duplicate rule name "p99-latency"`},
		// Flag values are data, never YAML syntax: Render encodes them.
		{"yaml in a flag", func(a *AdHoc) { a.Resource = "deploy/x\n  window: 1h" }, "is not a valid Kubernetes deployment name"},
		{"yaml in a percentage", func(a *AdHoc) { a.MinSuccessRate = "99%}\n    dryRun: true" }, "is not a percentage"},
		{"negative maxRPS", func(a *AdHoc) { a.MaxRPS = -1 }, "maxRPS must not be negative"},
		{"minRequests zero is default, negative is not", func(a *AdHoc) { a.MinRequests = -3 }, "spec.minRequests: minRequests must be at least 1"},
		{"bad decision", func(a *AdHoc) { a.Decision = "bayes" }, `spec.decision: decision "bayes" is not one of sequential (the default), estimate`},
		{"confidence as a bare percentage", func(a *AdHoc) { a.Confidence = "99.9" }, "spec.confidence: 99.9 is not a ratio between 0 and 1 (did you mean 99.9%?)"},
		{"confidence 100%", func(a *AdHoc) { a.Confidence = "100%" }, "spec.confidence: confidence 100% must be above 50% and below 100%, e.g. 99%"},
		{"confidence words", func(a *AdHoc) { a.Confidence = "very" }, `spec.confidence: "very" is not a percentage`},
		{"tolerance 1", func(a *AdHoc) { a.Tolerance = "1" }, "spec.tolerance: tolerance 1 must be greater than 1"},
		{"tolerance words", func(a *AdHoc) { a.Tolerance = "twice" }, `spec.tolerance: expected a number such as 2 or 1.5, got string "twice"`},
		{"yaml in a tolerance", func(a *AdHoc) { a.Tolerance = "2\n  window: 1h" }, `spec.tolerance: expected a number such as 2 or 1.5, got string "2\n  window: 1h"`},
		{"estimate of a zero budget is fine, sequential is not", func(a *AdHoc) { a.MinSuccessRate = "100%" }, "spec.rules[0].successRate.min: successRate min 100% cannot be decided sequentially"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := base
			tt.mod(&a)
			p, err := FromAdHoc(a)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FromAdHoc = %v, %v; want error ...%s...", p, err, tt.want)
			}
			for _, e := range Errors(err) {
				if e.File != AdHocFile {
					t.Errorf("error names file %q, want %q", e.File, AdHocFile)
				}
			}
		})
	}
	p, err := FromAdHoc(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 1 || p.Targets[0].Name != "target" || !p.Targets[0].Resource.IsZero() || p.Rules[0].Min != 0.99 {
		t.Errorf("minimal ad-hoc policy = %+v", p)
	}
}

func TestParseLatencyFlag(t *testing.T) {
	tests := []struct {
		in     string
		q      float64
		metric string
		max    string
	}{
		{"p99=300ms", 0.99, "latency", "300ms"},
		{"P95=1s", 0.95, "latency", "1s"},
		{"p99.9=2s", 0.999, "latency", "2s"},
		{"p99.99=2s", 0.9999, "latency", "2s"},
		{"0.5=10ms", 0.5, "latency", "10ms"},
		{"duration:p99=5s", 0.99, "duration", "5s"},
		{"latency:p50 = 20ms", 0.5, "latency", "20ms"},
	}
	for _, tt := range tests {
		q, m, max, err := parseLatencyFlag(tt.in)
		if err != nil || q != tt.q || m != tt.metric || max != tt.max {
			t.Errorf("%q = %v %q %q %v", tt.in, q, m, max, err)
		}
	}
	for _, bad := range []string{"", "p99", "=1s", "pXX=1s", "p1e1=1s", "p1/2=1s", "1.5=1s", "p0=1s", "x:p99=1s"} {
		if _, _, _, err := parseLatencyFlag(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestWithResource(t *testing.T) {
	p, _, err := LoadRef("builtin:strict-canary")
	if err != nil {
		t.Fatal(err)
	}
	if err := WithResource(p, "deploy/checkout", "shop"); err != nil {
		t.Fatal(err)
	}
	if got := p.Targets[0].Resource; got != (gate.ResourceRef{Type: "deployment", Name: "checkout", Namespace: "shop"}) {
		t.Errorf("resource = %+v", got)
	}
	err = WithResource(p, "deploy/other", "")
	if err == nil || !strings.Contains(err.Error(), ErrResourceSet.Error()) {
		t.Errorf("second WithResource = %v, want ErrResourceSet", err)
	}

	// Only targets without a resource are filled; a destination follows
	// the target's namespace; a namespace from the file is kept.
	doc := header + `  window: 1s
  targets:
  - {name: fixed, resource: deploy/web, namespace: a}
  - {name: open, namespace: b, to: svc/db}
  - {name: open2, to: svc/db}
  rules: [{name: r, requestRate: {min: 1}}]
`
	p, err = Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := WithResource(p, "sts/db", ""); err != nil {
		t.Fatal(err)
	}
	want := []gate.ResourceRef{
		{Type: "deployment", Name: "web", Namespace: "a"},
		{Type: "statefulset", Name: "db", Namespace: "b"},
		{Type: "statefulset", Name: "db"},
	}
	for i, w := range want {
		if p.Targets[i].Resource != w {
			t.Errorf("target %d resource = %+v, want %+v", i, p.Targets[i].Resource, w)
		}
	}
	if p.Targets[1].To.Namespace != "b" {
		t.Errorf("destination namespace = %q, want b", p.Targets[1].To.Namespace)
	}

	p, _ = Parse("t.yaml", []byte(doc))
	if err := WithResource(p, "sts/db", "c"); err == nil || !strings.Contains(err.Error(), `namespace "b", not "c"`) {
		t.Errorf("namespace conflict: %v", err)
	}
	p, _ = Parse("t.yaml", []byte(doc))
	if err := WithResource(p, "ns/shop", "ignored"); err != nil || p.Targets[2].Resource != (gate.ResourceRef{Type: "namespace", Name: "shop", Namespace: "shop"}) {
		t.Errorf("namespace target: %v %+v", err, p.Targets[2].Resource)
	}
	for _, bad := range []string{"svc/x", "deploy", ""} {
		p, _ = Parse("t.yaml", []byte(doc))
		if err := WithResource(p, bad, ""); err == nil {
			t.Errorf("WithResource(%q): no error", bad)
		}
	}
	p, _ = Parse("t.yaml", []byte(doc))
	if err := WithResource(p, "deploy/x", "Bad_NS"); err == nil {
		t.Errorf("bad namespace accepted")
	}
}
