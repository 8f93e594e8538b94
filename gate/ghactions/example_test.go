package ghactions_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/ghactions"
	"github.com/tapgate/tapgate/gate/report"
)

// The `tapgate action` subcommand: inputs to a run configuration, the gate,
// then the GitHub side. Cleanup must run before the process exits (os.Exit
// skips deferred calls).
func ExampleRunAction() {
	env := map[string]string{
		"INPUT_POLICY":          ".github/tapgate/gate.yaml",
		"INPUT_NAMESPACE":       "shop",
		"INPUT_ON-INCONCLUSIVE": "fail",
		"INPUT_ARGS":            `-l 'app=checkout,track in (canary)'`,
	}
	getenv := func(k string) string { return env[k] }

	cfg, err := ghactions.RunAction(context.Background(), getenv, os.Stdout, "")
	if err != nil {
		fmt.Println("usage error (exit 2):", err)
		return
	}
	defer cfg.Cleanup()
	fmt.Printf("%q\n", cfg.RunArgs())

	// ... run the gate with cfg, writing cfg.Reports(), giving v and meta ...
	v := &gate.Verdict{Policy: "checkout", Outcome: gate.Pass, Final: true}
	meta := report.Meta{PolicyFile: cfg.Policy, ExitCode: gate.ExitPass}

	// Outside GitHub Actions (no GITHUB_ACTIONS=true) this writes nothing.
	if err := ghactions.Publish(ghactions.New(os.Stdout, getenv), v, meta, cfg.JSONReport()); err != nil {
		fmt.Println("github:", err)
	}
	// Then, as in every run: report.WriteTerminationMessage(
	// report.TerminationLog, v, meta.ExitCode), a no-op outside a pod.
	// Output:
	// ["run" "--policy" ".github/tapgate/gate.yaml" "--namespace" "shop" "--on-inconclusive" "fail" "--report" "json=tapgate-reports/tapgate-report.json" "--report" "junit=tapgate-reports/tapgate-junit.xml" "--report" "markdown=tapgate-reports/tapgate-report.md" "-l" "app=checkout,track in (canary)"]
}
