package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tapgate/tapgate/gate/ghactions"
)

// actionCommand is the GitHub Action's entry point (action.yml runs the
// image with the argument "action"): it turns the INPUT_* environment into
// a run command line, runs it, and removes the kubeconfig it wrote.
func actionCommand() *cli.Command {
	return &cli.Command{
		Name:   "action",
		Usage:  "run as the GitHub Action: read the INPUT_* environment and gate",
		Hidden: true,
		Action: func(c *cli.Context) error {
			ac, err := ghactions.RunAction(c.Context, os.Getenv, c.App.Writer, "")
			defer func() {
				if cerr := ac.Cleanup(); cerr != nil {
					fmt.Fprintf(c.App.ErrWriter, "tapgate: %v\n", cerr)
				}
			}()
			if err != nil {
				_ = ghactions.PublishError(ghactions.New(c.App.Writer, os.Getenv), 2, err)
				return usageErr(err)
			}
			if err := os.MkdirAll(ac.ReportDir, 0o755); err != nil {
				return infraErr(fmt.Errorf("report-dir: %w", err))
			}
			args := append([]string{c.App.Name}, ac.RunArgs()...)
			code := Main(args, c.App.Reader, c.App.Writer, c.App.ErrWriter)
			return verdictExit(code)
		},
	}
}
