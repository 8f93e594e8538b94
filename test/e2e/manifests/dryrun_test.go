package manifests_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tapgate/tapgate/gate/policy"
	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// TestExamplesServerSideDryRun creates every example document with a
// server-side dry run and strict field validation, one fresh namespace per
// example directory, then checks the gate Jobs as the server returned them.
func TestExamplesServerSideDryRun(t *testing.T) {
	c := cluster.Shared(t)
	sets := loadExamples(t)
	for _, dir := range slices.Sorted(maps.Keys(sets)) {
		docs := sets[dir]
		t.Run(path.Base(dir), func(t *testing.T) {
			s := newServer(t, c)
			if needsArgo(docs) {
				installArgoRolloutsCRDs(t, s)
			}
			ns := restrictedNamespace(t, c, "examples-"+path.Base(dir))
			var accepted []*unstructured.Unstructured
			var jobs []document // the gate Jobs, as the server returned them
			for _, d := range docs {
				t.Run(d.name(), func(t *testing.T) {
					got := dryRun(t, s, d, ns)
					if got == nil {
						return
					}
					accepted = append(accepted, got)
					switch got.GetKind() {
					case "Job":
						jobs = append(jobs, document{file: d.file, index: d.index, obj: got})
					case "AnalysisTemplate":
						// What Argo Rollouts' job provider creates from it
						// must be a valid Job as well.
						for _, j := range analysisJobs(t, got) {
							jd := document{file: d.file + " (its job provider's Job)", index: d.index, obj: j}
							if got := dryRun(t, s, jd, ns); got != nil {
								jobs = append(jobs, document{file: jd.file, index: jd.index, obj: got})
							}
						}
					}
				})
			}
			if t.Failed() {
				return
			}
			for _, j := range jobs {
				t.Run("gate-job/"+j.name(), func(t *testing.T) {
					t.Logf("checking %s", j)
					checkGateJob(t, j.obj, accepted)
				})
			}
		})
	}
}

// dryRun creates d with a dry run in ns and returns what the server
// returned, or nil after reporting the rejection (or a warning) with the
// file and document index.
func dryRun(t *testing.T, s *server, d document, ns string) *unstructured.Unstructured {
	t.Helper()
	got, warns, err := s.create(d.obj, ns, true)
	if err != nil {
		t.Errorf("%s: rejected by kube-apiserver %s (server-side dry run, strict field validation): %v", d, cluster.KubeVersion, err)
		return nil
	}
	for _, w := range warns {
		t.Errorf("%s: kube-apiserver %s accepted it with a warning: %s", d, cluster.KubeVersion, w)
	}
	return got
}

// argRef is an Argo Rollouts template argument reference.
var argRef = regexp.MustCompile(`\{\{\s*args\.[A-Za-z0-9_.-]+\s*\}\}`)

// sampleHash stands in for an argument's value: the examples pass the
// canary's pod-template hash, and a hash is a valid label value.
const sampleHash = "5d4f8c9b7"

// analysisJobs returns the Jobs Argo Rollouts' job provider creates for an
// AnalysisTemplate's job metrics: the metric's job metadata and spec, with
// the {{args.NAME}} references substituted (Argo resolves them before the
// provider runs) and a generated name in place of Argo's.
func analysisJobs(t *testing.T, tmpl *unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	metrics, _, _ := unstructured.NestedSlice(tmpl.Object, "spec", "metrics")
	var jobs []*unstructured.Unstructured
	for _, m := range metrics {
		mm, _ := m.(map[string]any)
		job, ok, _ := unstructured.NestedMap(mm, "provider", "job")
		if !ok {
			continue
		}
		name, _ := mm["name"].(string)
		meta, _ := job["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		meta["generateName"] = tmpl.GetName() + "-" + name + "-"
		raw, err := json.Marshal(map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job["spec"]})
		if err != nil {
			t.Fatal(err)
		}
		raw = argRef.ReplaceAll(raw, []byte(sampleHash))
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			t.Fatalf("AnalysisTemplate %s metric %s: %v", tmpl.GetName(), name, err)
		}
		jobs = append(jobs, u)
	}
	if len(jobs) == 0 {
		t.Errorf("AnalysisTemplate %s has no job metric", tmpl.GetName())
	}
	return jobs
}

