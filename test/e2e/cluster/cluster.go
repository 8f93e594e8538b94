// Package cluster runs a real kube-apiserver and etcd on loopback for
// tapgate's end-to-end tests, so that tapgate talks to Linkerd's tap API the
// way it does in production: through the Kubernetes aggregation layer
// (APIService v1alpha1.tap.linkerd.io), with real authentication, RBAC
// and error bodies.
//
// No controller-manager, scheduler or kubelet runs: workloads are written
// directly (see CreateWorkload) and nothing reconciles them. Namespaces
// therefore never finish deleting; tests should use fresh namespace names.
//
// Binaries are found through TAPGATE_KUBE_APISERVER / TAPGATE_ETCD, the cache
// filled by hack/e2e-build-apiserver.sh, or PATH. When they are missing the
// test is skipped, except when CI is set: CI must never skip silently.
package cluster

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// KubeVersion is the kube-apiserver version the harness is pinned to (see
// tools/kube-apiserver/go.mod and hack/e2e-build-apiserver.sh).
const KubeVersion = "v1.37.2"

// Environment variables read by the harness.
const (
	EnvAPIServer = "TAPGATE_KUBE_APISERVER" // path of the kube-apiserver binary
	EnvEtcd      = "TAPGATE_ETCD"           // path of the etcd binary
	EnvCache     = "TAPGATE_CACHE"          // cache dir of hack/e2e-build-apiserver.sh
	EnvCI        = "CI"                     // set (and not false/0): missing binaries fail instead of skip
)

// Users known to the apiserver's token file. Any other name given to
// UserConfig gets a token the apiserver does not know (401 Unauthorized).
const (
	// UserAdmin is in group system:masters: it may do anything.
	UserAdmin = "admin"
	// UserTapper is authenticated but has no rights until a test grants some
	// (see GrantTap).
	UserTapper = "tapper"
	// UserNobody is authenticated and never granted anything.
	UserNobody = "nobody"
)

// startupTimeout bounds how long etcd and the apiserver may take to become
// ready. Generous because CI machines are slow; it is not a test threshold.
const startupTimeout = 90 * time.Second

// Cluster is a running etcd + kube-apiserver pair. All methods are safe for
// concurrent use.
type Cluster struct {
	dir       string // temp dir holding data, certs and logs; removed on stop
	host      string // https://127.0.0.1:port
	servingCA []byte
	proxyCA   []byte
	tokens    map[string]string

	etcd, apiserver *process

	stopOnce sync.Once

	ipMu   sync.Mutex // guards nextIP and nsSeq
	nextIP int        // last pod IP handed out, as an offset from 127.0.0.0
	nsSeq  int        // last NewNamespace suffix
}

// Start starts a dedicated cluster for t and stops it when t ends. Prefer
// Shared: starting a cluster takes seconds.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, skip, err := start()
	if skip != "" {
		skipOrFail(t, skip)
	}
	if err != nil {
		t.Fatalf("e2e cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-apiserver log tail:\n%s", c.APIServerLogTail(60))
		}
		c.stop()
	})
	return c
}

// shared is the process-wide cluster behind Shared and Main.
var shared struct {
	mu     sync.Mutex
	inMain bool
	done   bool // start was attempted
	c      *Cluster
	skip   string
	err    error
}

// Main runs the package's tests and stops the cluster Shared started, if any.
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(cluster.Main(m)) }
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		shared.c.stop()
		shared.c = nil
	}
	return code
}

// Shared returns the cluster shared by every test of the package, starting it
// on first use. The package must run its tests through Main, which stops it.
// A failed start fails (or skips) every test that asks for it, with the same
// message.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("cluster.Shared needs the package's TestMain to call os.Exit(cluster.Main(m)), which stops the cluster; otherwise use cluster.Start")
	}
	if !shared.done {
		shared.done = true
		shared.c, shared.skip, shared.err = start()
	}
	if shared.skip != "" {
		skipOrFail(t, shared.skip)
	}
	if shared.err != nil {
		t.Fatalf("e2e cluster: %v", shared.err)
	}
	c := shared.c
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-apiserver log tail (shared cluster, may include other tests):\n%s", c.APIServerLogTail(40))
		}
	})
	return c
}

func ciSet() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(EnvCI)))
	return v != "" && v != "false" && v != "0"
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if ciSet() {
		t.Fatalf("e2e cluster: %s (CI is set, so this is a failure, not a skip)", why)
	}
	t.Skipf("e2e cluster: %s; skipping (set CI=true to make this a failure)", why)
}

