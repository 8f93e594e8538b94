// Package policy loads tapgate gate policies: Kubernetes-shaped YAML
// (apiVersion tapgate.dev/v1alpha1, kind GatePolicy) into the core
// *gate.Policy, and builds the same policy from command-line flags (AdHoc).
//
// Decoding is strict and reports every problem at once: the yaml.Node tree
// is walked against the Document types (which also generate the JSON Schema
// in schema/gatepolicy.schema.json), so unknown keys, duplicate keys and
// wrong types are found with their line and column, and the semantic checks
// (ranges, cross-references, required fields) run on whatever decoded. Each
// problem is a *Error ("file:line:col: spec.rules[2].latency.quantile:
// what is wrong and how to fix it"); Parse returns them in a
// *multierror.Error in document order.
//
// Decisions worth knowing:
//   - A key set to null is treated as absent, as Kubernetes does.
//   - Percentages are "99.5%" (a string) or a ratio 0.995 (a number); a
//     quoted number such as "0.995" is rejected as ambiguous, and a number
//     above 1 is rejected with a "did you mean 99.5%?" hint.
//   - Durations are Go duration strings ("500ms", "1.5s", "2m"); a bare 0
//     is accepted, other bare numbers are not (the unit is required).
//   - Resource types, direction, metric and onInconclusive are lower case
//     exactly as documented, the same as the schema accepts.
//   - A namespace target ("ns/prod") has Namespace equal to its name. A
//     target without namespace leaves it empty: the caller decides (the
//     kubeconfig's default namespace). A `to` destination takes the
//     target's namespace unless toNamespace is given.
//   - metadata.name, and the name of every target and rule, are required:
//     reports and rule targets refer to them.
//   - count.max defaults to 0 (no such response allowed).
//   - A policy file holds exactly one YAML document.
package policy
