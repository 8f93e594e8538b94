package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
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
	KeepTapping bool
	// PrometheusURL and NoCrossCheck override spec.crossCheck.
	PrometheusURL string
	NoCrossCheck  bool
	Live          liveConfig
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

		&cli.StringFlag{Name: "decision", Usage: "how rate and latency rules decide: sequential (default: a test with stated error bounds) or estimate (point estimate, no bounds); overrides the policy's default"},
		&cli.StringFlag{Name: "confidence", Usage: "confidence of the sequential tests, e.g. 99% (default): a release twice over budget passes at most 1% of the time; overrides the policy's default"},
		&cli.StringFlag{Name: "tolerance", Usage: "factor from the budget at which the error bounds hold, e.g. 2 (default: at half and twice the budget); overrides the policy's default"},
		&cli.BoolFlag{Name: "stop-on-pass", Usage: "stop as soon as every rule has passed instead of tapping the whole window"},
		&cli.BoolFlag{Name: "keep-tapping", Usage: "tap the whole window even after a FAIL is decided (default: stop at once)"},
		&cli.StringFlag{Name: "prometheus-url", Usage: "cross-check with this Prometheus, Thanos or Mimir HTTP API instead of linkerd-viz's Prometheus through the apiserver"},
		&cli.BoolFlag{Name: "no-cross-check", Usage: "do not cross-check the tapped sample with the proxies' own counts in Prometheus"},
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
		Decision:       c.String("decision"),
		Confidence:     c.String("confidence"),
		Tolerance:      c.String("tolerance"),
		StopOnPass:     c.Bool("stop-on-pass"),
	}
	cfg.KeepTapping = c.Bool("keep-tapping")
	cfg.PrometheusURL = c.String("prometheus-url")
	cfg.NoCrossCheck = c.Bool("no-cross-check")
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
		p.KeepTapping = p.KeepTapping || cfg.KeepTapping
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
	if err := overrideDecision(p, cfg); err != nil {
		return nil, nil, err
	}
	return p, raw, nil
}

// overrideDecision applies --decision, --confidence, --tolerance,
// --stop-on-pass and --keep-tapping to a policy from a file: they replace
// the policy's defaults, not a rule's own settings.
func overrideDecision(p *gate.Policy, cfg *runConfig) error {
	a := cfg.AdHoc
	if a.Decision != "" {
		d, ok := gate.ParseDecision(a.Decision)
		if !ok {
			return fmt.Errorf("--decision %q: use sequential or estimate", a.Decision)
		}
		p.Decision = d
	}
	if a.Confidence != "" {
		v, err := parseRatio(a.Confidence)
		if err != nil {
			return fmt.Errorf("--confidence %q: %w, e.g. 99%% or 0.99", a.Confidence, err)
		}
		p.Confidence = v
	}
	if a.Tolerance != "" {
		v, err := strconv.ParseFloat(strings.TrimSpace(a.Tolerance), 64)
		if err != nil {
			return fmt.Errorf("--tolerance %q: not a number, e.g. 2", a.Tolerance)
		}
		p.Tolerance = v
	}
	p.StopOnPass = p.StopOnPass || a.StopOnPass
	p.KeepTapping = p.KeepTapping || cfg.KeepTapping
	var errs []error
	for i := range p.Rules {
		if err := gate.CheckParams(&p.Rules[i], p); err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", p.Rules[i].Name, err))
		}
	}
	return errors.Join(errs...)
}

// parseRatio reads "99%" or "0.99".
func parseRatio(s string) (float64, error) {
	s = strings.TrimSpace(s)
	div := 1.0
	if strings.HasSuffix(s, "%") {
		s, div = strings.TrimSuffix(s, "%"), 100
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v/div <= 0 || v/div >= 1 {
		return 0, errors.New("not a ratio between 0 and 1")
	}
	return v / div, nil
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
		return gateWith(ctx, cfg, p, src, false, "replay "+cfg.Replay, stdout, stderr, nil)
	}
	src, desc, rc, err := kubeSource(cfg, p)
	if err != nil {
		return err
	}
	cc, err := newCrossCheck(ctx, cfg, p, rc, stderr)
	if err != nil {
		return err
	}
	return gateWith(ctx, cfg, p, src, true, desc, stdout, stderr, cc)
}

