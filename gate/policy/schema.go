package policy

import (
	"encoding/json"
	"fmt"

	"github.com/invopop/jsonschema"
)

//go:generate go run ./cmd/genschema -o ../../schema/gatepolicy.schema.json

// SchemaVersion is the JSON Schema dialect of Schema: draft-07, the one
// editors' YAML language servers understand.
const SchemaVersion = "http://json-schema.org/draft-07/schema#"

// Schema returns the JSON Schema of a GatePolicy document, generated from
// the Document types the parser itself decodes into. The schema checks
// shape (keys, types, patterns, ranges); cross-references such as a rule's
// target name are checked by Parse only.
func Schema() ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		// Inline everything: no $defs (a 2020-12 keyword) and a tree that
		// draft-07 validators read as is.
		DoNotReference: true,
		ExpandedStruct: true,
		Anonymous:      true,
	}
	s := r.Reflect(&Document{})
	s.Version = SchemaVersion
	s.Title = "tapgate GatePolicy"
	s.Description = "A tapgate traffic gate policy (" + APIVersion + ")."
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal schema: %w", err)
	}
	return append(out, '\n'), nil
}
