package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// JUnit XML, in the dialect Jenkins (junit plugin), GitLab (artifacts:
// reports:junit) and the GitHub test-report actions all read: a
// <testsuites> root, one <testsuite> for the policy, one <testcase> per rule
// result (a rule applied to one target), classname = target, name = rule.
//
// Mapping of outcomes, chosen for what CI systems show:
//
//   - PASS: a plain test case.
//   - FAIL: <failure message="p99 812ms > 500ms (n=4210)" type="fail"> with
//     the engine's reason as the body.
//   - dry-run rules: <skipped message="dry-run: ...">, whatever their
//     outcome; they are reported but never decide the gate, and a red test
//     for a rule that cannot fail the pipeline would be read as a failure.
//   - INCONCLUSIVE: follows the policy's onInconclusive, so the test view
//     agrees with the pipeline's status. With onInconclusive: fail the gate
//     exits 1, and a failing pipeline whose tests are all green or skipped
//     would hide the cause, so the rule is a <failure type="inconclusive">.
//     Otherwise (inconclusive or pass) it is <skipped message="inconclusive:
//     ...">: CI systems show skipped as neutral, which is what "not enough
//     evidence" means.
//
// Suite-level facts (verdict, exit code, reason, source) are <properties>,
// which Jenkins and GitLab display with the suite.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Failure   *junitFailure `xml:"failure"`
	Skipped   *junitSkipped `xml:"skipped"`
	// SystemOut says how the rule decided: its test, intervals and, for
	// compare rules, the baseline. Jenkins and GitLab show it with the case.
	SystemOut string `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// JUnit writes the verdict as JUnit XML.
func JUnit(w io.Writer, v *gate.Verdict, meta Meta) error {
	if v == nil {
		return fmt.Errorf("junit report: no verdict")
	}
	name := v.Policy
	if name == "" {
		name = "tapgate"
	}
	elapsed := strconv.FormatFloat(v.Elapsed.Seconds(), 'f', 3, 64)
	s := junitSuite{
		Name: xmlText(name),
		Time: elapsed,
		Properties: []junitProperty{
			{"verdict", v.Outcome.String()},
			{"exitCode", strconv.Itoa(meta.ExitCode)},
			{"reason", xmlText(Reason(v))},
			{"onInconclusive", meta.onInconclusive().String()},
			{"final", strconv.FormatBool(v.Final)},
		},
		Cases: make([]junitCase, 0, len(v.Rules)),
	}
	if v.StoppedEarly {
		s.Properties = append(s.Properties, junitProperty{"stoppedEarly", "true"})
		if v.StopReason != "" {
			s.Properties = append(s.Properties, junitProperty{"stopReason", xmlText(v.StopReason)})
		}
	}
	for i := range v.Targets {
		t := &v.Targets[i]
		if cc := t.CrossCheck; cc != nil {
			pre := "crossCheck." + xmlText(t.Name) + "."
			s.Properties = append(s.Properties,
				junitProperty{pre + "volumeCoverage", strconv.FormatFloat(orZero(cc.VolumeCoverage), 'f', 4, 64)},
				junitProperty{pre + "tappedErrorRate", strconv.FormatFloat(orZero(cc.TappedErrorRate), 'f', 6, 64)},
				junitProperty{pre + "totalErrorRate", strconv.FormatFloat(orZero(cc.TotalErrorRate), 'f', 6, 64)},
				junitProperty{pre + "mismatch", strconv.FormatBool(cc.Mismatch)})
		}
	}
	if !meta.StartTime.IsZero() {
		// The JUnit schema's timestamp has no zone; it is UTC.
		s.Timestamp = meta.StartTime.UTC().Format("2006-01-02T15:04:05")
	}
	for _, p := range []junitProperty{
		{"policyFile", meta.PolicyFile},
		{"source", cleanSource(meta.Source)},
		{"tapgateVersion", meta.Version},
	} {
		if p.Value != "" {
			p.Value = xmlText(p.Value)
			s.Properties = append(s.Properties, p)
		}
	}
	for i := range v.Rules {
		r := &v.Rules[i]
		c := junitCase{
			Name:      xmlText(r.Name),
			Classname: xmlText(r.Target),
			Time:      "0",
			Line:      r.Line,
		}
		if r.Route != "" {
			c.Name += " [" + xmlText(r.Route) + "]"
		}
		if meta.PolicyFile != "" && r.Line > 0 {
			c.File = xmlText(meta.PolicyFile)
		} else {
			c.Line = 0
		}
		summary := xmlText(RuleSummary(r))
		reason := xmlText(r.Reason)
		switch {
		case r.DryRun:
			c.Skipped = &junitSkipped{Message: "dry-run, does not count: would " + r.Outcome.String() + ": " + summary}
			s.Skipped++
		case r.Outcome == gate.Fail:
			c.Failure = &junitFailure{Message: summary, Type: "fail", Body: reason}
			s.Failures++
		case r.Outcome == gate.Pass:
		case meta.onInconclusive() == gate.Fail:
			c.Failure = &junitFailure{Message: "inconclusive (onInconclusive: fail): " + reason, Type: "inconclusive", Body: reason}
			s.Failures++
		default:
			c.Skipped = &junitSkipped{Message: "inconclusive: " + reason}
			s.Skipped++
		}
		c.SystemOut = xmlText(strings.Join(ruleDetails(r), "\n"))
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	var notes []string
	for i := range v.Targets {
		t := &v.Targets[i]
		for _, n := range Notes(t, v) {
			notes = append(notes, line(t.Name)+": "+line(n))
		}
	}
	if len(notes) > 0 {
		s.SystemOut = xmlText(strings.Join(notes, "\n"))
	}
	doc := junitSuites{
		Name: "tapgate", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped,
		Time: elapsed, Suites: []junitSuite{s},
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// xmlText drops what XML 1.0 cannot carry at all (most control characters,
// invalid UTF-8): encoding/xml would write them as U+FFFD or escapes that
// strict parsers reject. Newlines and tabs are kept; the encoder escapes
// them in attributes.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF:
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// RuleSummary says in one short line what a rule observed against its
// threshold, e.g. "p99 812ms > 500ms (n=4210)" or "success rate 97.1% <
// 99.5% (n=1200)". For a rule without a value it says why ("no samples
// (n=0, need 100)"). JUnit failure messages, GitHub annotations and the
// termination message use it.
//
// A sequential test decides on the evidence as it arrived, not on the
// final point estimate: a FAIL latched early stands even when later traffic
// brings the rate back under the threshold, and a PASS may stand with a
// point estimate just over it. The summary then does not claim a
// comparison that does not hold: it says "success rate 99.6%, threshold >=
// 99.5%", and the reason says how the test decided.
func RuleSummary(r *gate.RuleResult) string {
	label, op, limit := splitThreshold(r)
	n := "n=" + strconv.FormatUint(r.Samples, 10)
	if t := r.Test; t != nil && r.Outcome == gate.Fail && t.DecidedAfter > 0 && t.DecidedAfter != r.Samples {
		n += ", decided after " + strconv.FormatUint(t.DecidedAfter, 10)
	}
	if !r.HasValue || !finite(r.Observed) {
		return fmt.Sprintf("%s: no value (%s, need %d)", label, n, r.Required)
	}
	obs := observed(r)
	if (r.Kind == gate.LatencyQuantile || r.Kind == gate.CompareLatency) && r.Outcome != gate.Pass {
		// A latency quantile comes from a sketch with a bounded relative
		// error; "≈" says so where the number decides.
		obs = "≈ " + obs
	}
	threshold := strings.TrimSpace(op + " " + limit)
	if r.Outcome == gate.Inconclusive {
		return fmt.Sprintf("%s %s, threshold %s (%s, need %d)", label, obs, threshold, n, r.Required)
	}
	if holds, known := meets(r, op, limit); op == "" || (known && holds != (r.Outcome == gate.Pass)) {
		return fmt.Sprintf("%s %s, threshold %s (%s)", label, obs, threshold, n)
	}
	if r.Outcome == gate.Fail {
		op = negate(op)
	}
	return fmt.Sprintf("%s %s %s %s (%s)", label, obs, op, limit, n)
}

// meets reports whether the observed value satisfies the threshold, when
// that can be told: from the limit's number for one-target rules, from the
// bound the baseline sets for compare rules.
func meets(r *gate.RuleResult, op, limit string) (holds, known bool) {
	obs := r.Observed
	var lim float64
	switch r.Kind {
	case gate.SuccessRate, gate.ErrorRate:
		v, err := strconv.ParseFloat(strings.TrimSuffix(limit, "%"), 64)
		if err != nil || !strings.HasSuffix(limit, "%") {
			return false, false
		}
		lim = v / 100
	case gate.LatencyQuantile:
		d, err := time.ParseDuration(limit)
		if err != nil {
			return false, false
		}
		lim = d.Seconds()
	case gate.RequestRate:
		v, err := strconv.ParseFloat(strings.TrimSuffix(limit, " rps"), 64)
		if err != nil {
			return false, false
		}
		lim = v
	case gate.ResponseCount:
		v, err := strconv.ParseFloat(limit, 64)
		if err != nil {
			return false, false
		}
		lim = v
	case gate.CompareErrorRate, gate.CompareLatency:
		c := r.Compare
		if c == nil || !c.TargetHasValue || !c.BaselineHasValue || !finite(c.Bound) || !finite(c.TargetObserved) {
			return false, false
		}
		obs, lim, op = c.TargetObserved, c.Bound, "<="
	default:
		return false, false
	}
	// The tolerance keeps "99.5%" from disagreeing with 0.995 over float
	// noise.
	const eps = 1e-9
	switch op {
	case "<=":
		return obs <= lim+eps, true
	case "<":
		return obs < lim, true
	case ">=":
		return obs >= lim-eps, true
	case ">":
		return obs > lim, true
	}
	return false, false
}

// splitThreshold splits a threshold such as "p99 <= 300ms" or ">= 99.5%"
// into a label for the measured value, the comparison and the limit.
func splitThreshold(r *gate.RuleResult) (label, op, limit string) {
	switch r.Kind {
	case gate.SuccessRate:
		label = "success rate"
	case gate.ErrorRate:
		label = "error rate"
	case gate.LatencyQuantile:
		label = "latency"
	case gate.RequestRate:
		label = "request rate"
	case gate.ResponseCount:
		label = "count"
	case gate.CompareErrorRate:
		label = "error rate increase"
	case gate.CompareLatency:
		label = "latency"
	default:
		label = "value"
	}
	fields := strings.Fields(line(r.Threshold))
	if len(fields) >= 2 && isOp(fields[1]) {
		// "p99 <= 300ms": the first word names the quantile.
		label = fields[0]
		fields = fields[1:]
	}
	if len(fields) >= 1 && isOp(fields[0]) {
		return label, fields[0], strings.Join(fields[1:], " ")
	}
	return label, "", strings.Join(fields, " ")
}

func isOp(s string) bool {
	switch s {
	case "<", "<=", ">", ">=", "=", "==", "!=":
		return true
	}
	return false
}

// negate turns the threshold's comparison into the violated one: a value
// failing ">= 99.5%" is "< 99.5%".
func negate(op string) string {
	switch op {
	case "<=":
		return ">"
	case "<":
		return ">="
	case ">=":
		return "<"
	case ">":
		return "<="
	case "=", "==":
		return "!="
	case "!=":
		return "="
	}
	return op
}
