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
//   - decision (sequential by default), confidence (99%) and tolerance (2)
//     are written into the policy with their defaults, so Marshal shows
//     the effective test; a rule's own values override them only where it
//     sets them. A rule may set them only if it has a test (not count or
//     requestRate), and confidence or tolerance only if it decides
//     sequentially. Every rule is then checked by gate.CheckParams (e.g. a
//     budget of zero cannot be decided sequentially), reported at the key
//     concerned.
//   - stopOnFail: false sets gate.Policy.KeepTapping; stopOnPass defaults
//     to false.
//   - A compare rule's errorRate.maxIncrease is an absolute increase: 1pp,
//     1% and 0.01 all mean one percentage point. There is no maxRatio for
//     error rates (a baseline with no failures makes any ratio
//     undecidable); a latency comparison has exactly one of maxRatio (> 1)
//     and maxIncrease (a duration > 0). The baseline must be another
//     declared target; a compare rule with no target applies to every
//     target but its baseline.
//   - A policy file holds exactly one YAML document.
package policy
