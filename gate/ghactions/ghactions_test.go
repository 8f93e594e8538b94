package ghactions

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/report"
)

var update = flag.Bool("update", false, "rewrite golden files")

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
		t.Fatalf("%v (run go test ./gate/ghactions -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./gate/ghactions -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// env is an injected environment.
type env map[string]string

func (e env) get(k string) string { return e[k] }

const workspace = "/github/workspace"

func latencyRule(name, target string, outcome gate.Outcome, observed float64, line int) gate.RuleResult {
	return gate.RuleResult{Name: name, Kind: gate.LatencyQuantile, Target: target, Outcome: outcome,
		Observed: observed, HasValue: true, Threshold: "p99 <= 300ms", Samples: 4210, Required: 100, Line: line,
		Reason: fmt.Sprintf("p99 latency ≈ %gms > 300ms: 63 of 4210 requests slower than 300ms, 42 allowed", observed*1000)}
}

func failVerdict() (*gate.Verdict, report.Meta) {
	v := &gate.Verdict{
		Policy: "checkout-release", Outcome: gate.Fail, Final: true,
		Window: time.Minute, Elapsed: 50 * time.Second, TimeKnown: true,
		Targets: []gate.TargetResult{{Name: "canary", Resource: "deployment/checkout", Coverage: 1,
			Stats: gate.Stats{Requests: 4210, Successes: 4200, Failures: 10, SuccessRate: 4200.0 / 4210,
				Interval: gate.Interval{Low: 0.9956, High: 0.9987}}}},
		Rules: []gate.RuleResult{
			{Name: "success-rate", Kind: gate.SuccessRate, Target: "canary", Outcome: gate.Pass, HasValue: true,
				Observed: 4200.0 / 4210, Threshold: ">= 99.5%", Samples: 4210, Required: 100, Line: 18,
				Interval: &gate.Interval{Low: 0.9956, High: 0.9987},
				Reason:   "success rate 99.762% meets >= 99.5% (10 failures in 4210 requests)"},
			latencyRule("p99-latency", "canary", gate.Fail, 0.812, 21),
			{Name: "traffic-present", Kind: gate.RequestRate, Target: "canary", Outcome: gate.Inconclusive,
				Threshold: ">= 100 rps", Samples: 4210, Required: 1, Line: 24,
				Reason: "coverage 40% of the window: the rate per second is not reliable"},
			latencyRule("tail, 100% of 50:50", "canary", gate.Fail, 2.5, 27),
		},
	}
	v.Rules[3].DryRun = true
	return v, report.Meta{Version: "v0.1.0", PolicyFile: workspace + "/.github/tapgate/checkout.yaml",
		Source: "live tap via https://10.96.0.1:443", ExitCode: gate.ExitFail}
}

// manyFailures has more failing rules than GitHub shows annotations.
func manyFailures() (*gate.Verdict, report.Meta) {
	v := &gate.Verdict{Policy: "many", Outcome: gate.Fail, Final: true, TimeKnown: true, Window: time.Minute, Elapsed: time.Minute}
	for i := 0; i < 12; i++ {
		v.Rules = append(v.Rules, latencyRule(fmt.Sprintf("rule-%02d", i), "web", gate.Fail, 0.5, 10+i*3))
	}
	return v, report.Meta{PolicyFile: "policies/many.yaml", ExitCode: gate.ExitFail}
}

func passVerdict() (*gate.Verdict, report.Meta) {
	v := &gate.Verdict{Policy: "web", Outcome: gate.Pass, Final: true, TimeKnown: true, Window: time.Minute, Elapsed: time.Minute,
		Rules: []gate.RuleResult{latencyRule("p99-latency", "web", gate.Pass, 0.1, 9)}}
	v.Rules[0].Reason = "p99 latency ≈ 100ms <= 300ms"
	// A built-in policy has no file to annotate.
	return v, report.Meta{PolicyFile: "builtin:http-golden-signals", ExitCode: gate.ExitPass}
}

// stoppedVerdict is a live run that stopped 2.1s into its window on a
// decided sequential FAIL, with quantile intervals in the targets table and
// an undecided rule.
func stoppedVerdict() (*gate.Verdict, report.Meta) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	lat := gate.Quantiles{P50: ms(24.9), P95: ms(161.2), P99: ms(402.5), Valid: true,
		CI50: gate.DurationInterval{Low: ms(15.9), High: ms(37), HighKnown: true},
		CI95: gate.DurationInterval{Low: ms(114.5)},
		CI99: gate.DurationInterval{Low: ms(252.6)}}
	test := &gate.TestResult{Confidence: 0.99, Tolerance: 2, Good: 0.0025, Bad: 0.01, BadSamples: 4, LLR: 5.1, PassLLR: 5.1,
		FailBoundary: 4.605, PassBoundary: -4.605, DecidedAfter: 63, DecidedAt: 2100 * time.Millisecond, CleanPass: 611}
	v := &gate.Verdict{
		Policy: "checkout-canary", Outcome: gate.Fail, Final: true,
		Window: 40 * time.Second, Elapsed: 2100 * time.Millisecond, TimeKnown: true,
		StoppedEarly: true, StopReason: "canary/success-rate failed 2.1s into the window and no later traffic can undo it",
		Targets: []gate.TargetResult{{Name: "canary", Resource: "deployment/checkout-canary", Coverage: 1,
			Stats: gate.Stats{Requests: 63, Successes: 59, Failures: 4, SuccessRate: 59.0 / 63,
				Interval: gate.Interval{Low: 0.8478, High: 0.9751}, Latency: lat}}},
		Rules: []gate.RuleResult{
			{Name: "success-rate", Kind: gate.SuccessRate, Target: "canary", Outcome: gate.Fail, HasValue: true,
				Observed: 59.0 / 63, Threshold: ">= 99.5%", Samples: 63, Required: 100, Line: 25,
				Interval: &gate.Interval{Low: 0.8478, High: 0.9751}, Decision: gate.Sequential, Decided: true, Test: test,
				Reason: "failed at 99% confidence after 63 requests, 4 failed: a release with success 99.75% or more fails at most 1% of the time; no later traffic can undo it"},
			{Name: "p99-latency", Kind: gate.LatencyQuantile, Target: "canary", Outcome: gate.Inconclusive, HasValue: true,
				Observed: 0.4025, Threshold: "p99 <= 300ms", Samples: 63, Required: 100, Line: 27,
				Decision: gate.Sequential, QuantileCI: &lat.CI99,
				Test: &gate.TestResult{Confidence: 0.99, Tolerance: 2, Good: 0.005, Bad: 0.02, BadSamples: 1, LLR: 0.44, PassLLR: 0.44,
					FailBoundary: 4.605, PassBoundary: -4.605, MoreSamples: 586, CleanPass: 304},
				Reason: "undecided at 99% confidence: 1 of 63 slower than 300ms (1.587%), not yet enough to tell 0.5% from 2%; about 586 more samples would likely decide it at the observed rate (~20s at 30/s)"},
		},
	}
	return v, report.Meta{Version: "v0.2.0", PolicyFile: workspace + "/.github/tapgate/canary.yaml",
		Source: "live tap via https://10.96.0.1:443", ExitCode: gate.ExitFail}
}

func TestPublishGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func() (*gate.Verdict, report.Meta)
	}{
		{"fail", failVerdict},
		{"many-failures", manyFailures},
		{"pass", passVerdict},
		{"stopped-early", stoppedVerdict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := env{
				"GITHUB_ACTIONS":      "true",
				"GITHUB_WORKSPACE":    workspace,
				"GITHUB_OUTPUT":       filepath.Join(dir, "output"),
				"GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary"),
			}
			var stdout bytes.Buffer
			v, meta := tc.build()
			if err := Publish(New(&stdout, e.get), v, meta, "tapgate-reports/tapgate-report.json"); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".stdout.golden", stdout.Bytes())
			out, err := os.ReadFile(e["GITHUB_OUTPUT"])
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".output.golden", out)
			summary, err := os.ReadFile(e["GITHUB_STEP_SUMMARY"])
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".summary.md.golden", summary)

			// The summary is the Markdown report, followed by the newline
			// the file command adds.
			var md bytes.Buffer
			if err := report.Markdown(&md, v, meta); err != nil {
				t.Fatal(err)
			}
			if string(summary) != md.String()+"\n" {
				t.Error("the step summary is not the Markdown report")
			}
		})
	}
}

// TestAnnotationLimit: at most MaxAnnotations errors, the last one saying
// how many rules are only in the summary.
func TestAnnotationLimit(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 12, 50} {
		v := &gate.Verdict{Policy: "p", Outcome: gate.Fail, Final: true}
		for i := 0; i < n; i++ {
			v.Rules = append(v.Rules, latencyRule(fmt.Sprintf("r%d", i), "t", gate.Fail, 0.5, i+1))
		}
		var stdout bytes.Buffer
		if err := Publish(New(&stdout, env{"GITHUB_ACTIONS": "true"}.get), v, report.Meta{PolicyFile: "p.yaml"}, ""); err != nil {
			t.Fatal(err)
		}
		errorsShown := strings.Count(stdout.String(), "::error ")
		wantShown := min(n, MaxAnnotations)
		if errorsShown != wantShown {
			t.Errorf("%d failing rules: %d ::error annotations, want %d", n, errorsShown, wantShown)
		}
		more := fmt.Sprintf("%d more failing rules are listed in the job summary", n-(MaxAnnotations-1))
		if got := strings.Contains(stdout.String(), more); got != (n > MaxAnnotations) {
			t.Errorf("%d failing rules: 'more' annotation present = %v\n%s", n, got, stdout.String())
		}
	}
}

