package replay

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/tapgate/tapgate/gate"
)

// Selector decides whether a recorded event belongs to a policy target, using
// the metadata labels tap attached to the event's endpoints, so that one
// recording of a namespace can be gated per workload.
//
// The endpoint compared with the target is the proxy side: the destination
// of an INBOUND event and the source of an OUTBOUND one (for events of
// unknown direction, either). Linkerd names the labels after the resource
// type (deployment, statefulset, daemonset, replicaset, job, cronjob,
// replicationcontroller, pod, namespace) and writes label keys
// prometheus-style, so a label selector key pod-template-hash also matches
// pod_template_hash.
//
// To follows Linkerd's own tap server, which matches the --to resource
// against the destination metadata whatever the direction: a replay selects
// the events a live tap of the same target would have delivered. For
// outbound traffic that is the peer being called. For inbound traffic the
// destination is the target itself, so To only keeps events whose target
// pods also carry the To labels (e.g. to: svc/checkout when the inbound
// metadata names the service); it cannot select callers.
type Selector struct {
	target    gate.Target
	direction gate.Direction
	resKey    string // label naming the target resource; "" matches all
	resName   string
	namespace string
	toKey     string
	toName    string
	toNS      string
	sel       labels.Selector // nil when there is none
}

// NewSelector builds the selector of a target. An invalid label selector is
// an error naming the target.
func NewSelector(t gate.Target) (*Selector, error) {
	s := &Selector{target: t, direction: t.Direction}
	if !t.Resource.IsZero() {
		s.resKey = labelKey(t.Resource.Type)
		s.resName = t.Resource.Name
		if s.resKey == "namespace" && s.resName == "" {
			s.resName = t.Resource.Namespace
		}
		s.namespace = t.Resource.Namespace
	}
	if !t.To.IsZero() {
		s.toKey = labelKey(t.To.Type)
		s.toName = t.To.Name
		s.toNS = t.To.Namespace
	}
	if strings.TrimSpace(t.LabelSelector) != "" {
		sel, err := labels.Parse(t.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("target %q: invalid labelSelector %q: %w", t.Name, t.LabelSelector, err)
		}
		s.sel = sel
	}
	return s, nil
}

// labelKey maps a canonical resource type (or a kubectl short name) to the
// metadata label Linkerd uses for it.
func labelKey(typ string) string {
	switch strings.ToLower(typ) {
	case "deploy", "deployment", "deployments":
		return "deployment"
	case "sts", "statefulset", "statefulsets":
		return "statefulset"
	case "ds", "daemonset", "daemonsets":
		return "daemonset"
	case "rs", "replicaset", "replicasets":
		return "replicaset"
	case "rc", "replicationcontroller", "replicationcontrollers":
		return "replicationcontroller"
	case "job", "jobs":
		return "job"
	case "cj", "cronjob", "cronjobs":
		return "cronjob"
	case "po", "pod", "pods":
		return "pod"
	case "ns", "namespace", "namespaces":
		return "namespace"
	case "svc", "service", "services":
		return "service"
	}
	return strings.ToLower(typ)
}

// Target returns the target the selector was built from.
func (s *Selector) Target() gate.Target { return s.target }

// Matches reports whether the event belongs to the target.
func (s *Selector) Matches(ev *gate.Event) bool {
	switch ev.Direction {
	case gate.Inbound:
		if s.direction == gate.Outbound {
			return false
		}
		return s.side(ev.Destination.Labels) && s.to(ev)
	case gate.Outbound:
		if s.direction == gate.Inbound {
			return false
		}
		return s.side(ev.Source.Labels) && s.to(ev)
	}
	// Unknown direction: only "any" targets take it, from either side.
	if s.direction != gate.DirectionUnknown {
		return false
	}
	return (s.side(ev.Destination.Labels) || s.side(ev.Source.Labels)) && s.to(ev)
}

// side matches the proxy side's metadata against resource, namespace and
// label selector.
func (s *Selector) side(m map[string]string) bool {
	if s.resKey != "" && m[s.resKey] != s.resName {
		return false
	}
	if s.namespace != "" && m["namespace"] != s.namespace {
		return false
	}
	if s.sel != nil && !s.sel.Matches(promLabels(m)) {
		return false
	}
	return true
}

// to matches the destination metadata against the To resource; Linkerd
// writes destination labels either plainly or with a dst_ prefix.
func (s *Selector) to(ev *gate.Event) bool {
	if s.toKey == "" {
		return true
	}
	m := ev.Destination.Labels
	if s.toName != "" && lookup(m, s.toKey) != s.toName {
		return false
	}
	if s.toNS != "" && lookup(m, "namespace") != s.toNS {
		return false
	}
	return true
}

func lookup(m map[string]string, key string) string {
	if v, ok := m[key]; ok {
		return v
	}
	return m["dst_"+key]
}

// promLabels lets a Kubernetes label selector read Linkerd's
// prometheus-style metadata: a key is tried as written, then with '-', '.'
// and '/' mapped to '_'.
type promLabels map[string]string

func (p promLabels) Lookup(key string) (string, bool) {
	if v, ok := p[key]; ok {
		return v, true
	}
	if strings.ContainsAny(key, "-./") {
		v, ok := p[promKey(key)]
		return v, ok
	}
	return "", false
}

func (p promLabels) Has(key string) bool {
	_, ok := p.Lookup(key)
	return ok
}

func (p promLabels) Get(key string) string {
	v, _ := p.Lookup(key)
	return v
}

func promKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '.', '/':
			return '_'
		}
		return r
	}, k)
}
