package prom

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/tapgate/tapgate/gate"
)

// How a policy target becomes label matchers on the proxies' metrics.
//
// Linkerd-viz's scrape config (job linkerd-proxy) labels every series of a
// proxy with its pod's namespace and pod name, its owner as the proxy
// injector recorded it (the pod label linkerd.io/proxy-deployment=web
// becomes deployment="web"; the injector names the top owner, so a pod of a
// Deployment's ReplicaSet carries deployment, not replicaset, and a pod of
// a CronJob's Job carries cronjob; linkerd.io/proxy-job becomes k8s_job),
// and every other pod label with its name sanitized
// (rollouts-pod-template-hash=abc -> rollouts_pod_template_hash="abc",
// linkerd.io/foo -> foo). Outbound series also carry the destination's
// dst_namespace, dst_<owner>, dst_pod and dst_service, set by the proxy from
// Linkerd's destination service.
//
// Directions: an inbound target counts direction="inbound" at its pods, an
// outbound one direction="outbound" from its pods, and "any" both: exactly
// the two sides tap reports for the target. A request between two of the
// target's own pods is counted twice (outbound at the caller, inbound at the
// callee), by tap and by these metrics alike, so the two stay comparable.
// With `to`, tap passes the requests whose destination is `to`: that is the
// outbound side (direction="outbound" and the dst_* labels); for an
// explicitly inbound target the destination cannot be told apart (inbound
// series are labelled by the target itself), which gives a note.

// ownerMatcher is the matcher selecting the series of the workload typ/name:
// on the proxy's own labels, or with dst on the destination labels of
// outbound series.
func ownerMatcher(typ, name string, dst bool) (string, error) {
	p := ""
	if dst {
		p = "dst_"
	}
	switch typ {
	case "deployment", "statefulset", "daemonset", "replicationcontroller", "cronjob":
		return p + typ + "=" + quote(name), nil
	case "pod":
		return p + "pod=" + quote(name), nil
	case "service":
		if !dst {
			return "", fmt.Errorf("a service is not a workload: name the workload behind it")
		}
		return "dst_service=" + quote(name), nil
	case "job":
		if dst {
			// The destination service labels an endpoint by its owner:
			// k8s_job for a Job of its own.
			return "dst_k8s_job=" + quote(name), nil
		}
		// The Job controller's job-name pod label, which the scrape config
		// copies: unlike k8s_job it is also on the pods of a CronJob's Jobs.
		return "job_name=" + quote(name), nil
	case "replicaset":
		// The proxy labels a ReplicaSet's pods by its owner (deployment,
		// rollout) rather than by the ReplicaSet; its pods are named after
		// it, whoever owns it.
		return p + "pod=~" + quote(podsOf(name)), nil
	}
	return "", fmt.Errorf("resource type %q has no Linkerd metric label", typ)
}

// podsOf is the regular expression of the names Kubernetes generates for a
// ReplicaSet's pods: its name and "-", cut at 58 characters, and 5
// random characters.
func podsOf(rs string) string {
	base := rs + "-"
	if len(base) > 58 {
		base = base[:58]
	}
	return regexp.QuoteMeta(base) + "[a-z0-9]{5}"
}

// reserved are labels the proxy or the scrape sets on every series; a pod
// label of the same name does not reach the metrics under that name.
var reserved = map[string]bool{
	"job": true, "instance": true, "namespace": true, "pod": true,
	"direction": true, "authority": true, "classification": true,
	"status_code": true, "grpc_status": true, "tls": true, "le": true,
}

var invalidLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// metricLabel is the label a pod label key becomes under linkerd-viz's
// scrape config.
func metricLabel(key string) string {
	switch {
	case key == "linkerd.io/proxy-job":
		return "k8s_job"
	case strings.HasPrefix(key, "linkerd.io/proxy-"):
		key = strings.TrimPrefix(key, "linkerd.io/proxy-")
	case strings.HasPrefix(key, "linkerd.io/"):
		key = strings.TrimPrefix(key, "linkerd.io/")
	}
	return invalidLabelChars.ReplaceAllString(key, "_")
}

