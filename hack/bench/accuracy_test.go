package main

import (
	"math"
	"testing"
	"time"
)

func TestPromQuantile(t *testing.T) {
	bounds := []float64{10, 20, 50}
	// 4 values <= 10, 4 in (10, 20], 2 in (20, 50], none above.
	cum := []float64{4, 8, 10, 10}
	tests := []struct{ q, want float64 }{
		{0.2, 5},    // rank 2 of 4 in [0, 10]
		{0.5, 12.5}, // rank 1 of 4 in (10, 20]
		{0.9, 35},   // rank 1 of 2 in (20, 50]
		{1, 50},
	}
	for _, tt := range tests {
		if got := promQuantile(tt.q, bounds, cum); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("promQuantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	// A rank in +Inf answers the highest finite bound.
	if got := promQuantile(0.99, bounds, []float64{1, 1, 1, 10}); got != 50 {
		t.Errorf("rank in +Inf: %v, want 50", got)
	}
}

func TestHistogramTruncatesToMilliseconds(t *testing.T) {
	// linkerd-proxy records whole milliseconds: 1.7 ms counts as 1, so
	// it lands in le=1; 2.0 in le=2; 50001 in +Inf.
	got := histogram(linkerdBuckets, []float64{1.7, 2.0, 50001})
	want := map[int]float64{0: 1, 1: 2, len(linkerdBuckets): 3}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("cumulative count %d = %v, want %v (all: %v)", i, got[i], w, got)
		}
	}
}

func TestNearestRank(t *testing.T) {
	v := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]time.Duration{0.5: 5, 0.95: 10, 0.1: 1, 0.11: 2} {
		if got := nearestRank(q, v); got != want {
			t.Errorf("nearestRank(%v) = %v, want %v", q, got, want)
		}
	}
}
