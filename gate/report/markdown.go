package report

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tapgate/tapgate/gate"
)

// MarkdownLimit bounds the Markdown report. GitHub rejects a step summary
// above 1 MiB (and then shows nothing at all), so tables are cut, with a
// line saying how many rows were left out, rather than exceed it. The
// margin leaves room for the newline the summary file command appends and
// for other steps' summaries in the same file.
const MarkdownLimit = 1000 << 10

// maxCell bounds one table cell: a pathological rule name or reason must not
// eat the whole budget.
const maxCell = 1024

// Markdown writes a GitHub-flavoured Markdown report: a verdict banner,
// context, a per-target table, a per-rule table, what would decide the
// undecided rules, and notes. It is also the
// GitHub Actions step summary.
func Markdown(w io.Writer, v *gate.Verdict, meta Meta) error {
	if v == nil {
		return fmt.Errorf("markdown report: no verdict")
	}
	_, err := w.Write(markdown(v, meta, MarkdownLimit))
	return err
}

// markdown renders the report within limit bytes. The banner and context
// always fit; the rules table may use what the targets table leaves, and the
// notes come last, so when something must be cut it is the least important.
func markdown(v *gate.Verdict, meta Meta, limit int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "## %s tapgate: %s", banner(v.Outcome), strings.ToUpper(v.Outcome.String()))
	if v.Policy != "" {
		b.WriteString(" · ")
		b.WriteString(mdText(v.Policy))
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "**%s** (%s)\n\n", mdText(Reason(v)), mdText(exitNote(v, meta)))
	mdContext(&b, v, meta)

	// Budgets: each table may grow to its share of what is left, keeping a
	// reserve for the sections after it and for the truncation lines.
	const reserve = 512
	b.WriteString("\n### Targets\n\n")
	targets := mdTargetRows(v)
	mdTable(&b, []string{"Target", "Resource", "Requests", "Success (95% CI)", "Failures", "In-flight", "p50 (95% CI)", "p95 (95% CI)", "p99 (95% CI)", "Coverage"},
		targets, b.Len()+(limit-b.Len())/4, "targets")

	if hasPodTable(v) {
		// Folded: per-pod rows matter when one pod is the outlier, and
		// would otherwise push the rules below the fold.
		b.WriteString("\n<details><summary>Pods</summary>\n\n")
		mdTable(&b, []string{"Target", "Pod", "Requests", "Success", "Failures", "p99"},
			mdPodRows(v), b.Len()+(limit-b.Len())/8, "pods")
		b.WriteString("\n</details>\n")
	}

	if hasCrossCheck(v) {
		b.WriteString("\n### Cross-check against the proxies' own counts\n\n")
		var rows [][]string
		for _, r := range crossCheckRows(v) {
			rows = append(rows, []string{mdCell(r[0]), mdCell(r[1]), mdCell(r[2]), mdCell(r[3]), mdCell(r[4]), mdCell(r[5])})
		}
		mdTable(&b, []string{"Target", "Tapped / all requests", "Volume", "Errors tapped / all", "p99 tapped / all (buckets)", "Sample"},
			rows, b.Len()+(limit-b.Len())/8, "targets")
	}

	b.WriteString("\n### Rules\n\n")
	head, rules := mdRuleRows(v)
	mdTable(&b, head, rules, b.Len()+(limit-b.Len()-reserve)*3/4, "rules")

	if gs := mdGuidance(v); len(gs) > 0 {
		if v.StoppedEarly {
			b.WriteString("\n### Undecided when the run stopped\n\n")
		} else {
			b.WriteString("\n### Undecided\n\n")
		}
		mdList(&b, gs, b.Len()+(limit-b.Len()-reserve)/2, "undecided rules", "undecided rule")
	}

	if notes := mdNotes(v); len(notes) > 0 {
		b.WriteString("\n### Notes\n\n")
		mdList(&b, notes, limit-reserve/2, "notes", "note")
	}
	return b.Bytes()
}

// mdList writes list items, stopping before the buffer would pass budget
// bytes and saying how many items were cut.
func mdList(b *bytes.Buffer, items []string, budget int, many, one string) {
	for i, n := range items {
		if b.Len()+len(n)+1 > budget {
			what := many
			if len(items)-i == 1 {
				what = one
			}
			fmt.Fprintf(b, "\n_%d more %s not shown; see the JSON report._\n", len(items)-i, what)
			return
		}
		b.WriteString(n)
		b.WriteByte('\n')
	}
}

func banner(o gate.Outcome) string {
	switch o {
	case gate.Pass:
		return "✅"
	case gate.Fail:
		return "❌"
	}
	return "⚠️"
}

func mdContext(b *bytes.Buffer, v *gate.Verdict, meta Meta) {
	kv := func(k, val string) {
		if val != "" {
			fmt.Fprintf(b, "- **%s:** %s\n", k, mdText(val))
		}
	}
	for _, f := range contextFields(v, meta, "policy file") {
		kv(f[0], f[1])
	}
}

