package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tapgate/tapgate/gate/sim"
)

// tapTimes are wall-clock moments of the simulator's tap streams, seen from
// the server: when a tap request arrived, when its first frame was written
// and when the stream ended (the client closed it, or it was cut).
type tapTimes struct {
	Arrived    time.Time
	FirstFrame time.Time
	Ended      time.Time
}

// timedSim serves a simulator and records tapTimes for every tap request.
type timedSim struct {
	Sim  *sim.Simulator
	Addr string

	mu   sync.Mutex
	taps []*tapTimes
}

func startSim(ctx context.Context, opts sim.Options) (*timedSim, error) {
	s, err := newBenchSim(opts)
	if err != nil {
		return nil, err
	}
	ts := &timedSim{Sim: s}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ts.Addr = ln.Addr().String()
	h := s.Handler()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/tap") {
			h.ServeHTTP(w, r)
			return
		}
		t := &tapTimes{Arrived: time.Now()}
		ts.mu.Lock()
		ts.taps = append(ts.taps, t)
		ts.mu.Unlock()
		h.ServeHTTP(&timedWriter{ResponseWriter: w, t: t, mu: &ts.mu}, r)
		ts.mu.Lock()
		t.Ended = time.Now()
		ts.mu.Unlock()
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() { _ = s.Run(ctx) }()
	return ts, nil
}

// Taps returns a copy of the tap streams' times so far.
func (ts *timedSim) Taps() []tapTimes {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]tapTimes, len(ts.taps))
	for i, t := range ts.taps {
		out[i] = *t
	}
	return out
}

// Events is the number of events the simulator wrote to tap streams.
func (ts *timedSim) Events() uint64 {
	var n uint64
	for _, t := range ts.Sim.TapRequests() {
		n += t.Events
	}
	return n
}

type timedWriter struct {
	http.ResponseWriter
	t     *tapTimes
	mu    *sync.Mutex
	wrote bool
}

func (w *timedWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.wrote = true
		w.mu.Lock()
		w.t.FirstFrame = time.Now()
		w.mu.Unlock()
	}
	return w.ResponseWriter.Write(b)
}

func (w *timedWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
