package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tapgate/tapgate/gate"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./gate/report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./gate/report -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func render(t *testing.T, rep Reporter, f fixture) []byte {
	t.Helper()
	v, meta := f.build()
	var b bytes.Buffer
	if err := rep(&b, v, meta); err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			golden(t, f.name+".txt.golden", render(t, Text, f))
			golden(t, f.name+".json.golden", render(t, JSON, f))
		})
	}
}

// TestDeterministic renders each fixture twice, the second time with pods
// and status maps rebuilt in another order: the output must not change.
func TestDeterministic(t *testing.T) {
	for _, f := range fixtures {
		for _, rep := range []struct {
			name string
			r    Reporter
		}{{"text", Text}, {"json", JSON}} {
			a := render(t, rep.r, f)
			v, meta := f.build()
			for i := range v.Targets {
				tr := &v.Targets[i]
				for l, r := 0, len(tr.Pods)-1; l < r; l, r = l+1, r-1 {
					tr.Pods[l], tr.Pods[r] = tr.Pods[r], tr.Pods[l]
				}
				m := map[uint32]uint64{}
				for k, n := range tr.Status {
					m[k] = n
				}
				tr.Status = m
			}
			var b bytes.Buffer
			if err := rep.r(&b, v, meta); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b.Bytes()) {
				t.Errorf("%s %s: output depends on input order", f.name, rep.name)
			}
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			v, meta := f.build()
			want := Build(v, meta)
			var got Document
			dec := json.NewDecoder(bytes.NewReader(render(t, JSON, f)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("round trip changed the document:\n got %+v\nwant %+v", got, *want)
			}
		})
	}
}

