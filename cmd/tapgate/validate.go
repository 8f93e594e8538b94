package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-multierror"
	"github.com/urfave/cli/v2"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/policy"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check policy files and list every problem with its line (exit 2 when any is invalid)",
		ArgsUsage: "FILE...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "explain", Usage: "print each rule in plain words: what it checks, how it decides and how much traffic it needs"},
			&cli.Float64Flag{Name: "expected-rps", Usage: "with --explain: the request rate each target is expected to get, to tell whether the window is long enough"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErr(errors.New("validate needs at least one policy file"))
			}
			rps := c.Float64("expected-rps")
			if rps < 0 {
				return usageErr(fmt.Errorf("--expected-rps %v: give a rate of 0 or more requests per second", rps))
			}
			if rps > 0 && !c.Bool("explain") {
				return usageErr(errors.New("--expected-rps is used with --explain"))
			}
			var all *multierror.Error
			for _, f := range c.Args().Slice() {
				p, _, err := policy.LoadRef(f)
				if err != nil {
					all = multierror.Append(all, err)
					continue
				}
				fmt.Fprintf(c.App.Writer, "%s: ok\n", f)
				if c.Bool("explain") {
					explain(c.App.Writer, p, rps)
				}
			}
			if all != nil {
				all.ErrorFormat = listErrors
				return usageErr(all)
			}
			return nil
		},
	}
}

// explain prints the plan of every rule of p.
func explain(w io.Writer, p *gate.Policy, rps float64) {
	fmt.Fprintf(w, "  policy %s: window %s after %s warmup", p.Name, gate.FormatWindow(p.Window), gate.FormatWindow(p.Warmup))
	if p.StopOnPass {
		fmt.Fprint(w, ", stops as soon as every rule passed")
	}
	if p.KeepTapping {
		fmt.Fprint(w, ", taps the whole window even after a FAIL is decided")
	} else {
		fmt.Fprint(w, ", stops as soon as a FAIL is decided")
	}
	fmt.Fprintln(w)
	short := 0
	for _, pl := range gate.Explain(p, rps) {
		line := ""
		if pl.Rule.Line > 0 {
			line = fmt.Sprintf(" (line %d)", pl.Rule.Line)
		}
		fmt.Fprintf(w, "\n  %s%s: %s\n", pl.Rule.Name, line, pl.Check)
		fmt.Fprintf(w, "    %s\n", pl.Decides)
		for _, n := range pl.Needs {
			fmt.Fprintf(w, "    %s\n", n)
		}
		if pl.Window != "" {
			fmt.Fprintf(w, "    %s\n", pl.Window)
		}
		if pl.ShortWindow && !pl.Rule.DryRun {
			short++
		}
	}
	if short > 0 {
		fmt.Fprintf(w, "\n  %d %s may stay inconclusive at this rate: lengthen the window, raise maxRPS, or widen the %s\n", short, plural(short, "rule", "rules"), plural(short, "budget", "budgets"))
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
