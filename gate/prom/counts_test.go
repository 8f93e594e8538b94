package prom

import (
	"context"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tapgate/tapgate/gate"
)

var checkout = gate.Target{
	Name:      "checkout",
	Resource:  gate.ResourceRef{Type: "deployment", Name: "checkout", Namespace: "shop"},
	Direction: gate.Inbound,
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestIncrease checks one series' increase over a window from its raw
// samples: interpolation at the edges, resets, series born or gone.
func TestIncrease(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	s := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	pts := func(kv ...float64) []model.SamplePair {
		var v []model.SamplePair
		for i := 0; i+1 < len(kv); i += 2 {
			v = append(v, model.SamplePair{Timestamp: model.TimeFromUnixNano(s(kv[i]).UnixNano()), Value: model.SampleValue(kv[i+1])})
		}
		return v
	}
	from, to := s(25), s(85) // 60 s, edges halfway between 10 s scrapes
	cases := []struct {
		name    string
		samples []model.SamplePair
		want    float64
		resets  int
	}{
		{"steady 10/s", pts(0, 1000, 10, 1100, 20, 1200, 30, 1300, 40, 1400, 50, 1500, 60, 1600, 70, 1700, 80, 1800, 90, 1900), 600, 0},
		{"uneven: edges interpolated", pts(20, 0, 30, 100, 80, 100, 90, 300), 50 + 100, 0},
		// Restart at 55 s after 10/s; 10/s again: the 50 requests between
		// the last scrape before it and the restart are lost to any
		// Prometheus.
		{"reset", pts(0, 1000, 10, 1100, 20, 1200, 30, 1300, 40, 1400, 50, 1500, 60, 50, 70, 150, 80, 250, 90, 350), 550, 1},
		// Born at 42 s (1/s): first sample 8 at 50 s; it starts from zero
		// one scrape earlier, at 40 s.
		{"born in the window", pts(50, 8, 60, 18, 70, 28, 80, 38, 90, 48), 43, 0},
		{"born after the window", pts(100, 5, 110, 15), 0, 0},
		// First scraped at 90 s: born in (80, 90], half of it in the window.
		{"born straddling the end", pts(90, 10, 100, 20), 5, 0},
		{"gone before the window", pts(0, 10, 10, 20, 20, 30), 0, 0},
		{"gone in the window", pts(0, 0, 10, 10, 20, 20, 30, 30, 40, 40), 15, 0},
		{"reset before the window does not count", pts(0, 500, 10, 5, 20, 15, 30, 25, 40, 35, 50, 45, 60, 55, 70, 65, 80, 75, 90, 85), 60, 0},
		{"single sample before from", pts(20, 7), 0, 0},
		{"empty", nil, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, resets := increase(tc.samples, from, to, 10*time.Second)
			if !near(got, tc.want) || resets != tc.resets {
				t.Errorf("increase = %v (%d resets), want %v (%d)", got, resets, tc.want, tc.resets)
			}
		})
	}
}

func TestScrapeInterval(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	m := model.Matrix{
		{Values: ramp(t0, t0.Add(time.Minute), 15*time.Second, linear(t0, 0, 1))},
		{Values: ramp(t0, t0.Add(time.Minute), 15*time.Second, linear(t0, 0, 1))},
		{Values: ramp(t0, t0, time.Second, linear(t0, 0, 1))},
	}
	if got := scrapeInterval(m, time.Second); got != 15*time.Second {
		t.Errorf("scrapeInterval = %s, want 15s", got)
	}
	if got := scrapeInterval(m[2:], 7*time.Second); got != 7*time.Second {
		t.Errorf("scrapeInterval of single samples = %s, want the default 7s", got)
	}
}

