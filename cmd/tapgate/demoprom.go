package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// demoPrometheus starts a real Prometheus scraping the demo simulator's
// /metrics (every simulated proxy's counters, as linkerd-viz's Prometheus
// would see them) every second, so the demo can show the cross-check. It
// needs a prometheus binary ($TAPGATE_PROMETHEUS, or prometheus on PATH,
// e.g. Debian's package); without one the demo runs without the
// cross-check and says how to get it. stop ends Prometheus and removes its
// files.
func demoPrometheus(ctx context.Context, simAddr string, caPEM []byte) (url string, stop func(), err error) {
	bin := os.Getenv("TAPGATE_PROMETHEUS")
	if bin == "" {
		if bin, err = exec.LookPath("prometheus"); err != nil {
			return "", nil, errors.New("no prometheus binary on PATH (apt-get install prometheus, or set TAPGATE_PROMETHEUS)")
		}
	}
	dir, err := os.MkdirTemp("", "tapgate-demo-prometheus-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	ca := filepath.Join(dir, "sim-ca.pem")
	conf := filepath.Join(dir, "prometheus.yml")
	// The job is named as linkerd-viz names its proxy job.
	yml := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: linkerd-proxy
  scheme: https
  tls_config: {ca_file: %q}
  static_configs: [{targets: [%q]}]
`, ca, simAddr)
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	if err := os.WriteFile(conf, []byte(yml), 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		cleanup()
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.CommandContext(ctx, bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=error")
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
		cleanup()
	}
	url = "http://" + addr
	// Ready is not enough: Prometheus discovers its targets a few seconds
	// after it starts, and counters first seen inside the window would read
	// as born there. Wait for the first scrape of the simulator.
	scraped := url + "/api/v1/query?query=" + neturl.QueryEscape(`up{job="linkerd-proxy"} == 1`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(scraped); err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"job":"linkerd-proxy"`) {
				return url, stop, nil
			}
		}
		select {
		case <-exited:
			cleanup()
			return "", nil, fmt.Errorf("%s exited at start", bin)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("%s did not scrape the simulator within 20s", bin)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