// TestJSONShape checks the document structurally, as a consumer without our
// Go types sees it: every key present, nulls exactly where there is no value.
func TestJSONShape(t *testing.T) {
	top := []string{"apiVersion", "kind", "metadata", "verdict", "reason", "exitCode", "onInconclusive",
		"final", "windowSeconds", "elapsedSeconds", "timeKnown", "stoppedEarly", "targets", "rules"}
	targetKeys := []string{"name", "resource", "requests", "successes", "failures", "inFlight", "successRate",
		"successRateInterval", "latencyMs", "durationMs", "statusCodes", "grpcCodes", "resets", "noResponse",
		"warmupRequests", "orphanEvents", "evictedInFlight", "otherPodsRequests", "coverage", "pods", "notes"}
	podKeys := []string{"name", "requests", "successes", "failures", "inFlight", "successRate", "latencyMs"}
	ruleKeys := []string{"name", "kind", "target", "route", "verdict", "observed", "unit", "threshold",
		"samples", "required", "reason", "dryRun", "line", "decided"}
	testKeys := []string{"confidence", "tolerance", "good", "bad", "badSamples", "llr", "passLlr", "failBoundary",
		"passBoundary", "decidedAfter", "moreSamples", "cleanPass"}
	compareKeys := []string{"baseline", "baselineSamples", "unit", "baselineObserved", "targetObserved",
		"baselineLow", "baselineHigh", "bound"}
	has := func(t *testing.T, where string, m map[string]any, keys []string) {
		t.Helper()
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: key %q missing", where, k)
			}
		}
	}
	bounds := func(t *testing.T, where string, x any) {
		t.Helper()
		b, ok := x.(map[string]any)
		if !ok {
			t.Errorf("%s: want {low, high}, got %v", where, x)
			return
		}
		has(t, where, b, []string{"low", "high"})
		if hi, ok := b["high"].(float64); ok && hi < b["low"].(float64) {
			t.Errorf("%s: high %v below low %v", where, hi, b["low"])
		}
	}
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			out := render(t, JSON, f)
			if !bytes.HasSuffix(out, []byte("}\n")) || !bytes.HasPrefix(out, []byte("{\n  \"apiVersion\"")) {
				t.Errorf("want a 2-space indented object ending in a newline, got %q...", out[:min(len(out), 40)])
			}
			var doc map[string]any
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			has(t, "document", doc, top)
			if doc["apiVersion"] != APIVersion || doc["kind"] != Kind {
				t.Errorf("apiVersion/kind = %v/%v", doc["apiVersion"], doc["kind"])
			}
			switch doc["verdict"] {
			case "pass", "fail", "inconclusive":
			default:
				t.Errorf("verdict %v", doc["verdict"])
			}
			md, _ := doc["metadata"].(map[string]any)
			has(t, "metadata", md, []string{"policy", "policyFile", "tapgateVersion", "source"})
			targets, ok := doc["targets"].([]any)
			if !ok || len(targets) == 0 {
				t.Fatalf("targets = %v", doc["targets"])
			}
			for _, x := range targets {
				tg := x.(map[string]any)
				where := "targets[" + tg["name"].(string) + "]"
				has(t, where, tg, targetKeys)
				zero := tg["requests"].(float64) == 0
				if (tg["successRate"] == nil) != zero || (tg["successRateInterval"] == nil) != zero || (tg["latencyMs"] == nil) != zero {
					t.Errorf("%s: successRate/interval/latencyMs must be null exactly when requests is 0: %v %v %v",
						where, tg["successRate"], tg["successRateInterval"], tg["latencyMs"])
				}
				if _, ok := tg["statusCodes"].(map[string]any); !ok {
					t.Errorf("%s: statusCodes must be an object, got %v", where, tg["statusCodes"])
				}
				if _, ok := tg["pods"].([]any); !ok {
					t.Errorf("%s: pods must be an array, got %v", where, tg["pods"])
				}
				if _, ok := tg["notes"].([]any); !ok {
					t.Errorf("%s: notes must be an array, got %v", where, tg["notes"])
				}
				for _, p := range tg["pods"].([]any) {
					has(t, where+".pods", p.(map[string]any), podKeys)
					if lat, ok := p.(map[string]any)["latencyMs"].(map[string]any); ok {
						if _, iv := lat["p99Interval"]; iv {
							t.Errorf("%s.pods: pods carry no quantile intervals", where)
						}
					}
				}
				for _, key := range []string{"latencyMs", "durationMs"} {
					if q, ok := tg[key].(map[string]any); ok {
						for _, p := range []string{"p50Interval", "p95Interval", "p99Interval"} {
							bounds(t, where+"."+key+"."+p, q[p])
						}
					}
				}
			}
			for _, x := range doc["rules"].([]any) {
				r := x.(map[string]any)
				where := "rules[" + r["name"].(string) + "]"
				has(t, where, r, ruleKeys)
				kind := r["kind"].(string)
				_, hasIv := r["interval"]
				rate := kind == "successRate" || kind == "errorRate"
				if hasIv && (!rate || r["observed"] == nil) {
					t.Errorf("%s: interval present on a %s rule with observed %v", where, kind, r["observed"])
				}
				if rate && r["observed"] != nil && !hasIv {
					t.Errorf("%s: rate rule with a value has no interval", where)
				}
				wantUnit := map[string]string{"successRate": "ratio", "errorRate": "ratio", "latency": "seconds", "requestRate": "rps", "count": "count",
					"compareErrorRate": "ratio", "compareLatency": "factor"}[kind]
				if kind == "compareLatency" && strings.Contains(r["threshold"].(string), " + ") {
					wantUnit = "seconds"
				}
				if r["unit"] != wantUnit {
					t.Errorf("%s: unit %v, want %s", where, r["unit"], wantUnit)
				}
				counting := kind == "requestRate" || kind == "count"
				dec, hasDec := r["decision"]
				if counting == hasDec || (hasDec && dec != "sequential" && dec != "estimate") {
					t.Errorf("%s: decision %v on a %s rule", where, dec, kind)
				}
				if test, ok := r["test"]; ok {
					if dec != "sequential" {
						t.Errorf("%s: test figures on a %v rule", where, dec)
					}
					has(t, where+".test", test.(map[string]any), testKeys)
				}
				if qi, ok := r["quantileInterval"]; ok {
					if kind != "latency" && kind != "compareLatency" {
						t.Errorf("%s: quantileInterval on a %s rule", where, kind)
					}
					bounds(t, where+".quantileInterval", qi)
				}
				if c, ok := r["compare"]; ok != strings.HasPrefix(kind, "compare") {
					t.Errorf("%s: compare present = %v on a %s rule", where, ok, kind)
				} else if ok {
					has(t, where+".compare", c.(map[string]any), compareKeys)
				}
			}
		})
	}
}

