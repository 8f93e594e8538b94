package report

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/tapgate/tapgate/gate"
)

// TerminationLog is where Kubernetes reads a container's termination
// message (terminationMessagePath's default).
const TerminationLog = "/dev/termination-log"

// maxTermination is Kubernetes' limit for one container's termination
// message; the kubelet truncates longer ones.
const maxTermination = 4096

// TerminationMessage is the one-line verdict for a Kubernetes termination
// message, so `kubectl get pod -o wide` / `kubectl describe pod` say why a
// gate Job failed without reading its logs, e.g.
//
//	FAIL checkout-release: p99-latency on canary: p99 ≈ 812ms > 300ms (n=4210) (exit 1)
//
// It names the first rule that decided the verdict and how many more did.
func TerminationMessage(v *gate.Verdict, code int) string {
	if v == nil {
		return fmt.Sprintf("tapgate: no verdict (exit %d)", code)
	}
	var b strings.Builder
	b.WriteString(strings.ToUpper(v.Outcome.String()))
	if v.Policy != "" {
		b.WriteString(" ")
		b.WriteString(v.Policy)
	}
	b.WriteString(": ")
	var deciding []*gate.RuleResult
	for i := range v.Rules {
		r := &v.Rules[i]
		if !r.DryRun && r.Outcome == v.Outcome && v.Outcome != gate.Pass {
			deciding = append(deciding, r)
		}
	}
	if len(deciding) == 0 {
		b.WriteString(Reason(v))
	} else {
		r := deciding[0]
		b.WriteString(r.Name)
		if r.Target != "" {
			b.WriteString(" on ")
			b.WriteString(r.Target)
		}
		b.WriteString(": ")
		if r.Outcome == gate.Fail {
			b.WriteString(RuleSummary(r))
		} else {
			b.WriteString(r.Reason)
		}
		if len(deciding) > 1 {
			fmt.Fprintf(&b, "; and %d more %s", len(deciding)-1, rulesWord(len(deciding)-1))
		}
		if v.StoppedEarly {
			b.WriteString("; ")
			b.WriteString(stoppedAfter(v))
		}
		if !v.Final {
			b.WriteString("; partial: the window did not close")
		}
	}
	fmt.Fprintf(&b, " (exit %d)", code)
	return truncate(line(b.String()), maxTermination-1)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// WriteTerminationMessage writes TerminationMessage to path (normally
// TerminationLog) when the path exists, and does nothing when it does not:
// outside Kubernetes there is no termination log, and creating one would
// litter the working directory or fail on a read-only /dev.
func WriteTerminationMessage(path string, v *gate.Verdict, code int) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("termination message: %w", err)
	}
	_, err = f.WriteString(TerminationMessage(v, code) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("termination message %s: %w", path, err)
	}
	return nil
}
