package e2e_test

import (
	"net"
	"strings"
	"testing"

	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// TestTapAPIMissing: without linkerd-viz the apiserver does not serve
// tap.linkerd.io (404), or serves it from a backend that is down (503);
// either way tapgate exits 4 and points at `linkerd viz check`.
func TestTapAPIMissing(t *testing.T) {
	f := newFixture(t, "noviz", healthy("web"))
	args := []string{"run", "deploy/web", "-n", f.ns, "--window", "3s", "--min-success-rate", "99%", "--kubeconfig", f.admin, "-q"}

	t.Run("not registered", func(t *testing.T) {
		f.c.UnregisterTapAPIService(t) // waits until the group is gone
		r := tapgate(t, args...)
		wantCode(t, r, exitInfra)
		wantIn(t, "stderr", r.stderr, "tap.linkerd.io", "not served", "linkerd-viz", "linkerd viz check", "kubectl get apiservice v1alpha1.tap.linkerd.io")
		if r.stdout != "" {
			t.Errorf("printed a report for a tap that never happened:\n%s", r)
		}
	})

	t.Run("registered but unavailable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := l.Addr().String()
		l.Close()
		f.c.RegisterTapAPIServiceNoWait(t, dead, nil)
		r := tapgate(t, args...)
		wantCode(t, r, exitInfra)
		// Until the aggregator sees the APIService the group is not
		// served (404); after that the aggregator answers 503.
		wantIn(t, "stderr", r.stderr, "linkerd-viz", "linkerd viz check")
		if !strings.Contains(r.stderr, "unavailable") && !strings.Contains(r.stderr, "not served") {
			t.Errorf("stderr does not say the tap API is unavailable:\n%s", r)
		}
	})
}

// TestUnknownTarget: a deployment that does not exist is exit 4 "not
// found", before any tap.
func TestUnknownTarget(t *testing.T) {
	f := newFixture(t, "unknown", healthy("web"))
	r := tapgate(t, "run", "deploy/nope", "-n", f.ns, "--window", "3s", "--min-success-rate", "99%", "--kubeconfig", f.admin, "-q")
	wantCode(t, r, exitInfra)
	wantIn(t, "stderr", r.stderr, `deployment "nope" not found in namespace "`+f.ns+`"`, "kubectl get deploy -n "+f.ns)
	if r.elapsed > runTimeout/3 {
		t.Errorf("took %s to find out the target is missing", r.elapsed)
	}
}

// TestUnmeshed: a deployment without linkerd-proxy has nothing to tap:
// exit 4 with a hint to mesh it, whether tapgate finds that out from the
// pods (it may read them) or from the tap server's "no pods to tap" (it may
// only tap).
func TestUnmeshed(t *testing.T) {
	batch := workload{name: "batch", pods: 2, meshed: false, rps: 20, p50: "5ms", p99: "20ms"}
	f := newFixture(t, "unmeshed", batch)
	f.serve(t)
	args := func(kubeconfig string) []string {
		return []string{"run", "deploy/batch", "-n", f.ns, "--window", "3s", "--min-success-rate", "99%", "--kubeconfig", kubeconfig, "-q"}
	}

	t.Run("pre-check", func(t *testing.T) {
		r := tapgate(t, args(f.admin)...)
		wantCode(t, r, exitInfra)
		wantIn(t, "stderr", r.stderr, "none is meshed", "linkerd inject", "-n "+f.ns)
	})

	t.Run("tap server", func(t *testing.T) {
		// tapper may tap but not read deployments: tapgate cannot pre-check
		// and learns it from the tap server, through the apiserver.
		f.c.GrantTap(t, f.ns, cluster.UserTapper, "deployments")
		r := tapgate(t, args(f.c.WriteKubeconfig(t, cluster.UserTapper))...)
		wantCode(t, r, exitInfra)
		wantIn(t, "stderr", r.stderr, "no pods to tap", "linkerd inject", "deployment/batch -n "+f.ns)
		var refused bool
		for _, req := range f.tapRequests() {
			refused = refused || strings.Contains(req.Error, "no pods to tap")
		}
		if !refused {
			t.Errorf("the tap server refused nothing: %+v", f.tapRequests())
		}
	})
}

// TestIdleTarget: a meshed deployment that receives no traffic gives no
// evidence: exit 3 (inconclusive), never a pass, and the report says why.
func TestIdleTarget(t *testing.T) {
	idle := workload{name: "idle", pods: 2, meshed: true, rps: 0, p50: "10ms", p99: "50ms"}
	f := newFixture(t, "idle", idle)
	f.serve(t)
	pol := writeFile(t, "policy.yaml", gatePolicy(f.ns, "idle", "3s", "500ms"))

	r := tapgate(t, "run", "--policy", pol, "--kubeconfig", f.admin, "-q", "-o", "json")
	wantCode(t, r, exitInconclusive)
	rep := parseReport(t, r)
	if rep.Verdict != "inconclusive" || rep.ExitCode != exitInconclusive {
		t.Errorf("verdict %q exitCode %d, want inconclusive / 3\n%s", rep.Verdict, rep.ExitCode, r)
	}
	if n := rep.Targets[0].Requests; n != 0 {
		t.Errorf("%d requests from an idle target", n)
	}
	for _, rule := range rep.Rules {
		if rule.Verdict != "inconclusive" || !mentionsNoRequests(rule.Reason) {
			t.Errorf("rule %s: %s (%q), want inconclusive for lack of requests", rule.Name, rule.Verdict, rule.Reason)
		}
	}

	// The text report says so too, and --on-inconclusive maps the code.
	r = tapgate(t, "run", "--policy", pol, "--kubeconfig", f.admin, "-q", "--window", "2s", "--on-inconclusive", "fail")
	wantCode(t, r, exitFail)
	wantIn(t, "stdout", r.stdout, "INCONCLUSIVE")
	if !mentionsNoRequests(r.stdout) {
		t.Errorf("text report does not say there were no requests:\n%s", r)
	}
}

func mentionsNoRequests(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "no requests") || strings.Contains(s, "no completed requests") || strings.Contains(s, "too few")
}
