package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Names of Linkerd viz's tap API registration, as `linkerd viz install`
// creates them.
const (
	TapGroup            = "tap.linkerd.io"
	TapVersion          = "v1alpha1"
	TapAPIServiceName   = TapVersion + "." + TapGroup
	TapServiceNamespace = "linkerd-viz"
	TapServiceName      = "tap"
	// TapServerName is the TLS server name the apiserver verifies on the
	// backend's certificate (<service>.<namespace>.svc).
	TapServerName = TapServiceName + "." + TapServiceNamespace + ".svc"
)

// proxyClientName is the common name of the apiserver's proxy client
// certificate, and the only name in --requestheader-allowed-names.
const proxyClientName = "front-proxy-client"

// registrationTimeout bounds waiting for the aggregator to see a backend.
const registrationTimeout = 60 * time.Second

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// BackendTLS returns a server TLS config for a local stand-in of Linkerd's
// tap server, and the PEM CA to pass to RegisterTapAPIService. The
// certificate is valid for TapServerName, localhost and 127.0.0.1. Client
// certificates are verified against ProxyClientCA when presented (the
// apiserver always presents one); use VerifyProxyRequest in the handler to
// require it.
func (c *Cluster) BackendTLS(t testing.TB) (*tls.Config, []byte) {
	t.Helper()
	ca, err := newAuthority("tapgate-e2e-tap-backend-ca")
	if err != nil {
		t.Fatalf("e2e cluster: backend CA: %v", err)
	}
	kp, err := ca.issue(TapServiceName, []string{
		TapServerName, TapServerName + ".cluster.local", "localhost", "127.0.0.1",
	}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatalf("e2e cluster: backend certificate: %v", err)
	}
	cert, err := kp.tlsCertificate()
	if err != nil {
		t.Fatalf("e2e cluster: backend certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.proxyCA)
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
	}, ca.pem
}

// VerifyProxyRequest checks that r came from the apiserver's aggregator (a
// verified client certificate named front-proxy-client, as Linkerd's tap
// server checks) and returns the user and groups the apiserver authenticated.
// r must have arrived over a listener using BackendTLS's config.
func VerifyProxyRequest(r *http.Request) (user string, groups []string, err error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "", nil, errors.New("no verified client certificate: request did not come through the apiserver")
	}
	if cn := r.TLS.VerifiedChains[0][0].Subject.CommonName; cn != proxyClientName {
		return "", nil, fmt.Errorf("client certificate %q is not the apiserver's proxy client %q", cn, proxyClientName)
	}
	user = r.Header.Get("X-Remote-User")
	if user == "" {
		return "", nil, errors.New("missing X-Remote-User")
	}
	return user, r.Header.Values("X-Remote-Group"), nil
}

// RegisterTapAPIService registers the HTTPS server at addr (host:port on
// loopback) as APIService v1alpha1.tap.linkerd.io, through an ExternalName
// Service linkerd-viz/tap, and waits until the aggregator has found it
// available and proxies to it. caPEM verifies the backend's certificate (see
// BackendTLS); nil skips verification. The backend must answer
// GET /apis/tap.linkerd.io/v1alpha1 with a 2xx (the aggregator's health
// check). A previous registration is replaced; the APIService is removed
// again when t ends.
func (c *Cluster) RegisterTapAPIService(t testing.TB, addr string, caPEM []byte) {
	t.Helper()
	c.RegisterTapAPIServiceNoWait(t, addr, caPEM)
	if err := c.waitTapAvailable(t); err != nil {
		t.Fatalf("e2e cluster: APIService %s at %s: %v", TapAPIServiceName, addr, err)
	}
}

