package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tapgate/tapgate/gate"
)

// exitError carries an exit code (DESIGN §3) with an error; every command
// returns one of these or nil, and exitCode is the one place they become a
// process exit status.
type exitError struct {
	code int
	err  error
	// quiet: the message was already printed (e.g. a verdict).
	quiet bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error { return &exitError{code: gate.ExitUsage, err: err} }
func infraErr(err error) error { return &exitError{code: gate.ExitInfra, err: err} }

// verdictExit ends a run with its verdict's code; the report says why.
func verdictExit(code int) error {
	if code == 0 {
		return nil
	}
	return &exitError{code: code, quiet: true}
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return gate.ExitPass
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.quiet && ee.err != nil {
			printErr(stderr, ee.err)
		}
		return ee.code
	}
	// Anything else comes from flag parsing: a usage error.
	printErr(stderr, err)
	return gate.ExitUsage
}

func printErr(w io.Writer, err error) {
	msg := strings.TrimRight(err.Error(), "\n")
	fmt.Fprintf(w, "tapgate: %s\n", msg)
}
