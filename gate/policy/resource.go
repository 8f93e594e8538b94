package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/tapgate/tapgate/gate"
)

// targetTypes maps every accepted spelling of a tappable resource type
// (Linkerd's valid tap types, their kubectl short names and plurals) to its
// canonical name.
var targetTypes = map[string]string{
	"cronjob": "cronjob", "cronjobs": "cronjob", "cj": "cronjob",
	"daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
	"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
	"job": "job", "jobs": "job",
	"namespace": "namespace", "namespaces": "namespace", "ns": "namespace",
	"pod": "pod", "pods": "pod", "po": "pod",
	"replicaset": "replicaset", "replicasets": "replicaset", "rs": "replicaset",
	"replicationcontroller": "replicationcontroller", "replicationcontrollers": "replicationcontroller", "rc": "replicationcontroller",
	"statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
}

// destinationTypes are the extra types a `to:` destination may name.
var destinationTypes = map[string]string{
	"service": "service", "services": "service", "svc": "service",
}

// nameRE is a Kubernetes object name (DNS subdomain); namespaceRE a
// namespace name (DNS label).
var (
	nameRE      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// canonicalTypes lists the canonical target types, for messages.
func canonicalTypes(withService bool) string {
	seen := map[string]bool{}
	var out []string
	for _, c := range targetTypes {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if withService {
		out = append(out, "service")
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// resourcePattern is the JSON Schema pattern of a resource string; it is
// built from the same tables the parser uses so the two cannot drift.
func resourcePattern(withService bool) string {
	var names []string
	for k := range targetTypes {
		names = append(names, k)
	}
	if withService {
		for k := range destinationTypes {
			names = append(names, k)
		}
	}
	// Longest first so that alternation never prefers a prefix ("ns" before
	// "namespace" would still be correct with the anchors, but sorted output
	// keeps the generated schema stable and readable).
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) > len(names[j])
		}
		return names[i] < names[j]
	})
	return `^(` + strings.Join(names, "|") + `)/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
}

// ParseResource parses a tap target such as "deploy/api" or "ns/prod" into
// a ResourceRef with its canonical type ("deployment", "namespace"). The
// namespace is not set; for a namespace target it is the name itself.
func ParseResource(s string) (gate.ResourceRef, error) {
	return parseResource(s, false)
}

// ParseDestination parses a `to` destination: any tap target type, or a
// service ("svc/backend").
func ParseDestination(s string) (gate.ResourceRef, error) {
	return parseResource(s, true)
}

func parseResource(s string, withService bool) (gate.ResourceRef, error) {
	example := "deploy/api-gateway"
	if withService {
		example = "svc/backend"
	}
	typ, name, ok := strings.Cut(s, "/")
	if !ok {
		if _, known := lookupType(typ, withService); known {
			return gate.ResourceRef{}, fmt.Errorf("resource %q names no object: write TYPE/NAME, e.g. %s/NAME", s, typ)
		}
		return gate.ResourceRef{}, fmt.Errorf("resource %q is not TYPE/NAME: write e.g. %s", s, example)
	}
	canon, known := lookupType(typ, withService)
	if !known {
		hint := ""
		if c, ok := lookupType(strings.ToLower(typ), withService); ok {
			hint = fmt.Sprintf(" (types are lower case: %s)", c)
		} else if !withService {
			if _, ok := destinationTypes[strings.ToLower(typ)]; ok {
				hint = " (a service can only be a destination, under to:; tap the workload behind it, e.g. deploy/NAME)"
			}
		}
		return gate.ResourceRef{}, fmt.Errorf("unknown resource type %q in %q%s: use one of %s, or a kubectl short name (deploy, sts, ds, rs, rc, po, ns, cj)", typ, s, hint, canonicalTypes(withService))
	}
	if name == "" {
		return gate.ResourceRef{}, fmt.Errorf("resource %q has an empty name: write e.g. %s/NAME", s, typ)
	}
	re := nameRE
	if canon == "namespace" {
		re = namespaceRE
	}
	if len(name) > 253 || !re.MatchString(name) {
		return gate.ResourceRef{}, fmt.Errorf("%q is not a valid Kubernetes %s name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", name, canon)
	}
	ref := gate.ResourceRef{Type: canon, Name: name}
	if canon == "namespace" {
		ref.Namespace = name
	}
	return ref, nil
}

func lookupType(t string, withService bool) (string, bool) {
	if c, ok := targetTypes[t]; ok {
		return c, true
	}
	if withService {
		if c, ok := destinationTypes[t]; ok {
			return c, true
		}
	}
	return "", false
}

// checkNamespace validates a namespace name.
func checkNamespace(ns string) error {
	if len(ns) > 63 || !namespaceRE.MatchString(ns) {
		return fmt.Errorf("%q is not a valid namespace name: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit", ns)
	}
	return nil
}

// CheckSelector validates a Kubernetes label selector given outside a
// policy file (the -l flag).
func CheckSelector(s string) error {
	if _, err := labels.Parse(s); err != nil {
		return fmt.Errorf("invalid label selector (%w): write comma-separated requirements, e.g. app=web,track!=canary", err)
	}
	return nil
}
