package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tapgate/tapgate/gate/ghactions"
)

const (
	recording = "../../examples/recordings/checkout.json.gz"
	checkout  = "../../examples/policies/checkout.yaml"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"tapgate"}, args...), strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// noGitHub keeps a test from seeing the CI runner's own GitHub environment.
func noGitHub(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("GITHUB_OUTPUT", "")
	t.Setenv("GITHUB_STEP_SUMMARY", "")
}

func TestExitCodes(t *testing.T) {
	noGitHub(t)
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"replay: stable passes, canary fails", []string{"run", "--policy", checkout, "--replay", recording},
			1, []string{"FAIL  policy checkout-release", "stable  deploy/checkout", "success-rate     canary", "95% CI"}, nil},
		{"ad-hoc replay of the healthy deployment passes, flags after the target",
			[]string{"run", "deploy/checkout", "-n", "shop", "--replay", recording, "--window", "60s", "--warmup", "10s", "--min-success-rate", "99%", "--max-latency", "p99=300ms"},
			0, []string{"PASS  policy ad-hoc"}, nil},
		{"zero traffic is inconclusive, never pass",
			[]string{"run", "deploy/absent", "-n", "shop", "--replay", recording, "--window", "60s", "--min-success-rate", "99%"},
			3, []string{"INCONCLUSIVE"}, nil},
		{"onInconclusive fail maps 3 to 1",
			[]string{"run", "deploy/absent", "-n", "shop", "--replay", recording, "--window", "60s", "--min-success-rate", "99%", "--on-inconclusive", "fail"},
			1, []string{"INCONCLUSIVE"}, nil},
		{"nothing to gate", []string{"run"}, 2, nil, []string{"nothing to gate"}},
		{"bad output", []string{"run", "--policy", checkout, "--replay", recording, "-o", "yaml"}, 2, nil, []string{"use text or json"}},
		{"ad-hoc rules with a policy", []string{"run", "--policy", checkout, "--min-success-rate", "99%", "--replay", recording}, 2, nil, []string{"cannot be combined"}},
		{"selector on a two-target policy", []string{"run", "--policy", checkout, "-l", "a=b", "--replay", recording}, 2, nil, []string{"one target"}},
		{"missing recording", []string{"run", "--policy", checkout, "--replay", "no-such-file.json"}, 2, nil, []string{"no-such-file.json"}},
		{"malformed recording names the line", []string{"run", "--policy", checkout, "--replay", "testdata/malformed.json"}, 2, nil, []string{"testdata/malformed.json:3"}},
		{"invalid policy lists every problem", []string{"validate", "../../gate/policy/testdata/invalid/many-problems.yaml"}, 2, nil, []string{"many-problems.yaml:"}},
		{"valid policies", []string{"validate", checkout, "../../policies/grpc-service.yaml"}, 0, []string{"ok"}, nil},
		{"explain in plain words", []string{"validate", "--explain", "--expected-rps", "5", checkout}, 0,
			[]string{"window 60s after 10s warmup, stops as soon as a FAIL is decided", "success-rate (line ", "passes after 304 requests if none fail", "at 5 rps the 60s window holds about 300 requests: too short", "may stay inconclusive at this rate"}, nil},
		{"expected rate without explain", []string{"validate", "--expected-rps", "5", checkout}, 2, nil, []string{"used with --explain"}},
		{"decision flags override a file", []string{"run", "--policy", checkout, "--replay", recording, "--decision", "estimate", "-o", "json"}, 1, []string{`"decision": "estimate"`}, nil},
		{"bad confidence flag", []string{"run", "--policy", checkout, "--replay", recording, "--confidence", "100%"}, 2, nil, []string{"--confidence"}},
		{"keep tapping after a decided FAIL", []string{"run", "--policy", checkout, "--replay", recording, "--keep-tapping", "-o", "json"}, 1, []string{`"stoppedEarly": false`}, nil},
		{"live without a usable kubeconfig is an infrastructure error", []string{"run", "deploy/web", "--window", "5s", "--min-success-rate", "99%", "--kubeconfig", "/nonexistent/kubeconfig"}, 4, nil, []string{"/nonexistent/kubeconfig"}},
		{"live target without a resource", []string{"run", "--policy", "builtin:strict-canary", "--tap-url", "http://127.0.0.1:1"}, 2, nil, []string{"names no resource"}},
		{"record needs a file", []string{"record", "deploy/web"}, 2, nil, []string{"--record FILE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
		})
	}
}

