package sim

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tapgate/tapgate/gate"
)

// Scenario is a decoded scenario file: the cluster's namespaces and
// workloads, and the traffic each receives.
type Scenario struct {
	Name string `yaml:"name"`
	// Seed makes generation deterministic; the same seed gives the same
	// requests in the same order.
	Seed uint64 `yaml:"seed"`
	// Duration ends the simulation (tap streams end); 0 runs until stopped.
	Duration Duration `yaml:"duration"`
	// ControlPlaneNamespace is the control_plane_ns label; default linkerd.
	ControlPlaneNamespace string      `yaml:"controlPlaneNamespace"`
	Namespaces            []Namespace `yaml:"namespaces"`
}

// Namespace holds workloads.
type Namespace struct {
	Name        string       `yaml:"name"`
	Deployments []Deployment `yaml:"deployments"`
}

// Deployment is a workload whose pods receive traffic.
type Deployment struct {
	Name string `yaml:"name"`
	// Kind is deployment (default), statefulset or daemonset; it decides pod
	// names and the owner label the proxy reports.
	Kind   string            `yaml:"kind"`
	Pods   int               `yaml:"pods"`
	Labels map[string]string `yaml:"labels"`
	// Meshed pods run a proxy; only they emit tap events. Default true.
	Meshed *bool `yaml:"meshed"`
	// TapEnabled pods may be tapped (viz.linkerd.io/tap-enabled). Default true.
	TapEnabled     *bool  `yaml:"tapEnabled"`
	ServiceAccount string `yaml:"serviceAccount"`
	Port           int    `yaml:"port"`
	// Traffic is the deployment's own (ingress) traffic and how it behaves.
	Traffic `yaml:",inline"`
	Routes  []Route  `yaml:"routes"`
	Phases  []Phase  `yaml:"phases"`
	Callers []Caller `yaml:"callers"`
}

// Traffic is the request rate, error mix and latency of a workload; phases
// override the fields they set.
type Traffic struct {
	// RPS is requests per second from clients outside the model, spread
	// over the pods.
	RPS *float64 `yaml:"rps"`
	// Errors maps a response condition to its probability: an HTTP status
	// ("503"), a gRPC code ("UNAVAILABLE" or "grpc:14", gRPC routes only) or
	// "reset". Probabilities are ratios (0.02) or percentages ("2%").
	Errors map[string]Ratio `yaml:"errors"`
	// ErrorsLateInSecond, when set below 1, puts the errors only on
	// requests arriving in the last share of each simulated second (0.5:
	// the last 500ms), each at 1/share times its probability, so the
	// overall share of every error stays as Errors says. Tap's
	// first-N-per-second sampling then under-samples them. 1 (the default)
	// spreads them evenly.
	ErrorsLateInSecond *Ratio   `yaml:"errorsLateInSecond"`
	Latency            *Latency `yaml:"latency"`
}

// Phase overrides traffic from a point in time on, e.g. an error burst.
type Phase struct {
	From    Duration `yaml:"from"`
	Traffic `yaml:",inline"`
}

// Route is one kind of request a workload serves.
type Route struct {
	Method    string  `yaml:"method"`
	Path      string  `yaml:"path"`
	Authority string  `yaml:"authority"`
	GRPC      bool    `yaml:"grpc"`
	Weight    float64 `yaml:"weight"`
	Bytes     int     `yaml:"bytes"`
}

// Caller is outbound traffic from this workload's pods to another
// workload: each request is seen OUTBOUND by the caller's proxy and INBOUND
// by the callee's, and behaves as the callee's traffic settings say.
type Caller struct {
	// To is "name" (same namespace) or "namespace/name".
	To  string  `yaml:"to"`
	RPS float64 `yaml:"rps"`
	// Routes default to the callee's routes.
	Routes []Route `yaml:"routes"`
}

// Latency is time to response headers: constant, or lognormal given its
// median and 99th percentile.
type Latency struct {
	P50      Duration `yaml:"p50"`
	P99      Duration `yaml:"p99"`
	Constant Duration `yaml:"constant"`
}

// Duration is a time.Duration written as a Go duration string ("250ms").
type Duration time.Duration

// UnmarshalYAML accepts only duration strings: a bare number has no unit.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration such as 250ms", n.Line)
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration: write it with a unit, e.g. 250ms or 20s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Ratio is a probability written as 0.02 or "2%".
type Ratio float64

