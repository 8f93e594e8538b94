package manifests_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/policy"
	"github.com/tapgate/tapgate/gate/tap/kube"
	"github.com/tapgate/tapgate/gate/tap/wire"
	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// rbacFile is the example RBAC every other example relies on.
const rbacFile = "examples/kubernetes/rbac.yaml"

// tapGroup is Linkerd's aggregated tap API group.
const tapGroup = "tap.linkerd.io"

// TestExampleRBACLetsTheGateResolveAndTap creates the example RBAC for real
// and, as its ServiceAccount (with a real token), resolves every target of
// every example policy with tapgate's own resolver and asks the apiserver
// whether the target's tap request is allowed, as the kube-apiserver and
// Linkerd's tap server each authorize it. The same targets in another
// namespace must be denied: the Role grants nothing outside its own.
func TestExampleRBACLetsTheGateResolveAndTap(t *testing.T) {
	c := cluster.Shared(t)
	sets := loadExamples(t)
	s := newServer(t, c)
	ns := c.NewNamespace(t, "examples-rbac")
	other := c.NewNamespace(t, "examples-rbac-other")

	var sa string
	var rbacDocs int
	for _, docs := range sets {
		for _, d := range docs {
			if d.file != rbacFile {
				continue
			}
			rbacDocs++
			if _, warns, err := s.create(d.obj, ns, false); err != nil || len(warns) > 0 {
				t.Fatalf("%s: creating it: %v %q", d, err, warns)
			}
			if d.obj.GetKind() == "ServiceAccount" {
				sa = d.obj.GetName()
			}
		}
	}
	if rbacDocs == 0 || sa == "" {
		t.Fatalf("no ServiceAccount in %s", rbacFile)
	}

	// The workload the example policies gate, meshed and running, in both
	// namespaces: a denial in the other one must be RBAC's, not a 404.
	const pods = 2
	c.CreateWorkload(t, ns, "checkout", pods, nil, true)
	c.CreateWorkload(t, other, "checkout", 1, nil, true)

	gateCS := saClient(t, c, ns, sa)
	policies := examplePolicies(t, sets)
	for _, p := range policies {
		for _, target := range p.Targets {
			t.Run(p.Name+"/"+target.Name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				defer cancel()

				tg := inNamespace(target, ns)
				r, err := kube.Resolve(ctx, gateCS, tg, ns)
				if err != nil {
					t.Errorf("as %s, resolving %s (%s) in %s: %v", sa, target.Name, tg.Resource, ns, err)
				} else if r.Tappable != pods {
					t.Errorf("resolved %s to %d tappable pods, want %d", r.Ref(), r.Tappable, pods)
				}
				for _, a := range tapAuthorization(t, tg, ns) {
					if !allowed(t, gateCS, a) {
						t.Errorf("as %s, %s is denied: the Role must grant it", sa, describe(a))
					}
				}

				elsewhere := inNamespace(target, other)
				var ke *kube.Error
				if _, err := kube.Resolve(ctx, gateCS, elsewhere, other); !errors.As(err, &ke) || ke.Kind != kube.Forbidden {
					t.Errorf("as %s, resolving %s in namespace %s: want forbidden, got %v", sa, elsewhere.Resource, other, err)
				}
				for _, a := range tapAuthorization(t, elsewhere, other) {
					if allowed(t, gateCS, a) {
						t.Errorf("as %s, %s is allowed: the Role must not reach other namespaces", sa, describe(a))
					}
				}
			})
		}
	}

	// Least privilege: reads only, no secrets.
	for _, a := range []authzv1.ResourceAttributes{
		{Namespace: ns, Verb: "get", Resource: "secrets"},
		{Namespace: ns, Verb: "create", Resource: "pods"},
		{Namespace: ns, Verb: "watch", Resource: "pods"},
		{Namespace: ns, Verb: "delete", Group: "apps", Resource: "deployments"},
		{Namespace: ns, Verb: "create", Group: "batch", Resource: "jobs"},
	} {
		if allowed(t, gateCS, a) {
			t.Errorf("as %s, %s is allowed: the gate only reads", sa, describe(a))
		}
	}
}

