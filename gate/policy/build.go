package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tapgate/tapgate/gate"
)

// Parse decodes and validates a policy document. file names it in errors.
// On failure the error is a *multierror.Error of *Error, one per problem, in
// document order (see Errors); the policy is then nil.
func Parse(file string, data []byte) (p *gate.Policy, err error) {
	// Defence in depth: the YAML library has panicked on hostile input in
	// the past; a policy loader must answer with an error, never a crash.
	defer func() {
		if r := recover(); r != nil {
			p = nil
			err = combine([]*Error{{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf("cannot parse policy (internal error: %v); please report this with the file", r)}})
		}
	}()
	root, perr := parseYAML(file, data)
	if perr != nil {
		return nil, combine([]*Error{perr})
	}
	d := newDecoder(file)
	var doc Document
	d.decode(root, reflect.ValueOf(&doc).Elem(), "", 0)
	if d.over {
		return nil, combine(d.errs)
	}
	p = d.build(&doc)
	p.File = file
	if len(d.errs) > 0 {
		return nil, combine(d.errs)
	}
	return p, nil
}

// parseYAML returns the single document's content node.
func parseYAML(file string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Line: 1, Column: 1, Msg: "policy is empty: expected a document starting with apiVersion: " + APIVersion + " and kind: " + Kind}
		}
		return nil, syntaxError(file, data, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: "policy is empty: expected a document starting with apiVersion: " + APIVersion + " and kind: " + Kind}
	}
	root := doc.Content[0]
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return nil, &Error{File: file, Line: line, Column: 1, Msg: "a policy file holds one document, found a second one after ---: put each policy in its own file"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(file, data, err)
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Column: root.Column, Msg: fmt.Sprintf("expected a GatePolicy mapping (apiVersion, kind, metadata, spec), got %s", describe(root))}
	}
	return root, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// syntaxError turns a YAML library error into a positioned Error.
func syntaxError(file string, data []byte, err error) *Error {
	msg := err.Error()
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if m[1] != "" {
			if n, e := strconv.Atoi(m[1]); e == nil && n > 0 {
				line = n
			}
		}
		msg = msg[len(m[0]):]
	}
	fix := "check indentation, and quote values containing ': ' or starting with special characters"
	if lines := bytes.Split(data, []byte("\n")); line <= len(lines) && bytes.HasPrefix(bytes.TrimLeft(lines[line-1], " "), []byte("\t")) {
		fix = "YAML does not allow tabs for indentation: indent with spaces"
	}
	return &Error{File: file, Line: line, Msg: "invalid YAML: " + msg + " (" + fix + ")"}
}

// build checks the decoded document and converts it to the core policy.
// Problems are added to d.errs; the returned policy is only meaningful when
// there are none.
func (d *decoder) build(doc *Document) *gate.Policy {
	p := &gate.Policy{
		MinRequests:    gate.DefaultMinRequests,
		OnInconclusive: gate.Inconclusive,
		CoverageFloor:  gate.DefaultCoverageFloor,
		Decision:       gate.Sequential,
		Confidence:     gate.DefaultConfidence,
		Tolerance:      gate.DefaultTolerance,
	}
	switch {
	case doc.APIVersion == "":
		d.errPath("apiVersion", "apiVersion is required: add apiVersion: %s", APIVersion)
	case doc.APIVersion != APIVersion:
		d.errPath("apiVersion", "unsupported apiVersion %q: this tapgate reads %s", doc.APIVersion, APIVersion)
	}
	switch {
	case doc.Kind == "":
		d.errPath("kind", "kind is required: add kind: %s", Kind)
	case doc.Kind != Kind:
		d.errPath("kind", "unsupported kind %q: a policy file has kind: %s", doc.Kind, Kind)
	}
	if doc.Metadata == nil || doc.Metadata.Name == "" {
		d.errPath("metadata.name", "metadata.name is required: name the policy, e.g. api-gateway-release (reports show it)")
	} else {
		p.Name = doc.Metadata.Name
	}
	if doc.Spec == nil {
		d.errPath("spec", "spec is required: add spec with window, targets and rules")
		return p
	}
	d.buildSpec(doc.Spec, p)
	return p
}

