package manifests_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// requestTimeout bounds one API call; generous for slow CI machines.
const requestTimeout = 30 * time.Second

// server creates objects of any kind, as the cluster's admin, finding their
// resources through discovery.
type server struct {
	c      *cluster.Cluster
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newServer(t *testing.T, c *cluster.Cluster) *server {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &server{c: c, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// mapping is the resource of gvk. Discovery is cached: on a miss it is read
// again once, for resources of CRDs installed since.
func (s *server) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		s.mapper.Reset()
		m, err = s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

// warnings collects the Warning headers of the responses to one client.
type warnings struct {
	mu    sync.Mutex
	texts []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, code int, _, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.texts = append(w.texts, text)
}

func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.texts...)
}

// create creates a copy of obj with strict field validation, in namespace
// ns if its kind is namespaced (see retarget), for real or as a dry run
// (nothing is persisted, but validation and admission run in full). It
// returns the object as the server returned it and the server's warnings.
func (s *server) create(obj *unstructured.Unstructured, ns string, dryRun bool) (*unstructured.Unstructured, []string, error) {
	m, err := s.mapping(obj.GroupVersionKind())
	if err != nil {
		return nil, nil, fmt.Errorf("kube-apiserver %s does not serve %s: %w", cluster.KubeVersion, obj.GroupVersionKind(), err)
	}
	cfg := rest.CopyConfig(s.c.AdminConfig())
	w := &warnings{}
	cfg.WarningHandlerWithContext = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	obj = obj.DeepCopy()
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		retarget(obj, ns)
		ri = dyn.Resource(m.Resource).Namespace(ns)
	}
	opts := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	got, err := ri.Create(ctx, obj, opts)
	return got, w.list(), err
}

// retarget moves obj into namespace ns: the examples name the namespace of
// the workloads they gate ("shop"), and a test needs a fresh one. Binding
// subjects in the original namespace move with it.
func retarget(obj *unstructured.Unstructured, ns string) {
	orig := obj.GetNamespace()
	obj.SetNamespace(ns)
	if obj.GroupVersionKind().Group != rbacv1.GroupName {
		return
	}
	subjects, ok, _ := unstructured.NestedSlice(obj.Object, "subjects")
	if !ok {
		return
	}
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["namespace"] == orig && orig != "" {
			m["namespace"] = ns
		}
	}
	_ = unstructured.SetNestedSlice(obj.Object, subjects, "subjects")
}

// restrictedNamespace creates a fresh namespace whose Pod Security
// admission warns about anything the "restricted" level forbids: a gate has
// no reason to need more, and for workload objects such as Jobs, warnings are
// all Pod Security gives (it enforces on pods only).
func restrictedNamespace(t *testing.T, c *cluster.Cluster, prefix string) string {
	t.Helper()
	ns := c.NewNamespace(t, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	patch := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/warn":"restricted","pod-security.kubernetes.io/warn-version":"latest"}}}`)
	_, err := c.Clientset(t, cluster.UserAdmin).CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("labelling namespace %s for Pod Security: %v", ns, err)
	}
	return ns
}

// skipOrFail skips when something this tier needs is unavailable, except
// under CI, where it fails: CI must never skip silently (as the harness).
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if v := strings.ToLower(strings.TrimSpace(os.Getenv(cluster.EnvCI))); v != "" && v != "false" && v != "0" {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", msg)
	}
	t.Skipf("%s; skipping (set CI=true to make this a failure)", msg)
}