// TestNoSecrets: URL credentials in the source description never reach a
// report.
func TestNoSecrets(t *testing.T) {
	f := fixture{"interrupted-partial", interruptedPartial}
	for _, rep := range []Reporter{Text, JSON} {
		out := string(render(t, rep, f))
		if strings.Contains(out, "s3cret") || strings.Contains(out, "admin") {
			t.Errorf("credentials leaked:\n%s", out)
		}
		if !strings.Contains(out, "https://"+gate.Redacted+"@k8s.example.com:6443") {
			t.Errorf("source lost its host:\n%s", out)
		}
	}
}

// TestTextWidth: the targets and pods tables of a typical report fit in
// 120 columns (the rules table ends with the free-text reason, which may
// run longer).
func TestTextWidth(t *testing.T) {
	for _, f := range fixtures {
		out := string(render(t, Text, f))
		// The headline and the context lines are sentences; the tables
		// are what must fit.
		for _, l := range strings.Split(out, "\n")[1:] {
			if strings.HasPrefix(l, "RULE") {
				break
			}
			if n := utf8.RuneCountInString(l); n > 120 && !strings.Contains(l, ":  ") {
				t.Errorf("%s: line of %d columns: %q", f.name, n, l)
			}
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasSuffix(l, " ") {
				t.Errorf("%s: trailing space in %q", f.name, l)
			}
		}
	}
}

func TestNilVerdict(t *testing.T) {
	for _, rep := range []Reporter{Text, JSON} {
		if err := rep(&bytes.Buffer{}, nil, Meta{}); err == nil {
			t.Error("nil verdict: want an error")
		}
	}
}