// binaries locates kube-apiserver and etcd. A non-empty skip means they are
// simply not installed; err means the configuration points somewhere wrong.
func binaries() (apiserver, etcd, skip string, err error) {
	var missing []string
	apiserver, miss, err := findBinary(EnvAPIServer, "kube-apiserver", apiserverCachePath())
	if err != nil {
		return "", "", "", err
	}
	if miss {
		missing = append(missing, fmt.Sprintf("kube-apiserver %s (run `bash hack/e2e-build-apiserver.sh` and set %s to the path it prints)", KubeVersion, EnvAPIServer))
	}
	etcd, miss, err = findBinary(EnvEtcd, "etcd", "/usr/bin/etcd")
	if err != nil {
		return "", "", "", err
	}
	if miss {
		missing = append(missing, fmt.Sprintf("etcd (`apt-get install etcd-server`, or set %s)", EnvEtcd))
	}
	if len(missing) > 0 {
		return "", "", "missing " + strings.Join(missing, " and "), nil
	}
	return apiserver, etcd, "", nil
}

func apiserverCachePath() string {
	cache := os.Getenv(EnvCache)
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache", "tapgate")
	}
	return filepath.Join(cache, "bin", "kube-apiserver-"+KubeVersion)
}

// findBinary prefers the environment variable (which must then be right),
// then fallback, then PATH.
func findBinary(env, name, fallback string) (path string, missing bool, err error) {
	if p := os.Getenv(env); p != "" {
		if err := executable(p); err != nil {
			return "", false, fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return p, false, nil
	}
	if fallback != "" && executable(fallback) == nil {
		return fallback, false, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, false, nil
	}
	return "", true, nil
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// start brings up etcd and the apiserver. On error everything started so far
// is stopped again.
func start() (c *Cluster, skip string, err error) {
	apiserverBin, etcdBin, skip, err := binaries()
	if skip != "" || err != nil {
		return nil, skip, err
	}
	dir, err := os.MkdirTemp("", "tapgate-e2e-")
	if err != nil {
		return nil, "", err
	}
	// cl, not the named result: the error returns below set c to nil
	// before this deferred cleanup runs.
	cl := &Cluster{dir: dir, tokens: map[string]string{}, nextIP: 1}
	defer func() {
		if err != nil {
			if cl.apiserver != nil {
				err = fmt.Errorf("%w\nkube-apiserver log tail:\n%s", err, cl.APIServerLogTail(60))
			}
			cl.stop()
			c = nil
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), startupTimeout)
	defer cancel()

	etcdURL, err := cl.startEtcd(ctx, etcdBin)
	if err != nil {
		return nil, "", err
	}
	if err := cl.startAPIServer(ctx, apiserverBin, etcdURL); err != nil {
		return nil, "", err
	}
	return cl, "", nil
}

func (c *Cluster) startEtcd(ctx context.Context, bin string) (string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.etcd, err = startProcess(bin, filepath.Join(c.dir, "etcd.log"),
		"--name=e2e",
		"--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=e2e="+peer,
		"--initial-cluster-state=new",
		"--log-level=warn",
	)
	if err != nil {
		return "", fmt.Errorf("starting etcd: %w", err)
	}
	err = c.etcd.waitReady(ctx, http.DefaultClient, client+"/health", func(body []byte) bool {
		return bytes.Contains(body, []byte(`"health":"true"`))
	})
	if err != nil {
		return "", fmt.Errorf("etcd (%s) did not become healthy: %w\netcd log tail:\n%s", bin, err, tail(c.etcd.logPath, 30))
	}
	return client, nil
}

// writeFile writes a file into the cluster's directory, private to the user.
func (c *Cluster) writeFile(name string, data []byte) (string, error) {
	p := filepath.Join(c.dir, name)
	return p, os.WriteFile(p, data, 0o600)
}

func (c *Cluster) startAPIServer(ctx context.Context, bin, etcdURL string) error {
	servingCA, err := newAuthority("tapgate-e2e-serving-ca")
	if err != nil {
		return err
	}
	serving, err := servingCA.issue("kube-apiserver", []string{
		"127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.0.0.1",
	}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	proxyCA, err := newAuthority("tapgate-e2e-front-proxy-ca")
	if err != nil {
		return err
	}
	proxyClient, err := proxyCA.issue(proxyClientName, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	saKey, err := serviceAccountKey()
	if err != nil {
		return err
	}
	c.servingCA, c.proxyCA = servingCA.pem, proxyCA.pem

	// Token file lines: token,user,uid,"group1,group2".
	var tokens strings.Builder
	for _, u := range []struct{ name, groups string }{
		{UserAdmin, "system:masters"},
		{UserTapper, ""},
		{UserNobody, ""},
	} {
		tok, err := randomToken()
		if err != nil {
			return err
		}
		c.tokens[u.name] = tok
		fmt.Fprintf(&tokens, "%s,%s,uid-%s,%q\n", tok, u.name, u.name, u.groups)
	}

	files := map[string][]byte{
		"serving.crt":      serving.certPEM,
		"serving.key":      serving.keyPEM,
		"front-proxy-ca":   proxyCA.pem,
		"proxy-client.crt": proxyClient.certPEM,
		"proxy-client.key": proxyClient.keyPEM,
		"sa.key":           saKey,
		"tokens.csv":       []byte(tokens.String()),
	}
	paths := map[string]string{}
	for name, data := range files {
		if paths[name], err = c.writeFile(name, data); err != nil {
			return err
		}
	}

	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	c.host = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	c.apiserver, err = startProcess(bin, filepath.Join(c.dir, "kube-apiserver.log"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[0]),
		"--cert-dir="+filepath.Join(c.dir, "certs"),
		"--tls-cert-file="+paths["serving.crt"],
		"--tls-private-key-file="+paths["serving.key"],
		"--token-auth-file="+paths["tokens.csv"],
		"--authorization-mode=RBAC",
		"--anonymous-auth=false",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+paths["sa.key"],
		"--service-account-signing-key-file="+paths["sa.key"],
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		// Nothing creates the default service accounts (no controller-manager).
		"--disable-admission-plugins=ServiceAccount",
		// Aggregation: the apiserver authenticates to the tap backend with the
		// proxy client certificate and passes the user in these headers.
		"--requestheader-client-ca-file="+paths["front-proxy-ca"],
		"--requestheader-allowed-names="+proxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+paths["proxy-client.crt"],
		"--proxy-client-key-file="+paths["proxy-client.key"],
		// The default: resolve APIService services by their spec (an
		// ExternalName service points at the loopback backend).
		"--enable-aggregator-routing=false",
		"--profiling=false",
	)
	if err != nil {
		return fmt.Errorf("starting kube-apiserver: %w", err)
	}
	hc, err := rest.HTTPClientFor(c.AdminConfig())
	if err != nil {
		return err
	}
	err = c.apiserver.waitReady(ctx, hc, c.host+"/readyz", func(body []byte) bool {
		return strings.TrimSpace(string(body)) == "ok"
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver (%s) did not become ready at %s/readyz: %w", bin, c.host, err)
	}
	return nil
}

// stop terminates the apiserver, then etcd, and removes the temp dir.
func (c *Cluster) stop() {
	c.stopOnce.Do(func() {
		if c.apiserver != nil {
			c.apiserver.stop()
		}
		if c.etcd != nil {
			c.etcd.stop()
		}
		_ = os.RemoveAll(c.dir)
	})
}

// Host is the apiserver's URL, e.g. https://127.0.0.1:43127.
func (c *Cluster) Host() string { return c.host }

// ServingCA is the PEM CA that signed the apiserver's serving certificate.
func (c *Cluster) ServingCA() []byte { return bytes.Clone(c.servingCA) }

// ProxyClientCA is the PEM CA that signed the client certificate the
// apiserver presents to aggregated API backends (the requestheader client
// CA). A backend verifies it before trusting X-Remote-User / X-Remote-Group.
func (c *Cluster) ProxyClientCA() []byte { return bytes.Clone(c.proxyCA) }

// Token returns the bearer token of one of the token-file users, or "" for
// an unknown user.
func (c *Cluster) Token(user string) string { return c.tokens[user] }

// AdminConfig is a client config for UserAdmin (system:masters).
func (c *Cluster) AdminConfig() *rest.Config { return c.UserConfig(UserAdmin) }

// UserConfig is a client config authenticating as user with a bearer token.
// Users other than UserAdmin, UserTapper and UserNobody get a token the
// apiserver rejects with 401, which lets tests exercise bad credentials.
func (c *Cluster) UserConfig(user string) *rest.Config {
	tok, ok := c.tokens[user]
	if !ok {
		tok = "unknown-token-for-" + user
	}
	return &rest.Config{
		Host:            c.host,
		BearerToken:     tok,
		TLSClientConfig: rest.TLSClientConfig{CAData: bytes.Clone(c.servingCA)},
		// The client-side limiter would only slow fixtures down.
		QPS:   1000,
		Burst: 1000,
	}
}

// Clientset is a typed client for user.
func (c *Cluster) Clientset(t testing.TB, user string) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.UserConfig(user))
	if err != nil {
		t.Fatalf("e2e cluster: client for %s: %v", user, err)
	}
	return cs
}

// APIServerLogTail returns the last n lines of the apiserver's output.
func (c *Cluster) APIServerLogTail(n int) string {
	if c.apiserver == nil {
		return ""
	}
	return tail(c.apiserver.logPath, n)
}

// freePorts reserves n distinct loopback ports by listening on port 0 and
// releasing them. Another process could grab one in between; on this
// single-user test machine that is rare enough, and the failure is loud.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserving a loopback port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// process is a child process whose output goes to a log file.
type process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

func startProcess(bin, logPath string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// waitReady polls url until ok accepts a 200 body, the process dies, or ctx
// ends. The last probe error is part of the returned error.
func (p *process) waitReady(ctx context.Context, hc *http.Client, url string, ok func([]byte) bool) error {
	var last error
	for {
		if dead, err := p.exited(); dead {
			return fmt.Errorf("process exited early: %w", err)
		}
		last = probe(ctx, hc, url, ok)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last probe: %w", ctx.Err(), last)
		case <-p.done:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func probe(ctx context.Context, hc *http.Client, url string, ok func([]byte) bool) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || !ok(body) {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// stop asks the process to terminate and kills it if it has not after a
// grace period.
func (p *process) stop() {
	if dead, _ := p.exited(); dead {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the last n lines of a file (or why it cannot).
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