func (d *decoder) buildSpec(s *Spec, p *gate.Policy) {
	switch {
	case s.Window == nil:
		d.errPath("spec.window", "window is required: set how long to tap, e.g. window: 60s")
	case s.Window.Value <= 0:
		d.errPath("spec.window", "window must be longer than 0: set how long to tap, e.g. window: 60s")
	default:
		p.Window = s.Window.Value
	}
	if s.Warmup != nil {
		p.Warmup = s.Warmup.Value
		if s.Window != nil && s.Window.Value > 0 && p.Warmup >= s.Window.Value {
			d.errPath("spec.warmup", "warmup (%s) must be shorter than window (%s): the window is evaluated after the warmup, and a longer warmup usually means the two were swapped", formatDuration(p.Warmup), formatDuration(s.Window.Value))
		}
	}
	if s.MinRequests != nil {
		if *s.MinRequests < 1 {
			d.errPath("spec.minRequests", "minRequests must be at least 1 (default %d): no rule may decide on no evidence", gate.DefaultMinRequests)
		} else {
			p.MinRequests = *s.MinRequests
		}
	}
	if s.OnInconclusive != "" {
		o, ok := gate.ParseOutcome(s.OnInconclusive)
		if !ok {
			d.errPath("spec.onInconclusive", "onInconclusive %q is not one of fail, pass, inconclusive (the default)", s.OnInconclusive)
		} else {
			p.OnInconclusive = o
		}
	}
	if s.CoverageFloor != nil {
		p.CoverageFloor = s.CoverageFloor.Value
		if p.CoverageFloor <= 0 {
			d.errPath("spec.coverageFloor", "coverageFloor 0%% would let a target that was never tapped decide: use at least 1%% (the default is 90%%)")
		}
	}
	d.buildDecision(s, p)
	if c := s.Classification; c != nil {
		d.buildClassification(c, p)
	}
	if c := s.CrossCheck; c != nil {
		d.buildCrossCheck(c, p)
	}
	for i, h := range s.RedactHeaders {
		h = strings.ToLower(strings.TrimSpace(h))
		if !isToken(h) {
			d.errPath(fmt.Sprintf("spec.redactHeaders[%d]", i), "%q is not a header name: write it without ':' or spaces, e.g. x-session-key", s.RedactHeaders[i])
			continue
		}
		p.RedactHeaders = append(p.RedactHeaders, h)
	}

	if len(s.Targets) == 0 {
		d.errPath("spec.targets", "at least one target is required: add targets: [{name: web, resource: deploy/web}]")
	}
	names := map[string]int{}
	for i := range s.Targets {
		path := fmt.Sprintf("spec.targets[%d]", i)
		t := d.buildTarget(&s.Targets[i], path)
		if t.Name != "" {
			if first, dup := names[t.Name]; dup {
				d.errPath(path+".name", "duplicate target name %q (also spec.targets[%d]): give each target its own name", t.Name, first)
			} else {
				names[t.Name] = i
			}
		}
		p.Targets = append(p.Targets, t)
	}

	if len(s.Rules) == 0 {
		d.errPath("spec.rules", "at least one rule is required, e.g. rules: [{name: success-rate, successRate: {min: 99.5%%}}]")
	}
	ruleNames := map[string]int{}
	clean := make([]bool, len(s.Rules))
	for i := range s.Rules {
		path := fmt.Sprintf("spec.rules[%d]", i)
		before := len(d.errs)
		r := d.buildRule(&s.Rules[i], path, names, p)
		clean[i] = len(d.errs) == before
		if r.Name != "" {
			if first, dup := ruleNames[r.Name]; dup {
				d.errPath(path+".name", "duplicate rule name %q (also spec.rules[%d]): give each rule its own name", r.Name, first)
			} else {
				ruleNames[r.Name] = i
			}
		}
		p.Rules = append(p.Rules, r)
	}
	// The core's own check of each test's knobs, once the spec's defaults
	// are in place; a rule with problems of its own is not checked again.
	for i := range p.Rules {
		if clean[i] {
			d.checkParams(&p.Rules[i], p, fmt.Sprintf("spec.rules[%d]", i))
		}
	}
}

