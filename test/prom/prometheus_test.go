package prom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvPrometheus names the Prometheus binary; without it, prometheus on PATH.
const EnvPrometheus = "TAPGATE_PROMETHEUS"

// findPrometheus locates the binary; when it is missing the test skips,
// except under CI, where the tier must never skip silently.
func findPrometheus(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(EnvPrometheus); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", EnvPrometheus, p, err)
		}
		return p
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	why := fmt.Sprintf("no prometheus binary (set %s, or apt-get install prometheus)", EnvPrometheus)
	if v := strings.ToLower(strings.TrimSpace(os.Getenv("CI"))); v != "" && v != "false" && v != "0" {
		t.Fatalf("%s: CI is set, so this is a failure, not a skip", why)
	}
	t.Skipf("%s; skipping (set CI=true to make this a failure)", why)
	return ""
}

// prometheus is a running Prometheus server.
type prometheus struct {
	URL  string
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

// startPrometheus runs bin with a fresh storage directory, scraping target
// (host:port) every second, and waits until it is ready.
func startPrometheus(t *testing.T, bin, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: linkerd-proxy
  honor_labels: true
  static_configs:
  - targets: [%q]
`, target)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := launch(bin, cfg, filepath.Join(dir, fmt.Sprintf("data%d", attempt)))
		if err == nil {
			t.Cleanup(p.stop)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("prometheus log:\n%s", p.log.String())
				}
			})
			return p
		}
		last = err
	}
	t.Fatalf("starting prometheus: %v", last)
	return nil
}

func launch(bin, cfg, data string) (*prometheus, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &prometheus{URL: "http://" + addr, log: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second) // slow CI machines; not a threshold
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("prometheus exited: %s\n%s", p.cmd.ProcessState, p.log.String())
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
	}
	p.stop()
	return nil, errors.New("prometheus not ready after 60s:\n" + p.log.String())
}

// stop ends the server (SIGTERM, then SIGKILL after 10 s).
func (p *prometheus) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitFor polls Prometheus until query returns a non-empty result.
func (p *prometheus) waitFor(ctx context.Context, query string) error {
	for {
		resp, err := http.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(query))
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if strings.Contains(b.String(), `"value"`) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", query, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
