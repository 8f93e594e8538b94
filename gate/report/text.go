package report

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tapgate/tapgate/gate"
)

// Text writes a plain-text summary in the spirit of `linkerd viz stat`: a
// headline with the verdict and exit code, where the traffic came from, a
// targets table and their latency quantiles with intervals, a per-pod table
// for targets with several pods, a rules table, what would decide the
// undecided rules, and notes. No colour: it is read in CI logs as often as in terminals.
func Text(w io.Writer, v *gate.Verdict, meta Meta) error {
	if v == nil {
		return fmt.Errorf("text report: no verdict")
	}
	// Render into memory first so a failing writer never receives half a
	// report from us, and so there is one write error to return.
	var b bytes.Buffer
	b.WriteString(headline(v, meta))
	b.WriteByte('\n')
	writeContext(&b, v, meta)

	b.WriteByte('\n')
	writeTargets(&b, v)
	if hasPodTable(v) {
		b.WriteByte('\n')
		writePods(&b, v)
	}
	writeCrossCheck(&b, v)
	b.WriteByte('\n')
	writeRules(&b, v)
	writeGuidance(&b, v)
	writeNotes(&b, v)

	_, err := w.Write(b.Bytes())
	return err
}

// ruleCounts counts the rules that decide the verdict, and the dry-run
// rules that failed (worth a word in the headline: they are the next
// release's failures).
type ruleCounts struct {
	counted, failed, inconclusive, passed int
	dryRunFailed                          int
}

func countRules(rules []gate.RuleResult) ruleCounts {
	var c ruleCounts
	for _, r := range rules {
		if r.DryRun {
			if r.Outcome == gate.Fail {
				c.dryRunFailed++
			}
			continue
		}
		c.counted++
		switch r.Outcome {
		case gate.Fail:
			c.failed++
		case gate.Pass:
			c.passed++
		default:
			c.inconclusive++
		}
	}
	return c
}

func rulesWord(n int) string {
	if n == 1 {
		return "rule"
	}
	return "rules"
}

// Reason says in a few words why the verdict is what it is
// ("1 of 4 rules failed"). Other reporters reuse it for their titles.
func Reason(v *gate.Verdict) string {
	c := countRules(v.Rules)
	var s string
	switch {
	case c.counted == 0:
		s = "no rules to evaluate"
		if len(v.Rules) > 0 {
			s = "only dry-run rules, which do not count"
		}
	case v.Outcome == gate.Fail && c.failed > 0:
		s = fmt.Sprintf("%d of %d %s failed", c.failed, c.counted, rulesWord(c.counted))
	case v.Outcome == gate.Inconclusive && c.inconclusive > 0:
		s = fmt.Sprintf("%d of %d %s inconclusive", c.inconclusive, c.counted, rulesWord(c.counted))
	case v.Outcome == gate.Pass && c.passed == c.counted:
		if c.counted == 1 {
			s = "1 rule passed"
		} else {
			s = fmt.Sprintf("all %d rules passed", c.counted)
		}
	default:
		// The verdict and the rules disagree; say what the rules say
		// rather than invent a cause.
		s = fmt.Sprintf("%d passed, %d failed, %d inconclusive of %d %s", c.passed, c.failed, c.inconclusive, c.counted, rulesWord(c.counted))
	}
	if c.dryRunFailed > 0 {
		s += fmt.Sprintf("; %d dry-run %s would fail", c.dryRunFailed, rulesWord(c.dryRunFailed))
	}
	if v.StoppedEarly {
		s += "; " + stoppedAfter(v)
	}
	if !v.Final {
		s += "; partial: the window did not close"
	}
	return s
}

// stoppedAfter says how much of the window a run that stopped early
// tapped: "stopped after 2.1s of the 40s window".
func stoppedAfter(v *gate.Verdict) string {
	if !v.TimeKnown || v.Window <= 0 {
		return "stopped before the window closed"
	}
	return "stopped after " + span(v.Elapsed) + " of the " + gate.FormatDuration(v.Window) + " window"
}

// exitNote explains the exit code when it is not the obvious one.
func exitNote(v *gate.Verdict, meta Meta) string {
	s := "exit " + strconv.Itoa(meta.ExitCode)
	switch {
	case meta.ExitCode == gate.ExitInterrupted:
		s += ", interrupted"
	case v.Outcome == gate.Inconclusive && meta.onInconclusive() != gate.Inconclusive:
		s += ", onInconclusive: " + meta.onInconclusive().String()
	}
	return s
}

func headline(v *gate.Verdict, meta Meta) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(v.Outcome.String()))
	b.WriteString("  ")
	if v.Policy != "" {
		b.WriteString("policy ")
		b.WriteString(line(v.Policy))
		b.WriteString(": ")
	}
	b.WriteString(Reason(v))
	b.WriteString(" (")
	b.WriteString(exitNote(v, meta))
	b.WriteString(")")
	return b.String()
}

