package policy

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Limits that keep hostile input (deep nesting, alias bombs) cheap: a real
// policy is a few hundred nodes deep at most.
const (
	maxDepth = 64
	maxNodes = 200_000
)

// decoder walks a yaml.Node tree into the Document types strictly: every
// unknown key, duplicate key and type mismatch is recorded with its
// position, and decoding goes on so that all problems are reported at once.
type decoder struct {
	file  string
	errs  []*Error
	pos   map[string]*yaml.Node // document path -> node, for later checks
	keys  map[string]*yaml.Node // document path -> its key node
	bad   map[string]bool       // paths whose value could not be decoded
	nodes int
	over  bool
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}, bad: map[string]bool{}}
}

// errAt records a problem found while decoding the value at node n; checks
// on that value are skipped afterwards (see errPath).
func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) {
	d.add(n, path, fmt.Sprintf(format, args...))
	d.bad[path] = true
}

func (d *decoder) add(n *yaml.Node, path, msg string) {
	e := &Error{File: d.file, Path: path, Msg: msg}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	if e.Line == 0 {
		e.Line, e.Column = 1, 1
	}
	d.errs = append(d.errs, e)
}

// errPath records a problem at the node of path, or, when that key is
// absent (a missing required field), at its closest present parent.
//
// A value that could not be decoded has already been reported; checks on it
// or on anything inside it are skipped, so that one mistake gives one error
// ("5 minutes" is not also reported as "window is required").
func (d *decoder) errPath(path, format string, args ...any) {
	for p := path; p != ""; p = parentPath(p) {
		if d.bad[p] {
			return
		}
	}
	d.add(d.nodeOf(path), path, fmt.Sprintf(format, args...))
}

func (d *decoder) nodeOf(path string) *yaml.Node {
	if n, ok := d.pos[path]; ok {
		return n
	}
	// A missing key is reported at the key of the mapping that lacks it
	// ("spec:"), or at a list item ("- name: ...") when the mapping is one.
	for p := parentPath(path); ; p = parentPath(p) {
		if k, ok := d.keys[p]; ok {
			return k
		}
		if n, ok := d.pos[p]; ok {
			return n
		}
		if p == "" {
			return nil
		}
	}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if d.over {
		return
	}
	d.nodes++
	if d.nodes > maxNodes || depth > maxDepth {
		d.over = true
		d.errAt(n, path, "document is too large or too deeply nested (or its aliases expand too far): a policy needs at most a few hundred nodes")
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.errAt(n, path, "unresolved alias *%s", n.Value)
			return
		}
		d.decode(n.Alias, v, path, depth+1)
		return
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = n
	}
	// A null value is the same as an absent key (Kubernetes does the same);
	// required fields are then reported missing by the checks in build.go.
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, depth)
		return
	}
	if s, ok := v.Addr().Interface().(scalar); ok {
		if n.Kind != yaml.ScalarNode {
			d.errAt(n, path, "expected a single value, got %s", describe(n))
			return
		}
		if msg := s.decodeScalar(n); msg != "" {
			d.errAt(n, path, "%s", msg)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errAt(n, path, "expected a list, got %s: write each item on its own line starting with \"- \", or [a, b]", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			if r := item; r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null" || r.Kind == yaml.AliasNode && r.Alias != nil && r.Alias.ShortTag() == "!!null" {
				// Unlike a key, a list item cannot be absent.
				d.errAt(item, ip, "list item is empty: give it a value or remove it")
				continue
			}
			d.decode(item, s.Index(i), ip, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		d.decodeStringMap(n, v, path, depth)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.errAt(n, path, "expected a string, got %s%s", describe(n), quoteHint(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errAt(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errAt(n, path, "expected a whole number, got %s%s", describe(n), unquoteHint(n))
			return
		}
		if err := n.Decode(&i); err != nil {
			d.errAt(n, path, "%s is out of range: use a smaller whole number", n.Value)
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.errAt(n, path, "expected a number, got %s%s", describe(n), unquoteHint(n))
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.errAt(n, path, "expected a finite number, got %s", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if a Document field of a new kind is added
		// without teaching the decoder about it.
		d.errAt(n, path, "internal error: cannot decode into %s", v.Type())
	}
}

// quoteHint suggests quoting when a scalar was resolved as another type.
func quoteHint(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf(": quote it (%s)", strconv.Quote(n.Value))
	}
	return ""
}

// unquoteHint suggests dropping the quotes from a quoted number.
func unquoteHint(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if _, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64); err == nil {
			return ": remove the quotes"
		}
	}
	return ""
}

// field is one key of a document struct.
type field struct {
	name  string
	index int
}

func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fs = append(fs, field{name: name, index: i})
	}
	return fs
}

