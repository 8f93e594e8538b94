// Package policies is tapgate's library of ready, documented gate policies,
// embedded in the binary. Each one leaves its target's resource open so that
// it can be used with any workload:
//
//	tapgate run --policy builtin:strict-canary deploy/checkout
package policies

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Names lists the builtin policies, sorted, without the .yaml suffix.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Get returns the YAML of the builtin policy called name ("strict-canary"
// or "strict-canary.yaml").
func Get(name string) ([]byte, bool) {
	name = strings.TrimSuffix(name, ".yaml")
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nil, false
	}
	data, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, false
	}
	return data, true
}
