package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/sim"
)

// simServer serves the demo scenario over loopback HTTPS on the tap
// APIServer's paths (no apiserver in between) and returns a rest.Config
// trusting it.
func simServer(t *testing.T, opts sim.Options) (*sim.Simulator, *rest.Config, context.Context) {
	t.Helper()
	s, err := sim.New(sim.DemoScenario(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, ca, err := s.Serve(ctx, sim.ServeOptions{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	return s, &rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}, ctx
}

var checkout = gate.Target{Name: "checkout", Resource: gate.ResourceRef{Type: "deploy", Name: "checkout"}, MaxRPS: 10000}

// TestSimulator taps the simulator for a whole scenario (5 simulated
// seconds at 10x speed) with streams cut every 100 events, and checks that
// every event the simulator wrote arrived exactly once. (Fast-forward would
// not do: with no stream open it runs to the end at once.)
func TestSimulator(t *testing.T) {
	s, cfg, ctx := simServer(t, sim.Options{Speed: 10, StartAfterTaps: 1, Duration: 5 * time.Second})
	s.CutStreamsAfterEvents(100)
	simDone := make(chan error, 1)
	go func() { simDone <- s.Run(ctx) }()

	src, err := NewSource(cfg, nil, []gate.Target{checkout}, "shop", Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, rec) }()
	if err := <-simDone; err != nil {
		t.Fatalf("simulator: %v", err)
	}
	// The simulation is over: the streams it had open are ended and new
	// ones end at once, so the counts below are final.
	<-s.Done()
	guard := time.After(30 * time.Second) // a hang guard, not a threshold
	for {
		select {
		case <-guard:
			t.Fatalf("events never matched the simulator's count")
		default:
		}
		var written uint64
		for _, r := range s.TapRequests() {
			written += r.Events
		}
		rec.mu.Lock()
		got := uint64(len(rec.events))
		rec.mu.Unlock()
		if got == written && written > 0 {
			break
		}
		if got > written && written > 0 {
			t.Fatalf("received %d events, the simulator wrote %d", got, written)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	reqs := s.TapRequests()
	if len(reqs) < 2 {
		t.Fatalf("%d tap requests (%+v); the cut streams should have been reopened", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/shop/deployments/checkout/tap" ||
		r.Target != "deployment/checkout" || r.Namespace != "shop" || r.MaxRps != 10000 || r.HTTPStatus != 200 || len(r.Pods) != 3 {
		t.Errorf("first tap request = %+v", r)
	}
	for _, ev := range rec.events {
		if ev.Kind == 0 || !strings.HasPrefix(ev.Pod(), "checkout-") || strings.HasPrefix(ev.Pod(), "checkout-canary") {
			t.Fatalf("unexpected event %+v", ev)
		}
	}
	if !strings.Contains(rec.notesText(), "broke after") {
		t.Errorf("no reconnect noted:\n%s", rec.notesText())
	}
}

func TestSimulatorErrors(t *testing.T) {
	tests := []struct {
		name   string
		target gate.Target
		fault  func(*sim.Simulator)
		kind   ErrorKind
		want   string
	}{
		{"unmeshed", gate.Target{Resource: gate.ResourceRef{Type: "deploy", Name: "legacy-batch"}}, nil, TapRefused, "no pods to tap"},
		{"apiservice unavailable", checkout, func(s *sim.Simulator) { s.FailNext(1, 503, "") }, Unavailable, "linkerd viz check"},
		{"rbac", checkout, func(s *sim.Simulator) { s.FailNext(1, 403, "") }, Forbidden, "kubectl auth can-i watch deployments.tap.linkerd.io --subresource=tap -n shop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, cfg, ctx := simServer(t, sim.Options{})
			if tc.fault != nil {
				tc.fault(s)
			}
			src, err := NewSource(cfg, nil, []gate.Target{tc.target}, "shop", Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // hang guard
			defer cancel()
			err = src.Run(ctx, newRecorder())
			var ke *Error
			if !errors.As(err, &ke) || ke.Kind != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want kind %v mentioning %q", err, tc.kind, tc.want)
			}
		})
	}
}

// TestSimulatorErrorMidStream: an ApiError frame on an open stream ends it;
// the source notes the error and reconnects.
func TestSimulatorErrorMidStream(t *testing.T) {
	s, cfg, ctx := simServer(t, sim.Options{Speed: 10, StartAfterTaps: 1, Duration: 5 * time.Second})
	s.ErrorMidStream(30, "proxy tap stream failed")
	go s.Run(ctx)
	src, err := NewSource(cfg, nil, []gate.Target{checkout}, "shop", Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, rec) }()
	rec.wait(t, 31) // only possible after a reconnect
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := rec.notesText(); !strings.Contains(n, "(tap server error: proxy tap stream failed); reconnected after") {
		t.Errorf("notes:\n%s", n)
	}
}
