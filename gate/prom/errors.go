package prom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// ErrorKind classifies why Prometheus could not be read. None is retried
// here: the caller goes on without the cross-check, or, when the policy
// requires it, stops with an infrastructure error.
type ErrorKind uint8

const (
	// NotFound: nothing serves Prometheus' API there (HTTP 404): through
	// the apiserver, the service does not exist (linkerd-viz is not
	// installed, or installed elsewhere); at a URL, a wrong base path.
	NotFound ErrorKind = iota + 1
	// Forbidden: RBAC (or whatever fronts Prometheus) denied the read
	// (HTTP 403).
	Forbidden
	// Unauthorized: the credentials were rejected (HTTP 401).
	Unauthorized
	// Unavailable: Prometheus exists but does not serve (HTTP 502, 503,
	// 504: no ready pod behind the service, still starting).
	Unavailable
	// QueryFailed: Prometheus answered with an error of its own (a bad
	// query, a storage error, a timeout, a limit); Msg is its message.
	QueryFailed
	// Unreachable: no HTTP answer at all (connection refused, DNS, TLS,
	// timeout).
	Unreachable
	// BadResponse: an answer that is not Prometheus' HTTP API.
	BadResponse
)

func (k ErrorKind) String() string {
	switch k {
	case NotFound:
		return "not found"
	case Forbidden:
		return "forbidden"
	case Unauthorized:
		return "unauthorized"
	case Unavailable:
		return "unavailable"
	case QueryFailed:
		return "query failed"
	case Unreachable:
		return "unreachable"
	case BadResponse:
		return "bad response"
	}
	return "unknown"
}