func TestReportsAndJSON(t *testing.T) {
	noGitHub(t)
	dir := t.TempDir()
	r := run(t, "run", "--policy", checkout, "--replay", recording, "-o", "json",
		"--report", "json="+filepath.Join(dir, "gate.json"),
		"--report", "junit="+filepath.Join(dir, "junit.xml"),
		"--report", "markdown="+filepath.Join(dir, "gate.md"))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	var doc struct {
		APIVersion, Kind, Verdict string
		ExitCode                  int
		Targets                   []struct {
			Name     string
			Requests uint64
		}
		Rules []struct {
			Name, Target, Verdict string
			Samples               uint64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, r.stdout)
	}
	if doc.Kind != "GateReport" || doc.Verdict != "fail" || doc.ExitCode != 1 || len(doc.Targets) != 2 || doc.Targets[0].Requests == 0 {
		t.Errorf("report = %+v", doc)
	}
	file, err := os.ReadFile(filepath.Join(dir, "gate.json"))
	if err != nil || !bytes.Equal(bytes.TrimSpace(file), bytes.TrimSpace([]byte(r.stdout))) {
		t.Errorf("json report file differs from stdout (err %v)", err)
	}
	x, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(x, &suites); err != nil || suites.Failures == 0 {
		t.Errorf("junit: %v, failures %d", err, suites.Failures)
	}
	md, err := os.ReadFile(filepath.Join(dir, "gate.md"))
	if err != nil || !strings.Contains(string(md), "checkout-errors") {
		t.Errorf("markdown report: %v\n%s", err, md)
	}
}

// TestGitHubMode runs a failing gate in a GitHub-Actions-like environment:
// outputs, a step summary and an annotation on the failing rule's line.
func TestGitHubMode(t *testing.T) {
	dir := t.TempDir()
	out, summary := filepath.Join(dir, "output"), filepath.Join(dir, "summary.md")
	for _, f := range []string{out, summary} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_OUTPUT", out)
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	t.Setenv("GITHUB_WORKSPACE", "")
	r := run(t, "run", "--policy", checkout, "--replay", recording, "--report", "json="+filepath.Join(dir, "gate.json"))
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	outputs, _ := os.ReadFile(out)
	for _, want := range []string{"verdict", "fail", "exit-code", "report", "gate.json"} {
		if !strings.Contains(string(outputs), want) {
			t.Errorf("GITHUB_OUTPUT lacks %q:\n%s", want, outputs)
		}
	}
	sum, _ := os.ReadFile(summary)
	for _, want := range []string{"FAIL", "success-rate", "canary", "95% CI"} {
		if !strings.Contains(string(sum), want) {
			t.Errorf("step summary lacks %q:\n%s", want, sum)
		}
	}
	// success-rate fails for the canary: the annotation is on its line.
	src, err := os.ReadFile(checkout)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.TrimSpace(l) == "- name: success-rate" {
			line = i + 1
			break
		}
	}
	if want := fmt.Sprintf("::error file=%s,line=%d", checkout, line); line == 0 || !strings.Contains(r.stdout, want) {
		t.Errorf("no annotation %q on the failing rule's line:\n%s", want, r.stdout)
	}
}

// TestActionCommand drives the Action's entry point with its INPUT_*
// environment, against a recording passed through the args input.
func TestActionCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "output")
	if err := os.WriteFile(out, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_OUTPUT", out)
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	t.Setenv("INPUT_POLICY", checkout)
	t.Setenv("INPUT_REPORT-DIR", filepath.Join(dir, "reports"))
	t.Setenv("INPUT_ARGS", "--replay "+recording)
	r := run(t, "action")
	if r.code != 1 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{ghactions.JSONReportName, ghactions.JUnitReportName, ghactions.MarkdownReportName} {
		if _, err := os.Stat(filepath.Join(dir, "reports", f)); err != nil {
			t.Errorf("report %s: %v", f, err)
		}
	}
	outputs, _ := os.ReadFile(out)
	if !strings.Contains(string(outputs), "exit-code") {
		t.Errorf("outputs:\n%s", outputs)
	}
}

