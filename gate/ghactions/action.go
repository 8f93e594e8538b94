package ghactions

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/report"
)

// DefaultReportDir is where the action writes its reports when the
// report-dir input is empty: relative to the workspace, so a later
// actions/upload-artifact step finds them.
const DefaultReportDir = "tapgate-reports"

// Report file names inside the report directory.
const (
	JSONReportName     = "tapgate-report.json"
	JUnitReportName    = "tapgate-junit.xml"
	MarkdownReportName = "tapgate-report.md"
)

// actionInputs are the inputs RunAction reads and actionOutputs the outputs
// Publish writes; action.yml declares exactly these (TestActionMetadata).
var (
	actionInputs  = []string{"policy", "kubeconfig", "context", "namespace", "window", "on-inconclusive", "report-dir", "args"}
	actionOutputs = []string{"verdict", "exit-code", "report"}
)

// ActionConfig is what the action's inputs (INPUT_* variables) become: a
// plain configuration for the run command.
type ActionConfig struct {
	// Policy is a policy file (relative to the workspace) or a built-in
	// policy name ("builtin:http-golden-signals").
	Policy string
	// Kubeconfig is the path of a 0600 temporary file holding the
	// kubeconfig input; empty when the input was empty (the run then falls
	// back to KUBECONFIG or in-cluster configuration).
	Kubeconfig string
	// Cleanup removes the temporary kubeconfig. It is never nil, is safe to
	// call more than once, and must be called (deferred) by the caller.
	Cleanup func() error
	// Context and Namespace override the kubeconfig's current context and
	// the targets' namespace; empty keeps them.
	Context   string
	Namespace string
	// Window overrides the policy's window; 0 keeps it.
	Window time.Duration
	// OnInconclusive is "", "pass", "fail" or "inconclusive".
	OnInconclusive string
	// ReportDir receives the JSON, JUnit and Markdown reports.
	ReportDir string
	// Args are the extra flags of the args input, split like a shell would
	// (quotes and backslashes; no variables, globs or substitutions).
	Args []string
}

// JSONReport is the path of the JSON report, the action's report output.
func (c *ActionConfig) JSONReport() string { return filepath.Join(c.ReportDir, JSONReportName) }

// Reports are the report files the action writes.
func (c *ActionConfig) Reports() []report.Spec {
	return []report.Spec{
		{Format: "json", Path: c.JSONReport()},
		{Format: "junit", Path: filepath.Join(c.ReportDir, JUnitReportName)},
		{Format: "markdown", Path: filepath.Join(c.ReportDir, MarkdownReportName)},
	}
}

// RunArgs is the command line of `tapgate run` equivalent to the inputs,
// for a caller that re-enters its own CLI. It assumes the run command's
// kubectl-style --kubeconfig and --context flags.
func (c *ActionConfig) RunArgs() []string {
	args := []string{"run", "--policy", c.Policy}
	if c.Kubeconfig != "" {
		args = append(args, "--kubeconfig", c.Kubeconfig)
	}
	if c.Context != "" {
		args = append(args, "--context", c.Context)
	}
	if c.Namespace != "" {
		args = append(args, "--namespace", c.Namespace)
	}
	if c.Window > 0 {
		args = append(args, "--window", c.Window.String())
	}
	if c.OnInconclusive != "" {
		args = append(args, "--on-inconclusive", c.OnInconclusive)
	}
	for _, s := range c.Reports() {
		args = append(args, "--report", s.String())
	}
	return append(args, c.Args...)
}

// RunAction reads the action's inputs from getenv (GitHub passes input
// "on-inconclusive" as INPUT_ON-INCONCLUSIVE) and validates them, listing
// every problem at once. When the kubeconfig input is set, its content
// (plain, or base64 as secrets often hold it) is written to a 0600 file in
// tempDir (os.TempDir() when empty; in a container action that is the
// container's own /tmp, so the secret never lands in the shared workspace),
// and the credentials inside it are masked with ::add-mask:: on stdout
// before anything else could print them. The kubeconfig content itself is
// never printed. The caller must call Cleanup.
func RunAction(ctx context.Context, getenv func(string) string, stdout io.Writer, tempDir string) (*ActionConfig, error) {
	cfg := &ActionConfig{Cleanup: func() error { return nil }}
	if err := ctx.Err(); err != nil {
		return cfg, err
	}
	in := func(name string) string {
		key := "INPUT_" + strings.ToUpper(strings.ReplaceAll(name, " ", "_"))
		v := getenv(key)
		if v == "" {
			// docker run -e cannot always carry a hyphen; accept
			// INPUT_ON_INCONCLUSIVE too.
			v = getenv(strings.ReplaceAll(key, "-", "_"))
		}
		return strings.TrimSpace(v)
	}
	var errs []error

	cfg.Policy = in("policy")
	if cfg.Policy == "" {
		errs = append(errs, errors.New("input policy is required: a policy file in the repository (policy: .github/tapgate/gate.yaml) or a built-in policy (policy: builtin:http-golden-signals)"))
	}
	cfg.Context = in("context")
	cfg.Namespace = in("namespace")
	if w := in("window"); w != "" {
		d, err := time.ParseDuration(w)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("input window %q: not a duration; use e.g. 60s or 2m", w))
		case d <= 0:
			errs = append(errs, fmt.Errorf("input window %q: must be positive", w))
		default:
			cfg.Window = d
		}
	}
	if o := strings.ToLower(in("on-inconclusive")); o != "" {
		if _, ok := gate.ParseOutcome(o); !ok {
			errs = append(errs, fmt.Errorf("input on-inconclusive %q: use fail, pass or inconclusive", o))
		} else {
			cfg.OnInconclusive = o
		}
	}
	cfg.ReportDir = in("report-dir")
	if cfg.ReportDir == "" {
		cfg.ReportDir = DefaultReportDir
	}
	args, err := SplitArgs(getenv("INPUT_ARGS"))
	if err != nil {
		errs = append(errs, fmt.Errorf("input args: %w", err))
	}
	cfg.Args = args

	// The kubeconfig last: nothing is written when another input is wrong.
	if len(errs) == 0 {
		if raw := getenv("INPUT_KUBECONFIG"); strings.TrimSpace(raw) != "" {
			path, cleanup, err := writeKubeconfig(raw, stdout, tempDir)
			if err != nil {
				errs = append(errs, err)
			} else {
				cfg.Kubeconfig, cfg.Cleanup = path, cleanup
			}
		}
	}
	return cfg, errors.Join(errs...)
}

