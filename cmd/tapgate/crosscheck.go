package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/prom"
	"github.com/tapgate/tapgate/gate/runner"
)

// crossCheck reads the proxies' own counts for a live gate's window from
// Prometheus and hands them to the engine; nil means none runs.
type crossCheck struct {
	client *prom.Client
	quiet  bool
	stderr io.Writer
	// skipped is why no cross-check runs, noted on every target.
	skipped string
}

// newCrossCheck prepares the cross-check a live run asks for: with
// --prometheus-url or spec.crossCheck.prometheus.url that Prometheus,
// otherwise linkerd-viz's through the apiserver's service proxy. It checks
// that Prometheus answers before tapping: when it does not, the run goes
// on without a cross-check and says so, unless the policy requires one
// (exit 4).
func newCrossCheck(ctx context.Context, cfg *runConfig, p *gate.Policy, rc *rest.Config, stderr io.Writer) (*crossCheck, error) {
	cp := p.CrossCheck
	if cfg.NoCrossCheck || cp.Disabled {
		return nil, nil
	}
	if cfg.PrometheusURL != "" {
		cp.URL, cp.Namespace, cp.Service, cp.Port = cfg.PrometheusURL, "", "", 0
	}
	c := &crossCheck{quiet: cfg.Live.Quiet, stderr: stderr}
	client, err := prom.New(prom.ConfigFor(p, cp, rc))
	if err == nil {
		err = client.Check(ctx)
	}
	if err != nil {
		if cp.Required {
			return nil, infraErr(fmt.Errorf("the policy requires a cross-check (spec.crossCheck.required), but %w", err))
		}
		c.skipped = "no cross-check with the proxies' own counts: " + firstLine(err.Error())
		if !c.quiet {
			fmt.Fprintf(stderr, "tapgate: %s\n", c.skipped)
		}
		return c, nil
	}
	c.client = client
	return c, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// apply reads every target's counts for the window the run tapped and
// re-evaluates the verdict with them. A target whose counts cannot be read
// gets a note; the verdict is then the tap's alone.
func (c *crossCheck) apply(ctx context.Context, res *runner.Result) {
	if c == nil {
		return
	}
	eng := res.Engine
	p := eng.Policy()
	if c.client == nil {
		for i := range p.Targets {
			eng.Note(i, "%s", c.skipped)
		}
		res.Reevaluate()
		return
	}
	if !c.quiet {
		fmt.Fprintf(c.stderr, "tapgate: cross-checking the sample with %s\n", c.client.Source())
	}
	from, to := res.WindowStart(), res.WindowEnd()
	counts := make([]gate.ProxyCounts, len(p.Targets))
	errs := make([]error, len(p.Targets))
	var wg sync.WaitGroup
	for i, t := range p.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = c.client.Counts(ctx, t, from, to)
		}()
	}
	wg.Wait()
	for i := range p.Targets {
		if errs[i] != nil {
			eng.Note(i, "no cross-check: %s", firstLine(errs[i].Error()))
			continue
		}
		eng.SetProxyCounts(i, counts[i])
	}
	res.Reevaluate()
}
