package runner

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

func testPolicy(window time.Duration) *gate.Policy {
	return &gate.Policy{
		Name:        "t",
		Window:      window,
		MinRequests: 10,
		Targets:     []gate.Target{{Name: "web"}},
		Rules:       []gate.Rule{{Name: "sr", Kind: gate.SuccessRate, Min: 0.9}},
	}
}

// requests emits n successful requests on one proxy, with At set when at
// is not nil.
func requests(sink gate.Sink, n int, at func(i int) time.Duration) {
	proxy := netip.MustParseAddrPort("10.0.0.1:8080")
	for i := 0; i < n; i++ {
		id := gate.StreamID{Base: 1, Stream: uint64(i + 1)}
		for _, k := range []gate.EventKind{gate.RequestInit, gate.ResponseInit, gate.ResponseEnd} {
			ev := gate.Event{Kind: k, ID: id, Direction: gate.Inbound, Destination: gate.Endpoint{Addr: proxy}, HTTPStatus: 200}
			if at != nil {
				ev.At, ev.HasTime = at(i), true
			}
			sink.Observe(0, &ev)
		}
	}
}

type funcSource func(ctx context.Context, sink gate.Sink) error

func (f funcSource) Run(ctx context.Context, sink gate.Sink) error { return f(ctx, sink) }

// coverageSource is a live source that claims to have been tapped for a
// fixed share of any interval.
type coverageSource struct {
	funcSource
	share float64
}

func (c coverageSource) Tapped(_ int, from, to time.Time) time.Duration {
	return time.Duration(c.share * float64(to.Sub(from)))
}

func TestRun(t *testing.T) {
	liveTraffic := funcSource(func(ctx context.Context, sink gate.Sink) error {
		requests(sink, 50, nil)
		<-ctx.Done()
		return ctx.Err()
	})
	cases := []struct {
		name    string
		cfg     Config
		cancel  bool
		want    gate.Outcome
		wantErr error
		cover   float64
	}{
		{"replay with timestamps", Config{Source: funcSource(func(_ context.Context, sink gate.Sink) error {
			requests(sink, 50, func(i int) time.Duration { return time.Duration(i) * 4 * time.Millisecond })
			return nil
		})}, false, gate.Pass, nil, 0.98},
		{"replay shorter than the window is inconclusive", Config{Source: funcSource(func(_ context.Context, sink gate.Sink) error {
			requests(sink, 50, func(i int) time.Duration { return time.Duration(i) * 2 * time.Millisecond })
			return nil
		})}, false, gate.Inconclusive, nil, 0.49},
		{"replay of nothing is inconclusive", Config{Source: funcSource(func(context.Context, gate.Sink) error { return nil })}, false, gate.Inconclusive, nil, -1},
		{"live window ends on the clock", Config{Live: true, Source: liveTraffic}, false, gate.Pass, nil, 1},
		{"live coverage below the floor is never a pass", Config{Live: true, Source: coverageSource{liveTraffic, 0.5}}, false, gate.Inconclusive, nil, 0.5},
		{"interrupted", Config{Live: true, Source: liveTraffic}, true, gate.Pass, ErrInterrupted, -1},
		{"source failure is returned with what was seen", Config{Live: true, Source: funcSource(func(_ context.Context, sink gate.Sink) error {
			requests(sink, 5, nil)
			return errors.New("tap refused")
		})}, false, gate.Inconclusive, errors.New("tap refused"), -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := tc.cfg
			cfg.Policy = testPolicy(200 * time.Millisecond)
			if tc.cancel {
				cfg.Policy.Window = time.Hour
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			res, err := Run(ctx, cfg)
			if (err == nil) != (tc.wantErr == nil) || (err != nil && err.Error() != tc.wantErr.Error()) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if res == nil || res.Verdict == nil {
				t.Fatal("no verdict")
			}
			if res.Verdict.Outcome != tc.want {
				t.Errorf("outcome %v, want %v: %+v", res.Verdict.Outcome, tc.want, res.Verdict.Rules)
			}
			if tc.cover >= 0 {
				if got := res.Verdict.Targets[0].Coverage; got < tc.cover-0.02 || got > tc.cover+0.02 {
					t.Errorf("coverage %v, want about %v", got, tc.cover)
				}
			}
			if tc.cancel && res.Verdict.Final {
				t.Error("an interrupted verdict must not be final")
			}
		})
	}
}