// secretKey matches the kubeconfig fields that hold credentials, in YAML
// ("token: abc") or JSON ("token": "abc") form.
var secretKey = regexp.MustCompile(`(?m)["']?\b(token|id-token|refresh-token|access-token|client-key-data|client-certificate-data|password|client-secret|secret)["']?\s*:\s*["']?([^"'\s,}]+)`)

// minMask is the shortest value worth masking: masking "a" or "true" would
// blank common words out of the whole log.
const minMask = 6

func writeKubeconfig(raw string, stdout io.Writer, tempDir string) (path string, cleanup func() error, err error) {
	content := []byte(raw)
	if !looksLikeKubeconfig(content) {
		dec, derr := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(raw), ""))
		if derr != nil || !looksLikeKubeconfig(dec) {
			// Never echo the value: it may be a secret in the wrong shape.
			return "", nil, errors.New("input kubeconfig: not a kubeconfig (no clusters: or contexts: key) and not base64 of one; pass the file's content, e.g. kubeconfig: ${{ secrets.KUBECONFIG }}, not a path")
		}
		content = dec
	}
	// Mask first: the runner masks the secret as a whole, but not the
	// token or key inside it, which client-go or a user's --v flag could print.
	for _, m := range secretKey.FindAllSubmatch(content, -1) {
		if v := string(m[2]); len(v) >= minMask {
			if _, err := fmt.Fprintf(stdout, "::add-mask::%s\n", escapeData(v)); err != nil {
				return "", nil, fmt.Errorf("input kubeconfig: mask credentials: %w", err)
			}
		}
	}
	if tempDir == "" {
		tempDir = os.TempDir()
	}
	f, err := os.CreateTemp(tempDir, "tapgate-kubeconfig-*")
	if err != nil {
		return "", nil, fmt.Errorf("input kubeconfig: create temporary file: %w", err)
	}
	path = f.Name()
	cleanup = removeOnce(path)
	// CreateTemp already makes the file 0600; Chmod makes it explicit and
	// survives an unusual umask.
	if err = f.Chmod(0o600); err == nil {
		_, err = f.Write(content)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = cleanup()
		return "", nil, fmt.Errorf("input kubeconfig: write %s: %w", path, err)
	}
	return path, cleanup, nil
}

func looksLikeKubeconfig(b []byte) bool {
	return bytes.Contains(b, []byte("clusters")) || bytes.Contains(b, []byte("contexts"))
}

func removeOnce(path string) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			if e := os.Remove(path); e != nil && !errors.Is(e, fs.ErrNotExist) {
				err = fmt.Errorf("remove temporary kubeconfig: %w", e)
			}
		})
		return err
	}
}

// SplitArgs splits s into words the way a POSIX shell does for a plain
// command line: whitespace separates words, single quotes keep everything
// literally, double quotes keep everything but a backslash before \ " $ `,
// a backslash outside quotes escapes the next character. Nothing is
// expanded: no variables, globs or command substitution.
func SplitArgs(s string) ([]string, error) {
	var (
		args    []string
		cur     strings.Builder
		inWord  bool
		quote   rune // 0, '\'' or '"'
		quoteAt int
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune(`\"$`+"`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, quoteAt, inWord = r, i, true
		case r == '\\':
			inWord = true
			if i+1 < len(rs) {
				i++
				if rs[i] != '\n' { // backslash-newline continues the line
					cur.WriteRune(rs[i])
				}
			}
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			inWord = true
			cur.WriteRune(r)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote starting at character %d of %q", quote, quoteAt+1, s)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// escapeData escapes a workflow command's message as the Actions toolkit
// does, so a value with % or a line break is masked whole.
func escapeData(s string) string {
	s = strings.ReplaceAll(s, "%", "%25")
	s = strings.ReplaceAll(s, "\r", "%0D")
	return strings.ReplaceAll(s, "\n", "%0A")
}
