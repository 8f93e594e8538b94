package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/tapgate/tapgate/policies"
)

const schemaFile = "../../schema/gatepolicy.schema.json"

func TestSchemaUpToDate(t *testing.T) {
	want, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v: run make generate", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with the Document types: run make generate (or go generate ./gate/policy)", schemaFile)
	}
	var s map[string]any
	if err := json.Unmarshal(want, &s); err != nil {
		t.Fatal(err)
	}
	if s["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema = %v", s["$schema"])
	}
	if bytes.Contains(want, []byte("$defs")) || bytes.Contains(want, []byte("2020-12")) {
		t.Errorf("schema uses 2020-12 keywords; draft-07 readers ignore them")
	}
}

// compiledSchema compiles the committed schema as draft-07.
func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource("gatepolicy.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("gatepolicy.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile as draft-07: %v", err)
	}
	return s
}

// yamlInstance converts a YAML document to the JSON value a language
// server validates.
func yamlInstance(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestSchemaAgreesWithParser: every valid fixture, every ready policy and
// every rendered ad-hoc policy validates; invalid shapes are rejected.
func TestSchemaAgreesWithParser(t *testing.T) {
	s := compiledSchema(t)
	docs := map[string][]byte{}
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = data
	}
	for _, n := range policies.Names() {
		data, _ := policies.Get(n)
		docs["builtin:"+n] = data
	}
	rendered, err := Render(fullAdHoc())
	if err != nil {
		t.Fatal(err)
	}
	docs["ad-hoc"] = rendered
	for name, data := range docs {
		p, err := Parse(name, data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := s.Validate(yamlInstance(t, data)); err != nil {
			t.Errorf("%s is valid for the parser but not for the schema: %v", name, err)
		}
		out, err := Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlInstance(t, out)); err != nil {
			t.Errorf("Marshal(%s) does not validate: %v\n%s", name, err, out)
		}
	}

	// Shapes the schema can see must be rejected by both.
	valid := string(docs["testdata/valid/minimal.yaml"])
	bad := map[string]string{
		"unknown key":        strings.Replace(valid, "window: 30s", "window: 30s\n  windw: 1s", 1),
		"bad duration":       strings.Replace(valid, "30s", "30 seconds", 1),
		"negative duration":  strings.Replace(valid, "30s", "-30s", 1),
		"percent over 100":   strings.Replace(valid, "0.99", "101%", 1),
		"ratio over 1":       strings.Replace(valid, "0.99", "99", 1),
		"two checks":         strings.Replace(valid, "successRate: {min: 0.99}", "successRate: {min: 0.99}\n    requestRate: {min: 1}", 1),
		"no check":           strings.Replace(valid, "    successRate: {min: 0.99}\n", "", 1),
		"bad resource":       strings.Replace(valid, "- name: all", "- name: all\n    resource: ingress/x", 1),
		"service as target":  strings.Replace(valid, "- name: all", "- name: all\n    resource: svc/x", 1),
		"bad direction":      strings.Replace(valid, "- name: all", "- name: all\n    direction: up", 1),
		"wrong apiVersion":   strings.Replace(valid, "v1alpha1", "v1", 1),
		"quantile too large": strings.Replace(valid, "successRate: {min: 0.99}", "latency: {quantile: 1.5, max: 1s}", 1),
	}
	spec := func(key string) string { return strings.Replace(valid, "window: 30s", "window: 30s\n  "+key, 1) }
	rule := func(key string) string {
		return strings.Replace(valid, "successRate: {min: 0.99}", "successRate: {min: 0.99}\n    "+key, 1)
	}
	for name, doc := range map[string]string{
		"bad decision":          spec("decision: maybe"),
		"confidence 100%":       spec("confidence: 100%"),
		"confidence 50%":        spec("confidence: 50%"),
		"confidence ratio 0.5":  spec("confidence: 0.5"),
		"confidence ratio 1":    spec("confidence: 1"),
		"tolerance 1":           spec("tolerance: 1"),
		"tolerance quoted":      spec(`tolerance: "2"`),
		"stopOnFail string":     spec(`stopOnFail: "yes"`),
		"stopOnPass number":     spec("stopOnPass: 1"),
		"rule decision":         rule("decision: Estimate"),
		"rule confidence 100%":  rule("confidence: 100%"),
		"rule tolerance 0.5":    rule("tolerance: 0.5"),
		"rule unknown knob key": rule("confidenceLevel: 99%"),
	} {
		bad[name] = doc
	}
	// Compare rules, on a policy with a baseline to compare with.
	two := strings.Replace(valid, "  - name: all\n", "  - name: all\n  - name: stable\n", 1)
	cmp := func(c string) string {
		return strings.Replace(two, "successRate: {min: 0.99}", "compare: "+c, 1)
	}
	if _, err := Parse("two.yaml", []byte(cmp("{baseline: stable, errorRate: {maxIncrease: 1pp}}"))); err != nil {
		t.Fatalf("compare base: %v", err)
	}
	for name, doc := range map[string]string{
		"compare without baseline":        cmp("{errorRate: {maxIncrease: 1pp}}"),
		"compare without comparison":      cmp("{baseline: stable}"),
		"compare errorRate and latency":   cmp("{baseline: stable, errorRate: {maxIncrease: 1pp}, latency: {quantile: 0.99, maxRatio: 1.2}}"),
		"compare errorRate maxRatio":      cmp("{baseline: stable, errorRate: {maxRatio: 2}}"),
		"compare increase over 100pp":     cmp("{baseline: stable, errorRate: {maxIncrease: 150pp}}"),
		"compare increase ratio over 1":   cmp("{baseline: stable, errorRate: {maxIncrease: 5}}"),
		"compare increase without unit":   cmp(`{baseline: stable, errorRate: {maxIncrease: "1"}}`),
		"compare latency ratio 1":         cmp("{baseline: stable, latency: {quantile: 0.99, maxRatio: 1}}"),
		"compare latency ratio and delta": cmp("{baseline: stable, latency: {quantile: 0.99, maxRatio: 1.2, maxIncrease: 50ms}}"),
		"compare latency no bound":        cmp("{baseline: stable, latency: {quantile: 0.99}}"),
		"compare latency no quantile":     cmp("{baseline: stable, latency: {maxIncrease: 50ms}}"),
		"compare latency bad increase":    cmp("{baseline: stable, latency: {quantile: 0.99, maxIncrease: 50}}"),
		"compare and successRate":         strings.Replace(cmp("{baseline: stable, errorRate: {maxIncrease: 1pp}}"), "    compare:", "    successRate: {min: 0.99}\n    compare:", 1),
	} {
		bad[name] = doc
	}
	for name, doc := range bad {
		if _, err := Parse("bad.yaml", []byte(doc)); err == nil {
			t.Errorf("%s: the parser accepts it", name)
		}
		if err := s.Validate(yamlInstance(t, []byte(doc))); err == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
	}
}

