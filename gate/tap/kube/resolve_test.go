package kube

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tapgate/tapgate/gate"
)

func deployment(name string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "prod"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
	}
}

type podOpt func(*corev1.Pod)

func meshed(p *corev1.Pod) {
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "linkerd-proxy"})
}
func annotatedMeshed(p *corev1.Pod) { p.Annotations["linkerd.io/proxy-version"] = "edge-25.1.1" }
func tapOff(p *corev1.Pod)          { p.Annotations["config.linkerd.io/disable-tap"] = "true" }
func pending(p *corev1.Pod)         { p.Status.Phase = corev1.PodPending }
func label(k, v string) podOpt      { return func(p *corev1.Pod) { p.Labels[k] = v } }

func pod(name, app string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "prod", Labels: map[string]string{"app": app}, Annotations: map[string]string{}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func TestResolve(t *testing.T) {
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "prod"}},
		deployment("web"), deployment("plain"), deployment("quiet"), deployment("empty"), deployment("starting"),
		pod("web-1", "web", meshed, label("track", "canary")), pod("web-2", "web", meshed), pod("web-3", "web", annotatedMeshed),
		pod("other", "api", meshed),
		pod("plain-1", "plain"), pod("plain-2", "plain"),
		pod("quiet-1", "quiet", meshed, tapOff), pod("quiet-2", "quiet", meshed, tapOff),
		pod("starting-1", "starting", meshed, pending),
	}
	cs := fake.NewClientset(objs...)
	dep := func(name string) gate.Target {
		return gate.Target{Resource: gate.ResourceRef{Type: "deploy", Name: name}}
	}
	tests := []struct {
		name   string
		target gate.Target
		want   Resolved // compared when kind == 0 or NoPods
		kind   ErrorKind
		msg    []string
	}{
		{name: "three meshed pods", target: dep("web"),
			want: Resolved{Type: "deployment", Name: "web", Namespace: "prod", Pods: 3, Meshed: 3, Running: 3, Tappable: 3}},
		{name: "label selector narrows", target: gate.Target{Resource: dep("web").Resource, LabelSelector: "track=canary"},
			want: Resolved{Type: "deployment", Name: "web", Namespace: "prod", Pods: 1, Meshed: 1, Running: 1, Tappable: 1}},
		{name: "namespace", target: gate.Target{Resource: gate.ResourceRef{Type: "ns", Name: "prod"}},
			want: Resolved{Type: "namespace", Name: "prod", Pods: 9, Meshed: 7, TapDisabled: 2, Running: 8, Tappable: 4}},
		{name: "pod", target: gate.Target{Resource: gate.ResourceRef{Type: "po", Name: "web-2"}},
			want: Resolved{Type: "pod", Name: "web-2", Namespace: "prod", Pods: 1, Meshed: 1, Running: 1, Tappable: 1}},
		{name: "to a service", target: gate.Target{Resource: dep("web").Resource, To: gate.ResourceRef{Type: "svc", Name: "api"}},
			want: Resolved{Type: "deployment", Name: "web", Namespace: "prod", Pods: 3, Meshed: 3, Running: 3, Tappable: 3}},
		{name: "unmeshed", target: dep("plain"), kind: NoPods,
			want: Resolved{Type: "deployment", Name: "plain", Namespace: "prod", Pods: 2, Running: 2},
			msg:  []string{"has 2 pod(s) but none is meshed", "linkerd inject"}},
		{name: "tap disabled", target: dep("quiet"), kind: NoPods,
			want: Resolved{Type: "deployment", Name: "quiet", Namespace: "prod", Pods: 2, Meshed: 2, TapDisabled: 2, Running: 2},
			msg:  []string{"have tap disabled", "remove the config.linkerd.io/disable-tap annotation"}},
		{name: "no pods", target: dep("empty"), kind: NoPods,
			want: Resolved{Type: "deployment", Name: "empty", Namespace: "prod"},
			msg:  []string{"has no pods", "scaled to zero"}},
		{name: "not running", target: dep("starting"), kind: NoPods,
			want: Resolved{Type: "deployment", Name: "starting", Namespace: "prod", Pods: 1, Meshed: 1},
			msg:  []string{"none is running"}},
		{name: "missing", target: dep("ghost"), kind: NotFound,
			msg: []string{`deployment "ghost" not found in namespace "prod"`, "kubectl get deploy -n prod"}},
		{name: "missing namespace", target: gate.Target{Resource: gate.ResourceRef{Type: "ns", Name: "nope"}}, kind: NotFound,
			msg: []string{`namespace "nope" not found`, "kubectl get ns"}},
		{name: "missing destination", target: gate.Target{Resource: dep("web").Resource, To: gate.ResourceRef{Type: "svc", Name: "gone"}}, kind: NotFound,
			msg: []string{`destination service "gone" not found in namespace "prod"`, "kubectl get svc -n prod"}},
		{name: "bad selector", target: gate.Target{Resource: dep("web").Resource, LabelSelector: "a in ("}, kind: BadTarget,
			msg: []string{`label selector "a in ("`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Resolve(context.Background(), cs, tc.target, "prod")
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("Resolve = %v", err)
				}
			} else {
				var ke *Error
				if !errors.As(err, &ke) || ke.Kind != tc.kind {
					t.Fatalf("Resolve error = %v, want kind %v", err, tc.kind)
				}
				for _, m := range tc.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error lacks %q:\n%v", m, err)
					}
				}
			}
			if tc.kind == 0 || tc.kind == NoPods {
				if r == nil {
					t.Fatalf("Resolved = nil")
				}
				if len(r.TappableNames) != r.Tappable {
					t.Errorf("TappableNames %q, Tappable %d", r.TappableNames, r.Tappable)
				}
				got := *r
				got.TappableNames = nil
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("Resolved = %+v\nwant %+v", r, &tc.want)
				}
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	kc := `apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster: {server: "https://one.example:6443"}
- name: c2
  cluster: {server: "https://two.example:6443"}
users:
- name: u
  user: {token: "secret-token"}
contexts:
- name: one
  context: {cluster: c1, user: u, namespace: team-a}
- name: two
  context: {cluster: c2, user: u}
current-context: one
`
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      string
		o        ClientOptions
		host, ns string
	}{
		{"explicit path, current context", "", ClientOptions{Kubeconfig: path}, "https://one.example:6443", "team-a"},
		{"KUBECONFIG", path, ClientOptions{}, "https://one.example:6443", "team-a"},
		{"context without namespace", path, ClientOptions{Context: "two"}, "https://two.example:6443", "default"},
		{"-n wins", path, ClientOptions{Namespace: "ops"}, "https://one.example:6443", "ops"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.env)
			cfg, ns, err := LoadConfig(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tc.host || ns != tc.ns || cfg.BearerToken != "secret-token" {
				t.Errorf("host %q ns %q, want %q %q", cfg.Host, ns, tc.host, tc.ns)
			}
		})
	}
	t.Run("unknown context", func(t *testing.T) {
		t.Setenv("KUBECONFIG", path)
		if _, _, err := LoadConfig(ClientOptions{Context: "nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("LoadConfig = %v, want an error naming the context", err)
		}
	})
}

