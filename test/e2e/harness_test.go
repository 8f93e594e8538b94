package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate/sim"
	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// Exit codes of DESIGN §3.
const (
	exitPass         = 0
	exitFail         = 1
	exitInconclusive = 3
	exitInfra        = 4
	exitInterrupted  = 5
)

// Every gate that must reach a verdict taps for warmup+window. The warmup
// also absorbs tapgate's start (pre-check, stream opening through the
// apiserver) on a loaded CI machine: a stream that opens late lowers the
// window's coverage, and a coverage under 90% turns a pass inconclusive.
const (
	window = "4s"
	warmup = "1500ms"
)

// runTimeout bounds one tapgate run: a hang guard, far above any window
// used here, not a threshold.
const runTimeout = 90 * time.Second

// workload is one deployment of a fixture: written to the apiserver and
// played by the simulator under the same pod names and IPs.
type workload struct {
	name   string
	pods   int
	meshed bool
	rps    float64
	// errors is a YAML flow mapping of the simulator's error mix, e.g.
	// `{"500": 0.001}`; empty for none.
	errors   string
	p50, p99 string // latency to response headers
}

// healthy is a deployment that should pass a 99% / p99 300ms gate: 3 pods,
// ~0.1% 5xx, p99 ~100ms, and enough requests for a p99 in a 4s window.
func healthy(name string) workload {
	return workload{name: name, pods: 3, meshed: true, rps: 120, errors: `{"500": 0.0005, "503": 0.0005}`, p50: "30ms", p99: "100ms"}
}

// fixture is a fresh namespace with workloads in the apiserver and a
// simulator playing them.
type fixture struct {
	c         *cluster.Cluster
	ns        string
	sim       *sim.Simulator
	workloads map[string]*cluster.Workload
	admin     string // kubeconfig of cluster.UserAdmin
	ctx       context.Context
	cancel    context.CancelFunc // stops the simulator
}

// newFixture creates namespace prefix-N with the workloads in the apiserver
// and a simulator whose pods carry the names and IPs the apiserver has. The
// simulator neither serves nor runs until serve.
func newFixture(t *testing.T, prefix string, ws ...workload) *fixture {
	t.Helper()
	c := cluster.Shared(t)
	f := &fixture{c: c, ns: c.NewNamespace(t, prefix), workloads: map[string]*cluster.Workload{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	t.Cleanup(f.cancel)
	f.admin = c.WriteKubeconfig(t, cluster.UserAdmin)

	sc, err := sim.Parse([]byte(scenarioYAML(f.ns, ws)), prefix+".yaml")
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	f.sim, err = sim.New(sc, sim.Options{})
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	for _, w := range ws {
		cw := c.CreateWorkload(t, f.ns, w.name, w.pods, nil, w.meshed)
		f.workloads[w.name] = cw
		ids := make([]sim.PodIdentity, len(cw.Pods))
		for i, p := range cw.Pods {
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil {
				t.Fatalf("pod %s IP %q: %v", p.Name, p.Status.PodIP, err)
			}
			ids[i] = sim.PodIdentity{Name: p.Name, IP: ip}
		}
		if err := f.sim.AdoptPods(f.ns, w.name, cw.ReplicaSet.Labels["pod-template-hash"], ids); err != nil {
			t.Fatalf("adopting %s's pods: %v", w.name, err)
		}
	}
	return f
}

func scenarioYAML(ns string, ws []workload) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: e2e-%s\nseed: 20261128\ncontrolPlaneNamespace: %s\nnamespaces:\n- name: %s\n  deployments:\n",
		ns, cluster.LinkerdNamespace, ns)
	for _, w := range ws {
		fmt.Fprintf(&b, "  - name: %s\n    pods: %d\n    meshed: %t\n    labels: {app: %s}\n    port: 8080\n    rps: %g\n",
			w.name, w.pods, w.meshed, w.name, w.rps)
		b.WriteString("    routes:\n" +
			"    - {method: POST, path: /api/v1/checkout, weight: 1, bytes: 420}\n" +
			"    - {method: GET, path: /api/v1/cart, weight: 3, bytes: 1800}\n")
		if w.errors != "" {
			fmt.Fprintf(&b, "    errors: %s\n", w.errors)
		}
		if w.p50 != "" {
			fmt.Fprintf(&b, "    latency: {p50: %s, p99: %s}\n", w.p50, w.p99)
		}
	}
	return b.String()
}

