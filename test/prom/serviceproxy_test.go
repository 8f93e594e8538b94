package prom

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/yaml"

	gprom "github.com/tapgate/tapgate/gate/prom"
	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// TestServiceProxy reads Prometheus through a real kube-apiserver's service
// proxy (the e2e tier's cluster, with RBAC): 404 while linkerd-viz's
// Service is missing, 503 while it has no ready endpoint, 403 for a user
// without RBAC, and the Role that 403 prints, applied as printed, is
// enough. The backend stands in for Prometheus; it must be on a
// non-loopback address, as the apiserver only proxies to pod IPs.
func TestServiceProxy(t *testing.T) {
	c := cluster.Start(t)
	ip := hostIP(t)
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		methods []string
	)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method+" "+r.URL.Path)
		mu.Unlock()
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	check := func(user string) error {
		cl, err := gprom.New(gprom.Config{Kube: c.UserConfig(user)})
		if err != nil {
			t.Fatal(err)
		}
		return cl.Check(ctx)
	}
	want := func(err error, kind gprom.ErrorKind, what string) *gprom.Error {
		t.Helper()
		var pe *gprom.Error
		if !errors.As(err, &pe) || pe.Kind != kind {
			t.Fatalf("%s: %v, want %s", what, err, kind)
		}
		return pe
	}
	const ns = "linkerd-viz"
	cs := c.Clientset(t, cluster.UserAdmin)
	create := func(what string, err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %s: %v", what, err)
		}
	}

	want(check(cluster.UserAdmin), gprom.NotFound, "without the Service")

	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	create("namespace", err)
	port := int32(l.Addr().(*net.TCPAddr).Port)
	_, err = cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "prometheus"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "admin", Port: 9090, TargetPort: intstr.FromInt32(port)}}}}, metav1.CreateOptions{})
	create("service", err)
	want(check(cluster.UserAdmin), gprom.Unavailable, "without endpoints")

	// A running pod at the backend's address, and its EndpointSlice.
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-0"},
		Spec: corev1.PodSpec{NodeName: "node", Containers: []corev1.Container{{Name: "prometheus", Image: "prometheus"}}}}, metav1.CreateOptions{})
	create("pod", err)
	pod.Status.Phase, pod.Status.PodIP, pod.Status.PodIPs = corev1.PodRunning, ip, []corev1.PodIP{{IP: ip}}
	_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	create("pod status", err)
	portName, ready := "admin", true
	_, err = cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "prometheus-1", Labels: map[string]string{discoveryv1.LabelServiceName: "prometheus"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name}}},
		Ports: []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
	}, metav1.CreateOptions{})
	create("endpointslice", err)
	for err = check(cluster.UserAdmin); err != nil && ctx.Err() == nil; err = check(cluster.UserAdmin) {
		time.Sleep(100 * time.Millisecond) // the apiserver's EndpointSlice cache
	}
	if err != nil {
		t.Fatalf("admin through the service proxy: %v", err)
	}

	denied := want(check(cluster.UserNobody), gprom.Forbidden, "without RBAC")
	_, snippet, ok := strings.Cut(denied.Hint, "grant it with a Role bound (RoleBinding) to the user or ServiceAccount above:\n")
	if !ok {
		t.Fatalf("the 403's hint has no Role:\n%s", denied.Hint)
	}
	var role rbacv1.Role
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(snippet, "\n  ", "\n")[2:]), &role); err != nil {
		t.Fatalf("the hint's Role does not parse: %v\n%s", err, snippet)
	}
	_, err = cs.RbacV1().Roles(ns).Create(ctx, &role, metav1.CreateOptions{})
	create("role", err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: cluster.UserNobody}}}, metav1.CreateOptions{})
	create("rolebinding", err)
	if err := c.WaitAllowed(ctx, cluster.UserNobody, authorizationv1.ResourceAttributes{
		Namespace: ns, Verb: "get", Resource: "services", Subresource: "proxy", Name: "http:prometheus:9090"}); err != nil {
		t.Fatal(err)
	}
	if err := check(cluster.UserNobody); err != nil {
		t.Fatalf("with the hint's Role: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, m := range methods {
		if m != "GET /api/v1/query" {
			t.Errorf("backend saw %s, want only GET /api/v1/query", m)
		}
	}
}

// hostIP is a non-loopback IPv4 address of this machine.
func hostIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address to stand in for a pod IP")
	return ""
}
