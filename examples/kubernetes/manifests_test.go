// Package kubernetes_test checks the example manifests offline: each
// document decodes strictly (unknown or duplicate fields fail) into its
// Kubernetes type, the objects refer to each other consistently, and the
// Job keeps the properties a gate needs. The server-side dry run against a
// real kube-apiserver is the end-to-end tier's job.
package kubernetes_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/tapgate/tapgate/gate/policy"
)

// decodeAll strictly decodes every YAML document of the files.
func decodeAll(t *testing.T, files ...string) []runtime.Object {
	t.Helper()
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var objs []runtime.Object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufioReader(data))
		for i := 1; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			obj, gvk, err := dec.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if gvk.Version == "" || gvk.Kind == "" {
				t.Errorf("%s: document %d has no apiVersion/kind", f, i)
			}
			objs = append(objs, obj)
		}
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	return out
}

func TestManifests(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var (
		sa   *corev1.ServiceAccount
		cm   *corev1.ConfigMap
		role *rbacv1.Role
		rb   *rbacv1.RoleBinding
		job  *batchv1.Job
	)
	for _, o := range decodeAll(t, files...) {
		switch o := o.(type) {
		case *corev1.ServiceAccount:
			sa = o
		case *corev1.ConfigMap:
			cm = o
		case *rbacv1.Role:
			role = o
		case *rbacv1.RoleBinding:
			rb = o
		case *batchv1.Job:
			job = o
		default:
			t.Errorf("unexpected object %T", o)
		}
	}
	if sa == nil || cm == nil || role == nil || rb == nil || job == nil {
		t.Fatalf("missing objects: sa=%v cm=%v role=%v rolebinding=%v job=%v", sa != nil, cm != nil, role != nil, rb != nil, job != nil)
	}
	ns := job.Namespace
	for _, m := range []struct{ kind, ns string }{{"ServiceAccount", sa.Namespace}, {"ConfigMap", cm.Namespace}, {"Role", role.Namespace}, {"RoleBinding", rb.Namespace}} {
		if m.ns != ns {
			t.Errorf("%s in namespace %q, the Job in %q", m.kind, m.ns, ns)
		}
	}

	// RBAC: watch on the tap subresource, read-only elsewhere, bound to the
	// Job's ServiceAccount.
	var tapWatch bool
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if !slices.Contains([]string{"get", "list", "watch"}, v) {
				t.Errorf("role grants %q on %v: the gate only reads", v, r.Resources)
			}
		}
		if slices.Contains(r.APIGroups, "tap.linkerd.io") {
			if !slices.Equal(r.Verbs, []string{"watch"}) {
				t.Errorf("tap rule verbs %v, want [watch]", r.Verbs)
			}
			for _, res := range r.Resources {
				// "tap" alone is how the apiserver names a namespace tap.
				if !strings.HasSuffix(res, "/tap") && res != "tap" {
					t.Errorf("tap rule resource %q is not a /tap subresource", res)
				}
			}
			tapWatch = slices.Contains(r.Resources, "deployments/tap")
		} else if slices.Contains(r.Verbs, "watch") {
			t.Errorf("watch granted on %v: only tap needs it", r.Resources)
		}
	}
	if !tapWatch {
		t.Error("role does not grant watch on tap.linkerd.io deployments/tap")
	}
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name {
		t.Errorf("rolebinding refers to %s/%s", rb.RoleRef.Kind, rb.RoleRef.Name)
	}
	if len(rb.Subjects) != 1 || rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != sa.Name || rb.Subjects[0].Namespace != ns {
		t.Errorf("rolebinding subjects %+v", rb.Subjects)
	}

	// The Job.
	spec := job.Spec
	pod := spec.Template.Spec
	if spec.BackoffLimit == nil || *spec.BackoffLimit != 0 {
		t.Error("backoffLimit must be 0: a gate is never retried")
	}
	var failsOn []int32
	if spec.PodFailurePolicy != nil {
		for _, r := range spec.PodFailurePolicy.Rules {
			if r.Action == batchv1.PodFailurePolicyActionFailJob && r.OnExitCodes != nil && r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn {
				failsOn = append(failsOn, r.OnExitCodes.Values...)
			}
		}
	}
	for _, c := range []int32{1, 2, 3} {
		if !slices.Contains(failsOn, c) {
			t.Errorf("podFailurePolicy does not fail the Job on exit code %d", c)
		}
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q, want Never", pod.RestartPolicy)
	}
	if spec.TTLSecondsAfterFinished == nil {
		t.Error("no ttlSecondsAfterFinished")
	}
	if got := spec.Template.Annotations["linkerd.io/inject"]; got != "disabled" {
		t.Errorf("linkerd.io/inject = %q: a meshed Job never completes", got)
	}
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, sa.Name)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod must run as non-root uid 65532")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container must have a read-only root filesystem and no privilege escalation")
	}
	if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("terminationMessagePolicy %q", c.TerminationMessagePolicy)
	}
	// Reports go to a writable emptyDir; the policy comes from the ConfigMap.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	var policyPath string
	for i, a := range c.Args {
		if a == "--policy" && i+1 < len(c.Args) {
			policyPath = c.Args[i+1]
		}
		if strings.HasPrefix(a, "json=") || strings.HasPrefix(a, "junit=") || strings.HasPrefix(a, "markdown=") {
			_, p, _ := strings.Cut(a, "=")
			if v, ok := vols[mounts[filepath.Dir(p)]]; !ok || v.EmptyDir == nil {
				t.Errorf("report %s is not on an emptyDir mount", p)
			}
		}
	}
	pv, ok := vols[mounts[filepath.Dir(policyPath)]]
	if !ok || pv.ConfigMap == nil || pv.ConfigMap.Name != cm.Name {
		t.Fatalf("--policy %q is not on the ConfigMap %s", policyPath, cm.Name)
	}
	data, ok := cm.Data[filepath.Base(policyPath)]
	if !ok {
		t.Fatalf("ConfigMap has no key %s", filepath.Base(policyPath))
	}
	p, err := policy.Parse("policy-configmap.yaml:"+filepath.Base(policyPath), []byte(data))
	if err != nil {
		t.Fatalf("the ConfigMap's policy is invalid: %v", err)
	}
	if spec.ActiveDeadlineSeconds == nil {
		t.Fatal("no activeDeadlineSeconds")
	}
	deadline := time.Duration(*spec.ActiveDeadlineSeconds) * time.Second
	if need := p.Window + p.Warmup + 30*time.Second; deadline < need {
		t.Errorf("activeDeadlineSeconds %v is below window %v + warmup %v + 30s of start-up", deadline, p.Window, p.Warmup)
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
