package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tapgate/tapgate/policies"
)

func policiesCommand() *cli.Command {
	return &cli.Command{
		Name:      "policies",
		Usage:     "list the ready policies built into tapgate, or print one",
		ArgsUsage: "[NAME]",
		Action: func(c *cli.Context) error {
			if name := c.Args().First(); name != "" {
				data, ok := policies.Get(name)
				if !ok {
					return usageErr(fmt.Errorf("no ready policy %q: run 'tapgate policies' for the list", name))
				}
				_, err := c.App.Writer.Write(data)
				return err
			}
			for _, n := range policies.Names() {
				fmt.Fprintln(c.App.Writer, n)
			}
			return nil
		},
	}
}