// buildDecision reads the spec's defaults for every rule's test and the
// early stops of a live run.
func (d *decoder) buildDecision(s *Spec, p *gate.Policy) {
	if s.Decision != "" {
		if dec, ok := gate.ParseDecision(s.Decision); ok {
			p.Decision = dec
		} else {
			d.errPath("spec.decision", "decision %q is not one of sequential (the default), estimate", s.Decision)
		}
	}
	if c := s.Confidence; c != nil {
		if msg := confidenceProblem(c.Value); msg != "" {
			d.errPath("spec.confidence", "%s", msg)
		} else {
			p.Confidence = c.Value
		}
	}
	if t := s.Tolerance; t != nil {
		if msg := toleranceProblem(t.Value); msg != "" {
			d.errPath("spec.tolerance", "%s", msg)
		} else {
			p.Tolerance = t.Value
		}
	}
	if s.StopOnPass != nil {
		p.StopOnPass = *s.StopOnPass
	}
	if s.StopOnFail != nil {
		p.KeepTapping = !*s.StopOnFail
	}
}

// buildCrossCheck reads spec.crossCheck.
func (d *decoder) buildCrossCheck(c *CrossCheckSpec, p *gate.Policy) {
	cc := &p.CrossCheck
	if c.Enabled != nil {
		cc.Disabled = !*c.Enabled
	}
	if c.Required != nil {
		cc.Required = *c.Required
		if cc.Required && cc.Disabled {
			d.errPath("spec.crossCheck.required", "required is set but the cross-check is disabled (enabled: false): remove one of them")
		}
	}
	switch c.OnMismatch {
	case "", "warn":
	case "inconclusive":
		cc.MismatchInconclusive = true
	default:
		d.errPath("spec.crossCheck.onMismatch", "onMismatch %q is not warn (the default) or inconclusive", c.OnMismatch)
	}
	if v := c.MinVolumeCoverage; v != nil {
		cc.MinVolumeCoverage = v.Value
	}
	if pr := c.Prometheus; pr != nil {
		cc.URL, cc.Namespace, cc.Service = pr.URL, pr.Namespace, pr.Service
		if pr.URL != "" {
			u, err := url.Parse(pr.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.errPath("spec.crossCheck.prometheus.url", "url %q is not an http(s) URL such as http://prometheus.monitoring:9090", pr.URL)
			}
			if pr.Namespace != "" || pr.Service != "" || pr.Port != nil {
				d.errPath("spec.crossCheck.prometheus.url", "url and namespace/service/port both say where Prometheus is: give the url, or the service reached through the apiserver, not both")
			}
		}
		if pr.Namespace != "" {
			if err := checkNamespace(pr.Namespace); err != nil {
				d.errPath("spec.crossCheck.prometheus.namespace", "%v", err)
			}
		}
		if pr.Port != nil {
			cc.Port = *pr.Port
			if cc.Port < 1 || cc.Port > 65535 {
				d.errPath("spec.crossCheck.prometheus.port", "port %d is not between 1 and 65535", cc.Port)
			}
		}
	}
}

// confidenceProblem and toleranceProblem word a bad knob as
// gate.CheckParams does (a test keeps them in step), for values written in
// the policy, which are reported at their own line.
func confidenceProblem(v float64) string {
	if v > 0.5 && v < 1 {
		return ""
	}
	msg := fmt.Sprintf("confidence %s must be above 50%% and below 100%%, e.g. 99%%", gate.FormatPercent(v))
	if v < 0.5 {
		msg += ": it is how sure a decision must be, not the risk of a wrong one; for at most a 1% risk write 99%"
	}
	return msg
}

func toleranceProblem(v float64) string {
	if v > 1 && !math.IsInf(v, 0) && !math.IsNaN(v) {
		return ""
	}
	return fmt.Sprintf("tolerance %s must be greater than 1 (the default is 2: the bounds hold at half and at twice the budget)", strconv.FormatFloat(v, 'f', -1, 64))
}