// TestCounts runs Counts against the fake: the queries it sends, totals
// summed over pods and classifications, buckets per le.
func TestCounts(t *testing.T) {
	f, srv := newFakeProm(t, "")
	c, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-10 * time.Minute).Truncate(10 * time.Second)
	from, to := t0.Add(25*time.Second), t0.Add(85*time.Second)
	end := t0.Add(3 * time.Minute)
	every := 10 * time.Second
	for _, pod := range []string{"checkout-1", "checkout-2"} {
		f.add(responses, []string{"pod", pod, "classification", "success", "status_code", "200"}, ramp(t0, end, every, linear(t0, 1000, 10)))
		f.add(responses, []string{"pod", pod, "classification", "failure", "status_code", "503"}, ramp(t0, end, every, linear(t0, 50, 1)))
		for _, b := range []struct {
			le   string
			rate float64
		}{{"10", 5}, {"100", 9}, {"+Inf", 11}} {
			f.add(latency, []string{"pod", pod, "le", b.le}, ramp(t0, end, every, linear(t0, 0, b.rate)))
		}
	}
	got, err := c.Counts(context.Background(), checkout, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !near(got.Requests, 2*11*60) || !near(got.Failures, 2*60) {
		t.Errorf("requests, failures = %v, %v, want %v, %v", got.Requests, got.Failures, 2*11*60, 2*60)
	}
	want := []gate.HistogramBucket{{UpperMs: 10, Count: 600}, {UpperMs: 100, Count: 1080}, {UpperMs: math.Inf(1), Count: 1320}}
	if len(got.Buckets) != len(want) {
		t.Fatalf("buckets = %v, want %v", got.Buckets, want)
	}
	for i := range want {
		if got.Buckets[i].UpperMs != want[i].UpperMs || !near(got.Buckets[i].Count, want[i].Count) {
			t.Errorf("bucket %d = %v, want %v", i, got.Buckets[i], want[i])
		}
	}
	if !got.From.Equal(from) || !got.To.Equal(to) || got.Source != "Prometheus at "+srv.URL || len(got.Notes) != 0 {
		t.Errorf("from %s to %s source %q notes %q", got.From, got.To, got.Source, got.Notes)
	}
	q := f.sent()
	wantQ := []*regexp.Regexp{
		regexp.MustCompile(`^response_total\{direction="inbound",namespace="shop",deployment="checkout"\}\[\d+s\]$`),
		regexp.MustCompile(`^response_latency_ms_bucket\{direction="inbound",namespace="shop",deployment="checkout"\}\[\d+s\]$`),
	}
	if len(q) != len(wantQ) {
		t.Fatalf("queries %q, want one per metric", q)
	}
	for i, re := range wantQ {
		if !re.MatchString(q[i]) {
			t.Errorf("query %q does not match %s", q[i], re)
		}
	}
	for _, m := range f.methods {
		if m != "GET" {
			t.Errorf("method %s, want GET only", m)
		}
	}
}