func TestBuiltinPolicies(t *testing.T) {
	names := policies.Names()
	if strings.Join(names, ",") != "grpc-service,http-golden-signals,strict-canary" {
		t.Errorf("builtins = %v", names)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			data, ok := policies.Get(n)
			if !ok {
				t.Fatal("Get failed")
			}
			if d2, ok := policies.Get(n + ".yaml"); !ok || !bytes.Equal(d2, data) {
				t.Errorf("Get(%s.yaml) differs", n)
			}
			if !bytes.Contains(data, []byte("\n  # ")) {
				t.Errorf("builtin policy %s has no comments explaining its thresholds", n)
			}
			for _, ref := range []string{"builtin:" + n, n, "builtin:" + n + ".yaml"} {
				p, raw, err := LoadRef(ref)
				if err != nil {
					t.Fatalf("LoadRef(%s): %v", ref, err)
				}
				if !bytes.Equal(raw, data) {
					t.Errorf("LoadRef(%s) did not return the document", ref)
				}
				if p.Name != n || p.File != "builtin:"+n {
					t.Errorf("LoadRef(%s): name/file = %q/%q", ref, p.Name, p.File)
				}
				for _, tg := range p.Targets {
					if !tg.Resource.IsZero() {
						t.Errorf("builtin target %s names a resource; builtins leave it to the command line", tg.Name)
					}
				}
				roundTrip(t, p)
				if err := WithResource(p, "deploy/x", "ns1"); err != nil {
					t.Errorf("WithResource: %v", err)
				}
			}
		})
	}
	for _, bad := range []string{"nope", "../policy/testdata/valid/minimal", "", ".yaml", "/etc/passwd"} {
		if _, ok := policies.Get(bad); ok {
			t.Errorf("Get(%q) succeeded", bad)
		}
	}
}

