package e2e_test

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// exitAfterSignal is how soon tapgate must exit once signalled: "about a
// second" (a Kubernetes Job's or CI runner's grace period is longer, but
// the gate must not sit out its window).
const exitAfterSignal = 1500 * time.Millisecond

// TestInterrupt: SIGTERM (or SIGINT) in the middle of the window ends the
// run at once with exit 5, and the report of what was seen so far is still
// printed, marked partial.
func TestInterrupt(t *testing.T) {
	f := newFixture(t, "sigterm", healthy("web"))
	f.serve(t)
	pol := writeFile(t, "policy.yaml", gatePolicy(f.ns, "web", "60s", "500ms"))

	for _, tc := range []struct {
		name string
		sig  os.Signal
		json bool
	}{
		{"SIGTERM json", syscall.SIGTERM, true},
		{"SIGINT text", os.Interrupt, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"run", "--policy", pol, "--kubeconfig", f.admin, "-q"}
			if tc.json {
				args = append(args, "-o", "json")
			}
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			cmd := command(ctx, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			// Signal once events flow and the warmup is over, so that the
			// partial report has evaluated requests in it.
			before := len(f.tapRequests())
			waitFor(t, exited, 30*time.Second, "tap events flowing to tapgate", func() bool {
				reqs := f.tapRequests()
				return len(reqs) > before && reqs[len(reqs)-1].Events > 50
			})
			time.Sleep(time.Second)

			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			signalled := time.Now()
			err := <-exited // ctx kills it after runTimeout: a hang fails below
			took := time.Since(signalled)
			r, err := outcome(ctx, args, err, start, &stdout, &stderr)
			r = checked(t, r, err)
			t.Logf("exited %s after the signal", took.Round(time.Millisecond))
			wantCode(t, r, exitInterrupted)
			if took > exitAfterSignal {
				t.Errorf("exited %s after %v, want within %s", took.Round(time.Millisecond), tc.sig, exitAfterSignal)
			}
			if r.elapsed > 30*time.Second {
				t.Errorf("ran %s: the signal did not cut the 60s window short", r.elapsed)
			}
			wantIn(t, "stderr", r.stderr, "interrupted")
			if tc.json {
				rep := parseReport(t, r)
				if rep.Final || rep.ExitCode != exitInterrupted {
					t.Errorf("report final=%v exitCode=%d, want a partial report with exitCode 5\n%s", rep.Final, rep.ExitCode, r)
				}
				if rep.Targets[0].Requests == 0 {
					t.Errorf("the partial report has no requests, though events flowed before the signal\n%s", r)
				}
				if rep.ElapsedSeconds <= 0 || rep.ElapsedSeconds >= rep.WindowSeconds {
					t.Errorf("report elapsed %vs of a %vs window, want the part before the signal", rep.ElapsedSeconds, rep.WindowSeconds)
				}
				if rep.Verdict == "pass" {
					t.Errorf("a partial report passed the gate:\n%s", r)
				}
			} else {
				wantIn(t, "stdout", r.stdout, "policy e2e-web", "deploy/web", "success-rate")
			}
		})
	}
}

// waitFor polls cond until it holds; it fails the test if the process
// exits first or timeout passes.
func waitFor(t *testing.T, exited <-chan error, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case err := <-exited:
			t.Fatalf("tapgate exited (%v) while waiting for %s", err, what)
		case <-deadline:
			t.Fatalf("no %s after %s", what, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