// gateWith runs the gate over src and turns the outcome into reports and an
// exit code. live runs on the wall clock with progress; otherwise the source
// is a recording.
func gateWith(ctx context.Context, cfg *runConfig, p *gate.Policy, src gate.Source, live bool, desc string, stdout, stderr io.Writer, cc *crossCheck) error {
	var prog *progress
	if live && !cfg.Live.Quiet {
		prog = newProgress(stderr, p)
	}
	g := runOne(ctx, cfg, p, src, live, desc, prog, cc)
	if prog != nil {
		prog.done()
	}
	return g.publish(cfg, cfg.Reports, stdout, stderr)
}

// gateResult is one finished gate, ready to be reported.
type gateResult struct {
	p       *gate.Policy
	verdict *gate.Verdict
	meta    report.Meta
	code    int
	// failure is what the command returns besides the verdict's exit code;
	// noReport says the failure leaves no honest verdict to report.
	failure  error
	noReport bool
	infra    bool
}

// runOne runs one gate, showing its progress on prog when not nil, and
// cross-checks it with cc when not nil.
func runOne(ctx context.Context, cfg *runConfig, p *gate.Policy, src gate.Source, live bool, desc string, prog *progress, cc *crossCheck) *gateResult {
	g := &gateResult{p: p}
	rcfg := runner.Config{Policy: p, Source: src, Live: live}
	if prog != nil {
		rcfg.Progress, rcfg.ProgressEvery = prog.update, prog.every()
	}
	rec, err := openRecorder(cfg.Live, p)
	if err != nil {
		g.failure, g.noReport = usageErr(err), true
		return g
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
	recErr := rec.close()
	if res == nil {
		g.failure, g.noReport = usageErr(runErr), true
		return g
	}
	if runErr == nil {
		cc.apply(ctx, res)
	}
	g.verdict = res.Verdict
	code := gate.ExitCode(res.Verdict.Outcome, p.OnInconclusive)
	switch {
	case errors.Is(runErr, runner.ErrInterrupted):
		code = gate.ExitInterrupted
		g.failure = &exitError{code: code, err: errors.New("interrupted before the window closed: the report is partial")}
	case runErr != nil:
		var re *replay.Error
		if errors.As(runErr, &re) {
			g.failure = usageErr(runErr)
		} else {
			g.failure = infraErr(runErr)
		}
		var ee *exitError
		if errors.As(g.failure, &ee) {
			code = ee.code
		}
	case recErr != nil:
		g.failure = infraErr(recErr)
		code = gate.ExitInfra
	}
	g.code = code
	g.meta = report.Meta{
		Version:        version,
		PolicyFile:     p.File,
		Source:         desc,
		ExitCode:       code,
		OnInconclusive: p.OnInconclusive,
	}
	if live {
		g.meta.StartTime = res.Start
	}
	switch {
	case g.failure != nil && code != gate.ExitInterrupted && code != gate.ExitInfra:
		// Bad input: no verdict is honest, so no report.
		g.noReport = true
	case g.failure != nil && code == gate.ExitInfra && runErr != nil:
		// The tap failed: say why; a report of what little was seen
		// would read like a verdict.
		g.noReport, g.infra = true, true
	}
	return g
}

// publish writes the gate's reports (stdout and specs), the termination
// message and the GitHub outputs, and returns the command's error.
func (g *gateResult) publish(cfg *runConfig, specs []report.Spec, stdout, stderr io.Writer) error {
	if g.noReport {
		if g.infra {
			publishFailure(cfg, g.code, g.failure, stdout)
		}
		return g.failure
	}
	if err := writeReports(cfg, specs, g.verdict, g.meta, stdout, stderr); err != nil {
		return infraErr(err)
	}
	if err := report.WriteTerminationMessage(cfg.Live.TerminationLog, g.verdict, g.code); err != nil {
		fmt.Fprintf(stderr, "tapgate: %v\n", err)
	}
	publishGitHub(cfg, g.verdict, g.meta, stdout, stderr)
	if g.failure != nil {
		return g.failure
	}
	return verdictExit(g.code)
}

func writeReports(cfg *runConfig, specs []report.Spec, v *gate.Verdict, meta report.Meta, stdout, stderr io.Writer) error {
	if cfg.Output != "" {
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
	}
	return report.Write(stdout, specs, v, meta)
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
