package e2e_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// TestLiveGate gates a healthy deployment and a broken canary through the
// real apiserver at the same time: the healthy one from a policy file, the
// canary with ad-hoc flags, once tapping its whole window (--keep-tapping)
// and once stopping as soon as its FAIL is decided. The healthy one passes,
// the canary fails, and the reports show the numbers that decided it.
func TestLiveGate(t *testing.T) {
	canary := workload{name: "canary", pods: 1, meshed: true, rps: 60,
		errors: `{"500": 0.15, "503": 0.05}`, p50: "400ms", p99: "1s"}
	f := newFixture(t, "live", healthy("web"), canary)
	f.serve(t)
	pol := writeFile(t, "policy.yaml", gatePolicy(f.ns, "web", window, warmup))

	rs := tapgates(t,
		[]string{"run", "--policy", pol, "--kubeconfig", f.admin, "-q", "-o", "json"},
		[]string{"run", "deploy/canary", "-n", f.ns, "--window", window, "--warmup", warmup,
			"--min-success-rate", "99%", "--max-latency", "p99=300ms", "--max-rps", "1000",
			"--kubeconfig", f.admin, "-q", "-o", "json", "--keep-tapping"},
		[]string{"run", "deploy/canary", "-n", f.ns, "--window", "60s", "--warmup", warmup,
			"--min-success-rate", "99%", "--max-latency", "p99=300ms", "--max-rps", "1000",
			"--kubeconfig", f.admin, "-q", "-o", "json"})
	web, can, early := rs[0], rs[1], rs[2]

	t.Run("healthy passes", func(t *testing.T) {
		wantCode(t, web, exitPass)
		rep := parseReport(t, web)
		if rep.Verdict != "pass" || rep.ExitCode != exitPass || !rep.Final {
			t.Errorf("verdict %q exitCode %d final %v, want a final pass with exitCode 0\n%s", rep.Verdict, rep.ExitCode, rep.Final, web)
		}
		tg := rep.Targets[0]
		if tg.Requests < 100 || tg.SuccessRate == nil || *tg.SuccessRate < 0.99 {
			t.Errorf("target %s: %d requests, success rate %v; want >= 100 requests at >= 99%%\n%s", tg.Name, tg.Requests, tg.SuccessRate, web)
		}
		if tg.LatencyMs == nil || tg.LatencyMs.P99 <= 0 || tg.LatencyMs.P99 > 300 {
			t.Errorf("target %s: latency %+v, want a p99 in (0, 300ms]", tg.Name, tg.LatencyMs)
		}
		if tg.Coverage < 0.9 {
			t.Errorf("target %s: coverage %v, want the stream open for the whole window", tg.Name, tg.Coverage)
		}
		// The events carry the apiserver's pod names: AdoptPods lined the
		// simulator up with what tapgate resolved.
		var pods []string
		for _, p := range tg.Pods {
			pods = append(pods, p.Name)
			if p.Requests == 0 {
				t.Errorf("pod %s: no requests", p.Name)
			}
		}
		slices.Sort(pods)
		if want := f.podNames("web"); !slices.Equal(pods, want) {
			t.Errorf("report pods %v, want the apiserver's %v", pods, want)
		}
		for _, name := range []string{"success-rate", "p99-latency"} {
			if v, reason := rep.rule(t, name); v != "pass" {
				t.Errorf("rule %s: %s (%s), want pass", name, v, reason)
			}
		}
	})

	t.Run("broken canary fails", func(t *testing.T) {
		wantCode(t, can, exitFail)
		rep := parseReport(t, can)
		if rep.Verdict != "fail" || rep.ExitCode != exitFail || !rep.Final {
			t.Errorf("verdict %q exitCode %d final %v, want a final fail with exitCode 1\n%s", rep.Verdict, rep.ExitCode, rep.Final, can)
		}
		tg := rep.Targets[0]
		if tg.Requests < 100 || tg.SuccessRate == nil || *tg.SuccessRate > 0.95 || tg.Failures == 0 {
			t.Errorf("target %s: %d requests, %d failures, success rate %v; want >= 100 requests at < 95%%\n%s",
				tg.Name, tg.Requests, tg.Failures, tg.SuccessRate, can)
		}
		if tg.StatusCodes["500"] == 0 || tg.StatusCodes["503"] == 0 {
			t.Errorf("target %s: status codes %v, want 500s and 503s", tg.Name, tg.StatusCodes)
		}
		if tg.LatencyMs == nil || tg.LatencyMs.P99 <= 300 {
			t.Errorf("target %s: latency %+v, want a p99 above 300ms", tg.Name, tg.LatencyMs)
		}
		if len(rep.Rules) < 2 {
			t.Fatalf("rules %+v, want a success-rate and a latency rule", rep.Rules)
		}
		for _, r := range rep.Rules {
			if r.Verdict != "fail" || r.Samples == 0 || r.Observed == nil || r.Reason == "" {
				t.Errorf("rule %s: %s on %d samples (observed %v, reason %q), want a fail with evidence", r.Name, r.Verdict, r.Samples, r.Observed, r.Reason)
			}
		}
	})

	// Without --keep-tapping the canary's sequential tests decide its FAIL
	// within a few dozen requests and the run ends there, far from the end
	// of its 60s window.
	t.Run("broken canary stops early", func(t *testing.T) {
		wantCode(t, early, exitFail)
		rep := parseReport(t, early)
		if rep.Verdict != "fail" || !rep.StoppedEarly || !rep.Final || rep.StopReason == "" {
			t.Errorf("verdict %q stopped early %v final %v (%q), want a final fail that stopped the run\n%s", rep.Verdict, rep.StoppedEarly, rep.Final, rep.StopReason, early)
		}
		if rep.ElapsedSeconds <= 0 || rep.ElapsedSeconds >= rep.WindowSeconds/2 || early.elapsed > 45*time.Second {
			t.Errorf("tapped %vs of %vs (the run took %s), want an early stop\n%s", rep.ElapsedSeconds, rep.WindowSeconds, early.elapsed, early)
		}
		decided := false
		for _, r := range rep.Rules {
			decided = decided || r.Verdict == "fail" && r.Decided && r.Samples > 0
			if r.Reason == "" {
				t.Errorf("rule %s has no reason", r.Name)
			}
		}
		if !decided {
			t.Errorf("no decided FAIL among the rules %+v", rep.Rules)
		}
	})

	t.Run("tap went through the aggregator", func(t *testing.T) {
		reqs := f.tapRequests()
		if len(reqs) == 0 {
			t.Fatal("the simulator received no tap request")
		}
		for _, r := range reqs {
			// X-Remote-User is set by the apiserver's proxy only.
			if r.User != cluster.UserAdmin || !slices.Contains(r.Groups, "system:masters") || r.HTTPStatus != 200 || r.Error != "" {
				t.Errorf("tap request %+v, want one by admin (system:masters) answered 200", r)
			}
			switch {
			case strings.HasSuffix(r.Path, "/deployments/web/tap"):
				if want := f.podNames("web"); !slices.Equal(sorted(r.Pods), want) {
					t.Errorf("tap of web covered pods %v, want %v", r.Pods, want)
				}
			case strings.HasSuffix(r.Path, "/deployments/canary/tap"):
			default:
				t.Errorf("unexpected tap request %s", r.Path)
			}
			if r.MaxRps != 1000 {
				t.Errorf("tap request %s: maxRps %v, want 1000", r.Path, r.MaxRps)
			}
		}
	})
}

func sorted(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}