// mappingKeys iterates a mapping's key/value pairs, reporting keys that are
// not plain strings and duplicates; fn gets each usable pair.
func (d *decoder) mappingKeys(n *yaml.Node, path string, fn func(key string, k, val *yaml.Node)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			if k.ShortTag() == "!!merge" {
				d.errAt(k, path, "merge keys (<<) are not supported: write the keys out")
			} else {
				d.errAt(k, path, "keys must be plain names, got %s", describe(k))
			}
			continue
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			// Not errAt: the first value is still checked.
			d.add(k, joinKey(path, key), fmt.Sprintf("duplicate key %q (first set on line %d): remove one of them", key, first.Line))
			continue
		}
		seen[key] = k
		d.keys[joinKey(path, key)] = k
		fn(key, k, val)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errAt(n, path, "expected a mapping of keys (%s), got %s", keyList(fieldsOf(v.Type())), describe(n))
		return
	}
	fs := fieldsOf(v.Type())
	d.mappingKeys(n, path, func(key string, k, val *yaml.Node) {
		for _, f := range fs {
			if f.name == key {
				d.decode(val, v.Field(f.index), joinKey(path, key), depth+1)
				return
			}
		}
		if h, ok := v.Addr().Interface().(keyHinter); ok {
			if msg := h.unknownKeyHint(key); msg != "" {
				// The hint says what to write instead; that the
				// replacement is missing is not a second problem.
				d.errAt(k, joinKey(path, key), "%s", msg)
				d.bad[path] = true
				return
			}
		}
		msg := fmt.Sprintf("unknown key %q", key)
		if s := suggest(key, fs); s != "" {
			msg += fmt.Sprintf(": did you mean %q?", s)
		} else {
			msg += fmt.Sprintf(": valid keys here are %s", keyList(fs))
		}
		d.errAt(k, joinKey(path, key), "%s", msg)
	})
}

func (d *decoder) decodeStringMap(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errAt(n, path, "expected a mapping of names to strings, got %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	d.mappingKeys(n, path, func(key string, k, val *yaml.Node) {
		p := joinKey(path, key)
		if val.Kind == yaml.AliasNode && val.Alias != nil {
			val = val.Alias
		}
		d.pos[p] = val
		if val.Kind != yaml.ScalarNode || val.ShortTag() != "!!str" {
			d.errAt(val, p, "expected a string value, got %s%s", describe(val), quoteHint(val))
			return
		}
		m.SetMapIndex(reflect.ValueOf(key), reflect.ValueOf(val.Value))
	})
	v.Set(m)
}

func keyList(fs []field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// suggest returns the valid key closest to a misspelt one, if close enough.
func suggest(key string, fs []field) string {
	best, bestD := "", 3
	for _, f := range fs {
		if strings.EqualFold(f.name, key) {
			return f.name
		}
		if dd := levenshtein(strings.ToLower(key), strings.ToLower(f.name)); dd < bestD {
			best, bestD = f.name, dd
		}
	}
	return best
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortedKeys is a helper for deterministic iteration over small maps.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
