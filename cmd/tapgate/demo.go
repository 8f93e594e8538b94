package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/policy"
	"github.com/tapgate/tapgate/gate/report"
	"github.com/tapgate/tapgate/gate/sim"
	"github.com/tapgate/tapgate/gate/tap/kube"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "simulate a healthy deployment and a broken canary and gate both live (no cluster needed)",
		Description: "Starts Linkerd's tap API simulator on loopback HTTPS with a built-in scenario, then taps\n" +
			"it exactly as a live run taps a cluster and prints the report. Exits like run: 1, since the canary fails.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scenario", Usage: "scenario file instead of the built-in demo (see examples/scenarios)"},
			&cli.StringFlag{Name: "policy", Aliases: []string{"p"}, Usage: "policy file instead of the built-in demo policy"},
			&cli.DurationFlag{Name: "window", Usage: "how long to tap (overrides the policy)"},
			&cli.DurationFlag{Name: "warmup", Usage: "tapped but not evaluated (overrides the policy)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "what to print on stdout: text or json"},
			&cli.StringSliceFlag{Name: "report", Usage: "also write a report file, FORMAT=PATH (repeatable)"},
			&cli.StringFlag{Name: "record", Usage: "also write the tapped events to FILE (linkerd viz tap -o json shape)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr while tapping"},
			&cli.BoolFlag{Name: "no-cross-check", Usage: "do not start a Prometheus for the cross-check even when one is installed"},
		},
		Action: func(c *cli.Context) error {
			cfg := &runConfig{
				PolicyRef:    c.String("policy"),
				Window:       c.Duration("window"),
				Warmup:       c.Duration("warmup"),
				Output:       c.String("output"),
				Live:         liveConfig{Record: c.String("record"), Quiet: c.Bool("quiet")},
				NoCrossCheck: c.Bool("no-cross-check"),
			}
			if cfg.Output != "text" && cfg.Output != "json" {
				return usageErr(fmt.Errorf("--output %q: use text or json", cfg.Output))
			}
			for _, s := range c.StringSlice("report") {
				spec, err := report.ParseSpec(s)
				if err != nil {
					return usageErr(err)
				}
				cfg.Reports = append(cfg.Reports, spec)
			}
			if err := report.CheckSpecs(cfg.Reports); err != nil {
				return usageErr(err)
			}
			return runDemo(c.Context, cfg, c.String("scenario"), c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runDemo(ctx context.Context, cfg *runConfig, scenario string, stdout, stderr io.Writer) error {
	sc := sim.DemoScenario()
	if scenario != "" {
		var err error
		if sc, err = sim.Load(scenario); err != nil {
			return usageErr(err)
		}
	}
	var ps []*gate.Policy
	if cfg.PolicyRef == "" {
		for _, dp := range sim.DemoPolicies() {
			p, err := policy.Parse(dp.File, dp.Data)
			if err != nil {
				return usageErr(err)
			}
			ps = append(ps, p)
		}
	} else {
		p, _, err := policy.LoadRef(cfg.PolicyRef)
		if err != nil {
			return usageErr(err)
		}
		ps = append(ps, p)
	}
	longest := 0
	for i, p := range ps {
		if cfg.Window > 0 {
			p.Window = cfg.Window
		}
		if cfg.Warmup > 0 {
			p.Warmup = cfg.Warmup
		}
		if p.Window <= 0 {
			return usageErr(errors.New("the demo needs a window: set --window"))
		}
		if err := checkTiming(p); err != nil {
			return usageErr(err)
		}
		if p.Warmup+p.Window > ps[longest].Warmup+ps[longest].Window {
			longest = i
		}
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	simCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := sim.New(sc, sim.Options{Duration: ps[longest].Warmup + ps[longest].Window + time.Minute})
	if err != nil {
		return usageErr(err)
	}
	// The simulator speaks the tap API over real HTTPS on loopback, with a
	// certificate from its own CA: the demo exercises the same client,
	// framing and decoding as a live run against a cluster.
	addr, ca, err := s.Serve(simCtx, sim.ServeOptions{TLS: true})
	if err != nil {
		return infraErr(fmt.Errorf("starting the simulator: %w", err))
	}
	go func() { _ = s.Run(simCtx) }()
	rc := &rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
	desc := "demo simulator (" + sc.Name + ") at https://" + addr

	// Each gate taps on its own, as two pipeline steps would; the
	// simulator serves only the tap API, so the pod pre-check is replaced
	// by its own inventory. The last gate records, when asked: it taps the
	// canary and its baseline.
	srcs := make([]gate.Source, len(ps))
	cfgs := make([]*runConfig, len(ps))
	for i, p := range ps {
		c := *cfg
		if i != len(ps)-1 {
			c.Live.Record = ""
		}
		cfgs[i] = &c
		src, err := kube.NewSource(rc, nil, p.Targets, "default", kube.Options{RequestHeaders: c.Live.Record != ""})
		if err != nil {
			return usageErr(err)
		}
		srcs[i] = src
	}
	if !cfg.Live.Quiet {
		fmt.Fprintf(stderr, "tapgate demo: simulating %s on https://%s\n", inventory(s), addr)
		for i, p := range ps {
			stops := "stops on a decided FAIL"
			if p.KeepTapping {
				stops = "taps the whole window"
			}
			fmt.Fprintf(stderr, "tapgate demo: gate %d, %s: %s for %s warmup + %s window (%s)\n",
				i+1, p.Name, targetList(p), gate.FormatWindow(p.Warmup), gate.FormatWindow(p.Window), stops)
		}
	}
	// A real Prometheus scraping the simulator, when one is installed, for
	// the cross-check; the demo works without it.
	var cc *crossCheck
	if !cfg.NoCrossCheck {
		if url, stopProm, err := demoPrometheus(ctx, addr, ca); err != nil {
			if !cfg.Live.Quiet {
				fmt.Fprintf(stderr, "tapgate demo: no cross-check: %v\n", err)
			}
		} else {
			defer stopProm()
			c := *cfg
			c.PrometheusURL = url
			if cc, err = newCrossCheck(ctx, &c, ps[0], nil, stderr); err != nil {
				return err
			}
			if !cfg.Live.Quiet {
				fmt.Fprintf(stderr, "tapgate demo: Prometheus at %s scrapes the simulated proxies every second, for the cross-check\n", url)
			}
		}
	}
	var prog *progress
	if !cfg.Live.Quiet {
		prog = newProgress(stderr, ps[longest])
	}
	// One progress line: it follows the first gate still running.
	var mu sync.Mutex
	running := make([]bool, len(ps))
	owner := func() int {
		for i, r := range running {
			if r {
				return i
			}
		}
		return -1
	}
	results := make([]*gateResult, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		running[i] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pr *progress
			if prog != nil {
				pr = prog.follow(p, func() bool {
					mu.Lock()
					defer mu.Unlock()
					return owner() == i
				})
			}
			g := runOne(ctx, cfgs[i], p, srcs[i], true, desc, pr, cc)
			results[i] = g
			mu.Lock()
			running[i] = false
			others := owner() >= 0
			mu.Unlock()
			if prog != nil && others && g.verdict != nil {
				v := g.verdict
				how := "after its"
				if v.StoppedEarly {
					how = fmt.Sprintf("stopped early, after %.1fs of its", v.Elapsed.Seconds())
				}
				prog.note(fmt.Sprintf("tapgate demo: gate %d, %s: %s (%s %s window)", i+1, p.Name,
					strings.ToUpper(v.Outcome.String()), how, gate.FormatWindow(p.Window)))
			}
		}()
	}
	wg.Wait()
	if prog != nil {
		prog.done()
	}
	if len(ps) == 1 {
		return results[0].publish(cfg, cfg.Reports, stdout, stderr)
	}
	return publishAll(cfg, results, stdout, stderr)
}

// publishAll reports several gates: text reports one after the other,
// JSON as an array of GateReport documents, report files per gate (the
// gate's policy name before the extension), and the exit code of the most
// serious outcome.
func publishAll(cfg *runConfig, results []*gateResult, stdout, stderr io.Writer) error {
	var errs []error
	var docs []json.RawMessage
	for i, g := range results {
		specs := make([]report.Spec, len(cfg.Reports))
		for j, sp := range cfg.Reports {
			if sp.Path != report.Stdout {
				ext := filepath.Ext(sp.Path)
				sp.Path = strings.TrimSuffix(sp.Path, ext) + "-" + g.p.Name + ext
			}
			specs[j] = sp
		}
		c := *cfg
		var out io.Writer = stdout
		var buf bytes.Buffer
		if cfg.Output == "json" {
			out = &buf
		} else if i > 0 {
			fmt.Fprintln(stdout)
		}
		if cfg.Output != "json" {
			fmt.Fprintf(stdout, "=== gate %d of %d: %s\n", i+1, len(results), g.p.Name)
		}
		errs = append(errs, g.publish(&c, specs, out, stderr))
		if cfg.Output == "json" && g.verdict != nil && !g.noReport {
			docs = append(docs, json.RawMessage(bytes.TrimSpace(buf.Bytes())))
		}
	}
	if cfg.Output == "json" {
		b, err := json.MarshalIndent(docs, "", "  ")
		if err != nil {
			return infraErr(err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
	}
	return worst(errs)
}

// worst returns the error of the most serious exit code: interrupted,
// infrastructure, usage, fail, inconclusive, in that order.
func worst(errs []error) error {
	rank := map[int]int{gate.ExitInterrupted: 5, gate.ExitInfra: 4, gate.ExitUsage: 3, gate.ExitFail: 2, gate.ExitInconclusive: 1}
	var out error
	best := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		code := gate.ExitFail
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if r := rank[code]; r > best || out == nil {
			if r >= best {
				best, out = r, err
			}
		}
	}
	return out
}

// inventory describes the simulated workloads, e.g. "shop/checkout (3
// pods), ...".
func inventory(s *sim.Simulator) string {
	count := map[string]int{}
	for _, p := range s.Pods() {
		if !p.Meshed {
			continue
		}
		count[p.Namespace+"/"+p.Owner]++
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		names[i] = fmt.Sprintf("%s (%d meshed %s)", n, count[n], plural(count[n], "pod", "pods"))
	}
	return strings.Join(names, ", ")
}

func targetList(p *gate.Policy) string {
	var parts []string
	for _, t := range p.Targets {
		parts = append(parts, fmt.Sprintf("%s (%s)", t.Name, t.Resource.String()))
	}
	return strings.Join(parts, " and ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
