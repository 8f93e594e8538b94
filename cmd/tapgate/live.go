package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/ghactions"
	"github.com/tapgate/tapgate/gate/replay"
	"github.com/tapgate/tapgate/gate/report"
	"github.com/tapgate/tapgate/gate/tap/kube"
)

// liveConfig holds the flags of a live tap.
type liveConfig struct {
	Kubeconfig     string
	Context        string
	Record         string
	RecordSecrets  bool
	TerminationLog string
	Quiet          bool
	TapURL         string
}

func liveFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)"},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: the current context)"},
		&cli.StringFlag{Name: "record", Usage: "also write the tapped events to FILE in linkerd viz tap -o json shape, with arrival times and secrets redacted (.gz compresses)"},
		&cli.BoolFlag{Name: "record-secrets-unredacted", Usage: "DANGEROUS: write secret header values (authorization, cookie, ...) into the recording as tapped"},
		&cli.StringFlag{Name: "termination-log", Value: report.TerminationLog, Usage: "write a one-line verdict here when the file exists (Kubernetes shows it in kubectl get pod)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr while tapping"},
		&cli.StringFlag{Name: "tap-url", Usage: "tap this URL's tap.linkerd.io API directly instead of the kubeconfig's apiserver, without pod pre-checks: kubectl proxy (http://127.0.0.1:8001) or tapgate sim"},
	}
}

func liveConfigFrom(c *cli.Context) liveConfig {
	return liveConfig{
		Kubeconfig:     c.String("kubeconfig"),
		Context:        c.String("context"),
		Record:         c.String("record"),
		RecordSecrets:  c.Bool("record-secrets-unredacted"),
		TerminationLog: c.String("termination-log"),
		Quiet:          c.Bool("quiet"),
		TapURL:         c.String("tap-url"),
	}
}

// keepalive makes client-go detect a dead apiserver connection within 15s
// instead of 45s: a tap stream has no heartbeat, so without HTTP/2 pings a
// dead connection looks like an idle workload. Must run before the first
// client is built (client-go caches transports); explicit settings win.
func keepalive() {
	for k, v := range map[string]string{"HTTP2_READ_IDLE_TIMEOUT_SECONDS": "10", "HTTP2_PING_TIMEOUT_SECONDS": "5"} {
		if _, ok := os.LookupEnv(k); !ok {
			_ = os.Setenv(k, v)
		}
	}
}

// kubeSource builds the live tap through the Kubernetes API; the
// rest.Config is the one it taps with, for the cross-check.
func kubeSource(cfg *runConfig, p *gate.Policy) (gate.Source, string, *rest.Config, error) {
	keepalive()
	// Request headers are decoded only to be recorded.
	opts := kube.Options{RequestHeaders: cfg.Live.Record != ""}
	for _, t := range p.Targets {
		if t.Resource.Name == "" && t.Resource.Type != "namespace" {
			return nil, "", nil, usageErr(fmt.Errorf("target %q names no resource: a live tap needs one; give TYPE/NAME on the command line (tapgate run --policy %s deploy/web) or resource: in the policy", t.Name, cfg.PolicyRef))
		}
	}
	if u := cfg.Live.TapURL; u != "" {
		if cfg.Live.Kubeconfig != "" || cfg.Live.Context != "" {
			return nil, "", nil, usageErr(errors.New("--tap-url replaces the kubeconfig: drop --kubeconfig and --context"))
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, "", nil, usageErr(fmt.Errorf("--tap-url %q: give an http:// or https:// URL, e.g. http://127.0.0.1:8001 from kubectl proxy", u))
		}
		ns := cfg.AdHoc.Namespace
		if ns == "" {
			ns = "default"
		}
		rc := &rest.Config{Host: u}
		src, err := kube.NewSource(rc, nil, p.Targets, ns, opts)
		if err != nil {
			return nil, "", nil, usageErr(err)
		}
		return src, "live tap via " + u, rc, nil
	}
	rc, ns, err := kube.LoadConfig(kube.ClientOptions{
		Kubeconfig: cfg.Live.Kubeconfig,
		Context:    cfg.Live.Context,
		Namespace:  cfg.AdHoc.Namespace,
	})
	if err != nil {
		return nil, "", nil, infraErr(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, "", nil, infraErr(fmt.Errorf("kubernetes client: %w", err))
	}
	src, err := kube.NewSource(rc, cs, p.Targets, ns, opts)
	if err != nil {
		var ke *kube.Error
		if errors.As(err, &ke) && ke.Kind == kube.BadTarget {
			return nil, "", nil, usageErr(err)
		}
		return nil, "", nil, infraErr(err)
	}
	return src, "live tap via " + rc.Host, rc, nil
}

// recorder writes the events a live gate sees; errors are kept for the end
// so that a full disk does not stop the gate mid-window.
type recorder struct {
	path string
	f    *os.File
	gz   *gzip.Writer
	bw   *bufio.Writer
	w    *replay.Writer
	err  error
}

func openRecorder(lc liveConfig, p *gate.Policy) (*recorder, error) {
	if lc.Record == "" {
		return nil, nil
	}
	f, err := os.OpenFile(lc.Record, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--record: %w", err)
	}
	r := &recorder{path: lc.Record, f: f}
	var out io.Writer = f
	if strings.HasSuffix(lc.Record, ".gz") {
		r.gz = gzip.NewWriter(f)
		out = r.gz
	}
	r.bw = bufio.NewWriterSize(out, 256<<10)
	red := gate.NewRedactor(p.RedactHeaders...)
	red.Disabled = lc.RecordSecrets
	r.w = replay.NewWriter(r.bw, red)
	return r, nil
}

func (r *recorder) write(ev *gate.Event, at time.Time) {
	if r == nil || r.err != nil {
		return
	}
	r.err = r.w.Write(ev, at)
}

func (r *recorder) close() error {
	if r == nil {
		return nil
	}
	err := r.err
	if ferr := r.bw.Flush(); err == nil {
		err = ferr
	}
	if r.gz != nil {
		if gerr := r.gz.Close(); err == nil {
			err = gerr
		}
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("recording %s: %w", r.path, err)
	}
	return nil
}

// jsonReportPath is the JSON report file the user asked for, if any.
func jsonReportPath(specs []report.Spec) string {
	for _, s := range specs {
		if s.Format == "json" {
			return s.Path
		}
	}
	return ""
}

// publishGitHub writes the step summary, annotations and outputs when the
// process runs as a GitHub Actions step; elsewhere it does nothing.
func publishGitHub(cfg *runConfig, v *gate.Verdict, meta report.Meta, stdout, stderr io.Writer) {
	if !ghactions.Detect(os.Getenv) {
		return
	}
	a := ghactions.New(stdout, os.Getenv)
	if err := ghactions.Publish(a, v, meta, jsonReportPath(cfg.Reports)); err != nil {
		fmt.Fprintf(stderr, "tapgate: %v\n", err)
	}
}

// publishFailure tells CI an infrastructure failure happened: the exit-code
// output and an error annotation in GitHub Actions, and the termination
// message in Kubernetes.
func publishFailure(cfg *runConfig, code int, err error, stdout io.Writer) {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if path := cfg.Live.TerminationLog; path != "" {
		if f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0); ferr == nil {
			fmt.Fprintf(f, "ERROR exit %d: %s\n", code, msg)
			f.Close()
		}
	}
	if !ghactions.Detect(os.Getenv) {
		return
	}
	_ = ghactions.PublishError(ghactions.New(stdout, os.Getenv), code, err)
}
