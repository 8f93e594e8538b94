package e2e_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// TestRBAC: the apiserver authorizes a tap as verb watch on
// deployments/tap in tap.linkerd.io. Without that right tapgate exits 4 and
// says which permission is missing, how to check it and how to grant it;
// with it (and nothing else) the gate runs.
func TestRBAC(t *testing.T) {
	f := newFixture(t, "rbac", healthy("web"))
	f.serve(t)
	args := func(kubeconfig string) []string {
		return []string{"run", "deploy/web", "-n", f.ns, "--window", "3s", "--warmup", warmup,
			"--min-success-rate", "99%", "--min-requests", "50", "--max-rps", "1000", "--kubeconfig", kubeconfig, "-q"}
	}
	// What a denied user must be told, for this namespace.
	wantDenied := func(t *testing.T, r result) {
		t.Helper()
		wantCode(t, r, exitInfra)
		wantIn(t, "stderr", r.stderr,
			"RBAC denied the tap",
			`missing permission: verb "watch" on resource "deployments/tap" in API group "tap.linkerd.io" in namespace "`+f.ns+`"`,
			"kind: Role",
			"namespace: "+f.ns,
			`apiGroups: ["tap.linkerd.io"]`,
			`resources: ["deployments/tap"]`,
			`verbs: ["watch"]`,
		)
		canI := regexp.MustCompile(`kubectl auth can-i watch deployments\.tap\.linkerd\.io( --subresource=tap)? -n ` + regexp.QuoteMeta(f.ns) + `\b`)
		if !canI.MatchString(r.stderr) {
			t.Errorf("stderr does not show the check %q:\n%s", canI, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("a denied tap printed a report on stdout, which reads like a verdict:\n%s", r)
		}
	}
	deniedByRBAC := func(t *testing.T, user string) {
		t.Helper()
		for _, r := range f.tapRequests() {
			if r.User == user {
				t.Errorf("a tap by %s reached the tap server: %+v", user, r)
			}
		}
	}

	t.Run("user without any rights", func(t *testing.T) {
		r := tapgate(t, args(f.c.WriteKubeconfig(t, cluster.UserNobody))...)
		wantDenied(t, r)
		deniedByRBAC(t, cluster.UserNobody)
	})

	tapper := f.c.WriteKubeconfig(t, cluster.UserTapper)
	t.Run("user who may read the workload but not tap it", func(t *testing.T) {
		grantRead(t, f.c, f.ns, cluster.UserTapper)
		r := tapgate(t, args(tapper)...)
		wantDenied(t, r)
		deniedByRBAC(t, cluster.UserTapper)
	})

	f.c.GrantTap(t, f.ns, cluster.UserTapper, "deployments")
	t.Run("user granted tap", func(t *testing.T) {
		r := tapgate(t, append(args(tapper), "-o", "json")...)
		// Any verdict will do (a 3s window may be too short for the
		// sequential test to pass): what matters is that the tap was let
		// through.
		if r.code != exitPass && r.code != exitFail && r.code != exitInconclusive {
			t.Fatalf("exit code %d, want a verdict (0, 1 or 3)\n%s", r.code, r)
		}
		rep := parseReport(t, r)
		if rep.Targets[0].Requests == 0 {
			t.Errorf("no requests seen\n%s", r)
		}
		var byTapper int
		for _, req := range f.tapRequests() {
			if req.User == cluster.UserTapper && req.HTTPStatus == 200 {
				byTapper++
			}
		}
		if byTapper == 0 {
			t.Errorf("the tap server saw no tap by %s: %+v", cluster.UserTapper, f.tapRequests())
		}
	})

	// Linkerd's tap server runs its own SubjectAccessReview and answers 403
	// with a JSON error of its own when it disagrees with the apiserver.
	t.Run("tap server's own check", func(t *testing.T) {
		f.sim.DenyUsers(cluster.UserTapper)
		defer f.sim.DenyUsers()
		r := tapgate(t, args(tapper)...)
		wantCode(t, r, exitInfra)
		wantIn(t, "stderr", r.stderr, "tap authorization failed", "HTTP 403", "linkerd viz check")
		var refused bool
		for _, req := range f.tapRequests() {
			refused = refused || req.User == cluster.UserTapper && req.HTTPStatus == 403
		}
		if !refused {
			t.Errorf("the tap server refused nothing: %+v", f.tapRequests())
		}
	})
}

// grantRead lets user get deployments and list pods in ns (what tapgate's
// pre-check reads), but not tap.
func grantRead(t *testing.T, c *cluster.Cluster, ns, user string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := c.Clientset(t, cluster.UserAdmin)
	name := "tapgate-e2e-read-" + user
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create rolebinding: %v", err)
	}
	for _, res := range []string{"deployments", "pods"} {
		group := map[string]string{"deployments": "apps"}[res]
		if err := c.WaitAllowed(ctx, user, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Group: group, Resource: res}); err != nil {
			t.Fatal(err)
		}
	}
}
