package replay

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

var exampleRecording = filepath.Join("..", "..", "examples", "recordings", "checkout.json.gz")

func TestExampleRecording(t *testing.T) {
	raw, err := os.ReadFile(exampleRecording)
	if err != nil {
		t.Skipf("example recording not present: %v", err)
	}
	if len(raw) > 1536<<10 {
		t.Errorf("example recording is %d bytes gzipped, keep it under 1.5 MB", len(raw))
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(text, []byte("Bearer")) || !bytes.Contains(text, []byte(`"name": "authorization"`)) {
		t.Error("the authorization header must be present and redacted")
	}

	type stats struct{ reqs, fail5xx, grpcErr, resets int }
	per := map[string]*stats{"checkout": {}, "checkout-canary": {}}
	targets := []gate.Target{
		{Name: "stable", Resource: gate.ResourceRef{Type: "deployment", Name: "checkout", Namespace: "shop"}, Direction: gate.Inbound},
		{Name: "canary", Resource: gate.ResourceRef{Type: "deployment", Name: "checkout-canary", Namespace: "shop"}, Direction: gate.Inbound},
		{Name: "namespace", Resource: gate.ResourceRef{Type: "namespace", Name: "shop"}},
	}
	src, err := NewSource(exampleRecording, targets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var last time.Duration
	counts := make([]int, len(targets))
	err = src.Run(context.Background(), gate.SinkFunc(func(i int, ev *gate.Event) {
		counts[i]++
		if !ev.HasTime || ev.At < last {
			t.Fatalf("event without time or out of order: %+v", ev)
		}
		last = ev.At
		if i == 2 {
			return
		}
		s := per[ev.Destination.Labels["deployment"]]
		switch ev.Kind {
		case gate.RequestInit:
			s.reqs++
		case gate.ResponseInit:
			if ev.HTTPStatus >= 500 {
				s.fail5xx++
			}
		case gate.ResponseEnd:
			if ev.EOS.Kind == gate.EOSGRPCStatus && ev.EOS.Code != 0 {
				s.grpcErr++
			}
			if ev.EOS.Kind == gate.EOSReset {
				s.resets++
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if counts[0]+counts[1] != counts[2] {
		t.Errorf("per-deployment targets saw %d+%d events, the namespace %d", counts[0], counts[1], counts[2])
	}
	if last < 65*time.Second || last > 70*time.Second {
		t.Errorf("recording spans %v, want about 70s", last)
	}
	st, ca := per["checkout"], per["checkout-canary"]
	if st.reqs+ca.reqs < 2400 || st.reqs < 2*ca.reqs {
		t.Errorf("requests: stable %d, canary %d", st.reqs, ca.reqs)
	}
	stableFail := float64(st.fail5xx+st.grpcErr) / float64(st.reqs)
	canaryFail := float64(ca.fail5xx+ca.grpcErr+ca.resets) / float64(ca.reqs)
	if stableFail > 0.01 || canaryFail < 0.03 || ca.grpcErr == 0 || ca.resets == 0 || st.resets != 0 {
		t.Errorf("failure mix: stable %.4f (%+v), canary %.4f (%+v)", stableFail, *st, canaryFail, *ca)
	}
}

// benchInput is the example recording decompressed, optionally without its
// timestamps (the plain linkerd shape).
func benchInput(b *testing.B, timestamps bool) ([]byte, int) {
	raw, err := os.ReadFile(exampleRecording)
	if err != nil {
		b.Skipf("example recording not present: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	if !timestamps {
		var out bytes.Buffer
		for _, line := range strings.SplitAfter(string(text), "\n") {
			if !strings.HasPrefix(line, `  "timestamp": `) {
				out.WriteString(line)
			}
		}
		text = out.Bytes()
	}
	return text, bytes.Count(text, []byte("\n}\n"))
}

func benchmarkReplay(b *testing.B, timestamps bool) {
	text, n := benchInput(b, timestamps)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	var ev gate.Event
	for i := 0; i < b.N; i++ {
		rd, err := NewReader(bytes.NewReader(text), "bench")
		if err != nil {
			b.Fatal(err)
		}
		for {
			err := rd.Next(&ev)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			events++
		}
	}
	b.StopTimer()
	if events != n*b.N {
		b.Fatalf("decoded %d events, want %d", events, n*b.N)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReplayPretty decodes linkerd's pretty-printed shape (no
// timestamps). allocs/op divided by the ~8.5k events per op is allocs/event;
// most allocations are the per-file intern tables, not per event.
func BenchmarkReplayPretty(b *testing.B) { benchmarkReplay(b, false) }

// BenchmarkReplayPrettyTimestamps decodes tapgate's recording shape.
func BenchmarkReplayPrettyTimestamps(b *testing.B) { benchmarkReplay(b, true) }