// checkGateJob checks what a gate Job needs, on the Job as the server
// returned it: never retried on the gate's verdict, a deadline beyond the
// policy's window and warmup, garbage-collected, not meshed, non-root on a
// read-only root filesystem. objs are the other objects of its example, where
// its policy's ConfigMap is.
func checkGateJob(t *testing.T, u *unstructured.Unstructured, objs []*unstructured.Unstructured) {
	var job batchv1.Job
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &job, true); err != nil {
		t.Fatalf("the server's Job does not decode: %v", err)
	}
	spec, pod := job.Spec, job.Spec.Template.Spec

	// A retry re-samples live traffic until a sample happens to be green.
	if (spec.BackoffLimit == nil || *spec.BackoffLimit != 0) && !failsJobOn(spec.PodFailurePolicy, 1, 2, 3) {
		t.Errorf("backoffLimit %v and no podFailurePolicy failing the Job on exit codes 1, 2 and 3: a gate's verdict would be retried", deref(spec.BackoffLimit))
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q, want Never", pod.RestartPolicy)
	}
	if spec.TTLSecondsAfterFinished == nil {
		t.Error("no ttlSecondsAfterFinished: finished gates are never collected")
	}
	if got := spec.Template.Annotations["linkerd.io/inject"]; got != "disabled" {
		t.Errorf("pod annotation linkerd.io/inject = %q, want disabled: a meshed Job never completes", got)
	}
	if len(pod.Containers) == 0 {
		t.Fatal("no containers")
	}
	for _, c := range pod.Containers {
		nonRoot := pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot
		if c.SecurityContext != nil && c.SecurityContext.RunAsNonRoot != nil {
			nonRoot = *c.SecurityContext.RunAsNonRoot
		}
		if !nonRoot {
			t.Errorf("container %s may run as root: set runAsNonRoot", c.Name)
		}
		if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s has a writable root filesystem", c.Name)
		}
	}

	// The deadline must let the policy's window (after its warmup) close.
	gate := pod.Containers[0]
	window, warmup, where := gateTiming(t, gate, pod, objs)
	if spec.ActiveDeadlineSeconds == nil {
		t.Fatal("no activeDeadlineSeconds: a stuck gate would hang the pipeline")
	}
	if deadline := time.Duration(*spec.ActiveDeadlineSeconds) * time.Second; deadline <= window+warmup {
		t.Errorf("activeDeadlineSeconds %v is not above window %v + warmup %v of %s: the deadline interrupts the gate before the window closes", deadline, window, warmup, where)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

func failsJobOn(p *batchv1.PodFailurePolicy, codes ...int32) bool {
	if p == nil {
		return false
	}
	var fails []int32
	for _, r := range p.Rules {
		if r.Action == batchv1.PodFailurePolicyActionFailJob && r.OnExitCodes != nil && r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn {
			fails = append(fails, r.OnExitCodes.Values...)
		}
	}
	for _, c := range codes {
		if !slices.Contains(fails, c) {
			return false
		}
	}
	return true
}

// gateTiming returns the window and warmup the gate container runs with:
// the policy file its --policy flag names, read from the ConfigMap mounted
// there, overridden by --window and --warmup flags.
func gateTiming(t *testing.T, c corev1.Container, pod corev1.PodSpec, objs []*unstructured.Unstructured) (window, warmup time.Duration, where string) {
	t.Helper()
	flags := map[string]string{}
	for i := 0; i < len(c.Args); i++ {
		a := c.Args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !ok && i+1 < len(c.Args) && !strings.HasPrefix(c.Args[i+1], "-") {
			val = c.Args[i+1]
		}
		flags[name] = val
	}
	file := flags["policy"]
	if file == "" {
		file = flags["p"]
	}
	if file == "" {
		t.Fatalf("container %s: no --policy in %q", c.Name, c.Args)
	}
	var volume string
	for _, m := range c.VolumeMounts {
		if m.MountPath == filepath.Dir(file) {
			volume = m.Name
		}
	}
	var cmName string
	for _, v := range pod.Volumes {
		if v.Name == volume && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	if cmName == "" {
		t.Fatalf("container %s: --policy %s is not on a ConfigMap volume", c.Name, file)
	}
	var data string
	found := false
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == cmName {
			data, found, _ = unstructured.NestedString(o.Object, "data", filepath.Base(file))
		}
	}
	if !found {
		t.Fatalf("container %s: --policy %s: no key %s in a ConfigMap %s of this example", c.Name, file, filepath.Base(file), cmName)
	}
	where = fmt.Sprintf("the policy in ConfigMap %s", cmName)
	p, err := policy.Parse("ConfigMap "+cmName+" key "+filepath.Base(file), []byte(data))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	window, warmup = p.Window, p.Warmup
	for name, d := range map[string]*time.Duration{"window": &window, "warmup": &warmup} {
		if v, ok := flags[name]; ok {
			o, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("container %s: --%s %q: %v", c.Name, name, v, err)
			}
			*d = o
			where += " with --" + name
		}
	}
	return window, warmup, where
}

