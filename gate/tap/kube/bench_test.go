package kube

import (
	"context"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/sim"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// BenchmarkLiveStream measures tapgate's live path per event: HTTP/1.1
// chunked transfer over loopback, framing, decoding (wire.Decoder) and the
// source's hand-off to the sink. The server writes a pre-encoded stream of
// the demo scenario's events (headers included, as tapgate asks for them)
// in a loop, so it is never the bottleneck. The sink is an engine with a
// success-rate and a latency rule, as in a gate.
func BenchmarkLiveStream(b *testing.B) {
	s, err := sim.New(sim.DemoScenario(), sim.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var stream []byte
	if _, err := s.Generate(30000, func(ev *gate.Event) {
		stream, err = wire.AppendFrame(stream, wire.FromEvent(ev))
		if err != nil {
			b.Fatal(err)
		}
	}); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for r.Context().Err() == nil {
			for p := stream; len(p) > 0; {
				n := min(len(p), 64<<10)
				if _, err := w.Write(p[:n]); err != nil {
					return
				}
				p = p[n:]
			}
		}
	}))
	defer srv.Close()

	p := &gate.Policy{Name: "bench", Window: time.Hour, Targets: []gate.Target{checkout},
		Rules: []gate.Rule{
			{Name: "sr", Kind: gate.SuccessRate, Min: 0.99},
			{Name: "p99", Kind: gate.LatencyQuantile, Quantile: 0.99, MaxLatency: 300 * time.Millisecond},
		}}
	eng, err := gate.NewEngine(p, gate.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	src, err := NewSource(&rest.Config{Host: srv.URL}, nil, p.Targets, "shop", Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var cpu0 time.Duration
	sink := gate.SinkFunc(func(i int, ev *gate.Event) {
		if n == 0 {
			b.ResetTimer()
			cpu0 = processCPU()
		}
		eng.Observe(i, ev)
		n++
		if n == b.N+1 {
			cancel()
		}
	})
	b.ReportAllocs()
	if err := src.Run(ctx, sink); err != nil && ctx.Err() == nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

// processCPU is the user+system CPU time of the test process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
