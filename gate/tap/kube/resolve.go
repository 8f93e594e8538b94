package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// Linkerd's markers of a meshed pod and of a pod that opted out of tap.
const (
	proxyContainer      = "linkerd-proxy"
	proxyVersionAnnot   = "linkerd.io/proxy-version"
	disableTapAnnot     = "config.linkerd.io/disable-tap"
	tapDisabledAnnotVal = "true"
)

// Resolved describes a target's pods at the time it was resolved.
type Resolved struct {
	Type      string // canonical type, e.g. "deployment"
	Name      string
	Namespace string // "" for a namespace target
	Pods      int    // pods selected by the workload (and the label selector)
	Meshed    int    // pods with a linkerd-proxy
	// TapDisabled counts meshed pods annotated config.linkerd.io/disable-tap.
	TapDisabled int
	Running     int // pods in phase Running
	// Tappable counts meshed, tap-enabled, running pods: what tap can see.
	Tappable int
	// TappableNames are their names, sorted: a change means the tap must
	// be re-opened, since Linkerd taps only the pods that existed when a
	// tap began.
	TappableNames []string
}

// Ref is the kubectl-style name of the target, e.g. "deployment/web".
func (r *Resolved) Ref() string { return r.Type + "/" + r.Name }

// kubectlShort is the resource name kubectl users type.
var kubectlShort = map[string]string{
	wire.TypeCronJob: "cronjob", wire.TypeDaemonSet: "ds", wire.TypeDeployment: "deploy",
	wire.TypeJob: "job", wire.TypeNamespace: "ns", wire.TypePod: "pod",
	wire.TypeReplicaSet: "rs", wire.TypeReplicationController: "rc",
	wire.TypeService: "svc", wire.TypeStatefulSet: "sts",
}

// Resolve checks that t's resource (and its `to` destination) exists, and
// counts its pods: all of them, meshed, tap-disabled, running and tappable.
// ns is the default namespace. A missing resource is an *Error of kind
// NotFound, a target with no tappable pod one of kind NoPods, an RBAC
// denial one of kind Forbidden.
func Resolve(ctx context.Context, cs kubernetes.Interface, t gate.Target, ns string) (*Resolved, error) {
	req, err := wire.BuildRequest(t, ns)
	if err != nil {
		return nil, &Error{Kind: BadTarget, Target: t.Name, Msg: err.Error()}
	}
	res := req.GetTarget().GetResource()
	r := &Resolved{Type: res.GetType(), Name: res.GetName(), Namespace: res.GetNamespace()}
	label := t.Name
	if label == "" {
		label = r.Ref()
	}

	user := labels.Everything()
	if t.LabelSelector != "" {
		if user, err = labels.Parse(t.LabelSelector); err != nil {
			return nil, &Error{Kind: BadTarget, Target: label, Msg: fmt.Sprintf("label selector %q: %v", t.LabelSelector, err)}
		}
	}

	if dst := destination(req); dst != nil {
		if err := exists(ctx, cs, dst.typ, dst.name, dst.ns); err != nil {
			return nil, lookupError(err, label, dst.typ, dst.name, dst.ns, "destination ")
		}
	}

	sel, pods, err := podsOf(ctx, cs, r)
	if err != nil {
		return nil, lookupError(err, label, r.Type, r.Name, r.Namespace, "")
	}
	for i := range pods {
		p := &pods[i]
		if !sel.Matches(labels.Set(p.Labels)) || !user.Matches(labels.Set(p.Labels)) {
			continue
		}
		r.Pods++
		meshed := isMeshed(p)
		disabled := p.Annotations[disableTapAnnot] == tapDisabledAnnotVal
		running := p.Status.Phase == corev1.PodRunning
		if meshed {
			r.Meshed++
			if disabled {
				r.TapDisabled++
			}
		}
		if running {
			r.Running++
		}
		if meshed && !disabled && running {
			r.Tappable++
			r.TappableNames = append(r.TappableNames, p.Name)
		}
	}
	sort.Strings(r.TappableNames)
	if r.Tappable == 0 {
		return r, noPodsError(label, r, t.LabelSelector)
	}
	return r, nil
}

type ref struct{ typ, name, ns string }

// destination returns the `to` resource of the request's destinations
// match, nil when there is none.
func destination(req *pb.TapByResourceRequest) *ref {
	for _, m := range req.GetMatch().GetAll().GetMatches() {
		if d := m.GetDestinations().GetResource(); d != nil {
			return &ref{typ: d.GetType(), name: d.GetName(), ns: d.GetNamespace()}
		}
	}
	return nil
}

