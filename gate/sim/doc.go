// Package sim is tapgate's traffic simulator: a deterministic traffic model,
// driven by a scenario file, that serves Linkerd's tap aggregated API
// (tap.linkerd.io/v1alpha1) over real HTTP(S) on loopback. The live source,
// the CLI and an apiserver aggregator can be pointed at it instead of a
// cluster.
//
// # Scenario files
//
//	name: demo
//	seed: 42                  # same seed, same traffic
//	duration: 10m             # tap streams end then; 0 or absent: run until stopped
//	controlPlaneNamespace: linkerd
//	namespaces:
//	- name: shop
//	  deployments:
//	  - name: checkout
//	    kind: deployment        # or statefulset, daemonset
//	    pods: 3
//	    labels: {app: checkout} # pod labels, for label selectors
//	    meshed: true            # default true; unmeshed pods emit nothing
//	    tapEnabled: true        # default true; false: "tap not enabled"
//	    serviceAccount: checkout
//	    port: 8080
//	    rps: 30                 # ingress traffic, spread over the pods
//	    routes:                 # weighted; method GET (POST for grpc), authority
//	    - {method: POST, path: /api/v1/checkout, weight: 3, bytes: 420}
//	    - {path: /pkg.Svc/Call, grpc: true}
//	    errors: {"503": 0.02, "500": 1%, UNAVAILABLE: 0.01, reset: 0.001}
//	    latency: {p50: 35ms, p99: 120ms}   # lognormal; or {constant: 5ms}
//	    phases:                 # from a point of the simulated clock on
//	    - from: 20s
//	      errors: {"503": 30%}  # rps, errors and latency override when set
//	    callers:                # outbound traffic to another workload
//	    - to: payments          # or namespace/name
//	      rps: 6
//	      routes: [{method: POST, path: /v1/charges}]  # default: the callee's
//
// Decoding is strict (unknown and duplicate keys are errors) and every
// problem is reported as file:line.
//
// # Model
//
// Each workload's ingress traffic and each caller edge is a Poisson process
// with its own random stream, so generation is deterministic for a seed.
// A request's outcome (status, gRPC code, reset before or after response
// headers), latency to headers and body time are drawn when it arrives. A
// caller's request is seen OUTBOUND by the caller's proxy and INBOUND by
// the callee's, 200µs later; both see the callee's outcome. Events are
// emitted at their simulated times: RequestInit, ResponseInit after the
// latency (none when reset before headers) and ResponseEnd after the body.
// Stream ids are unique per proxy. About one request in four carries an
// `authorization: Bearer s3cr3t-…` header and its response a `set-cookie`,
// so tests can check that tapgate never leaks them.
//
// # Tap server
//
// The handler follows Linkerd's viz tap APIServer (viz/tap/api): the same
// routes and discovery documents, the body checked against the URL, the
// same checks and error texts in the same order, errors as HTTP 200 with a
// `linkerd-error` header holding a status text and one ApiError frame, and
// events as 4-byte little-endian length-prefixed frames flushed as they
// happen. maxRps is split like Linkerd's tap server does it (maxRps/pods as
// float32, at least 1, truncated); each pod taps the first N requests that
// start after its window opens, and the next window opens a second after
// the previous one or when its last tapped request ends, whichever is
// later. As with Linkerd, nothing at all (not even response headers) is
// sent until the first event: a client waiting on an idle target sees no
// response until traffic arrives or the simulation ends.
package sim