// selectorFor returns the label matchers (without braces) that select the
// series of target t, and notes on what they cannot express.
func selectorFor(t gate.Target) (string, []string, error) {
	if t.Resource.IsZero() {
		return "", nil, fmt.Errorf("target %q names no resource: the proxies' counters are read per workload", t.Name)
	}
	var m, notes []string
	outbound := t.Direction == gate.Outbound || (!t.To.IsZero() && t.Direction != gate.Inbound)
	switch {
	case outbound:
		m = append(m, `direction="outbound"`)
	case t.Direction == gate.Inbound:
		m = append(m, `direction="inbound"`)
	default:
		m = append(m, `direction=~"inbound|outbound"`)
	}

	r := t.Resource
	if r.Type == "namespace" {
		ns := r.Name
		if ns == "" {
			ns = r.Namespace
		}
		m = append(m, "namespace="+quote(ns))
	} else {
		if r.Namespace != "" {
			m = append(m, "namespace="+quote(r.Namespace))
		}
		om, err := ownerMatcher(r.Type, r.Name, false)
		if err != nil {
			return "", nil, fmt.Errorf("target %q: %w", t.Name, err)
		}
		m = append(m, om)
	}

	if !t.To.IsZero() {
		if outbound {
			to := t.To
			if to.Type == "namespace" {
				m = append(m, "dst_namespace="+quote(to.Name))
			} else {
				if to.Namespace != "" {
					m = append(m, "dst_namespace="+quote(to.Namespace))
				}
				om, err := ownerMatcher(to.Type, to.Name, true)
				if err != nil {
					return "", nil, fmt.Errorf("target %q: to: %w", t.Name, err)
				}
				m = append(m, om)
			}
		} else {
			notes = append(notes, fmt.Sprintf("to: %s cannot narrow the proxies' inbound counters (they name the target, not a destination): the totals are all of the target's inbound requests", t.To))
		}
	}

	if s := strings.TrimSpace(t.LabelSelector); s != "" {
		sm, sn, err := selectorMatchers(s)
		if err != nil {
			return "", nil, fmt.Errorf("target %q: %w", t.Name, err)
		}
		m = append(m, sm...)
		notes = append(notes, sn...)
	}

	if t.Match != (gate.HTTPMatch{}) {
		notes = append(notes, fmt.Sprintf("the proxies' counters cannot be filtered by the tap match (%s): the totals count all of the target's requests, so volume coverage reads low", describeMatch(t.Match)))
	}
	return strings.Join(m, ","), notes, nil
}

// selectorMatchers maps a Kubernetes label selector to matchers on the pod
// labels the scrape config copies. Every operator but gt/lt has an exact
// PromQL equivalent (a series without the label has it empty, as a pod
// without the label fails k=v and passes k!=v); terms that cannot be mapped
// are left out with a note.
func selectorMatchers(s string) ([]string, []string, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid labelSelector %q: %w", s, err)
	}
	reqs, _ := sel.Requirements()
	var m, notes []string
	for _, r := range reqs {
		name := metricLabel(r.Key())
		if reserved[name] || strings.HasPrefix(name, "dst_") || strings.HasPrefix(name, "__") {
			notes = append(notes, fmt.Sprintf("labelSelector term %s cannot be applied to the proxies' counters (%s is one of the metrics' own labels): the totals include pods it would exclude", r.String(), name))
			continue
		}
		vals := r.ValuesUnsorted()
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			m = append(m, name+"="+quote(vals[0]))
		case selection.NotEquals:
			m = append(m, name+"!="+quote(vals[0]))
		case selection.In:
			m = append(m, name+"=~"+quote(alternation(vals)))
		case selection.NotIn:
			m = append(m, name+"!~"+quote(alternation(vals)))
		case selection.Exists:
			m = append(m, name+`!=""`)
		case selection.DoesNotExist:
			m = append(m, name+`=""`)
		default:
			notes = append(notes, fmt.Sprintf("labelSelector term %s cannot be applied to the proxies' counters: the totals include pods it would exclude", r.String()))
		}
	}
	return m, notes, nil
}

func alternation(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = regexp.QuoteMeta(v)
	}
	return strings.Join(q, "|")
}

func describeMatch(h gate.HTTPMatch) string {
	var parts []string
	for _, kv := range [][2]string{{"scheme", h.Scheme}, {"method", h.Method}, {"authority", h.Authority}, {"path prefix", h.PathPrefix}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	return strings.Join(parts, ", ")
}

// quote writes a PromQL string literal (PromQL reads Go's escapes).
func quote(s string) string { return strconv.Quote(s) }