// writeContext writes where the traffic came from and which time it covers.
func writeContext(b *bytes.Buffer, v *gate.Verdict, meta Meta) {
	kv := func(k, val string) {
		if val != "" {
			fmt.Fprintf(b, "%-9s %s\n", k+":", line(val))
		}
	}
	for _, f := range contextFields(v, meta, "policy") {
		kv(f[0], f[1])
	}
}

// contextFields are the report's context lines, shared by the text and
// Markdown reports: where the traffic came from and which time it covers.
// Empty values are skipped by the writers.
func contextFields(v *gate.Verdict, meta Meta, policyKey string) [][2]string {
	f := [][2]string{{"source", cleanSource(meta.Source)}, {policyKey, meta.PolicyFile}}
	if !meta.StartTime.IsZero() {
		f = append(f, [2]string{"started", meta.StartTime.UTC().Format("2006-01-02T15:04:05Z07:00")})
	}
	var w string
	switch {
	case v.TimeKnown && v.StoppedEarly:
		w = "window " + gate.FormatDuration(v.Window) + ", stopped after " + span(v.Elapsed) + " (after warmup)"
	case v.TimeKnown:
		w = "window " + gate.FormatDuration(v.Window) + ", evaluated " + gate.FormatDuration(v.Elapsed) + " (after warmup)"
		if !v.Final {
			w += ", window still open"
		}
	default:
		w = "unknown: the recording carries no event times, so warmup was not applied and request rates are unavailable"
		if v.StoppedEarly {
			w += "; stopped before the window closed"
		}
	}
	if v.StoppedEarly && v.StopReason != "" {
		w += ": " + v.StopReason
	}
	f = append(f, [2]string{"time", w})
	return append(f, [2]string{"tapgate", meta.Version})
}

func newTable(b *bytes.Buffer) *tabwriter.Writer {
	return tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
}

func row(tw *tabwriter.Writer, cells ...string) {
	// Writes to a bytes.Buffer through tabwriter cannot fail.
	_, _ = io.WriteString(tw, strings.Join(cells, "\t")+"\n")
}

// success renders a success rate with its 95% interval, or "-" with no
// requests.
func success(s *gate.Stats) string {
	if s.Requests == 0 {
		return none
	}
	return percent(s.SuccessRate) + " (" + strings.TrimSuffix(interval(s.Interval), "%") + ")"
}

func writeTargets(b *bytes.Buffer, v *gate.Verdict) {
	if len(v.Targets) == 0 {
		b.WriteString("no targets\n")
		return
	}
	tw := newTable(b)
	row(tw, "NAME", "RESOURCE", "REQUESTS", "SUCCESS (95% CI)", "FAILURES", "IN-FLIGHT", "COVERAGE")
	for i := range v.Targets {
		t := &v.Targets[i]
		row(tw,
			cell(t.Name),
			cell(shortResource(t.Resource)),
			strconv.FormatUint(t.Requests, 10),
			success(&t.Stats),
			strconv.FormatUint(t.Failures, 10),
			strconv.FormatUint(t.InFlight, 10),
			coverage(t.Coverage),
		)
	}
	_ = tw.Flush()

	// Latency has its own table: three quantiles with their intervals do
	// not fit beside the counts in 120 columns. Without any latency (no
	// traffic) it would be a table of dashes.
	if !hasLatency(v) {
		return
	}
	b.WriteByte('\n')
	tw = newTable(b)
	row(tw, "LATENCY", "P50 (95% CI)", "P95 (95% CI)", "P99 (95% CI)")
	for i := range v.Targets {
		t := &v.Targets[i]
		q := &t.Latency
		row(tw, cell(t.Name),
			latencyCI(q.P50, q.CI50, q.Valid),
			latencyCI(q.P95, q.CI95, q.Valid),
			latencyCI(q.P99, q.CI99, q.Valid),
		)
	}
	_ = tw.Flush()
}

func hasLatency(v *gate.Verdict) bool {
	for i := range v.Targets {
		if v.Targets[i].Latency.Valid {
			return true
		}
	}
	return false
}

// hasPods reports whether a target deserves a per-pod breakdown: more than
// one pod, or pods beyond the cap.
func hasPods(t *gate.TargetResult) bool {
	return len(t.Pods) > 1 || (len(t.Pods) > 0 && t.PodsOther > 0)
}

func hasPodTable(v *gate.Verdict) bool {
	for i := range v.Targets {
		if hasPods(&v.Targets[i]) {
			return true
		}
	}
	return false
}

// sortedPods returns a target's pods by name, so the report does not depend
// on the order the engine happened to build them in.
func sortedPods(t *gate.TargetResult) []gate.PodStats {
	pods := append([]gate.PodStats(nil), t.Pods...)
	sort.SliceStable(pods, func(i, j int) bool { return pods[i].Pod < pods[j].Pod })
	return pods
}

