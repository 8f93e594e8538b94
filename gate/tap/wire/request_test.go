package wire

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
)

func ref(typ, name, ns string) gate.ResourceRef {
	return gate.ResourceRef{Type: typ, Name: name, Namespace: ns}
}

func TestBuildRequest(t *testing.T) {
	headers := &pb.TapByResourceRequest_Extract{Extract: &pb.TapByResourceRequest_Extract_Http_{
		Http: &pb.TapByResourceRequest_Extract_Http{Extract: &pb.TapByResourceRequest_Extract_Http_Headers_{
			Headers: &pb.TapByResourceRequest_Extract_Http_Headers{}}}}}
	all := func(ms ...*pb.TapByResourceRequest_Match) *pb.TapByResourceRequest_Match {
		if ms == nil {
			ms = []*pb.TapByResourceRequest_Match{}
		}
		return &pb.TapByResourceRequest_Match{Match: &pb.TapByResourceRequest_Match_All{
			All: &pb.TapByResourceRequest_Match_Seq{Matches: ms}}}
	}
	dest := func(typ, name, ns string) *pb.TapByResourceRequest_Match {
		return &pb.TapByResourceRequest_Match{Match: &pb.TapByResourceRequest_Match_Destinations{
			Destinations: &pb.ResourceSelection{Resource: &pb.Resource{Type: typ, Name: name, Namespace: ns}}}}
	}
	sel := func(typ, name, ns, labels string) *pb.ResourceSelection {
		return &pb.ResourceSelection{Resource: &pb.Resource{Type: typ, Name: name, Namespace: ns}, LabelSelector: labels}
	}
	tests := []struct {
		name    string
		t       gate.Target
		ns      string
		want    *pb.TapByResourceRequest
		wantErr string
	}{
		{
			name: "no filter sends an empty all",
			t:    gate.Target{Resource: ref("deployment", "web", "emojivoto")},
			want: &pb.TapByResourceRequest{Target: sel("deployment", "web", "emojivoto", ""), Match: all(), Extract: headers},
		},
		{
			name: "short type and default namespace",
			t:    gate.Target{Resource: ref("deploy", "web", ""), MaxRPS: 2.5, LabelSelector: "rollouts-pod-template-hash=abc"},
			ns:   "prod",
			want: &pb.TapByResourceRequest{Target: sel("deployment", "web", "prod", "rollouts-pod-template-hash=abc"),
				Match: all(), MaxRps: 2.5, Extract: headers},
		},
		{
			name: "explicit namespace wins over the default",
			t:    gate.Target{Resource: ref("sts", "db", "data")},
			ns:   "prod",
			want: &pb.TapByResourceRequest{Target: sel("statefulset", "db", "data", ""), Match: all(), Extract: headers},
		},
		{
			name: "namespace target carries no namespace",
			t:    gate.Target{Resource: ref("ns", "emojivoto", "ignored")},
			want: &pb.TapByResourceRequest{Target: sel("namespace", "emojivoto", "", ""), Match: all(), Extract: headers},
		},
		{
			name: "destination defaults to the target namespace, then http matches in Linkerd's order",
			t: gate.Target{Resource: ref("deployment", "web", "emojivoto"), To: ref("svc", "voting-svc", ""),
				Match: gate.HTTPMatch{PathPrefix: "/api", Authority: "a:80", Method: "GET", Scheme: "http"}},
			want: &pb.TapByResourceRequest{Target: sel("deployment", "web", "emojivoto", ""), Extract: headers,
				Match: all(
					dest("service", "voting-svc", "emojivoto"),
					httpM(&pb.TapByResourceRequest_Match_Http{Match: &pb.TapByResourceRequest_Match_Http_Scheme{Scheme: "http"}}),
					httpM(&pb.TapByResourceRequest_Match_Http{Match: &pb.TapByResourceRequest_Match_Http_Method{Method: "GET"}}),
					httpM(&pb.TapByResourceRequest_Match_Http{Match: &pb.TapByResourceRequest_Match_Http_Authority{Authority: "a:80"}}),
					httpM(&pb.TapByResourceRequest_Match_Http{Match: &pb.TapByResourceRequest_Match_Http_Path{Path: "/api"}}),
				)},
		},
		{
			name: "destination in another namespace",
			t:    gate.Target{Resource: ref("pod", "web-0", "a"), To: ref("deployment", "db", "b")},
			want: &pb.TapByResourceRequest{Target: sel("pod", "web-0", "a", ""), Extract: headers,
				Match: all(dest("deployment", "db", "b"))},
		},
		{
			name: "destination of a namespace target defaults to that namespace",
			t:    gate.Target{Resource: ref("namespace", "shop", ""), To: ref("deploy", "db", "")},
			want: &pb.TapByResourceRequest{Target: sel("namespace", "shop", "", ""), Extract: headers,
				Match: all(dest("deployment", "db", "shop"))},
		},
		{
			name: "destination namespace",
			t:    gate.Target{Resource: ref("deploy", "web", "a"), To: ref("ns", "b", "x")},
			want: &pb.TapByResourceRequest{Target: sel("deployment", "web", "a", ""), Extract: headers,
				Match: all(dest("namespace", "b", ""))},
		},
		{name: "no resource", t: gate.Target{Name: "gw"}, wantErr: `target "gw" has no resource`},
		{name: "service cannot be a target", t: gate.Target{Name: "gw", Resource: ref("svc", "web", "a")},
			wantErr: `resource type "svc" cannot be tapped; use one of cronjob, daemonset`},
		{name: "unknown type", t: gate.Target{Resource: ref("widget", "x", "a")}, wantErr: `resource type "widget" cannot be tapped`},
		{name: "no name", t: gate.Target{Resource: ref("deployment", "", "a")}, wantErr: "deployment needs a name (deployment/NAME)"},
		{name: "no namespace", t: gate.Target{Resource: ref("deployment", "web", "")}, wantErr: "needs a namespace"},
		{name: "bad destination", t: gate.Target{Resource: ref("deployment", "web", "a"), To: ref("ingress", "x", "")},
			wantErr: `destination type "ingress" is not supported`},
		{name: "negative rps", t: gate.Target{Resource: ref("deployment", "web", "a"), MaxRPS: -1}, wantErr: "maxRPS -1 must be"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BuildRequest(tc.t, tc.ns)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !protoEqual(got, tc.want) {
				t.Errorf("request:\n got %s\nwant %s", protojson.Format(got), protojson.Format(tc.want))
			}
			// The URL the server derives from the body must be the one we POST to.
			if RequestPath(got) != TapPath(tc.t, tc.ns) {
				t.Errorf("RequestPath %q != TapPath %q", RequestPath(got), TapPath(tc.t, tc.ns))
			}
		})
	}
}