// serve makes the simulator the tap.linkerd.io backend of the apiserver
// (registered as the APIService, removed again when t ends) and starts its
// clock.
func (f *fixture) serve(t *testing.T) {
	t.Helper()
	tlsCfg, caPEM := f.c.BackendTLS(t)
	addr, _, err := f.sim.Serve(f.ctx, sim.ServeOptions{TLSConfig: tlsCfg})
	if err != nil {
		t.Fatalf("serving the simulator: %v", err)
	}
	f.c.RegisterTapAPIService(t, addr, caPEM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.sim.Run(f.ctx); err != nil {
			t.Errorf("simulator: %v", err)
		}
	}()
	// Cleanups run last-in first-out: this one, registered after the
	// APIService's, stops the simulator before the APIService goes.
	t.Cleanup(func() {
		f.cancel()
		<-done
	})
}

// tapRequests are the tap requests the simulator received for this
// fixture's namespace.
func (f *fixture) tapRequests() []sim.TapRequestInfo {
	var out []sim.TapRequestInfo
	for _, r := range f.sim.TapRequests() {
		if strings.Contains(r.Path, "/namespaces/"+f.ns+"/") {
			out = append(out, r)
		}
	}
	return out
}

func (f *fixture) podNames(name string) []string {
	var out []string
	for _, p := range f.workloads[name].Pods {
		out = append(out, p.Name)
	}
	return out
}

// writeFile writes data into a temp dir of t and returns the path.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// gatePolicy is a policy gating one deployment with the usual budgets.
func gatePolicy(ns, deploy, win, wu string) string {
	return fmt.Sprintf(`apiVersion: tapgate.dev/v1alpha1
kind: GatePolicy
metadata:
  name: e2e-%[2]s
spec:
  window: %[3]s
  warmup: %[4]s
  minRequests: 50
  targets:
  - name: %[2]s
    resource: deploy/%[2]s
    namespace: %[1]s
    direction: inbound
    maxRPS: 1000
  rules:
  - name: success-rate
    successRate: {min: 99%%}
  - name: p99-latency
    latency: {quantile: 0.99, max: 300ms}
    minRequests: 50
`, ns, deploy, win, wu)
}

// result is what a tapgate run showed its user.
type result struct {
	args           []string
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("tapgate %s\nexit %d after %s\n--- stdout:\n%s--- stderr:\n%s",
		strings.Join(r.args, " "), r.code, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// command prepares a tapgate run in a clean environment: no kubeconfig,
// CI system or GitHub Actions variables leak in from the test's.
func command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tapgateBin, args...)
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "KUBECONFIG", k == "CI", k == "TERM",
			strings.HasPrefix(k, "GITHUB_"), strings.HasPrefix(k, "RUNNER_"), strings.HasPrefix(k, "KUBERNETES_"):
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// tapgate runs the binary to completion and checks it ended normally.
func tapgate(t *testing.T, args ...string) result {
	t.Helper()
	r, err := run(args...)
	return checked(t, r, err)
}

// tapgates runs several tapgate commands at the same time (e.g. gates of
// two targets over the same window) and returns their results in order.
func tapgates(t *testing.T, cmds ...[]string) []result {
	t.Helper()
	rs := make([]result, len(cmds))
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Go(func() { rs[i], errs[i] = run(args...) })
	}
	wg.Wait()
	for i := range rs {
		rs[i] = checked(t, rs[i], errs[i])
	}
	return rs
}