func mdTargetRows(v *gate.Verdict) [][]string {
	rows := make([][]string, 0, len(v.Targets))
	for i := range v.Targets {
		t := &v.Targets[i]
		rows = append(rows, []string{
			mdCell(t.Name),
			mdCell(shortResource(t.Resource)),
			strconv.FormatUint(t.Requests, 10),
			success(&t.Stats),
			strconv.FormatUint(t.Failures, 10),
			strconv.FormatUint(t.InFlight, 10),
			latencyCI(t.Latency.P50, t.Latency.CI50, t.Latency.Valid),
			latencyCI(t.Latency.P95, t.Latency.CI95, t.Latency.Valid),
			latencyCI(t.Latency.P99, t.Latency.CI99, t.Latency.Valid),
			coverage(t.Coverage),
		})
	}
	return rows
}

func mdPodRows(v *gate.Verdict) [][]string {
	var rows [][]string
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
			rows = append(rows, []string{mdCell(t.Name), mdCell(p.Pod), strconv.FormatUint(p.Requests, 10), sr,
				strconv.FormatUint(p.Failures, 10), latency(p.Latency.P99, p.Latency.Valid)})
		}
		if t.PodsOther > 0 {
			rows = append(rows, []string{mdCell(t.Name), "(other pods)", strconv.FormatUint(t.PodsOther, 10), none, none, none})
		}
	}
	return rows
}

func mdRuleRows(v *gate.Verdict) ([]string, [][]string) {
	routes := hasRoutes(v.Rules)
	head := []string{"", "Rule", "Target"}
	if routes {
		head = append(head, "Route")
	}
	tests := hasDecisions(v.Rules)
	head = append(head, "Verdict", "Observed", "Threshold", "Samples (n/required)", "95% CI")
	if tests {
		head = append(head, "Test")
	}
	head = append(head, "Reason")
	rows := make([][]string, 0, len(v.Rules))
	for i := range v.Rules {
		r := &v.Rules[i]
		verdict := strings.ToUpper(r.Outcome.String())
		icon := banner(r.Outcome)
		if r.DryRun {
			verdict += " (dry-run)"
			// A dry-run rule never decides the gate: no red or green mark.
			icon = "🧪"
		}
		row := []string{icon, mdCell(r.Name), mdCell(r.Target)}
		if routes {
			row = append(row, mdCode(r.Route))
		}
		row = append(row, verdict, mdText(observed(r)), mdCell(r.Threshold),
			fmt.Sprintf("%d/%d", r.Samples, r.Required), mdText(ruleCI(r)))
		if tests {
			row = append(row, mdText(testLabel(r)))
		}
		row = append(row, mdCell(r.Reason))
		rows = append(rows, row)
	}
	return head, rows
}

// mdGuidance lists what would decide each undecided rule.
func mdGuidance(v *gate.Verdict) []string {
	gs := guidance(v)
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, "- **"+mdText(truncate(g.subject, maxCell))+":** "+mdText(g.text))
	}
	return out
}

// mdTable writes a table, stopping before the buffer would pass budget
// bytes and saying how many rows were cut.
func mdTable(b *bytes.Buffer, head []string, rows [][]string, budget int, what string) {
	if len(rows) == 0 {
		b.WriteString("_no " + what + "_\n")
		return
	}
	b.WriteString("| " + strings.Join(head, " | ") + " |\n")
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---"
	}
	b.WriteString("|" + strings.Join(sep, "|") + "|\n")
	for i, r := range rows {
		l := "| " + strings.Join(r, " | ") + " |\n"
		if b.Len()+len(l) > budget {
			n := len(rows) - i
			fmt.Fprintf(b, "\n_%d more %s of %s not shown to keep this report under 1 MiB; see the JSON report._\n", n, pluralInt(n, "row"), what)
			return
		}
		b.WriteString(l)
	}
}

func mdNotes(v *gate.Verdict) []string {
	var out []string
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
			out = append(out, "- **"+mdText(name)+":** "+mdText(n))
		}
	}
	return out
}

func pluralInt(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// mdCell renders a value for a table cell: "-" when empty, escaped, and
// bounded in length.
func mdCell(s string) string {
	if s == "" {
		return none
	}
	return mdText(truncate(s, maxCell))
}

// mdText makes text inert in Markdown: control characters and newlines
// become spaces (a newline would end the table row), and the characters
// that make tables, links, emphasis, code or HTML are backslash-escaped,
// which CommonMark allows before any ASCII punctuation. Names and reasons
// come from the policy and the traffic, so nothing in them may render as
// markup in a GitHub summary.
func mdText(s string) string {
	s = line(strings.ToValidUTF8(s, "\uFFFD"))
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch r {
		case '\\', '|', '`', '*', '[', ']', '<', '>', '&':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode renders s as inline code (routes are regular expressions, full of
// characters that would otherwise need escaping). Pipes are still escaped,
// which GitHub's table parser requires even inside code.
func mdCode(s string) string {
	if s == "" {
		return none
	}
	s = strings.ReplaceAll(line(truncate(strings.ToValidUTF8(s, "\uFFFD"), maxCell)), "|", `\|`)
	// A fence longer than any run of backticks inside keeps the span intact.
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + s + pad + fence
}