// TestRunPreCheck: with a clientset, Run reports a missing target before
// tapping, and a pre-check it may not perform (RBAC) does not stop the tap.
func TestRunPreCheck(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(403)
		io.WriteString(w, statusJSON(403, metav1.StatusReasonForbidden, "denied"))
	}))
	defer srv.Close()

	cs := fake.NewClientset(deployment("web"), pod("web-1", "web", meshed))
	src, err := NewSource(tlsConfig(srv, ""), cs, []gate.Target{{Resource: gate.ResourceRef{Type: "deploy", Name: "ghost"}}}, "prod", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(guardCtx(t), newRecorder())
	var ke *Error
	if !errors.As(err, &ke) || ke.Kind != NotFound || hits.Load() != 0 {
		t.Fatalf("Run = %v after %d tap requests, want NotFound before any", err, hits.Load())
	}

	denied := fake.NewClientset()
	denied.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("no RBAC"))
	})
	rec := newRecorder()
	src, err = NewSource(tlsConfig(srv, ""), denied, []gate.Target{{Resource: gate.ResourceRef{Type: "deploy", Name: "web"}}}, "prod", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(guardCtx(t), rec)
	if !errors.As(err, &ke) || ke.Kind != Forbidden || hits.Load() != 1 || !strings.Contains(rec.notesText(), "could not pre-check") {
		t.Fatalf("Run = %v after %d tap requests, notes %q; want the tap's own Forbidden", err, hits.Load(), rec.notesText())
	}
}

func guardCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	t.Cleanup(cancel)
	return ctx
}

// TestPodChurn replaces the target's pod while it is tapped: Linkerd taps
// only the pods that existed when the tap began, so the source must notice
// and re-open the tap, and say so in the report.
func TestPodChurn(t *testing.T) {
	evs := sampleEvents()
	srv, n := scripted(t, []step{{events: evs[:1]}, {events: evs[1:2]}})
	defer srv.Close()
	cs := fake.NewClientset(deployment("web"), pod("web-1", "web", meshed))
	src, err := NewSource(tlsConfig(srv, ""), cs, []gate.Target{{Resource: gate.ResourceRef{Type: "deploy", Name: "web"}}}, "prod",
		Options{PodPoll: 10 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(guardCtx(t))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()
	rec.wait(t, 1)
	if err := cs.CoreV1().Pods("prod").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("prod").Create(ctx, pod("web-2", "web", meshed), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1) // the event of the re-opened tap
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	notes := rec.notesText()
	if !strings.Contains(notes, "1 new (web-2), 1 gone (web-1)") || !strings.Contains(notes, "re-open") {
		t.Errorf("pod change not reported:\n%s", notes)
	}
	if *n < 2 {
		t.Errorf("%d tap requests; the tap should have been re-opened", *n)
	}
	if strings.Contains(notes, "broke after") {
		t.Errorf("a deliberate re-open reported as a broken stream:\n%s", notes)
	}
}