// TestEmptyVerdict: a verdict with no targets and no rules still renders.
func TestEmptyVerdict(t *testing.T) {
	v := &gate.Verdict{Outcome: gate.Inconclusive, Final: true}
	var b bytes.Buffer
	if err := Text(&b, v, Meta{ExitCode: 3}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"INCONCLUSIVE  no rules to evaluate (exit 3)", "no targets", "no rules"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := JSON(&b, v, Meta{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"targets": [],`) || !strings.Contains(b.String(), `"rules": []`) {
		t.Errorf("empty lists must be [], got\n%s", b.String())
	}
}

// TestNonFinite: NaN or Inf in a verdict (a bug upstream) must not break
// the JSON output, which has no NaN.
func TestNonFinite(t *testing.T) {
	v, meta := passTwoTargets()
	nan := 0.0
	nan /= nan
	v.Targets[0].SuccessRate = nan
	v.Targets[0].Coverage = nan
	v.Rules[0].Observed = nan
	var b bytes.Buffer
	if err := JSON(&b, v, meta); err != nil {
		t.Fatal(err)
	}
	d := Build(v, meta)
	if d.Targets[0].SuccessRate != nil || d.Rules[0].Observed != nil || d.Targets[0].Coverage != 0 {
		t.Errorf("non-finite values must become null/0: %+v %+v", d.Targets[0].SuccessRate, d.Rules[0].Observed)
	}
	b.Reset()
	if err := Text(&b, v, meta); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "NaN") {
		t.Errorf("NaN printed:\n%s", b.String())
	}
}

func BenchmarkText(b *testing.B) {
	v, meta := failDryRun()
	b.ReportAllocs()
	for b.Loop() {
		if err := Text(io.Discard, v, meta); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSON(b *testing.B) {
	v, meta := failDryRun()
	b.ReportAllocs()
	for b.Loop() {
		if err := JSON(io.Discard, v, meta); err != nil {
			b.Fatal(err)
		}
	}
}

// TestJSONSequentialFields pins the new fields' nulls and omissions: an
// unknown MoreSamples, an unbounded high, an unbounded baseline, an
// unknown decision time, and non-finite figures are null or absent, never
// invalid JSON.
func TestJSONSequentialFields(t *testing.T) {
	v, meta := compareBaseline()
	inf := math.Inf(1)
	v.Rules[1].Test.LLR = inf
	var b bytes.Buffer
	if err := JSON(&b, v, meta); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		StoppedEarly bool    `json:"stoppedEarly"`
		StopReason   *string `json:"stopReason"`
		Rules        []map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.StoppedEarly || doc.StopReason != nil {
		t.Errorf("a full window: stoppedEarly %v, stopReason %v", doc.StoppedEarly, doc.StopReason)
	}
	p99 := doc.Rules[1]["test"].(map[string]any)
	if p99["moreSamples"] != nil || p99["llr"] != nil {
		t.Errorf("unknown moreSamples and an infinite llr must be null: %v %v", p99["moreSamples"], p99["llr"])
	}
	if _, ok := p99["decidedAtSeconds"]; ok {
		t.Error("decidedAtSeconds present on an undecided rule")
	}
	if got := doc.Rules[3]["test"].(map[string]any)["decidedAtSeconds"]; got != 23.2 {
		t.Errorf("decidedAtSeconds = %v, want 23.2", got)
	}
	waiting := doc.Rules[4]["compare"].(map[string]any)
	if _, ok := waiting["baselineHigh"]; !ok || waiting["baselineHigh"] != nil {
		t.Errorf("an unbounded baselineHigh must be present and null: %v", waiting)
	}

	v, meta = stoppedEarly()
	d := Build(v, meta)
	if !d.StoppedEarly || !strings.Contains(d.StopReason, "canary/success-rate failed") || !strings.Contains(d.Reason, "stopped after 2.1s of the 40s window") {
		t.Errorf("stop not reported: %v %q %q", d.StoppedEarly, d.StopReason, d.Reason)
	}
	if qi := d.Rules[1].QuantileInterval; qi == nil || qi.High != nil || qi.Low <= 0 {
		t.Errorf("a p99 of 64 samples has a lower bound and no upper one: %+v", qi)
	}
	if d.Rules[2].Decision != "" || d.Rules[2].Test != nil {
		t.Errorf("a requestRate rule has no decision: %+v", d.Rules[2])
	}
	if lat := d.Targets[0].LatencyMs; lat.P99Interval == nil || lat.P99Interval.High != nil || lat.P50Interval.High == nil {
		t.Errorf("target intervals: %+v", lat)
	}
	if d.Targets[0].Pods[0].LatencyMs.P99Interval != nil {
		t.Error("pods carry no intervals")
	}
}

// TestGuidance: what the report says would decide each undecided rule.
func TestGuidance(t *testing.T) {
	seq := func(n uint64, more int64) gate.RuleResult {
		return gate.RuleResult{Name: "r", Target: "t", Kind: gate.ErrorRate, Outcome: gate.Inconclusive, Samples: n, Required: 100,
			Decision: gate.Sequential, Test: &gate.TestResult{MoreSamples: more}}
	}
	for _, tc := range []struct {
		name      string
		r         gate.RuleResult
		timeKnown bool
		want      string
	}{
		{"more, time known", seq(412, 472), true, "about 472 more requests would likely decide it (~1m9s more at 6.87/s)"},
		{"more, time unknown", seq(412, 472), false, "about 472 more requests would likely decide it"},
		{"one more", seq(412, 1), true, "about 1 more request would likely decide it (~146ms more at 6.87/s)"},
		{"unlikely", seq(412, -1), true, "unlikely to decide at the observed rate: it is too close to the threshold"},
		{"no traffic", seq(0, 611), true, "no matching requests; at least 611 needed"},
		{"estimate below minimum", gate.RuleResult{Kind: gate.SuccessRate, Outcome: gate.Inconclusive, Samples: 57, Required: 100,
			Decision: gate.Estimate}, true, "at least 43 more requests to reach its minimum of 100 (~45s more at 0.95/s)"},
		{"decided", func() gate.RuleResult { r := seq(412, 0); r.Outcome = gate.Fail; return r }(), true, ""},
		{"request rate", gate.RuleResult{Kind: gate.RequestRate, Outcome: gate.Inconclusive, Samples: 312, Required: 1}, false, ""},
	} {
		v := &gate.Verdict{Window: time.Minute, Elapsed: time.Minute, TimeKnown: tc.timeKnown, Rules: []gate.RuleResult{tc.r}}
		got := ""
		if gs := guidance(v); len(gs) == 1 {
			got = gs[0].text
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