func exists(ctx context.Context, cs kubernetes.Interface, typ, name, ns string) error {
	var err error
	get := metav1.GetOptions{}
	switch typ {
	case wire.TypeService:
		_, err = cs.CoreV1().Services(ns).Get(ctx, name, get)
	case wire.TypeNamespace:
		_, err = cs.CoreV1().Namespaces().Get(ctx, name, get)
	default:
		_, _, err = podsOf(ctx, cs, &Resolved{Type: typ, Name: name, Namespace: ns})
	}
	return err
}

// podsOf fetches the workload and lists the pods its selector picks. The
// returned selector is applied again by the caller (a fake clientset ignores
// list selectors; a real apiserver already applied it).
func podsOf(ctx context.Context, cs kubernetes.Interface, r *Resolved) (labels.Selector, []corev1.Pod, error) {
	get := metav1.GetOptions{}
	var ls *metav1.LabelSelector
	sel := labels.Everything()
	podNS := r.Namespace
	switch r.Type {
	case wire.TypeDeployment:
		o, err := cs.AppsV1().Deployments(r.Namespace).Get(ctx, r.Name, get)
		if err != nil {
			return nil, nil, err
		}
		ls = o.Spec.Selector
	case wire.TypeStatefulSet:
		o, err := cs.AppsV1().StatefulSets(r.Namespace).Get(ctx, r.Name, get)
		if err != nil {
			return nil, nil, err
		}
		ls = o.Spec.Selector
	case wire.TypeDaemonSet:
		o, err := cs.AppsV1().DaemonSets(r.Namespace).Get(ctx, r.Name, get)
		if err != nil {
			return nil, nil, err
		}
		ls = o.Spec.Selector
	case wire.TypeReplicaSet:
		o, err := cs.AppsV1().ReplicaSets(r.Namespace).Get(ctx, r.Name, get)
		if err != nil {
			return nil, nil, err
		}
		ls = o.Spec.Selector
	case wire.TypeJob:
		o, err := cs.BatchV1().Jobs(r.Namespace).Get(ctx, r.Name, get)
		if err != nil {
			return nil, nil, err
		}
		ls = o.Spec.Selector
	case wire.TypeReplicationController:
		o, err := cs.CoreV1().ReplicationControllers(r.Namespace).Get(ctx, r.Name, get)
		if err != nil {
			return nil, nil, err
		}
		if len(o.Spec.Selector) == 0 {
			return nil, nil, nil
		}
		sel = labels.SelectorFromSet(o.Spec.Selector)
	case wire.TypeCronJob:
		return cronJobPods(ctx, cs, r)
	case wire.TypePod:
		o, err := cs.CoreV1().Pods(r.Namespace).Get(ctx, r.Name, get)
		if err != nil {
			return nil, nil, err
		}
		return labels.Everything(), []corev1.Pod{*o}, nil
	case wire.TypeNamespace:
		if _, err := cs.CoreV1().Namespaces().Get(ctx, r.Name, get); err != nil {
			return nil, nil, err
		}
		podNS = r.Name
	default:
		return nil, nil, fmt.Errorf("resource type %q cannot be tapped", r.Type)
	}
	if ls != nil {
		s, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return nil, nil, fmt.Errorf("%s/%s has an invalid selector: %w", r.Type, r.Name, err)
		}
		sel = s
	}
	if sel.Empty() && r.Type != wire.TypeNamespace {
		// A workload with an empty selector selects nothing (the API
		// forbids it); do not tap the whole namespace by accident.
		return sel, nil, nil
	}
	list, err := cs.CoreV1().Pods(podNS).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, nil, err
	}
	return sel, list.Items, nil
}

