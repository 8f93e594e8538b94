package sim

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// Options tune a Simulator.
type Options struct {
	// Speed is how many simulated seconds pass per wall-clock second; 0
	// means 1 (real time). Event fields (latencies) keep simulated values.
	Speed float64
	// FastForward runs without sleeping: simulated time advances as fast as
	// events are generated and tap streams written, and no tapped event is
	// ever dropped (slow tap clients slow the simulation instead). Give it
	// a Duration (or cancel Run's context): it never idles.
	FastForward bool
	// StartAfterTaps makes Run wait for this many open tap streams before
	// the clock starts, so a test sees traffic from simulated time 0.
	StartAfterTaps int
	// Duration overrides the scenario's duration when > 0.
	Duration time.Duration
	// Record keeps the first Record inbound requests of every pod in
	// Truth().Records, for sampling checks. 0 keeps none.
	Record int
	// LatencyCap bounds the exact latencies kept per deployment, pod and
	// caller edge in Truth; 0 means 100000.
	LatencyCap int
	// StreamBuffer is each tap stream's event buffer; 0 means 8192. In real
	// time a full buffer drops events, as a proxy does for a slow tap client.
	StreamBuffer int
}

// Simulator generates a scenario's traffic and serves it through Linkerd's
// tap API. Create it with New, start the clock with Run and expose it with
// Handler or Serve.
type Simulator struct {
	sc   *Scenario
	m    *model
	opts Options
	dur  time.Duration

	mu      sync.Mutex
	subs    map[*pod][]*subscription
	open    int
	openCh  chan struct{} // signalled when a stream opens
	tapReqs []TapRequestInfo
	truth   truthState
	prom    metricsState // the proxies' own metrics; guarded by mu, like truth
	metrics http.Handler
	faults  faults
	nextSub int
	started bool // the clock runs; guarded by mu

	cur       atomic.Int64 // simulated time of the last processed item (ns)
	wallStart atomic.Int64 // unix ns when the clock started; 0 before Run
	ran       atomic.Bool
	ended     chan struct{}
	endOnce   sync.Once
}

// New compiles a scenario. The scenario must come from Load, Parse or
// DemoScenario (it is validated there).
func New(s *Scenario, opts Options) (*Simulator, error) {
	if s == nil {
		return nil, errors.New("sim: nil scenario")
	}
	m, err := compile(s)
	if err != nil {
		return nil, err
	}
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	if opts.LatencyCap <= 0 {
		opts.LatencyCap = 100000
	}
	if opts.StreamBuffer <= 0 {
		opts.StreamBuffer = 8192
	}
	sim := &Simulator{
		sc: s, m: m, opts: opts, dur: m.dur,
		subs:   map[*pod][]*subscription{},
		openCh: make(chan struct{}, 1),
		ended:  make(chan struct{}),
	}
	if opts.Duration > 0 {
		sim.dur = opts.Duration
	}
	sim.truth.init()
	sim.prom.reset(m)
	sim.metrics = sim.metricsHandler()
	return sim, nil
}

// Scenario returns the scenario being simulated.
func (s *Simulator) Scenario() *Scenario { return s.sc }

// Done is closed when the simulation has ended (duration reached or Run
// returned); open tap streams end then.
func (s *Simulator) Done() <-chan struct{} { return s.ended }

func (s *Simulator) end() { s.endOnce.Do(func() { close(s.ended) }) }

// now is the current simulated time, used to start a tap's rate windows.
func (s *Simulator) now() time.Duration {
	ws := s.wallStart.Load()
	if ws == 0 {
		return 0
	}
	if s.opts.FastForward {
		return time.Duration(s.cur.Load())
	}
	return time.Duration(float64(time.Now().UnixNano()-ws) * s.opts.Speed)
}

// Run drives the simulation until ctx is done or the duration is reached,
// then ends every tap stream. It may be called once.
func (s *Simulator) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("sim: Run called twice")
	}
	defer s.end()
	for n := s.opts.StartAfterTaps; n > 0; {
		s.mu.Lock()
		open := s.open
		s.mu.Unlock()
		if open >= n {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.openCh:
		}
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	e := newEngine(s.m, hooks{start: s.onStart, init: s.onInit, emit: s.onEmit, done: s.onDone})
	start := time.Now()
	s.wallStart.Store(start.UnixNano())
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	wait := func(at time.Duration) bool {
		if s.opts.FastForward {
			return ctx.Err() == nil
		}
		d := time.Until(start.Add(time.Duration(float64(at) / s.opts.Speed)))
		if d <= 0 {
			return ctx.Err() == nil
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		}
	}
	for {
		at, ok := e.peek()
		if !ok || (s.dur > 0 && at >= s.dur) {
			break
		}
		if !wait(at) {
			return nil
		}
		e.step()
		s.cur.Store(int64(at))
	}
	// Out of traffic: keep streams open until the duration (or forever).
	if s.opts.FastForward {
		return nil
	}
	if s.dur > 0 {
		wait(s.dur)
		return nil
	}
	<-ctx.Done()
	return nil
}