// buildRuleKnobs reads a rule's own decision, confidence and tolerance.
func (d *decoder) buildRuleKnobs(rs *RuleSpec, r *gate.Rule, path string, p *gate.Policy) {
	set := map[string]bool{"decision": rs.Decision != "", "confidence": rs.Confidence != nil, "tolerance": rs.Tolerance != nil}
	if r.Kind != 0 && !r.Kind.Tested() {
		for _, k := range []string{"decision", "confidence", "tolerance"} {
			if set[k] {
				d.errPath(path+"."+k, "%s does not apply to a %s rule, which has no statistical test (successRate, errorRate, latency and compare rules have one): remove %s", k, r.Kind, k)
			}
		}
		return
	}
	if rs.Decision != "" {
		if dec, ok := gate.ParseDecision(rs.Decision); ok {
			r.Decision = dec
		} else {
			d.errPath(path+".decision", "decision %q is not one of sequential, estimate (default: spec.decision)", rs.Decision)
		}
	}
	estimate := ""
	if r.Params(p).Decision == gate.Estimate {
		estimate = "spec.decision: estimate"
		if r.Decision == gate.Estimate {
			estimate = "decision: estimate on the rule"
		}
	}
	if c := rs.Confidence; c != nil {
		switch msg := confidenceProblem(c.Value); {
		case estimate != "":
			d.errPath(path+".confidence", "confidence has no effect: the rule decides by estimate (%s), which compares the sample's point estimate with the threshold and has no error bounds; remove confidence, or set decision: sequential", estimate)
		case msg != "":
			d.errPath(path+".confidence", "%s", msg)
		default:
			r.Confidence = c.Value
		}
	}
	if t := rs.Tolerance; t != nil {
		switch msg := toleranceProblem(t.Value); {
		case estimate != "":
			d.errPath(path+".tolerance", "tolerance has no effect: the rule decides by estimate (%s), which compares the sample's point estimate with the threshold and has no error bounds; remove tolerance, or set decision: sequential", estimate)
		case msg != "":
			d.errPath(path+".tolerance", "%s", msg)
		default:
			r.Tolerance = t.Value
		}
	}
}

// checkParams reports gate.CheckParams's problem with a rule at the key it
// concerns: the knob, or the budget that cannot be decided.
func (d *decoder) checkParams(r *gate.Rule, p *gate.Policy, path string) {
	err := gate.CheckParams(r, p)
	if err == nil {
		return
	}
	at := path
	t := r.Params(p)
	switch {
	case confidenceProblem(t.Confidence) != "":
		at = "spec.confidence"
		if r.Confidence > 0 {
			at = path + ".confidence"
		}
	case toleranceProblem(t.Tolerance) != "":
		at = "spec.tolerance"
		if r.Tolerance > 0 {
			at = path + ".tolerance"
		}
	case r.Kind == gate.SuccessRate:
		at = path + ".successRate.min"
	case r.Kind == gate.ErrorRate:
		at = path + ".errorRate.max"
	}
	d.errPath(at, "%s", err.Error())
}

func (d *decoder) buildClassification(c *ClassificationSpec, p *gate.Policy) {
	if c.FailOn != nil {
		if len(c.FailOn) == 0 {
			d.errPath("spec.classification.failOn", "failOn is empty, so no response would ever fail: list conditions such as [5xx, grpc-error, reset], or remove failOn for that default")
		}
		p.Classification.FailOn = conds(c.FailOn)
	}
	for i := range c.Ignore {
		path := fmt.Sprintf("spec.classification.ignore[%d]", i)
		ig := &c.Ignore[i]
		if len(ig.When) == 0 {
			d.errPath(path+".when", "when is required: list the conditions to ignore, e.g. when: [\"503\"]")
		}
		p.Classification.Ignore = append(p.Classification.Ignore, gate.IgnoreRule{
			When:  conds(ig.When),
			Route: d.buildRoute(ig.Route, path+".route"),
			Line:  d.line(path),
		})
	}
}

func conds(cs []Condition) []gate.Cond {
	out := make([]gate.Cond, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Cond)
	}
	return out
}

func (d *decoder) line(path string) int {
	if n := d.nodeOf(path); n != nil {
		return n.Line
	}
	return 0
}

