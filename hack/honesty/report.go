package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// The markers around the section this program owns in BENCHMARKS.md.
const (
	beginMarker = "<!-- honesty:begin -->"
	endMarker   = "<!-- honesty:end -->"
)

// replaceSection returns doc with the text between the markers replaced by
// body, or with the markers and body appended when they are absent.
// Everything outside the markers is kept byte for byte.
func replaceSection(doc, body string) (string, error) {
	block := beginMarker + "\n" + strings.TrimRight(body, "\n") + "\n" + endMarker
	b := strings.Index(doc, beginMarker)
	e := strings.Index(doc, endMarker)
	switch {
	case b < 0 && e < 0:
		sep := "\n"
		if doc == "" || strings.HasSuffix(doc, "\n\n") {
			sep = ""
		} else if !strings.HasSuffix(doc, "\n") {
			sep = "\n\n"
		}
		return doc + sep + block + "\n", nil
	case b < 0 || e < 0 || e < b:
		return "", errors.New("BENCHMARKS.md has one honesty marker without the other (or in the wrong order): fix the file by hand")
	case strings.Count(doc, beginMarker) > 1 || strings.Count(doc, endMarker) > 1:
		return "", errors.New("BENCHMARKS.md has more than one honesty section: fix the file by hand")
	}
	return doc[:b] + block + doc[e+len(endMarker):], nil
}

