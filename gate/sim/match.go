package sim

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// tapError is an error the tap server reports in an ApiError frame.
type tapError struct{ msg string }

func (e *tapError) Error() string { return e.msg }

func tapErrorf(format string, args ...any) error {
	return &tapError{msg: fmt.Sprintf(format, args...)}
}

// matcher is the proxy-side match Linkerd's tap server builds from a
// request: every condition must hold (the `all` sequence).
type matcher struct {
	dstLabels map[string]string
	scheme    string
	method    string
	authority string
	prefixes  []string
	// none is set when two conditions of one kind disagree; nothing matches.
	none bool
}

// buildMatcher validates the match tree like Linkerd's
// makeByResourceMatch: only a flat `all` whose elements are `destinations`
// or `http` is implemented.
func buildMatcher(m *pb.TapByResourceRequest_Match) (*matcher, error) {
	seq := m.GetAll()
	if seq == nil {
		return nil, tapErrorf("unexpected match specified: %v", matchString(m))
	}
	out := &matcher{}
	for _, el := range seq.GetMatches() {
		switch t := el.GetMatch().(type) {
		case *pb.TapByResourceRequest_Match_Destinations:
			for k, v := range destinationLabels(t.Destinations.GetResource()) {
				if out.dstLabels == nil {
					out.dstLabels = map[string]string{}
				}
				if old, ok := out.dstLabels[k]; ok && old != v {
					out.none = true
				}
				out.dstLabels[k] = v
			}
		case *pb.TapByResourceRequest_Match_Http_:
			switch h := t.Http.GetMatch().(type) {
			case *pb.TapByResourceRequest_Match_Http_Scheme:
				out.none = out.none || (out.scheme != "" && !strings.EqualFold(out.scheme, h.Scheme))
				out.scheme = h.Scheme
			case *pb.TapByResourceRequest_Match_Http_Method:
				out.none = out.none || (out.method != "" && !strings.EqualFold(out.method, h.Method))
				out.method = h.Method
			case *pb.TapByResourceRequest_Match_Http_Authority:
				out.none = out.none || (out.authority != "" && out.authority != h.Authority)
				out.authority = h.Authority
			case *pb.TapByResourceRequest_Match_Http_Path:
				out.prefixes = append(out.prefixes, h.Path)
			default:
				return nil, tapErrorf("unknown HTTP match type: %v", oneofName(h))
			}
		default:
			return nil, tapErrorf("unknown match type: %v", oneofName(t))
		}
	}
	return out, nil
}

func matchString(m *pb.TapByResourceRequest_Match) string {
	if m == nil {
		return "<nil>"
	}
	return m.String()
}

func oneofName(v any) string {
	switch v.(type) {
	case nil:
		return "<nil>"
	case *pb.TapByResourceRequest_Match_Any:
		return "any"
	case *pb.TapByResourceRequest_Match_Not:
		return "not"
	case *pb.TapByResourceRequest_Match_All:
		return "all"
	}
	return fmt.Sprintf("%T", v)
}

// destinationLabels are the labels a `destinations` match turns into, as
// in Linkerd: the type's label (k8s_job for jobs) and the namespace.
func destinationLabels(r *pb.Resource) map[string]string {
	out := map[string]string{}
	if r.GetName() != "" {
		key := r.GetType()
		if key == wire.TypeJob {
			key = "k8s_job"
		}
		out[key] = r.GetName()
	}
	if r.GetType() != wire.TypeNamespace && r.GetNamespace() != "" {
		out["namespace"] = r.GetNamespace()
	}
	return out
}

