package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tapgate/tapgate/gate/sim"
)

func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "serve Linkerd's tap API with simulated traffic, to try a policy before a release",
		Description: "Serves the tap.linkerd.io aggregated API (same paths, framing and errors as Linkerd's tap\n" +
			"server) on loopback until interrupted. Gate it with: tapgate run --tap-url URL --policy FILE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scenario", Usage: "scenario file (see examples/scenarios); default: the built-in demo"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8089", Usage: "listen address"},
			&cli.Float64Flag{Name: "speed", Value: 1, Usage: "simulated seconds per wall-clock second"},
		},
		Action: func(c *cli.Context) error {
			sc := sim.DemoScenario()
			if path := c.String("scenario"); path != "" {
				var err error
				if sc, err = sim.Load(path); err != nil {
					return usageErr(err)
				}
			}
			if c.Float64("speed") <= 0 {
				return usageErr(fmt.Errorf("--speed %v: must be above 0", c.Float64("speed")))
			}
			s, err := sim.New(sc, sim.Options{Speed: c.Float64("speed")})
			if err != nil {
				return usageErr(err)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			addr, _, err := s.Serve(ctx, sim.ServeOptions{Addr: c.String("addr")})
			if err != nil {
				return infraErr(fmt.Errorf("listening on %s: %w", c.String("addr"), err))
			}
			w := c.App.ErrWriter
			fmt.Fprintf(w, "tapgate sim: scenario %s: %s\n", sc.Name, inventory(s))
			fmt.Fprintf(w, "tapgate sim: serving the tap API at http://%s until interrupted; try:\n", addr)
			for _, p := range s.Pods() {
				if p.Meshed {
					fmt.Fprintf(w, "  tapgate run %s -n %s --tap-url http://%s --window 20s --min-success-rate 99%% --max-latency p99=300ms\n", p.Owner, p.Namespace, addr)
					break
				}
			}
			err = s.Run(ctx)
			if err != nil {
				return infraErr(err)
			}
			<-ctx.Done()
			return nil
		},
	}
}
