package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Error is one problem in a policy document, positioned at the line and
// column of the YAML node it concerns. Path names that node in the document
// ("spec.rules[2].latency.quantile"); it is empty for YAML syntax errors.
type Error struct {
	File   string
	Line   int
	Column int // 0 when only the line is known (YAML syntax errors)
	Path   string
	Msg    string
}

// Error renders "file:line:col: path: message".
func (e *Error) Error() string {
	var b strings.Builder
	file := e.File
	if file == "" {
		file = "<policy>"
	}
	b.WriteString(file)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors returns every *Error held by err (a *multierror.Error from Parse or
// a single *Error), in document order. It returns nil for other errors.
func Errors(err error) []*Error {
	var out []*Error
	var me *multierror.Error
	if errors.As(err, &me) {
		for _, e := range me.Errors {
			var pe *Error
			if errors.As(e, &pe) {
				out = append(out, pe)
			}
		}
		return out
	}
	var pe *Error
	if errors.As(err, &pe) {
		return []*Error{pe}
	}
	return nil
}

// listFormat prints one problem per line, so that every problem of an
// invalid policy is visible at once and each line is clickable in editors.
func listFormat(es []error) string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	if len(es) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d problems in policy:\n%s", len(es), strings.Join(lines, "\n"))
}

// combine sorts problems into document order and wraps them in a
// *multierror.Error; nil when there are none.
func combine(es []*Error) error {
	if len(es) == 0 {
		return nil
	}
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
	var me *multierror.Error
	for _, e := range es {
		me = multierror.Append(me, e)
	}
	me.ErrorFormat = listFormat
	return me
}
