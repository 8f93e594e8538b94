package prom

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	gprom "github.com/tapgate/tapgate/gate/prom"
	"github.com/tapgate/tapgate/gate/runner"
	"github.com/tapgate/tapgate/gate/sim"
	"github.com/tapgate/tapgate/gate/tap/kube"
)

// TestCrossCheckWithSimulator gates the simulator's high-rate and biased
// scenarios live, through the real tap client, while a real Prometheus
// scrapes the simulated proxies' counters every second, and cross-checks
// the tapped sample against them as a live run does. The simulator's
// ground truth says what the cross-check should find.
func TestCrossCheckWithSimulator(t *testing.T) {
	bin := findPrometheus(t)
	api := gate.Target{Name: "api", Resource: gate.ResourceRef{Type: "deployment", Name: "api", Namespace: "shop"}, Direction: gate.Inbound, MaxRPS: 100}
	cases := []struct {
		name       string
		scenario   string
		mismatch   bool
		wantRule   gate.Outcome
		reasonText string
	}{
		// 3 pods x ~500 rps, tap at maxRps 100: about 6.6% of the volume,
		// a representative sample of uniform 1% failures.
		{"sampled high rate", "../../examples/scenarios/high-rate.yaml", false, gate.Pass, "passed"},
		// The failures fall late in each second, where the first-N sample
		// of each second does not look: the sample is not representative.
		{"biased sample", "../../examples/scenarios/biased.yaml", true, gate.Inconclusive, "not representative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := sim.Load(tc.scenario)
			if err != nil {
				t.Fatal(err)
			}
			// The clock starts when the tap opens, so that the tap's
			// seconds line up with the simulated ones (see biased.yaml).
			s, err := sim.New(sc, sim.Options{Duration: time.Minute, StartAfterTaps: 1})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addr, _, err := s.Serve(ctx, sim.ServeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = s.Run(ctx) }()
			p := startPrometheus(t, bin, addr)
			// Counters first seen inside the window would read as born
			// there: wait for Prometheus' first scrape.
			wctx, wcancel := context.WithTimeout(ctx, 60*time.Second) // a hang guard
			defer wcancel()
			if err := p.waitFor(wctx, `up{job="linkerd-proxy"} == 1`); err != nil {
				t.Fatal(err)
			}

			pol := &gate.Policy{
				Name: "cross", Window: 6 * time.Second, Warmup: time.Second, KeepTapping: true,
				Targets:    []gate.Target{api},
				Rules:      []gate.Rule{{Name: "errors", Kind: gate.ErrorRate, Max: 0.05}},
				CrossCheck: gate.CrossCheckPolicy{MismatchInconclusive: true},
			}
			src, err := kube.NewSource(&rest.Config{Host: "http://" + addr}, nil, pol.Targets, "shop", kube.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Ground truth at the window's edges.
			start := make(chan uint64, 1)
			go func() {
				time.Sleep(pol.Warmup)
				start <- s.Truth().Deployments["shop/api"].Requests
			}()
			res, err := runner.Run(ctx, runner.Config{Policy: pol, Source: src, Live: true})
			if err != nil {
				t.Fatal(err)
			}
			atEnd := s.Truth().Deployments["shop/api"].Requests
			atStart := <-start
			client, err := gprom.New(gprom.Config{URL: p.URL})
			if err != nil {
				t.Fatal(err)
			}
			counts, err := client.Counts(ctx, api, res.WindowStart(), res.WindowEnd())
			if err != nil {
				t.Fatal(err)
			}
			res.Engine.SetProxyCounts(0, counts)
			v := res.Reevaluate()

			cc := v.Targets[0].CrossCheck
			if cc == nil {
				t.Fatal("no cross-check in the verdict")
			}
			truth := float64(atEnd - atStart)
			if d := math.Abs(cc.TotalRequests-truth) / truth; d > 0.01 {
				t.Errorf("Prometheus counted %.0f requests in the window, the simulator %.0f (%.2f%% off; want within 1%%)", cc.TotalRequests, truth, 100*d)
			}
			if want := float64(cc.TappedRequests) / truth; math.Abs(cc.VolumeCoverage-want) > 0.02 {
				t.Errorf("volume coverage %.4f, the simulator's truth %.4f: want within 2 points", cc.VolumeCoverage, want)
			}
			if cc.VolumeCoverage > 0.1 {
				t.Errorf("volume coverage %.4f: maxRps 100 of ~1500 rps should be about 6.6%%", cc.VolumeCoverage)
			}
			if cc.Mismatch != tc.mismatch {
				t.Errorf("mismatch %v (tapped %.3f%% vs %.3f%%, p=%.3g), want %v", cc.Mismatch, 100*cc.TappedErrorRate, 100*cc.TotalErrorRate, cc.PValue, tc.mismatch)
			}
			r := v.Rules[0]
			if r.Outcome != tc.wantRule || !strings.Contains(r.Reason, tc.reasonText) {
				t.Errorf("rule %s (%s), want %s with %q", r.Outcome, r.Reason, tc.wantRule, tc.reasonText)
			}
			t.Logf("tapped %d of %.0f requests (%.1f%%; truth %.0f), errors tapped %.3f%% vs all %.3f%%, p=%.3g",
				cc.TappedRequests, cc.TotalRequests, 100*cc.VolumeCoverage, truth, 100*cc.TappedErrorRate, 100*cc.TotalErrorRate, cc.PValue)
		})
	}
}
