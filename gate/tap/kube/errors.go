package kube

import (
	"fmt"
	"strings"
)

// ErrorKind classifies a tap failure. Every kind is permanent: retrying
// cannot fix it, and the caller exits 4 (infrastructure error).
type ErrorKind uint8

const (
	// NotFound: the target (or its --to destination) does not exist.
	NotFound ErrorKind = iota + 1
	// NoPods: the target exists but has no meshed, tappable, running pod.
	NoPods
	// Forbidden: RBAC denied the tap (or the lookup of the target).
	Forbidden
	// Unauthorized: the apiserver rejected the credentials (HTTP 401).
	Unauthorized
	// Unavailable: the tap.linkerd.io APIService is missing or unavailable.
	Unavailable
	// TapRefused: the tap server answered with a linkerd-error (bad request,
	// no pods to tap, ...).
	TapRefused
	// TapServer: the tap server (or something else) answered non-200 with
	// its own error body.
	TapServer
	// BadTarget: the target cannot be expressed as a tap request.
	BadTarget
	// Protocol: the response is not a tap stream.
	Protocol
	// Unreachable: the tap stream never opened before the window ended
	// (connection refused, apiserver 5xx, ...).
	Unreachable
)

func (k ErrorKind) String() string {
	switch k {
	case NotFound:
		return "not found"
	case NoPods:
		return "no tappable pods"
	case Forbidden:
		return "forbidden"
	case Unauthorized:
		return "unauthorized"
	case Unavailable:
		return "tap API unavailable"
	case TapRefused:
		return "tap refused"
	case TapServer:
		return "tap server error"
	case BadTarget:
		return "bad target"
	case Protocol:
		return "protocol error"
	case Unreachable:
		return "unreachable"
	}
	return "unknown"
}

// Error is a permanent tap failure: what happened (Msg) and what to do about
// it (Hint, possibly several lines).
type Error struct {
	Kind   ErrorKind
	Target string // e.g. "deploy/web" or the policy target's name
	Msg    string
	Hint   string
	Status int // HTTP status, 0 when no response
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Target != "" {
		fmt.Fprintf(&b, "tap %s: ", e.Target)
	}
	b.WriteString(e.Msg)
	if e.Status != 0 && e.Status != 200 && !strings.Contains(e.Msg, "HTTP ") {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Hint != "" {
		b.WriteString("\n")
		b.WriteString(e.Hint)
	}
	return b.String()
}
