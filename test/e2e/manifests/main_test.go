// Package manifests_test proves that the example manifests under examples/
// are what a real cluster accepts, against the e2e harness's kube-apiserver
// (test/e2e/cluster):
//
//   - every YAML document is created with a server-side dry run, with strict
//     field validation (unknown and duplicate fields are errors) into a
//     namespace whose Pod Security "restricted" level warns, and any warning
//     fails the test; Argo Rollouts' CRDs are installed for real first, from
//     the pinned github.com/argoproj/argo-rollouts module;
//   - the Job an AnalysisTemplate's job provider creates at run time is dry
//     run too, as Argo Rollouts would create it;
//   - the gate Jobs, as the server returned them, are never retried on the
//     gate's verdict, outlive the policy's window, are not meshed, and run
//     as non-root on a read-only root filesystem;
//   - the example RBAC, created for real, lets the gate's ServiceAccount
//     resolve every example policy's targets with tapgate's own resolver and
//     authorizes their tap requests, in its namespace only;
//   - mutated copies of the examples (an unknown field, a missing
//     securityContext) are rejected or warned about, so the checks above
//     cannot pass vacuously.
//
// The offline tier (examples/*/manifests_test.go) decodes the same files
// into the Go types; this tier catches what only a server knows: CRD
// schemas, admission, defaulting and RBAC evaluation.
package manifests_test

import (
	"os"
	"testing"

	"github.com/tapgate/tapgate/test/e2e/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
