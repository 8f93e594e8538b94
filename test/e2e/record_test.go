package e2e_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretMarker is in every secret header value the simulator sends: about
// one request in four carries `authorization: Bearer s3cr3t-...` and its
// response `set-cookie: session=s3cr3t-...` (gate/sim/doc.go).
const secretMarker = "s3cr3t"

// TestRecordAndReplay: --record during a live gate writes a recording that
// `tapgate run --replay` evaluates to the same verdict, and the secret
// header values the simulator sends never reach the file. A run with
// --record-secrets-unredacted is the control: it shows the secrets did
// come through the apiserver, so their absence is the redaction's doing.
func TestRecordAndReplay(t *testing.T) {
	f := newFixture(t, "record", healthy("web"))
	f.serve(t)
	pol := writeFile(t, "policy.yaml", gatePolicy(f.ns, "web", window, warmup))
	dir := t.TempDir()
	recPath := filepath.Join(dir, "web.json")
	rawPath := filepath.Join(dir, "web-unredacted.json.gz")

	rs := tapgates(t,
		[]string{"run", "--policy", pol, "--kubeconfig", f.admin, "-q", "-o", "json", "--record", recPath},
		[]string{"run", "--policy", pol, "--kubeconfig", f.admin, "-q", "--record", rawPath, "--record-secrets-unredacted"})
	live, raw := rs[0], rs[1]

	wantCode(t, live, exitPass)
	liveRep := parseReport(t, live)
	rec := readRecording(t, recPath)
	if len(rec) == 0 {
		t.Fatalf("empty recording %s", recPath)
	}
	for _, what := range []string{live.stdout, live.stderr, rec} {
		if strings.Contains(what, secretMarker) {
			t.Errorf("a secret header value leaked:\n%s", excerpt(what, secretMarker))
		}
	}
	// The headers are there, with their values replaced.
	wantIn(t, "recording", rec, `"authorization"`, `"set-cookie"`, "[REDACTED]", `"requestInitEvent"`, `"responseEndEvent"`, f.podNames("web")[0])

	t.Run("control: unredacted recording", func(t *testing.T) {
		wantCode(t, raw, exitPass)
		if !strings.Contains(readRecording(t, rawPath), secretMarker) {
			t.Errorf("the unredacted recording holds no %q: the simulator's secrets never reached tapgate, so the redaction check above proves nothing", secretMarker)
		}
	})

	t.Run("replay", func(t *testing.T) {
		r := tapgate(t, "run", "--replay", recPath, "--policy", pol, "-o", "json")
		wantCode(t, r, exitPass)
		rep := parseReport(t, r)
		if rep.Verdict != liveRep.Verdict || !rep.Final {
			t.Errorf("replay verdict %q (final %v), live %q", rep.Verdict, rep.Final, liveRep.Verdict)
		}
		got, want := rep.Targets[0].Requests, liveRep.Targets[0].Requests
		if got == 0 {
			t.Fatalf("the replay evaluated no requests\n%s", r)
		}
		// The recording keeps arrival times, so warmup and window cut the
		// replay where they cut the live run, give or take the requests
		// at the edges.
		if diff := int64(got) - int64(want); diff < -int64(want)/10 || diff > int64(want)/10 {
			t.Errorf("replay evaluated %d requests, the live gate %d", got, want)
		}
		if strings.Contains(r.stdout+r.stderr, secretMarker) {
			t.Errorf("the replay printed a secret")
		}

		// The recording also replays with the budgets broken: it holds the
		// outcomes, not only the verdict.
		strict := writeFile(t, "strict.yaml", strings.NewReplacer("min: 99%", "min: 99.99%", "max: 300ms", "max: 1ms").
			Replace(gatePolicy(f.ns, "web", window, warmup)))
		r = tapgate(t, "run", "--replay", recPath, "--policy", strict, "-q")
		wantCode(t, r, exitFail)
	})
}

// readRecording returns the recording's text, gunzipped when it ends in .gz.
func readRecording(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("recording %s: %v", path, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatalf("recording %s: %v", path, err)
		}
	}
	return string(b)
}

// excerpt shows the text around the first occurrence of sub.
func excerpt(s, sub string) string {
	i := strings.Index(s, sub)
	if i < 0 {
		return ""
	}
	lo, hi := max(0, i-200), min(len(s), i+200)
	return s[lo:hi]
}
