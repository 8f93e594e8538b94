package prom

import (
	"strings"
	"testing"

	"github.com/tapgate/tapgate/gate"
)

func TestSelectorFor(t *testing.T) {
	res := func(typ, name, ns string) gate.ResourceRef {
		return gate.ResourceRef{Type: typ, Name: name, Namespace: ns}
	}
	in, out := gate.Inbound, gate.Outbound
	long := strings.Repeat("a", 60)
	cases := []struct {
		name  string
		t     gate.Target
		want  string
		notes []string // substrings, one per note
	}{
		{"deployment inbound", gate.Target{Resource: res("deployment", "web", "prod"), Direction: in},
			`direction="inbound",namespace="prod",deployment="web"`, nil},
		{"any direction sums both sides", gate.Target{Resource: res("deployment", "web", "prod")},
			`direction=~"inbound|outbound",namespace="prod",deployment="web"`, nil},
		{"outbound", gate.Target{Resource: res("statefulset", "db", "prod"), Direction: out},
			`direction="outbound",namespace="prod",statefulset="db"`, nil},
		{"daemonset", gate.Target{Resource: res("daemonset", "agent", "kube-system"), Direction: in},
			`direction="inbound",namespace="kube-system",daemonset="agent"`, nil},
		{"replicationcontroller", gate.Target{Resource: res("replicationcontroller", "old", "prod"), Direction: in},
			`direction="inbound",namespace="prod",replicationcontroller="old"`, nil},
		{"cronjob", gate.Target{Resource: res("cronjob", "nightly", "prod"), Direction: in},
			`direction="inbound",namespace="prod",cronjob="nightly"`, nil},
		{"job by its pods' job-name label", gate.Target{Resource: res("job", "migrate", "prod"), Direction: in},
			`direction="inbound",namespace="prod",job_name="migrate"`, nil},
		{"pod", gate.Target{Resource: res("pod", "web-7d4-x2x9k", "prod"), Direction: in},
			`direction="inbound",namespace="prod",pod="web-7d4-x2x9k"`, nil},
		{"replicaset by its pods' names", gate.Target{Resource: res("replicaset", "web-7d4f9c", "prod"), Direction: in},
			`direction="inbound",namespace="prod",pod=~"web-7d4f9c-[a-z0-9]{5}"`, nil},
		{"replicaset with a long name", gate.Target{Resource: res("replicaset", long, "prod"), Direction: in},
			`direction="inbound",namespace="prod",pod=~"` + long[:58] + `[a-z0-9]{5}"`, nil},
		{"replicaset name with dots", gate.Target{Resource: res("replicaset", "web.v2-abc", "prod"), Direction: in},
			`direction="inbound",namespace="prod",pod=~"web\\.v2-abc-[a-z0-9]{5}"`, nil},
		{"namespace", gate.Target{Resource: res("namespace", "prod", "prod"), Direction: in},
			`direction="inbound",namespace="prod"`, nil},
		{"to a deployment", gate.Target{Resource: res("deployment", "web", "prod"), To: res("deployment", "api", "backend")},
			`direction="outbound",namespace="prod",deployment="web",dst_namespace="backend",dst_deployment="api"`, nil},
		{"to a service", gate.Target{Resource: res("deployment", "web", "prod"), To: res("service", "api", "prod"), Direction: out},
			`direction="outbound",namespace="prod",deployment="web",dst_namespace="prod",dst_service="api"`, nil},
		{"to a namespace", gate.Target{Resource: res("deployment", "web", "prod"), To: res("namespace", "db", "db")},
			`direction="outbound",namespace="prod",deployment="web",dst_namespace="db"`, nil},
		{"to a job", gate.Target{Resource: res("deployment", "web", "prod"), To: res("job", "batch", "prod")},
			`direction="outbound",namespace="prod",deployment="web",dst_namespace="prod",dst_k8s_job="batch"`, nil},
		{"to a replicaset", gate.Target{Resource: res("deployment", "web", "prod"), To: res("replicaset", "api-6f9", "prod")},
			`direction="outbound",namespace="prod",deployment="web",dst_namespace="prod",dst_pod=~"api-6f9-[a-z0-9]{5}"`, nil},
		{"inbound with to", gate.Target{Resource: res("deployment", "web", "prod"), To: res("service", "web", "prod"), Direction: in},
			`direction="inbound",namespace="prod",deployment="web"`, []string{"to: service/web cannot narrow the proxies' inbound counters"}},
		{"label selector", gate.Target{Resource: res("deployment", "web", "prod"), Direction: in,
			LabelSelector: "rollouts-pod-template-hash=6f9c, app.kubernetes.io/name==web, track!=canary, zone in (a,b.c), tier notin (x), linkerd.io/proxy-deployment=web, linkerd.io/control-plane-ns, !legacy"},
			// labels.Parse sorts the terms by key (as written).
			`direction="inbound",namespace="prod",deployment="web",app_kubernetes_io_name="web",legacy="",control_plane_ns!="",deployment="web",rollouts_pod_template_hash="6f9c",tier!~"x",track!="canary",zone=~"a|b\\.c"`, nil},
		{"label selector terms that cannot be mapped", gate.Target{Resource: res("deployment", "web", "prod"), Direction: in,
			LabelSelector: "namespace=x,version>3,app=web"},
			`direction="inbound",namespace="prod",deployment="web",app="web"`, []string{"namespace=x", "version>3"}},
		{"tap match", gate.Target{Resource: res("deployment", "web", "prod"), Direction: in, Match: gate.HTTPMatch{Method: "POST", PathPrefix: "/api"}},
			`direction="inbound",namespace="prod",deployment="web"`, []string{"tap match (method POST, path prefix /api): the totals count all of the target's requests, so volume coverage reads low"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, notes, err := selectorFor(tc.t)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("selector\n got %s\nwant %s", got, tc.want)
			}
			if len(notes) != len(tc.notes) {
				t.Fatalf("notes %q, want %d", notes, len(tc.notes))
			}
			for i, n := range tc.notes {
				if !strings.Contains(notes[i], n) {
					t.Errorf("note %q lacks %q", notes[i], n)
				}
			}
		})
	}
}

func TestSelectorForErrors(t *testing.T) {
	for _, tg := range []gate.Target{
		{Name: "replay-only"},
		{Name: "svc", Resource: gate.ResourceRef{Type: "service", Name: "web", Namespace: "prod"}},
		{Name: "bad", Resource: gate.ResourceRef{Type: "deployment", Name: "web", Namespace: "prod"}, LabelSelector: "a=(b"},
	} {
		if _, _, err := selectorFor(tg); err == nil || !strings.Contains(err.Error(), tg.Name) {
			t.Errorf("%s: err = %v, want one naming the target", tg.Name, err)
		}
	}
}