// failWriter fails every write and counts the attempts.
type failWriter struct{ writes int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.writes++
	return 0, errors.New("closed")
}

func TestPublishOutsideActions(t *testing.T) {
	dir := t.TempDir()
	for _, e := range []env{
		{},
		{"GITHUB_ACTIONS": "false", "GITHUB_OUTPUT": filepath.Join(dir, "o"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "s")},
	} {
		w := &failWriter{}
		v, meta := failVerdict()
		if err := Publish(New(w, e.get), v, meta, "r.json"); err != nil {
			t.Errorf("env %v: %v", e, err)
		}
		if w.writes != 0 {
			t.Errorf("env %v: %d writes to stdout outside Actions", e, w.writes)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written outside Actions: %v", entries)
	}
}

// TestPublishWithoutFiles: in Actions but without the file-command
// variables (an old runner, a container without them) the annotations are
// still written and nothing panics.
func TestPublishWithoutFiles(t *testing.T) {
	var stdout bytes.Buffer
	v, meta := failVerdict()
	if err := Publish(New(&stdout, env{"GITHUB_ACTIONS": "true"}.get), v, meta, "r.json"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "::error ") {
		t.Errorf("no annotation:\n%s", stdout.String())
	}
}

// TestPublishBroken: unwritable files and a failing stdout are errors, not
// panics, and one broken part does not stop the others.
func TestPublishBroken(t *testing.T) {
	dir := t.TempDir()
	okOutput := filepath.Join(dir, "output")
	v, meta := failVerdict()

	w := &failWriter{}
	err := Publish(New(w, env{"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": dir, "GITHUB_OUTPUT": okOutput}.get), v, meta, "r.json")
	if err == nil || !strings.Contains(err.Error(), "step summary") || !strings.Contains(err.Error(), "annotations") {
		t.Errorf("error = %v, want step summary and annotations errors", err)
	}
	if out, _ := os.ReadFile(okOutput); !strings.Contains(string(out), "verdict<<") {
		t.Errorf("outputs not written after the other parts failed: %q", out)
	}

	// A report path with a line break could inject other outputs.
	err = Publish(New(&bytes.Buffer{}, env{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": okOutput}.get), v, meta, "a\nevil=1")
	if err == nil || !strings.Contains(err.Error(), "line break") {
		t.Errorf("error = %v, want a line-break error", err)
	}

	if err := Publish(nil, v, meta, ""); err == nil {
		t.Error("nil action accepted")
	}
	if err := Publish(New(&bytes.Buffer{}, env{"GITHUB_ACTIONS": "true"}.get), nil, meta, ""); err == nil {
		t.Error("nil verdict accepted")
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		env  env
		want bool
	}{
		{env{"GITHUB_ACTIONS": "true"}, true},
		{env{"GITHUB_ACTIONS": "false"}, false},
		{env{"GITHUB_ACTIONS": "TRUE"}, false},
		{env{"CI": "true"}, false},
		{env{}, false},
	} {
		if got := Detect(tc.env.get); got != tc.want {
			t.Errorf("Detect(%v) = %v", tc.env, got)
		}
	}
	if Detect(nil) {
		t.Error("Detect(nil) = true")
	}
}

func TestAnnotationFile(t *testing.T) {
	for _, tc := range []struct{ policy, workspace, want string }{
		{"policies/gate.yaml", workspace, "policies/gate.yaml"},
		{"./policies/gate.yaml", workspace, "policies/gate.yaml"},
		{workspace + "/policies/gate.yaml", workspace, "policies/gate.yaml"},
		{workspace + "/policies/gate.yaml", workspace + "/", "policies/gate.yaml"},
		{"/etc/tapgate/gate.yaml", workspace, "/etc/tapgate/gate.yaml"},
		{"/github/workspace-other/gate.yaml", workspace, "/github/workspace-other/gate.yaml"},
		{workspace + "/gate.yaml", "", workspace + "/gate.yaml"},
		{"builtin:http-golden-signals", workspace, ""},
		{"", workspace, ""},
	} {
		if got := annotationFile(tc.policy, tc.workspace); got != tc.want {
			t.Errorf("annotationFile(%q, %q) = %q, want %q", tc.policy, tc.workspace, got, tc.want)
		}
	}
}

// TestInconclusiveStepError: an inconclusive gate that fails the step gets
// one ::error saying so, besides the notices; a passing one does not.
func TestInconclusiveStepError(t *testing.T) {
	rule := gate.RuleResult{Name: "success-rate", Target: "web", Kind: gate.SuccessRate, Outcome: gate.Inconclusive,
		Threshold: ">= 99%", Samples: 12, Required: 100, Reason: "only 12 of the 100 requests needed", Line: 7}
	for _, tc := range []struct {
		exit      int
		wantError bool
	}{
		{gate.ExitInconclusive, true},
		{gate.ExitFail, true}, // onInconclusive: fail
		{gate.ExitInterrupted, true},
		{gate.ExitPass, false}, // onInconclusive: pass
	} {
		v := &gate.Verdict{Policy: "p", Outcome: gate.Inconclusive, Final: true, Rules: []gate.RuleResult{rule}}
		var stdout bytes.Buffer
		if err := Publish(New(&stdout, env{"GITHUB_ACTIONS": "true"}.get), v, report.Meta{PolicyFile: "p.yaml", ExitCode: tc.exit}, ""); err != nil {
			t.Fatal(err)
		}
		out := stdout.String()
		wantErr := fmt.Sprintf("::error title=tapgate%%3A INCONCLUSIVE%%2C exit %d::1 of 1 rule inconclusive\n", tc.exit)
		if got := strings.Contains(out, wantErr); got != tc.wantError {
			t.Errorf("exit %d: verdict error present = %v, want %v\n%s", tc.exit, got, tc.wantError, out)
		}
		if !strings.Contains(out, "::notice file=p.yaml,line=7,title=tapgate%3A success-rate on web inconclusive::only 12 of the 100 requests needed\n") {
			t.Errorf("exit %d: no notice on the rule's line:\n%s", tc.exit, out)
		}
	}
}

func TestStopCommands(t *testing.T) {
	var b bytes.Buffer
	resume, err := StopCommands(&b)
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString("::error::from the traffic\n")
	if err := resume(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q", b.String())
	}
	token, ok := strings.CutPrefix(lines[0], "::stop-commands::")
	if !ok || len(token) < 32 {
		t.Fatalf("first line %q", lines[0])
	}
	if lines[2] != "::"+token+"::" {
		t.Errorf("resume line %q does not carry the token %q", lines[2], token)
	}
	// Two calls, two tokens: wrapped text cannot guess the next one.
	var b2 bytes.Buffer
	if _, err := StopCommands(&b2); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b2.String(), token) {
		t.Error("token reused")
	}
	if _, err := StopCommands(&failWriter{}); err == nil {
		t.Error("write error not reported")
	}
}

func TestNewNilGetenv(t *testing.T) {
	a := New(&bytes.Buffer{}, nil)
	v, meta := failVerdict()
	if err := Publish(a, v, meta, ""); err != nil {
		t.Fatal(err)
	}
}
