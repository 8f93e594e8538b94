// Package gate is tapgate's pure core: tap events go in, window statistics
// are kept, rules are evaluated and a verdict comes out. It imports nothing
// that talks to Kubernetes, gRPC, GitHub, a CLI or the file system; sources
// and reporters are adapters around it.
package gate

import (
	"net/netip"
	"time"
)

// EventKind says which of the three per-request tap events this is.
type EventKind uint8

const (
	RequestInit EventKind = iota + 1
	ResponseInit
	ResponseEnd
)

func (k EventKind) String() string {
	switch k {
	case RequestInit:
		return "requestInit"
	case ResponseInit:
		return "responseInit"
	case ResponseEnd:
		return "responseEnd"
	}
	return "unknown"
}

// Direction is the proxy direction of a tap event.
type Direction uint8

const (
	DirectionUnknown Direction = iota
	Inbound
	Outbound
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "INBOUND"
	case Outbound:
		return "OUTBOUND"
	}
	return "UNKNOWN"
}

// StreamID identifies a stream on one proxy; it is not unique across pods.
type StreamID struct {
	Base   uint32
	Stream uint64
}

// Endpoint is a TCP address with the metadata labels tap attaches to it
// (pod, deployment, namespace, serviceaccount, tls, ...).
type Endpoint struct {
	Addr   netip.AddrPort
	Labels map[string]string
}

// Header is one request/response header or trailer. Value holds valueStr or
// the raw bytes of valueBin.
type Header struct {
	Name  string
	Value string
}

// EOSKind says how a stream ended, as reported in ResponseEnd.eos.
type EOSKind uint8

const (
	EOSNone EOSKind = iota
	EOSGRPCStatus
	EOSReset
)

// EOS is the end-of-stream information of a ResponseEnd event.
type EOS struct {
	Kind EOSKind
	Code uint32
}

// Event is one tap event, decoded from any source (live tap, proxy tap,
// replay, simulator). Fields that do not apply to Kind are zero.
type Event struct {
	Kind        EventKind
	Direction   Direction
	ID          StreamID
	Source      Endpoint
	Destination Endpoint
	RouteMeta   map[string]string

	// RequestInit
	Method    string
	Scheme    string
	Authority string
	Path      string

	// ResponseInit
	HTTPStatus uint32

	// ResponseInit and ResponseEnd
	SinceRequestInit time.Duration

	// ResponseEnd
	SinceResponseInit time.Duration
	ResponseBytes     uint64
	EOS               EOS

	Headers  []Header // request or response headers
	Trailers []Header // ResponseEnd trailers

	// At is when the event arrived, as an offset from the start of the tap.
	// Tap events carry no timestamp: live sources stamp arrival time, and a
	// replay knows it only when the recording has it (HasTime).
	At      time.Duration
	HasTime bool
}

// Proxy returns the endpoint of the proxy that emitted the event: inbound
// events come from the destination's proxy, outbound from the source's.
func (e *Event) Proxy() netip.AddrPort {
	if e.Direction == Outbound {
		return e.Source.Addr
	}
	return e.Destination.Addr
}

// Pod returns the name of the pod whose proxy emitted the event, if known.
func (e *Event) Pod() string {
	if e.Direction == Outbound {
		return e.Source.Labels["pod"]
	}
	return e.Destination.Labels["pod"]
}

// streamKey correlates the events of one request: the stream id together with
// the proxy that emitted them. With an unknown direction both endpoints are
// part of the key, which stays correct because every event of one request
// carries the same pair.
type streamKey struct {
	dir   Direction
	proxy netip.AddrPort
	peer  netip.AddrPort
	id    StreamID
}

func keyOf(e *Event) streamKey {
	k := streamKey{dir: e.Direction, proxy: e.Proxy(), id: e.ID}
	if e.Direction == DirectionUnknown {
		k.peer = e.Source.Addr
	}
	return k
}