// UnmarshalYAML parses a ratio or a percentage.
func (r *Ratio) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a probability such as 0.02 or \"2%%\"", n.Line)
	}
	s := strings.TrimSpace(n.Value)
	div := 1.0
	if strings.HasSuffix(s, "%") {
		s, div = strings.TrimSpace(strings.TrimSuffix(s, "%")), 100
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("line %d: %q is not a probability: write 0.02 or \"2%%\"", n.Line, n.Value)
	}
	*r = Ratio(v / div)
	return nil
}

//go:embed scenarios/demo.yaml
var demoYAML []byte

//go:embed scenarios/demo-stable.yaml
var demoStable []byte

//go:embed scenarios/demo-canary.yaml
var demoCanary []byte

// DemoPolicy is one of the policies `tapgate demo` gates DemoScenario with.
type DemoPolicy struct {
	File string
	Data []byte
}

// DemoPolicies are the two gates of `tapgate demo`, run at the same time:
// the stable deployment on its own, and the canary against its budgets and
// against stable.
func DemoPolicies() []DemoPolicy {
	return []DemoPolicy{
		{File: "demo-stable.yaml (built in)", Data: demoStable},
		{File: "demo-canary.yaml (built in)", Data: demoCanary},
	}
}

// DemoScenario is the scenario `tapgate demo` runs: namespace shop with a
// healthy checkout deployment and a broken checkout-canary.
func DemoScenario() *Scenario {
	s, err := Parse(demoYAML, "demo.yaml")
	if err != nil {
		// The embedded file is tested; failing here is a build defect.
		panic("sim: embedded demo scenario is invalid: " + err.Error())
	}
	return s
}

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, path)
}

// Parse decodes a scenario strictly (unknown and duplicate keys are
// errors) and validates it; every problem is reported with file:line.
func Parse(b []byte, file string) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(file, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty scenario: it needs at least one namespace with a deployment", file)
		}
		return nil, yamlError(file, err)
	}
	v := &validator{file: file, root: &root}
	s.validate(v)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &s, nil
}

var (
	yamlLineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownKeyRE  = regexp.MustCompile(`^field (\S+) not found in type sim\.(\w+)$`)
	typeNameOfKey = map[string]string{"Scenario": "the scenario", "Namespace": "a namespace", "Deployment": "a deployment",
		"Phase": "a phase", "Route": "a route", "Caller": "a caller", "Latency": "latency"}
)

// yamlError rewrites the decoder's "line N: msg" errors as "file:N: msg",
// one per line, so editors can jump to them.
func yamlError(file string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs []error
	for _, m := range msgs {
		sm := yamlLineRE.FindStringSubmatch(m)
		if sm == nil {
			errs = append(errs, fmt.Errorf("%s: %s", file, m))
			continue
		}
		msg := sm[2]
		if k := unknownKeyRE.FindStringSubmatch(msg); k != nil {
			msg = fmt.Sprintf("unknown key %q in %s (keys are case-sensitive)", k[1], typeNameOfKey[k[2]])
		}
		errs = append(errs, fmt.Errorf("%s:%s: %s", file, sm[1], msg))
	}
	return errors.Join(errs...)
}

type validator struct {
	file string
	root *yaml.Node
	errs []error
}

// errorf records a problem at the node reached by path (map keys and
// sequence indexes from the document root).
func (v *validator) errorf(path []any, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s:%d: %s", v.file, lineOf(v.root, path), fmt.Sprintf(format, args...)))
}

func lineOf(n *yaml.Node, path []any) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return line
			}
			n = n.Content[k]
			line = n.Line
		}
	}
	return line
}

func path(p ...any) []any { return p }

func with(p []any, more ...any) []any {
	return append(append(make([]any, 0, len(p)+len(more)), p...), more...)
}

func (s *Scenario) validate(v *validator) {
	if s.Duration < 0 {
		v.errorf(path("duration"), "duration must not be negative")
	}
	if len(s.Namespaces) == 0 {
		v.errorf(nil, "no namespaces: a scenario needs at least one namespace with a deployment")
	}
	names := map[string]bool{}
	for i := range s.Namespaces {
		ns := &s.Namespaces[i]
		p := path("namespaces", i)
		if !isDNSLabel(ns.Name) {
			v.errorf(with(p, "name"), "namespace name %q must be a DNS label (lowercase letters, digits, '-')", ns.Name)
		}
		if names[ns.Name] {
			v.errorf(with(p, "name"), "namespace %q is declared twice", ns.Name)
		}
		names[ns.Name] = true
		deps := map[string]bool{}
		for j := range ns.Deployments {
			d := &ns.Deployments[j]
			dp := with(p, "deployments", j)
			if deps[d.Name] {
				v.errorf(with(dp, "name"), "deployment %q is declared twice in namespace %q", d.Name, ns.Name)
			}
			deps[d.Name] = true
			d.validate(v, dp)
		}
	}
	// Callers must point at declared workloads.
	for i := range s.Namespaces {
		ns := &s.Namespaces[i]
		for j := range ns.Deployments {
			for k, c := range ns.Deployments[j].Callers {
				cp := path("namespaces", i, "deployments", j, "callers", k)
				if s.find(ns.Name, c.To) == nil {
					v.errorf(with(cp, "to"), "caller target %q is not a deployment of this scenario (write name or namespace/name)", c.To)
				}
			}
		}
	}
}

