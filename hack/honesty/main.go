// Command honesty shows, by simulation through the real engine and runner,
// that tapgate's verdicts keep the error bounds DESIGN §3 states, and
// checks the simulation against an exact computation. make honesty runs it;
// it rewrites the honesty section of BENCHMARKS.md (between
// <!-- honesty:begin --> and <!-- honesty:end -->, appended when absent),
// prints a short table for the README on stdout and its progress on stderr.
//
//	go run ./hack/honesty                  the full study, 4000 gates per case
//	go run ./hack/honesty -quick           100 gates per case, section on stdout
//	go run ./hack/honesty -gates 5000 -seed 7 -o /tmp/b.md
//	go run ./hack/honesty -run 'rate/'     only the cases whose id matches
//
// Every simulated gate is a runner.Run of a gate.Policy over an in-memory
// gate.Source (traffic.go); the exact check (exact.go) never calls the
// engine.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

const defaultSeed = 20261129

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "honesty: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("honesty", flag.ContinueOnError)
	gates := fs.Int("gates", 4000, "simulated gates per case")
	seed := fs.Uint64("seed", defaultSeed, "seed of every random stream; the same seed gives the same tables")
	quick := fs.Bool("quick", false, "100 gates per case and the section on stdout instead of BENCHMARKS.md (unless -o is given)")
	out := fs.String("o", "BENCHMARKS.md", "the file whose honesty section to rewrite; - prints the section on stdout")
	workers := fs.Int("workers", runtime.NumCPU(), "parallel gates")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the study to this file")
	only := fs.String("run", "", "only the cases whose id matches this regular expression (ids: rate/..., p99/..., early/..., cmp-rate/..., cmp-lat/...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	outSet := false
	gatesSet := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "o":
			outSet = true
		case "gates":
			gatesSet = true
		}
	})
	if *quick {
		if !gatesSet {
			*gates = 100
		}
		if !outSet {
			*out = "-"
		}
	}
	if *gates < 1 || *workers < 1 {
		return fmt.Errorf("-gates and -workers must be at least 1")
	}
	cases := allCases()
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return fmt.Errorf("-run: %w", err)
		}
		var keep []*caseSpec
		for _, c := range cases {
			if re.MatchString(c.id) {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			return fmt.Errorf("-run %q matches no case", *only)
		}
		cases = keep
	}

	fmt.Fprintf(os.Stderr, "honesty: %d cases x %d gates on %d workers, seed %d\n", len(cases), *gates, *workers, *seed)
	// The checkout as it is now, when go run has just compiled it: the
	// core may change while the study runs.
	info := machine()
	loadStart := loadAvg()
	st := &study{cases: cases, gates: *gates, seed: *seed, workers: *workers}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	st.run(true)
	res := &results{gates: *gates, seed: *seed}
	for i, c := range cases {
		res.sums = append(res.sums, summarize(c, st.results[i]))
	}
	fmt.Fprintf(os.Stderr, "honesty: %d gates in %s\n", *gates*len(cases), st.elapsed.Round(time.Second))

	info.loadStart, info.loadEnd = loadStart, loadAvg()
	info.command = "go run ./hack/honesty"
	if len(args) > 0 {
		info.command += " " + strings.Join(args, " ")
	}
	info.viaMake = os.Getenv("MAKELEVEL") != ""
	info.workers = *workers
	info.duration = st.elapsed
	info.quick = *quick || *gates < 1000 || *only != ""
	body := res.section(info)

	res.readmeTable(os.Stdout)
	fmt.Println()
	for _, t := range res.targets() {
		state := met(t.ok)
		if t.info {
			state = "info"
		}
		fmt.Printf("- %s: %s — %s\n", t.what, t.measured, state)
	}
	k := res.checks()
	fmt.Printf("- engine vs independent check: %s — %s\n", k.summary(), met(k.ok()))

	if *out == "-" || *out == "" {
		fmt.Println()
		fmt.Print(body)
		return nil
	}
	if err := writeSection(*out, body); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "honesty: wrote the honesty section of %s\n", *out)
	return nil
}

// machine describes the machine and the checkout.
func machine() runInfo {
	info := runInfo{cores: runtime.NumCPU(), goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		date: time.Now().UTC().Format(time.RFC3339), cpu: "unknown", memory: "unknown", commit: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				info.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		for _, l := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(l, "MemTotal: %g kB", &kb); err == nil {
				info.memory = fmt.Sprintf("%.0f GiB", kb/(1<<20))
				break
			}
		}
	}
	// Read-only git: --no-optional-locks keeps status from refreshing the
	// index.
	if c, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		info.commit = strings.TrimSpace(string(c))
		st, err := exec.Command("git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=normal", "--", "gate", "go.mod", "go.sum", "hack/honesty").Output()
		if err == nil && len(bytes.TrimSpace(st)) > 0 {
			core, own := 0, 0
			for _, l := range strings.Split(strings.TrimRight(string(st), "\n"), "\n") {
				if len(l) < 4 {
					continue
				}
				if strings.HasPrefix(l[3:], "hack/honesty") {
					own++
				} else {
					core++
				}
			}
			var parts []string
			if core > 0 {
				parts = append(parts, fmt.Sprintf("%d files in gate/ or go.mod/go.sum, the core as it stood when the study started", core))
			}
			if own > 0 {
				parts = append(parts, "hack/honesty/ itself")
			}
			info.commit += " with uncommitted changes (" + strings.Join(parts, "; ") + ")"
		}
	}
	return info
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