// run runs the binary to completion. It touches no testing.T, so it may
// run on any goroutine; an error means it did not end by itself.
func run(args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	return outcome(ctx, args, err, start, &stdout, &stderr)
}

// outcome turns a finished command into a result, or an error when it
// hung, was killed or could not run.
func outcome(ctx context.Context, args []string, err error, start time.Time, stdout, stderr *bytes.Buffer) (result, error) {
	r := result{args: args, elapsed: time.Since(start), stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("tapgate did not finish within %s (hang)", runTimeout)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return r, fmt.Errorf("tapgate was killed by %v", ws.Signal())
		}
	case err != nil:
		return r, fmt.Errorf("running tapgate: %w", err)
	}
	return r, nil
}

// checked fails the test if the run did not end normally, raced or
// panicked, and logs it in verbose mode.
func checked(t *testing.T, r result, err error) result {
	t.Helper()
	if err != nil {
		t.Fatalf("%v:\n%s", err, r)
	}
	if testing.Verbose() {
		t.Logf("%s", r)
	}
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		t.Errorf("the race detector found a data race in tapgate:\n%s", r)
	}
	if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("tapgate panicked:\n%s", r)
	}
	return r
}

// wantCode fails the test unless the run exited with code.
func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\n%s", r.code, code, r)
	}
}

// wantIn fails the test unless out contains every one of subs.
func wantIn(t *testing.T, what, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("%s does not contain %q:\n%s", what, s, out)
		}
	}
}

// report is the part of the JSON report (gate/report) the tests look at.
type report struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Policy string `json:"policy"`
		Source string `json:"source"`
	} `json:"metadata"`
	Verdict        string  `json:"verdict"`
	Reason         string  `json:"reason"`
	ExitCode       int     `json:"exitCode"`
	Final          bool    `json:"final"`
	WindowSeconds  float64 `json:"windowSeconds"`
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	StoppedEarly   bool    `json:"stoppedEarly"`
	StopReason     string  `json:"stopReason"`
	Targets        []struct {
		Name        string            `json:"name"`
		Resource    string            `json:"resource"`
		Requests    uint64            `json:"requests"`
		Successes   uint64            `json:"successes"`
		Failures    uint64            `json:"failures"`
		InFlight    uint64            `json:"inFlight"`
		SuccessRate *float64          `json:"successRate"`
		StatusCodes map[string]uint64 `json:"statusCodes"`
		LatencyMs   *struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
		} `json:"latencyMs"`
		Coverage float64 `json:"coverage"`
		Pods     []struct {
			Name     string `json:"name"`
			Requests uint64 `json:"requests"`
		} `json:"pods"`
		Notes []string `json:"notes"`
	} `json:"targets"`
	Rules []struct {
		Name     string   `json:"name"`
		Target   string   `json:"target"`
		Verdict  string   `json:"verdict"`
		Observed *float64 `json:"observed"`
		Samples  uint64   `json:"samples"`
		Required int      `json:"required"`
		Reason   string   `json:"reason"`
		Decided  bool     `json:"decided"`
	} `json:"rules"`
}

// parseReport decodes the JSON report tapgate printed on stdout.
func parseReport(t *testing.T, r result) *report {
	t.Helper()
	var rep report
	// Unknown fields are fine (the report grows); only these must be right.
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, r)
	}
	if rep.Kind != "GateReport" || len(rep.Targets) == 0 {
		t.Fatalf("stdout is not a gate report with targets:\n%s", r)
	}
	return &rep
}

// rule returns the named rule's result.
func (rep *report) rule(t *testing.T, name string) (verdict, reason string) {
	t.Helper()
	for _, r := range rep.Rules {
		if r.Name == name {
			return r.Verdict, r.Reason
		}
	}
	t.Fatalf("report has no rule %q: %+v", name, rep.Rules)
	return "", ""
}
