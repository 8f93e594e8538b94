// Package report turns a gate verdict into output: a plain-text summary for
// people and CI logs, and a versioned JSON document for machines. Each
// reporter is a function of the verdict and a writer (vegeta style), so the
// same verdict can be written to several destinations at once.
//
// Reporters are deterministic: they never read the clock or the environment.
// Everything that is not in the verdict (version, source, start time, exit
// code) comes from Meta, which keeps golden tests exact.
package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// Reporter writes one report of a verdict to w.
type Reporter func(w io.Writer, v *gate.Verdict, meta Meta) error

// Meta carries what a report needs that the verdict does not know.
type Meta struct {
	// Version is the tapgate version ("v0.3.1"); empty omits it.
	Version string
	// PolicyFile is the path the policy was loaded from; empty for ad-hoc
	// policies built from flags.
	PolicyFile string
	// Source describes where the traffic came from, e.g.
	// "replay examples/checkout.json.gz" or "live tap via https://10.0.0.1".
	// URL credentials (user:password@) are redacted before output.
	Source string
	// StartTime is when tapping began; the zero value omits it.
	StartTime time.Time
	// ExitCode is the process exit code the caller will use: gate.ExitCode
	// of the verdict, or gate.ExitInterrupted. Reporters only print it.
	ExitCode int
	// OnInconclusive is the policy's mapping of an inconclusive verdict; the
	// zero value means gate.Inconclusive (exit 3).
	OnInconclusive gate.Outcome
}

// onInconclusive returns the effective setting, defaulting the zero value.
func (m Meta) onInconclusive() gate.Outcome {
	if m.OnInconclusive == 0 {
		return gate.Inconclusive
	}
	return m.OnInconclusive
}

// reporters is the registry. Adding a format (JUnit, Markdown, GitHub) is one
// entry here plus its function.
var reporters = map[string]Reporter{
	"text":     Text,
	"json":     JSON,
	"junit":    JUnit,
	"markdown": Markdown,
}

// ByName returns the reporter for a format name ("text", "json").
func ByName(name string) (Reporter, bool) {
	r, ok := reporters[strings.ToLower(strings.TrimSpace(name))]
	return r, ok
}

