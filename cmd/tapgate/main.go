// Command tapgate gates a release on the traffic Linkerd's tap shows.
// This package is thin: flags become a plain config, one file per command,
// and exit codes are mapped in exit.go only.
package main

import (
	"io"
	"os"
	"strings"

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
		Commands:       commands(),
	}
	return exitCode(app.Run(interspersed(args, app.Commands)), stderr)
}

func commands() []*cli.Command {
	return []*cli.Command{
		runCommand(),
		demoCommand(),
		simCommand(),
		recordCommand(),
		actionCommand(),
		validateCommand(),
		policiesCommand(),
		versionCommand(),
	}
}

// interspersed moves a command's positional arguments after its flags, so
// that `tapgate run deploy/web -n prod --window 30s` works as kubectl users
// type it (urfave/cli stops parsing flags at the first positional).
func interspersed(args []string, cmds []*cli.Command) []string {
	if len(args) < 3 {
		return args
	}
	var cmd *cli.Command
	for _, c := range cmds {
		if c.HasName(args[1]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	boolean := map[string]bool{"h": true, "help": true}
	for _, f := range cmd.Flags {
		if _, ok := f.(*cli.BoolFlag); ok {
			for _, n := range f.Names() {
				boolean[n] = true
			}
		}
	}
	flags := []string{}
	var pos []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			pos = append(pos, rest[i+1:]...)
			i = len(rest)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && !boolean[name] && i+1 < len(rest) {
				i++
				flags = append(flags, rest[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	out := append([]string{args[0], args[1]}, flags...)
	if len(pos) > 0 {
		out = append(append(out, "--"), pos...)
	}
	return out
}
