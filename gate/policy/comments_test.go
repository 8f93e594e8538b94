package policy

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/policies"
)

// commentedPolicies are the ready and example policies whose comments
// state what their rules need: name -> document.
func commentedPolicies(t *testing.T) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{}
	for _, n := range policies.Names() {
		data, _ := policies.Get(n)
		docs["builtin:"+n] = data
	}
	data, err := os.ReadFile("../../examples/policies/checkout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs["examples/policies/checkout.yaml"] = data
	for _, f := range []string{"../../examples/argo-rollouts/policy-configmap.yaml", "../../examples/kubernetes/policy-configmap.yaml"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		if err := yaml.Unmarshal(raw, &cm); err != nil {
			t.Fatal(err)
		}
		for k, v := range cm.Data {
			docs[strings.TrimPrefix(filepath.Dir(f), "../../")+"/"+filepath.Base(f)+":"+k] = []byte(v)
		}
	}
	return docs
}

var (
	cleanPassRE = regexp.MustCompile(`(\d+) (?:\w+ ){0,2}with (?:no failure|none slower)`)
	badCostRE   = regexp.MustCompile(`(?:costs?|costing) about (\d+) more`)
	perSecondRE = regexp.MustCompile(`about (\d+) (?:\w+ )?(?:requests|calls) per second`)
)

// ruleComments returns the comment lines just above a rule's first line
// and those inside the rule.
func ruleComments(lines []string, line int) string {
	isComment := func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "#") }
	dash := strings.Index(lines[line-1], "-")
	var out []string
	text := func(l string) string { return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#")) }
	for i := line - 2; i >= 0 && isComment(lines[i]); i-- {
		out = append([]string{text(lines[i])}, out...)
	}
	for i := line; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || len(l)-len(strings.TrimLeft(l, " ")) <= dash {
			break
		}
		if isComment(l) {
			out = append(out, text(l))
		}
	}
	return strings.Join(out, " ")
}

// TestPolicyCommentsAreTrue: the numbers the ready policies' comments
// state about a rule are what its sequential test computes: the requests
// with no failure that pass it, what one failure costs, and the rate that
// gives those requests within the window.
func TestPolicyCommentsAreTrue(t *testing.T) {
	checked := 0
	for name, data := range commentedPolicies(t) {
		p, err := Parse(name, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		lines := strings.Split(string(data), "\n")
		for i := range p.Rules {
			r := &p.Rules[i]
			text := ruleComments(lines, r.Line)
			tp := r.Params(p)
			if !r.Kind.Tested() || r.Kind.IsCompare() || tp.Decision != gate.Sequential {
				if cleanPassRE.MatchString(text) || badCostRE.MatchString(text) {
					t.Errorf("%s: rule %s states a sample size, but has no sequential test of its own", name, r.Name)
				}
				continue
			}
			good, bad := gate.Hypotheses(r.Budget(), tp.Tolerance)
			s := gate.NewSPRT(good, bad, tp.Alpha(), tp.Beta())
			for _, m := range cleanPassRE.FindAllStringSubmatch(text, -1) {
				checked++
				if n, _ := strconv.ParseUint(m[1], 10, 64); n != s.CleanPass() {
					t.Errorf("%s: rule %s: comment says %q, the test passes after %d", name, r.Name, m[0], s.CleanPass())
				}
			}
			for _, m := range badCostRE.FindAllStringSubmatch(text, -1) {
				checked++
				if n, _ := strconv.Atoi(m[1]); float64(n) != math.Round(s.BadCost()) {
					t.Errorf("%s: rule %s: comment says %q, a failure costs %.1f", name, r.Name, m[0], s.BadCost())
				}
			}
			for _, m := range perSecondRE.FindAllStringSubmatch(text, -1) {
				checked++
				rate := float64(s.CleanPass()) / p.Window.Seconds()
				if n, _ := strconv.Atoi(m[1]); float64(n) != math.Round(rate) {
					t.Errorf("%s: rule %s: comment says %q, %d requests in %s is %.1f per second", name, r.Name, m[0], s.CleanPass(), p.Window, rate)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d statements checked: did the comments' wording change?", checked)
	}

	// Statements made once for the whole policy, built from what the test
	// computes.
	at := func(budget, conf float64) *gate.SPRT {
		good, bad := gate.Hypotheses(budget, gate.DefaultTolerance)
		s := gate.NewSPRT(good, bad, 1-conf, 1-conf)
		return &s
	}
	words := map[uint64]string{4: "four"}
	docs := commentedPolicies(t)
	for _, c := range []struct{ doc, says string }{
		{"builtin:strict-canary", fmt.Sprintf("99.9%% would need %d clean requests instead of %d", at(0.001, 0.999).CleanPass(), at(0.001, 0.99).CleanPass())},
		{"builtin:http-golden-signals", words[at(0.005, 0.99).QuickFail()] + " failures in a row at the start"},
		{"examples/policies/checkout.yaml", fmt.Sprintf("%d requests with no failure pass and each failure costs about %.0f more", at(0.01, 0.99).CleanPass(), at(0.01, 0.99).BadCost())},
		{"examples/policies/checkout.yaml", fmt.Sprintf("the 0.1%% tail needs %d samples", at(0.001, 0.99).CleanPass())},
	} {
		text := strings.ReplaceAll(strings.Join(strings.Fields(string(docs[c.doc])), " "), " # ", " ")
		if !strings.Contains(text, c.says) {
			t.Errorf("%s does not say %q, which is what the test computes", c.doc, c.says)
		}
	}
}
