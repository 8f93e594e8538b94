package prom

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tapgate/tapgate/gate"
)

// The metrics read, with Linkerd's names: every response a proxy handled
// (classification="success" or "failure", as Linkerd classifies them: 5xx,
// gRPC errors, resets) and its latency histogram.
const (
	responses = "response_total"
	latency   = "response_latency_ms_bucket"
)

// maxLookback bounds how far before the window samples are read: beyond
// Prometheus' own lookback (5m) a series counts as absent anyway.
const maxLookback = 5 * time.Minute

// How the window's totals are computed.
//
// Each query is a range selector in an instant query, evaluated now:
//
//	response_total{<target's matchers>}[<window + lookback>s]
//
// which returns every raw sample of every matching series from a little
// before the window's start until now. Each series' increase over
// [from, to] is computed here, and only then summed (per classification,
// per le). Why not increase(...[window]) at `to`: increase() extrapolates
// from the samples inside the window, and a series born inside the window
// loses its first value: a Linkerd proxy creates a status_code="503" series
// at the first 503, and a canary's new pod starts its series mid-window, so
// the failures of exactly the releases a gate is for would be undercounted.
// Summing before computing the increase (sum by (le) ...) would turn a
// proxy restart, or a series the proxy drops when idle, into a bogus reset.
//
// Per series:
//   - Counter resets (a proxy restarted, keeping its pod name) are carried
//     across as Prometheus does: after a drop, the new value is the increase
//     since the restart.
//   - A series without a sample at or before `from` (the lookback covers
//     several scrape intervals) did not exist then: it starts from zero one
//     scrape interval before its first sample.
//   - The counter's value at `from` and at `to` is interpolated linearly
//     between the samples on either side, so the totals cover the window
//     itself, up to how unevenly the requests fell within the two scrape
//     intervals that straddle its edges; with a steady load the error is a
//     few requests, whatever the scrape interval.
//   - Past its last sample a series stays flat (a pod that went away).
//
// That needs a sample at or after `to`: Counts waits (Config.Wait, by
// default two scrape intervals measured on the samples) until every series
// still being scraped has one; past the wait a series' count ends at its
// last scrape, and a note says so.

// Counts returns what target t's proxies counted over [from, to]: requests
// (every response), failures and the latency buckets, summed over the
// target's pods. A target the metrics do not cover (no series at all) is
// not an error: Requests is 0 and a note says why. Errors are *Error, or
// ctx's own.
func (c *Client) Counts(ctx context.Context, t gate.Target, from, to time.Time) (gate.ProxyCounts, error) {
	sel, notes, err := selectorFor(t)
	if err != nil {
		return gate.ProxyCounts{}, err
	}
	out := gate.ProxyCounts{From: from, To: to, Source: c.source, Notes: notes}
	if !to.After(from) {
		return out, fmt.Errorf("prometheus counts: the window %s..%s is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}

	interval := c.interval
	lookback := 3 * interval
	var (
		series model.Matrix
		at     time.Time
	)
	for {
		at = time.Now()
		series, err = c.samples(ctx, responses, sel, from.Add(-lookback), at, &out)
		if err != nil {
			return out, err
		}
		interval = scrapeInterval(series, c.interval)
		if lookback < 2*interval && lookback < maxLookback {
			// A series older than the window must show a sample before
			// it, or it would pass for one born in it.
			lookback = min(3*interval, maxLookback)
			continue
		}
		deadline := to.Add(c.waitFor(interval))
		if c.wait < 0 || len(lagging(series, to, interval)) == 0 || !at.Before(deadline) {
			break
		}
		pause := min(max(interval/4, 50*time.Millisecond), 2*time.Second, deadline.Sub(at))
		if err := sleep(ctx, pause); err != nil {
			return out, err
		}
	}

	if len(series) == 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("Prometheus has no %s series for {%s}: its metrics do not cover this target (not meshed, not scraped by this Prometheus, or no request since its proxies started)", responses, sel))
		return out, nil
	}
	if late := lagging(series, to, interval); len(late) > 0 {
		last := to
		for _, s := range late {
			last = minTime(last, s.Values[len(s.Values)-1].Timestamp.Time())
		}
		out.To = last
		out.Notes = append(out.Notes, fmt.Sprintf("Prometheus had not scraped %d of the target's %d series past the window's end after waiting %s (scrape interval %s): their counts end at their last scrape, up to %s early",
			len(late), len(series), max(at.Sub(to), 0).Round(time.Millisecond), interval, to.Sub(last).Round(time.Millisecond)))
	}

	restarted := map[string]bool{}
	inexact := false
	for _, s := range series {
		inc, resets := increase(s.Values, from, to, interval)
		out.Requests += inc
		failed, exact := c.failed(s.Metric)
		inexact = inexact || !exact
		if failed {
			out.Failures += inc
		}
		if resets > 0 {
			restarted[proxyName(s.Metric)] = true
		}
	}
	if inexact {
		out.Notes = append(out.Notes, "the policy ignores failures on a route (classification.ignore with route), which the metrics cannot tell apart: the proxies' failures include them")
	}
	if len(restarted) > 0 {
		names := make([]string, 0, len(restarted))
		for n := range restarted {
			names = append(names, n)
		}
		sort.Strings(names)
		out.Notes = append(out.Notes, fmt.Sprintf("counters restarted during the window (a proxy restarted: %s); they were counted across the restart", strings.Join(names, ", ")))
	}

	buckets, err := c.samples(ctx, latency, sel, from.Add(-lookback), at, &out)
	if err != nil {
		return out, err
	}
	byLe := map[float64]float64{}
	for _, s := range buckets {
		le, err := strconv.ParseFloat(string(s.Metric["le"]), 64)
		if err != nil {
			continue
		}
		inc, _ := increase(s.Values, from, to, interval)
		byLe[le] += inc
	}
	for le, n := range byLe {
		out.Buckets = append(out.Buckets, gate.HistogramBucket{UpperMs: le, Count: n})
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].UpperMs < out.Buckets[j].UpperMs })
	return out, nil
}

