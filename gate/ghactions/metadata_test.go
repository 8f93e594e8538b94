package ghactions

import (
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository root, from this package's directory.
const root = "../.."

// TestActionMetadata checks action.yml against what the code reads and
// writes, and against GitHub's rules for Docker container actions.
func TestActionMetadata(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Name        string `yaml:"name"`
		Description string `yaml:"description"`
		Author      string `yaml:"author"`
		Branding    struct {
			Icon  string `yaml:"icon"`
			Color string `yaml:"color"`
		} `yaml:"branding"`
		Inputs map[string]struct {
			Description string  `yaml:"description"`
			Required    bool    `yaml:"required"`
			Default     *string `yaml:"default"`
		} `yaml:"inputs"`
		Outputs map[string]struct {
			Description string `yaml:"description"`
		} `yaml:"outputs"`
		Runs struct {
			Using string   `yaml:"using"`
			Image string   `yaml:"image"`
			Args  []string `yaml:"args"`
		} `yaml:"runs"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&meta); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if meta.Name == "" || meta.Description == "" {
		t.Error("action.yml: name and description are required")
	}
	// The Marketplace's colour list; the icon must be a Feather icon name.
	colors := []string{"white", "black", "yellow", "blue", "green", "orange", "red", "purple", "gray-dark"}
	if meta.Branding.Icon == "" || !slices.Contains(colors, meta.Branding.Color) {
		t.Errorf("action.yml: branding %+v", meta.Branding)
	}
	if meta.Runs.Using != "docker" || meta.Runs.Image != "Dockerfile" {
		t.Errorf("action.yml: runs %+v, want a docker action built from the Dockerfile", meta.Runs)
	}
	if len(meta.Runs.Args) == 0 || meta.Runs.Args[0] != "action" {
		t.Errorf("action.yml: runs.args %q, want the action subcommand first", meta.Runs.Args)
	}
	var inputs, outputs []string
	for k, in := range meta.Inputs {
		inputs = append(inputs, k)
		if in.Description == "" {
			t.Errorf("input %s has no description", k)
		}
		if in.Required && in.Default != nil && *in.Default != "" {
			t.Errorf("input %s is required and has a default", k)
		}
	}
	for k, out := range meta.Outputs {
		outputs = append(outputs, k)
		if out.Description == "" {
			t.Errorf("output %s has no description", k)
		}
	}
	sort.Strings(inputs)
	sort.Strings(outputs)
	wantIn := slices.Sorted(slices.Values(actionInputs))
	wantOut := slices.Sorted(slices.Values(actionOutputs))
	if !slices.Equal(inputs, wantIn) {
		t.Errorf("action.yml inputs %q, RunAction reads %q", inputs, wantIn)
	}
	if !slices.Equal(outputs, wantOut) {
		t.Errorf("action.yml outputs %q, Publish writes %q", outputs, wantOut)
	}
	if d := meta.Inputs["report-dir"].Default; d == nil || *d != DefaultReportDir {
		t.Errorf("report-dir default %v, want %q", d, DefaultReportDir)
	}
	// GitHub evaluates ${{ }} in some metadata fields; none belong here.
	if strings.Contains(string(b), "${{") {
		t.Error("action.yml contains an expression")
	}
}

// buildLine finds a `go build` command and returns its flags without the
// output path, its ldflags with variables made uniform, and its package.
func buildLine(t *testing.T, file, text string) (flags []string, ldflags, pkg string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^.*CGO_ENABLED=0 .*build (.*)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s: no `CGO_ENABLED=0 ... go build` line", file)
	}
	rest := m[1]
	lm := regexp.MustCompile(`-ldflags "([^"]*)"`).FindStringSubmatch(rest)
	if lm == nil {
		t.Fatalf("%s: go build has no -ldflags \"...\"", file)
	}
	ldflags = lm[1]
	rest = strings.Replace(rest, lm[0], "", 1)
	words := strings.Fields(rest)
	for i := 0; i < len(words); i++ {
		switch {
		case words[i] == "-o":
			i++
		case strings.HasPrefix(words[i], "-"):
			flags = append(flags, words[i])
		default:
			pkg = words[i]
		}
	}
	return flags, ldflags, pkg
}