// TestProgress checks the runner reports the verdict so far while the
// window runs, so live progress and early decisions can build on it.
func TestProgress(t *testing.T) {
	calls := 0
	cfg := Config{
		Policy: testPolicy(300 * time.Millisecond), Live: true, ProgressEvery: 20 * time.Millisecond,
		Source: funcSource(func(ctx context.Context, sink gate.Sink) error {
			requests(sink, 20, nil)
			<-ctx.Done()
			return nil
		}),
		Progress: func(v *gate.Verdict, _ time.Duration) {
			calls++
			if v.Final {
				t.Error("progress verdict marked final")
			}
		},
	}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Error("progress never called")
	}
}

// timedRequests emits n requests 10ms apart, failing when fail(i), and
// stops when ctx is done, as a replay does. It reports how many it sent.
func timedRequests(ctx context.Context, sink gate.Sink, n int, fail func(int) bool, sent *int) error {
	proxy := netip.MustParseAddrPort("10.0.0.1:8080")
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		status := uint32(200)
		if fail(i) {
			status = 500
		}
		id := gate.StreamID{Base: 1, Stream: uint64(i + 1)}
		for _, k := range []gate.EventKind{gate.RequestInit, gate.ResponseInit, gate.ResponseEnd} {
			ev := gate.Event{Kind: k, ID: id, Direction: gate.Inbound, Destination: gate.Endpoint{Addr: proxy}, HTTPStatus: status,
				At: time.Duration(i) * 10 * time.Millisecond, HasTime: true}
			sink.Observe(0, &ev)
		}
		*sent = i + 1
	}
	return nil
}

// TestStopEarly: a decided FAIL stops the run (unless the policy keeps
// tapping), and with stopOnPass so does a pass; the verdict says so and
// judges the time actually tapped.
func TestStopEarly(t *testing.T) {
	always := func(int) bool { return true }
	never := func(int) bool { return false }
	cases := []struct {
		name      string
		fail      func(int) bool
		keep, onP bool
		want      gate.Outcome
		stopped   bool
		reasonIn  string
		maxSent   int
	}{
		{"a decided FAIL stops the run", always, false, false, gate.Fail, true, "no later traffic can undo it", 10},
		{"unless the policy keeps tapping", always, true, false, gate.Fail, false, "", 500},
		{"a pass waits for the window", never, false, false, gate.Pass, false, "", 500},
		{"stopOnPass stops on a pass", never, false, true, gate.Pass, true, "stopOnPass", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy(5 * time.Second)
			p.KeepTapping, p.StopOnPass = tc.keep, tc.onP
			sent := 0
			res, err := Run(context.Background(), Config{Policy: p, Source: funcSource(func(ctx context.Context, sink gate.Sink) error {
				return timedRequests(ctx, sink, 500, tc.fail, &sent)
			})})
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verdict
			if v.Outcome != tc.want || v.StoppedEarly != tc.stopped || !v.Final {
				t.Fatalf("outcome %s stopped %v final %v, want %s stopped %v (%s)", v.Outcome, v.StoppedEarly, v.Final, tc.want, tc.stopped, v.StopReason)
			}
			if !strings.Contains(v.StopReason, tc.reasonIn) {
				t.Errorf("stop reason %q does not say %q", v.StopReason, tc.reasonIn)
			}
			if sent > tc.maxSent {
				t.Errorf("the source sent %d requests, want the run to stop it by %d", sent, tc.maxSent)
			}
			if tc.stopped && (v.Elapsed >= p.Window || v.Elapsed <= 0) {
				t.Errorf("elapsed %s of a %s window", v.Elapsed, p.Window)
			}
			if tc.stopped && v.Targets[0].Coverage != 1 {
				t.Errorf("coverage %v: a stopped run covers what it tapped", v.Targets[0].Coverage)
			}
		})
	}
}
