package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

func mustParseFile(t *testing.T, path string) *gate.Policy {
	t.Helper()
	p, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return p
}

// TestDesignExample checks the DESIGN.md §4 example, copied verbatim, value
// by value.
func TestDesignExample(t *testing.T) {
	p := mustParseFile(t, "testdata/valid/design-example.yaml")
	if p.Name != "api-gateway-release" || p.File != "testdata/valid/design-example.yaml" {
		t.Errorf("name/file = %q/%q", p.Name, p.File)
	}
	if p.Window != 60*time.Second || p.Warmup != 10*time.Second {
		t.Errorf("window/warmup = %v/%v, want 60s/10s", p.Window, p.Warmup)
	}
	if p.MinRequests != 100 || p.OnInconclusive != gate.Fail || p.CoverageFloor != gate.DefaultCoverageFloor {
		t.Errorf("minRequests/onInconclusive/coverageFloor = %d/%v/%v", p.MinRequests, p.OnInconclusive, p.CoverageFloor)
	}
	wantFailOn := []gate.Cond{{Kind: gate.CondStatusClass, Code: 5}, {Kind: gate.CondGRPCError}, {Kind: gate.CondReset}}
	if fmt.Sprint(p.Classification.FailOn) != fmt.Sprint(wantFailOn) || len(p.Classification.Ignore) != 0 {
		t.Errorf("classification = %+v", p.Classification)
	}
	if len(p.Targets) != 1 {
		t.Fatalf("targets = %d, want 1", len(p.Targets))
	}
	tg := p.Targets[0]
	want := gate.Target{
		Name:      "gateway",
		Resource:  gate.ResourceRef{Type: "deployment", Name: "api-gateway", Namespace: "production"},
		To:        gate.ResourceRef{Type: "deployment", Name: "backend", Namespace: "production"},
		Direction: gate.Inbound,
		MaxRPS:    100,
		Line:      13,
	}
	if tg != want {
		t.Errorf("target = %+v\nwant     %+v", tg, want)
	}
	if len(p.Rules) != 5 {
		t.Fatalf("rules = %d, want 5", len(p.Rules))
	}
	r := p.Rules
	if r[0].Name != "success-rate" || r[0].Kind != gate.SuccessRate || r[0].Min != 0.995 || r[0].Line != 22 {
		t.Errorf("rule 0 = %+v", r[0])
	}
	if r[1].Name != "p99-latency" || r[1].Kind != gate.LatencyQuantile || r[1].Quantile != 0.99 ||
		r[1].MaxLatency != 300*time.Millisecond || r[1].Metric != gate.MetricLatency || r[1].Line != 24 {
		t.Errorf("rule 1 = %+v", r[1])
	}
	c := r[2]
	if c.Name != "checkout-errors" || c.Kind != gate.ErrorRate || c.Max != 0.001 || c.Target != "gateway" ||
		c.MinRequests != 50 || !c.MinExplicit || c.Line != 26 {
		t.Errorf("rule 2 = %+v", c)
	}
	if c.Route == nil || c.Route.Method != "POST" || c.Route.Path == nil || c.Route.Path.String() != "^/api/v[0-9]+/checkout" {
		t.Fatalf("rule 2 route = %+v", c.Route)
	}
	if !c.Route.Matches("POST", "x", "/api/v2/checkout/cart") || c.Route.Matches("POST", "x", "/web/api/v2/checkout") || c.Route.Matches("GET", "x", "/api/v1/checkout") {
		t.Errorf("checkout route matches the wrong requests")
	}
	if r[3].Name != "traffic-present" || r[3].Kind != gate.RequestRate || r[3].Min != 1 || r[3].DryRun {
		t.Errorf("rule 3 = %+v", r[3])
	}
	if r[4].Name != "tail" || r[4].Kind != gate.LatencyQuantile || r[4].Quantile != 0.999 || r[4].MaxLatency != 2*time.Second ||
		r[4].Metric != gate.MetricDuration || !r[4].DryRun || r[4].Line != 33 {
		t.Errorf("rule 4 = %+v", r[4])
	}
	// The p99.9 tail needs 1000 samples; the explicit 50 of checkout wins.
	if n := r[4].RequiredSamples(p); n != 1000 {
		t.Errorf("tail RequiredSamples = %d, want 1000", n)
	}
	if n := c.RequiredSamples(p); n != 50 {
		t.Errorf("checkout RequiredSamples = %d, want 50", n)
	}
}