// RegisterTapAPIServiceNoWait is RegisterTapAPIService without waiting: for
// tests of a tap API that is registered but unavailable (the apiserver
// answers 503).
func (c *Cluster) RegisterTapAPIServiceNoWait(t testing.TB, addr string, caPEM []byte) {
	t.Helper()
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("e2e cluster: backend address %q: %v (want host:port)", addr, err)
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil || port <= 0 || port > 65535 {
		t.Fatalf("e2e cluster: backend address %q: bad port", addr)
	}
	// An ExternalName must be a DNS name; 127.0.0.1 happens to pass that
	// check and avoids localhost resolving to ::1.
	if host == "" || strings.Contains(host, ":") {
		host = "localhost"
	}
	ctx, cancel := context.WithTimeout(context.Background(), registrationTimeout)
	defer cancel()
	cs := c.Clientset(t, UserAdmin)

	c.ensureNamespace(t, cs, TapServiceNamespace)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: TapServiceName, Namespace: TapServiceNamespace},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: host},
	}
	if _, err := cs.CoreV1().Services(TapServiceNamespace).Create(ctx, svc, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		cur, gerr := cs.CoreV1().Services(TapServiceNamespace).Get(ctx, TapServiceName, metav1.GetOptions{})
		if gerr != nil {
			t.Fatalf("e2e cluster: get service: %v", gerr)
		}
		cur.Spec.ExternalName = host
		if _, err = cs.CoreV1().Services(TapServiceNamespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("e2e cluster: update service %s/%s: %v", TapServiceNamespace, TapServiceName, err)
		}
	} else if err != nil {
		t.Fatalf("e2e cluster: create service %s/%s: %v", TapServiceNamespace, TapServiceName, err)
	}

	spec := map[string]any{
		"group":                TapGroup,
		"version":              TapVersion,
		"groupPriorityMinimum": int64(1000),
		"versionPriority":      int64(100),
		"service": map[string]any{
			"name":      TapServiceName,
			"namespace": TapServiceNamespace,
			"port":      port,
		},
	}
	if len(caPEM) > 0 {
		spec["caBundle"] = caPEM // []byte marshals as base64, as the API wants
	} else {
		spec["insecureSkipTLSVerify"] = true
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": TapAPIServiceName},
		"spec":       spec,
	}}
	dc, err := dynamic.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatalf("e2e cluster: dynamic client: %v", err)
	}
	api := dc.Resource(apiServiceGVR)
	if _, err := api.Create(ctx, obj, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		cur, gerr := api.Get(ctx, TapAPIServiceName, metav1.GetOptions{})
		if gerr != nil {
			t.Fatalf("e2e cluster: get APIService: %v", gerr)
		}
		obj.SetResourceVersion(cur.GetResourceVersion())
		if _, err := api.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("e2e cluster: update APIService %s: %v", TapAPIServiceName, err)
		}
	} else if err != nil {
		t.Fatalf("e2e cluster: create APIService %s: %v", TapAPIServiceName, err)
	}
	t.Cleanup(func() { c.deleteTapAPIService(t) })
}

// UnregisterTapAPIService deletes the APIService (as if viz were not
// installed) and waits until the apiserver answers 404 for the tap group.
func (c *Cluster) UnregisterTapAPIService(t testing.TB) {
	t.Helper()
	c.deleteTapAPIService(t)
}

