package replay

import (
	"context"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/policy"
)

func BenchmarkTmpFile(b *testing.B) {
	p, err := policy.FromAdHoc(policy.AdHoc{Resource: "deploy/checkout", Namespace: "shop", MinSuccessRate: "99%", MaxLatency: []string{"p99=300ms"}, Window: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		e, _ := gate.NewEngine(p, gate.Limits{})
		src, err := NewSource("/tmp/bench/r100k.json", p.Targets, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := src.Run(context.Background(), gate.SinkFunc(e.Observe)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(300000*b.N)/b.Elapsed().Seconds(), "events/s")
}
