package prom

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

const proxyPath = "/api/v1/namespaces/linkerd-viz/services/http:prometheus:9090/proxy"

func status(code int, reason, msg string) string {
	return `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":` + quote(msg) + `,"reason":"` + reason + `","code":` + strconv.Itoa(code) + `}`
}

func answer(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// TestErrors maps each way of failing, through the apiserver's service
// proxy (a fake apiserver path, reached with a rest.Config's transport) and
// at a URL, to its kind and remediation.
func TestErrors(t *testing.T) {
	forbidden := `services "http:prometheus:9090" is forbidden: User "ci" cannot get resource "services/proxy" in API group "" in the namespace "linkerd-viz"`
	cases := []struct {
		name   string
		kube   bool
		answer http.HandlerFunc
		kind   ErrorKind
		status int
		want   []string
	}{
		{"viz not installed", true, answer(404, status(404, "NotFound", `services "prometheus" not found`)), NotFound, 404,
			[]string{"Prometheus not found: the apiserver has no service linkerd-viz/prometheus:9090", `services "prometheus" not found`, "is linkerd-viz installed? check with: linkerd viz check", "--prometheus-url"}},
		{"RBAC", true, answer(403, status(403, "Forbidden", forbidden)), Forbidden, 403,
			[]string{"RBAC denied reading Prometheus through the apiserver's service proxy", forbidden,
				"tapgate needs get on services/proxy in namespace linkerd-viz",
				"check: kubectl auth can-i get services/http:prometheus:9090 --subresource=proxy -n linkerd-viz",
				"kind: Role", "namespace: linkerd-viz", `resources: ["services/proxy"]`, `resourceNames: ["http:prometheus:9090"]`, `verbs: ["get"]`}},
		{"no ready pod", true, answer(503, status(503, "ServiceUnavailable", `no endpoints available for service "prometheus"`)), Unavailable, 503,
			[]string{"Prometheus (service linkerd-viz/prometheus:9090) is unavailable", "no endpoints available", "kubectl -n linkerd-viz get pods -l component=prometheus", "linkerd viz check"}},
		{"bad gateway", true, answer(502, "error trying to reach service: dial tcp 10.0.0.1:9090: connect: connection refused"), Unavailable, 502,
			[]string{"error trying to reach service"}},
		{"credentials", true, answer(401, status(401, "Unauthorized", "Unauthorized")), Unauthorized, 401,
			[]string{"the apiserver rejected the credentials", "kubectl auth whoami"}},
		{"bad query", true, answer(400, `{"status":"error","errorType":"bad_data","error":"1:15: parse error: unexpected \"}\""}`), QueryFailed, 400,
			[]string{"Prometheus refused the query: bad_data: 1:15: parse error", "query: vector(1)"}},
		{"execution error", false, answer(422, `{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}`), QueryFailed, 422,
			[]string{"execution: query processing would load too many samples"}},
		{"storage error", false, answer(500, `{"status":"error","errorType":"internal","error":"expanding series: storage error: no space left"}`), QueryFailed, 500,
			[]string{"internal: expanding series: storage error: no space left"}},
		{"Prometheus starting", false, answer(503, `{"status":"error","errorType":"unavailable","error":"TSDB not ready"}`), Unavailable, 503,
			[]string{"Prometheus is not ready: TSDB not ready", "/-/ready"}},
		{"error in a 200", false, answer(200, `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`), QueryFailed, 0,
			[]string{"timeout: query timed out"}},
		{"not the API", false, answer(200, "<html>login</html>"), BadResponse, 0,
			[]string{"is not Prometheus' HTTP API", "query: vector(1)"}},
		{"wrong URL", false, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "404 page not found", 404) }, NotFound, 404,
			[]string{"no Prometheus HTTP API at http://127.0.0.1:", "404 page not found", "/api/v1/query"}},
		{"refused at a URL", false, answer(403, "denied"), Forbidden, 403,
			[]string{"refused access: denied"}},
		{"teapot", false, answer(418, "short and stout"), BadResponse, 418,
			[]string{"unexpected answer from http://127.0.0.1:", "short and stout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := ""
			if tc.kube {
				prefix = proxyPath
			}
			f, srv := newFakeProm(t, prefix)
			f.fail = tc.answer
			cfg := Config{URL: srv.URL}
			if tc.kube {
				cfg = Config{Kube: &rest.Config{Host: srv.URL, BearerToken: "t0ken"}}
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Check(context.Background())
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Check = %v (%T), want an *Error", err, err)
			}
			if pe.Kind != tc.kind || pe.Status != tc.status {
				t.Errorf("kind %s status %d, want %s %d: %v", pe.Kind, pe.Status, tc.kind, tc.status, err)
			}
			contains(t, "error", err.Error(), tc.want...)
			if n := len(f.sent()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
			if tc.kube && f.header.Get("Authorization") != "Bearer t0ken" {
				t.Errorf("Authorization %q: the rest.Config's transport was not used", f.header.Get("Authorization"))
			}
		})
	}
}