func (d *decoder) buildTarget(ts *TargetSpec, path string) gate.Target {
	t := gate.Target{Name: ts.Name, LabelSelector: ts.LabelSelector, Line: d.line(path)}
	if ts.Name == "" {
		d.errPath(path+".name", "target name is required: name it, e.g. name: web (rules refer to it by name)")
	}
	if ts.Namespace != "" {
		if err := checkNamespace(ts.Namespace); err != nil {
			d.errPath(path+".namespace", "%v", err)
		}
	}
	t.Resource.Namespace = ts.Namespace
	if ts.Resource != "" {
		ref, err := ParseResource(ts.Resource)
		switch {
		case err != nil:
			d.errPath(path+".resource", "%v", err)
		case ref.Type == "namespace" && ts.Namespace != "" && ts.Namespace != ref.Name:
			d.errPath(path+".namespace", "namespace %q contradicts the namespace target %s: remove namespace", ts.Namespace, ts.Resource)
		default:
			if ref.Type != "namespace" {
				ref.Namespace = ts.Namespace
			}
			t.Resource = ref
		}
	}
	switch {
	case ts.To != "":
		ref, err := ParseDestination(ts.To)
		if err != nil {
			d.errPath(path+".to", "%v", err)
			break
		}
		if ref.Type != "namespace" {
			ref.Namespace = t.Resource.Namespace
			if ts.ToNamespace != "" {
				ref.Namespace = ts.ToNamespace
			}
		} else if ts.ToNamespace != "" && ts.ToNamespace != ref.Name {
			d.errPath(path+".toNamespace", "toNamespace %q contradicts the namespace destination %s: remove toNamespace", ts.ToNamespace, ts.To)
		}
		t.To = ref
		if ts.ToNamespace != "" {
			if err := checkNamespace(ts.ToNamespace); err != nil {
				d.errPath(path+".toNamespace", "%v", err)
			}
		}
	case ts.ToNamespace != "":
		d.errPath(path+".toNamespace", "toNamespace is set but to is not: add to: (e.g. to: svc/backend) or remove toNamespace")
	}
	if ts.LabelSelector != "" {
		if _, err := labels.Parse(ts.LabelSelector); err != nil {
			d.errPath(path+".labelSelector", "invalid label selector %q (%v): write comma-separated requirements, e.g. app=web,track!=canary", ts.LabelSelector, err)
		}
	}
	switch ts.Direction {
	case "", "any":
	case "inbound":
		t.Direction = gate.Inbound
	case "outbound":
		t.Direction = gate.Outbound
	default:
		d.errPath(path+".direction", "direction %q is not one of inbound, outbound, any (lower case; default any)", ts.Direction)
	}
	if ts.MaxRPS != nil {
		if *ts.MaxRPS < 0 {
			d.errPath(path+".maxRPS", "maxRPS must not be negative: use 0 for Linkerd's default of 100 requests per second, or a positive rate")
		} else {
			t.MaxRPS = *ts.MaxRPS
		}
	}
	if m := ts.Match; m != nil {
		mp := path + ".match"
		switch strings.ToLower(m.Scheme) {
		case "", "http", "https":
		default:
			d.errPath(mp+".scheme", "scheme %q is not http or https", m.Scheme)
		}
		if m.Method != "" && !isToken(m.Method) {
			d.errPath(mp+".method", "method %q is not an HTTP method: write e.g. GET or POST", m.Method)
		}
		if m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
			d.errPath(mp+".pathPrefix", "pathPrefix %q must start with /", m.PathPrefix)
		}
		t.Match = gate.HTTPMatch{Scheme: strings.ToLower(m.Scheme), Method: strings.ToUpper(m.Method), Authority: m.Authority, PathPrefix: m.PathPrefix}
	}
	return t
}

func (d *decoder) buildRoute(rs *RouteSpec, path string) *gate.Route {
	if rs == nil {
		return nil
	}
	r := &gate.Route{Method: rs.Method, Authority: rs.Authority}
	if rs.Method != "" && !isToken(rs.Method) {
		d.errPath(path+".method", "method %q is not an HTTP method: write e.g. GET or POST", rs.Method)
	}
	if rs.Path != "" {
		re, err := regexp.Compile(rs.Path)
		if err != nil {
			d.errPath(path+".path", "invalid path regular expression: %v (Go RE2 syntax; escape literal characters such as . ? + with a backslash)", err)
		} else {
			r.Path = re
		}
	}
	if r.IsZero() {
		return nil
	}
	return r
}