// Generate produces the events of the first n of the scenario's tap
// events (every meshed proxy, both directions) as fast as possible, without
// serving or sleeping, and calls fn for each in order. The event is reused
// between calls and its label maps are shared: copy what you keep. At holds
// the simulated time. It uses a fresh copy of the model (the scenario's
// own pod names: AdoptPods does not apply), so it does not disturb Run,
// and returns the number of events produced (fewer than n when the
// scenario's duration ends first).
func (s *Simulator) Generate(n int, fn func(*gate.Event)) (int, error) {
	m, err := compile(s.sc)
	if err != nil {
		return 0, err
	}
	var ev gate.Event
	count := 0
	e := newEngine(m, hooks{emit: func(v *view, kind gate.EventKind, at time.Duration) {
		if count >= n {
			return
		}
		v.fill(kind, true, &ev)
		ev.At, ev.HasTime = at, true
		fn(&ev)
		count++
	}})
	for count < n {
		at, ok := e.peek()
		if !ok || (s.dur > 0 && at >= s.dur) {
			break
		}
		e.step()
	}
	return count, nil
}

func (s *Simulator) onStart(r *request) {
	s.mu.Lock()
	s.truth.start(r, s.opts.Record)
	s.prom.start(r)
	s.mu.Unlock()
}

func (s *Simulator) onDone(r *request) {
	s.mu.Lock()
	s.truth.done(r, s.opts.LatencyCap)
	s.prom.done(r)
	s.mu.Unlock()
}

// onInit decides which tap streams see the request: those tapping this
// proxy whose match accepts it and whose rate window has room.
func (s *Simulator) onInit(v *view) {
	s.mu.Lock()
	defer s.mu.Unlock()
	subs := s.subs[v.proxy]
	if len(subs) == 0 {
		return
	}
	now := v.initAt()
	for _, sub := range subs {
		if sub.closed {
			continue
		}
		if !sub.match.matches(v) {
			continue
		}
		if !sub.pods[v.proxy].admit(now, v.endAt()) {
			continue
		}
		v.taps = append(v.taps, sub)
	}
}

func (s *Simulator) onEmit(v *view, kind gate.EventKind, at time.Duration) {
	if len(v.taps) == 0 {
		return
	}
	var full, bare []byte
	for _, sub := range v.taps {
		var frame []byte
		if sub.headers {
			if full == nil {
				full = v.appendFrame(nil, kind, true)
			}
			frame = full
		} else {
			if bare == nil {
				bare = v.appendFrame(nil, kind, false)
			}
			frame = bare
		}
		sub.send(frame, s.opts.FastForward)
	}
}

// limiter is one pod's share of a tap's maxRps, as Linkerd's tap server
// enforces it: it asks the proxy for `limit` requests; the proxy taps the
// first `limit` requests that start, then ends the stream once they have
// completed; the server opens the next one no sooner than a second after
// the previous one opened. Requests that start in between are not tapped.
type limiter struct {
	limit    uint32
	winStart time.Duration
	count    uint32
	lastEnd  time.Duration
}

func (l *limiter) admit(now, end time.Duration) bool {
	if l.count >= l.limit {
		next := l.winStart + time.Second
		if l.lastEnd > next {
			next = l.lastEnd
		}
		if now < next {
			return false
		}
		l.winStart, l.count, l.lastEnd = next, 0, 0
	}
	l.count++
	if end > l.lastEnd {
		l.lastEnd = end
	}
	return true
}

// perPodLimit is Linkerd's split of maxRps over the tapped pods:
// maxRps/pods as a float32, at least 1, truncated to an integer limit.
func perPodLimit(maxRps float32, pods int) uint32 {
	if maxRps == 0 {
		maxRps = 100
	}
	per := maxRps / float32(pods)
	if per < 1 || per != per { // NaN: treat like a tiny rate
		per = 1
	}
	if per >= math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(per * float32(time.Second.Seconds()))
}

type subscription struct {
	id      int
	info    int // index in tapReqs
	pods    map[*pod]*limiter
	match   *matcher
	headers bool
	ch      chan []byte
	done    chan struct{} // closed when the HTTP handler leaves
	closed  bool          // guarded by Simulator.mu
	sent    atomic.Uint64
	dropped atomic.Uint64
}

func (sub *subscription) send(frame []byte, block bool) {
	if block {
		select {
		case sub.ch <- frame:
		case <-sub.done:
		}
		return
	}
	select {
	case sub.ch <- frame:
	default:
		sub.dropped.Add(1)
	}
}

func (s *Simulator) subscribe(pods []*pod, limit uint32, m *matcher, headers bool, info int) *subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextSub++
	sub := &subscription{
		id: s.nextSub, info: info, pods: map[*pod]*limiter{}, match: m, headers: headers,
		ch: make(chan []byte, s.opts.StreamBuffer), done: make(chan struct{}),
	}
	start := s.now()
	for _, p := range pods {
		sub.pods[p] = &limiter{limit: limit, winStart: start}
		s.subs[p] = append(s.subs[p], sub)
	}
	s.tapReqs[info].Start = start
	s.open++
	select {
	case s.openCh <- struct{}{}:
	default:
	}
	return sub
}

func (s *Simulator) unsubscribe(sub *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub.closed {
		return
	}
	sub.closed = true
	close(sub.done)
	s.open--
	for p := range sub.pods {
		list := s.subs[p]
		for i, x := range list {
			if x == sub {
				s.subs[p] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
	}
	s.tapReqs[sub.info].Events = sub.sent.Load()
	s.tapReqs[sub.info].Dropped = sub.dropped.Load()
}
