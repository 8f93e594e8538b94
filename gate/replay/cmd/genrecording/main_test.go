package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The checked-in example must be exactly what the generator writes, so that
// it can be regenerated and reviewed.
func TestExampleRecordingIsUpToDate(t *testing.T) {
	checked := filepath.Join("..", "..", "..", "..", "examples", "recordings", "checkout.json.gz")
	want, err := os.ReadFile(checked)
	if err != nil {
		t.Skipf("example recording not present: %v", err)
	}
	out := filepath.Join(t.TempDir(), "checkout.json.gz")
	c := config{out: out, seed: 1, duration: 70 * time.Second, rps: 40, timestamps: true,
		start: time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC)}
	if err := run(c); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: regenerate it with go run ./gate/replay/cmd/genrecording -o examples/recordings/checkout.json.gz", checked)
	}
}
