package policy

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/tapgate/tapgate/gate"
)

// ToDocument converts a policy back into its YAML document, with every
// default written out, so that it shows the effective policy. Parse of the
// marshalled document yields an equal policy (except File and Line fields).
func ToDocument(p *gate.Policy) *Document {
	doc := &Document{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   &Metadata{Name: p.Name},
	}
	s := &Spec{
		Window:        NewDuration(p.Window),
		Warmup:        NewDuration(p.Warmup),
		CoverageFloor: NewPercent(p.CoverageFloor),
		RedactHeaders: p.RedactHeaders,
	}
	if p.MinRequests > 0 {
		s.MinRequests = ptr(p.MinRequests)
	}
	if p.OnInconclusive != 0 {
		s.OnInconclusive = p.OnInconclusive.String()
	}
	// The test's knobs and the early stops, with their effective values.
	t := (&gate.Rule{}).Params(p)
	s.Decision = t.Decision.String()
	s.Confidence = NewPercent(t.Confidence)
	s.Tolerance = NewFactor(t.Tolerance)
	s.StopOnPass = ptr(p.StopOnPass)
	s.StopOnFail = ptr(!p.KeepTapping)
	s.CrossCheck = docCrossCheck(p.CrossCheck)
	if c := p.Classification; c.FailOn != nil || len(c.Ignore) > 0 {
		cs := &ClassificationSpec{}
		if c.FailOn != nil {
			cs.FailOn = docConds(c.FailOn)
		}
		for _, ig := range c.Ignore {
			cs.Ignore = append(cs.Ignore, IgnoreSpec{When: docConds(ig.When), Route: docRoute(ig.Route)})
		}
		s.Classification = cs
	}
	for _, t := range p.Targets {
		s.Targets = append(s.Targets, docTarget(t))
	}
	for i := range p.Rules {
		s.Rules = append(s.Rules, docRule(&p.Rules[i]))
	}
	doc.Spec = s
	return doc
}

func ptr[T any](v T) *T { return &v }

// docCrossCheck writes spec.crossCheck only when it differs from the
// defaults, to keep rendered policies short.
func docCrossCheck(c gate.CrossCheckPolicy) *CrossCheckSpec {
	if c == (gate.CrossCheckPolicy{}) {
		return nil
	}
	cs := &CrossCheckSpec{Enabled: ptr(!c.Disabled), Required: ptr(c.Required), OnMismatch: "warn"}
	if c.MismatchInconclusive {
		cs.OnMismatch = "inconclusive"
	}
	if c.MinVolumeCoverage > 0 {
		cs.MinVolumeCoverage = NewPercent(c.MinVolumeCoverage)
	}
	if c.URL != "" || c.Namespace != "" || c.Service != "" || c.Port != 0 {
		cs.Prometheus = &PrometheusSpec{URL: c.URL, Namespace: c.Namespace, Service: c.Service}
		if c.Port != 0 {
			cs.Prometheus.Port = ptr(c.Port)
		}
	}
	return cs
}

func docConds(cs []gate.Cond) []Condition {
	out := make([]Condition, len(cs))
	for i, c := range cs {
		out[i] = Condition{Cond: c, Raw: c.String()}
	}
	return out
}

func docRoute(r *gate.Route) *RouteSpec {
	if r.IsZero() {
		return nil
	}
	rs := &RouteSpec{Method: r.Method, Authority: r.Authority}
	if r.Path != nil {
		rs.Path = r.Path.String()
	}
	return rs
}

func docTarget(t gate.Target) TargetSpec {
	ts := TargetSpec{
		Name:          t.Name,
		Namespace:     t.Resource.Namespace,
		LabelSelector: t.LabelSelector,
	}
	if !t.Resource.IsZero() {
		ts.Resource = t.Resource.String()
		if t.Resource.Type == "namespace" {
			ts.Namespace = ""
		}
	}
	if !t.To.IsZero() {
		ts.To = t.To.String()
		if t.To.Type != "namespace" && t.To.Namespace != t.Resource.Namespace {
			ts.ToNamespace = t.To.Namespace
		}
	}
	switch t.Direction {
	case gate.Inbound:
		ts.Direction = "inbound"
	case gate.Outbound:
		ts.Direction = "outbound"
	}
	if t.MaxRPS != 0 {
		ts.MaxRPS = ptr(t.MaxRPS)
	}
	if t.Match != (gate.HTTPMatch{}) {
		m := t.Match
		ts.Match = &MatchSpec{Scheme: m.Scheme, Method: m.Method, Authority: m.Authority, PathPrefix: m.PathPrefix}
	}
	return ts
}

func docRule(r *gate.Rule) RuleSpec {
	rs := RuleSpec{Name: r.Name, Target: r.Target, Route: docRoute(r.Route), DryRun: r.DryRun}
	if r.MinExplicit || r.MinRequests > 0 {
		rs.MinRequests = ptr(r.MinRequests)
	}
	switch r.Kind {
	case gate.SuccessRate:
		rs.SuccessRate = &SuccessRateSpec{Min: NewPercent(r.Min)}
	case gate.ErrorRate:
		rs.ErrorRate = &ErrorRateSpec{Max: NewPercent(r.Max)}
	case gate.LatencyQuantile:
		rs.Latency = &LatencySpec{Quantile: ptr(r.Quantile), Max: NewDuration(r.MaxLatency)}
		if r.Metric == gate.MetricDuration {
			rs.Latency.Metric = "duration"
		}
	case gate.RequestRate:
		rs.RequestRate = &RequestRateSpec{Min: ptr(r.Min)}
	case gate.ResponseCount:
		rs.Count = &CountSpec{Of: docConds(r.Count), Max: ptr(int(r.Max))}
	case gate.CompareErrorRate:
		rs.Compare = &CompareSpec{Baseline: r.Baseline, ErrorRate: &CompareErrorRateSpec{MaxIncrease: NewPoints(r.MaxIncrease)}}
	case gate.CompareLatency:
		l := &CompareLatencySpec{Quantile: ptr(r.Quantile)}
		if r.MaxIncreaseLatency > 0 {
			l.MaxIncrease = NewDuration(r.MaxIncreaseLatency)
		} else {
			l.MaxRatio = ptr(r.MaxRatio)
		}
		if r.Metric == gate.MetricDuration {
			l.Metric = "duration"
		}
		rs.Compare = &CompareSpec{Baseline: r.Baseline, Latency: l}
	}
	// A rule's own knobs, only where it overrides the spec's.
	if r.Decision != gate.DecisionDefault {
		rs.Decision = r.Decision.String()
	}
	if r.Confidence > 0 {
		rs.Confidence = NewPercent(r.Confidence)
	}
	if r.Tolerance > 0 {
		rs.Tolerance = NewFactor(r.Tolerance)
	}
	return rs
}

// Marshal writes the effective policy (defaults included) as YAML that
// Parse accepts.
func Marshal(p *gate.Policy) ([]byte, error) {
	return encode(ToDocument(p))
}

// encode writes a document with 2-space indentation, as Kubernetes users
// expect.
func encode(doc *Document) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return buf.Bytes(), nil
}
