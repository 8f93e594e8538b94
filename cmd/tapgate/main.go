// Command tapgate gates a release on the traffic Linkerd's tap shows.
// This package is thin: flags become a plain config, one file per command,
// and exit codes are mapped in exit.go only.
package main

import (
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// Set by -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	os.Exit(Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// Main runs tapgate with the given arguments and streams and returns the
// exit code; tests call it directly.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &cli.App{
		Name:            "tapgate",
		Usage:           "gate a release on the live traffic Linkerd's tap shows",
		Version:         versionString(),
		Reader:          stdin,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		// Errors are printed once, by exitCode, with their code.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			runCommand(),
			validateCommand(),
			policiesCommand(),
			versionCommand(),
		},
	}
	return exitCode(app.Run(args), stderr)
}
