package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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
		"final", "windowSeconds", "elapsedSeconds", "timeKnown", "targets", "rules"}
	targetKeys := []string{"name", "resource", "requests", "successes", "failures", "inFlight", "successRate",
		"successRateInterval", "latencyMs", "durationMs", "statusCodes", "grpcCodes", "resets", "noResponse",
		"warmupRequests", "orphanEvents", "evictedInFlight", "otherPodsRequests", "coverage", "pods", "notes"}
	podKeys := []string{"name", "requests", "successes", "failures", "inFlight", "successRate", "latencyMs"}
	ruleKeys := []string{"name", "kind", "target", "route", "verdict", "observed", "unit", "threshold",
		"samples", "required", "reason", "dryRun", "line"}
	has := func(t *testing.T, where string, m map[string]any, keys []string) {
		t.Helper()
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: key %q missing", where, k)
			}
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
				wantUnit := map[string]string{"successRate": "ratio", "errorRate": "ratio", "latency": "seconds", "requestRate": "rps", "count": "count"}[kind]
				if r["unit"] != wantUnit {
					t.Errorf("%s: unit %v, want %s", where, r["unit"], wantUnit)
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