// examplePolicies returns the gate policies the examples' ConfigMaps hold.
func examplePolicies(t *testing.T, sets map[string][]document) []*gate.Policy {
	t.Helper()
	var out []*gate.Policy
	for _, d := range ofKind(t, sets, "ConfigMap") {
		data, _, _ := unstructured.NestedStringMap(d.obj.Object, "data")
		for key, text := range data {
			if !strings.HasSuffix(key, ".yaml") || !strings.Contains(text, "kind: GatePolicy") {
				continue
			}
			p, err := policy.Parse(fmt.Sprintf("%s key %s", d, key), []byte(text))
			if err != nil {
				t.Fatalf("%s key %s: %v", d, key, err)
			}
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("no gate policy in the examples' ConfigMaps")
	}
	return out
}

// inNamespace moves a policy target (and its destination) into namespace ns,
// as retarget does for the manifests.
func inNamespace(t gate.Target, ns string) gate.Target {
	if typ, _ := wire.CanonicalType(t.Resource.Type); typ == wire.TypeNamespace {
		t.Resource.Name = ns
	} else {
		t.Resource.Namespace = ns
	}
	if !t.To.IsZero() {
		if typ, _ := wire.CanonicalType(t.To.Type); typ == wire.TypeNamespace {
			t.To.Name = ns
		} else {
			t.To.Namespace = ns
		}
	}
	return t
}

// saClient is a clientset authenticating as ServiceAccount ns/name with a
// token from the TokenRequest API, as the gate's pod would.
func saClient(t *testing.T, c *cluster.Cluster, ns, name string) kubernetes.Interface {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	expiry := int64(600)
	tr, err := c.Clientset(t, cluster.UserAdmin).CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", ns, name, err)
	}
	cfg := &rest.Config{
		Host:            c.Host(),
		BearerToken:     tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.ServingCA()},
		QPS:             1000,
		Burst:           1000,
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// tapAuthorization returns the two authorization checks a tap request for
// target goes through, derived from the URL tapgate POSTs to:
//
//   - the kube-apiserver's, for the aggregated request. It parses
//     .../watch/namespaces/{ns}/{resource}/{name}/tap as verb watch on the
//     tap subresource of {resource}, and .../watch/namespaces/{ns}/tap as
//     verb watch on a resource named "tap" (k8s.io/apiserver's RequestInfo);
//   - Linkerd's tap server's SubjectAccessReview (viz/tap/api/handlers.go):
//     the same, except that a namespace tap is the tap subresource of
//     "namespaces", without a name.
func tapAuthorization(t *testing.T, target gate.Target, ns string) []authzv1.ResourceAttributes {
	t.Helper()
	req, err := wire.BuildRequest(target, ns)
	if err != nil {
		t.Fatalf("target %s: %v", target.Name, err)
	}
	p := wire.RequestPath(req)
	const prefix = "/apis/" + tapGroup + "/v1alpha1/watch/namespaces/"
	tail, ok := strings.CutPrefix(p, prefix)
	if !ok {
		t.Fatalf("tap path %q does not start with %s", p, prefix)
	}
	parts := strings.Split(tail, "/")
	for i := range parts {
		if parts[i], err = url.PathUnescape(parts[i]); err != nil {
			t.Fatalf("tap path %q: %v", p, err)
		}
	}
	switch {
	case len(parts) == 2 && parts[1] == "tap":
		return []authzv1.ResourceAttributes{
			{Namespace: parts[0], Verb: "watch", Group: tapGroup, Resource: "tap"},
			{Namespace: parts[0], Verb: "watch", Group: tapGroup, Resource: "namespaces", Subresource: "tap"},
		}
	case len(parts) == 4 && parts[3] == "tap":
		a := authzv1.ResourceAttributes{Namespace: parts[0], Verb: "watch", Group: tapGroup, Resource: parts[1], Subresource: "tap", Name: parts[2]}
		return []authzv1.ResourceAttributes{a}
	}
	t.Fatalf("unexpected tap path %q", p)
	return nil
}

// allowed asks the apiserver whether the client's user may do a.
func allowed(t *testing.T, cs kubernetes.Interface, a authzv1.ResourceAttributes) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
		&authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectAccessReview of %s: %v", describe(a), err)
	}
	return r.Status.Allowed
}

func describe(a authzv1.ResourceAttributes) string {
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	if a.Group != "" {
		res += "." + a.Group
	}
	if a.Name != "" {
		res += " " + a.Name
	}
	return fmt.Sprintf("%s %s in namespace %s", a.Verb, res, a.Namespace)
}