func TestCountsNotes(t *testing.T) {
	t0 := time.Now().Add(-10 * time.Minute).Truncate(10 * time.Second)
	from, to := t0.Add(25*time.Second), t0.Add(85*time.Second)
	t.Run("no series", func(t *testing.T) {
		f, srv := newFakeProm(t, "")
		c, _ := New(Config{URL: srv.URL})
		got, err := c.Counts(context.Background(), checkout, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if got.Requests != 0 || len(got.Notes) != 1 || len(f.sent()) != 1 {
			t.Fatalf("got %+v after %q", got, f.sent())
		}
		contains(t, "note", got.Notes[0], "no response_total series", `deployment="checkout"`, "do not cover this target")
	})
	t.Run("restart", func(t *testing.T) {
		f, srv := newFakeProm(t, "")
		c, _ := New(Config{URL: srv.URL})
		f.add(responses, []string{"pod", "checkout-1", "classification", "success"},
			append(ramp(t0, t0.Add(50*time.Second), 10*time.Second, linear(t0, 1000, 10)),
				ramp(t0.Add(60*time.Second), t0.Add(2*time.Minute), 10*time.Second, linear(t0.Add(55*time.Second), 0, 10))...))
		got, err := c.Counts(context.Background(), checkout, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if !near(got.Requests, 550) || len(got.Notes) != 1 {
			t.Fatalf("got %+v", got)
		}
		contains(t, "note", got.Notes[0], "a proxy restarted: checkout-1", "counted across the restart")
	})
	t.Run("selector and match", func(t *testing.T) {
		f, srv := newFakeProm(t, "")
		c, _ := New(Config{URL: srv.URL})
		f.add(responses, []string{"pod", "checkout-1"}, ramp(t0, t0.Add(2*time.Minute), 10*time.Second, linear(t0, 0, 1)))
		tg := checkout
		tg.LabelSelector = "rollouts-pod-template-hash=6f9c,tier>1"
		tg.Match = gate.HTTPMatch{Method: "POST"}
		got, err := c.Counts(context.Background(), tg, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if !near(got.Requests, 60) || len(got.Notes) != 2 {
			t.Fatalf("got %+v", got)
		}
		contains(t, "query", f.sent()[0], `rollouts_pod_template_hash="6f9c"`)
		contains(t, "notes", strings.Join(got.Notes, "\n"), "tier>1", "method POST")
	})
}

// TestCountsLookback: with samples every 60 s and the default 10 s hint,
// the first read does not reach back to a sample before the window; the
// client must read further back rather than take old series for new ones.
func TestCountsLookback(t *testing.T) {
	f, srv := newFakeProm(t, "")
	c, _ := New(Config{URL: srv.URL})
	t0 := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	f.add(responses, []string{"pod", "p"}, ramp(t0, t0.Add(10*time.Minute), time.Minute, linear(t0, 1e6, 2)))
	from, to := t0.Add(100*time.Second), t0.Add(400*time.Second)
	got, err := c.Counts(context.Background(), checkout, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !near(got.Requests, 600) {
		t.Errorf("requests = %v, want 600", got.Requests)
	}
	if q := f.sent(); len(q) != 3 || q[0] == q[1] {
		t.Errorf("queries %q: want a second, longer read of response_total", q)
	}
}

// TestCountsWaits: Counts waits for a scrape past the window's end, and
// gives up after Wait with a note.
func TestCountsWaits(t *testing.T) {
	step := 200 * time.Millisecond
	t.Run("until scraped", func(t *testing.T) {
		f, srv := newFakeProm(t, "")
		c, _ := New(Config{URL: srv.URL})
		now := time.Now()
		from, to := now.Add(-20*time.Second), now.Add(100*time.Millisecond)
		// Samples up to well after to; the fake shows only those at or
		// before each query's time.
		f.add(responses, []string{"pod", "p"}, ramp(now.Add(-30*time.Second), now.Add(5*time.Second), step, linear(now, 1000, 100)))
		got, err := c.Counts(context.Background(), checkout, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().Before(to) || len(f.sent()) < 3 {
			t.Errorf("returned at %s (window end %s) after %d queries: it did not wait", time.Now(), to, len(f.sent()))
		}
		if math.Abs(got.Requests-100*to.Sub(from).Seconds()) > 1 || len(got.Notes) != 0 || !got.To.Equal(to) {
			t.Errorf("got %+v, want %v requests", got, 100*to.Sub(from).Seconds())
		}
	})
	t.Run("gives up", func(t *testing.T) {
		f, srv := newFakeProm(t, "")
		c, _ := New(Config{URL: srv.URL, Wait: 300 * time.Millisecond})
		now := time.Now()
		from, to := now.Add(-20*time.Second), now.Add(100*time.Millisecond)
		last := now.Add(-50 * time.Millisecond)
		f.add(responses, []string{"pod", "p"}, ramp(now.Add(-30*time.Second), last, step, linear(now, 1000, 100)))
		start := time.Now()
		got, err := c.Counts(context.Background(), checkout, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < 300*time.Millisecond || waited > 5*time.Second {
			t.Errorf("waited %s, want about Wait past the window's end", waited)
		}
		if len(got.Notes) != 1 || !got.To.Before(to) {
			t.Fatalf("got %+v", got)
		}
		contains(t, "note", got.Notes[0], "had not scraped 1 of the target's 1 series past the window's end", "their counts end at their last scrape")
	})
	t.Run("no wait", func(t *testing.T) {
		f, srv := newFakeProm(t, "")
		c, _ := New(Config{URL: srv.URL, Wait: -1})
		now := time.Now()
		f.add(responses, []string{"pod", "p"}, ramp(now.Add(-30*time.Second), now.Add(5*time.Second), step, linear(now, 0, 1)))
		if _, err := c.Counts(context.Background(), checkout, now.Add(-10*time.Second), now.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := len(f.sent()); n != 2 {
			t.Errorf("%d queries, want 2 (no polling)", n)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		f, srv := newFakeProm(t, "")
		c, _ := New(Config{URL: srv.URL, Wait: time.Minute})
		now := time.Now()
		f.add(responses, []string{"pod", "p"}, ramp(now.Add(-30*time.Second), now, step, linear(now, 0, 1)))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := c.Counts(ctx, checkout, now.Add(-10*time.Second), now.Add(100*time.Millisecond)); err != context.DeadlineExceeded {
			t.Errorf("err = %v, want the context's", err)
		}
	})
}

func TestCountsBadInput(t *testing.T) {
	_, srv := newFakeProm(t, "")
	c, _ := New(Config{URL: srv.URL})
	now := time.Now()
	if _, err := c.Counts(context.Background(), gate.Target{Name: "all"}, now.Add(-time.Minute), now); err == nil || !strings.Contains(err.Error(), "names no resource") {
		t.Errorf("target without a resource: err = %v", err)
	}
	if _, err := c.Counts(context.Background(), checkout, now, now); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty window: err = %v", err)
	}
}

// TestCountsClassification: with the policy's classification the
// proxies' responses fail as the tap sample's do, from their labels; a
// route-scoped ignore rule, which the labels cannot apply, gives a note.
func TestCountsClassification(t *testing.T) {
	t0 := time.Now().Add(-10 * time.Minute).Truncate(10 * time.Second)
	from, to := t0.Add(20*time.Second), t0.Add(80*time.Second)
	end := t0.Add(3 * time.Minute)
	every := 10 * time.Second
	series := []struct {
		labels []string
		rate   float64
	}{
		{[]string{"classification", "success", "status_code", "200"}, 10},
		{[]string{"classification", "success", "status_code", "429"}, 1},
		{[]string{"classification", "failure", "status_code", "503"}, 2},
		{[]string{"classification", "failure", "error", "h2(INTERNAL_ERROR)"}, 0.5},
		{[]string{"classification", "failure", "status_code", "200", "grpc_status", "14"}, 0.25},
	}
	route := &gate.Route{Method: "GET"}
	tests := []struct {
		name     string
		cls      *gate.Classification
		failures float64 // per second
		note     bool
	}{
		{"Linkerd's classification label", nil, 2.75, false},
		{"the default failOn from the labels", &gate.Classification{}, 2.75, false},
		{"429 counts as a failure", &gate.Classification{FailOn: []gate.Cond{{Kind: gate.CondStatusClass, Code: 5}, {Kind: gate.CondStatus, Code: 429}}}, 3, false},
		{"503 ignored everywhere", &gate.Classification{Ignore: []gate.IgnoreRule{{When: []gate.Cond{{Kind: gate.CondStatus, Code: 503}}}}}, 0.75, false},
		{"503 ignored on a route: counted, with a note", &gate.Classification{Ignore: []gate.IgnoreRule{{When: []gate.Cond{{Kind: gate.CondStatus, Code: 503}}, Route: route}}}, 2.75, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeProm(t, "")
			for _, s := range series {
				f.add(responses, append([]string{"pod", "checkout-1"}, s.labels...), ramp(t0, end, every, linear(t0, 0, s.rate)))
			}
			c, err := New(Config{URL: srv.URL, Classification: tt.cls})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Counts(context.Background(), checkout, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got.Requests, 13.75*60) || !near(got.Failures, tt.failures*60) {
				t.Errorf("requests %v failures %v, want %v and %v", got.Requests, got.Failures, 13.75*60, tt.failures*60)
			}
			if noted := strings.Contains(strings.Join(got.Notes, "\n"), "ignores failures on a route"); noted != tt.note {
				t.Errorf("notes %q, want the route note: %v", got.Notes, tt.note)
			}
		})
	}
}