// Error is a failure to read Prometheus: what happened (Msg) and what to do
// about it (Hint, possibly several lines).
type Error struct {
	Kind   ErrorKind
	Msg    string
	Hint   string
	Status int    // HTTP status, 0 when there was no answer
	Query  string // the PromQL sent, for QueryFailed and BadResponse
	Err    error  // the underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	if e.Status != 0 && !strings.Contains(e.Msg, "HTTP ") {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Query != "" {
		fmt.Fprintf(&b, "\nquery: %s", e.Query)
	}
	if e.Hint != "" {
		b.WriteString("\n")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// place is where the client reads Prometheus, for messages.
type place struct {
	kube      bool
	namespace string
	service   string
	port      int
	url       string // redacted
}

func (p place) String() string {
	if p.kube {
		return fmt.Sprintf("service %s/%s:%d", p.namespace, p.service, p.port)
	}
	return p.url
}

// proxyName is the service-proxy name the apiserver authorizes.
func (p place) proxyName() string { return fmt.Sprintf("http:%s:%d", p.service, p.port) }

// statusError turns a non-2xx answer into an *Error. Prometheus' own error
// bodies ({"status":"error",...}) are its word; a Kubernetes Status is the
// apiserver's (or its service proxy's); anything else is judged by code.
func (p place) statusError(code int, body []byte) *Error {
	var pe struct{ Status, ErrorType, Error string }
	if json.Unmarshal(body, &pe) == nil && pe.Status == "error" && pe.Error != "" {
		if pe.ErrorType == "unavailable" {
			return &Error{Kind: Unavailable, Status: code, Msg: "Prometheus is not ready: " + pe.Error, Hint: p.unavailableHint()}
		}
		return &Error{Kind: QueryFailed, Status: code, Msg: fmt.Sprintf("Prometheus refused the query: %s: %s", pe.ErrorType, pe.Error)}
	}
	detail := ""
	var ks struct{ Kind, Message string }
	if json.Unmarshal(body, &ks) == nil && ks.Kind == "Status" && ks.Message != "" {
		detail = ks.Message
	} else {
		detail = firstLine(body)
	}
	with := func(s string) string {
		if detail != "" {
			return s + ": " + detail
		}
		return s
	}
	switch {
	case code == 404 && p.kube:
		return &Error{Kind: NotFound, Status: code,
			Msg: with(fmt.Sprintf("Prometheus not found: the apiserver has no %s", p)),
			Hint: "is linkerd-viz installed? check with: linkerd viz check\n" +
				"(a Prometheus elsewhere, or Thanos or Mimir: set --prometheus-url or spec.crossCheck.prometheus.url)"}
	case code == 404:
		return &Error{Kind: NotFound, Status: code,
			Msg:  with(fmt.Sprintf("no Prometheus HTTP API at %s", p)),
			Hint: "check the URL: it is the base under which /api/v1/query is served (Prometheus http://HOST:9090, a Thanos querier, Mimir .../prometheus)"}
	case code == 403 && p.kube:
		return &Error{Kind: Forbidden, Status: code,
			Msg:  with("RBAC denied reading Prometheus through the apiserver's service proxy"),
			Hint: p.rbacHint()}
	case code == 403:
		return &Error{Kind: Forbidden, Status: code,
			Msg:  with(fmt.Sprintf("%s refused access", p)),
			Hint: "check the credentials tapgate sends, or the proxy in front of Prometheus"}
	case code == 401 && p.kube:
		return &Error{Kind: Unauthorized, Status: code,
			Msg:  with("the apiserver rejected the credentials"),
			Hint: "check the kubeconfig's user (kubectl auth whoami)"}
	case code == 401:
		return &Error{Kind: Unauthorized, Status: code,
			Msg:  with(fmt.Sprintf("%s rejected the credentials", p)),
			Hint: "give credentials in the URL (https://USER:PASSWORD@HOST) or through an authenticating proxy"}
	case code == 502 || code == 503 || code == 504 || code == 500:
		return &Error{Kind: Unavailable, Status: code,
			Msg:  with(fmt.Sprintf("Prometheus (%s) is unavailable", p)),
			Hint: p.unavailableHint()}
	}
	return &Error{Kind: BadResponse, Status: code,
		Msg: with(fmt.Sprintf("unexpected answer from %s", p))}
}

func (p place) unavailableHint() string {
	if p.kube {
		return fmt.Sprintf("check its pods: kubectl -n %s get pods -l component=%s, and: linkerd viz check", p.namespace, p.service)
	}
	return "check that Prometheus is up and ready (GET /-/ready), or try again later"
}

// rbacHint names the permission a service-proxy read needs and a Role that
// grants it: tapgate sends GETs, so get; the apiserver authorizes the name
// as proxied, with scheme and port (http:prometheus:9090): a Role naming
// only "prometheus" does not allow it.
func (p place) rbacHint() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tapgate needs get on services/proxy in namespace %s\n", p.namespace)
	fmt.Fprintf(&b, "check: kubectl auth can-i get services/%s --subresource=proxy -n %s\n", p.proxyName(), p.namespace)
	b.WriteString("grant it with a Role bound (RoleBinding) to the user or ServiceAccount above:\n")
	fmt.Fprintf(&b, "  apiVersion: rbac.authorization.k8s.io/v1\n  kind: Role\n  metadata:\n    name: tapgate-prometheus\n    namespace: %s\n", p.namespace)
	b.WriteString("  rules:\n  - apiGroups: [\"\"]\n    resources: [\"services/proxy\"]\n")
	fmt.Fprintf(&b, "    resourceNames: [%q]\n", p.proxyName())
	b.WriteString("    verbs: [\"get\"]")
	return b.String()
}

// transportError is a request that got no HTTP answer.
func (p place) transportError(err error) *Error {
	e := &Error{Kind: Unreachable, Err: err}
	what := "Prometheus at " + p.url
	if p.kube {
		what = "the Kubernetes apiserver at " + p.url
	}
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err // without the request's URL and query
	}
	if errors.Is(err, context.DeadlineExceeded) {
		e.Msg = fmt.Sprintf("no answer from %s in time: %v", what, cause)
	} else {
		e.Msg = fmt.Sprintf("cannot reach %s: %v", what, cause)
	}
	if p.kube {
		e.Hint = "check the kubeconfig and the network to the apiserver (kubectl cluster-info)"
	} else {
		e.Hint = "check --prometheus-url (spec.crossCheck.prometheus.url) and that it is reachable from here; without a URL tapgate reads linkerd-viz's Prometheus through the apiserver"
	}
	return e
}

// apiError maps an error the v1 client found in a 2xx answer.
func (p place) apiError(err *v1.Error) *Error {
	if err.Type == v1.ErrBadResponse {
		return &Error{Kind: BadResponse, Err: err, Msg: fmt.Sprintf("the answer from %s is not Prometheus' HTTP API: %s", p, err.Msg)}
	}
	return &Error{Kind: QueryFailed, Err: err, Msg: fmt.Sprintf("Prometheus refused the query: %s: %s", err.Type, err.Msg)}
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