func writePods(b *bytes.Buffer, v *gate.Verdict) {
	tw := newTable(b)
	row(tw, "TARGET", "POD", "REQUESTS", "SUCCESS", "FAILURES", "P99")
	for i := range v.Targets {
		t := &v.Targets[i]
		if !hasPods(t) {
			continue
		}
		for _, p := range sortedPods(t) {
			sr := none
			if p.Requests > 0 {
				sr = percent(p.SuccessRate)
			}
			row(tw, cell(t.Name), cell(p.Pod), strconv.FormatUint(p.Requests, 10), sr,
				strconv.FormatUint(p.Failures, 10), latency(p.Latency.P99, p.Latency.Valid))
		}
		if t.PodsOther > 0 {
			row(tw, cell(t.Name), "(other pods)", strconv.FormatUint(t.PodsOther, 10), none, none, none)
		}
	}
	_ = tw.Flush()
}

func hasRoutes(rules []gate.RuleResult) bool {
	for _, r := range rules {
		if r.Route != "" {
			return true
		}
	}
	return false
}

func writeRules(b *bytes.Buffer, v *gate.Verdict) {
	if len(v.Rules) == 0 {
		b.WriteString("no rules\n")
		return
	}
	// The ROUTE column only appears when a rule has a route: most policies
	// have none and the table is wide already.
	routes := hasRoutes(v.Rules)
	tw := newTable(b)
	head := []string{"RULE", "TARGET"}
	if routes {
		head = append(head, "ROUTE")
	}
	// TEST says how each rule decided; verdicts without decisions (counting
	// rules only) leave it out.
	tests := hasDecisions(v.Rules)
	head = append(head, "VERDICT", "OBSERVED", "THRESHOLD", "SAMPLES", "95% CI")
	if tests {
		head = append(head, "TEST")
	}
	head = append(head, "REASON")
	row(tw, head...)
	for i := range v.Rules {
		r := &v.Rules[i]
		verdict := strings.ToUpper(r.Outcome.String())
		if r.DryRun {
			verdict += " (dry-run)"
		}
		cells := []string{cell(r.Name), cell(r.Target)}
		if routes {
			cells = append(cells, cell(r.Route))
		}
		cells = append(cells,
			verdict,
			observed(r),
			cell(r.Threshold),
			fmt.Sprintf("%d/%d", r.Samples, r.Required),
			ruleCI(r),
		)
		if tests {
			cells = append(cells, testLabel(r))
		}
		cells = append(cells, cell(r.Reason))
		row(tw, cells...)
	}
	_ = tw.Flush()
}

// writeGuidance says, for each undecided rule, what would decide it: the
// requests a sequential test likely still needs at the observed rate, and
// how long that takes at the rule's observed request rate.
func writeGuidance(b *bytes.Buffer, v *gate.Verdict) {
	gs := guidance(v)
	if len(gs) == 0 {
		return
	}
	if v.StoppedEarly {
		b.WriteString("\nundecided when the run stopped:\n")
	} else {
		b.WriteString("\nundecided:\n")
	}
	tw := newTable(b)
	for _, g := range gs {
		row(tw, "  "+line(g.subject), line(g.text))
	}
	_ = tw.Flush()
}

// responses summarises the response mix of a target in one line: the codes
// behind a failure rate are the first thing an SRE asks for.
func responses(t *gate.TargetResult) string {
	var parts []string
	if len(t.Status) > 0 {
		codes := make([]uint32, 0, len(t.Status))
		for c := range t.Status {
			codes = append(codes, c)
		}
		sort.Slice(codes, func(i, j int) bool { return codes[i] < codes[j] })
		var s []string
		for _, c := range codes {
			s = append(s, fmt.Sprintf("%d x%d", c, t.Status[c]))
		}
		parts = append(parts, "HTTP "+strings.Join(s, ", "))
	}
	if len(t.GRPC) > 0 {
		codes := make([]uint32, 0, len(t.GRPC))
		for c := range t.GRPC {
			codes = append(codes, c)
		}
		sort.Slice(codes, func(i, j int) bool { return codes[i] < codes[j] })
		var s []string
		for _, c := range codes {
			s = append(s, fmt.Sprintf("%s x%d", gate.GRPCCodeName(c), t.GRPC[c]))
		}
		parts = append(parts, "gRPC "+strings.Join(s, ", "))
	}
	if t.Resets > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", t.Resets, plural(t.Resets, "reset")))
	}
	if t.NoResponse > 0 {
		parts = append(parts, fmt.Sprintf("%d without a response", t.NoResponse))
	}
	if len(parts) == 0 {
		return ""
	}
	return "responses: " + strings.Join(parts, "; ")
}

func writeNotes(b *bytes.Buffer, v *gate.Verdict) {
	var lines []string
	for i := range v.Targets {
		t := &v.Targets[i]
		name := t.Name
		if name == "" {
			name = t.Resource
		}
		notes := Notes(t, v)
		if r := responses(t); r != "" {
			notes = append([]string{r}, notes...)
		}
		for _, n := range notes {
			lines = append(lines, "  "+line(name)+": "+line(n))
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("\nnotes:\n")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
}
