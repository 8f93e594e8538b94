package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/replay"
	"github.com/tapgate/tapgate/gate/sim"
)

// benchScenario is one meshed deployment taking ingress traffic: every
// request is seen by one proxy, inbound, as exactly three tap events
// (no resets, so every request has response headers). Headers are on, as
// linkerd viz tap asks for them.
const benchScenario = `
name: bench
seed: 20261128
controlPlaneNamespace: linkerd
namespaces:
- name: shop
  deployments:
  - name: checkout
    pods: 4
    labels: {app: checkout}
    serviceAccount: checkout
    port: 8080
    rps: 5000
    routes:
    - {method: POST, path: /api/v1/checkout, weight: 3, bytes: 420}
    - {method: GET, path: /api/v1/cart, weight: 6, bytes: 1800}
    - {method: GET, path: /healthz, weight: 1, bytes: 2}
    errors: {"500": 0.002, "503": 0.003}
    latency: {p50: 35ms, p99: 120ms}
`

// benchTarget are the tapgate arguments that select the scenario's traffic.
var benchTarget = []string{"deploy/checkout", "-n", "shop"}

func newBenchSim(opts sim.Options) (*sim.Simulator, error) {
	sc, err := sim.Parse([]byte(benchScenario), "bench.yaml")
	if err != nil {
		return nil, err
	}
	return sim.New(sc, opts)
}

type reqKey struct {
	proxy netip.AddrPort
	id    gate.StreamID
}

// generate writes the first n requests of the bench scenario (3n events) to
// w in linkerd viz tap -o json shape, without timestamps, and returns the
// number of events written. Only complete requests are written: events of
// requests that start after the n-th are skipped.
func generate(w io.Writer, n int) (int, error) {
	s, err := newBenchSim(sim.Options{})
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	rw := replay.NewWriter(bw, gate.NewRedactor())
	open := map[reqKey]struct{}{}
	started, events := 0, 0
	var werr error
	// In flight at any moment is a few hundred requests: 3n events plus
	// that slack is always enough.
	_, err = s.Generate(3*n+100000, func(ev *gate.Event) {
		if werr != nil {
			return
		}
		k := reqKey{ev.Destination.Addr, ev.ID}
		switch ev.Kind {
		case gate.RequestInit:
			if started >= n {
				return
			}
			started++
			open[k] = struct{}{}
		case gate.ResponseEnd:
			if _, ok := open[k]; !ok {
				return
			}
			delete(open, k)
		default:
			if _, ok := open[k]; !ok {
				return
			}
		}
		werr = rw.Write(ev, time.Time{})
		events++
	})
	if err == nil {
		err = werr
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && (started < n || len(open) > 0) {
		err = fmt.Errorf("generated %d complete requests of %d", started-len(open), n)
	}
	return events, err
}

func genCmd(args []string) error {
	fs := newFlags("gen")
	n := fs.Int("requests", 1000000, "requests to generate (3 events each)")
	out := fs.String("o", "-", "output file; - for stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w := io.Writer(os.Stdout)
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	events, err := generate(w, *n)
	if err != nil {
		return err
	}
	logf("wrote %d requests, %d events", *n, events)
	return nil
}
