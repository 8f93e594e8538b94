// Command genschema writes the JSON Schema of tapgate's policy documents
// (schema/gatepolicy.schema.json), generated from the Go types the policy
// loader decodes into.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tapgate/tapgate/gate/policy"
)

func main() {
	out := flag.String("o", "schema/gatepolicy.schema.json", "output file (- for standard output)")
	flag.Parse()
	data, err := policy.Schema()
	if err != nil {
		fmt.Fprintln(os.Stderr, "genschema:", err)
		os.Exit(1)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(data)
	} else {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genschema:", err)
		os.Exit(1)
	}
}
