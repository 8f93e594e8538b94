package gate

import "context"

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
