// Package ghactions is tapgate's GitHub Actions mode: a Markdown job
// summary, annotations on the policy lines of failing rules, and step
// outputs, written through github.com/sethvargo/go-githubactions.
//
// That library panics when a file command's variable (GITHUB_OUTPUT,
// GITHUB_STEP_SUMMARY) is unset or its file cannot be written, and when the
// log writer fails. Every call here checks the variable first and recovers
// from the panic, so the same binary behaves outside Actions, and a broken
// runner costs an error message, not the gate's verdict.
package ghactions

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/report"
)

// MaxAnnotations is GitHub's limit of annotations of one level (error,
// warning, notice) per step; more are silently dropped, so the last one
// shown says how many more there are.
const MaxAnnotations = 10

// fileDelimiter is the heredoc delimiter go-githubactions uses for file
// commands; a value containing it could inject other outputs.
const fileDelimiter = "_GitHubActionsFileCommandDelimeter_"

// Detect reports whether the process runs as a GitHub Actions step.
func Detect(getenv func(string) string) bool {
	return getenv != nil && getenv("GITHUB_ACTIONS") == "true"
}

// New returns an Action writing workflow commands to w, reading the
// environment through getenv: the real process uses os.Stdout and
// os.Getenv, tests inject both.
func New(w io.Writer, getenv func(string) string) *githubactions.Action {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return githubactions.New(githubactions.WithWriter(w), githubactions.WithGetenv(getenv))
}

// StopCommands stops the runner from reading workflow commands in the
// output that follows, and returns the function that resumes it. Wrap any
// output that carries text from the policy or the traffic (the text report,
// tapped paths) in it: a line starting with "::" there would otherwise be
// run as a command (::add-mask::, ::error::, ...). The token is random, so
// the wrapped text cannot resume commands itself.
func StopCommands(w io.Writer) (resume func() error, err error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("stop-commands token: %w", err)
	}
	token := "tapgate-" + hex.EncodeToString(b[:])
	if _, err := fmt.Fprintf(w, "::stop-commands::%s\n", token); err != nil {
		return nil, err
	}
	return func() error {
		_, err := fmt.Fprintf(w, "::%s::\n", token)
		return err
	}, nil
}

// Publish writes the GitHub Actions side of a verdict: the Markdown report
// as the step summary, ::error annotations on the policy lines of failing
// rules, ::warning for dry-run rules that would fail, ::notice for
// inconclusive rules, and the outputs verdict, exit-code and report
// (reportPath, the JSON report; omitted when empty). Outside GitHub Actions
// (GITHUB_ACTIONS is not "true") it does nothing. Each part is attempted even
// when another fails; the errors are joined.
func Publish(a *githubactions.Action, v *gate.Verdict, meta report.Meta, reportPath string) error {
	if a == nil {
		return errors.New("github actions: no action")
	}
	if v == nil {
		return errors.New("github actions: no verdict")
	}
	if !Detect(a.Getenv) {
		return nil
	}
	var errs []error

	if a.Getenv("GITHUB_STEP_SUMMARY") != "" {
		var b bytes.Buffer
		if err := report.Markdown(&b, v, meta); err != nil {
			errs = append(errs, fmt.Errorf("github step summary: %w", err))
		} else {
			errs = append(errs, guard("step summary", func() { a.AddStepSummary(b.String()) }))
		}
	}

	errs = append(errs, guard("annotations", func() { annotate(a, v, meta) }))

	if a.Getenv("GITHUB_OUTPUT") != "" {
		outputs := [][2]string{
			{"verdict", v.Outcome.String()},
			{"exit-code", strconv.Itoa(meta.ExitCode)},
		}
		if reportPath != "" {
			outputs = append(outputs, [2]string{"report", filepath.ToSlash(reportPath)})
		}
		for _, o := range outputs {
			if strings.ContainsAny(o[1], "\r\n") || strings.Contains(o[1], fileDelimiter) {
				errs = append(errs, fmt.Errorf("github output %s: value %q contains a line break; not written", o[0], o[1]))
				continue
			}
			errs = append(errs, guard("output "+o[0], func() { a.SetOutput(o[0], o[1]) }))
		}
	}
	return errors.Join(errs...)
}

// guard runs one library call, turning its panic into an error.
func guard(what string, f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("github actions %s: %v", what, r)
		}
	}()
	f()
	return nil
}

// annotation is one workflow command to issue. line 0 is a rule whose
// line is unknown (the annotation still names the policy file); -1 names no
// file at all.
type annotation struct {
	title, message string
	line           int
}

