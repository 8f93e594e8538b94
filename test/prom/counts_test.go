package prom

import (
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
	gprom "github.com/tapgate/tapgate/gate/prom"
)

var checkout = gate.Target{
	Name:      "checkout",
	Resource:  gate.ResourceRef{Type: "deployment", Name: "checkout", Namespace: "shop"},
	Direction: gate.Inbound,
}

// TestCountsAgainstPrometheus drives Linkerd-shaped counters through an 8 s
// window while a real Prometheus scrapes them every second: two pods of
// deploy/checkout with long histories, one of which goes idle and
// restarts mid-window (a counter reset), a third pod born mid-window, a
// failure status code first seen mid-window, and traffic that must not
// count (outbound from checkout, inbound at another deployment). Counts
// must agree with what the test counted: totals within 1%, every bucket.
func TestCountsAgainstPrometheus(t *testing.T) {
	bin := findPrometheus(t)
	px := newProxies()
	srv := httptest.NewServer(px)
	defer srv.Close()
	pr := startPrometheus(t, bin, strings.TrimPrefix(srv.URL, "http://"))

	pod1, pod2, pod3 := inbound("checkout", "checkout-abc-1", "abc"), inbound("checkout", "checkout-abc-2", "abc"), inbound("checkout", "checkout-abc-3", "abc")
	outbound := `direction="outbound",namespace="shop",deployment="checkout",pod="checkout-abc-1",pod_template_hash="abc",dst_namespace="shop",dst_deployment="payments",tls="true"`
	other := inbound("payments", "payments-xyz-1", "xyz")
	px.preload(pod1, "200", 1e6)
	px.preload(pod2, "200", 5e5)
	px.preload(other, "200", 1e6)

	// Each active pod serves a request every 5 ms (200 rps), cycling
	// through latencies; one in 20 fails.
	lat := []float64{2, 7, 15, 45, 120, 800}
	var (
		mu     sync.Mutex
		active = map[string]bool{pod1: true, pod2: true}
		status = "503"
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mu.Lock()
			code := "200"
			if n%20 == 19 {
				code = status
			}
			for _, pod := range []string{pod1, pod2, pod3} {
				if active[pod] {
					px.serve(pod, code, lat[n%len(lat)], "checkout")
				}
			}
			mu.Unlock()
			px.serve(outbound, "200", 3, "outbound")
			px.serve(other, "500", 3, "")
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	set := func(f func()) { mu.Lock(); defer mu.Unlock(); f() }

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pr.waitFor(ctx, "count(response_total)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a history before the window

	c, err := gprom.New(gprom.Config{URL: pr.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}

	from := time.Now()
	at := func(d time.Duration) { time.Sleep(time.Until(from.Add(d))) }
	at(2 * time.Second)
	set(func() { active[pod2] = false }) // idle long enough to be scraped
	at(3200 * time.Millisecond)
	px.restart("checkout-abc-2")
	at(3500 * time.Millisecond)
	set(func() { active[pod2] = true })
	at(4 * time.Second)
	set(func() { active[pod3] = true })
	at(5 * time.Second)
	set(func() { status = "500" }) // a series born mid-window
	at(8 * time.Second)
	to := time.Now()

	got, err := c.Counts(ctx, checkout, from, to)
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Since(to)
	n, failures, cum := px.counted("checkout", from, to)
	t.Logf("window %s, Counts returned %s after its end: requests %.1f (truth %.0f), failures %.1f (truth %.0f), notes %q",
		to.Sub(from).Round(time.Millisecond), waited.Round(time.Millisecond), got.Requests, n, got.Failures, failures, got.Notes)

	if rel := math.Abs(got.Requests-n) / n; rel > 0.01 {
		t.Errorf("requests %.1f, truth %.0f: off by %.2f%%", got.Requests, n, 100*rel)
	}
	if d := math.Abs(got.Failures - failures); d > math.Max(3, 0.02*failures) {
		t.Errorf("failures %.1f, truth %.0f", got.Failures, failures)
	}
	if len(got.Buckets) != len(bounds)+1 || !math.IsInf(got.Buckets[len(bounds)].UpperMs, 1) {
		t.Fatalf("buckets %v: want Linkerd's %d bounds and +Inf", got.Buckets, len(bounds))
	}
	for i, b := range got.Buckets {
		if i < len(bounds) && b.UpperMs != bounds[i] {
			t.Errorf("bucket %d bound %v, want %v", i, b.UpperMs, bounds[i])
		}
		if d := math.Abs(b.Count - cum[i]); d > 2+0.01*cum[i] {
			t.Errorf("bucket le=%v: %.1f, truth %.0f", b.UpperMs, b.Count, cum[i])
		}
	}
	if !got.From.Equal(from) || !got.To.Equal(to) {
		t.Errorf("counts cover %s..%s, want the window %s..%s", got.From, got.To, from, to)
	}
	if len(got.Notes) != 1 || !strings.Contains(got.Notes[0], "a proxy restarted: checkout-abc-2") {
		t.Errorf("notes %q, want exactly the restart of checkout-abc-2", got.Notes)
	}
	if waited > 3*time.Second {
		t.Errorf("Counts took %s past the window's end; with 1 s scrapes it waits at most about 2 s", waited)
	}

	t.Run("label selector", func(t *testing.T) {
		tg := checkout
		tg.LabelSelector = "pod-template-hash=abc"
		sel, err := c.Counts(ctx, tg, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(sel.Requests-got.Requests) > 1e-6 {
			t.Errorf("with pod-template-hash=abc: %.1f requests, want the same %.1f", sel.Requests, got.Requests)
		}
		tg.LabelSelector = "pod-template-hash=zzz"
		none, err := c.Counts(ctx, tg, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if none.Requests != 0 || len(none.Notes) != 1 || !strings.Contains(none.Notes[0], "do not cover this target") {
			t.Errorf("with pod-template-hash=zzz: %+v, want no series and a note", none)
		}
	})

	t.Run("direction any", func(t *testing.T) {
		tg := checkout
		tg.Direction = gate.DirectionUnknown
		anyDir, err := c.Counts(ctx, tg, from, to)
		if err != nil {
			t.Fatal(err)
		}
		// Inbound and checkout's outbound requests, both sides of the
		// target's proxies.
		out, _, _ := px.counted("outbound", from, to)
		if rel := math.Abs(anyDir.Requests-n-out) / (n + out); rel > 0.01 {
			t.Errorf("direction any: %.1f requests, truth %.0f inbound + %.0f outbound", anyDir.Requests, n, out)
		}
	})

	t.Run("errors", func(t *testing.T) {
		bad, _ := gprom.New(gprom.Config{URL: pr.URL + "/no/such/path"})
		var pe *gprom.Error
		if err := bad.Check(ctx); !errors.As(err, &pe) || pe.Kind != gprom.NotFound {
			t.Errorf("a URL without the API: %v, want NotFound", err)
		}
		pr.stop()
		if err := c.Check(ctx); !errors.As(err, &pe) || pe.Kind != gprom.Unreachable {
			t.Errorf("a stopped Prometheus: %v, want Unreachable", err)
		}
	})
}