// TestDryRunRejectsBrokenCopies makes sure the dry run is not vacuous: copies
// of the examples with an unknown field are rejected, for built-in kinds and
// for Argo's CRDs alike (whose schemas must not preserve unknown fields in
// the pod templates), and a gate Job without its securityContext draws the
// Pod Security warning that TestExamplesServerSideDryRun treats as a
// failure.
func TestDryRunRejectsBrokenCopies(t *testing.T) {
	c := cluster.Shared(t)
	sets := loadExamples(t)
	s := newServer(t, c)
	ns := restrictedNamespace(t, c, "examples-broken")

	unknownField := func(t *testing.T, d document, fields ...string) {
		t.Helper()
		obj := d.obj.DeepCopy()
		if err := setInFirst(obj.Object, "bogusField", fields...); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		_, _, err := s.create(obj, ns, true)
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "bogusField") {
			t.Errorf("%s with an unknown field at %s: want a strict-validation error naming it, got %v", d, strings.Join(fields, "."), err)
		}
	}

	job := ofKind(t, sets, "Job")[0]
	t.Run("unknown-field/Job", func(t *testing.T) {
		unknownField(t, job, "spec", "template", "spec", "containers")
	})
	t.Run("pod-security/Job", func(t *testing.T) {
		obj := job.obj.DeepCopy()
		unstructured.RemoveNestedField(obj.Object, "spec", "template", "spec", "securityContext")
		containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			delete(c.(map[string]any), "securityContext")
		}
		_ = unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers")
		_, warns, err := s.create(obj, ns, true)
		if err != nil {
			t.Fatalf("%s without securityContext: %v", job, err)
		}
		if !slices.ContainsFunc(warns, func(w string) bool { return strings.Contains(w, `violate PodSecurity "restricted`) }) {
			t.Errorf("%s without securityContext: no Pod Security warning, got %q", job, warns)
		}
	})

	t.Run("argo", func(t *testing.T) {
		installArgoRolloutsCRDs(t, s)
		t.Run("unknown-field/AnalysisTemplate", func(t *testing.T) {
			unknownField(t, ofKind(t, sets, "AnalysisTemplate")[0],
				"spec", "metrics", "provider", "job", "spec", "template", "spec", "containers")
		})
		t.Run("unknown-field/Rollout", func(t *testing.T) {
			unknownField(t, ofKind(t, sets, "Rollout")[0], "spec", "template", "spec", "containers")
		})
		t.Run("unknown-field/Rollout-step", func(t *testing.T) {
			unknownField(t, ofKind(t, sets, "Rollout")[0], "spec", "strategy", "canary", "steps")
		})
	})
}

// setInFirst sets key in the map at path, descending into the first element
// of every list on the way.
func setInFirst(obj map[string]any, key string, path ...string) error {
	var cur any = obj
	for _, p := range path {
		if l, ok := cur.([]any); ok {
			if len(l) == 0 {
				return fmt.Errorf("empty list before %s", p)
			}
			cur = l[0]
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object", p)
		}
		if cur, ok = m[p]; !ok {
			return fmt.Errorf("no %s", p)
		}
	}
	if l, ok := cur.([]any); ok && len(l) > 0 {
		cur = l[0]
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: not an object", strings.Join(path, "."))
	}
	m[key] = int64(1)
	return nil
}