// cronJobPods lists the pods of the jobs a CronJob owns.
func cronJobPods(ctx context.Context, cs kubernetes.Interface, r *Resolved) (labels.Selector, []corev1.Pod, error) {
	cj, err := cs.BatchV1().CronJobs(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	jobs, err := cs.BatchV1().Jobs(r.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	var pods []corev1.Pod
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if !ownedBy(j.OwnerReferences, cj.UID) || j.Spec.Selector == nil {
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
		if err != nil || s.Empty() {
			continue
		}
		list, err := cs.CoreV1().Pods(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
		if err != nil {
			return nil, nil, err
		}
		for _, p := range list.Items {
			if s.Matches(labels.Set(p.Labels)) {
				pods = append(pods, p)
			}
		}
	}
	return labels.Everything(), pods, nil
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, o := range refs {
		if o.UID == uid {
			return true
		}
	}
	return false
}

// isMeshed reports whether the pod runs a Linkerd proxy, as a sidecar or a
// native sidecar (init container with restartPolicy Always).
func isMeshed(p *corev1.Pod) bool {
	if _, ok := p.Annotations[proxyVersionAnnot]; ok {
		return true
	}
	for _, c := range p.Spec.Containers {
		if c.Name == proxyContainer {
			return true
		}
	}
	for _, c := range p.Spec.InitContainers {
		if c.Name == proxyContainer {
			return true
		}
	}
	return false
}

func lookupError(err error, label, typ, name, ns, what string) error {
	where := fmt.Sprintf(" in namespace %q", ns)
	nsFlag := " -n " + ns
	if typ == wire.TypeNamespace || ns == "" {
		where, nsFlag = "", ""
	}
	short := kubectlShort[typ]
	switch {
	case apierrors.IsNotFound(err):
		return &Error{Kind: NotFound, Target: label, Status: 404,
			Msg:  fmt.Sprintf("%s%s %q not found%s", what, typ, name, where),
			Hint: fmt.Sprintf("check the name and namespace: kubectl get %s%s", short, nsFlag)}
	case apierrors.IsForbidden(err):
		return &Error{Kind: Forbidden, Target: label, Status: 403,
			Msg: fmt.Sprintf("not allowed to look up %s%s %q%s: %v", what, typ, name, where, apiMessage(err)),
			Hint: fmt.Sprintf("tapgate needs get on %s and list on pods%s; check with: kubectl auth can-i get %s%s && kubectl auth can-i list pods%s",
				plural(typ), where, plural(typ), nsFlag, nsFlag)}
	case apierrors.IsUnauthorized(err):
		return &Error{Kind: Unauthorized, Target: label, Status: 401,
			Msg:  "the apiserver rejected the credentials: " + apiMessage(err),
			Hint: "refresh the kubeconfig credentials (kubectl get ns should work)"}
	}
	return &Error{Kind: Unreachable, Target: label,
		Msg:  fmt.Sprintf("looking up %s%s/%s: %v", what, typ, name, err),
		Hint: "is the apiserver reachable? try: kubectl get " + short + nsFlag}
}

func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok && s.Status().Message != "" {
		return s.Status().Message
	}
	return err.Error()
}

func plural(typ string) string { return typ + "s" }

func noPodsError(label string, r *Resolved, selector string) error {
	in := ""
	if r.Namespace != "" {
		in = " in namespace " + r.Namespace
	}
	sel := ""
	if selector != "" {
		sel = fmt.Sprintf(" matching %q", selector)
	}
	e := &Error{Kind: NoPods, Target: label}
	nsFlag := ""
	if r.Namespace != "" {
		nsFlag = " -n " + r.Namespace
	}
	switch {
	case r.Pods == 0:
		e.Msg = fmt.Sprintf("%s%s has no pods%s", r.Ref(), in, sel)
		e.Hint = "is it scaled to zero, or is the label selector too narrow? kubectl get pods" + nsFlag
	case r.Meshed == 0:
		e.Msg = fmt.Sprintf("%s%s has %d pod(s)%s but none is meshed (no linkerd-proxy)", r.Ref(), in, r.Pods, sel)
		e.Hint = fmt.Sprintf("mesh it: kubectl get %s %s%s -o yaml | linkerd inject - | kubectl apply -f -",
			kubectlShort[r.Type], r.Name, nsFlag)
	case r.Meshed == r.TapDisabled:
		e.Msg = fmt.Sprintf("%s%s: all %d meshed pod(s)%s have tap disabled (%s: \"true\")", r.Ref(), in, r.Meshed, sel, disableTapAnnot)
		e.Hint = fmt.Sprintf("remove the %s annotation from the pod template and roll the pods", disableTapAnnot)
	default:
		e.Msg = fmt.Sprintf("%s%s has %d meshed, tap-enabled pod(s)%s but none is running", r.Ref(), in, r.Meshed-r.TapDisabled, sel)
		e.Hint = "check the pods: kubectl get pods" + nsFlag
	}
	return e
}

// summary is a one-line description of the pods, for notes.
func (r *Resolved) summary() string {
	parts := []string{fmt.Sprintf("%d pod(s)", r.Pods), fmt.Sprintf("%d meshed", r.Meshed)}
	if r.TapDisabled > 0 {
		parts = append(parts, fmt.Sprintf("%d tap-disabled", r.TapDisabled))
	}
	parts = append(parts, fmt.Sprintf("%d running", r.Running), fmt.Sprintf("%d tappable", r.Tappable))
	return strings.Join(parts, ", ")
}
