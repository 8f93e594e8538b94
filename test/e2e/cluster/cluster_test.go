package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tapgate/tapgate/test/e2e/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }

// seen is what the fake tap backend observed of one tap request.
type seen struct {
	path, user string
	groups     []string
	body       string
}

// backend is a minimal stand-in for Linkerd's tap server: it serves the
// discovery document the aggregator's health check needs and records tap
// POSTs after verifying they came through the apiserver.
type backend struct {
	mu   sync.Mutex
	taps []seen
	errs []string
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, groups, err := cluster.VerifyProxyRequest(r)
	if err != nil {
		b.mu.Lock()
		b.errs = append(b.errs, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
		b.mu.Unlock()
		http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/apis/"+cluster.TapGroup+"/"+cluster.TapVersion:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": cluster.TapGroup + "/" + cluster.TapVersion,
			"resources": []map[string]any{{"name": "deployments/tap", "namespaced": true, "kind": "Tap", "verbs": []string{"watch"}}},
		})
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/tap"):
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.taps = append(b.taps, seen{path: r.URL.Path, user: user, groups: groups, body: string(body)})
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte("tapped"))
	default:
		http.NotFound(w, r)
	}
}

func (b *backend) snapshot() ([]seen, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.taps...), append([]string(nil), b.errs...)
}

