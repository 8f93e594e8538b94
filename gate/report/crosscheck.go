package report

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	"github.com/tapgate/tapgate/gate"
)

// The cross-check compares the tapped sample with what the proxies
// counted themselves (gate/crosscheck.go): the text and Markdown reports
// show it as a table, JSON as targets[].crossCheck, JUnit as properties;
// its caveats are notes in every format.

// CrossCheck is targets[].crossCheck in the JSON report.
type CrossCheck struct {
	TappedRequests uint64  `json:"tappedRequests"`
	TotalRequests  float64 `json:"totalRequests"`
	// VolumeCoverage is tapped / total requests (0..1).
	VolumeCoverage  float64  `json:"volumeCoverage"`
	TappedErrorRate *float64 `json:"tappedErrorRate"`
	TotalErrorRate  *float64 `json:"totalErrorRate"`
	// Mismatch says the tapped error rate differs significantly (at the
	// policy's confidence) from the rest of the proxies' requests; PValue
	// is that two-proportion test's.
	Mismatch bool    `json:"mismatch"`
	PValue   float64 `json:"pValue"`
	// LatencyMs are quantiles interpolated in the proxies' histogram
	// buckets, as Prometheus' histogram_quantile does; null with no
	// requests.
	LatencyMs *Quantiles `json:"latencyMs"`
	Source    string     `json:"source"`
	Notes     []string   `json:"notes"`
}

func buildCrossCheck(t *gate.TargetResult) *CrossCheck {
	cc := t.CrossCheck
	if cc == nil {
		return nil
	}
	out := &CrossCheck{
		TappedRequests: cc.TappedRequests,
		TotalRequests:  math.Round(orZero(cc.TotalRequests)),
		VolumeCoverage: orZero(cc.VolumeCoverage),
		Mismatch:       cc.Mismatch,
		PValue:         orZero(cc.PValue),
		LatencyMs:      quantiles(cc.Latency, false),
		Source:         cleanSource(cc.Source),
		Notes:          append([]string{}, cc.Notes...),
	}
	if cc.TappedRequests > 0 {
		out.TappedErrorRate = num(cc.TappedErrorRate)
	}
	if cc.TotalRequests > 0 {
		out.TotalErrorRate = num(cc.TotalErrorRate)
	}
	return out
}

func hasCrossCheck(v *gate.Verdict) bool {
	for i := range v.Targets {
		if v.Targets[i].CrossCheck != nil {
			return true
		}
	}
	return false
}

// sampleWord says whether a target's sample is representative.
func sampleWord(cc *gate.CrossCheck) string {
	switch {
	case cc.TotalRequests <= 0:
		return "no requests in the metrics"
	case cc.TappedRequests == 0:
		return "nothing tapped"
	case cc.Mismatch:
		return fmt.Sprintf("NOT representative (p=%.2g)", cc.PValue)
	}
	return fmt.Sprintf("representative (p=%.2g)", cc.PValue)
}

// crossCheckRows are the cells of the cross-check table, one row per
// target that has one.
func crossCheckRows(v *gate.Verdict) [][]string {
	var rows [][]string
	for i := range v.Targets {
		t := &v.Targets[i]
		cc := t.CrossCheck
		if cc == nil {
			continue
		}
		total := strconv.FormatFloat(math.Round(cc.TotalRequests), 'f', 0, 64)
		errs := none
		if cc.TappedRequests > 0 && cc.TotalRequests > 0 {
			errs = percent(cc.TappedErrorRate) + "/" + percent(cc.TotalErrorRate)
		}
		p99 := latency(t.Latency.P99, t.Latency.Valid) + "/" + latency(cc.Latency.P99, cc.Latency.Valid)
		rows = append(rows, []string{cell(t.Name), strconv.FormatUint(cc.TappedRequests, 10) + "/" + total,
			coverage(cc.VolumeCoverage), errs, p99, sampleWord(cc)})
	}
	return rows
}

var crossCheckHead = []string{"CROSS-CHECK", "TAPPED/ALL", "VOLUME", "ERRORS TAPPED/ALL", "P99 TAPPED/ALL", "SAMPLE"}

func writeCrossCheck(b *bytes.Buffer, v *gate.Verdict) {
	if !hasCrossCheck(v) {
		return
	}
	b.WriteByte('\n')
	tw := newTable(b)
	row(tw, crossCheckHead...)
	for _, r := range crossCheckRows(v) {
		row(tw, r...)
	}
	_ = tw.Flush()
}

// crossCheckNotes are a target's cross-check caveats, for the notes.
func crossCheckNotes(t *gate.TargetResult) []string {
	cc := t.CrossCheck
	if cc == nil {
		return nil
	}
	var out []string
	if cc.Mismatch {
		out = append(out, fmt.Sprintf("the tapped error rate %s differs from the %s of all the requests the proxies counted (p=%.2g): tap forwards the first requests of each second, and this sample is not representative of the rest", percent(cc.TappedErrorRate), percent(cc.TotalErrorRate), cc.PValue))
	}
	return append(out, cc.Notes...)
}