// failed classifies a response_total series by its labels: with the
// policy's classification when the client has one (so the counts fail
// requests exactly as the tap sample does: failOn [5xx, "429"] counts 429s
// too), otherwise as Linkerd did (the classification label).
func (c *Client) failed(m model.Metric) (failed, exact bool) {
	if c.classify == nil {
		return m["classification"] == "failure", true
	}
	var status uint64
	if v := string(m["status_code"]); v != "" {
		status, _ = strconv.ParseUint(v, 10, 32)
	}
	grpc := int64(-1)
	if v := string(m["grpc_status"]); v != "" {
		if g, err := strconv.ParseInt(v, 10, 32); err == nil {
			grpc = g
		}
	}
	// The proxy labels a stream that ended in an error (a reset) with
	// error; a response with neither status nor error has no outcome the
	// labels show, so Linkerd's own label decides.
	reset := m["error"] != ""
	if status == 0 && grpc < 0 && !reset {
		return m["classification"] == "failure", true
	}
	return c.classify.FailedByLabels(uint32(status), int32(grpc), reset)
}

// samples returns the raw samples of metric{sel} in [since, at]; Prometheus'
// warnings become notes.
func (c *Client) samples(ctx context.Context, metric, sel string, since, at time.Time, out *gate.ProxyCounts) (model.Matrix, error) {
	secs := int64(math.Ceil(at.Sub(since).Seconds()))
	q := fmt.Sprintf("%s{%s}[%ds]", metric, sel, max(secs, 1))
	v, warnings, err := c.query(ctx, q, at)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		out.Notes = append(out.Notes, "Prometheus warned: "+w)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, &Error{Kind: BadResponse, Query: q, Msg: fmt.Sprintf("the answer from %s is a %s, not the raw samples (a matrix) a range selector returns", c.place, v.Type())}
	}
	return m, nil
}

func (c *Client) waitFor(interval time.Duration) time.Duration {
	if c.wait > 0 {
		return c.wait
	}
	return 2 * interval
}

// scrapeInterval is the median spacing of consecutive samples, or def when
// no series has two.
func scrapeInterval(m model.Matrix, def time.Duration) time.Duration {
	var d []int64
	for _, s := range m {
		for i := 1; i < len(s.Values); i++ {
			if dt := int64(s.Values[i].Timestamp - s.Values[i-1].Timestamp); dt > 0 {
				d = append(d, dt)
			}
		}
	}
	if len(d) == 0 {
		return def
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return time.Duration(d[len(d)/2]) * time.Millisecond
}

// lagging are the series still being scraped (a sample within two scrape
// intervals before to) that have no sample at or after to yet.
func lagging(m model.Matrix, to time.Time, interval time.Duration) []*model.SampleStream {
	var late []*model.SampleStream
	for _, s := range m {
		if len(s.Values) == 0 {
			continue
		}
		last := s.Values[len(s.Values)-1].Timestamp.Time()
		if last.Before(to) && !last.Before(to.Add(-2*interval)) {
			late = append(late, s)
		}
	}
	return late
}

// increase is a counter's increase over [from, to] from its raw samples
// (see above), and how many resets it went through in the window.
func increase(v []model.SamplePair, from, to time.Time, interval time.Duration) (float64, int) {
	if len(v) == 0 {
		return 0, 0
	}
	type point struct {
		t time.Time
		c float64 // cumulative, carried across resets
	}
	pts := make([]point, 0, len(v)+1)
	first := v[0].Timestamp.Time()
	c := float64(v[0].Value)
	if first.After(from) {
		// Born after from: zero one scrape before its first sample.
		pts = append(pts, point{first.Add(-interval), 0})
	}
	pts = append(pts, point{first, c})
	resets := 0
	for i := 1; i < len(v); i++ {
		d := float64(v[i].Value - v[i-1].Value)
		if d < 0 {
			d = float64(v[i].Value)
			if t := v[i].Timestamp.Time(); t.After(from) && v[i-1].Timestamp.Time().Before(to) {
				resets++
			}
		}
		c += d
		pts = append(pts, point{v[i].Timestamp.Time(), c})
	}
	at := func(t time.Time) float64 {
		if !t.After(pts[0].t) {
			return pts[0].c
		}
		for i := 1; i < len(pts); i++ {
			if !t.After(pts[i].t) {
				a, b := pts[i-1], pts[i]
				f := float64(t.Sub(a.t)) / float64(b.t.Sub(a.t))
				return a.c + f*(b.c-a.c)
			}
		}
		return pts[len(pts)-1].c
	}
	return at(to) - at(from), resets
}

// proxyName names the proxy a series came from, for notes.
func proxyName(m model.Metric) string {
	if p := m["pod"]; p != "" {
		return string(p)
	}
	return string(m["instance"])
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