// writeSection rewrites the section in the file at path (created when
// missing), atomically.
func writeSection(path, body string) error {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: give -o a Markdown file, or -o - for stdout", path)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc, err := replaceSection(string(old), body)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".honesty-*.md")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.WriteString(doc); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// runInfo describes how the study was run.
type runInfo struct {
	command, cpu, memory, goVersion, commit, date string
	loadStart, loadEnd                            string
	cores, workers                                int
	duration                                      time.Duration
	quick, viaMake                                bool
}

func (i runInfo) commandCell() string {
	if i.viaMake {
		return "`make honesty` (`" + i.command + "`)"
	}
	return "`" + i.command + "`"
}

// table renders a Markdown table.
func table(w io.Writer, header []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(seps, " | "))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

// pct renders a share as a percentage with the given decimals.
func pct(x float64, dec int) string {
	if math.IsNaN(x) {
		return "—"
	}
	return fmt.Sprintf("%.*f%%", dec, 100*x)
}

// share renders k of n as a percentage.
func share(k, n int) string {
	if n == 0 {
		return "—"
	}
	return pct(float64(k)/float64(n), 1)
}

// exactPct renders an exact probability: small ones with enough digits
// to be told from zero.
func exactPct(x float64) string {
	switch {
	case x == 0:
		return "0%"
	case x < 1e-6:
		return "<0.0001%"
	case x < 0.001:
		return pct(x, 4)
	case x < 0.01:
		return pct(x, 3)
	}
	return pct(x, 2)
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}

func fmtSec(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// commas formats n with thousands separators.
func commas(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// results is the study's summaries, with lookups.
type results struct {
	sums  []*summary
	gates int
	seed  uint64
}

func (r *results) find(f func(c *caseSpec) bool) []*summary {
	var out []*summary
	for _, s := range r.sums {
		if f(s.c) {
			out = append(out, s)
		}
	}
	return out
}

func (r *results) one(f func(c *caseSpec) bool) *summary {
	if s := r.find(f); len(s) > 0 {
		return s[0]
	}
	return nil
}

// wrongRate is the observed wrong-verdict share.
func (s *summary) wrongRate() float64 { return float64(s.wrong) / float64(s.gates) }

func (s *summary) rate(o gate.Outcome) float64 {
	switch o {
	case gate.Pass:
		return float64(s.pass) / float64(s.gates)
	case gate.Fail:
		return float64(s.fail) / float64(s.gates)
	}
	return float64(s.inc) / float64(s.gates)
}

func (s *summary) medianText() string {
	m, ok := median(s.decided)
	if !ok {
		return "—"
	}
	return commas(int(m))
}

func (s *summary) wrongText() string {
	if s.c.expect == expectNone {
		return "—"
	}
	_, hi := clopperPearson(s.wrong, s.gates)
	what := "false pass"
	if s.c.expect == expectPass {
		what = "false fail"
	}
	return fmt.Sprintf("%s %s (≤ %s)", what, share(s.wrong, s.gates), pct(hi, 2))
}

// boundState judges the stated 1% bound on a row's wrong verdicts. With
// an exact probability, the bound holds when it is at most 1%; an observed
// share above 1% is then simulation noise, which the row's agreement test
// checks. Without one (compare rules), it holds when the observed share is
// at most 1%, is violated when even the 95% lower bound is above 1%, and
// is unresolved in between.
type boundState uint8

const (
	boundNone boundState = iota // no bound stated, or no wrong verdict defined
	boundHolds
	boundHoldsNoisy // exact <= 1%, observed above by chance
	boundUnresolved
	boundViolated
)

func (s *summary) bound() boundState {
	if s.c.expect == expectNone || s.c.decision == gate.Estimate {
		return boundNone
	}
	obs := s.wrongRate()
	if s.ex != nil {
		switch {
		case s.ex.wrong(s.c.expect) > 0.01:
			return boundViolated
		case obs > 0.01:
			return boundHoldsNoisy
		}
		return boundHolds
	}
	lo, _ := clopperPearson(s.wrong, s.gates)
	switch {
	case obs <= 0.01:
		return boundHolds
	case lo > 0.01:
		return boundViolated
	}
	return boundUnresolved
}

func (s *summary) boundText() string {
	switch s.bound() {
	case boundNone:
		if s.c.decision == gate.Estimate && s.c.expect != expectNone {
			return "none stated"
		}
		return "—"
	case boundHolds:
		return "holds"
	case boundHoldsNoisy:
		return fmt.Sprintf("holds: exact %s; the observed share is above 1%% by chance", exactPct(s.ex.wrong(s.c.expect)))
	case boundUnresolved:
		return "**unresolved**: observed above 1%, but consistent with 1%"
	}
	return "**violated**"
}

// agreement is the smaller p-value of the sim-vs-exact tests of a row.
func (s *summary) agreement() float64 { return math.Min(s.ex.pPass, s.ex.pFail) }

// agreeThreshold is the per-test level: 1% over every test of the study
// (Bonferroni), so that a correct engine shows "agrees" everywhere with
// probability at least 99%.
func (r *results) agreeThreshold() float64 {
	n := 0
	for _, s := range r.sums {
		if s.ex != nil {
			n += 2
		}
	}
	return 0.01 / float64(max(1, n))
}

func (r *results) agreeText(s *summary) string {
	p := s.agreement()
	if p >= r.agreeThreshold() {
		return fmt.Sprintf("agrees (p %.2f)", p)
	}
	return fmt.Sprintf("**differs** (p %.2g)", p)
}

func oneSampleTable(w io.Writer, r *results, sec section) {
	var rows [][]string
	for _, s := range r.find(func(c *caseSpec) bool { return c.sec == sec }) {
		c, e := s.c, s.ex
		exWrong := "—"
		if c.expect != expectNone {
			exWrong = exactPct(e.wrong(c.expect))
		}
		med := s.medianText()
		if !math.IsNaN(e.median) {
			med += " / " + commas(int(e.median))
		} else {
			med += " / —"
		}
		rows = append(rows, []string{
			decisionName(c.decision), c.truth, commas(c.n),
			share(s.pass, s.gates), share(s.fail, s.gates), share(s.inc, s.gates),
			s.wrongText(), exWrong, s.boundText(), med,
			fmt.Sprintf("%s / %s / %s", exactPct(e.pass), exactPct(e.fail), exactPct(e.inc)),
			r.agreeText(s),
		})
	}
	table(w, []string{"decision", "true value", "N", "PASS", "FAIL", "INCONCLUSIVE", "wrong verdict (95% upper bound)", "exact wrong verdict", "bound ≤ 1%", "median requests to a decision (sim / exact)", "exact PASS / FAIL / INCONCLUSIVE", "sim vs exact"}, rows)
}

func compareTable(w io.Writer, r *results, sec section) {
	var rows [][]string
	for _, s := range r.find(func(c *caseSpec) bool { return c.sec == sec }) {
		c := s.c
		rows = append(rows, []string{
			c.truth, fmt.Sprintf("%s (baseline %s)", commas(c.n), commas(3*c.n)),
			share(s.pass, s.gates), share(s.fail, s.gates), share(s.inc, s.gates),
			s.wrongText(), s.boundText(), s.medianText(),
		})
	}
	table(w, []string{"true value", "canary requests", "PASS", "FAIL", "INCONCLUSIVE", "wrong verdict (95% upper bound)", "bound ≤ 1%", "median canary requests to a decision"}, rows)
}

// earlyStats are the early-stop figures of a case.
type earlyStats struct {
	failShare, within float64
	t50, t95          time.Duration
	n50, n95          uint64
	ok                bool
}

func early(s *summary) earlyStats {
	e := earlyStats{failShare: s.rate(gate.Fail), within: float64(s.stoppedWithin) / float64(s.gates)}
	if len(s.failTimes) > 0 {
		e.ok = true
		e.t50, _ = quantileOf(s.failTimes, 0.5)
		e.t95, _ = quantileOf(s.failTimes, 0.95)
		e.n50, _ = quantileOf(s.failReqs, 0.5)
		e.n95, _ = quantileOf(s.failReqs, 0.95)
	}
	return e
}

func earlyTable(w io.Writer, r *results) {
	var rows [][]string
	for _, s := range r.find(func(c *caseSpec) bool { return c.sec == secEarly }) {
		e := early(s)
		when, reqs := "at the window's end (40 s): an estimate never stops a run", "all of them"
		if e.ok {
			when = fmt.Sprintf("%s / %s (%s / %s of the window)", fmtSec(e.t50), fmtSec(e.t95), pct(e.t50.Seconds()/s.c.window.Seconds(), 1), pct(e.t95.Seconds()/s.c.window.Seconds(), 1))
			reqs = fmt.Sprintf("%d / %d", e.n50, e.n95)
		}
		rows = append(rows, []string{decisionName(s.c.decision), share(s.fail, s.gates), share(s.stopped, s.gates), when, reqs, pct(e.within, 1)})
	}
	table(w, []string{"decision", "FAIL", "stopped early", "FAIL decided, time into the window: median / p95", "requests at the FAIL: median / p95", "stopped within 15% of the window (6 s)"}, rows)
}

// target is one line of the targets table.
type target struct {
	what, measured string
	ok             bool
	info           bool
}

func (r *results) oneSampleRows(sec section, decision gate.Decision, x expect, hypothesis bool) []*summary {
	return r.find(func(c *caseSpec) bool {
		return c.sec == sec && c.decision == decision && c.expect == x && c.hypothesis == hypothesis
	})
}

// boundTarget checks the 1% bound over rows.
func boundTarget(what string, rows []*summary) target {
	t := target{what: what, ok: len(rows) > 0}
	var groups []string
	var cur []string
	label := ""
	flush := func() {
		if len(cur) == 0 {
			return
		}
		g := strings.Join(cur, ", ")
		if label != "" {
			g = label + ": " + g
		}
		groups = append(groups, g)
		cur = nil
	}
	for _, s := range rows {
		if s.c.short != label {
			flush()
			label = s.c.short
		}
		part := fmt.Sprintf("%s at %s", share(s.wrong, s.gates), commas(s.c.n))
		if s.c.ex() {
			part += fmt.Sprintf(" (exact %s)", exactPct(s.ex.wrong(s.c.expect)))
		}
		cur = append(cur, part)
		if b := s.bound(); b != boundHolds && b != boundHoldsNoisy {
			t.ok = false
		}
	}
	flush()
	t.measured = strings.Join(groups, "; ")
	return t
}

func (c *caseSpec) ex() bool { return c.exact != nil }

// powerTarget checks that a row reaches outcome o in at least 90% of runs.
func powerTarget(what string, s *summary, o gate.Outcome) target {
	if s == nil {
		return target{what: what, measured: "not run"}
	}
	t := target{what: what, ok: s.rate(o) >= 0.9}
	t.measured = pct(s.rate(o), 1)
	if s.ex != nil {
		x := s.ex.pass
		if o == gate.Fail {
			x = s.ex.fail
		}
		t.measured += fmt.Sprintf(" (exact %s)", exactPct(x))
	}
	return t
}

func (r *results) targets() []target {
	seq := gate.DecisionDefault
	var ts []target
	ts = append(ts,
		boundTarget("errorRate max 1%, defaults: false pass ≤ 1% at twice the budget (2%), at every N", r.oneSampleRows(secRate, seq, expectFail, false)),
		boundTarget("errorRate max 1%, defaults: false fail ≤ 1% at half the budget (0.5%), at every N", r.oneSampleRows(secRate, seq, expectPass, false)),
		powerTarget("errorRate: at 1,000 requests a release at 2x the budget FAILs in ≥ 90% of runs", r.one(func(c *caseSpec) bool {
			return c.sec == secRate && c.decision == seq && c.expect == expectFail && c.n == 1000
		}), gate.Fail),
		powerTarget("errorRate: at 3,000 requests a release at 0.5x the budget PASSes in ≥ 90% of runs", r.one(func(c *caseSpec) bool {
			return c.sec == secRate && c.decision == seq && c.expect == expectPass && c.n == 3000
		}), gate.Pass),
		boundTarget("p99 max 300ms, defaults: false pass ≤ 1% at p99 1.33x the bound, at every N", r.oneSampleRows(secP99, seq, expectFail, false)),
		boundTarget("p99 max 300ms, defaults: false fail ≤ 1% at p99 0.67x the bound, at every N", r.oneSampleRows(secP99, seq, expectPass, false)),
		boundTarget("p99 max 300ms: false pass ≤ 1% at the stated bad hypothesis (2% slower than 300ms)", r.oneSampleRows(secP99, seq, expectFail, true)),
		boundTarget("p99 max 300ms: false fail ≤ 1% at the stated good hypothesis (0.5% slower than 300ms)", r.oneSampleRows(secP99, seq, expectPass, true)),
		powerTarget("p99: at 1,000 requests a release with p99 1.33x the bound FAILs in ≥ 90% of runs", r.one(func(c *caseSpec) bool {
			return c.sec == secP99 && c.decision == seq && c.expect == expectFail && !c.hypothesis && c.n == 1000
		}), gate.Fail),
		powerTarget("p99: at 3,000 requests a release with p99 0.67x the bound PASSes in ≥ 90% of runs", r.one(func(c *caseSpec) bool {
			return c.sec == secP99 && c.decision == seq && c.expect == expectPass && !c.hypothesis && c.n == 3000
		}), gate.Pass),
	)
	if s := r.one(func(c *caseSpec) bool { return c.sec == secEarly && c.decision == seq }); s != nil {
		e := early(s)
		ts = append(ts, target{what: "early stop: the demo's broken canary (9% failing, 20 rps) stops within 15% of a 40 s window in ≥ 90% of runs",
			measured: fmt.Sprintf("%s (median FAIL at %s, %d requests)", pct(e.within, 1), fmtSec(e.t50), e.n50), ok: e.within >= 0.9})
	}
	ts = append(ts,
		boundTarget("compare errorRate maxIncrease 1pp: false pass ≤ 1% at +2pp", r.find(func(c *caseSpec) bool { return c.sec == secCompareRate && c.expect == expectFail })),
		boundTarget("compare errorRate maxIncrease 1pp: false fail ≤ 1% at +0.5pp and at +0", r.find(func(c *caseSpec) bool { return c.sec == secCompareRate && c.expect == expectPass })),
		boundTarget("compare latency p99 maxRatio 1.2: false pass ≤ 1% at 2% over 1.2x the baseline's p99", r.find(func(c *caseSpec) bool { return c.sec == secCompareLatency && c.expect == expectFail })),
		boundTarget("compare latency p99 maxRatio 1.2: false fail ≤ 1% at 0.5% over it and at equal latency", r.find(func(c *caseSpec) bool { return c.sec == secCompareLatency && c.expect == expectPass })),
	)
	// For information: the old behaviour.
	if fp, ff := r.one(func(c *caseSpec) bool {
		return c.sec == secRate && c.decision == gate.Estimate && c.expect == expectFail && c.n == 300
	}), r.one(func(c *caseSpec) bool {
		return c.sec == secRate && c.decision == gate.Estimate && c.expect == expectPass && c.n == 300
	}); fp != nil && ff != nil {
		ts = append(ts, target{info: true, what: "for information: `decision: estimate` at 300 requests (expected: about 14% false pass at 2x, about 7% false fail at 0.5x)",
			measured: fmt.Sprintf("false pass %s (exact %s), false fail %s (exact %s)", share(fp.wrong, fp.gates), exactPct(fp.ex.pass), share(ff.wrong, ff.gates), exactPct(ff.ex.fail))})
	}
	return ts
}

// checks are the consistency checks of the engine's results.
type checks struct {
	replicaGates, replicaMismatch int
	stopMismatch, afterMismatch   int
	shortSamples                  int
	errors                        []string
	minP                          float64
	minPRow                       string
	near                          float64
	exactRows                     int
	differ                        []string
}

func (r *results) checks() checks {
	k := checks{minP: 1}
	for _, s := range r.sums {
		if s.c.exact != nil && !s.c.exact.estimate {
			k.replicaGates += s.gates
		}
		k.replicaMismatch += s.replicaMismatch
		k.stopMismatch += s.stopMismatch
		k.afterMismatch += s.afterMismatch
		k.shortSamples += s.shortSamples
		for _, e := range s.errors {
			k.errors = append(k.errors, s.c.id+": "+e)
		}
		if s.ex != nil {
			k.exactRows++
			if p := s.agreement(); p < k.minP {
				k.minP, k.minPRow = p, s.c.id
			}
			if s.agreement() < r.agreeThreshold() {
				k.differ = append(k.differ, s.c.id)
			}
			k.near = math.Max(k.near, s.ex.near)
		}
	}
	return k
}

func (k checks) ok() bool {
	return k.replicaMismatch == 0 && k.stopMismatch == 0 && k.afterMismatch == 0 && k.shortSamples == 0 && len(k.errors) == 0 && len(k.differ) == 0
}

// section renders the BENCHMARKS.md section.
func (r *results) section(info runInfo) string {
	var b bytes.Buffer
	w := &b
	total := 0
	requests, events := 0, 0
	for _, s := range r.sums {
		total += s.gates
		requests += s.requests
		events += s.emitted
	}
	fmt.Fprintln(w, "## 6. Honesty of verdicts")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Written by `make honesty` (`go run ./hack/honesty`, in hack/honesty/); every figure below comes from one run of it, which rewrites only this section (between the `honesty` markers). The same seed gives the same tables.")
	fmt.Fprintln(w)
	if info.quick {
		fmt.Fprintln(w, "**A quick run (-quick or fewer gates than the default): these figures are not the record.**")
		fmt.Fprintln(w)
	}
	table(w, []string{"run", ""}, [][]string{
		{"command", info.commandCell()},
		{"seed", fmt.Sprint(r.seed)},
		{"simulated gates per case", fmt.Sprintf("%s (%d cases, %s gates, %s requests, %s tap events through runner.Run)", commas(r.gates), len(r.sums), commas(total), commas(requests), commas(events))},
		{"CPU", info.cpu},
		{"cores", fmt.Sprintf("%d (%d workers)", info.cores, info.workers)},
		{"memory", info.memory},
		{"Go", info.goVersion},
		{"tapgate commit", info.commit},
		{"date", info.date},
		{"load average (1, 5, 15 min) at start / end", info.loadStart + " / " + info.loadEnd},
		{"duration of this run", fmt.Sprintf("%.0f s", info.duration.Seconds())},
	})
	fmt.Fprintln(w)
	fmt.Fprint(w, methodText)
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Targets")
	fmt.Fprintln(w)
	var rows [][]string
	for _, t := range r.targets() {
		res := met(t.ok)
		if t.info {
			res = "for information"
		}
		rows = append(rows, []string{t.what, t.measured, res})
	}
	k := r.checks()
	rows = append(rows, []string{"the engine agrees with the independent check: per gate (replayed test) and in distribution (exact DP)", k.summary(), met(k.ok())})
	table(w, []string{"target", "measured (simulated; exact where computed)", "result"}, rows)
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### 6.1 errorRate max 1%")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "N requests in the window, failures (60% HTTP 500, 40% 503) independent at the true rate. Sequential rows use the defaults (confidence 99%, tolerance 2: good 0.5%, bad 2%); *wrong verdict* is a PASS for a release at 2x the budget and a FAIL at 0.5x; at the budget itself neither is wrong. The 95% upper bound is Clopper-Pearson's (two-sided) on the observed share. *Exact* columns are the dynamic program of 6.5, not a simulation.")
	fmt.Fprintln(w)
	oneSampleTable(w, r, secRate)
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### 6.2 latency p99 max 300ms")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Lognormal latencies with sigma %.1f (ln-seconds), scaled so that the true p99 is 400 ms (1.33x the bound: %s of requests slower than 300 ms, i.e. %.1fx the 1%% budget) or 200 ms (0.67x: %s slower, %.2fx), and, to test the stated bounds where they are tight, exactly 2%% and 0.5%% slower than 300 ms (the test's bad and good hypotheses: p99 %s and %s). The rule counts requests slower than 300 ms (b = 1-q = 1%%); its minimum sample is the p99 floor of 100.\n",
		p99Sigma,
		pct(lognormalWithQuantile(400*time.Millisecond, 0.99, p99Sigma).over(p99Bound), 2), lognormalWithQuantile(400*time.Millisecond, 0.99, p99Sigma).over(p99Bound)/0.01,
		pct(lognormalWithQuantile(200*time.Millisecond, 0.99, p99Sigma).over(p99Bound), 3), lognormalWithQuantile(200*time.Millisecond, 0.99, p99Sigma).over(p99Bound)/0.01,
		fmtMS(lognormalWithShare(0.02).quantile(0.99)), fmtMS(lognormalWithShare(0.005).quantile(0.99)))
	fmt.Fprintln(w)
	oneSampleTable(w, r, secP99)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Samples enter the test in the order requests complete, and a slow request completes after fast ones that started with it: on a latency rule a FAIL comes a few samples later (about the arrival rate times the slow requests' latency) than for samples in arrival order, which the exact DP assumes; that is why simulated medians run a little above the exact ones at 3,000 requests (52 rps). The outcome probabilities agree (last column), and the per-gate replay uses the completion order, as the engine does. (In production a request still in flight when the window closes is not counted, and slow ones are a little more likely to be among them; the study lets every request complete, see Method.)")
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### 6.3 Early stop")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The demo's broken canary: 9% of requests failing (5% HTTP 500, 3% 503, 1% reset streams), p50 70 ms / p99 280 ms, Poisson arrivals at 20 rps through a 3 s warmup and a 40 s window, against `successRate min 99%`. The runner cancels the source when the FAIL is decided; time and requests are the rule's Test.DecidedAt and Test.DecidedAfter, *stopped within 15%* uses Verdict.StoppedEarly and Verdict.Elapsed.")
	fmt.Fprintln(w)
	earlyTable(w, r)
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### 6.4 Compare rules")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A canary against a stable baseline tapped in the same window, with 3x the canary's traffic (3 pods to its 1), requests of both interleaved in time. Stated bounds at the defaults: a canary whose increase is at least 2x the allowed one passes at most 1% of the time, one within half of it fails at most 1% of the time.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "**compare errorRate, maxIncrease 1pp** (baseline 0.5% failing):")
	fmt.Fprintln(w)
	compareTable(w, r, secCompareRate)
	fmt.Fprintln(w)
	fmt.Fprintln(w, compareRateWhy())
	fmt.Fprintln(w)
	fmt.Fprintf(w, "**compare latency, p99 maxRatio 1.2** (baseline lognormal, sigma %.1f, p99 %s; canary of the same shape, scaled so that the given share of its requests is slower than 1.2x the baseline's true p99; 2%% and 0.5%% are the test's bad and good hypotheses):\n", p99Sigma, fmtMS(compareBase.quantile(0.99)))
	fmt.Fprintln(w)
	compareTable(w, r, secCompareLatency)
	fmt.Fprintln(w)
	fmt.Fprintln(w, compareLatencyWhy())
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### 6.5 The exact check")
	fmt.Fprintln(w)
	fmt.Fprint(w, exactText)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "This run: %s\n", k.detail(r))
	return b.String()
}

func (k checks) summary() string {
	s := fmt.Sprintf("%s gates replayed, %d differ; %d rows against the exact DP, smallest p-value %.2g", commas(k.replicaGates), k.replicaMismatch, k.exactRows, k.minP)
	if len(k.differ) > 0 {
		s += fmt.Sprintf(", %d rows differ", len(k.differ))
	}
	if n := k.stopMismatch + k.afterMismatch + k.shortSamples + len(k.errors); n > 0 {
		s += fmt.Sprintf("; %d other inconsistencies", n)
	}
	return s
}

func (k checks) detail(r *results) string {
	var b strings.Builder
	if k.replicaMismatch == 0 {
		fmt.Fprintf(&b, "on all %s one-sample sequential gates the replayed test gave the engine's outcome (and, for a FAIL, its sample count). ", commas(k.replicaGates))
	} else {
		fmt.Fprintf(&b, "on %d of %s one-sample sequential gates the replayed test did **not** give the engine's outcome (or, for a FAIL, its sample count). ", k.replicaMismatch, commas(k.replicaGates))
	}
	fmt.Fprintf(&b, "Against the exact probabilities, the smallest p-value of the %d tests (PASS and FAIL counts of %d rows) is %.2g (%s); the level for \"differs\", 1%% over all tests (Bonferroni), is %.2g", 2*k.exactRows, k.exactRows, k.minP, k.minPRow, r.agreeThreshold())
	if len(k.differ) == 0 {
		b.WriteString(": every row agrees. ")
	} else {
		fmt.Fprintf(&b, ": rows that differ: %s. ", strings.Join(k.differ, ", "))
	}
	if k.near > 0 {
		fmt.Fprintf(&b, "Reachable states within 1e-6 of a boundary (where rounding could matter) carry probability up to %.2g. ", k.near)
	} else {
		b.WriteString("No reachable state lies within 1e-6 of a boundary, so rounding cannot matter. ")
	}
	fmt.Fprintf(&b, "A FAIL without an early stop or the reverse: %d; a stopped FAIL whose sample count is not Test.DecidedAfter or whose Verdict.Elapsed is not Test.DecidedAt: %d; a gate run to its end whose rule saw fewer samples than requests sent: %d; errors: %d.",
		k.stopMismatch, k.afterMismatch, k.shortSamples, len(k.errors))
	for i, e := range k.errors {
		if i == 5 {
			fmt.Fprintf(&b, " (and %d more)", len(k.errors)-5)
			break
		}
		fmt.Fprintf(&b, " %s.", e)
	}
	return b.String()
}

const methodText = `**Method.** Every simulated gate is one call of ` + "`runner.Run`" + ` (replay mode) with a ` + "`gate.Policy`" + ` built in Go and an in-memory ` + "`gate.Source`" + ` that emits the three tap events of each request (requestInit; responseInit with the HTTP status and the latency as since_request_init; responseEnd, with a reset end of stream for resets) with their timestamps, in time order, requests overlapping as in a live tap, spread over the target's pods with stream ids unique per proxy and repeated across proxies. Arrivals: N requests at the times of a Poisson process conditioned on N arrivals in the first 58 s of a 60 s window, so that each request completes inside the window and each rule sees exactly N samples (checked on every gate); the early-stop case is a plain Poisson process. A FAIL decided during the window stops the run as in production: the runner cancels the source's context and the source returns. Outcomes and latencies are independent draws; each (case, gate) has its own PCG stream derived from the seed and the case, so the tables do not depend on the number of workers. Rules use tapgate's defaults (confidence 99%, tolerance 2, minRequests 100) unless the row says ` + "`estimate`" + ` (` + "`decision: estimate`" + `, the old point-estimate comparison). A row's verdict is its rule's RuleResult.Outcome; *median requests to a decision* counts, over decided gates, Test.DecidedAfter for a FAIL and the rule's samples at the end for a PASS.
`

const exactText = `For every one-sample row the outcome probabilities are computed exactly and without the engine. The sequential test is rebuilt from its stated definition: budget b, tolerance k, confidence c; good = b/k, bad = min(b·k, 1-(1-b)/k); a bad sample adds ln(bad/good) to the log likelihood ratio, a good one ln((1-bad)/(1-good)); FAIL the first time the ratio reaches ln(1/(1-c)), PASS when at the end it is at most ln(1-c) on at least minRequests samples. A dynamic program over (samples n, bad samples k) carries the probability of every state that has not failed; the fail boundary absorbs (its mass at each n is the distribution of the FAIL's sample count, which gives the exact median), and the pass condition is read at N. For p99 rows the bad-sample rate is p = P(latency > 300 ms) under the lognormal; for ` + "`estimate`" + ` rows the probability is binomial: FAIL when more than floor(N·b) of N samples are bad. The observed PASS and FAIL counts of each row are tested against the exact probabilities (two-sided binomial test). In addition, on every sequential one-sample gate the same test is replayed on that gate's own samples in the order they completed, which must give the engine's outcome exactly.
`

// readmeTable is the short table for the README.
func (r *results) readmeTable(w io.Writer) {
	seq := gate.DecisionDefault
	var rows [][]string
	for _, sec := range []section{secRate, secP99} {
		name := "errorRate max 1% (true rate 2% / 0.5%)"
		if sec == secP99 {
			name = "p99 max 300ms (true p99 400ms / 200ms)"
		}
		for _, n := range ns {
			bad := r.one(func(c *caseSpec) bool {
				return c.sec == sec && c.decision == seq && c.expect == expectFail && !c.hypothesis && c.n == n
			})
			good := r.one(func(c *caseSpec) bool {
				return c.sec == sec && c.decision == seq && c.expect == expectPass && !c.hypothesis && c.n == n
			})
			if bad == nil || good == nil {
				continue
			}
			rows = append(rows, []string{name, commas(n),
				share(bad.wrong, bad.gates), share(good.wrong, good.gates),
				share(bad.inc, bad.gates) + " / " + share(good.inc, good.gates),
				bad.medianText() + " / " + good.medianText()})
		}
	}
	table(w, []string{"rule (defaults: 99% confidence, tolerance 2)", "requests", "false pass (2x budget; p99 1.33x)", "false fail (0.5x budget; p99 0.67x)", "inconclusive, bad / good release", "median requests to a decision, bad / good"}, rows)
}

// compareRateWhy explains how the compare errorRate rows are decided.
func compareRateWhy() string {
	return "The error-rate comparison needs no estimate of the baseline's rate: it is a two-sample anytime-valid test (gate/twosample.go) on blocks holding requests of both targets, whose e-value has expectation at most 1 under every pair of rates of its null, so the baseline's own uncertainty costs only what a two-sample test must pay. It also stays valid when both rates drift together during the window, as long as the bound holds within each short block."
}

// compareLatencyWhy does the same for compare latency, approximating the
// order statistics the engine bounds the baseline's p99 with by the true
// quantiles at their ranks.
func compareLatencyWhy() string {
	var parts []string
	bad, good := compareCanary(0.02), compareCanary(0.005)
	for _, nb := range []uint64{3000, 9000} {
		loRank, _ := gate.QuantileRanks(nb, 0.99, (1-confidence)/2)
		_, hiRank := gate.QuantileRanks(nb, 0.99, (1-confidence)/2)
		qLo, qHi := float64(loRank)/float64(nb), math.Min(float64(hiRank)/float64(nb), 1-1e-9)
		tauLo := time.Duration(float64(compareBase.quantile(qLo)) * compareRatio * (1 - gate.SketchRelativeAccuracy))
		tauHi := time.Duration(float64(compareBase.quantile(qHi)) * compareRatio * (1 + gate.SketchRelativeAccuracy))
		parts = append(parts, fmt.Sprintf("after %s baseline requests its p99 is bounded by its ranks %d and %d (about p%.2f and p%.2f), so the fail side counts canary requests slower than about %s (the bad canary has %s of them, against hypotheses 0.5%% and 2%%) and the pass side those slower than about %s (the good canary has %s)",
			commas(int(nb)), loRank, hiRank, 100*qLo, 100*qHi, fmtMS(tauHi), pct(bad.over(tauHi), 2), fmtMS(tauLo), pct(good.over(tauLo), 2)))
	}
	return "A latency comparison has no such shortcut (no distribution-free two-sample test exists for quantiles): each side counts canary requests against a bound from an anytime-valid confidence sequence of the baseline's p99, which is why it needs more traffic. The true bound is " + fmtMS(compareLimit()) + ": " + strings.Join(parts, "; ") + "."
}
