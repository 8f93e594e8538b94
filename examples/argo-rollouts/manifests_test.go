// Package argorollouts_test checks the Argo Rollouts example offline: the
// AnalysisTemplate's Job spec and the Rollout's pod template decode strictly
// into their Kubernetes types, the argument flows from the Rollout into the
// gate's label selector, and the Job is never retried. Validation against
// Argo's CRDs is a server-side dry run in the end-to-end tier.
package argorollouts_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/tapgate/tapgate/gate/policy"
)

type analysisTemplate struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec struct {
		Args []struct {
			Name string `yaml:"name"`
		} `yaml:"args"`
		Metrics []struct {
			Name         string `yaml:"name"`
			Count        int    `yaml:"count"`
			FailureLimit *int   `yaml:"failureLimit"`
			Provider     struct {
				Job *struct {
					Metadata map[string]any `yaml:"metadata"`
					Spec     map[string]any `yaml:"spec"`
				} `yaml:"job"`
			} `yaml:"provider"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

type rollout struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas             int `yaml:"replicas"`
		RevisionHistoryLimit int `yaml:"revisionHistoryLimit"`
		Selector             struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template map[string]any `yaml:"template"`
		Strategy struct {
			Canary struct {
				Steps []struct {
					SetWeight *int           `yaml:"setWeight"`
					Pause     map[string]any `yaml:"pause"`
					Analysis  *struct {
						Templates []struct {
							TemplateName string `yaml:"templateName"`
						} `yaml:"templates"`
						Args []struct {
							Name      string `yaml:"name"`
							Value     string `yaml:"value"`
							ValueFrom *struct {
								PodTemplateHashValue string `yaml:"podTemplateHashValue"`
							} `yaml:"valueFrom"`
						} `yaml:"args"`
					} `yaml:"analysis"`
				} `yaml:"steps"`
			} `yaml:"canary"`
		} `yaml:"strategy"`
	} `yaml:"spec"`
}

// decodeStrict decodes one YAML document, failing on unknown fields.
func decodeStrict(t *testing.T, file string, into any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: more than one document", file)
	}
}

// asKube re-decodes a generic map into a Kubernetes type through JSON,
// rejecting unknown fields, as the API server's strict validation does.
func asKube(t *testing.T, what string, v any, into any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

var argRef = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}`)

func TestArgoManifests(t *testing.T) {
	var at analysisTemplate
	decodeStrict(t, "analysis-template.yaml", &at)
	var ro rollout
	decodeStrict(t, "rollout.yaml", &ro)

	if at.APIVersion != "argoproj.io/v1alpha1" || at.Kind != "AnalysisTemplate" {
		t.Errorf("template is %s %s", at.APIVersion, at.Kind)
	}
	if ro.APIVersion != "argoproj.io/v1alpha1" || ro.Kind != "Rollout" {
		t.Errorf("rollout is %s %s", ro.APIVersion, ro.Kind)
	}
	if at.Metadata.Namespace != ro.Metadata.Namespace {
		t.Errorf("template in %q, rollout in %q", at.Metadata.Namespace, ro.Metadata.Namespace)
	}
	var declared []string
	for _, a := range at.Spec.Args {
		declared = append(declared, a.Name)
	}
	if len(at.Spec.Metrics) != 1 || at.Spec.Metrics[0].Provider.Job == nil {
		t.Fatal("want one metric with the job provider")
	}
	m := at.Spec.Metrics[0]
	if m.Count != 1 || m.FailureLimit == nil || *m.FailureLimit != 0 {
		t.Errorf("metric count %d failureLimit %v: one run, and its failure fails the analysis", m.Count, m.FailureLimit)
	}

	// The Job spec must be a valid batch/v1 JobSpec once the argument is
	// substituted.
	raw, _ := json.Marshal(m.Provider.Job.Spec)
	used := argRef.FindAllStringSubmatch(string(raw), -1)
	if len(used) == 0 {
		t.Error("the Job does not use any argument")
	}
	for _, u := range used {
		if !slices.Contains(declared, u[1]) {
			t.Errorf("{{args.%s}} is not declared in spec.args", u[1])
		}
	}
	var spec batchv1.JobSpec
	asKube(t, "analysis-template.yaml job spec", json.RawMessage(argRef.ReplaceAll(raw, []byte("0123456789"))), &spec)
	if spec.BackoffLimit == nil || *spec.BackoffLimit != 0 {
		t.Error("backoffLimit must be 0: a gate is never retried")
	}
	if spec.ActiveDeadlineSeconds == nil || spec.TTLSecondsAfterFinished == nil {
		t.Error("activeDeadlineSeconds and ttlSecondsAfterFinished are required")
	}
	pod := spec.Template.Spec
	if spec.Template.Annotations["linkerd.io/inject"] != "disabled" {
		t.Error("the gate Job must not be meshed")
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q", pod.RestartPolicy)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
		t.Error("the gate runs as uid 65532")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	// After substitution the selector names the canary's hash.
	args := " " + strings.Join(pod.Containers[0].Args, " ") + " "
	for _, want := range []string{
		" -l app=checkout,rollouts-pod-template-hash=0123456789 ",
		" --on-inconclusive fail ",
		" --policy /policy/gate.yaml ",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("gate args %q lack %q", args, want)
		}
	}

	// The policy in the ConfigMap parses.
	var cm corev1.ConfigMap
	var cmDoc map[string]any
	decodeStrict(t, "policy-configmap.yaml", &cmDoc)
	asKube(t, "policy-configmap.yaml", cmDoc, &cm)
	if _, err := policy.Parse("policy-configmap.yaml:gate.yaml", []byte(cm.Data["gate.yaml"])); err != nil {
		t.Errorf("policy: %v", err)
	}
	if len(pod.Volumes) == 0 || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != cm.Name {
		t.Errorf("the Job does not mount ConfigMap %s", cm.Name)
	}

	// The Rollout: a valid pod template matching its selector, meshed, and
	// an analysis step passing the canary's hash to the template.
	var tmpl corev1.PodTemplateSpec
	asKube(t, "rollout.yaml template", ro.Spec.Template, &tmpl)
	for k, v := range ro.Spec.Selector.MatchLabels {
		if tmpl.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the template labels %v", k, v, tmpl.Labels)
		}
	}
	if tmpl.Annotations["linkerd.io/inject"] != "enabled" {
		t.Error("the gated workload must be meshed for tap")
	}
	steps := 0
	for _, s := range ro.Spec.Strategy.Canary.Steps {
		if s.Analysis == nil {
			continue
		}
		steps++
		if len(s.Analysis.Templates) != 1 || s.Analysis.Templates[0].TemplateName != at.Metadata.Name {
			t.Errorf("analysis step templates %+v, want %s", s.Analysis.Templates, at.Metadata.Name)
		}
		var passed []string
		for _, a := range s.Analysis.Args {
			passed = append(passed, a.Name)
			if a.Name == "canary-hash" && (a.ValueFrom == nil || a.ValueFrom.PodTemplateHashValue != "Latest") {
				t.Error("canary-hash must come from podTemplateHashValue: Latest")
			}
		}
		for _, d := range declared {
			if !slices.Contains(passed, d) {
				t.Errorf("analysis step does not pass argument %s", d)
			}
		}
	}
	if steps == 0 {
		t.Error("no analysis step in the canary strategy")
	}
}