func (c *Cluster) deleteTapAPIService(t testing.TB) {
	t.Helper()
	dc, err := dynamic.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Errorf("e2e cluster: dynamic client: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), registrationTimeout)
	defer cancel()
	err = dc.Resource(apiServiceGVR).Delete(ctx, TapAPIServiceName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("e2e cluster: delete APIService %s: %v", TapAPIServiceName, err)
		return
	}
	// The aggregator drops its proxy from an informer: wait for it so the
	// next test does not reach a stale backend.
	rc := c.rawClient(t)
	for {
		err := rc.Get().AbsPath("/apis", TapGroup, TapVersion).Do(ctx).Error()
		if apierrors.IsNotFound(err) {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("e2e cluster: tap group still served %s after deleting its APIService (last: %v)", registrationTimeout, err)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitTapAvailable waits for the APIService's Available condition and then
// for a request through the aggregator to reach the backend: the condition
// is written before the proxy handler learns about it.
func (c *Cluster) waitTapAvailable(t testing.TB) error {
	t.Helper()
	dc, err := dynamic.NewForConfig(c.AdminConfig())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), registrationTimeout)
	defer cancel()
	rc := c.rawClient(t)
	var last string
	for {
		cur, err := dc.Resource(apiServiceGVR).Get(ctx, TapAPIServiceName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
		} else if status, msg := availableCondition(cur); status != "True" {
			last = fmt.Sprintf("Available=%s: %s", status, msg)
		} else if err := rc.Get().AbsPath("/apis", TapGroup, TapVersion).Do(ctx).Error(); err != nil {
			last = "Available=True but GET through the aggregator failed: " + err.Error()
		} else {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not available after %s: %s", registrationTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func availableCondition(u *unstructured.Unstructured) (status, message string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Available" {
			continue
		}
		s, _ := m["status"].(string)
		reason, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		return s, strings.TrimSpace(reason + " " + msg)
	}
	return "Unknown", "no Available condition yet"
}

// GrantTap gives user the right Linkerd's tap needs on resource (plural,
// e.g. "deployments" or "namespaces") in namespace ns: verb watch on
// tap.linkerd.io <resource>/tap, through a Role and RoleBinding named
// tapgate-e2e-<user>-<resource>. It returns once the grant is in force.
func (c *Cluster) GrantTap(t testing.TB, ns, user, resource string) {
	t.Helper()
	cs := c.Clientset(t, UserAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), registrationTimeout)
	defer cancel()
	c.ensureNamespace(t, cs, ns)
	name := "tapgate-e2e-" + user + "-" + resource
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{TapGroup},
			Resources: []string{resource + "/tap"},
			Verbs:     []string{"watch"},
		}},
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("e2e cluster: create role %s/%s: %v", ns, name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("e2e cluster: create rolebinding %s/%s: %v", ns, name, err)
	}
	// The RBAC authorizer reads roles from an informer cache: wait until
	// the grant is in force, or the next request may still be denied.
	if err := c.WaitAllowed(ctx, user, authorizationv1.ResourceAttributes{
		Namespace: ns, Verb: "watch", Group: TapGroup, Resource: resource, Subresource: "tap",
	}); err != nil {
		t.Fatalf("e2e cluster: GrantTap: %v", err)
	}
}

// WaitAllowed waits until the apiserver authorizes user for attrs (a
// SubjectAccessReview says allowed). RBAC changes take effect through an
// informer cache, a moment after the Role or RoleBinding is written.
func (c *Cluster) WaitAllowed(ctx context.Context, user string, attrs authorizationv1.ResourceAttributes) error {
	cs, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		return err
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &attrs}}
	var last string
	for {
		res, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case res.Status.Allowed:
			return nil
		default:
			last = "denied: " + res.Status.Reason
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is still not allowed to %s %s/%s in %q (last: %s)", user, attrs.Verb, attrs.Resource, attrs.Subresource, attrs.Namespace, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) ensureNamespace(t testing.TB, cs kubernetes.Interface, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), registrationTimeout)
	defer cancel()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("e2e cluster: create namespace %s: %v", ns, err)
	}
}

// NewNamespace creates a namespace named prefix-N that no earlier test of
// this process used: on a shared cluster (and with -count) fixed names
// collide, and namespaces never finish deleting without a controller-manager.
func (c *Cluster) NewNamespace(t testing.TB, prefix string) string {
	t.Helper()
	c.ipMu.Lock()
	c.nsSeq++
	ns := fmt.Sprintf("%s-%d", prefix, c.nsSeq)
	c.ipMu.Unlock()
	c.ensureNamespace(t, c.Clientset(t, UserAdmin), ns)
	return ns
}