func TestFullFixture(t *testing.T) {
	p := mustParseFile(t, "testdata/valid/full.yaml")
	if p.Window != 150*time.Second || p.Warmup != 1500*time.Millisecond || p.MinRequests != 20 ||
		p.OnInconclusive != gate.Pass || p.CoverageFloor != 0.95 {
		t.Errorf("spec = %v %v %d %v %v", p.Window, p.Warmup, p.MinRequests, p.OnInconclusive, p.CoverageFloor)
	}
	if strings.Join(p.RedactHeaders, ",") != "x-session-key,x-tenant-secret" {
		t.Errorf("redactHeaders = %q", p.RedactHeaders)
	}
	if got := fmt.Sprint(p.Classification.FailOn); got != "[5xx grpc-error reset 429 no-response]" {
		t.Errorf("failOn = %s", got)
	}
	ig := p.Classification.Ignore
	if len(ig) != 2 || ig[0].Line != 20 || ig[1].Line != 22 || ig[0].Route == nil || ig[1].Route != nil {
		t.Fatalf("ignore = %+v", ig)
	}
	if got := fmt.Sprint(ig[0].When, ig[1].When); got != "[503] [UNAVAILABLE DEADLINE_EXCEEDED]" {
		t.Errorf("ignore when = %s", got)
	}
	if ig[0].Route.Authority != "shop.example.com" || ig[0].Route.Method != "GET" || !ig[0].Route.Matches("get", "SHOP.example.com", "/maintenance/x") {
		t.Errorf("ignore route = %+v", ig[0].Route)
	}
	wantTargets := []gate.Target{
		{
			Name:          "web",
			Resource:      gate.ResourceRef{Type: "deployment", Name: "web", Namespace: "shop"},
			To:            gate.ResourceRef{Type: "service", Name: "payments", Namespace: "billing"},
			LabelSelector: "app=web,track!=canary",
			Direction:     gate.Outbound,
			MaxRPS:        50.5,
			Match:         gate.HTTPMatch{Scheme: "https", Method: "POST", Authority: "payments.billing:8080", PathPrefix: "/pay"},
			Line:          24,
		},
		{
			Name:     "everything-in-shop",
			Resource: gate.ResourceRef{Type: "namespace", Name: "shop", Namespace: "shop"},
			To:       gate.ResourceRef{Type: "namespace", Name: "billing", Namespace: "billing"},
			Line:     33,
		},
		{
			Name:     "jobs",
			Resource: gate.ResourceRef{Type: "cronjob", Name: "nightly", Namespace: "batch"},
			Line:     37,
		},
	}
	if len(p.Targets) != len(wantTargets) {
		t.Fatalf("targets = %d", len(p.Targets))
	}
	for i, w := range wantTargets {
		if p.Targets[i] != w {
			t.Errorf("target %d = %+v\nwant       %+v", i, p.Targets[i], w)
		}
	}
	r := p.Rules
	if len(r) != 7 {
		t.Fatalf("rules = %d", len(r))
	}
	if r[0].Min != 1 || r[0].MinRequests != 1 || !r[0].MinExplicit || r[0].Target != "web" {
		t.Errorf("rule 0 = %+v", r[0])
	}
	if r[1].Kind != gate.ErrorRate || r[1].Max != 0 || r[1].MinExplicit {
		t.Errorf("rule 1 = %+v", r[1])
	}
	if r[2].Metric != gate.MetricLatency || r[2].Quantile != 0.5 || r[2].MaxLatency != 250*time.Millisecond {
		t.Errorf("rule 2 = %+v", r[2])
	}
	if r[3].Metric != gate.MetricDuration || r[3].MaxLatency != time.Hour || r[3].Route.Path.String() != "^/api/" || r[3].DryRun {
		t.Errorf("rule 3 = %+v", r[3])
	}
	if r[4].Kind != gate.RequestRate || r[4].Min != 0.25 {
		t.Errorf("rule 4 = %+v", r[4])
	}
	if r[5].Kind != gate.ResponseCount || r[5].Max != 3 || fmt.Sprint(r[5].Count) != "[503 UNAVAILABLE 4xx]" {
		t.Errorf("rule 5 = %+v", r[5])
	}
	if r[6].Kind != gate.ResponseCount || r[6].Max != 0 || fmt.Sprint(r[6].Count) != "[reset]" || r[6].Line != 58 {
		t.Errorf("rule 6 = %+v", r[6])
	}
}