func TestLoadRef(t *testing.T) {
	dir := t.TempDir()
	// A file shadows a builtin of the same name.
	shadow := filepath.Join(dir, "strict-canary")
	min, _ := os.ReadFile("testdata/valid/minimal.yaml")
	if err := os.WriteFile(shadow, min, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	p, raw, err := LoadRef("strict-canary")
	if err != nil || p.Name != "minimal" || p.File != "strict-canary" || !bytes.Equal(raw, min) {
		t.Errorf("file did not shadow builtin: %v %+v", err, p)
	}
	p, _, err = LoadRef("builtin:strict-canary")
	if err != nil || p.Name != "strict-canary" {
		t.Errorf("builtin: prefix: %v", err)
	}
	for ref, want := range map[string]string{
		"builtin:nope": `no builtin policy "nope": choose one of grpc-service, http-golden-signals, strict-canary`,
		"nope.yaml":    `policy "nope.yaml": no such file, and no builtin policy of that name (builtins: grpc-service, http-golden-signals, strict-canary)`,
		"-":            "standard input is not supported",
		"":             "no policy given",
	} {
		if _, _, err := LoadRef(ref); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadRef(%q) = %v, want ...%s...", ref, err, want)
		}
	}
}

// TestConfidencePatternAgreesWithParser: the schema's confidence strings
// are the percentages the parser takes as a confidence.
func TestConfidencePatternAgreesWithParser(t *testing.T) {
	re := regexp.MustCompile(confidencePattern)
	for _, c := range []string{"50.1%", "50.01%", "51%", "60%", "90%", "95%", "99%", "99.9%", "99.999%"} {
		if !re.MatchString(c) {
			t.Errorf("pattern rejects %s", c)
		}
		if _, err := Parse("c.yaml", []byte(header+"  window: 1s\n  confidence: "+c+"\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n")); err != nil {
			t.Errorf("parser rejects %s: %v", c, err)
		}
	}
	for _, c := range []string{"50%", "50.0%", "50.00%", "49.9%", "5%", "0%", "100%", "100.0%", "99", "1%"} {
		if re.MatchString(c) {
			t.Errorf("pattern accepts %s", c)
		}
		if _, err := Parse("c.yaml", []byte(header+"  window: 1s\n  confidence: "+c+"\n  targets: [{name: a}]\n  rules: [{name: r, requestRate: {min: 1}}]\n")); err == nil {
			t.Errorf("parser accepts %s", c)
		}
	}
	pts := regexp.MustCompile(pointsPattern)
	for _, v := range []string{"1pp", "0.5pp", "1%", "99.9pp"} {
		if !pts.MatchString(v) || !pointsRE.MatchString(v) {
			t.Errorf("points pattern rejects %s", v)
		}
	}
	for _, v := range []string{"1", "pp", "-1pp", "1 pp", "150pp", "1.pp"} {
		if pts.MatchString(v) {
			t.Errorf("points pattern accepts %s", v)
		}
	}
}
