// Package e2e_test runs the real tapgate binary against a real
// kube-apiserver (see test/e2e/cluster) whose tap.linkerd.io APIService is
// served by the simulator (gate/sim): tapgate resolves its targets with
// client-go, taps through the aggregation layer with RBAC in the way, and
// is judged only by what a user sees: its exit code, stdout and stderr.
//
// The tests share one apiserver and the one APIService name
// v1alpha1.tap.linkerd.io, so those that register it never run in
// parallel.
package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/test/e2e/cluster"
)

// tapgateBin is the CLI built once by TestMain.
var tapgateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tapgate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	bin, err := buildTapgate(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building tapgate:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	tapgateBin = bin
	code := cluster.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildTapgate compiles ./cmd/tapgate from the module root (found from this
// file's location) into dir. -race is passed on when the tests themselves
// run with the race detector, so the binary under test is checked too.
func buildTapgate(dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the test source")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("module root %s: %w", root, err)
	}
	bin := filepath.Join(dir, "tapgate")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/tapgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build tapgate: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return bin, nil
}
