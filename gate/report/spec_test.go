package report

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapgate/tapgate/gate"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{in: "json=out/report.json", want: Spec{"json", "out/report.json"}},
		{in: "JSON=r.json", want: Spec{"json", "r.json"}},
		{in: "text=-", want: Spec{"text", "-"}},
		{in: "text=a=b.txt", want: Spec{"text", "a=b.txt"}},
		{in: "json", wantErr: "want FORMAT=PATH"},
		{in: "out.json", wantErr: "accepted formats: json, junit, markdown, text"},
		{in: "xml=out.xml", wantErr: `unknown format "xml"; accepted formats: json, junit, markdown, text`},
		{in: "json=", wantErr: "empty path"},
		{in: "=x", wantErr: `unknown format ""`},
	} {
		got, err := ParseSpec(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSpec(%q) error = %v, want it to contain %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestByName(t *testing.T) {
	for _, n := range []string{"text", "json", "JSON", " text "} {
		if _, ok := ByName(n); !ok {
			t.Errorf("ByName(%q) not found", n)
		}
	}
	if _, ok := ByName("xml"); ok {
		t.Error("ByName(xml) found a format that does not exist")
	}
	if got := strings.Join(Formats(), ","); got != "json,junit,markdown,text" {
		t.Errorf("Formats() = %s", got)
	}
}

func TestCheckSpecs(t *testing.T) {
	dir := t.TempDir()
	err := CheckSpecs([]Spec{{"json", "a/r.json"}, {"text", "a/./r.json"}, {"text", "-"}, {"json", "-"}, {"xml", "x"}, {"json", dir}})
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	for _, want := range []string{"write the same file", `unknown format "xml"`, dir + " is a directory"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Count(msg, "\n") != 2 {
		t.Errorf("want exactly three problems (two stdout specs are fine), got %q", msg)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	v, meta := failDryRun()
	jsonPath := filepath.Join(dir, "nested", "deeper", "report.json")
	textPath := filepath.Join(dir, "report.txt")
	// An older report at the same path is replaced.
	if err := os.WriteFile(textPath, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	err := Write(&stdout, []Spec{{"json", jsonPath}, {"text", textPath}, {"text", Stdout}}, v, meta)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	_ = Text(&want, v, meta)
	if !bytes.Equal(stdout.Bytes(), want.Bytes()) {
		t.Error("stdout report differs from Text")
	}
	for path, rep := range map[string]Reporter{jsonPath: JSON, textPath: Text} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var w bytes.Buffer
		_ = rep(&w, v, meta)
		if !bytes.Equal(got, w.Bytes()) {
			t.Errorf("%s: content differs from the reporter's output", path)
		}
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", path, fi.Mode().Perm())
		}
	}
	assertNoTemp(t, dir)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.Contains(fi.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// TestWriteFailures: a failing reporter or an unwritable path leaves the
// previous report untouched and no temporary file, and the other specs are
// still written.
func TestWriteFailures(t *testing.T) {
	dir := t.TempDir()
	v, meta := passTwoTargets()
	old := filepath.Join(dir, "keep.txt")
	if err := os.WriteFile(old, []byte("previous report"), 0o644); err != nil {
		t.Fatal(err)
	}
	reporters["broken"] = func(w io.Writer, _ *gate.Verdict, _ Meta) error {
		_, _ = w.Write([]byte("half a rep"))
		return errors.New("boom")
	}
	defer delete(reporters, "broken")

	asDir := filepath.Join(dir, "isadir")
	if err := os.Mkdir(asDir, 0o755); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.json")
	err := Write(io.Discard, []Spec{{"broken", old}, {"json", asDir}, {"xml", "x.xml"}, {"text", ""}, {"json", good}}, v, meta)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"report broken=" + old + ": boom", "is a directory", `unknown format "xml"`, "report text=: empty path"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if b, _ := os.ReadFile(old); string(b) != "previous report" {
		t.Errorf("previous report overwritten with %q", b)
	}
	if _, err := os.Stat(good); err != nil {
		t.Errorf("the good spec was not written: %v", err)
	}
	assertNoTemp(t, dir)
}

// TestWriteStdoutError: a failing stdout is reported.
func TestWriteStdoutError(t *testing.T) {
	v, meta := passTwoTargets()
	if err := Write(failWriter{}, []Spec{{"text", Stdout}}, v, meta); err == nil {
		t.Error("want the write error")
	}
	if err := Text(failWriter{}, v, meta); err == nil {
		t.Error("Text: want the write error")
	}
	if err := JSON(failWriter{}, v, meta); err == nil {
		t.Error("JSON: want the write error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