// find resolves a caller's "name" or "namespace/name".
func (s *Scenario) find(ns, to string) *Deployment {
	if i := strings.IndexByte(to, '/'); i >= 0 {
		ns, to = to[:i], to[i+1:]
	}
	for i := range s.Namespaces {
		if s.Namespaces[i].Name != ns {
			continue
		}
		for j := range s.Namespaces[i].Deployments {
			if s.Namespaces[i].Deployments[j].Name == to {
				return &s.Namespaces[i].Deployments[j]
			}
		}
	}
	return nil
}

func (d *Deployment) validate(v *validator, p []any) {
	if !isDNSLabel(d.Name) {
		v.errorf(with(p, "name"), "deployment name %q must be a DNS label (lowercase letters, digits, '-')", d.Name)
	}
	switch d.Kind {
	case "", "deployment", "statefulset", "daemonset":
	default:
		v.errorf(with(p, "kind"), "kind %q is not supported: use deployment, statefulset or daemonset", d.Kind)
	}
	if d.Pods < 0 || d.Pods > 1000 {
		v.errorf(with(p, "pods"), "pods must be between 0 and 1000, got %d", d.Pods)
	}
	if d.Port < 0 || d.Port > 65535 {
		v.errorf(with(p, "port"), "port %d is not a TCP port", d.Port)
	}
	grpc := false
	if len(d.Routes) == 0 {
		v.errorf(with(p, "routes"), "deployment %q has no routes: add at least one {method, path}", d.Name)
	}
	validateRoutes(v, with(p, "routes"), d.Routes, &grpc)
	d.Traffic.validate(v, p, grpc)
	// The errors in effect must fit in the late share of the second in
	// effect; a phase inherits what it does not set.
	eff := lateErrors{late: 1}
	eff.apply(&d.Traffic)
	eff.check(v, p, &d.Traffic)
	var last time.Duration = -1
	for i := range d.Phases {
		ph := &d.Phases[i]
		pp := with(p, "phases", i)
		if ph.From < 0 {
			v.errorf(with(pp, "from"), "from must not be negative")
		}
		if time.Duration(ph.From) <= last {
			v.errorf(with(pp, "from"), "phases must be in increasing order of from")
		}
		last = time.Duration(ph.From)
		ph.Traffic.validate(v, pp, grpc)
		eff.apply(&ph.Traffic)
		eff.check(v, pp, &ph.Traffic)
	}
	for i := range d.Callers {
		c := &d.Callers[i]
		cp := with(p, "callers", i)
		if c.RPS < 0 || math.IsNaN(c.RPS) || math.IsInf(c.RPS, 0) {
			v.errorf(with(cp, "rps"), "rps must be a finite number >= 0")
		}
		var g bool
		validateRoutes(v, with(cp, "routes"), c.Routes, &g)
	}
}

func validateRoutes(v *validator, p []any, routes []Route, grpc *bool) {
	for i, r := range routes {
		rp := with(p, i)
		if !strings.HasPrefix(r.Path, "/") {
			v.errorf(with(rp, "path"), "route path %q must start with /", r.Path)
		}
		if r.Weight < 0 || math.IsNaN(r.Weight) || math.IsInf(r.Weight, 0) {
			v.errorf(with(rp, "weight"), "weight must be a finite number >= 0 (0 means 1)")
		}
		if r.Bytes < 0 {
			v.errorf(with(rp, "bytes"), "bytes must not be negative")
		}
		if r.Method != "" && strings.ToUpper(r.Method) != r.Method {
			v.errorf(with(rp, "method"), "method %q must be upper case", r.Method)
		}
		if r.GRPC {
			*grpc = true
			if r.Method != "" && r.Method != "POST" {
				v.errorf(with(rp, "method"), "gRPC routes are POST")
			}
		}
	}
}

