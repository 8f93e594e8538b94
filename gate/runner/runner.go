// Package runner drives one gate: it runs a source into the engine on one
// clock (warmup, then the window), reports progress, and returns the
// verdict. It holds no Kubernetes, CLI or file knowledge.
package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// Config is one run.
type Config struct {
	Policy *gate.Policy
	Source gate.Source
	// Live runs on the wall clock: the run ends when warmup+window has
	// passed, and events are stamped with their arrival time. A replay runs
	// until the source is exhausted, on the recording's own timestamps.
	Live   bool
	Limits gate.Limits
	// Progress, when set, is called every ProgressEvery with the verdict so
	// far. It runs on the runner's goroutine; keep it quick.
	Progress      func(v *gate.Verdict, elapsed time.Duration)
	ProgressEvery time.Duration
	// Observe, when set, sees every event after the engine (e.g. a
	// recorder). Called with the engine lock held.
	Observe func(target int, ev *gate.Event)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErrInterrupted is returned (with a partial verdict) when ctx was cancelled
// before the window closed.
var ErrInterrupted = errors.New("interrupted before the window closed")

// Result is what a run produced.
type Result struct {
	Verdict *gate.Verdict
	Start   time.Time
	Engine  *gate.Engine
	// at and final are what Verdict was evaluated with, for Reevaluate.
	at    time.Duration
	final bool
}

// WindowStart and WindowEnd are the wall-clock bounds of the evaluated
// window of a live run (after warmup, up to the end or the early stop).
func (r *Result) WindowStart() time.Time {
	return r.Start.Add(r.warmup())
}

func (r *Result) warmup() time.Duration { return r.Engine.Policy().Warmup }

// WindowEnd is where the evaluated window ended.
func (r *Result) WindowEnd() time.Time { return r.WindowStart().Add(r.Verdict.Elapsed) }

// Reevaluate recomputes the verdict as the run ended, after the caller
// gave the engine more to judge with (the proxies' own counts of a
// cross-check).
func (r *Result) Reevaluate() *gate.Verdict {
	r.Verdict = r.Engine.Evaluate(r.at, r.final)
	return r.Verdict
}

// Run runs the gate. It returns the verdict even when err is
// ErrInterrupted; any other error means the source failed (infrastructure)
// or the input was bad, and the verdict then reflects what was seen.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	eng, err := gate.NewEngine(cfg.Policy, cfg.Limits)
	if err != nil {
		return nil, err
	}
	res := &Result{Start: now(), Engine: eng}
	if cfg.Live {
		eng.LiveClock()
	}
	p := cfg.Policy
	total := p.Warmup + p.Window

	var mu sync.Mutex
	var last time.Duration // latest event time seen (replay clock)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := &stopper{p: p, cancel: cancel}
	sink := &sink{mu: &mu, eng: eng, observe: func(i int, ev *gate.Event) {
		if st.stopped {
			// The source has not noticed the stop yet.
			return
		}
		if cfg.Live {
			ev.At = now().Sub(res.Start)
			ev.HasTime = true
		}
		if ev.HasTime && ev.At > last {
			last = ev.At
		}
		eng.Observe(i, ev)
		if cfg.Observe != nil {
			cfg.Observe(i, ev)
		}
		st.check(eng, ev)
	}}

	if cfg.Live {
		var c context.CancelFunc
		runCtx, c = context.WithDeadline(runCtx, res.Start.Add(total))
		defer c()
	}
	done := make(chan error, 1)
	go func() { done <- cfg.Source.Run(runCtx, sink) }()

	every := cfg.ProgressEvery
	if every <= 0 {
		every = time.Second
	}
	var tick <-chan time.Time
	if cfg.Progress != nil {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	var srcErr error
loop:
	for {
		select {
		case srcErr = <-done:
			break loop
		case <-tick:
			mu.Lock()
			el := elapsedOf(cfg.Live, now().Sub(res.Start), last)
			v := eng.Evaluate(el, false)
			mu.Unlock()
			cfg.Progress(v, el)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	interrupted := ctx.Err() != nil
	if st.stopped && !interrupted {
		if errors.Is(srcErr, context.Canceled) || errors.Is(srcErr, context.DeadlineExceeded) {
			srcErr = nil
		}
		if srcErr == nil {
			res.Verdict = st.finish(eng, cfg, res.Start)
			res.at, res.final = st.at, true
			return res, nil
		}
	}
	var el time.Duration
	if cfg.Live {
		el = now().Sub(res.Start)
		if el > total {
			el = total
		}
		if errors.Is(srcErr, context.DeadlineExceeded) || errors.Is(srcErr, context.Canceled) {
			srcErr = nil
		}
		if cs, ok := cfg.Source.(gate.CoverageSource); ok && p.Window > 0 {
			from := res.Start.Add(p.Warmup)
			for i := range p.Targets {
				c := float64(cs.Tapped(i, from, from.Add(p.Window))) / float64(p.Window)
				eng.SetCoverage(i, min(1, c))
			}
		} else if !interrupted && srcErr == nil && el < total {
			// Every stream ended before the window closed: what was tapped
			// is all there is, and coverage says so.
			for i := range p.Targets {
				eng.SetCoverage(i, coverage(el, p))
			}
		}
	} else {
		el = last
		if last > 0 || total > 0 {
			for i := range p.Targets {
				if last > 0 {
					eng.SetCoverage(i, coverage(last, p))
				}
			}
		}
	}
	final := !interrupted && srcErr == nil
	res.Verdict = eng.Evaluate(el, final)
	res.at, res.final = el, final
	if interrupted {
		return res, ErrInterrupted
	}
	return res, srcErr
}

func elapsedOf(live bool, wall, last time.Duration) time.Duration {
	if live {
		return wall
	}
	return last
}

// coverage is the share of the evaluated window covered by time t.
func coverage(t time.Duration, p *gate.Policy) float64 {
	if p.Window <= 0 {
		return 1
	}
	c := float64(t-p.Warmup) / float64(p.Window)
	if c < 0 {
		return 0
	}
	if c > 1 {
		return 1
	}
	return c
}

// stopper ends a run early once its verdict is decided: on the first FAIL
// that no later traffic can undo (unless the policy keeps tapping), and,
// with stopOnPass, once every rule passes.
type stopper struct {
	p       *gate.Policy
	cancel  context.CancelFunc
	stopped bool
	at      time.Duration // time since the tap began
	reason  string
	// nextPassCheck is the event time of the next stopOnPass evaluation.
	nextPassCheck time.Duration
}

// passCheckEvery is how often, in event time, stopOnPass evaluates the
// rules: a full evaluation is too costly for every event.
const passCheckEvery = 100 * time.Millisecond

func (s *stopper) check(eng *gate.Engine, ev *gate.Event) {
	if !ev.HasTime || ev.At < s.p.Warmup {
		return
	}
	if d := eng.Decided(); d != nil && !s.p.KeepTapping {
		s.stop(ev.At, fmt.Sprintf("%s/%s failed %s into the window and no later traffic can undo it", d.Target, d.Rule, roundDur(ev.At-s.p.Warmup)))
		return
	}
	if !s.p.StopOnPass || ev.At < s.nextPassCheck {
		return
	}
	s.nextPassCheck = ev.At + passCheckEvery
	if v := eng.Evaluate(ev.At, false); allPassed(v) {
		s.stop(ev.At, fmt.Sprintf("every rule passed %s into the window (stopOnPass)", roundDur(ev.At-s.p.Warmup)))
	}
}

func (s *stopper) stop(at time.Duration, reason string) {
	s.stopped, s.at, s.reason = true, at, reason
	s.cancel()
}

// finish evaluates a stopped run: on the time tapped, with coverage over
// that time.
func (s *stopper) finish(eng *gate.Engine, cfg Config, start time.Time) *gate.Verdict {
	p := s.p
	if cs, ok := cfg.Source.(gate.CoverageSource); ok && cfg.Live {
		from := start.Add(p.Warmup)
		if tapped := s.at - p.Warmup; tapped > 0 {
			for i := range p.Targets {
				c := float64(cs.Tapped(i, from, from.Add(tapped))) / float64(tapped)
				eng.SetCoverage(i, min(1, c))
			}
		}
	} else {
		for i := range p.Targets {
			eng.SetCoverage(i, 1)
		}
	}
	eng.Stop(s.reason)
	return eng.Evaluate(s.at, true)
}

// allPassed reports whether every counted rule passed.
func allPassed(v *gate.Verdict) bool {
	return v.Outcome == gate.Pass
}

func roundDur(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// sink serializes sources' calls into the engine.
type sink struct {
	mu      *sync.Mutex
	eng     *gate.Engine
	observe func(int, *gate.Event)
}

func (s *sink) Observe(i int, ev *gate.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observe(i, ev)
}

func (s *sink) Note(i int, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eng.Note(i, format, args...)
}
