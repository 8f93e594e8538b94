package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// progress prints what the gate has seen so far: a line rewritten in place
// on a terminal, or a log line every 10 s otherwise (CI logs, Jobs).
type progress struct {
	mu     sync.Mutex // notes come from other goroutines than updates
	w      io.Writer
	tty    bool
	total  time.Duration
	warmup time.Duration
	width  int
	// shared and shows: see follow.
	shared *progress
	shows  func() bool
}

func newProgress(w io.Writer, p *gate.Policy) *progress {
	return &progress{w: w, tty: isTerminal(w), total: p.Warmup + p.Window, warmup: p.Warmup}
}

// follow returns a progress for gate p that shares pr's line and draws
// only while shows() says so: several gates at once show one line.
func (pr *progress) follow(p *gate.Policy, shows func() bool) *progress {
	return &progress{w: pr.w, tty: pr.tty, total: p.Warmup + p.Window, warmup: p.Warmup, shared: pr, shows: shows}
}

// every is how often the runner should call update.
func (pr *progress) every() time.Duration {
	if pr.tty {
		return 250 * time.Millisecond
	}
	return 10 * time.Second
}

func (pr *progress) update(v *gate.Verdict, elapsed time.Duration) {
	line := progressLine(v, elapsed, pr.total, pr.warmup)
	if pr.shared != nil {
		if pr.shows() {
			pr.shared.draw(v.Policy + ": " + line)
		}
		return
	}
	pr.draw(line)
}

func (pr *progress) draw(line string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if !pr.tty {
		fmt.Fprintf(pr.w, "tapgate: %s\n", line)
		return
	}
	pad := ""
	if n := pr.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	pr.width = len(line)
	fmt.Fprintf(pr.w, "\r%s%s", line, pad)
}

// done clears the in-place line before the report is printed.
func (pr *progress) done() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.clear()
}

func (pr *progress) clear() {
	if pr.tty && pr.width > 0 {
		fmt.Fprintf(pr.w, "\r%s\r", strings.Repeat(" ", pr.width))
		pr.width = 0
	}
}

// note prints a line of its own; the next update redraws the progress.
func (pr *progress) note(line string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.clear()
	fmt.Fprintln(pr.w, line)
}

func progressLine(v *gate.Verdict, elapsed, total, warmup time.Duration) string {
	if elapsed > total {
		elapsed = total
	}
	phase := "window"
	if elapsed < warmup {
		phase = "warmup"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s/%s (%s left)", phase, elapsed.Truncate(time.Second), total, (total - elapsed).Truncate(time.Second))
	for _, t := range v.Targets {
		fmt.Fprintf(&b, " | %s: %d req", t.Name, t.Requests)
		if t.Requests > 0 {
			fmt.Fprintf(&b, ", %s ok", gate.FormatPercent(t.SuccessRate))
		}
		if t.Latency.Valid {
			fmt.Fprintf(&b, ", p99 %s", gate.FormatDuration(t.Latency.P99))
		}
	}
	return b.String()
}
