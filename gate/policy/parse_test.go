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
	if p.Decision != gate.Estimate || p.Confidence != 0.999 || p.Tolerance != 1.5 || !p.StopOnPass || !p.KeepTapping {
		t.Errorf("decision/confidence/tolerance/stopOnPass/keepTapping = %v/%v/%v/%v/%v", p.Decision, p.Confidence, p.Tolerance, p.StopOnPass, p.KeepTapping)
	}
	if cc := p.CrossCheck; cc.Disabled || !cc.Required || !cc.MismatchInconclusive || cc.MinVolumeCoverage != 0.05 || cc.URL != "https://thanos.monitoring.example.com/prometheus" {
		t.Errorf("crossCheck = %+v", cc)
	}
	if strings.Join(p.RedactHeaders, ",") != "x-session-key,x-tenant-secret" {
		t.Errorf("redactHeaders = %q", p.RedactHeaders)
	}
	if got := fmt.Sprint(p.Classification.FailOn); got != "[5xx grpc-error reset 429 no-response]" {
		t.Errorf("failOn = %s", got)
	}
	ig := p.Classification.Ignore
	if len(ig) != 2 || ig[0].Line != 25 || ig[1].Line != 27 || ig[0].Route == nil || ig[1].Route != nil {
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
			Line:          29,
		},
		{
			Name:     "everything-in-shop",
			Resource: gate.ResourceRef{Type: "namespace", Name: "shop", Namespace: "shop"},
			To:       gate.ResourceRef{Type: "namespace", Name: "billing", Namespace: "billing"},
			Line:     38,
		},
		{
			Name:     "jobs",
			Resource: gate.ResourceRef{Type: "cronjob", Name: "nightly", Namespace: "batch"},
			Line:     42,
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
	if len(r) != 10 {
		t.Fatalf("rules = %d", len(r))
	}
	// The zero budgets of rules 0 and 1 can only be estimated: they inherit
	// spec.decision: estimate.
	if r[0].Min != 1 || r[0].MinRequests != 1 || !r[0].MinExplicit || r[0].Target != "web" || r[0].Decision != gate.DecisionDefault || r[0].Params(p).Decision != gate.Estimate {
		t.Errorf("rule 0 = %+v", r[0])
	}
	if r[1].Kind != gate.ErrorRate || r[1].Max != 0 || r[1].MinExplicit {
		t.Errorf("rule 1 = %+v", r[1])
	}
	if r[2].Metric != gate.MetricLatency || r[2].Quantile != 0.5 || r[2].MaxLatency != 250*time.Millisecond ||
		r[2].Decision != gate.Sequential || r[2].Confidence != 0.95 || r[2].Tolerance != 3 {
		t.Errorf("rule 2 = %+v", r[2])
	}
	if tp := r[2].Params(p); tp != (gate.TestParams{Decision: gate.Sequential, Confidence: 0.95, Tolerance: 3}) {
		t.Errorf("rule 2 params = %+v", tp)
	}
	if r[3].Metric != gate.MetricDuration || r[3].MaxLatency != time.Hour || r[3].Route.Path.String() != "^/api/" || r[3].DryRun ||
		r[3].Params(p) != (gate.TestParams{Decision: gate.Sequential, Confidence: 0.999, Tolerance: 1.5}) {
		t.Errorf("rule 3 = %+v", r[3])
	}
	if r[4].Kind != gate.RequestRate || r[4].Min != 0.25 {
		t.Errorf("rule 4 = %+v", r[4])
	}
	if r[5].Kind != gate.ResponseCount || r[5].Max != 3 || fmt.Sprint(r[5].Count) != "[503 UNAVAILABLE 4xx]" {
		t.Errorf("rule 5 = %+v", r[5])
	}
	if r[6].Kind != gate.ResponseCount || r[6].Max != 0 || fmt.Sprint(r[6].Count) != "[reset]" || r[6].Line != 67 {
		t.Errorf("rule 6 = %+v", r[6])
	}
	if c := r[7]; c.Kind != gate.CompareErrorRate || c.Target != "web" || c.Baseline != "jobs" || c.MaxIncrease != 0.005 || c.Decision != gate.Sequential || c.Line != 70 {
		t.Errorf("rule 7 = %+v", c)
	}
	if c := r[8]; c.Kind != gate.CompareLatency || c.Target != "" || c.Baseline != "web" || c.Quantile != 0.99 || c.MaxRatio != 1.25 ||
		c.MaxIncreaseLatency != 0 || c.Metric != gate.MetricDuration || c.MinRequests != 200 || c.Route.Method != "GET" || c.Params(p).Decision != gate.Estimate {
		t.Errorf("rule 8 = %+v", c)
	}
	if c := r[9]; c.Kind != gate.CompareLatency || c.Target != "jobs" || c.Quantile != 0.9 || c.MaxRatio != 0 ||
		c.MaxIncreaseLatency != 20*time.Millisecond || c.Metric != gate.MetricLatency || !c.DryRun {
		t.Errorf("rule 9 = %+v", c)
	}
}

