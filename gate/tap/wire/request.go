package wire

import (
	"fmt"
	"math"
	"net/url"
	"strings"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
)

// Linkerd's canonical resource type names (its pkg/k8s constants). The tap
// server and the URL both use these, plural in the URL.
const (
	TypeCronJob               = "cronjob"
	TypeDaemonSet             = "daemonset"
	TypeDeployment            = "deployment"
	TypeJob                   = "job"
	TypeNamespace             = "namespace"
	TypePod                   = "pod"
	TypeReplicaSet            = "replicaset"
	TypeReplicationController = "replicationcontroller"
	TypeService               = "service"
	TypeStatefulSet           = "statefulset"
)

// ValidTargets are the resource types tap accepts as a target.
var ValidTargets = []string{
	TypeCronJob, TypeDaemonSet, TypeDeployment, TypeJob, TypeNamespace,
	TypePod, TypeReplicaSet, TypeReplicationController, TypeStatefulSet,
}

// ValidDestinations are the resource types tap accepts in a destinations
// match (`--to`): the targets plus services.
var ValidDestinations = append(append([]string(nil), ValidTargets...), TypeService)

// aliases maps kubectl short names and plurals to canonical types, the way
// Linkerd's CanonicalResourceNameFromFriendlyName does.
var aliases = map[string]string{
	"cj": TypeCronJob, "cronjobs": TypeCronJob,
	"ds": TypeDaemonSet, "daemonsets": TypeDaemonSet,
	"deploy": TypeDeployment, "deployments": TypeDeployment,
	"jobs": TypeJob,
	"ns":   TypeNamespace, "namespaces": TypeNamespace,
	"po": TypePod, "pods": TypePod,
	"rs": TypeReplicaSet, "replicasets": TypeReplicaSet,
	"rc": TypeReplicationController, "replicationcontrollers": TypeReplicationController,
	"svc": TypeService, "services": TypeService,
	"sts": TypeStatefulSet, "statefulsets": TypeStatefulSet,
}

