// Package prom holds the tier of tests that run gate/prom against real
// servers:
//
//   - TestCountsAgainstPrometheus: the Prometheus binary (Debian's
//     prometheus package, found through $TAPGATE_PROMETHEUS or PATH)
//     scrapes, every second, a small HTTP server of the test's own that
//     exposes Linkerd-shaped proxy counters the test drives, and Counts
//     must agree with what the test counted.
//   - TestCrossCheckWithSimulator: the same Prometheus scrapes the tap
//     simulator's proxies (gate/sim, GET /metrics) while a live gate taps
//     its high-rate and biased scenarios; the cross-check must match the
//     simulator's ground truth and catch the biased sample.
//   - TestServiceProxy: the e2e tier's kube-apiserver and etcd
//     (test/e2e/cluster) stand between the client and a stand-in
//     Prometheus, with RBAC.
//
// Each test skips when its binaries are missing, except under CI=true,
// where that is a failure.
package prom