func TestTerminationLog(t *testing.T) {
	noGitHub(t)
	f := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "run", "--policy", checkout, "--replay", recording, "--termination-log", f)
	if r.code != 1 {
		t.Fatalf("exit %d", r.code)
	}
	b, _ := os.ReadFile(f)
	if !strings.HasPrefix(string(b), "FAIL") || strings.Count(string(b), "\n") != 1 {
		t.Errorf("termination message = %q", b)
	}
}

// TestSecretsNeverLeak feeds secret header values through every output a
// replay can produce and looks for them everywhere.
func TestSecretsNeverLeak(t *testing.T) {
	dir := t.TempDir()
	secrets := []string{"Bearer sk-live-TOPSECRET", "session=COOKIESECRET", "APIKEYSECRET"}
	rec := filepath.Join(dir, "secret.jsonl")
	var b strings.Builder
	// 400 clean requests: enough for the 99% rule to pass its sequential
	// test (304), so that the passing path of every reporter is exercised.
	for i := 1; i <= 400; i++ {
		id := `{"base":1,"stream":` + strconv.Itoa(i) + `}`
		meta := `"source":{"ip":"10.0.0.1","port":4000,"metadata":{"pod":"client"}},"destination":{"ip":"10.0.0.2","port":8080,"metadata":{"deployment":"web","namespace":"prod","pod":"web-1"}},"proxyDirection":"INBOUND"`
		b.WriteString(`{` + meta + `,"requestInitEvent":{"id":` + id + `,"method":"GET","authority":"web","path":"/","headers":[{"name":"authorization","valueStr":"` + secrets[0] + `"},{"name":"cookie","valueStr":"` + secrets[1] + `"},{"name":"x-api-key","valueStr":"` + secrets[2] + `"}]}}` + "\n")
		b.WriteString(`{` + meta + `,"responseInitEvent":{"id":` + id + `,"sinceRequestInit":{"nanos":5000000},"httpStatus":200,"headers":[{"name":"set-cookie","valueStr":"` + secrets[1] + `"}]}}` + "\n")
		b.WriteString(`{` + meta + `,"responseEndEvent":{"id":` + id + `,"sinceRequestInit":{"nanos":6000000},"sinceResponseInit":{"nanos":1000000},"responseBytes":10,"eos":{"grpcStatusCode":0}}}` + "\n")
	}
	if err := os.WriteFile(rec, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, summary := filepath.Join(dir, "output"), filepath.Join(dir, "summary.md")
	for _, f := range []string{out, summary} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_OUTPUT", out)
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	var seen []string
	for _, format := range []string{"text", "json"} {
		r := run(t, "run", "deploy/web", "-n", "prod", "--replay", rec, "--window", "1m", "--min-success-rate", "99%", "--max-latency", "p50=1s", "-o", format,
			"--report", "json="+filepath.Join(dir, "r.json"), "--report", "junit="+filepath.Join(dir, "r.xml"), "--report", "markdown="+filepath.Join(dir, "r.md"))
		if r.code != 0 {
			t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
		}
		seen = append(seen, r.stdout, r.stderr)
		for _, f := range []string{"r.json", "r.xml", "r.md", "output", "summary.md"} {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, string(data))
		}
	}
	for _, s := range secrets {
		for i, text := range seen {
			if strings.Contains(text, s) || strings.Contains(text, strings.Fields(s)[len(strings.Fields(s))-1]) {
				t.Errorf("secret %q leaked into output %d", s, i)
			}
		}
	}
}

func TestInterspersed(t *testing.T) {
	got := interspersed([]string{"tapgate", "run", "deploy/web", "-n", "prod", "--print-policy", "--window=5s", "-q"}, commands())
	want := []string{"tapgate", "run", "-n", "prod", "--print-policy", "--window=5s", "-q", "--", "deploy/web"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("interspersed = %q, want %q", got, want)
	}
}