func (d *decoder) buildRule(rs *RuleSpec, path string, targets map[string]int, p *gate.Policy) gate.Rule {
	r := gate.Rule{Name: rs.Name, Target: rs.Target, DryRun: rs.DryRun, Line: d.line(path)}
	if rs.Name == "" {
		d.errPath(path+".name", "rule name is required: name it, e.g. name: p99-latency (reports show it)")
	}
	if rs.Target != "" {
		if _, ok := targets[rs.Target]; !ok {
			d.errPath(path+".target", "rule refers to target %q, which is not declared: use one of the names under spec.targets (%s), or remove target to apply the rule to every target", rs.Target, strings.Join(sortedKeys(targets), ", "))
		}
	}
	r.Route = d.buildRoute(rs.Route, path+".route")
	if rs.MinRequests != nil {
		if *rs.MinRequests < 1 {
			d.errPath(path+".minRequests", "minRequests must be at least 1: no rule may decide on no evidence")
		} else {
			r.MinRequests = *rs.MinRequests
			r.MinExplicit = true
		}
	}

	var kinds []string
	present := []bool{rs.SuccessRate != nil, rs.ErrorRate != nil, rs.Latency != nil, rs.RequestRate != nil, rs.Count != nil, rs.Compare != nil}
	for i, ok := range present {
		if ok {
			kinds = append(kinds, ruleKinds[i])
		}
	}
	switch len(kinds) {
	case 0:
		d.errPath(path, "rule %q has no check: add exactly one of %s", rs.Name, strings.Join(ruleKinds, ", "))
		return r
	case 1:
	default:
		d.errPath(path, "rule %q has %d checks (%s): a rule has exactly one; split it into one rule per check", rs.Name, len(kinds), strings.Join(kinds, ", "))
		return r
	}

	switch {
	case rs.SuccessRate != nil:
		r.Kind = gate.SuccessRate
		if rs.SuccessRate.Min == nil {
			d.errPath(path+".successRate.min", "successRate needs min: the lowest acceptable share of successful requests, e.g. {min: 99.5%%}")
		} else {
			r.Min = rs.SuccessRate.Min.Value
		}
	case rs.ErrorRate != nil:
		r.Kind = gate.ErrorRate
		if rs.ErrorRate.Max == nil {
			d.errPath(path+".errorRate.max", "errorRate needs max: the highest acceptable share of failed requests, e.g. {max: 0.1%%}")
		} else {
			r.Max = rs.ErrorRate.Max.Value
		}
	case rs.Latency != nil:
		r.Kind = gate.LatencyQuantile
		l := rs.Latency
		lp := path + ".latency"
		r.Quantile = d.buildQuantile(l.Quantile, lp)
		switch {
		case l.Max == nil:
			d.errPath(lp+".max", "latency needs max: the highest acceptable value of the quantile, e.g. max: 300ms")
		case l.Max.Value <= 0:
			d.errPath(lp+".max", "max must be longer than 0, e.g. max: 300ms")
		default:
			r.MaxLatency = l.Max.Value
		}
		r.Metric = d.buildMetric(l.Metric, lp)
	case rs.RequestRate != nil:
		r.Kind = gate.RequestRate
		switch m := rs.RequestRate.Min; {
		case m == nil:
			d.errPath(path+".requestRate.min", "requestRate needs min: the lowest acceptable requests per second seen by tap, e.g. {min: 1}")
		case *m <= 0:
			d.errPath(path+".requestRate.min", "requestRate min must be greater than 0 (a minimum of 0 always passes), e.g. {min: 1}")
		default:
			r.Min = *m
		}
	case rs.Count != nil:
		r.Kind = gate.ResponseCount
		if len(rs.Count.Of) == 0 {
			d.errPath(path+".count.of", "count needs of: the responses to count, e.g. of: [\"503\", UNAVAILABLE]")
		}
		r.Count = conds(rs.Count.Of)
		if m := rs.Count.Max; m != nil {
			if *m < 0 {
				d.errPath(path+".count.max", "count max must not be negative: 0 means no such response is allowed")
			} else {
				r.Max = float64(*m)
			}
		}
	case rs.Compare != nil:
		d.buildCompare(rs, &r, path+".compare", targets)
	}
	d.buildRuleKnobs(rs, &r, path, p)
	return r
}

func (d *decoder) buildQuantile(q *float64, path string) float64 {
	switch {
	case q == nil:
		d.errPath(path+".quantile", "latency needs quantile: e.g. quantile: 0.99 for p99")
	case *q <= 0 || *q >= 1:
		hint := ""
		if *q > 1 && *q < 100 {
			hint = fmt.Sprintf("; %s looks like a percentile: write %s", strconv.FormatFloat(*q, 'f', -1, 64), strconv.FormatFloat(*q/100, 'f', -1, 64))
		}
		d.errPath(path+".quantile", "quantile must be between 0 and 1 exclusive (e.g. 0.99)%s", hint)
	default:
		return *q
	}
	return 0
}

