package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/policy"
	"github.com/tapgate/tapgate/gate/replay"
	"github.com/tapgate/tapgate/gate/report"
	"github.com/tapgate/tapgate/gate/runner"
)

// runConfig is the plain configuration the run command's flags become.
type runConfig struct {
	PolicyRef   string
	Resource    string // positional: the target for ad-hoc or resource-less policies
	AdHoc       policy.AdHoc
	Window      time.Duration
	Warmup      time.Duration
	OnInconc    string
	Replay      string
	Output      string
	Reports     []report.Spec
	PrintPolicy bool
	Live        liveConfig
}

func runFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "policy", Aliases: []string{"p"}, Usage: "policy file, or the name of a ready policy (see 'tapgate policies')"},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "namespace of the target"},
		&cli.DurationFlag{Name: "window", Usage: "how long to tap (overrides the policy)"},
		&cli.DurationFlag{Name: "warmup", Usage: "tapped but not evaluated (overrides the policy)"},
		&cli.StringFlag{Name: "on-inconclusive", Usage: "exit as fail|pass|inconclusive when evidence is insufficient (overrides the policy)"},
		&cli.StringFlag{Name: "replay", Usage: "evaluate a recording (linkerd viz tap -o json output, JSON Lines, gzip; - for stdin) instead of tapping live"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "what to print on stdout: text or json"},
		&cli.StringSliceFlag{Name: "report", Usage: "also write a report file, FORMAT=PATH (repeatable), e.g. json=out/gate.json"},
		&cli.BoolFlag{Name: "print-policy", Usage: "print the policy that would be used, as YAML, and exit"},
		// Ad-hoc gates: the one-liner users write today.
		&cli.StringFlag{Name: "min-success-rate", Usage: "ad-hoc rule: minimum success rate, e.g. 99.5%"},
		&cli.StringFlag{Name: "max-error-rate", Usage: "ad-hoc rule: maximum error rate, e.g. 0.5%"},
		&cli.StringSliceFlag{Name: "max-latency", Usage: "ad-hoc rule: QUANTILE=MAX, e.g. p99=300ms (repeatable)"},
		&cli.Float64Flag{Name: "min-request-rate", Usage: "ad-hoc rule: minimum requests per second seen"},
		&cli.IntFlag{Name: "min-requests", Usage: "ad-hoc: minimum sample for every rule"},
		&cli.StringFlag{Name: "to", Usage: "ad-hoc: only traffic to this destination, e.g. deploy/backend"},
		&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "ad-hoc: label selector of the target's pods"},
		&cli.StringFlag{Name: "direction", Usage: "ad-hoc: inbound, outbound or any"},
		&cli.Float64Flag{Name: "max-rps", Usage: "ad-hoc: tap sampling limit (Linkerd's maxRps; 0 means 100)"},
	}, liveFlags()...)
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "tap the targets for the window, evaluate the policy and exit 0 pass, 1 fail, 3 inconclusive",
		ArgsUsage: "[TYPE/NAME]",
		Flags:     runFlags(),
		Action: func(c *cli.Context) error {
			cfg, err := runConfigFrom(c)
			if err != nil {
				return usageErr(err)
			}
			return runGate(c.Context, cfg, c.App.Reader, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runConfigFrom(c *cli.Context) (*runConfig, error) {
	cfg := &runConfig{
		PolicyRef:   c.String("policy"),
		Window:      c.Duration("window"),
		Warmup:      c.Duration("warmup"),
		OnInconc:    c.String("on-inconclusive"),
		Replay:      c.String("replay"),
		Output:      c.String("output"),
		PrintPolicy: c.Bool("print-policy"),
		Live:        liveConfigFrom(c),
	}
	if c.NArg() > 1 {
		return nil, fmt.Errorf("run takes at most one target (TYPE/NAME), got %d: %v", c.NArg(), c.Args().Slice())
	}
	cfg.Resource = c.Args().First()
	cfg.AdHoc = policy.AdHoc{
		Resource:       cfg.Resource,
		Namespace:      c.String("namespace"),
		To:             c.String("to"),
		LabelSelector:  c.String("selector"),
		Direction:      c.String("direction"),
		Window:         cfg.Window,
		Warmup:         cfg.Warmup,
		MinRequests:    c.Int("min-requests"),
		MinSuccessRate: c.String("min-success-rate"),
		MaxErrorRate:   c.String("max-error-rate"),
		MaxLatency:     c.StringSlice("max-latency"),
		MinRequestRate: c.Float64("min-request-rate"),
		OnInconclusive: cfg.OnInconc,
		MaxRPS:         c.Float64("max-rps"),
	}
	if cfg.Output != "text" && cfg.Output != "json" {
		return nil, fmt.Errorf("--output %q: use text or json", cfg.Output)
	}
	for _, s := range c.StringSlice("report") {
		spec, err := report.ParseSpec(s)
		if err != nil {
			return nil, err
		}
		cfg.Reports = append(cfg.Reports, spec)
	}
	if err := report.CheckSpecs(cfg.Reports); err != nil {
		return nil, err
	}
	if cfg.PolicyRef == "" && cfg.Resource == "" {
		return nil, errors.New("nothing to gate: give --policy FILE, or a target such as deploy/web with ad-hoc rules (--min-success-rate 99%, --max-latency p99=300ms)")
	}
	return cfg, nil
}

func adHocRules(a policy.AdHoc) bool {
	return a.MinSuccessRate != "" || a.MaxErrorRate != "" || len(a.MaxLatency) > 0 || a.MinRequestRate != 0
}

// loadPolicy builds the policy from a file or ready policy, or from flags.
func loadPolicy(cfg *runConfig) (*gate.Policy, []byte, error) {
	if cfg.PolicyRef == "" {
		p, err := policy.FromAdHoc(cfg.AdHoc)
		if err != nil {
			return nil, nil, err
		}
		y, err := policy.Render(cfg.AdHoc)
		return p, y, err
	}
	if adHocRules(cfg.AdHoc) {
		return nil, nil, errors.New("ad-hoc rule flags (--min-success-rate, --max-latency, ...) cannot be combined with --policy: put the rules in the policy file")
	}
	p, raw, err := policy.LoadRef(cfg.PolicyRef)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Resource != "" {
		if err := policy.WithResource(p, cfg.Resource, cfg.AdHoc.Namespace); err != nil {
			return nil, nil, err
		}
	}
	if sel := cfg.AdHoc.LabelSelector; sel != "" {
		// Argo Rollouts passes the canary's pod-template hash this way.
		if len(p.Targets) != 1 {
			return nil, nil, fmt.Errorf("-l/--selector applies to a policy with one target; %s has %d: set labelSelector on each target in the policy", p.Name, len(p.Targets))
		}
		if err := policy.CheckSelector(sel); err != nil {
			return nil, nil, fmt.Errorf("-l/--selector %q: %w", sel, err)
		}
		p.Targets[0].LabelSelector = sel
	}
	if cfg.Window > 0 {
		p.Window = cfg.Window
	}
	if cfg.Warmup > 0 {
		p.Warmup = cfg.Warmup
	}
	if err := checkTiming(p); err != nil {
		return nil, nil, err
	}
	if cfg.OnInconc != "" {
		o, ok := gate.ParseOutcome(cfg.OnInconc)
		if !ok {
			return nil, nil, fmt.Errorf("--on-inconclusive %q: use fail, pass or inconclusive", cfg.OnInconc)
		}
		p.OnInconclusive = o
	}
	return p, raw, nil
}

func runGate(ctx context.Context, cfg *runConfig, stdin io.Reader, stdout, stderr io.Writer) error {
	p, raw, err := loadPolicy(cfg)
	if err != nil {
		return usageErr(err)
	}
	if cfg.PrintPolicy {
		_, err := stdout.Write(raw)
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Replay != "" {
		if cfg.Live.Record != "" {
			return usageErr(errors.New("--record writes a live tap; with --replay the recording already exists"))
		}
		src, err := replay.NewSource(cfg.Replay, p.Targets, replay.Options{Stdin: stdin})
		if err != nil {
			return usageErr(err)
		}
		return gateWith(ctx, cfg, p, src, false, "replay "+cfg.Replay, stdout, stderr)
	}
	src, desc, err := kubeSource(cfg, p)
	if err != nil {
		return err
	}
	return gateWith(ctx, cfg, p, src, true, desc, stdout, stderr)
}

// gateWith runs the gate over src and turns the outcome into reports and an
// exit code. live runs on the wall clock with progress; otherwise the source
// is a recording.
func gateWith(ctx context.Context, cfg *runConfig, p *gate.Policy, src gate.Source, live bool, desc string, stdout, stderr io.Writer) error {
	rcfg := runner.Config{Policy: p, Source: src, Live: live}
	var prog *progress
	if live && !cfg.Live.Quiet {
		prog = newProgress(stderr, p)
		rcfg.Progress, rcfg.ProgressEvery = prog.update, prog.every()
	}
	rec, err := openRecorder(cfg.Live, p)
	if err != nil {
		return usageErr(err)
	}
	var start time.Time
	if rec != nil {
		rcfg.Observe = func(_ int, ev *gate.Event) { rec.write(ev, start.Add(ev.At)) }
		rcfg.Now = func() time.Time {
			t := time.Now()
			if start.IsZero() {
				start = t
			}
			return t
		}
	}
	res, runErr := runner.Run(ctx, rcfg)
	if prog != nil {
		prog.done()
	}
	recErr := rec.close()
	if res == nil {
		return usageErr(runErr)
	}
	code := gate.ExitCode(res.Verdict.Outcome, p.OnInconclusive)
	var failure error
	switch {
	case errors.Is(runErr, runner.ErrInterrupted):
		code = gate.ExitInterrupted
		failure = &exitError{code: code, err: errors.New("interrupted before the window closed: the report is partial")}
	case runErr != nil:
		var re *replay.Error
		if errors.As(runErr, &re) {
			failure = usageErr(runErr)
		} else {
			failure = infraErr(runErr)
		}
		var ee *exitError
		if errors.As(failure, &ee) {
			code = ee.code
		}
	case recErr != nil:
		failure = infraErr(recErr)
		code = gate.ExitInfra
	}
	meta := report.Meta{
		Version:        version,
		PolicyFile:     p.File,
		Source:         desc,
		ExitCode:       code,
		OnInconclusive: p.OnInconclusive,
	}
	if live {
		meta.StartTime = res.Start
	}
	if failure != nil && code != gate.ExitInterrupted && code != gate.ExitInfra {
		// Bad input: no verdict is honest, so no report.
		return failure
	}
	if failure != nil && code == gate.ExitInfra && runErr != nil {
		// The tap failed: say why; a report of what little was seen
		// would read like a verdict.
		publishFailure(cfg, code, failure, stdout)
		return failure
	}
	if err := writeReports(cfg, res.Verdict, meta, stdout, stderr); err != nil {
		return infraErr(err)
	}
	if err := report.WriteTerminationMessage(cfg.Live.TerminationLog, res.Verdict, code); err != nil {
		fmt.Fprintf(stderr, "tapgate: %v\n", err)
	}
	publishGitHub(cfg, res.Verdict, meta, stdout, stderr)
	if failure != nil {
		return failure
	}
	return verdictExit(code)
}

func writeReports(cfg *runConfig, v *gate.Verdict, meta report.Meta, stdout, stderr io.Writer) error {
	main := report.Text
	if cfg.Output == "json" {
		main = report.JSON
	}
	if err := main(stdout, v, meta); err != nil {
		return err
	}
	if cfg.Output == "json" && isTerminal(stderr) {
		fmt.Fprintf(stderr, "tapgate: %s (exit %d)\n", v.Outcome, meta.ExitCode)
	}
	return report.Write(stdout, cfg.Reports, v, meta)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// checkTiming re-checks what the policy loader checks, after --window and
// --warmup have overridden the file.
func checkTiming(p *gate.Policy) error {
	if p.Window > 0 && p.Warmup >= p.Window {
		return fmt.Errorf("warmup (%s) must be shorter than window (%s): the window is evaluated after the warmup; check --window and --warmup", p.Warmup, p.Window)
	}
	return nil
}
