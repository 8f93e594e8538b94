package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics, returns exactly one of a policy and an
// error, positions every error, and whatever it accepts survives a
// Marshal/Parse round trip unchanged. Seeds: every fixture and ready policy
// (plus testdata/fuzz/FuzzParse).
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml", "../../policies/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one", p, err)
		}
		if err != nil {
			es := Errors(err)
			if len(es) == 0 {
				t.Fatalf("error is not a list of *Error: %v", err)
			}
			for _, e := range es {
				if e.File != "fuzz.yaml" || e.Line < 1 || e.Msg == "" {
					t.Fatalf("unpositioned or empty error: %#v", e)
				}
			}
			return
		}
		out, err := Marshal(p)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		q, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("accepted policy does not survive Marshal: %v\n%s", err, out)
		}
		if a, b := canonical(t, p), canonical(t, q); a != b {
			t.Fatalf("round trip changed the policy:\n%s\n%s\n%s", a, b, out)
		}
	})
}
