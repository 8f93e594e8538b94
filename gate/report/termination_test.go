package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapgate/tapgate/gate"
)

func TestTerminationMessage(t *testing.T) {
	want := map[string]string{
		"pass-two-targets":          "PASS api-gateway-release: all 5 rules passed (exit 0)",
		"fail-dry-run":              "FAIL checkout-release: checkout-errors on checkout: error rate 0.25% > 0.1% (n=400) (exit 1)",
		"inconclusive-zero-traffic": "INCONCLUSIVE payments-canary: success-rate on payments: no requests matched this rule: zero traffic is never a pass; and 1 more rule (exit 1)",
		"replay-unknown-time":       "INCONCLUSIVE web-smoke: traffic-present on web: the events carry no time (a plain linkerd viz tap recording), so a rate per second is unknown; record with tapgate to keep arrival times (exit 3)",
		"interrupted-partial":       "INCONCLUSIVE api: success-rate on api: only 57 of the 100 requests needed; partial: the window did not close (exit 5)",
		"cross-check":               "PASS api-gateway-release: all 5 rules passed (exit 0)",
		"sequential-mix":            "INCONCLUSIVE checkout-release: checkout-errors on checkout: undecided at 99% confidence: 6 of 412 failed (1.456%), not yet enough to tell 0.5% failing from 2% failing; about 472 more requests would likely decide it at the observed rate (~1m9s at 6.9/s) (exit 3)",
		"stopped-early":             "FAIL checkout-canary: success-rate on canary: success rate 93.651% < 99.5% (n=63); stopped after 2.1s of the 40s window (exit 1)",
		"compare-baseline":          "INCONCLUSIVE checkout-canary-compare: p99-vs-stable on canary: undecided at 99% confidence: canary p99 125.553ms (3000 samples) vs stable 93.946ms (3000 samples), bound 112.735ms; at the observed rate the test is unlikely to decide: it is too close to the threshold for any practical sample; and 1 more rule (exit 3)",
	}
	for _, f := range fixtures {
		v, meta := f.build()
		if got := TerminationMessage(v, meta.ExitCode); got != want[f.name] {
			t.Errorf("%s:\n got %q\nwant %q", f.name, got, want[f.name])
		}
	}
	if got := TerminationMessage(nil, 4); got != "tapgate: no verdict (exit 4)" {
		t.Errorf("nil verdict: %q", got)
	}
}

func TestTerminationMessageBounded(t *testing.T) {
	v := &gate.Verdict{Policy: strings.Repeat("é\n", 5000), Outcome: gate.Pass, Final: true}
	got := TerminationMessage(v, 0)
	if len(got) >= maxTermination || strings.ContainsAny(got, "\n\r") || !strings.HasSuffix(got, "…") {
		t.Errorf("message not one bounded line: %d bytes, suffix %q", len(got), got[len(got)-8:])
	}
}

func TestWriteTerminationMessage(t *testing.T) {
	dir := t.TempDir()
	v, meta := failDryRun()

	// The log exists (Kubernetes creates it): it is overwritten.
	path := filepath.Join(dir, "termination-log")
	if err := os.WriteFile(path, []byte("stale content that is longer than the message ........................................................................................................"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteTerminationMessage(path, v, meta.ExitCode); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := TerminationMessage(v, meta.ExitCode) + "\n"; string(got) != want {
		t.Errorf("wrote %q, want %q", got, want)
	}

	// Outside Kubernetes: nothing is created and it is not an error.
	missing := filepath.Join(dir, "no-such-log")
	if err := WriteTerminationMessage(missing, v, 1); err != nil {
		t.Errorf("missing path: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("created %s: %v", missing, err)
	}
	if err := WriteTerminationMessage("", v, 1); err != nil {
		t.Errorf("empty path: %v", err)
	}
	// A path that exists but cannot be written is reported.
	if err := WriteTerminationMessage(dir, v, 1); err == nil {
		t.Error("writing to a directory succeeded")
	}
}