func TestMinimalDefaults(t *testing.T) {
	p := mustParseFile(t, "testdata/valid/minimal.yaml")
	if p.Warmup != 0 || p.MinRequests != gate.DefaultMinRequests || p.OnInconclusive != gate.Inconclusive ||
		p.CoverageFloor != gate.DefaultCoverageFloor || p.Classification.FailOn != nil || p.RedactHeaders != nil {
		t.Errorf("defaults not applied: %+v", p)
	}
	// The test's defaults are written into the policy, as Marshal shows them.
	if p.Decision != gate.Sequential || p.Confidence != gate.DefaultConfidence || p.Tolerance != gate.DefaultTolerance || p.StopOnPass || p.KeepTapping {
		t.Errorf("decision defaults not applied: %v %v %v %v %v", p.Decision, p.Confidence, p.Tolerance, p.StopOnPass, p.KeepTapping)
	}
	if r := p.Rules[0]; r.Decision != gate.DecisionDefault || r.Confidence != 0 || r.Tolerance != 0 {
		t.Errorf("rule knobs set without being written: %+v", r)
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

// checkErrorsExact is checkErrors with whole messages.
func checkErrorsExact(t *testing.T, file string, err error, want []pos) {
	t.Helper()
	checkErrors(t, file, err, want)
	for i, g := range Errors(err) {
		if i < len(want) && g.Msg != want[i].msg {
			t.Errorf("error %d message:\n got  %s\n want %s", i, g.Msg, want[i].msg)
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
			{27, 5, "spec.rules[3]", `rule "nothing" has no check: add exactly one of successRate, errorRate, latency, requestRate, count, compare`},
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

		"crosscheck.yaml": {
			{8, 15, "spec.crossCheck.required", `required is set but the cross-check is disabled (enabled: false): remove one of them`},
			{9, 17, "spec.crossCheck.onMismatch", `onMismatch "fail" is not warn (the default) or inconclusive`},
			{10, 24, "spec.crossCheck.minVolumeCoverage", `120% is more than 100%: write a percentage between 0% and 100%`},
			{12, 12, "spec.crossCheck.prometheus.url", `url "prometheus:9090" is not an http(s) URL such as http://prometheus.monitoring:9090`},
			{12, 12, "spec.crossCheck.prometheus.url", `url and namespace/service/port both say where Prometheus is: give the url, or the service reached through the apiserver, not both`},
			{14, 13, "spec.crossCheck.prometheus.port", `port 70000 is not between 1 and 65535`},
		},
		"decisions.yaml": {
			{6, 13, "spec.decision", `decision "bayesian" is not one of sequential (the default), estimate`},
			{7, 15, "spec.confidence", `confidence 100% must be above 50% and below 100%, e.g. 99%`},
			{8, 14, "spec.tolerance", `tolerance 1 must be greater than 1 (the default is 2: the bounds hold at half and at twice the budget)`},
			{9, 15, "spec.stopOnPass", `expected true or false, got string "no"`},
			{10, 15, "spec.stopOnFail", `expected true or false, got integer 0`},
			{15, 22, "spec.rules[0].errorRate.max", `errorRate max 0% cannot be decided sequentially: no sample proves a failure rate of exactly 0; use count: {of: [5xx, grpc-error, reset], max: 0}, or decision: estimate`},
			{17, 24, "spec.rules[1].successRate.min", `successRate min 100% cannot be decided sequentially: no sample proves a failure rate of exactly 0; use count: {of: [5xx, grpc-error, reset], max: 0}, or decision: estimate`},
			{20, 17, "spec.rules[2].confidence", `confidence 1% must be above 50% and below 100%, e.g. 99%: it is how sure a decision must be, not the risk of a wrong one; for at most a 1% risk write 99%`},
			{23, 17, "spec.rules[3].confidence", `confidence 50% must be above 50% and below 100%, e.g. 99%`},
			{24, 16, "spec.rules[3].tolerance", `tolerance 0.5 must be greater than 1 (the default is 2: the bounds hold at half and at twice the budget)`},
			{27, 15, "spec.rules[4].decision", `decision does not apply to a count rule, which has no statistical test (successRate, errorRate, latency and compare rules have one): remove decision`},
			{28, 16, "spec.rules[4].tolerance", `tolerance does not apply to a count rule, which has no statistical test (successRate, errorRate, latency and compare rules have one): remove tolerance`},
			{32, 17, "spec.rules[5].confidence", `confidence has no effect: the rule decides by estimate (decision: estimate on the rule), which compares the sample's point estimate with the threshold and has no error bounds; remove confidence, or set decision: sequential`},
			{35, 15, "spec.rules[6].decision", `decision "Sequential" is not one of sequential, estimate (default: spec.decision)`},
			{38, 16, "spec.rules[7].tolerance", `expected a number such as 2 or 1.5, got string "2": remove the quotes`},
		},
		"compare.yaml": {
			{11, 25, "spec.rules[0].compare.baseline", `baseline "prod" is not a declared target: use one of the names under spec.targets (canary, stable)`},
			{14, 25, "spec.rules[1].compare.baseline", `baseline "canary" is the rule's own target, and a target cannot be compared with itself: set baseline to the target to compare with (e.g. stable), or target to the one to judge (e.g. canary)`},
			{16, 5, "spec.rules[2].compare.baseline", `compare needs baseline: the name of the target to compare with, e.g. baseline: stable`},
			{18, 14, "spec.rules[3].compare", `compare needs one of errorRate, latency: e.g. errorRate: {maxIncrease: 1pp} or latency: {quantile: 0.99, maxRatio: 1.2}`},
			{21, 7, "spec.rules[4].compare", `compare has both errorRate and latency: a rule compares one thing; split it into one rule for each`},
			{25, 45, "spec.rules[5].compare.errorRate.maxRatio", `maxRatio cannot bound an error rate: a baseline with no failures has an error rate of 0, and no ratio of it can be decided (any multiple of 0 is 0); bound the increase in percentage points instead, e.g. maxIncrease: 1pp`},
			{27, 58, "spec.rules[6].compare.errorRate.maxIncrease", `maxIncrease must be more than 0, e.g. 1pp: with no margin this target would have to fail no more often than the baseline, which no sample can show`},
			{29, 58, "spec.rules[7].compare.errorRate.maxIncrease", `maxIncrease 100% would allow every request to fail: use less than 100pp, e.g. 1pp`},
			{31, 58, "spec.rules[8].compare.errorRate.maxIncrease", `5 is not a ratio between 0 and 1 (did you mean 5pp?): write percentage points such as 1pp, or a ratio such as 0.01`},
			{33, 58, "spec.rules[9].compare.errorRate.maxIncrease", `"a lot" is not an increase: write percentage points such as 1pp (or 1%), or a ratio such as 0.01`},
			{35, 69, "spec.rules[10].compare.latency.maxRatio", `maxRatio must be greater than 1, e.g. 1.2 for at most 20% slower: at 1 this target would have to be at least as fast as the baseline, a margin of nothing that no sample can show`},
			{37, 72, "spec.rules[11].compare.latency.maxIncrease", `maxIncrease must be longer than 0, e.g. 50ms: with no margin this target would have to be exactly as fast as the baseline, which no sample can show`},
			{39, 87, "spec.rules[12].compare.latency.maxIncrease", `latency has both maxRatio and maxIncrease: choose one, a ratio (maxRatio: 1.2) or a duration (maxIncrease: 50ms)`},
			{43, 7, "spec.rules[13].compare.latency.maxRatio", `compare latency needs maxRatio or maxIncrease: how much slower than the baseline's the quantile may be, e.g. maxRatio: 1.2 (at most 20% slower) or maxIncrease: 50ms`},
			{43, 27, "spec.rules[13].compare.latency.quantile", `quantile must be between 0 and 1 exclusive (e.g. 0.99); 99 looks like a percentile: write 0.99`},
			{43, 39, "spec.rules[13].compare.latency.metric", `metric "ttfb" is not latency (time to response headers, the default) or duration (time to end of stream)`},
			{44, 5, "spec.rules[14]", `rule "counted-too" has 2 checks (count, compare): a rule has exactly one; split it into one rule per check`},
		},
		"compare-one-target.yaml": {
			{12, 17, "spec.rules[0].compare.baseline", `baseline "stable" is the only target, so the rule has nothing to compare with it: add the target to judge (e.g. the canary) under spec.targets`},
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
			if exactFixtures[name] {
				checkErrorsExact(t, file, err, want)
			} else {
				checkErrors(t, file, err, want)
			}
		})
	}
}

// exactFixtures are the invalid fixtures whose table holds whole messages.
var exactFixtures = map[string]bool{"crosscheck.yaml": true, "decisions.yaml": true, "compare.yaml": true, "compare-one-target.yaml": true}

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
			[]pos{{7, 11, "spec.rules[0]", `expected a mapping of keys (name, target, route, successRate, errorRate, latency, requestRate, count, compare, minRequests, decision, confidence, tolerance, dryRun), got string "r"`}}},
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

// TestDecisionCases covers the test's knobs and compare rules inline, with
// whole messages. The spec starts on line 5.
func TestDecisionCases(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []pos // nil: valid
	}{
		{"decision estimate allows zero budgets", "  window: 1s\n  decision: estimate\n  targets: [{name: a}]\n  rules: [{name: r, errorRate: {max: 0}}, {name: s, successRate: {min: 100%}}]\n", nil},
		{"confidence and tolerance in range", "  window: 1s\n  confidence: 99.99%\n  tolerance: 1.01\n  targets: [{name: a}]\n  rules: [{name: r, errorRate: {max: 1%}, confidence: 0.999, tolerance: 10}]\n", nil},
		{"stopOnFail false, stopOnPass true", "  window: 1s\n  stopOnPass: true\n  stopOnFail: false\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n", nil},
		{"rule sequential under spec estimate, zero budget", "  window: 1s\n  decision: estimate\n  targets: [{name: a}]\n  rules: [{name: r, decision: sequential, errorRate: {max: 0%}}]\n",
			[]pos{{8, 60, "spec.rules[0].errorRate.max", "errorRate max 0% cannot be decided sequentially: no sample proves a failure rate of exactly 0; use count: {of: [5xx, grpc-error, reset], max: 0}, or decision: estimate"}}},
		{"rule confidence under spec estimate", "  window: 1s\n  decision: estimate\n  targets: [{name: a}]\n  rules: [{name: r, errorRate: {max: 1%}, confidence: 99%}]\n",
			[]pos{{8, 55, "spec.rules[0].confidence", "confidence has no effect: the rule decides by estimate (spec.decision: estimate), which compares the sample's point estimate with the threshold and has no error bounds; remove confidence, or set decision: sequential"}}},
		{"rule tolerance under estimate", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, decision: estimate, errorRate: {max: 1%}, tolerance: 3}]\n",
			[]pos{{7, 74, "spec.rules[0].tolerance", "tolerance has no effect: the rule decides by estimate (decision: estimate on the rule), which compares the sample's point estimate with the threshold and has no error bounds; remove tolerance, or set decision: sequential"}}},
		{"confidence on a requestRate rule", "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}, confidence: 99%}]\n",
			[]pos{{7, 56, "spec.rules[0].confidence", "confidence does not apply to a requestRate rule, which has no statistical test (successRate, errorRate, latency and compare rules have one): remove confidence"}}},
		{"confidence 0", "  window: 1s\n  confidence: 0\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 15, "spec.confidence", "confidence 0% must be above 50% and below 100%, e.g. 99%: it is how sure a decision must be, not the risk of a wrong one; for at most a 1% risk write 99%"}}},
		{"confidence over 100%", "  window: 1s\n  confidence: 99.9\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 15, "spec.confidence", "99.9 is not a ratio between 0 and 1 (did you mean 99.9%?): write a ratio such as 0.995 or a percentage such as 99.5%"}}},
		{"tolerance negative", "  window: 1s\n  tolerance: -2\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 14, "spec.tolerance", "tolerance -2 must be greater than 1 (the default is 2: the bounds hold at half and at twice the budget)"}}},
		{"tolerance infinite", "  window: 1s\n  tolerance: .inf\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 14, "spec.tolerance", "expected a finite number, got .inf"}}},
		{"tolerance words", "  window: 1s\n  tolerance: double\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n",
			[]pos{{6, 14, "spec.tolerance", `expected a number such as 2 or 1.5, got string "double"`}}},
		{"spec knob problem is reported once, not per rule", "  window: 1s\n  tolerance: 1\n  targets: [{name: a}]\n  rules: [{name: r, errorRate: {max: 1%}}, {name: s, successRate: {min: 99%}}]\n",
			[]pos{{6, 14, "spec.tolerance", "tolerance 1 must be greater than 1 (the default is 2: the bounds hold at half and at twice the budget)"}}},
		// Compare rules.
		{"compare with a route", "  window: 1s\n  targets: [{name: s}, {name: c}, {name: d}]\n  rules: [{name: r, route: {path: ^/x}, compare: {baseline: s, errorRate: {maxIncrease: 0.1pp}}}]\n", nil},
		{"compare increase quoted number", "  window: 1s\n  targets: [{name: s}, {name: c}]\n  rules: [{name: r, compare: {baseline: s, errorRate: {maxIncrease: \"0.01\"}}}]\n",
			[]pos{{7, 69, "spec.rules[0].compare.errorRate.maxIncrease", `"0.01" is a quoted number: write a ratio such as 0.01 unquoted, or percentage points such as 1pp`}}},
		{"compare increase negative", "  window: 1s\n  targets: [{name: s}, {name: c}]\n  rules: [{name: r, compare: {baseline: s, errorRate: {maxIncrease: -1pp}}}]\n",
			[]pos{{7, 69, "spec.rules[0].compare.errorRate.maxIncrease", `"-1pp" is negative: write how much higher the rate may be, e.g. 1pp`}}},
		{"compare increase over 100pp", "  window: 1s\n  targets: [{name: s}, {name: c}]\n  rules: [{name: r, compare: {baseline: s, errorRate: {maxIncrease: 150pp}}}]\n",
			[]pos{{7, 69, "spec.rules[0].compare.errorRate.maxIncrease", "150pp is more than 100 percentage points: a rate cannot rise by more than 100%"}}},
		{"compare ratio below 1", "  window: 1s\n  targets: [{name: s}, {name: c}]\n  rules: [{name: r, compare: {baseline: s, latency: {quantile: 0.9, maxRatio: 0.8}}}]\n",
			[]pos{{7, 79, "spec.rules[0].compare.latency.maxRatio", "maxRatio must be greater than 1, e.g. 1.2 for at most 20% slower: at 0.8 this target would have to be at least as fast as the baseline, a margin of nothing that no sample can show"}}},
		{"compare latency without quantile", "  window: 1s\n  targets: [{name: s}, {name: c}]\n  rules: [{name: r, compare: {baseline: s, latency: {maxIncrease: 1s}}}]\n",
			[]pos{{7, 44, "spec.rules[0].compare.latency.quantile", "latency needs quantile: e.g. quantile: 0.99 for p99"}}},
		{"compare unknown target too", "  window: 1s\n  targets: [{name: s}, {name: c}]\n  rules: [{name: r, target: x, compare: {baseline: s, errorRate: {maxIncrease: 1pp}}}]\n",
			[]pos{{7, 29, "spec.rules[0].target", `rule refers to target "x", which is not declared: use one of the names under spec.targets (c, s), or remove target to apply the rule to every target`}}},
		{"compare null", "  window: 1s\n  targets: [{name: s}, {name: c}]\n  rules: [{name: r, compare: ~}]\n",
			[]pos{{7, 11, "spec.rules[0]", `rule "r" has no check: add exactly one of successRate, errorRate, latency, requestRate, count, compare`}}},
		{"compare key misspelt", "  window: 1s\n  targets: [{name: s}, {name: c}]\n  rules: [{name: r, compare: {basline: s, errorRate: {maxIncrease: 1pp}}}]\n",
			[]pos{{7, 21, "spec.rules[0].compare.baseline", "compare needs baseline: the name of the target to compare with, e.g. baseline: stable"}, {7, 31, "spec.rules[0].compare.basline", `unknown key "basline": did you mean "baseline"?`}}},
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
			checkErrorsExact(t, "t.yaml", err, tt.want)
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
		// decision: estimate, because 100% cannot be decided sequentially.
		doc := header + "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, decision: estimate, successRate: {min: " + tt.in + "}}]\n"
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
		doc := header + "  window: 1s\n  targets: [{name: a}]\n  rules: [{name: r, decision: estimate, successRate: {min: \"" + s + "\"}}]\n"
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

func TestCompareFixture(t *testing.T) {
	p := mustParseFile(t, "testdata/valid/compare.yaml")
	if p.Decision != gate.Sequential || p.Confidence != 0.99 || p.Tolerance != 2 || p.StopOnPass || p.KeepTapping {
		t.Errorf("spec knobs = %v %v %v %v %v", p.Decision, p.Confidence, p.Tolerance, p.StopOnPass, p.KeepTapping)
	}
	want := []gate.Rule{
		{Name: "success-rate", Kind: gate.SuccessRate, Min: 0.99, Line: 22},
		{Name: "canary-errors", Kind: gate.CompareErrorRate, Target: "canary", Baseline: "stable", MaxIncrease: 0.01, Line: 24},
		{Name: "canary-p99", Kind: gate.CompareLatency, Baseline: "stable", Quantile: 0.99, MaxRatio: 1.2, Line: 29},
		{Name: "canary-p50", Kind: gate.CompareLatency, Baseline: "stable", Quantile: 0.5, MaxIncreaseLatency: 50 * time.Millisecond, Metric: gate.MetricDuration, Confidence: 0.95, Line: 31},
		{Name: "canary-errors-ratio", Kind: gate.CompareErrorRate, Baseline: "stable", MaxIncrease: 0.02, Decision: gate.Estimate, Line: 34},
		{Name: "canary-errors-percent", Kind: gate.CompareErrorRate, Baseline: "stable", MaxIncrease: 0.025, Tolerance: 1.5, Line: 37},
	}
	if len(p.Rules) != len(want) {
		t.Fatalf("rules = %d, want %d", len(p.Rules), len(want))
	}
	for i, w := range want {
		if g := p.Rules[i]; fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
			t.Errorf("rule %d = %+v\nwant     %+v", i, g, w)
		}
	}
	// Marshal writes compare rules in percentage points and keeps the
	// rules' own knobs only.
	out, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"maxIncrease: 1pp\n", "maxIncrease: 2pp\n", "maxIncrease: 2.5pp\n", "maxRatio: 1.2\n", "maxIncrease: 50ms\n", "decision: sequential\n", "confidence: 99%\n", "tolerance: 2\n", "stopOnFail: true\n"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("Marshal lacks %q:\n%s", s, out)
		}
	}
	if n := strings.Count(string(out), "decision: "); n != 2 {
		t.Errorf("Marshal writes decision %d times, want 2 (spec, and the rule that sets it):\n%s", n, out)
	}
}

// TestKnobMessagesAgreeWithCore: the loader words a bad confidence or
// tolerance written in the policy exactly as gate.CheckParams does.
func TestKnobMessagesAgreeWithCore(t *testing.T) {
	rule := &gate.Rule{Kind: gate.LatencyQuantile, Quantile: 0.5}
	for _, c := range []float64{0.5, 0.500001, 0.75, 0.99, 0.999999, 1} {
		err := gate.CheckParams(rule, &gate.Policy{Confidence: c})
		got := confidenceProblem(c)
		if (err == nil) != (got == "") || err != nil && err.Error() != got {
			t.Errorf("confidence %v: loader %q, core %v", c, got, err)
		}
	}
	for _, k := range []float64{0.5, 1, 1.0001, 1.5, 2, 100} {
		err := gate.CheckParams(rule, &gate.Policy{Tolerance: k})
		got := toleranceProblem(k)
		if (err == nil) != (got == "") || err != nil && err.Error() != got {
			t.Errorf("tolerance %v: loader %q, core %v", k, got, err)
		}
	}
}
