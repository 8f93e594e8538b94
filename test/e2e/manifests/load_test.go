package manifests_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// examplesRoot is examples/ as seen from this package's directory, where
// go test runs it.
const examplesRoot = "../../../examples"

// notManifests are the subdirectories of examples/ whose YAML is not
// Kubernetes objects: GitHub workflows, gate policies, simulator scenarios
// and recordings.
var notManifests = []string{"github", "policies", "scenarios", "recordings"}

// document is one YAML document of a manifest file.
type document struct {
	file  string // from the repository root, e.g. examples/kubernetes/job.yaml
	index int    // 1-based, counted as the offline tests count
	obj   *unstructured.Unstructured
}

func (d document) String() string {
	return fmt.Sprintf("%s document %d (%s %s)", d.file, d.index, d.obj.GetKind(), objectName(d.obj))
}

// name is the subtest name: file and document index.
func (d document) name() string { return fmt.Sprintf("%s#%d", path.Base(d.file), d.index) }

func objectName(o *unstructured.Unstructured) string {
	if o.GetName() == "" && o.GetGenerateName() != "" {
		return o.GetGenerateName() + "*"
	}
	return o.GetName()
}

// loadExamples returns the Kubernetes documents under examples/, by
// directory ("examples/kubernetes", ...), in file and document order.
func loadExamples(t *testing.T) map[string][]document {
	t.Helper()
	sets := map[string][]document{}
	err := filepath.WalkDir(examplesRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(examplesRoot, p)
		if err != nil {
			return err
		}
		if e.IsDir() {
			if slices.Contains(notManifests, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		file := path.Join("examples", filepath.ToSlash(rel))
		docs, err := loadFile(p, file, true)
		if err != nil {
			return err
		}
		for _, d := range docs {
			// A gate policy kept next to the manifests is not one.
			if strings.HasPrefix(d.obj.GetAPIVersion(), "tapgate.dev/") {
				t.Logf("%s: a tapgate policy, not a Kubernetes object; skipped", d)
				continue
			}
			dir := path.Dir(file)
			sets[dir] = append(sets[dir], d)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("loading the examples: %v", err)
	}
	// Guard against a vacuous pass (moved files, a broken walk): the
	// examples this tier exists for must be among the documents.
	var kinds []string
	for _, docs := range sets {
		for _, d := range docs {
			kinds = append(kinds, d.obj.GetKind())
		}
	}
	for _, k := range []string{"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Job", "AnalysisTemplate", "Rollout"} {
		if !slices.Contains(kinds, k) {
			t.Fatalf("no %s among the example manifests (found %v)", k, kinds)
		}
	}
	return sets
}

// loadFile splits a YAML file into its documents, skipping those that are
// only comments. file names it in messages. With strict, a document with a
// duplicate mapping key is an error: converting it to JSON for the API would
// silently keep one of the values.
func loadFile(p, file string, strict bool) ([]document, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var docs []document
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if onlyComments(raw) {
			continue
		}
		if strict {
			var v any
			if err := yaml.Unmarshal(raw, &v); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
			}
		}
		js, err := utilyaml.ToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: document %d is not a Kubernetes object: %w", file, i, err)
		}
		if obj.GetAPIVersion() == "" || obj.GetKind() == "" {
			return nil, fmt.Errorf("%s: document %d has no apiVersion or kind", file, i)
		}
		docs = append(docs, document{file: file, index: i, obj: obj})
	}
}

func onlyComments(doc []byte) bool {
	for l := range bytes.SplitSeq(doc, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' && !bytes.Equal(l, []byte("---")) {
			return false
		}
	}
	return true
}

// ofKind returns the documents of kind among sets, failing if there is none.
func ofKind(t *testing.T, sets map[string][]document, kind string) []document {
	t.Helper()
	var out []document
	for _, docs := range sets {
		for _, d := range docs {
			if d.obj.GetKind() == kind {
				out = append(out, d)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s among the examples", kind)
	}
	slices.SortFunc(out, func(a, b document) int { return strings.Compare(a.name(), b.name()) })
	return out
}
