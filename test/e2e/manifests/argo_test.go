package manifests_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// The Argo Rollouts release whose CRDs the examples are validated against.
// Its manifests/crds are read from the Go module (the module proxy serves
// it; GitHub release assets are not needed), which is deliberately not a
// dependency in go.mod: it would pull in half of the cloud SDKs. The test
// downloads it into the module cache with `go mod download`, which later
// runs answer from the cache, offline. To warm the cache beforehand:
//
//	(cd "$(mktemp -d)" && GOFLAGS= GOWORK=off go mod download github.com/argoproj/argo-rollouts@v1.10.1)
//
// v1.10.1 is the newest release whose go.mod a Go 1.26.8 toolchain accepts
// (v1.10.2 declares go 1.26.10).
const (
	argoRolloutsModule  = "github.com/argoproj/argo-rollouts"
	argoRolloutsVersion = "v1.10.1"
)

// downloadTimeout bounds the first download (about 10 MB).
const downloadTimeout = 5 * time.Minute

// crdTimeout bounds the wait for installed CRDs to be established and
// served.
const crdTimeout = 60 * time.Second

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// argoModule is the module's directory, found once per process.
var argoModule struct {
	once sync.Once
	dir  string
	err  error
}

// argoRolloutsDir returns the directory of the pinned Argo Rollouts module in
// the module cache, downloading it on first use.
func argoRolloutsDir(t *testing.T) string {
	t.Helper()
	argoModule.once.Do(func() { argoModule.dir, argoModule.err = downloadModule(argoRolloutsModule, argoRolloutsVersion) })
	if argoModule.err != nil {
		skipOrFail(t, "Argo Rollouts CRDs: %v", argoModule.err)
	}
	return argoModule.dir
}

// downloadModule runs `go mod download -json module@version` outside this
// repository's module (so neither go.mod, go.work nor GOFLAGS=-mod=... get
// involved) and returns the "Dir" it reports.
func downloadModule(module, version string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command to download %s@%s with: %w", module, version, err)
	}
	tmp, err := os.MkdirTemp("", "tapgate-modfetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), downloadTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", module+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GO111MODULE=on", "GOTOOLCHAIN=local")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res struct{ Dir, Error string }
	jsonErr := json.Unmarshal(stdout.Bytes(), &res)
	switch {
	case res.Error != "":
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, res.Error)
	case runErr != nil:
		return "", fmt.Errorf("go mod download %s@%s: %w: %s", module, version, runErr, strings.TrimSpace(stderr.String()))
	case jsonErr != nil || res.Dir == "":
		return "", fmt.Errorf("go mod download %s@%s: unexpected output %q", module, version, stdout.String())
	}
	return res.Dir, nil
}

// argoInstalled records the clusters that have the CRDs (-count reuses the
// shared cluster).
var argoInstalled struct {
	mu sync.Mutex
	on map[*cluster.Cluster]bool
}

// installArgoRolloutsCRDs creates every CRD of the pinned Argo Rollouts
// release (Rollout, AnalysisTemplate, ...) in s's cluster, waits until each
// is established and served.
func installArgoRolloutsCRDs(t *testing.T, s *server) {
	t.Helper()
	argoInstalled.mu.Lock()
	defer argoInstalled.mu.Unlock()
	if argoInstalled.on[s.c] {
		return
	}
	dir := argoRolloutsDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "manifests", "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crds []*unstructured.Unstructured
	for _, f := range files {
		docs, err := loadFile(f, argoRolloutsModule+"@"+argoRolloutsVersion+"/manifests/crds/"+filepath.Base(f), false)
		if err != nil {
			t.Fatalf("Argo Rollouts CRDs: %v", err)
		}
		for _, d := range docs {
			if d.obj.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, d.obj)
			}
		}
	}
	var names []string
	for _, crd := range crds {
		names = append(names, crd.GetName())
	}
	for _, want := range []string{"rollouts.argoproj.io", "analysistemplates.argoproj.io"} {
		if !slices.Contains(names, want) {
			t.Fatalf("Argo Rollouts %s: no CRD %s in %s/manifests/crds (found %v)", argoRolloutsVersion, want, dir, names)
		}
	}

	start := time.Now()
	dyn, err := dynamic.NewForConfig(s.c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), crdTimeout)
	defer cancel()
	for _, crd := range crds {
		_, err := dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("installing Argo Rollouts %s CRD %s: %v", argoRolloutsVersion, crd.GetName(), err)
		}
	}
	for _, crd := range crds {
		if err := waitServed(ctx, s, dyn, crd); err != nil {
			t.Fatalf("Argo Rollouts %s CRD %s: %v", argoRolloutsVersion, crd.GetName(), err)
		}
	}
	t.Logf("installed the %d CRDs of Argo Rollouts %s in %v: %v", len(crds), argoRolloutsVersion, time.Since(start).Round(time.Millisecond), names)
	if argoInstalled.on == nil {
		argoInstalled.on = map[*cluster.Cluster]bool{}
	}
	argoInstalled.on[s.c] = true
}

// waitServed waits until crd is Established and discovery lists its kind
// in every served version.
func waitServed(ctx context.Context, s *server, dyn dynamic.Interface, crd *unstructured.Unstructured) error {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var last string
	for {
		got, err := dyn.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case !condition(got, "Established"):
			last = "not Established yet"
		default:
			last = ""
			for _, v := range versions {
				vm, _ := v.(map[string]any)
				name, _ := vm["name"].(string)
				if served, _ := vm["served"].(bool); !served {
					continue
				}
				if _, err := s.mapping(schema.GroupVersionKind{Group: group, Version: name, Kind: kind}); err != nil {
					last = "not in discovery yet: " + err.Error()
				}
			}
			if last == "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%s)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// condition reports whether obj's status has condition typ with status True.
func condition(obj *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

// needsArgo reports whether any document is an Argo Rollouts object.
func needsArgo(docs []document) bool {
	for _, d := range docs {
		if d.obj.GroupVersionKind().Group == "argoproj.io" {
			return true
		}
	}
	return false
}
