package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
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
		},
		Action: func(c *cli.Context) error {
			cfg := &runConfig{
				PolicyRef: c.String("policy"),
				Window:    c.Duration("window"),
				Warmup:    c.Duration("warmup"),
				Output:    c.String("output"),
				Live:      liveConfig{Record: c.String("record"), Quiet: c.Bool("quiet")},
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
	var p *gate.Policy
	var err error
	if cfg.PolicyRef == "" {
		p, err = policy.Parse("demo-policy.yaml (built in)", sim.DemoPolicy())
	} else {
		p, _, err = policy.LoadRef(cfg.PolicyRef)
	}
	if err != nil {
		return usageErr(err)
	}
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

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	simCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := sim.New(sc, sim.Options{Duration: p.Warmup + p.Window + time.Minute})
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
	// No apiserver: the simulator serves only the tap API, so the pod
	// pre-check is replaced by the simulator's own inventory below.
	src, err := kube.NewSource(rc, nil, p.Targets, "default", kube.Options{RequestHeaders: cfg.Live.Record != ""})
	if err != nil {
		return usageErr(err)
	}
	if !cfg.Live.Quiet {
		fmt.Fprintf(stderr, "tapgate demo: simulating %s on https://%s\n", inventory(s), addr)
		fmt.Fprintf(stderr, "tapgate demo: gating %s for %s warmup + %s window with policy %s\n",
			targetList(p), p.Warmup, p.Window, p.Name)
	}
	return gateWith(ctx, cfg, p, src, true, "demo simulator ("+sc.Name+") at https://"+addr, stdout, stderr)
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
