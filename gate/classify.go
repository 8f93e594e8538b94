package gate

import (
	"fmt"
	"strconv"
	"strings"
)

// CondKind is a kind of response condition, used by classification.failOn,
// classification.ignore and count rules.
type CondKind uint8

const (
	CondStatusClass CondKind = iota + 1 // Code is the class digit: 5 means 5xx
	CondStatus                          // Code is an exact HTTP status
	CondGRPCError                       // any gRPC status other than OK
	CondGRPCCode                        // Code is a gRPC status code
	CondReset                           // the stream was reset
	CondNoResponse                      // the stream ended with no response
)

// Cond is one response condition such as "5xx", "429", "grpc-error",
// "UNAVAILABLE", "reset" or "no-response".
type Cond struct {
	Kind CondKind
	Code uint32
}

// grpcCodes are the canonical gRPC status names, indexed by code.
var grpcCodes = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// GRPCCodeName returns the canonical name of a gRPC status code.
func GRPCCodeName(c uint32) string {
	if int(c) < len(grpcCodes) {
		return grpcCodes[c]
	}
	return strconv.FormatUint(uint64(c), 10)
}

// ParseGRPCCode parses a gRPC status name ("UNAVAILABLE", "unavailable",
// "grpc:UNAVAILABLE") or number.
func ParseGRPCCode(s string) (uint32, bool) {
	s = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "GRPC:")
	if n, err := strconv.ParseUint(s, 10, 32); err == nil && n < uint64(len(grpcCodes)) {
		return uint32(n), true
	}
	s = strings.ReplaceAll(s, "-", "_")
	if s == "CANCELED" {
		s = "CANCELLED"
	}
	for i, name := range grpcCodes {
		if name == s {
			return uint32(i), true
		}
	}
	return 0, false
}

// ParseCond parses one condition. Accepted: "5xx" (any class 1xx..5xx),
// an HTTP status "429", "grpc-error", a gRPC code name or "grpc:N", "reset",
// "no-response".
func ParseCond(s string) (Cond, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "grpc-error", "grpc":
		return Cond{Kind: CondGRPCError}, nil
	case "reset":
		return Cond{Kind: CondReset}, nil
	case "no-response":
		return Cond{Kind: CondNoResponse}, nil
	}
	if len(t) == 3 && t[1:] == "xx" && t[0] >= '1' && t[0] <= '5' {
		return Cond{Kind: CondStatusClass, Code: uint32(t[0] - '0')}, nil
	}
	if n, err := strconv.ParseUint(t, 10, 32); err == nil {
		if n < 100 || n > 599 {
			return Cond{}, fmt.Errorf("%q is not an HTTP status (100-599); for a gRPC code write grpc:%s or its name", s, t)
		}
		return Cond{Kind: CondStatus, Code: uint32(n)}, nil
	}
	if strings.HasPrefix(t, "grpc:") || !strings.ContainsAny(t, "0123456789") {
		if c, ok := ParseGRPCCode(t); ok {
			if c == 0 {
				return Cond{}, fmt.Errorf("%q is gRPC OK, which is never a failure", s)
			}
			return Cond{Kind: CondGRPCCode, Code: c}, nil
		}
	}
	return Cond{}, fmt.Errorf("unknown response condition %q: use a status class (5xx, 4xx), an HTTP status (429), grpc-error, a gRPC code name (UNAVAILABLE), reset or no-response", s)
}

func (c Cond) String() string {
	switch c.Kind {
	case CondStatusClass:
		return fmt.Sprintf("%dxx", c.Code)
	case CondStatus:
		return strconv.FormatUint(uint64(c.Code), 10)
	case CondGRPCError:
		return "grpc-error"
	case CondGRPCCode:
		return GRPCCodeName(c.Code)
	case CondReset:
		return "reset"
	case CondNoResponse:
		return "no-response"
	}
	return "?"
}

// Matches reports whether a completed request meets the condition.
func (c Cond) Matches(r *Request) bool {
	switch c.Kind {
	case CondStatusClass:
		return r.Status != 0 && r.Status/100 == c.Code
	case CondStatus:
		return r.Status == c.Code
	case CondGRPCError:
		return r.GRPC > 0
	case CondGRPCCode:
		return r.GRPC >= 0 && uint32(r.GRPC) == c.Code
	case CondReset:
		return r.Reset
	case CondNoResponse:
		return r.NoResponse
	}
	return false
}

// DefaultFailOn is Linkerd's own classification: HTTP >= 500, a gRPC status
// other than OK, a reset stream. A stream that ended with no response at all
// is always a failure (see Classification.Failed).
var DefaultFailOn = []Cond{
	{Kind: CondStatusClass, Code: 5},
	{Kind: CondGRPCError},
	{Kind: CondReset},
}

// Classification decides whether a completed request failed.
type Classification struct {
	FailOn []Cond // nil means DefaultFailOn
	Ignore []IgnoreRule
}

// IgnoreRule makes requests that meet any of When on Route count as
// successes, e.g. 503 from a known maintenance path.
type IgnoreRule struct {
	When  []Cond
	Route *Route
	Line  int
}

// Failed reports whether the request counts as a failure.
func (c *Classification) Failed(r *Request) bool {
	failOn := c.FailOn
	if failOn == nil {
		failOn = DefaultFailOn
	}
	failed := r.NoResponse
	for _, f := range failOn {
		if f.Matches(r) {
			failed = true
			break
		}
	}
	if !failed {
		return false
	}
	for i := range c.Ignore {
		ig := &c.Ignore[i]
		if r.ignoreKnown {
			if i >= 64 || r.ignoreRoutes&(1<<uint(i)) == 0 {
				continue
			}
		} else if !ig.Route.Matches(r.Method, r.Authority, r.Path) {
			continue
		}
		for _, w := range ig.When {
			if w.Matches(r) {
				return false
			}
		}
	}
	return true
}
