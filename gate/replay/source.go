package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tapgate/tapgate/gate"
)

// Options configure a replay source.
type Options struct {
	// Stdin is read when the path is "-"; nil means os.Stdin. A read
	// blocked on it is not interrupted by ctx (a file's is): Run returns
	// once the read does.
	Stdin io.Reader
}

// Source replays a recording into the gate. It implements gate.Source.
type Source struct {
	path      string
	selectors []*Selector
	opts      Options
}

var _ gate.Source = (*Source)(nil)

// NewSource prepares the replay of the recording at path ("-" for stdin)
// for the given targets. It checks that the file exists and that every
// target's selector is valid, so that usage errors surface before Run.
func NewSource(path string, targets []gate.Target, opts Options) (*Source, error) {
	s := &Source{path: path, opts: opts}
	for _, t := range targets {
		sel, err := NewSelector(t)
		if err != nil {
			return nil, err
		}
		s.selectors = append(s.selectors, sel)
	}
	if path != "-" {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("recording %s: %w", path, err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("recording %s is a directory; give the path of a recorded file", path)
		}
	}
	return s, nil
}

// Run reads the recording and calls sink.Observe(i, ev) for every target i
// whose selector accepts the event, in recording order. The *Event passed to
// Observe, and its Headers and Trailers, are reused after Observe returns;
// its strings and label maps may be kept (label maps must not be modified).
// Run returns nil at the end of the recording, ctx.Err() when ctx is done
// first and an *Error for a malformed recording.
func (s *Source) Run(ctx context.Context, sink gate.Sink) error {
	var in io.Reader
	name := s.path
	if s.path == "-" {
		in = s.opts.Stdin
		if in == nil {
			in = os.Stdin
		}
		name = "<stdin>"
	} else {
		f, err := os.Open(s.path)
		if err != nil {
			return fmt.Errorf("recording %s: %w", s.path, err)
		}
		defer f.Close()
		// Closing the file unblocks a read in progress when ctx ends.
		stop := context.AfterFunc(ctx, func() { f.Close() })
		defer stop()
		in = f
	}
	rd, err := NewReader(in, name)
	if err != nil {
		return err
	}
	defer rd.Close()
	var ev gate.Event
	matched := make([]int, len(s.selectors))
	total := 0
	done := ctx.Done()
	for {
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		err := rd.Next(&ev)
		if errors.Is(err, io.EOF) {
			s.noteUnmatched(sink, name, total, matched)
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		total++
		for i, sel := range s.selectors {
			if sel.Matches(&ev) {
				matched[i]++
				sink.Observe(i, &ev)
			}
		}
	}
}

// noteUnmatched tells the report why a target saw no traffic at all: with a
// replay that is nearly always a name, namespace or direction that does not
// match the recording's metadata, not an idle workload.
func (s *Source) noteUnmatched(sink gate.Sink, name string, total int, matched []int) {
	n, ok := sink.(gate.Noter)
	if !ok {
		return
	}
	for i, sel := range s.selectors {
		if matched[i] > 0 || total == 0 {
			continue
		}
		t := sel.Target()
		n.Note(i, "none of the %d events in %s matched this target (resource %q, namespace %q, direction %s, to %q, labelSelector %q); check them against the recording's metadata labels",
			total, name, t.Resource.String(), t.Resource.Namespace, directionName(t.Direction), t.To.String(), t.LabelSelector)
	}
}

func directionName(d gate.Direction) string {
	switch d {
	case gate.Inbound:
		return "inbound"
	case gate.Outbound:
		return "outbound"
	}
	return "any"
}
