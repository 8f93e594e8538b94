package replay

import (
	"strings"
	"testing"

	"github.com/tapgate/tapgate/gate"
)

func TestSelector(t *testing.T) {
	checkout := map[string]string{
		"deployment": "checkout", "namespace": "shop", "pod": "checkout-7d9f8b6c5-x2k4q",
		"pod_template_hash": "7d9f8b6c5", "serviceaccount": "checkout",
		"rollouts_pod_template_hash": "abc",
	}
	canary := map[string]string{
		"deployment": "checkout-canary", "namespace": "shop", "pod": "checkout-canary-1",
		"pod_template_hash": "5c6b7f9d4",
	}
	frontend := map[string]string{"deployment": "frontend", "namespace": "shop", "pod": "frontend-1", "tls": "true"}
	payments := map[string]string{"dst_deployment": "payments", "dst_namespace": "billing", "dst_service": "payments-svc"}
	db := map[string]string{"statefulset": "db", "namespace": "shop", "service": "db"}

	in := func(src, dst map[string]string) *gate.Event {
		return &gate.Event{Direction: gate.Inbound, Source: gate.Endpoint{Labels: src}, Destination: gate.Endpoint{Labels: dst}}
	}
	out := func(src, dst map[string]string) *gate.Event {
		return &gate.Event{Direction: gate.Outbound, Source: gate.Endpoint{Labels: src}, Destination: gate.Endpoint{Labels: dst}}
	}
	unknown := func(src, dst map[string]string) *gate.Event {
		return &gate.Event{Source: gate.Endpoint{Labels: src}, Destination: gate.Endpoint{Labels: dst}}
	}
	deploy := func(name string) gate.ResourceRef {
		return gate.ResourceRef{Type: "deployment", Name: name, Namespace: "shop"}
	}

	tests := []struct {
		name   string
		target gate.Target
		ev     *gate.Event
		want   bool
	}{
		{"zero target takes everything", gate.Target{}, unknown(nil, nil), true},
		{"zero target takes outbound", gate.Target{}, out(frontend, checkout), true},
		{"deployment inbound on destination", gate.Target{Resource: deploy("checkout")}, in(frontend, checkout), true},
		{"deployment is exact, not prefix", gate.Target{Resource: deploy("checkout")}, in(frontend, canary), false},
		{"canary deployment", gate.Target{Resource: deploy("checkout-canary")}, in(frontend, canary), true},
		{"inbound event matched on destination, not source", gate.Target{Resource: deploy("frontend")}, in(frontend, checkout), false},
		{"outbound event matched on source", gate.Target{Resource: deploy("frontend")}, out(frontend, checkout), true},
		{"wrong namespace", gate.Target{Resource: gate.ResourceRef{Type: "deployment", Name: "checkout", Namespace: "prod"}}, in(frontend, checkout), false},
		{"short type name", gate.Target{Resource: gate.ResourceRef{Type: "deploy", Name: "checkout"}}, in(frontend, checkout), true},
		{"namespace target", gate.Target{Resource: gate.ResourceRef{Type: "namespace", Name: "shop"}}, in(frontend, canary), true},
		{"namespace target other ns", gate.Target{Resource: gate.ResourceRef{Type: "namespace", Name: "billing"}}, in(frontend, canary), false},
		{"pod target", gate.Target{Resource: gate.ResourceRef{Type: "pod", Name: "checkout-canary-1", Namespace: "shop"}}, in(frontend, canary), true},
		{"statefulset target", gate.Target{Resource: gate.ResourceRef{Type: "statefulset", Name: "db"}}, in(frontend, db), true},
		{"statefulset target vs deployment pod", gate.Target{Resource: gate.ResourceRef{Type: "sts", Name: "checkout"}}, in(frontend, checkout), false},
		{"missing labels", gate.Target{Resource: deploy("checkout")}, in(nil, nil), false},

		{"direction inbound takes inbound", gate.Target{Resource: deploy("checkout"), Direction: gate.Inbound}, in(frontend, checkout), true},
		{"direction inbound refuses outbound", gate.Target{Resource: deploy("checkout"), Direction: gate.Inbound}, out(checkout, payments), false},
		{"direction outbound takes outbound", gate.Target{Resource: deploy("checkout"), Direction: gate.Outbound}, out(checkout, payments), true},
		{"direction outbound refuses inbound", gate.Target{Resource: deploy("checkout"), Direction: gate.Outbound}, in(frontend, checkout), false},
		{"direction any takes outbound", gate.Target{Resource: deploy("checkout")}, out(checkout, payments), true},
		{"unknown direction event, any target, either side", gate.Target{Resource: deploy("checkout")}, unknown(checkout, nil), true},
		{"unknown direction event refused by inbound target", gate.Target{Resource: deploy("checkout"), Direction: gate.Inbound}, unknown(nil, checkout), false},

		{"to deployment via dst_ label", gate.Target{Resource: deploy("checkout"), To: gate.ResourceRef{Type: "deployment", Name: "payments", Namespace: "billing"}}, out(checkout, payments), true},
		{"to service via dst_ label", gate.Target{Resource: deploy("checkout"), To: gate.ResourceRef{Type: "service", Name: "payments-svc"}}, out(checkout, payments), true},
		{"to wrong namespace", gate.Target{Resource: deploy("checkout"), To: gate.ResourceRef{Type: "deployment", Name: "payments", Namespace: "shop"}}, out(checkout, payments), false},
		{"to other deployment", gate.Target{Resource: deploy("checkout"), To: gate.ResourceRef{Type: "deployment", Name: "db"}}, out(checkout, payments), false},
		{"to plain label", gate.Target{Resource: deploy("checkout"), To: gate.ResourceRef{Type: "svc", Name: "db"}}, out(checkout, db), true},
		{"to namespace", gate.Target{To: gate.ResourceRef{Type: "namespace", Name: "billing"}}, out(checkout, payments), true},
		// Like Linkerd's tap server, To reads the destination whatever the
		// direction: inbound, the destination is the target itself.
		{"to on inbound reads the destination", gate.Target{Resource: deploy("checkout"), To: gate.ResourceRef{Type: "deployment", Name: "checkout"}}, in(frontend, checkout), true},
		{"to on inbound does not select callers", gate.Target{Resource: deploy("checkout"), To: gate.ResourceRef{Type: "deployment", Name: "frontend"}}, in(frontend, checkout), false},

		{"label selector prometheus-style key", gate.Target{LabelSelector: "pod-template-hash=7d9f8b6c5"}, in(frontend, checkout), true},
		{"label selector dotted key", gate.Target{LabelSelector: "rollouts.pod-template-hash=abc"}, in(frontend, checkout), true},
		{"label selector slash key", gate.Target{LabelSelector: "rollouts/pod-template-hash in (abc, def)"}, in(frontend, checkout), true},
		{"label selector mismatch", gate.Target{LabelSelector: "pod-template-hash=7d9f8b6c5"}, in(frontend, canary), false},
		{"label selector plain key", gate.Target{LabelSelector: "serviceaccount=checkout,deployment!=checkout-canary"}, in(frontend, checkout), true},
		{"label selector not-exists", gate.Target{LabelSelector: "!tls"}, in(frontend, checkout), true},
		{"label selector on proxy side only", gate.Target{LabelSelector: "tls=true"}, in(frontend, checkout), false},
		{"label selector with resource", gate.Target{Resource: deploy("checkout"), LabelSelector: "pod_template_hash=other"}, in(frontend, checkout), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSelector(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Matches(tc.ev); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSelectorInvalid(t *testing.T) {
	for _, sel := range []string{"a in (b", "=x", "a==b==c", "Bad Key=1"} {
		_, err := NewSelector(gate.Target{Name: "gateway", LabelSelector: sel})
		if err == nil {
			t.Errorf("%q: no error", sel)
			continue
		}
		if !strings.Contains(err.Error(), `target "gateway"`) || !strings.Contains(err.Error(), sel) {
			t.Errorf("%q: error %q does not name the target and selector", sel, err)
		}
	}
}