// Formats lists the registered format names, sorted.
func Formats() []string {
	names := make([]string, 0, len(reporters))
	for n := range reporters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stdout is the Spec path that means standard output.
const Stdout = "-"

// Spec is one requested report: a format and where to write it.
type Spec struct {
	Format string
	Path   string // a file path, or Stdout ("-")
}

func (s Spec) String() string { return s.Format + "=" + s.Path }

// ParseSpec parses the value of --report: FORMAT=PATH, where PATH "-" means
// standard output. A bare FORMAT is not accepted, so a typo such as
// "--report out.json" is caught instead of silently writing nowhere.
func ParseSpec(s string) (Spec, error) {
	accepted := strings.Join(Formats(), ", ")
	format, path, ok := strings.Cut(s, "=")
	format = strings.ToLower(strings.TrimSpace(format))
	if !ok {
		return Spec{}, fmt.Errorf("report %q: want FORMAT=PATH, with PATH - for standard output, e.g. json=gate-report.json; accepted formats: %s", s, accepted)
	}
	if _, known := reporters[format]; !known {
		return Spec{}, fmt.Errorf("report %q: unknown format %q; accepted formats: %s", s, format, accepted)
	}
	if path == "" {
		return Spec{}, fmt.Errorf("report %q: empty path; give a file path, or - for standard output", s)
	}
	return Spec{Format: format, Path: path}, nil
}

// CheckSpecs reports specs that name an unknown format, would overwrite each
// other, or point at a directory. Callers should run it before tapping, so a bad flag does
// not cost a whole window of traffic.
func CheckSpecs(specs []Spec) error {
	var errs []error
	seen := map[string]Spec{}
	for _, s := range specs {
		if _, ok := ByName(s.Format); !ok {
			errs = append(errs, fmt.Errorf("report %s: unknown format %q; accepted formats: %s", s, s.Format, strings.Join(Formats(), ", ")))
			continue
		}
		if s.Path == "" {
			errs = append(errs, fmt.Errorf("report %s: empty path", s))
			continue
		}
		key := s.Path
		if key != Stdout {
			key = filepath.Clean(key)
		}
		if prev, dup := seen[key]; dup && key != Stdout {
			errs = append(errs, fmt.Errorf("reports %s and %s write the same file; give each its own path", prev, s))
			continue
		}
		seen[key] = s
		if key == Stdout {
			continue
		}
		if fi, err := os.Stat(s.Path); err == nil && fi.IsDir() {
			errs = append(errs, fmt.Errorf("report %s: %s is a directory; give a file path", s, s.Path))
		}
	}
	return errors.Join(errs...)
}

// WriteFiles writes every spec, with Stdout specs going to os.Stdout.
func WriteFiles(specs []Spec, v *gate.Verdict, meta Meta) error {
	return Write(os.Stdout, specs, v, meta)
}

// Write writes every spec: Stdout specs to stdout, the others to their files.
// Each file is rendered in memory, written to a temporary file in the same
// directory and renamed into place, so a reader never sees a partial report
// and an earlier report survives a failed write. Every spec is attempted,
// even after one fails: the traffic has already been tapped, and a report
// that can be written is worth writing. The errors are joined. Check specs
// with CheckSpecs before tapping.
func Write(stdout io.Writer, specs []Spec, v *gate.Verdict, meta Meta) error {
	var errs []error
	for _, s := range specs {
		rep, ok := ByName(s.Format)
		if !ok {
			errs = append(errs, fmt.Errorf("report %s: unknown format %q; accepted formats: %s", s, s.Format, strings.Join(Formats(), ", ")))
			continue
		}
		if s.Path == "" {
			errs = append(errs, fmt.Errorf("report %s: empty path", s))
			continue
		}
		var buf bytes.Buffer
		if err := rep(&buf, v, meta); err != nil {
			errs = append(errs, fmt.Errorf("report %s: %w", s, err))
			continue
		}
		if s.Path == Stdout {
			if _, err := stdout.Write(buf.Bytes()); err != nil {
				errs = append(errs, fmt.Errorf("report %s: %w", s, err))
			}
			continue
		}
		if err := writeAtomic(s.Path, buf.Bytes()); err != nil {
			errs = append(errs, fmt.Errorf("report %s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory; give a file path", path)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp makes 0600 files; reports are meant to be read by other
	// tools (CI artifact uploaders, dashboards).
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// userinfo matches the credentials part of a URL ("https://user:pw@host").
var userinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@`)

// cleanSource hides URL credentials in a source description: a kubeconfig
// server URL may embed them, and reports end up in CI logs and artifacts.
func cleanSource(s string) string {
	return userinfo.ReplaceAllString(s, "${1}"+gate.Redacted+"@")
}

// Notes returns the notes of a target worth a line in a report: the
// engine's own notes (warmup, orphans, evictions, pod cap), then the
// requests still in flight and incomplete coverage, which the engine only
// records as numbers.
func Notes(t *gate.TargetResult, v *gate.Verdict) []string {
	notes := make([]string, 0, len(t.Notes)+2)
	notes = append(notes, t.Notes...)
	notes = append(notes, crossCheckNotes(t)...)
	if t.InFlight > 0 {
		when := "when the window closed"
		switch {
		case v.StoppedEarly:
			when = "when the run stopped"
		case !v.Final:
			when = "at this point of the window"
		}
		notes = append(notes, fmt.Sprintf("%d %s still in flight %s: reported, not counted as samples", t.InFlight, plural(t.InFlight, "request"), when))
	}
	// The few milliseconds a stream takes to open are not worth a note.
	if c := coverage(t.Coverage); t.Coverage >= 0 && t.Coverage < 0.99 {
		notes = append(notes, "tapped for only "+c+" of the window")
	}
	return notes
}

func plural(n uint64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
