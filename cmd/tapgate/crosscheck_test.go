package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate/sim"
)

// serveSim starts the demo simulator over plain HTTP for --tap-url.
func serveSim(t *testing.T) string {
	t.Helper()
	s, err := sim.New(sim.DemoScenario(), sim.Options{Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, _, err := s.Serve(ctx, sim.ServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Run(ctx) }()
	return "http://" + addr
}

// TestCrossCheckWithoutPrometheus: a Prometheus that cannot be reached or
// refuses the query leaves the verdict and exit code as the tap alone
// gives them, with a note saying why there is no cross-check; a policy
// that requires the cross-check fails with exit 4 before tapping.
func TestCrossCheckWithoutPrometheus(t *testing.T) {
	noGitHub(t)
	tapURL := serveSim(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}`))
	}))
	defer refusing.Close()
	dir := t.TempDir()
	required := filepath.Join(dir, "required.yaml")
	if err := os.WriteFile(required, []byte(`apiVersion: tapgate.dev/v1alpha1
kind: GatePolicy
metadata: {name: required}
spec:
  window: 2s
  crossCheck: {required: true, prometheus: {url: "http://127.0.0.1:1"}}
  targets: [{name: canary, resource: deploy/checkout-canary, namespace: shop}]
  rules: [{name: sr, successRate: {min: 99%}}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The broken canary fails its sequential test within a few seconds
	// (the run stops then); a verdict that still needs traffic at the
	// window's end would be inconclusive, which is as good here: what is
	// checked is that the cross-check's absence changes nothing else.
	gate := []string{"run", "deploy/checkout-canary", "-n", "shop", "--tap-url", tapURL, "--window", "10s", "--min-success-rate", "99%", "-q", "-o", "json"}
	cases := []struct {
		name string
		args []string
		code int
		note string
	}{
		{"unreachable", append(gate, "--prometheus-url", "http://127.0.0.1:1"), 1, "no cross-check with the proxies' own counts: "},
		{"refusing the query", append(gate, "--prometheus-url", refusing.URL), 1, "too many samples"},
		{"no Prometheus through the tap URL's apiserver", gate, 1, "no cross-check with the proxies' own counts: "},
		{"disabled", append(gate, "--no-cross-check"), 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args...)
			if r.code != tc.code && r.code != 3 {
				t.Fatalf("exit %d, want %d\n%s\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			var doc struct {
				Targets []struct {
					Notes      []string
					CrossCheck *json.RawMessage
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
				t.Fatal(err)
			}
			notes := strings.Join(doc.Targets[0].Notes, "\n")
			if doc.Targets[0].CrossCheck != nil {
				t.Errorf("a cross-check without Prometheus: %s", *doc.Targets[0].CrossCheck)
			}
			if tc.note == "" && strings.Contains(notes, "cross-check") || !strings.Contains(notes, tc.note) {
				t.Errorf("notes %q, want %q", notes, tc.note)
			}
		})
	}
	t.Run("required", func(t *testing.T) {
		start := time.Now()
		r := run(t, "run", "--policy", required, "--tap-url", tapURL, "-q")
		if r.code != 4 || !strings.Contains(r.stderr, "requires a cross-check") {
			t.Fatalf("exit %d, want 4 with the reason\n%s", r.code, r.stderr)
		}
		if time.Since(start) >= 2*time.Second {
			t.Errorf("the gate tapped before failing")
		}
	})
}