func TestMinimalDefaults(t *testing.T) {
	p := mustParseFile(t, "testdata/valid/minimal.yaml")
	if p.Warmup != 0 || p.MinRequests != gate.DefaultMinRequests || p.OnInconclusive != gate.Inconclusive ||
		p.CoverageFloor != gate.DefaultCoverageFloor || p.Classification.FailOn != nil || p.RedactHeaders != nil {
		t.Errorf("defaults not applied: %+v", p)
	}
	if !p.Targets[0].Resource.IsZero() || !p.Targets[0].To.IsZero() || p.Targets[0].Direction != gate.DirectionUnknown {
		t.Errorf("target = %+v", p.Targets[0])
	}
	if p.Rules[0].Min != 0.99 || p.Rules[0].Target != "" || p.Rules[0].Route != nil {
		t.Errorf("rule = %+v", p.Rules[0])
	}
}

func TestAnchors(t *testing.T) {
	p := mustParseFile(t, "testdata/valid/anchors.yaml")
	for _, r := range p.Rules {
		if r.Route == nil || r.Route.Method != "POST" || r.Route.Path.String() != "^/checkout" {
			t.Errorf("rule %s route = %+v", r.Name, r.Route)
		}
	}
}

// canonical renders a policy for comparison, without positions: two
// policies are equal when their JSON is (regexps marshal as their source).
func canonical(t *testing.T, p *gate.Policy) string {
	t.Helper()
	q := *p
	q.File = ""
	q.Targets = append([]gate.Target(nil), p.Targets...)
	q.Rules = append([]gate.Rule(nil), p.Rules...)
	q.Classification.Ignore = append([]gate.IgnoreRule(nil), p.Classification.Ignore...)
	for i := range q.Targets {
		q.Targets[i].Line = 0
	}
	for i := range q.Rules {
		q.Rules[i].Line = 0
	}
	for i := range q.Classification.Ignore {
		q.Classification.Ignore[i].Line = 0
	}
	b, err := json.Marshal(&q)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// roundTrip checks that Marshal writes a document Parse reads back into the
// same policy, and that marshalling is stable.
func roundTrip(t *testing.T, p *gate.Policy) {
	t.Helper()
	out, err := Marshal(p)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	q, err := Parse("roundtrip.yaml", out)
	if err != nil {
		t.Fatalf("Parse(Marshal(p)): %v\n%s", err, out)
	}
	if a, b := canonical(t, p), canonical(t, q); a != b {
		t.Errorf("round trip changed the policy:\n before %s\n after  %s\n%s", a, b, out)
	}
	again, err := Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(out) {
		t.Errorf("Marshal is not stable:\n%s\n---\n%s", out, again)
	}
}

func TestValidFixturesRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("valid fixtures: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			roundTrip(t, mustParseFile(t, f))
		})
	}
}

// pos is the expected position and path of one error, plus a fragment of
// its message.
type pos struct {
	line, col int
	path      string
	msg       string
}

func checkErrors(t *testing.T, file string, err error, want []pos) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d", len(want))
	}
	got := Errors(err)
	if len(got) != len(err.(interface{ WrappedErrors() []error }).WrappedErrors()) {
		t.Errorf("not every error is a *policy.Error: %v", err)
	}
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			t.Errorf("missing error %d: %d:%d %s: ...%s...", i, want[i].line, want[i].col, want[i].path, want[i].msg)
		case i >= len(want):
			t.Errorf("unexpected error %d: %v", i, got[i])
		default:
			g, w := got[i], want[i]
			if g.File != file || g.Line != w.line || g.Column != w.col || g.Path != w.path || !strings.Contains(g.Msg, w.msg) {
				t.Errorf("error %d = %v\nwant %s:%d:%d: %s: ...%s...", i, g, file, w.line, w.col, w.path, w.msg)
			}
		}
	}
}

