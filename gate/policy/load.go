package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/policies"
)

// BuiltinPrefix selects a policy from the embedded library: builtin:NAME.
const BuiltinPrefix = "builtin:"

// Load reads and parses a policy file.
func Load(path string) (*gate.Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(path, data)
}

// LoadRef loads a policy named on the command line: a file path,
// builtin:NAME, or a bare builtin name when no file of that name exists. It
// also returns the document as read, for --print-policy.
func LoadRef(ref string) (*gate.Policy, []byte, error) {
	if ref == "" {
		return nil, nil, errors.New("no policy given: pass a file path or builtin:NAME (builtins: " + strings.Join(policies.Names(), ", ") + ")")
	}
	if name, ok := strings.CutPrefix(ref, BuiltinPrefix); ok {
		return loadBuiltin(name)
	}
	if ref == "-" {
		return nil, nil, errors.New("reading a policy from standard input is not supported: pass a file path or builtin:NAME")
	}
	data, err := os.ReadFile(ref)
	if err == nil {
		p, err := Parse(ref, data)
		return p, data, err
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, ok := policies.Get(ref); ok {
			return loadBuiltin(ref)
		}
		return nil, nil, fmt.Errorf("policy %q: no such file, and no builtin policy of that name (builtins: %s)", ref, strings.Join(policies.Names(), ", "))
	}
	return nil, nil, fmt.Errorf("read policy: %w", err)
}

func loadBuiltin(name string) (*gate.Policy, []byte, error) {
	data, ok := policies.Get(name)
	if !ok {
		return nil, nil, fmt.Errorf("no builtin policy %q: choose one of %s", name, strings.Join(policies.Names(), ", "))
	}
	p, err := Parse(BuiltinPrefix+strings.TrimSuffix(name, ".yaml"), data)
	return p, data, err
}

// ErrResourceSet is returned (wrapped) by WithResource when every target of
// the policy already names its resource.
var ErrResourceSet = errors.New("every target of the policy already names its resource")

// WithResource sets the resource of every target that names none, as given
// on the command line ("deploy/checkout"), in namespace (which may be empty:
// the kubeconfig's default). A target's destination without a namespace of
// its own follows the target's namespace.
func WithResource(p *gate.Policy, ref string, namespace string) error {
	r, err := ParseResource(ref)
	if err != nil {
		return err
	}
	if namespace != "" {
		if err := checkNamespace(namespace); err != nil {
			return err
		}
	}
	n := 0
	for i := range p.Targets {
		t := &p.Targets[i]
		if !t.Resource.IsZero() {
			continue
		}
		nr := r
		if nr.Type != "namespace" {
			ns := t.Resource.Namespace
			switch {
			case ns == "":
				ns = namespace
			case namespace != "" && namespace != ns:
				return fmt.Errorf("target %q of policy %q is in namespace %q, not %q: drop the namespace flag or the policy's namespace", t.Name, p.Name, ns, namespace)
			}
			nr.Namespace = ns
		}
		t.Resource = nr
		if !t.To.IsZero() && t.To.Namespace == "" {
			t.To.Namespace = nr.Namespace
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("policy %q: %w, so %s cannot be applied: remove resource from the policy's target or omit it on the command line", p.Name, ErrResourceSet, ref)
	}
	return nil
}