func httpM(h *pb.TapByResourceRequest_Match_Http) *pb.TapByResourceRequest_Match {
	return &pb.TapByResourceRequest_Match{Match: &pb.TapByResourceRequest_Match_Http_{Http: h}}
}

func TestTapPath(t *testing.T) {
	const p = "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/"
	tests := []struct {
		res  gate.ResourceRef
		ns   string
		want string
	}{
		{ref("deployment", "web", "emojivoto"), "", p + "emojivoto/deployments/web/tap"},
		{ref("deploy", "web", ""), "emojivoto", p + "emojivoto/deployments/web/tap"},
		{ref("namespace", "emojivoto", ""), "other", p + "emojivoto/tap"},
		{ref("cj", "nightly", "a"), "", p + "a/cronjobs/nightly/tap"},
		{ref("ds", "agent", "a"), "", p + "a/daemonsets/agent/tap"},
		{ref("job", "migrate", "a"), "", p + "a/jobs/migrate/tap"},
		{ref("po", "web-0", "a"), "", p + "a/pods/web-0/tap"},
		{ref("rs", "web-abc", "a"), "", p + "a/replicasets/web-abc/tap"},
		{ref("rc", "old", "a"), "", p + "a/replicationcontrollers/old/tap"},
		{ref("sts", "db", "a"), "", p + "a/statefulsets/db/tap"},
		{ref("deployment", "we b/x", "a?b"), "", p + "a%3Fb/deployments/we%20b%2Fx/tap"},
		{ref("deployment", "", "a"), "", ""},
	}
	for _, tc := range tests {
		if got := TapPath(gate.Target{Resource: tc.res}, tc.ns); got != tc.want {
			t.Errorf("TapPath(%v, %q) = %q, want %q", tc.res, tc.ns, got, tc.want)
		}
	}
}

func TestCanonicalType(t *testing.T) {
	for in, want := range map[string]string{
		"deploy": "deployment", "Deployments": "deployment", "deployment": "deployment",
		"svc": "service", "sts": "statefulset", "cj": "cronjob", "job": "job", "jobs": "job",
		"rc": "replicationcontroller", "po": "pod", "ns": "namespace", " ds ": "daemonset",
	} {
		if got, ok := CanonicalType(in); !ok || got != want {
			t.Errorf("CanonicalType(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := CanonicalType("ingress"); ok {
		t.Error("ingress accepted")
	}
}