func TestInvalidFixtures(t *testing.T) {
	tests := map[string][]pos{
		"many-problems.yaml": {
			{7, 11, "spec.window", `invalid duration "5 minutes": write a Go duration such as 500ms, 1.5s, 2m or 1h30m`},
			{8, 11, "spec.warmup", `duration "-1s" is negative`},
			{9, 19, "spec.onInconclusive", `"maybe" is not one of fail, pass, inconclusive`},
			{10, 3, "spec.windw", `unknown key "windw": did you mean "window"?`},
			{14, 16, "spec.targets[0].direction", `"sideways" is not one of inbound, outbound, any`},
			{15, 13, "spec.targets[0].maxRPS", "must not be negative"},
			{16, 11, "spec.targets[1].name", `duplicate target name "web"`},
			{17, 15, "spec.targets[1].resource", `"deployment" names no object: write TYPE/NAME`},
			{20, 24, "spec.rules[0].successRate.min", "150% is more than 100%"},
			{22, 25, "spec.rules[1].latency.quantile", "quantile must be between 0 and 1 exclusive (e.g. 0.99); 99 looks like a percentile: write 0.99"},
			{24, 13, "spec.rules[2].target", `target "checkout-target", which is not declared`},
			{25, 19, "spec.rules[2].route.path", "invalid path regular expression: error parsing regexp: missing closing )"},
			{27, 5, "spec.rules[3]", `rule "nothing" has no check: add exactly one of successRate, errorRate, latency, requestRate, count`},
			{29, 5, "spec.rules[4]", `rule "two" has 2 checks (successRate, errorRate)`},
			{32, 11, "spec.rules[5].name", `duplicate rule name "success"`},
			{34, 5, "spec.rules[5].requestRate", `duplicate key "requestRate" (first set on line 33)`},
		},
		"missing-required.yaml": {
			{1, 1, "kind", "kind is required: add kind: GatePolicy"},
			{1, 13, "apiVersion", `unsupported apiVersion "tapgate.dev/v1": this tapgate reads tapgate.dev/v1alpha1`},
			{2, 1, "metadata.name", "metadata.name is required"},
			{4, 1, "spec.window", "window is required: set how long to tap, e.g. window: 60s"},
			{4, 1, "spec.rules", "at least one rule is required"},
			{6, 12, "spec.targets", "at least one target is required"},
		},
		"types.yaml": {
			{4, 9, "metadata.name", `expected a string, got integer 42: quote it ("42")`},
			{5, 21, "metadata.labels.version", "expected a string value, got integer 2"},
			{7, 11, "spec.window", "60 has no unit: write a duration such as 60s"},
			{8, 16, "spec.minRequests", `expected a whole number, got string "100": remove the quotes`},
			{9, 18, "spec.coverageFloor", "1.5 is not a ratio between 0 and 1 (did you mean 1.5%?)"},
			{10, 12, "spec.targets", "expected a list, got a mapping"},
			{13, 25, "spec.rules[0].latency.quantile", `expected a number, got string "p99"`},
			{14, 13, "spec.rules[0].dryRun", `expected true or false, got string "yes"`},
			{16, 23, "spec.rules[1].count.of[1]", `"600" is not an HTTP status`},
			{16, 30, "spec.rules[1].count.of[2]", `unknown response condition "BOGUS"`},
			{16, 43, "spec.rules[1].count.max", "count max must not be negative"},
			{18, 18, "spec.rules[2].minRequests", "minRequests must be at least 1"},
			{19, 22, "spec.rules[2].errorRate.max", `"0.5" is a quoted number`},
		},
		"targets.yaml": {
			{6, 11, "spec.warmup", "warmup (10s) must be shorter than window (10s)"},
			{9, 15, "spec.targets[0].resource", `unknown resource type "Deploy" in "Deploy/web" (types are lower case: deployment)`},
			{10, 16, "spec.targets[0].namespace", `"Prod_1" is not a valid namespace name`},
			{12, 15, "spec.targets[1].resource", "a service can only be a destination"},
			{13, 18, "spec.targets[1].toNamespace", "toNamespace is set but to is not"},
			{14, 20, "spec.targets[1].labelSelector", `invalid label selector "app in (web"`},
			{15, 5, "spec.targets[2].name", "target name is required"},
			{16, 16, "spec.targets[2].namespace", `namespace "other" contradicts the namespace target ns/shop`},
			{17, 21, "spec.targets[2].match.scheme", `scheme "ftp" is not http or https`},
			{17, 38, "spec.targets[2].match.pathPrefix", `pathPrefix "api" must start with /`},
			{19, 15, "spec.targets[3].resource", `resource "po/" has an empty name`},
			{20, 9, "spec.targets[3].to", `unknown resource type "ingress"`},
			{24, 21, "spec.rules[0].route.method", `method "GET POST" is not an HTTP method`},
			{25, 36, "spec.rules[0].latency.max", "max must be longer than 0"},
			{25, 48, "spec.rules[0].latency.metric", `metric "p99" is not latency`},
		},
		"empty.yaml":    {{1, 1, "", "policy is empty"}},
		"garbage.yaml":  {{1, 1, "", `expected a GatePolicy mapping (apiVersion, kind, metadata, spec), got string "just some words"`}},
		"syntax.yaml":   {{5, 0, "", "invalid YAML: mapping values are not allowed in this context"}},
		"two-docs.yaml": {{9, 1, "", "a policy file holds one document"}},
	}
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) != len(tests) {
		t.Errorf("%d invalid fixtures but %d table entries: keep them in step", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			file := "testdata/invalid/" + name
			p, err := Load(file)
			if p != nil {
				t.Errorf("invalid policy returned a policy")
			}
			checkErrors(t, file, err, want)
		})
	}
}