// CanonicalType returns Linkerd's canonical name for a resource type given
// as a canonical name, kubectl short name or plural (case-insensitive).
func CanonicalType(t string) (string, bool) {
	t = strings.ToLower(strings.TrimSpace(t))
	if c, ok := aliases[t]; ok {
		return c, true
	}
	for _, v := range ValidDestinations {
		if v == t {
			return t, true
		}
	}
	return "", false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// resolveTarget returns the target as the tap server must see it: canonical
// type, name, and namespace ("" for namespace targets, whose name is the
// namespace).
func resolveTarget(t gate.Target, namespaceDefault string) (*pb.Resource, error) {
	r := t.Resource
	if r.IsZero() {
		return nil, fmt.Errorf("target %q has no resource: a live tap needs one, e.g. deploy/web", t.Name)
	}
	typ, ok := CanonicalType(r.Type)
	if !ok || !contains(ValidTargets, typ) {
		return nil, fmt.Errorf("target %q: resource type %q cannot be tapped; use one of %s",
			t.Name, r.Type, strings.Join(ValidTargets, ", "))
	}
	if r.Name == "" {
		// The tap APIServer routes /namespaces/{ns}/{type}s/{name}/tap only.
		return nil, fmt.Errorf("target %q: %s needs a name (%s/NAME); to tap a whole namespace use namespace/NAME",
			t.Name, typ, typ)
	}
	if typ == TypeNamespace {
		return &pb.Resource{Type: typ, Name: r.Name}, nil
	}
	ns := r.Namespace
	if ns == "" {
		ns = namespaceDefault
	}
	if ns == "" {
		return nil, fmt.Errorf("target %q: %s/%s needs a namespace; set namespace in the policy or pass --namespace",
			t.Name, typ, r.Name)
	}
	return &pb.Resource{Namespace: ns, Type: typ, Name: r.Name}, nil
}

// BuildRequest builds the TapByResourceRequest `linkerd viz tap` would send
// for t: the target selection, a match that is always `all{...}` of a
// destinations element (t.To) and one http element per set field of t.Match
// (scheme, method, authority, path prefix, in that order), t.MaxRPS as sent
// (0 lets the server use 100), and header extraction, which `linkerd viz tap
// -o json` requests and which tapgate always needs for the grpc-status
// trailer.
//
// namespaceDefault applies to a target without a namespace. t.To without a
// namespace is looked up in the target's namespace, as the --to-namespace
// help of the Linkerd CLI describes.
func BuildRequest(t gate.Target, namespaceDefault string) (*pb.TapByResourceRequest, error) {
	target, err := resolveTarget(t, namespaceDefault)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(t.MaxRPS) || math.IsInf(t.MaxRPS, 0) || t.MaxRPS < 0 || t.MaxRPS > math.MaxFloat32 {
		return nil, fmt.Errorf("target %q: maxRPS %v must be a finite number >= 0 (0 means the tap server default, 100)",
			t.Name, t.MaxRPS)
	}

	matches := []*pb.TapByResourceRequest_Match{}
	if !t.To.IsZero() {
		typ, ok := CanonicalType(t.To.Type)
		if !ok || !contains(ValidDestinations, typ) {
			return nil, fmt.Errorf("target %q: destination type %q is not supported; use one of %s",
				t.Name, t.To.Type, strings.Join(ValidDestinations, ", "))
		}
		dst := &pb.Resource{Type: typ, Name: t.To.Name}
		if typ != TypeNamespace {
			dst.Namespace = t.To.Namespace
			if dst.Namespace == "" {
				dst.Namespace = target.Namespace
				if target.Type == TypeNamespace {
					dst.Namespace = target.Name
				}
			}
		}
		matches = append(matches, &pb.TapByResourceRequest_Match{
			Match: &pb.TapByResourceRequest_Match_Destinations{
				Destinations: &pb.ResourceSelection{Resource: dst},
			},
		})
	}
	m := t.Match
	if m.Scheme != "" {
		matches = append(matches, httpMatch(&pb.TapByResourceRequest_Match_Http{Match: &pb.TapByResourceRequest_Match_Http_Scheme{Scheme: m.Scheme}}))
	}
	if m.Method != "" {
		matches = append(matches, httpMatch(&pb.TapByResourceRequest_Match_Http{Match: &pb.TapByResourceRequest_Match_Http_Method{Method: m.Method}}))
	}
	if m.Authority != "" {
		matches = append(matches, httpMatch(&pb.TapByResourceRequest_Match_Http{Match: &pb.TapByResourceRequest_Match_Http_Authority{Authority: m.Authority}}))
	}
	if m.PathPrefix != "" {
		matches = append(matches, httpMatch(&pb.TapByResourceRequest_Match_Http{Match: &pb.TapByResourceRequest_Match_Http_Path{Path: m.PathPrefix}}))
	}

	return &pb.TapByResourceRequest{
		Target: &pb.ResourceSelection{Resource: target, LabelSelector: t.LabelSelector},
		Match: &pb.TapByResourceRequest_Match{
			Match: &pb.TapByResourceRequest_Match_All{
				All: &pb.TapByResourceRequest_Match_Seq{Matches: matches},
			},
		},
		MaxRps: float32(t.MaxRPS),
		Extract: &pb.TapByResourceRequest_Extract{
			Extract: &pb.TapByResourceRequest_Extract_Http_{
				Http: &pb.TapByResourceRequest_Extract_Http{
					Extract: &pb.TapByResourceRequest_Extract_Http_Headers_{
						Headers: &pb.TapByResourceRequest_Extract_Http_Headers{},
					},
				},
			},
		},
	}, nil
}

func httpMatch(h *pb.TapByResourceRequest_Match_Http) *pb.TapByResourceRequest_Match {
	return &pb.TapByResourceRequest_Match{Match: &pb.TapByResourceRequest_Match_Http_{Http: h}}
}

// apiPrefix is the aggregated API group/version the tap APIServer serves.
const apiPrefix = "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/"

// TapPath is the escaped URL path to POST the request for t to:
// /apis/tap.linkerd.io/v1alpha1/watch/namespaces/{ns}/{type}s/{name}/tap, or
// .../watch/namespaces/{name}/tap for a namespace target. ns is the default
// namespace, as for BuildRequest. The tap server rejects a request whose
// body names a different target than its URL, so derive both from the same
// target (or use RequestPath on the built request). An invalid target yields
// "".
func TapPath(t gate.Target, ns string) string {
	r, err := resolveTarget(t, ns)
	if err != nil {
		return ""
	}
	return resourcePath(r)
}

// RequestPath is TapPath for an already built request, mirroring Linkerd's
// TapReqToURL, which the tap server uses to check the URL against the body.
func RequestPath(req *pb.TapByResourceRequest) string {
	return resourcePath(req.GetTarget().GetResource())
}

func resourcePath(r *pb.Resource) string {
	if r.GetType() == TypeNamespace {
		return apiPrefix + url.PathEscape(r.GetName()) + "/tap"
	}
	return apiPrefix + url.PathEscape(r.GetNamespace()) + "/" + url.PathEscape(r.GetType()+"s") + "/" +
		url.PathEscape(r.GetName()) + "/tap"
}
