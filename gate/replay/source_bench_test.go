package replay

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/sim"
)

// BenchmarkReplaySource is what tapgate run --replay does per event: read a
// file in linkerd viz tap -o json shape (the simulator's demo traffic, 3
// events per request, headers included), select the target's events and
// feed them to an engine with a success-rate and a latency rule.
func BenchmarkReplaySource(b *testing.B) {
	s, err := sim.New(sim.DemoScenario(), sim.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, nil)
	if _, err := s.Generate(60000, func(ev *gate.Event) {
		if err := w.Write(ev, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "tap.json")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	p := &gate.Policy{Name: "bench", Window: time.Hour,
		Targets: []gate.Target{{Name: "checkout", Resource: gate.ResourceRef{Type: "deployment", Name: "checkout", Namespace: "shop"}, Direction: gate.Inbound}},
		Rules: []gate.Rule{
			{Name: "sr", Kind: gate.SuccessRate, Min: 0.99},
			{Name: "p99", Kind: gate.LatencyQuantile, Quantile: 0.99, MaxLatency: 300 * time.Millisecond},
		}}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eng, err := gate.NewEngine(p, gate.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		src, err := NewSource(path, p.Targets, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := src.Run(context.Background(), gate.SinkFunc(eng.Observe)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(60000*b.N)/b.Elapsed().Seconds(), "events/s")
}