func (t *Traffic) validate(v *validator, p []any, grpc bool) {
	if t.RPS != nil && (*t.RPS < 0 || math.IsNaN(*t.RPS) || math.IsInf(*t.RPS, 0) || *t.RPS > 1e6) {
		v.errorf(with(p, "rps"), "rps must be between 0 and 1e6")
	}
	var sum float64
	for k, r := range t.Errors {
		kp := with(p, "errors", k)
		if r < 0 || r > 1 {
			v.errorf(kp, "probability of %q must be between 0 and 1 (or 0%% and 100%%)", k)
		}
		sum += float64(r)
		c, err := parseErrorKey(k)
		if err != nil {
			v.errorf(kp, "%v", err)
			continue
		}
		if c.grpc >= 0 && !grpc {
			v.errorf(kp, "gRPC code %q given but no route has grpc: true", k)
		}
	}
	if sum > 1+1e-9 {
		v.errorf(with(p, "errors"), "error probabilities add up to %.4g, more than 1", sum)
	}
	if l := t.ErrorsLateInSecond; l != nil && (*l <= 0 || *l > 1) {
		v.errorf(with(p, "errorsLateInSecond"), "errorsLateInSecond must be above 0 and at most 1 (a share of each second, e.g. 0.5 or \"50%%\"; 1 spreads the errors evenly), got %v", float64(*l))
	}
	if l := t.Latency; l != nil {
		lp := with(p, "latency")
		switch {
		case l.Constant > 0 && (l.P50 != 0 || l.P99 != 0):
			v.errorf(lp, "latency: give either constant or p50/p99, not both")
		case l.Constant > 0:
		case l.P50 <= 0 || l.P99 <= 0:
			v.errorf(lp, "latency needs constant, or both p50 and p99 (> 0)")
		case l.P99 < l.P50:
			v.errorf(lp, "latency p99 (%v) is below p50 (%v)", time.Duration(l.P99), time.Duration(l.P50))
		}
	}
}

// lateErrors tracks the error probabilities and errorsLateInSecond in
// effect through a deployment's phases.
type lateErrors struct {
	sum, late float64
}

func (e *lateErrors) apply(t *Traffic) {
	if t.Errors != nil {
		e.sum = 0
		for _, r := range t.Errors {
			e.sum += float64(r)
		}
	}
	if t.ErrorsLateInSecond != nil {
		e.late = float64(*t.ErrorsLateInSecond)
	}
}

// check reports errors that cannot all fall in the late share of the
// second, at the key of t that brought them together. Out-of-range values
// are reported by Traffic.validate.
func (e *lateErrors) check(v *validator, p []any, t *Traffic) {
	if e.late <= 0 || e.late >= 1 || e.sum > 1 || e.sum <= e.late+1e-9 {
		return
	}
	if t.ErrorsLateInSecond == nil && t.Errors == nil {
		return // nothing changed here: reported where it was set
	}
	key := "errorsLateInSecond"
	if t.ErrorsLateInSecond == nil {
		key = "errors"
	}
	v.errorf(with(p, key), "errorsLateInSecond %.4g cannot hold errors that add up to %.4g of all requests: "+
		"they must fit in the last %.4g%% of each second (raise errorsLateInSecond to at least %.4g or lower the errors)",
		e.late, e.sum, 100*e.late, e.sum)
}

// outcome is a parsed error key: an HTTP status, a gRPC code or a reset.
type outcome struct {
	status uint32
	grpc   int32 // -1: not gRPC
	reset  bool
}

func parseErrorKey(k string) (outcome, error) {
	t := strings.TrimSpace(k)
	if strings.EqualFold(t, "reset") {
		return outcome{grpc: -1, reset: true}, nil
	}
	if n, err := strconv.ParseUint(t, 10, 32); err == nil {
		if n < 100 || n > 599 {
			return outcome{}, fmt.Errorf("error key %q is not an HTTP status (100-599); for a gRPC code write grpc:%s or its name", k, t)
		}
		return outcome{status: uint32(n), grpc: -1}, nil
	}
	if c, ok := gate.ParseGRPCCode(t); ok && c != 0 {
		return outcome{status: 200, grpc: int32(c)}, nil
	}
	return outcome{}, fmt.Errorf("unknown error key %q: use an HTTP status (\"503\"), a gRPC code (UNAVAILABLE) or reset", k)
}

// sortedErrorKeys makes the error draw independent of map order.
func sortedErrorKeys(m map[string]Ratio) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