func startBackend(t *testing.T, c *cluster.Cluster) (*backend, string, []byte) {
	t.Helper()
	tlsCfg, caPEM := c.BackendTLS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{}
	srv := &http.Server{Handler: b, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return b, l.Addr().String(), caPEM
}

func TestAggregatedTapThroughRealAPIServer(t *testing.T) {
	start := time.Now()
	c := cluster.Shared(t)
	t.Logf("cluster ready after %s (includes startup when first)", time.Since(start).Round(time.Millisecond))

	ns, deploy := c.NewNamespace(t, "smoke"), "web"
	w := c.CreateWorkload(t, ns, deploy, 3, map[string]string{"tier": "front"}, true)
	checkWorkload(t, w, 3, true)

	b, addr, caPEM := startBackend(t, c)
	c.RegisterTapAPIService(t, addr, caPEM)

	path := "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/" + ns + "/deployments/" + deploy + "/tap"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	post := func(user string) ([]byte, error) {
		res := c.RESTClient(t, user).Post().AbsPath(path).Body([]byte("req-" + user)).Do(ctx)
		body, _ := res.Raw()
		// Raw's error is generic; Error decodes the apiserver's Status.
		return body, res.Error()
	}

	// Admin (system:masters) is proxied, and the backend learns who it is.
	body, err := post(cluster.UserAdmin)
	if err != nil {
		t.Fatalf("admin tap: %v", err)
	}
	if string(body) != "tapped" {
		t.Errorf("admin tap body = %q, want %q", body, "tapped")
	}
	taps, errs := b.snapshot()
	if len(errs) > 0 {
		t.Errorf("backend rejected requests: %v", errs)
	}
	if len(taps) != 1 || taps[0].user != cluster.UserAdmin || taps[0].path != path || taps[0].body != "req-admin" ||
		!contains(taps[0].groups, "system:masters") {
		t.Fatalf("backend saw %+v, want one POST %s by admin (system:masters) with body req-admin", taps, path)
	}

	// An authenticated user without rights is stopped by RBAC with a Status.
	_, err = post(cluster.UserTapper)
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Code != http.StatusForbidden || se.ErrStatus.Reason != metav1.StatusReasonForbidden {
		t.Fatalf("unprivileged tap: err = %v, want a 403 Forbidden Status", err)
	}
	if d := se.ErrStatus.Details; d == nil || d.Group != cluster.TapGroup || d.Kind != "deployments" || d.Name != deploy ||
		!strings.Contains(se.ErrStatus.Message, `cannot watch resource "deployments/tap"`) {
		t.Errorf("403 Status = %+v, want details for %s deployments %s and the denied verb", se.ErrStatus, cluster.TapGroup, deploy)
	}

	// An unknown token is 401.
	if _, err := post("stranger"); !apierrors.IsUnauthorized(err) {
		t.Errorf("unknown user tap: err = %v, want 401 Unauthorized", err)
	}

	// watch on deployments/tap lets the user through, and only in that namespace.
	c.GrantTap(t, ns, cluster.UserTapper, "deployments")
	if _, err := post(cluster.UserTapper); err != nil {
		t.Fatalf("tap after GrantTap: %v", err)
	}
	if taps, _ = b.snapshot(); len(taps) != 2 || taps[1].user != cluster.UserTapper {
		t.Fatalf("backend saw %+v, want a second tap by %s", taps, cluster.UserTapper)
	}
	if _, err := post(cluster.UserNobody); !apierrors.IsForbidden(err) {
		t.Errorf("nobody tap: err = %v, want 403", err)
	}
	otherNS := "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/elsewhere/deployments/" + deploy + "/tap"
	if err := c.RESTClient(t, cluster.UserTapper).Post().AbsPath(otherNS).Do(ctx).Error(); !apierrors.IsForbidden(err) {
		t.Errorf("tap in another namespace: err = %v, want 403", err)
	}
	if taps, _ = b.snapshot(); len(taps) != 2 {
		t.Errorf("denied requests reached the backend: %+v", taps)
	}
}

func TestUnavailableAndMissingTapAPI(t *testing.T) {
	c := cluster.Shared(t)
	path := "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/smoke/deployments/web/tap"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Registered but nothing listens: the aggregator answers 503.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	c.RegisterTapAPIServiceNoWait(t, dead, nil)
	// Until the aggregator's informer sees the new APIService the group is
	// unknown (404); what follows must be a 503.
	for {
		err = c.RESTClient(t, cluster.UserAdmin).Post().AbsPath(path).Do(ctx).Error()
		if !apierrors.IsNotFound(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("tap with unavailable APIService: err = %v, want 503", err)
	}

	// Not registered at all (viz not installed): 404.
	c.UnregisterTapAPIService(t)
	err = c.RESTClient(t, cluster.UserAdmin).Post().AbsPath(path).Do(ctx).Error()
	if !apierrors.IsNotFound(err) {
		t.Errorf("tap without APIService: err = %v, want 404", err)
	}
}

func TestWorkloadAndKubeconfig(t *testing.T) {
	c := cluster.Shared(t)
	ns := c.NewNamespace(t, "plain")
	unmeshed := c.CreateWorkload(t, ns, "batch", 2, nil, false)
	checkWorkload(t, unmeshed, 2, false)
	second := c.CreateWorkload(t, ns, "other", 1, nil, true)
	seenIPs := map[string]bool{}
	for _, p := range append(unmeshed.Pods, second.Pods...) {
		if seenIPs[p.Status.PodIP] {
			t.Errorf("pod IP %s handed out twice", p.Status.PodIP)
		}
		seenIPs[p.Status.PodIP] = true
	}

	// The kubeconfig works for a client built the way tapgate builds one.
	path := c.WriteKubeconfig(t, cluster.UserAdmin)
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("loading kubeconfig: %v", err)
	}
	if cfg.Host != c.Host() {
		t.Errorf("kubeconfig host = %s, want %s", cfg.Host, c.Host())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := c.RESTClient(t, cluster.UserAdmin).Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil || !strings.Contains(string(raw), `"gitVersion": "`+cluster.KubeVersion+`"`) {
		t.Errorf("GET /version = %s, %v; want gitVersion %s", raw, err, cluster.KubeVersion)
	}
}

func checkWorkload(t *testing.T, w *cluster.Workload, pods int, meshed bool) {
	t.Helper()
	if len(w.Pods) != pods {
		t.Fatalf("got %d pods, want %d", len(w.Pods), pods)
	}
	if o := w.ReplicaSet.OwnerReferences; len(o) != 1 || o[0].Kind != "Deployment" || o[0].UID != w.Deployment.UID {
		t.Errorf("replicaset owners = %+v, want the deployment", o)
	}
	for _, p := range w.Pods {
		if o := p.OwnerReferences; len(o) != 1 || o[0].Kind != "ReplicaSet" || o[0].UID != w.ReplicaSet.UID {
			t.Errorf("pod %s owners = %+v, want the replicaset", p.Name, o)
		}
		if p.Status.Phase != "Running" || !strings.HasPrefix(p.Status.PodIP, "127.") {
			t.Errorf("pod %s: phase %s ip %q, want Running on loopback", p.Name, p.Status.Phase, p.Status.PodIP)
		}
		hasProxy := false
		for _, ctr := range p.Spec.Containers {
			hasProxy = hasProxy || ctr.Name == cluster.ProxyContainerName
		}
		if hasProxy != meshed || (p.Annotations["linkerd.io/proxy-version"] != "") != meshed ||
			(p.Labels["linkerd.io/control-plane-ns"] == cluster.LinkerdNamespace) != meshed {
			t.Errorf("pod %s: proxy container %v, annotations %v, labels %v; want meshed=%v", p.Name, hasProxy, p.Annotations, p.Labels, meshed)
		}
	}
	if w.Deployment.Status.ReadyReplicas != int32(pods) {
		t.Errorf("deployment ready replicas = %d, want %d", w.Deployment.Status.ReadyReplicas, pods)
	}
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}