// TestErrorsThroughCounts: Counts returns the same errors, with the query.
func TestErrorsThroughCounts(t *testing.T) {
	f, srv := newFakeProm(t, proxyPath)
	f.fail = answer(403, status(403, "Forbidden", "forbidden"))
	c, _ := New(Config{Kube: &rest.Config{Host: srv.URL}})
	now := time.Now()
	_, err := c.Counts(context.Background(), checkout, now.Add(-time.Minute), now)
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != Forbidden {
		t.Fatalf("Counts = %v, want Forbidden", err)
	}
	f.fail = answer(400, `{"status":"error","errorType":"bad_data","error":"bad"}`)
	_, err = c.Counts(context.Background(), checkout, now.Add(-time.Minute), now)
	if !errors.As(err, &pe) || pe.Kind != QueryFailed || !strings.HasPrefix(pe.Query, `response_total{direction="inbound"`) {
		t.Fatalf("Counts = %v, want QueryFailed with the query", err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, cfg := range []Config{{URL: "http://" + addr}, {Kube: &rest.Config{Host: "http://" + addr}}} {
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Check(context.Background())
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != Unreachable || pe.Status != 0 {
			t.Fatalf("Check = %v, want Unreachable", err)
		}
		contains(t, "error", err.Error(), "cannot reach", addr, "connection refused")
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	f, srv := newFakeProm(t, "")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.fail = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	c, _ := New(Config{URL: srv.URL, Timeout: 100 * time.Millisecond})
	err := c.Check(context.Background())
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != Unreachable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Check = %v, want Unreachable after the timeout", err)
	}
	contains(t, "error", err.Error(), "no answer from Prometheus at")

	c, _ = New(Config{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := c.Check(ctx); err != context.Canceled {
		t.Fatalf("Check = %v, want the context's own error", err)
	}
}

func TestNewAndCheck(t *testing.T) {
	for _, cfg := range []Config{{}, {URL: "prometheus:9090"}, {URL: "ftp://x"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
	// A custom Service and a host with a path prefix (Rancher, a proxy).
	f, srv := newFakeProm(t, "/k8s/clusters/c-1/api/v1/namespaces/monitoring/services/http:prom:9091/proxy")
	c, err := New(Config{Kube: &rest.Config{Host: srv.URL + "/k8s/clusters/c-1"}, Namespace: "monitoring", Service: "prom", Port: 9091})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.Source(); got != "Prometheus monitoring/prom:9091 through the apiserver's service proxy" {
		t.Errorf("Source = %q", got)
	}
	if len(f.methods) != 1 || f.methods[0] != http.MethodGet {
		t.Errorf("methods %v, want one GET", f.methods)
	}
	c, _ = New(Config{URL: "https://user:secret@prom.example:9090/prometheus"})
	if strings.Contains(c.Source(), "secret") {
		t.Errorf("Source %q shows the password", c.Source())
	}
}
