// Command bench measures tapgate against its performance targets; make bench
// (hack/bench.sh) runs it and writes BENCHMARKS.md. Each subcommand prints
// one Markdown section on stdout and its progress on stderr:
//
//	bench gen      -requests N [-o FILE]       a recording, linkerd viz tap -o json shape
//	bench replay   -tapgate BIN -dir DIR       replay throughput, tapgate vs jq
//	bench live     -tapgate BIN                live tap throughput against the simulator
//	bench memory   -tapgate BIN                peak RSS after 1M and 10M requests
//	bench accuracy                             quantile error vs nearest-rank and Prometheus
//	bench latency  -tapgate BIN                start to first event, window end to exit
//	bench serve    -addr ADDR                  serve the saturation stream, to profile tapgate by hand
//	bench run-child -o FILE -- CMD...          the launcher runChild measures commands through
//
// The tapgate process is pinned to CPU 0 with taskset when it is there; run
// the driver itself on the other CPU (taskset -c 1) so that the simulator or
// generator feeding it does not compete for that core.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench gen|replay|live|memory|accuracy|latency [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"gen":       genCmd,
		"replay":    replayCmd,
		"live":      liveCmd,
		"memory":    memoryCmd,
		"accuracy":  accuracyCmd,
		"latency":   latencyCmd,
		"serve":     serveCmd,
		"run-child": runChildCmd,
	}
	fn, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := fn(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func newFlags(name string) *flag.FlagSet {
	return flag.NewFlagSet("bench "+name, flag.ContinueOnError)
}

// child is what one run of an external process cost, from outside.
type child struct {
	Wall      time.Duration
	User, Sys time.Duration
	MaxRSS    int64 // bytes: the kernel's peak resident set (VmHWM)
	Exit      int
	Stdout    []byte    `json:"-"`
	Stderr    []byte    `json:"-"`
	Start     time.Time // just before exec
	End       time.Time // when wait returned
	Pinned    bool      `json:"-"`
}

func (c child) CPU() time.Duration { return c.User + c.Sys }

// pinArgs prefixes argv with taskset -c cpu when taskset exists.
func pinArgs(argv []string, cpu string) ([]string, bool) {
	if cpu == "" {
		return argv, false
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return argv, false
	}
	return append([]string{ts, "-c", cpu}, argv...), true
}

// runChild runs argv (pinned to cpu when set) to completion and measures it
// from outside. The command is started by a small launcher process (bench
// run-child) rather than by the driver itself: Linux folds the memory
// high-water mark of the process that calls exec into the new program's
// ru_maxrss, and a child forked from the driver, which holds recordings
// and streams in memory, would report the driver's peak instead of its own.
// taskset execs the command, so the rusage is the command's own.
func runChild(ctx context.Context, argv []string, cpu string, stdin io.Reader) (child, error) {
	argv, pinned := pinArgs(argv, cpu)
	self, err := os.Executable()
	if err != nil {
		return child{}, err
	}
	res, err := os.CreateTemp("", "bench-child-*.json")
	if err != nil {
		return child{}, err
	}
	res.Close()
	defer func() { _ = os.Remove(res.Name()) }()
	cmd := exec.CommandContext(ctx, self, append([]string{"run-child", "-o", res.Name(), "--"}, argv...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, stdin
	cmd.Env = append(os.Environ(), "GITHUB_ACTIONS=", "NO_COLOR=1")
	if err := cmd.Run(); err != nil {
		return child{}, fmt.Errorf("%v: %w\n%s", argv, err, tail(errb.Bytes()))
	}
	b, err := os.ReadFile(res.Name())
	if err != nil {
		return child{}, err
	}
	var c child
	if err := json.Unmarshal(b, &c); err != nil {
		return child{}, fmt.Errorf("run-child result: %w", err)
	}
	c.Stdout, c.Stderr, c.Pinned = out.Bytes(), errb.Bytes(), pinned
	return c, nil
}

// runChildCmd is the launcher: it runs the command with this process's
// stdin, stdout and stderr and writes its measurements as JSON to -o.
// Its own exit status is 0 whatever the command's, which is in the JSON.
func runChildCmd(args []string) error {
	fs := newFlags("run-child")
	out := fs.String("o", "", "where to write the measurements")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 || *out == "" {
		return errors.New("usage: bench run-child -o FILE -- COMMAND [ARGS]")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	c := child{Start: time.Now()}
	err := cmd.Run()
	c.End = time.Now()
	c.Wall = c.End.Sub(c.Start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return err
	}
	fill(&c, cmd.ProcessState)
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o600)
}

func fill(c *child, ps *os.ProcessState) {
	c.Exit = ps.ExitCode()
	c.User, c.Sys = ps.UserTime(), ps.SystemTime()
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		c.MaxRSS = ru.Maxrss * 1024 // Linux reports KiB
	}
}

// report is the part of tapgate's JSON report the benchmarks read.
type report struct {
	Verdict string `json:"verdict"`
	Targets []struct {
		Requests  uint64 `json:"requests"`
		InFlight  uint64 `json:"inFlight"`
		Orphans   uint64 `json:"orphanEvents"`
		LatencyMs *struct {
			P99 float64 `json:"p99"`
		} `json:"latencyMs"`
	} `json:"targets"`
}

func parseReport(c child) (*report, error) {
	var r report
	return &r, decodeReport(c, &r, func() int { return len(r.Targets) })
}

// decodeReport decodes a child's JSON report into v; targets says how many
// targets it held, as a report without any is a failed run.
func decodeReport(c child, v any, targets func() int) error {
	err := json.Unmarshal(c.Stdout, v)
	if err == nil && targets() == 0 {
		err = errors.New("no targets")
	}
	if err != nil {
		return fmt.Errorf("tapgate exited %d without a JSON report (%w); stderr:\n%s", c.Exit, err, tail(c.Stderr))
	}
	return nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// table renders a Markdown table.
func table(w io.Writer, header []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(seps, " | "))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// si formats n with thousands separators.
func si(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func pinNote(pinned bool) string {
	if pinned {
		return "pinned to CPU 0 (taskset -c 0)"
	}
	return "NOT pinned: taskset is not installed"
}