func annotate(a *githubactions.Action, v *gate.Verdict, meta report.Meta) {
	file := annotationFile(meta.PolicyFile, a.Getenv("GITHUB_WORKSPACE"))
	var fails, dry, inconclusive []annotation
	for i := range v.Rules {
		r := &v.Rules[i]
		subject := r.Name
		if r.Target != "" {
			subject += " on " + r.Target
		}
		switch {
		case r.DryRun && r.Outcome == gate.Fail:
			dry = append(dry, annotation{
				title:   "tapgate: dry-run rule " + subject + " would fail",
				message: report.RuleSummary(r) + "\n" + r.Reason + "\nDry-run rules are reported but do not decide the gate.",
				line:    r.Line,
			})
		case r.DryRun:
		case r.Outcome == gate.Fail:
			fails = append(fails, annotation{
				title:   "tapgate: " + subject + " failed",
				message: report.RuleSummary(r) + "\n" + r.Reason,
				line:    r.Line,
			})
		case r.Outcome == gate.Inconclusive:
			inconclusive = append(inconclusive, annotation{
				title:   "tapgate: " + subject + " inconclusive",
				message: r.Reason,
				line:    r.Line,
			})
		}
	}
	// An inconclusive or interrupted gate fails the step too (exit 3, 5, or
	// 1 with onInconclusive: fail) without any failing rule: one error says
	// why, so the red step is not explained by notices alone.
	if v.Outcome != gate.Fail && meta.ExitCode != gate.ExitPass {
		fails = append(fails, annotation{
			title:   fmt.Sprintf("tapgate: %s, exit %d", strings.ToUpper(v.Outcome.String()), meta.ExitCode),
			message: report.Reason(v),
			line:    -1, // about the gate, not a line of the policy
		})
	}
	issue(a, "failing", fails, file, (*githubactions.Action).Errorf)
	issue(a, "dry-run failing", dry, file, (*githubactions.Action).Warningf)
	issue(a, "inconclusive", inconclusive, file, (*githubactions.Action).Noticef)
}

// issue writes at most MaxAnnotations annotations of one level; when there
// are more, the last one says how many rules are only in the summary.
func issue(a *githubactions.Action, what string, list []annotation, file string, emit func(*githubactions.Action, string, ...any)) {
	shown := list
	if len(list) > MaxAnnotations {
		shown = list[:MaxAnnotations-1]
	}
	for _, an := range shown {
		props := map[string]string{"title": oneLine(an.title)}
		if file != "" && an.line >= 0 {
			props["file"] = file
			if an.line > 0 {
				props["line"] = strconv.Itoa(an.line)
			}
		}
		// "%s": a rule name with a % must not be read as a verb.
		emit(a.WithFieldsMap(props), "%s", an.message)
	}
	if rest := len(list) - len(shown); rest > 0 {
		emit(a.WithFieldsMap(map[string]string{"title": fmt.Sprintf("tapgate: %d more %s rules", rest, what)}),
			"%s", fmt.Sprintf("%d more %s rules are listed in the job summary and the reports.", rest, what))
	}
}

// annotationFile is the policy path as GitHub wants it in an annotation:
// relative to the workspace (the repository root) with forward slashes.
// An absolute path under GITHUB_WORKSPACE is made relative; a built-in
// policy has no file.
func annotationFile(policyFile, workspace string) string {
	if policyFile == "" || strings.HasPrefix(policyFile, "builtin:") {
		return ""
	}
	p := filepath.Clean(policyFile)
	if filepath.IsAbs(p) && workspace != "" {
		rel, err := filepath.Rel(filepath.Clean(workspace), p)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			p = rel
		}
	}
	return oneLine(filepath.ToSlash(p))
}

// oneLine keeps annotation properties on one line; the library escapes
// newlines, but a title is shown as one line anyway.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// PublishError reports a gate that could not run (an infrastructure or
// usage error, no verdict): an ::error annotation with the message and the
// outputs verdict=error and exit-code. Outside GitHub Actions it does
// nothing.
func PublishError(a *githubactions.Action, code int, cause error) error {
	if a == nil || cause == nil || !Detect(a.Getenv) {
		return nil
	}
	var errs []error
	errs = append(errs, guard("annotations", func() {
		a.WithFieldsMap(map[string]string{"title": fmt.Sprintf("tapgate: no verdict, exit %d", code)}).Errorf("%s", cause.Error())
	}))
	if a.Getenv("GITHUB_OUTPUT") != "" {
		errs = append(errs, guard("output verdict", func() { a.SetOutput("verdict", "error") }))
		errs = append(errs, guard("output exit-code", func() { a.SetOutput("exit-code", strconv.Itoa(code)) }))
	}
	return errors.Join(errs...)
}
