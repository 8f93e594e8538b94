package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapgate/tapgate/gate"
)

func recordCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "policy", Aliases: []string{"p"}, Usage: "record the targets of this policy (its rules are not evaluated)"},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "namespace of the target"},
		&cli.DurationFlag{Name: "duration", Aliases: []string{"d"}, Value: time.Minute, Usage: "how long to record; Ctrl-C stops earlier and keeps what was recorded"},
		&cli.StringFlag{Name: "to", Usage: "only traffic to this destination, e.g. deploy/backend"},
		&cli.StringFlag{Name: "selector", Aliases: []string{"l"}, Usage: "label selector of the target's pods"},
		&cli.StringFlag{Name: "direction", Usage: "inbound, outbound or any"},
		&cli.Float64Flag{Name: "max-rps", Usage: "tap sampling limit (Linkerd's maxRps; 0 means 100)"},
	}
	for _, f := range liveFlags() {
		switch f.Names()[0] {
		case "kubeconfig", "context", "record", "record-secrets-unredacted", "tap-url", "quiet":
			flags = append(flags, f)
		}
	}
	return &cli.Command{
		Name:      "record",
		Usage:     "tap targets live and write the events (linkerd viz tap -o json shape, secrets redacted) for later replay",
		ArgsUsage: "[TYPE/NAME] --record FILE",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			cfg := &runConfig{PolicyRef: c.String("policy"), Live: liveConfigFrom(c)}
			cfg.Live.TerminationLog = ""
			if c.NArg() > 1 {
				return usageErr(fmt.Errorf("record takes at most one target (TYPE/NAME), got %v", c.Args().Slice()))
			}
			if cfg.Live.Record == "" {
				return usageErr(errors.New("where to? give --record FILE (a .gz suffix compresses)"))
			}
			cfg.Resource = c.Args().First()
			cfg.AdHoc.Resource = cfg.Resource
			cfg.AdHoc.Namespace = c.String("namespace")
			cfg.AdHoc.To = c.String("to")
			cfg.AdHoc.LabelSelector = c.String("selector")
			cfg.AdHoc.Direction = c.String("direction")
			cfg.AdHoc.MaxRPS = c.Float64("max-rps")
			if cfg.PolicyRef == "" {
				if cfg.Resource == "" {
					return usageErr(errors.New("nothing to record: give a target such as deploy/web, or --policy FILE"))
				}
				// A policy needs a rule to be valid; recording only uses
				// its target, and never evaluates this one.
				cfg.AdHoc.MinRequestRate = 1
			}
			d := c.Duration("duration")
			if d <= 0 {
				return usageErr(fmt.Errorf("--duration %s: must be positive", d))
			}
			cfg.AdHoc.Window = d
			return runRecord(c.Context, cfg, d, c.App.ErrWriter)
		},
	}
}

func runRecord(ctx context.Context, cfg *runConfig, d time.Duration, stderr io.Writer) error {
	p, _, err := loadPolicy(cfg)
	if err != nil {
		return usageErr(err)
	}
	src, desc, _, err := kubeSource(cfg, p)
	if err != nil {
		return err
	}
	rec, err := openRecorder(cfg.Live, p)
	if err != nil {
		return usageErr(err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if !cfg.Live.Quiet {
		fmt.Fprintf(stderr, "tapgate record: %s from %s for %s into %s\n", targetList(p), desc, d, cfg.Live.Record)
	}
	var events atomic.Int64
	start := time.Now()
	runErr := src.Run(ctx, gate.SinkFunc(func(_ int, ev *gate.Event) {
		// Sources serialize Observe calls, so the recorder needs no lock.
		rec.write(ev, time.Now())
		events.Add(1)
	}))
	recErr := rec.close()
	if runErr != nil && !errors.Is(runErr, context.DeadlineExceeded) && !errors.Is(runErr, context.Canceled) {
		return infraErr(runErr)
	}
	if recErr != nil {
		return infraErr(recErr)
	}
	fmt.Fprintf(stderr, "tapgate record: %d events in %s written to %s\n", events.Load(), time.Since(start).Round(time.Millisecond), cfg.Live.Record)
	return nil
}
