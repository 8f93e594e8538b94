package main

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-multierror"
	"github.com/urfave/cli/v2"

	"github.com/tapgate/tapgate/gate/policy"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check policy files and list every problem with its line (exit 2 when any is invalid)",
		ArgsUsage: "FILE...",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErr(errors.New("validate needs at least one policy file"))
			}
			var all *multierror.Error
			for _, f := range c.Args().Slice() {
				if _, _, err := policy.LoadRef(f); err != nil {
					all = multierror.Append(all, err)
					continue
				}
				fmt.Fprintf(c.App.Writer, "%s: ok\n", f)
			}
			if all != nil {
				all.ErrorFormat = listErrors
				return usageErr(all)
			}
			return nil
		},
	}
}

// listErrors prints one problem per line, each already carrying file:line.
func listErrors(errs []error) string {
	var s string
	for _, e := range flatten(errs) {
		s += "\n  " + e.Error()
	}
	return fmt.Sprintf("%d problem(s):%s", len(flatten(errs)), s)
}

func flatten(errs []error) []error {
	var out []error
	for _, e := range errs {
		var me *multierror.Error
		if errors.As(e, &me) {
			out = append(out, flatten(me.Errors)...)
			continue
		}
		out = append(out, e)
	}
	return out
}