// TestErrorFormat pins the rendering users and editors see.
func TestErrorFormat(t *testing.T) {
	e := &Error{File: "p.yaml", Line: 12, Column: 7, Path: "spec.rules[2].latency.quantile", Msg: "quantile must be between 0 and 1 exclusive (e.g. 0.99)"}
	if got, want := e.Error(), "p.yaml:12:7: spec.rules[2].latency.quantile: quantile must be between 0 and 1 exclusive (e.g. 0.99)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	e = &Error{File: "p.yaml", Line: 3, Msg: "invalid YAML: x"}
	if got, want := e.Error(), "p.yaml:3: invalid YAML: x"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	_, err := Parse("a.yaml", []byte("apiVersion: tapgate.dev/v1alpha1\nkind: GatePolicy\nmetadata: {name: x}\nspec:\n  window: 1s\n  targets: [{name: a}]\n"))
	if got, want := err.Error(), "a.yaml:4:1: spec.rules: at least one rule is required, e.g. rules: [{name: success-rate, successRate: {min: 99.5%}}]"; got != want {
		t.Errorf("single error:\n got  %s\n want %s", got, want)
	}
	_, err = Parse("a.yaml", []byte("kind: GatePolicy\nmetadata: {name: x}\nspec:\n  window: 1s\n  targets: [{name: a}]\n"))
	if got := err.Error(); !strings.HasPrefix(got, "2 problems in policy:\na.yaml:1:1: apiVersion: apiVersion is required") || strings.Count(got, "\n") != 2 {
		t.Errorf("several errors:\n%s", got)
	}
}

const header = "apiVersion: tapgate.dev/v1alpha1\nkind: GatePolicy\nmetadata: {name: t}\nspec:\n"

