package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/runner"
)

// gateResult is what one simulated gate produced.
type gateResult struct {
	outcome      gate.Outcome
	samples      uint64 // the rule's samples (the canary's for compare rules)
	decidedAfter uint64 // Test.DecidedAfter of a FAIL
	decidedAt    time.Duration
	hasTest      bool
	stopped      bool
	elapsed      time.Duration
	requests     int // requests the source generated
	emitted      int // events the source delivered
	// replica is the independent SPRT's outcome on the same samples, in
	// the order they completed (one-sample sequential cases).
	replica      string
	replicaAfter int
	err          string
}

// seedFor gives every (case, gate) its own reproducible stream: the same
// seed gives the same gates whatever the number of workers.
func seedFor(seed uint64, id string, g int) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return rand.New(rand.NewPCG(seed^h.Sum64(), uint64(g)*0x9E3779B97F4A7C15+1))
}

// runGate runs one simulated gate through the real runner and engine.
func runGate(c *caseSpec, g int, seed uint64, gen *generator) gateResult {
	src := gen.generate(&c.traffic, seedFor(seed, c.id, g))
	p := c.policy()
	res, err := runner.Run(context.Background(), runner.Config{Policy: p, Source: src})
	out := gateResult{requests: len(src.reqs), emitted: src.emitted}
	if err != nil {
		out.err = err.Error()
	}
	if res == nil || res.Verdict == nil {
		if out.err == "" {
			out.err = "no verdict"
		}
		return out
	}
	v := res.Verdict
	out.stopped, out.elapsed = v.StoppedEarly, v.Elapsed
	var rr *gate.RuleResult
	for i := range v.Rules {
		if v.Rules[i].Name == p.Rules[0].Name {
			rr = &v.Rules[i]
		}
	}
	if rr == nil {
		out.err = "rule missing from the verdict"
		return out
	}
	out.outcome, out.samples = rr.Outcome, rr.Samples
	if rr.Test != nil {
		out.hasTest = true
		out.decidedAfter, out.decidedAt = rr.Test.DecidedAfter, rr.Test.DecidedAt
	}
	if c.exact != nil && !c.exact.estimate {
		out.replica, out.replicaAfter = c.exact.test.replay(src.completions)
	}
	return out
}

// study runs every case's gates on a worker pool.
type study struct {
	cases   []*caseSpec
	gates   int
	seed    uint64
	workers int
	results [][]gateResult
	elapsed time.Duration
}

func (s *study) run(progress bool) {
	s.results = make([][]gateResult, len(s.cases))
	for i := range s.results {
		s.results[i] = make([]gateResult, s.gates)
	}
	type job struct{ c, from, to int }
	const chunk = 25
	// Largest cases first, so that the pool ends together.
	order := make([]int, len(s.cases))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return s.cases[order[a]].traffic.expectedRequests() > s.cases[order[b]].traffic.expectedRequests()
	})
	jobs := make(chan job)
	var total, done atomic.Int64
	var gatesDone atomic.Int64
	for _, c := range s.cases {
		total.Add(int64(c.traffic.expectedRequests() * float64(s.gates)))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := newGenerator()
			for j := range jobs {
				c := s.cases[j.c]
				for g := j.from; g < j.to; g++ {
					s.results[j.c][g] = runGate(c, g, s.seed, gen)
				}
				done.Add(int64(c.traffic.expectedRequests() * float64(j.to-j.from)))
				gatesDone.Add(int64(j.to - j.from))
			}
		}()
	}
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	if progress {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					f := float64(done.Load()) / float64(total.Load())
					el := time.Since(start)
					eta := "?"
					if f > 0 {
						eta = (time.Duration(float64(el)/f) - el).Round(time.Second).String()
					}
					fmt.Fprintf(os.Stderr, "honesty: %d of %d gates, %.0f%% of the traffic, %s elapsed, about %s left\n",
						gatesDone.Load(), s.gates*len(s.cases), 100*f, el.Round(time.Second), eta)
				}
			}
		}()
	}
	for _, ci := range order {
		for from := 0; from < s.gates; from += chunk {
			jobs <- job{ci, from, min(s.gates, from+chunk)}
		}
	}
	close(jobs)
	wg.Wait()
	close(stop)
	pwg.Wait()
	s.elapsed = time.Since(start)
}