// TestDemo runs the README's first command: the simulator over loopback
// HTTPS, the real tap client, two gates at once, and a real Prometheus for
// the cross-check when one is installed.
// The stable deployment passes; the canary gate fails and stops early,
// long before its window ends.
func TestDemo(t *testing.T) {
	noGitHub(t)
	rec := filepath.Join(t.TempDir(), "demo.json.gz")
	r := run(t, "demo", "-q", "-o", "json", "--record", rec)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (the canary fails)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var docs []struct {
		Verdict        string
		ElapsedSeconds float64
		WindowSeconds  float64
		StoppedEarly   bool
		StopReason     string
		Metadata       struct{ Policy string }
		Targets        []struct {
			Name       string
			Requests   uint64
			CrossCheck *struct {
				TappedRequests uint64
				TotalRequests  float64
				VolumeCoverage float64
				Mismatch       bool
			}
		}
		Rules []struct {
			Name, Target, Verdict string
			Decided               bool
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &docs); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(docs) != 2 || docs[0].Metadata.Policy != "demo-stable" || docs[1].Metadata.Policy != "demo-canary" {
		t.Fatalf("want the reports of demo-stable and demo-canary, got %s", r.stdout)
	}
	stable, canary := docs[0], docs[1]
	verdict := map[string]string{}
	for _, d := range docs {
		for _, rule := range d.Rules {
			verdict[d.Metadata.Policy+":"+rule.Target+"/"+rule.Name] = rule.Verdict
		}
	}
	if stable.Verdict != "pass" || stable.StoppedEarly || stable.ElapsedSeconds != stable.WindowSeconds {
		t.Errorf("stable gate: %s after %vs (stopped early: %v), want a pass over the whole window; rules %v", stable.Verdict, stable.ElapsedSeconds, stable.StoppedEarly, verdict)
	}
	for _, tg := range stable.Targets {
		if tg.Requests < 300 {
			t.Errorf("stable gate: target %s saw %d requests in %vs", tg.Name, tg.Requests, stable.WindowSeconds)
		}
		// With a prometheus binary installed (CI installs one) the demo
		// cross-checks: tap passes 45 of the ~80 requests a second.
		if _, err := exec.LookPath("prometheus"); err == nil {
			cc := tg.CrossCheck
			if cc == nil || cc.VolumeCoverage < 0.5 || cc.VolumeCoverage > 0.63 || cc.Mismatch {
				t.Errorf("stable gate's cross-check %+v: want about 56%% of the volume, representative", cc)
			}
		}
	}
	// The canary fails one request in eleven: the sequential test decides
	// within seconds and the run stops there. (Within 15% of the 40s window
	// in 98% of runs, median 2.1s: make honesty measures that; one run
	// here only shows that it stopped long before the window's end.)
	if canary.Verdict != "fail" || !canary.StoppedEarly || canary.ElapsedSeconds > canary.WindowSeconds/2 || canary.StopReason == "" {
		t.Errorf("canary gate: %s after %vs of %vs, stopped early %v (%q); want a FAIL that stopped the run early", canary.Verdict, canary.ElapsedSeconds, canary.WindowSeconds, canary.StoppedEarly, canary.StopReason)
	}
	decided := 0
	for _, rule := range canary.Rules {
		if rule.Verdict == "fail" && rule.Decided {
			decided++
		}
	}
	if decided == 0 {
		t.Errorf("canary gate: no decided FAIL among %v", verdict)
	}
	// The recording replays, and the simulator's authorization and
	// set-cookie values were redacted on the way in.
	r2 := run(t, "run", "deploy/checkout-canary", "-n", "shop", "--replay", rec, "--window", "1h", "--min-success-rate", "99%")
	if r2.code != 1 && r2.code != 3 {
		t.Errorf("replaying the demo recording: exit %d\n%s", r2.code, r2.stderr)
	}
	raw := gunzip(t, rec)
	if strings.Contains(raw, "s3cr3t") || strings.Contains(raw, "Bearer ") {
		t.Errorf("secret header values in the recording")
	}
	if !strings.Contains(raw, "[REDACTED]") {
		t.Errorf("no redacted header in the recording: the simulator sent none?")
	}
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