// TestParseCases covers single problems (and single values) inline. The
// spec starts on line 5.
func TestParseCases(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []pos // nil: valid
	}{
		{"duration 500ms", "  window: 500ms\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n", nil},
		{"duration 1.5s", "  window: 1.5s\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n", nil},
		{"warmup bare 0", "  window: 1s\n  warmup: 0\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n", nil},
		{"warmup bare 1", "  window: 1s\n  warmup: 1\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 11, "spec.warmup", "1 has no unit: write a duration such as 1s or 1ms"}}},
		{"duration 0 window", "  window: 0s\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{5, 11, "spec.window", "window must be longer than 0"}}},
		{"duration huge", "  window: 99999999999h\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{5, 11, "spec.window", `invalid duration "99999999999h" (time: invalid duration`}}},
		{"duration +5s", "  window: +5s\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{5, 11, "spec.window", `invalid duration "+5s"`}}},
		{"duration mapping", "  window: {s: 1}\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{5, 11, "spec.window", "expected a single value, got a mapping"}}},
		{"percent 0.995 and 99.5%", "  window: 1s\n  coverageFloor: 99.5%\n  targets: [{name: a}]\n  rules: [{name: r, successRate: {min: 0.995}}]\n", nil},
		{"percent negative", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, successRate: {min: -0.5}}]\n",
			[]pos{{7, 40, "spec.rules[0].successRate.min", "-0.5 is not a ratio between 0 and 1: write"}}},
		{"percent words", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, errorRate: {max: one percent}}]\n",
			[]pos{{7, 38, "spec.rules[0].errorRate.max", `"one percent" is not a percentage: write e.g. 99.5% or 0.995`}}},
		{"percent nan", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, errorRate: {max: .nan}}]\n",
			[]pos{{7, 38, "spec.rules[0].errorRate.max", ".nan is not a finite number"}}},
		{"quantile 1", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, latency: {quantile: 1, max: 1s}}]\n",
			[]pos{{7, 41, "spec.rules[0].latency.quantile", "quantile must be between 0 and 1 exclusive (e.g. 0.99)"}}},
		{"quantile 0", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, latency: {quantile: 0, max: 1s}}]\n",
			[]pos{{7, 41, "spec.rules[0].latency.quantile", "quantile must be between 0 and 1 exclusive"}}},
		{"latency missing both", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, latency: {}}]\n",
			[]pos{{7, 21, "spec.rules[0].latency.quantile", "latency needs quantile"}, {7, 21, "spec.rules[0].latency.max", "latency needs max"}}},
		{"successRate missing min", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, successRate: {}}]\n",
			[]pos{{7, 21, "spec.rules[0].successRate.min", "successRate needs min"}}},
		{"successRate null", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, successRate: null}]\n",
			[]pos{{7, 11, "spec.rules[0]", `rule "r" has no check`}}},
		{"requestRate zero", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 0}}]\n",
			[]pos{{7, 40, "spec.rules[0].requestRate.min", "requestRate min must be greater than 0"}}},
		{"count empty of", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, count: {of: []}}]\n",
			[]pos{{7, 33, "spec.rules[0].count.of", "count needs of"}}},
		{"count grpc OK", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, count: {of: [OK]}}]\n",
			[]pos{{7, 34, "spec.rules[0].count.of[0]", `"OK" is gRPC OK, which is never a failure`}}},
		{"failOn empty", "  window: 1s\n  classification: {failOn: []}\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 28, "spec.classification.failOn", "failOn is empty"}}},
		{"ignore without when", "  window: 1s\n  classification:\n    ignore:\n    - route: {path: ^/x}\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{8, 7, "spec.classification.ignore[0].when", "when is required"}}},
		{"redact header with colon", "  window: 1s\n  redactHeaders: [\"x-key:\"]\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 19, "spec.redactHeaders[0]", `"x-key:" is not a header name`}}},
		{"unknown key suggests nothing", "  window: 1s\n  targets: [{name: a, zzz: 1}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 23, "spec.targets[0].zzz", `unknown key "zzz": valid keys here are name, resource, namespace, to, toNamespace, labelSelector, direction, maxRPS, match`}}},
		{"case-insensitive suggestion", "  Window: 1s\n  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{5, 3, "spec.Window", `did you mean "window"?`}}},
		{"merge key", "  window: 1s\n  targets: [{name: a, <<: {resource: deploy/x}}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 23, "spec.targets[0]", "merge keys (<<) are not supported"}}},
		{"non-string key", "  window: 1s\n  targets: [{name: a, [x]: 1}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 23, "spec.targets[0]", "keys must be plain names, got a list"}}},
		{"maxRPS string", "  window: 1s\n  targets: [{name: a, maxRPS: lots}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 31, "spec.targets[0].maxRPS", `expected a number, got string "lots"`}}},
		{"maxRPS inf", "  window: 1s\n  targets: [{name: a, maxRPS: .inf}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 31, "spec.targets[0].maxRPS", "expected a finite number"}}},
		{"minRequests overflow", "  window: 1s\n  minRequests: 99999999999999999999999\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 16, "spec.minRequests", "expected a whole number, got number 99999999999999999999999"}}},
		{"empty list item", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, count: {of: [~, &x ]}}]\n",
			[]pos{{7, 34, "spec.rules[0].count.of[0]", "list item is empty"}, {7, 37, "spec.rules[0].count.of[1]", "list item is empty"}}},
		{"rules scalar", "  window: 1s\n  targets: [{name: a}]\n  rules: none\n",
			[]pos{{7, 10, "spec.rules", `expected a list, got string "none"`}}},
		{"rule not a mapping", "  window: 1s\n  targets: [{name: a}]\n  rules: [r]\n",
			[]pos{{7, 11, "spec.rules[0]", `expected a mapping of keys (name, target, route, successRate, errorRate, latency, requestRate, count, minRequests, dryRun), got string "r"`}}},
		{"rule without name", "  window: 1s\n  targets: [{name: a}]\n  rules: [{requestRate: {min: 1}}]\n",
			[]pos{{7, 11, "spec.rules[0].name", "rule name is required"}}},
		{"svc destination default namespace", "  window: 1s\n  targets: [{name: a, resource: sts/db, namespace: data, to: svc/cache}]\n  rules: [{name: r, requestRate: {min: 1}}]\n", nil},
		{"namespace destination conflict", "  window: 1s\n  targets: [{name: a, to: ns/x, toNamespace: y}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 46, "spec.targets[0].toNamespace", `toNamespace "y" contradicts the namespace destination ns/x`}}},
		{"spec missing", "", []pos{{4, 6, "spec", "spec is required"}}},
		{"deep nesting", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n  x: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n",
			[]pos{{8, 3, "spec.x", `unknown key "x"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("t.yaml", []byte(header+tt.spec))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				roundTrip(t, p)
				return
			}
			checkErrors(t, "t.yaml", err, tt.want)
		})
	}
}

func TestPercentValues(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"99.5%", 0.995}, {"0.995", 0.995}, {"0.1%", 0.001}, {"0.001", 0.001},
		{"100%", 1}, {"1", 1}, {"0", 0}, {"0%", 0}, {"99.99%", 0.9999}, {"50%", 0.5}, {"33.3%", 0.333},
	}
	for _, tt := range tests {
		doc := header + "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, successRate: {min: " + tt.in + "}}]\n"
		p, err := Parse("t.yaml", []byte(doc))
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got := p.Rules[0].Min; got != tt.want {
			t.Errorf("%s = %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, v := range []float64{0, 1, 0.995, 0.999, 0.001, 0.9999, 0.5, 1e-9, 0.123456789} {
		s := formatPercent(v)
		doc := header + "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, successRate: {min: \"" + s + "\"}}]\n"
		p, err := Parse("t.yaml", []byte(doc))
		if err != nil {
			t.Errorf("formatPercent(%v) = %q does not parse: %v", v, s, err)
			continue
		}
		if p.Rules[0].Min != v {
			t.Errorf("formatPercent(%v) = %q parses as %v", v, s, p.Rules[0].Min)
		}
	}
}

func TestResources(t *testing.T) {
	tests := []struct {
		in      string
		dest    bool
		want    gate.ResourceRef
		wantErr string
	}{
		{in: "deploy/web", want: gate.ResourceRef{Type: "deployment", Name: "web"}},
		{in: "deployments/web", want: gate.ResourceRef{Type: "deployment", Name: "web"}},
		{in: "deployment/web", want: gate.ResourceRef{Type: "deployment", Name: "web"}},
		{in: "sts/db-0.x", want: gate.ResourceRef{Type: "statefulset", Name: "db-0.x"}},
		{in: "ds/agent", want: gate.ResourceRef{Type: "daemonset", Name: "agent"}},
		{in: "rs/web-abc", want: gate.ResourceRef{Type: "replicaset", Name: "web-abc"}},
		{in: "rc/old", want: gate.ResourceRef{Type: "replicationcontroller", Name: "old"}},
		{in: "replicationcontrollers/old", want: gate.ResourceRef{Type: "replicationcontroller", Name: "old"}},
		{in: "po/web-1", want: gate.ResourceRef{Type: "pod", Name: "web-1"}},
		{in: "pods/web-1", want: gate.ResourceRef{Type: "pod", Name: "web-1"}},
		{in: "cj/nightly", want: gate.ResourceRef{Type: "cronjob", Name: "nightly"}},
		{in: "cronjobs/nightly", want: gate.ResourceRef{Type: "cronjob", Name: "nightly"}},
		{in: "job/once", want: gate.ResourceRef{Type: "job", Name: "once"}},
		{in: "jobs/once", want: gate.ResourceRef{Type: "job", Name: "once"}},
		{in: "ns/prod", want: gate.ResourceRef{Type: "namespace", Name: "prod", Namespace: "prod"}},
		{in: "namespaces/prod", want: gate.ResourceRef{Type: "namespace", Name: "prod", Namespace: "prod"}},
		{in: "svc/api", dest: true, want: gate.ResourceRef{Type: "service", Name: "api"}},
		{in: "services/api", dest: true, want: gate.ResourceRef{Type: "service", Name: "api"}},
		{in: "deploy/api", dest: true, want: gate.ResourceRef{Type: "deployment", Name: "api"}},
		{in: "svc/api", wantErr: "a service can only be a destination"},
		{in: "deploy", wantErr: "names no object"},
		{in: "web", wantErr: `"web" is not TYPE/NAME`},
		{in: "deploy/", wantErr: "empty name"},
		{in: "deploy/Web", wantErr: "not a valid Kubernetes deployment name"},
		{in: "ns/a.b", wantErr: "not a valid Kubernetes namespace name"},
		{in: "deploy/a/b", wantErr: "not a valid Kubernetes deployment name"},
		{in: "ingress/x", dest: true, wantErr: `unknown resource type "ingress"`},
		{in: "", wantErr: "is not TYPE/NAME"},
	}
	for _, tt := range tests {
		parse := ParseResource
		if tt.dest {
			parse = ParseDestination
		}
		got, err := parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want ...%s...", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	// The schema pattern accepts exactly the types the parser does.
	re := regexp.MustCompile(resourcePattern(false))
	for alias := range targetTypes {
		if !re.MatchString(alias + "/x") {
			t.Errorf("schema pattern rejects %s/x", alias)
		}
	}
	if re.MatchString("svc/x") || re.MatchString("deploy") || !regexp.MustCompile(resourcePattern(true)).MatchString("svc/x") {
		t.Errorf("schema patterns disagree with the parser about services")
	}
}

func TestDurationPatternAgreesWithParser(t *testing.T) {
	valid := []string{"500ms", "2m", "1.5s", "1h30m", "0", "0s", ".5s", "10us", "3µs", "1ns"}
	invalid := []string{"5 minutes", "-1s", "1", "s", "1.5", "1d", "+1s", ""}
	for _, s := range valid {
		if !durationRE.MatchString(s) {
			t.Errorf("pattern rejects %q", s)
		}
		if _, err := time.ParseDuration(s); err != nil {
			t.Errorf("Go rejects %q", s)
		}
	}
	for _, s := range invalid {
		if durationRE.MatchString(s) {
			t.Errorf("pattern accepts %q", s)
		}
	}
}

func TestTabIndentation(t *testing.T) {
	_, err := Parse("t.yaml", []byte(header+"\twindow: 1s\n"))
	checkErrors(t, "t.yaml", err, []pos{{5, 0, "", "YAML does not allow tabs for indentation: indent with spaces"}})
}

func TestParseNeverReturnsBothOrNeither(t *testing.T) {
	inputs := [][]byte{nil, []byte("{}"), []byte("[]"), []byte("~"), []byte("\t"), []byte(":"), []byte("a: *b"), []byte("&a [*a]"), []byte("---\n---\n")}
	for _, in := range inputs {
		p, err := Parse("x", in)
		if (p == nil) == (err == nil) {
			t.Errorf("Parse(%q) = %v, %v", in, p, err)
		}
		for _, e := range Errors(err) {
			if e.Line < 1 || e.File != "x" {
				t.Errorf("Parse(%q): unpositioned error %v", in, e)
			}
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file") {
		t.Errorf("err = %v", err)
	}
}

func BenchmarkParseDesignExample(b *testing.B) {
	data, err := os.ReadFile("testdata/valid/design-example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("design-example.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