// summary is one case's aggregate.
type summary struct {
	c                 *caseSpec
	gates             int
	pass, fail, inc   int
	wrong             int
	decided           []uint64 // requests to a decision, per decided gate
	failTimes         []time.Duration
	failReqs          []uint64
	stoppedWithin     int // stopped early within 15% of the window
	stopped           int
	shortSamples      int // a gate not stopped whose rule saw fewer samples than requests
	replicaMismatch   int
	stopMismatch      int // a FAIL without a stop, or a stop without a FAIL (sequential)
	afterMismatch     int // a stopped FAIL whose samples differ from DecidedAfter
	errors            []string
	requests, emitted int
	ex                *exactResult
}

// exactResult is the independent computation for a one-sample case.
type exactResult struct {
	pass, fail, inc float64
	median          float64
	near            float64
	// pPass and pFail are the two-sided binomial p-values of the observed
	// PASS and FAIL counts under the exact probabilities.
	pPass, pFail float64
}

func (e *exactResult) wrong(x expect) float64 {
	switch x {
	case expectFail:
		return e.pass
	case expectPass:
		return e.fail
	}
	return 0
}

func summarize(c *caseSpec, rs []gateResult) *summary {
	s := &summary{c: c, gates: len(rs)}
	for _, r := range rs {
		s.requests += r.requests
		s.emitted += r.emitted
		if r.err != "" {
			s.errors = append(s.errors, r.err)
			continue
		}
		switch r.outcome {
		case gate.Pass:
			s.pass++
			s.decided = append(s.decided, r.samples)
		case gate.Fail:
			s.fail++
			if r.hasTest && r.decidedAfter > 0 {
				s.decided = append(s.decided, r.decidedAfter)
				s.failReqs = append(s.failReqs, r.decidedAfter)
				s.failTimes = append(s.failTimes, r.decidedAt)
			} else {
				s.decided = append(s.decided, r.samples)
			}
		default:
			s.inc++
		}
		if (c.expect == expectFail && r.outcome == gate.Pass) || (c.expect == expectPass && r.outcome == gate.Fail) {
			s.wrong++
		}
		if r.stopped {
			s.stopped++
			if float64(r.elapsed) <= 0.15*float64(c.window) {
				s.stoppedWithin++
			}
			// The run stops at the event that decided the FAIL: the rule
			// saw exactly Test.DecidedAfter samples, and the verdict's
			// elapsed time is Test.DecidedAt.
			if r.hasTest && (r.samples != r.decidedAfter || r.elapsed != r.decidedAt) {
				s.afterMismatch++
			}
		}
		if c.decision != gate.Estimate && (r.outcome == gate.Fail) != r.stopped {
			s.stopMismatch++
		}
		if !r.stopped && c.traffic.targets[0].count > 0 && r.samples != uint64(c.traffic.targets[c.traffic.judged].count) {
			s.shortSamples++
		}
		if r.replica != "" && (r.replica != r.outcome.String() || (r.outcome == gate.Fail && uint64(r.replicaAfter) != r.decidedAfter)) {
			s.replicaMismatch++
		}
	}
	if c.exact != nil {
		e := &exactResult{}
		if c.exact.estimate {
			e.pass = estimatePass(c.exact.p, c.n, c.exact.allowed)
			e.fail = 1 - e.pass
			e.median = float64(c.n)
		} else {
			o := c.exact.test.operating(c.exact.p, c.n)
			e.pass, e.fail, e.inc = o.pass, o.fail, o.inconclusive
			e.median = o.medianDecision(c.n)
			e.near = o.near
		}
		e.pPass = binomTest(s.pass, s.gates, e.pass)
		e.pFail = binomTest(s.fail, s.gates, e.fail)
		s.ex = e
	}
	return s
}

// median is the lower median (the value at rank ceil(n/2)).
func median[T uint64 | time.Duration](xs []T) (T, bool) {
	return quantileOf(xs, 0.5)
}

// quantileOf is the nearest-rank q-quantile.
func quantileOf[T uint64 | time.Duration](xs []T, q float64) (T, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := append([]T(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	r := int(gate.NearestRank(q, uint64(len(s))))
	return s[r-1], true
}
