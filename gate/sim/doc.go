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
//	    errorsLateInSecond: 0.5 # optional: the errors fall only on requests
//	                            # arriving in the last half of each simulated
//	                            # second, twice as often there (same overall
//	                            # share); 1 (default): anywhere
//	    latency: {p50: 35ms, p99: 120ms}   # lognormal; or {constant: 5ms}
//	    phases:                 # from a point of the simulated clock on
//	    - from: 20s
//	      errors: {"503": 30%}  # rps, errors, errorsLateInSecond and latency
//	                            # override when set
//	    callers:                # outbound traffic to another workload
//	    - to: payments          # or namespace/name
//	      rps: 6
//	      routes: [{method: POST, path: /v1/charges}]  # default: the callee's
//
// Decoding is strict (unknown and duplicate keys are errors) and every
// problem is reported as file:line. errorsLateInSecond is a share of the
// second above 0 and at most 1 (0.25 or "25%"), and the errors in effect
// must fit in it: with errorsLateInSecond 0.1 they may add up to at most
// 0.1 of all requests (all of the last 100ms of every second).
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
// response until traffic arrives or the simulation ends. Since tap windows
// open when the tap opens, errorsLateInSecond hides the errors from a tap
// whose windows open early in the simulated second (one opened as the clock
// starts, with Options.StartAfterTaps, sees none) and doubles them for one
// opened in the late half.
//
// # Proxy metrics
//
// GET /metrics on the same address serves, in Prometheus' text format,
// what Linkerd's Prometheus holds after scraping every meshed simulated
// proxy (its linkerd-proxy job): one set of series per pod, counting all
// simulated traffic, tapped or not, whether a tap is open or not.
//
//	request_total          counter, when a request starts
//	response_total         counter, when its response ends: classification
//	                       ("success" | "failure", Linkerd's default: HTTP
//	                       >= 500, grpc-status other than OK, reset),
//	                       status_code (absent for a reset before response
//	                       headers), grpc_status (gRPC responses) or error
//	                       ("h2(INTERNAL_ERROR)" for a reset)
//	response_latency_ms    histogram of the time to response headers in
//	                       whole milliseconds (truncated), by status_code,
//	                       buckets 1 2 3 4 5 10 20 30 40 50 100 200 300 400
//	                       500 1000 2000 3000 4000 5000 10000 20000 30000
//	                       40000 50000 +Inf
//
// Labels are what the proxy writes (direction, authority, target_addr,
// target_ip, target_port, tls with client_id or no_tls_reason, the default
// policy's srv_*, route_* and authz_* inbound; tls with server_id and the
// destination's dst_namespace, dst_deployment (or dst_statefulset, ...),
// dst_pod, dst_pod_template_hash, dst_serviceaccount, dst_service,
// dst_control_plane_ns outbound) and the target labels linkerd-viz's
// scrape configuration adds: namespace, pod, the owner (deployment,
// statefulset or daemonset), control_plane_ns, workload_ns, and every pod
// label under its sanitized name (app, track, pod_template_hash,
// rollouts_pod_template_hash, ...). job and instance are left to the
// scraping Prometheus. Inbound series live at the callee's pod; a modeled
// caller's requests also count outbound at the caller's pod; unmeshed pods
// have no series (Prometheus does not scrape them). Every series the model
// can produce exists at zero from New on (up to 20000 endpoints; beyond,
// a series appears with its first request), so a Prometheus scraping
// before the clock starts sees every increase. Both proxies count a
// request's response (and its latency) when the callee finishes it, under
// the same lock as Truth: the counters equal Truth's Started, Requests and
// Failures (Pods, CallerPods) at every moment. They advance with the
// simulated clock: at Speed 2 a Prometheus sees twice the rates.
package sim