func (d *decoder) buildMetric(m, path string) gate.LatencyMetric {
	switch m {
	case "", "latency":
	case "duration":
		return gate.MetricDuration
	default:
		d.errPath(path+".metric", "metric %q is not latency (time to response headers, the default) or duration (time to end of stream)", m)
	}
	return gate.MetricLatency
}

// buildCompare reads a rule that judges its target against a baseline
// target; with no target it applies to every target but the baseline.
func (d *decoder) buildCompare(rs *RuleSpec, r *gate.Rule, path string, targets map[string]int) {
	c := rs.Compare
	_, known := targets[c.Baseline]
	switch {
	case c.Baseline == "":
		d.errPath(path+".baseline", "compare needs baseline: the name of the target to compare with, e.g. baseline: stable")
	case !known:
		d.errPath(path+".baseline", "baseline %q is not a declared target: use one of the names under spec.targets (%s)", c.Baseline, strings.Join(sortedKeys(targets), ", "))
	case rs.Target == c.Baseline:
		d.errPath(path+".baseline", "baseline %q is the rule's own target, and a target cannot be compared with itself: set baseline to the target to compare with (e.g. stable), or target to the one to judge (e.g. canary)", c.Baseline)
	case rs.Target == "" && len(targets) == 1:
		d.errPath(path+".baseline", "baseline %q is the only target, so the rule has nothing to compare with it: add the target to judge (e.g. the canary) under spec.targets", c.Baseline)
	default:
		r.Baseline = c.Baseline
	}
	switch {
	case c.ErrorRate == nil && c.Latency == nil:
		d.errPath(path, "compare needs one of %s: e.g. errorRate: {maxIncrease: 1pp} or latency: {quantile: 0.99, maxRatio: 1.2}", strings.Join(compareKinds, ", "))
	case c.ErrorRate != nil && c.Latency != nil:
		d.errPath(path, "compare has both errorRate and latency: a rule compares one thing; split it into one rule for each")
	case c.ErrorRate != nil:
		r.Kind = gate.CompareErrorRate
		ep := path + ".errorRate.maxIncrease"
		switch m := c.ErrorRate.MaxIncrease; {
		case m == nil:
			d.errPath(ep, "errorRate needs maxIncrease: how many percentage points above the baseline's error rate this target's may be, e.g. {maxIncrease: 1pp}")
		case m.Value <= 0:
			d.errPath(ep, "maxIncrease must be more than 0, e.g. 1pp: with no margin this target would have to fail no more often than the baseline, which no sample can show")
		case m.Value >= 1:
			d.errPath(ep, "maxIncrease %s would allow every request to fail: use less than 100pp, e.g. 1pp", strings.TrimSpace(m.Raw))
		default:
			r.MaxIncrease = m.Value
		}
	default:
		r.Kind = gate.CompareLatency
		l := c.Latency
		lp := path + ".latency"
		r.Quantile = d.buildQuantile(l.Quantile, lp)
		r.Metric = d.buildMetric(l.Metric, lp)
		switch {
		case l.MaxRatio == nil && l.MaxIncrease == nil:
			d.errPath(lp+".maxRatio", "compare latency needs maxRatio or maxIncrease: how much slower than the baseline's the quantile may be, e.g. maxRatio: 1.2 (at most 20%% slower) or maxIncrease: 50ms")
		case l.MaxRatio != nil && l.MaxIncrease != nil:
			d.errPath(lp+".maxIncrease", "latency has both maxRatio and maxIncrease: choose one, a ratio (maxRatio: 1.2) or a duration (maxIncrease: 50ms)")
		case l.MaxRatio != nil:
			if *l.MaxRatio <= 1 {
				d.errPath(lp+".maxRatio", "maxRatio must be greater than 1, e.g. 1.2 for at most 20%% slower: at %s this target would have to be at least as fast as the baseline, a margin of nothing that no sample can show", strconv.FormatFloat(*l.MaxRatio, 'f', -1, 64))
			} else {
				r.MaxRatio = *l.MaxRatio
			}
		default:
			if l.MaxIncrease.Value <= 0 {
				d.errPath(lp+".maxIncrease", "maxIncrease must be longer than 0, e.g. 50ms: with no margin this target would have to be exactly as fast as the baseline, which no sample can show")
			} else {
				r.MaxIncreaseLatency = l.MaxIncrease.Value
			}
		}
	}
}

// isToken reports whether s is a non-empty HTTP token (header name, method).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