// matches applies the match the way the proxy does. A destination label
// match only ever holds for outbound traffic: an inbound proxy knows no
// destination labels of its own.
func (m *matcher) matches(v *view) bool {
	if m.none {
		return false
	}
	if len(m.dstLabels) > 0 {
		if v.dir != gate.Outbound {
			return false
		}
		for k, want := range m.dstLabels {
			if v.dst.Labels[k] != want {
				return false
			}
		}
	}
	r := v.req.route
	if m.scheme != "" && !strings.EqualFold(m.scheme, "http") {
		return false
	}
	if m.method != "" && !strings.EqualFold(m.method, r.method) {
		return false
	}
	if m.authority != "" && m.authority != r.authority {
		return false
	}
	p := r.path
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	for _, pre := range m.prefixes {
		if !strings.HasPrefix(p, pre) {
			return false
		}
	}
	return true
}

// resolvePods finds the tap target's pods like Linkerd's GetObjects and
// GetPodsFor, then keeps the tappable ones.
func (s *Simulator) resolvePods(res *pb.Resource, selector string) ([]*pod, error) {
	sel := labels.Everything()
	if selector != "" {
		var err error
		if sel, err = labels.Parse(selector); err != nil {
			return nil, tapErrorf("invalid label selector \"%s\": %s", selector, err)
		}
	}
	typ, ns, name := res.GetType(), res.GetNamespace(), res.GetName()
	var cands []*pod
	found := false
	switch typ {
	case wire.TypeNamespace:
		for _, d := range s.m.deps {
			if d.ns == name {
				cands = append(cands, d.pods...)
			}
		}
		found = s.hasNamespace(name)
		if !found {
			return nil, tapErrorf("namespace %q not found", name)
		}
	case wire.TypeDeployment, wire.TypeStatefulSet, wire.TypeDaemonSet, wire.TypeService, wire.TypeReplicaSet:
		for _, d := range s.m.deps {
			if d.ns != ns {
				continue
			}
			ok := false
			switch typ {
			case wire.TypeService:
				ok = name == "" || d.name == name
			case wire.TypeReplicaSet:
				ok = d.kind == wire.TypeDeployment && (name == "" || d.name+"-"+d.hash == name)
			default:
				ok = d.kind == typ && (name == "" || d.name == name)
			}
			if ok {
				found = true
				cands = append(cands, d.pods...)
			}
		}
	case wire.TypePod:
		for _, p := range s.m.pods {
			if p.dep.ns == ns && (name == "" || p.name == name) {
				found = true
				cands = append(cands, p)
			}
		}
	case wire.TypeJob, wire.TypeCronJob, wire.TypeReplicationController:
		// The model has no such workloads.
	default:
		return nil, tapErrorf("unimplemented resource type: %s", typ)
	}
	if !found && name != "" {
		return nil, tapErrorf("%s %q not found", qualifiedKind(typ), name)
	}
	var pods, notEnabled []*pod
	for _, p := range cands {
		if !sel.Matches(labels.Set(p.labels)) || !p.dep.meshed {
			continue
		}
		if !p.dep.tap {
			notEnabled = append(notEnabled, p)
			continue
		}
		pods = append(pods, p)
	}
	if len(pods) == 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "no pods to tap for %s/%s\n", typ, name)
		if len(notEnabled) > 0 {
			fmt.Fprintf(&b, "%d pods found with tap not enabled:\n", len(notEnabled))
			for _, p := range notEnabled {
				fmt.Fprintf(&b, "\t* %s\n", p.name)
			}
			fmt.Fprintln(&b, "restart these pods to enable tap and make them valid tap targets")
		}
		return nil, &tapError{msg: b.String()}
	}
	return pods, nil
}

func (s *Simulator) hasNamespace(name string) bool {
	for _, ns := range s.sc.Namespaces {
		if ns.Name == name {
			return true
		}
	}
	return false
}

// qualifiedKind is how the Kubernetes NotFound error names a resource.
func qualifiedKind(typ string) string {
	switch typ {
	case wire.TypeDeployment, wire.TypeStatefulSet, wire.TypeDaemonSet, wire.TypeReplicaSet:
		return typ + ".apps"
	case wire.TypeJob, wire.TypeCronJob:
		return typ + ".batch"
	}
	return typ
}
