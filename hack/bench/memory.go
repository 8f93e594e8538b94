package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// memoryRun streams n generated requests into tapgate run --replay - and
// returns the child's measurements.
func memoryRun(tapgate string, n int) (child, error) {
	// An OS pipe, so tapgate reads the generator's writes directly.
	pr, pw, err := os.Pipe()
	if err != nil {
		return child{}, err
	}
	genErr := make(chan error, 1)
	go func() {
		_, err := generate(pw, n)
		_ = pw.Close()
		genErr <- err
	}()
	c, err := runChild(context.Background(), replayArgs(tapgate, "-"), "0", pr)
	_ = pr.Close()
	if gerr := <-genErr; err == nil && gerr != nil && !errors.Is(gerr, syscall.EPIPE) {
		err = gerr
	}
	if err != nil {
		return c, err
	}
	rep, err := parseReport(c)
	if err != nil {
		return c, err
	}
	if got := rep.Targets[0].Requests; got != uint64(n) {
		return c, fmt.Errorf("tapgate counted %d requests, %d were sent", got, n)
	}
	return c, nil
}

func memoryCmd(args []string) error {
	fs := newFlags("memory")
	tapgate := fs.String("tapgate", "bin/tapgate", "tapgate binary")
	sizes := fs.String("requests", "1000000,10000000", "request counts, comma-separated; the first is the baseline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-requests: %w", err)
		}
		ns = append(ns, n)
	}
	var rows [][]string
	var base int64
	pinned := false
	allMet := true
	for i, n := range ns {
		c, err := memoryRun(*tapgate, n)
		if err != nil {
			return err
		}
		pinned = c.Pinned
		logf("memory: %d requests: peak RSS %s, %s wall, %s CPU", n, mib(c.MaxRSS), c.Wall.Round(time.Millisecond), c.CPU().Round(time.Millisecond))
		limit := c.MaxRSS <= 64<<20
		growth := "baseline"
		ok := limit
		if i == 0 {
			base = c.MaxRSS
		} else {
			g := float64(c.MaxRSS-base) / float64(base)
			growth = fmt.Sprintf("%+.1f%% (target within ±10%%)", 100*g)
			ok = ok && g <= 0.10 && g >= -0.10
		}
		allMet = allMet && ok
		rows = append(rows, []string{
			si(float64(n)) + " requests (" + si(float64(3*n)) + " events)",
			"<= 64 MiB; within 10% of " + si(float64(ns[0])),
			mib(c.MaxRSS), growth, met(ok),
		})
	}
	w := os.Stdout
	fmt.Fprintln(w, "## 3. Memory")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Peak resident set (the kernel's high-water mark, ru_maxrss = VmHWM) of `tapgate run deploy/checkout -n shop --replay - "+
		"--window 24h --min-success-rate 99%% --max-latency p99=300ms -o json` while the driver streams a generated recording "+
		"(same shape as section 1) into its stdin through a pipe: nothing is written to disk. tapgate %s. Every request carries a unique "+
		"x-request-id header, so no table can stay small by accident. Flat memory: %s.\n\n", pinNote(pinned), met(allMet))
	table(w, []string{"requests", "target", "peak RSS", "growth", "result"}, rows)
	fmt.Fprintln(w)
	return nil
}