var makeVar = regexp.MustCompile(`\$[({]([A-Z_]+)[)}]`)

// TestDockerfileMatchesMakefile: the image is built like `make build`.
func TestDockerfileMatchesMakefile(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	mkFlags, mkLD, mkPkg := buildLine(t, "Makefile", string(mk))
	if mkLD == "$(LDFLAGS)" {
		m := regexp.MustCompile(`(?m)^LDFLAGS\s*:?=\s*(.*)$`).FindStringSubmatch(string(mk))
		if m == nil {
			t.Fatal("Makefile: no LDFLAGS")
		}
		mkLD = strings.TrimSpace(m[1])
	}
	dfFlags, dfLD, dfPkg := buildLine(t, "Dockerfile", string(df))
	norm := func(s string) string { return makeVar.ReplaceAllString(s, "$$$1") }
	if norm(mkLD) != norm(dfLD) {
		t.Errorf("ldflags differ:\n Makefile   %s\n Dockerfile %s", mkLD, dfLD)
	}
	if !slices.Equal(mkFlags, dfFlags) || mkPkg != dfPkg {
		t.Errorf("go build differs:\n Makefile   %q %s\n Dockerfile %q %s", mkFlags, mkPkg, dfFlags, dfPkg)
	}
	for _, want := range []string{"FROM gcr.io/distroless/static-debian12", `ENTRYPOINT ["/usr/local/bin/tapgate"]`} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(gomod)
	if goVer == nil || !strings.Contains(string(df), "ARG GO_VERSION="+string(goVer[1])+"\n") {
		t.Errorf("Dockerfile's GO_VERSION is not go.mod's go %s", goVer[1])
	}
}

// dockerExcluded reports whether a .dockerignore pattern (the subset used:
// plain paths, globs, a leading **/) excludes rel. Excluding a directory
// excludes everything in it.
func dockerExcluded(pattern, rel string) bool {
	comps := strings.Split(rel, "/")
	anyDepth := strings.HasPrefix(pattern, "**/")
	p := strings.TrimPrefix(pattern, "**/")
	for n := 1; n <= len(comps); n++ {
		// A leading **/ lets the pattern start at any directory.
		first := 0
		if anyDepth {
			first = n - 1
		}
		for i := 0; i <= first; i++ {
			if ok, _ := path.Match(p, strings.Join(comps[i:n], "/")); ok {
				return true
			}
		}
	}
	return false
}

// TestDockerignore: every file `go build ./cmd/tapgate` reads (Go files and
// embedded files of the module's packages) is in the build context.
func TestDockerignore(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if strings.HasPrefix(l, "!") {
				t.Fatalf(".dockerignore: exceptions (%s) are not handled by this test", l)
			}
			patterns = append(patterns, l)
		}
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,GoFiles,EmbedFiles,Module", "./cmd/tapgate")
	cmd.Dir = absRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			Dir        string
			GoFiles    []string
			EmbedFiles []string
			Module     *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != "github.com/tapgate/tapgate" {
			continue
		}
		rel, err := filepath.Rel(absRoot, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(files) < 10 {
		t.Fatalf("only %d files found; go list output not understood", len(files))
	}
	for _, f := range files {
		for _, p := range patterns {
			if dockerExcluded(p, f) {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", p, f)
			}
		}
	}
	// The matcher itself must be able to fail.
	for _, tc := range []struct {
		p, f string
		want bool
	}{
		{"examples", "examples/policies/checkout.yaml", true},
		{"**/testdata", "gate/report/testdata/x.golden", true},
		{"**/*_test.go", "gate/report/junit_test.go", true},
		{"*.md", "gate/README.md", false},
		{"bin", "gate/bin.go", false},
	} {
		if got := dockerExcluded(tc.p, tc.f); got != tc.want {
			t.Errorf("dockerExcluded(%q, %q) = %v", tc.p, tc.f, got)
		}
	}
}
