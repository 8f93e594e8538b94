package gate

import (
	"context"
	"time"
)

// Sink receives events from a source. target is the index of the policy
// target the event belongs to; a replay may deliver one event to several
// targets. Calls are serialized by the caller of Run.
type Sink interface {
	Observe(target int, ev *Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(target int, ev *Event)

// Observe calls f.
func (f SinkFunc) Observe(target int, ev *Event) { f(target, ev) }

// Source produces tap events for a policy's targets until ctx is done or the
// source is exhausted. Implementations: live tap through the aggregated API,
// replay of recordings, the simulator.
type Source interface {
	Run(ctx context.Context, sink Sink) error
}

// Noter is implemented by the sink the runner passes to sources: a live
// source reports reconnects, pod changes and similar facts for the report.
type Noter interface {
	Note(target int, format string, args ...any)
}

// CoverageSource is implemented by live sources that know for how long each
// target's tap stream was actually open between from and to; the runner
// turns that into the target's coverage of the window.
type CoverageSource interface {
	Source
	Tapped(target int, from, to time.Time) time.Duration
}
