package kube

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// recorder is a gate.Sink and gate.Noter that hands events to the test.
type recorder struct {
	mu     sync.Mutex
	events []*gate.Event
	notes  []string
	got    chan struct{} // one send per event, buffered
}

// got has room for every event a test produces: a full channel would block
// the source (TestSimulator never reads it).
func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 1<<16)} }

func (r *recorder) Observe(i int, ev *gate.Event) {
	e := *ev // the source reuses ev after Observe returns
	r.mu.Lock()
	r.events = append(r.events, &e)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) Note(i int, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf("[%d] ", i)+fmt.Sprintf(format, args...))
}

func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(30 * time.Second): // a hang guard, not a threshold
			t.Fatalf("timed out waiting for %d events", n)
		}
	}
}

func (r *recorder) notesText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.notes, "\n")
}

// tlsConfig returns a rest.Config that trusts srv's certificate, so the test
// exercises client-go's real transport (rest.HTTPClientFor).
func tlsConfig(srv *httptest.Server, prefix string) *rest.Config {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return &rest.Config{Host: srv.URL + prefix, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
}

var webTarget = gate.Target{
	Name:     "web",
	Resource: gate.ResourceRef{Type: "deploy", Name: "web", Namespace: "prod"},
}

const webPath = "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/prod/deployments/web/tap"

func frame(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := wire.AppendFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func statusJSON(code int, reason metav1.StatusReason, msg string) string {
	b, _ := json.Marshal(metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code),
	})
	return string(b)
}

func TestErrorMapping(t *testing.T) {
	forbiddenMsg := `deployments.tap.linkerd.io "web" is forbidden: User "ci" cannot watch resource "deployments/tap" in API group "tap.linkerd.io" in the namespace "prod"`
	tests := []struct {
		name    string
		target  gate.Target
		handler http.HandlerFunc
		kind    ErrorKind
		status  int
		want    []string // substrings of Error()
	}{
		{
			name: "rbac denied",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(403)
				io.WriteString(w, statusJSON(403, metav1.StatusReasonForbidden, forbiddenMsg))
			},
			kind: Forbidden, status: 403,
			want: []string{forbiddenMsg, `verb "watch" on resource "deployments/tap" in API group "tap.linkerd.io" in namespace "prod"`,
				"kubectl auth can-i watch deployments.tap.linkerd.io --subresource=tap -n prod",
				"kind: Role", "namespace: prod", `resources: ["deployments/tap"]`, `verbs: ["watch"]`},
		},
		{
			name:   "rbac denied namespace target",
			target: gate.Target{Resource: gate.ResourceRef{Type: "ns", Name: "prod"}},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(403)
				io.WriteString(w, statusJSON(403, metav1.StatusReasonForbidden, "forbidden"))
			},
			kind: Forbidden, status: 403,
			want: []string{"kind: ClusterRole", `resources: ["namespaces/tap"]`, "kubectl auth can-i watch namespaces.tap.linkerd.io/prod --subresource=tap"},
		},
		{
			name: "api service missing",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(404)
				io.WriteString(w, statusJSON(404, metav1.StatusReasonNotFound, "the server could not find the requested resource"))
			},
			kind: Unavailable, status: 404,
			want: []string{"could not find the requested resource", "is linkerd-viz installed?", "linkerd viz check"},
		},
		{
			name: "api service unavailable",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(503)
				io.WriteString(w, statusJSON(503, metav1.StatusReasonServiceUnavailable, "service unavailable"))
			},
			kind: Unavailable, status: 503,
			want: []string{"unavailable: service unavailable", "linkerd viz check"},
		},
		{
			name: "no pods to tap",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(wire.ErrorHeader, "Internal Server Error")
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(frame(t, &pb.ApiError{Error: "no pods to tap for type=deployment name=web"}))
			},
			kind: TapRefused, status: 200,
			want: []string{"no pods to tap for type=deployment name=web", "linkerd inject", "config.linkerd.io/disable-tap"},
		},
		{
			name: "linkerd-error without a readable frame",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(wire.ErrorHeader, "Bad Request")
			},
			kind: TapRefused, status: 200,
			want: []string{"refused the request: Bad Request"},
		},
		{
			name: "tap server authorization",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(403)
				io.WriteString(w, `{"error":"tap authorization failed (not authorized to access deployments.tap.linkerd.io)"}`)
			},
			kind: TapServer, status: 403,
			want: []string{"tap authorization failed", "kubectl logs -n linkerd-viz deploy/tap"},
		},
		{
			name: "unauthorized",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(401)
				io.WriteString(w, statusJSON(401, metav1.StatusReasonUnauthorized, "Unauthorized"))
			},
			kind: Unauthorized, status: 401,
			want: []string{"rejected the credentials"},
		},
		{
			name: "not a tap stream",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<html><body>login</body></html>")
			},
			kind: Protocol, status: 200,
			want: []string{"not a tap stream", "kubeconfig server address"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(tc.handler)
			defer srv.Close()
			target := tc.target
			if target.Resource.IsZero() {
				target = webTarget
			}
			src, err := NewSource(tlsConfig(srv, ""), nil, []gate.Target{target}, "default", Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
			defer cancel()
			err = src.Run(ctx, newRecorder())
			var ke *Error
			if !errors.As(err, &ke) {
				t.Fatalf("Run = %v, want *Error", err)
			}
			if ke.Kind != tc.kind || ke.Status != tc.status {
				t.Errorf("kind, status = %v, %d; want %v, %d\n%v", ke.Kind, ke.Status, tc.kind, tc.status, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func sampleEvents() []*gate.Event {
	src := netip.MustParseAddrPort("10.0.0.1:41234")
	dst := netip.MustParseAddrPort("10.0.0.2:8080")
	labels := map[string]string{"pod": "web-1", "namespace": "prod"}
	id := gate.StreamID{Base: 7, Stream: 3}
	return []*gate.Event{
		{Kind: gate.RequestInit, Direction: gate.Inbound, ID: id, Source: gate.Endpoint{Addr: src}, Destination: gate.Endpoint{Addr: dst, Labels: labels},
			Method: "GET", Scheme: "http", Authority: "web.prod:8080", Path: "/api/v1"},
		{Kind: gate.ResponseInit, Direction: gate.Inbound, ID: id, Source: gate.Endpoint{Addr: src}, Destination: gate.Endpoint{Addr: dst, Labels: labels},
			HTTPStatus: 503, SinceRequestInit: 12 * time.Millisecond},
		{Kind: gate.ResponseEnd, Direction: gate.Inbound, ID: id, Source: gate.Endpoint{Addr: src}, Destination: gate.Endpoint{Addr: dst, Labels: labels},
			SinceRequestInit: 15 * time.Millisecond, SinceResponseInit: 3 * time.Millisecond, ResponseBytes: 42,
			EOS: gate.EOS{Kind: gate.EOSGRPCStatus, Code: 14}},
	}
}

func TestHappyPath(t *testing.T) {
	for _, prefix := range []string{"", "/k8s/clusters/c-1"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			type seen struct {
				method, path string
				body         []byte
			}
			reqs := make(chan seen, 4)
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				reqs <- seen{r.Method, r.URL.EscapedPath(), b}
				w.Header().Set("Content-Type", "application/octet-stream")
				for _, ev := range sampleEvents() {
					w.Write(frame(t, wire.FromEvent(ev)))
				}
				// An event that is not HTTP is skipped, not delivered.
				w.Write(frame(t, &pb.TapEvent{}))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}))
			defer srv.Close()

			target := webTarget
			target.To = gate.ResourceRef{Type: "svc", Name: "api"}
			target.Match = gate.HTTPMatch{PathPrefix: "/api"}
			target.MaxRPS = 7
			src, err := NewSource(tlsConfig(srv, prefix), nil, []gate.Target{target}, "default", Options{})
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel() // before srv.Close, so a failed test does not hang
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, rec) }()
			rec.wait(t, 3)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run after cancel = %v, want nil", err)
			}

			got := <-reqs
			if got.method != http.MethodPost || got.path != prefix+webPath {
				t.Errorf("request %s %s, want POST %s", got.method, got.path, prefix+webPath)
			}
			var req pb.TapByResourceRequest
			if err := proto.Unmarshal(got.body, &req); err != nil {
				t.Fatalf("body is not a TapByResourceRequest: %v", err)
			}
			res := req.GetTarget().GetResource()
			if res.GetType() != "deployment" || res.GetName() != "web" || res.GetNamespace() != "prod" || req.GetMaxRps() != 7 {
				t.Errorf("target %v maxRps %v", res, req.GetMaxRps())
			}
			ms := req.GetMatch().GetAll().GetMatches()
			if len(ms) != 2 || ms[0].GetDestinations().GetResource().GetName() != "api" ||
				ms[0].GetDestinations().GetResource().GetType() != "service" || ms[1].GetHttp().GetPath() != "/api" {
				t.Errorf("match = %v", req.GetMatch())
			}

			want := sampleEvents()
			if len(rec.events) != len(want) {
				t.Fatalf("got %d events, want %d", len(rec.events), len(want))
			}
			for i, ev := range rec.events {
				w := want[i]
				if ev.Kind != w.Kind || ev.ID != w.ID || ev.Direction != w.Direction || ev.Source.Addr != w.Source.Addr ||
					ev.Destination.Addr != w.Destination.Addr || ev.Pod() != "web-1" || ev.Method != w.Method ||
					ev.Path != w.Path || ev.Authority != w.Authority || ev.HTTPStatus != w.HTTPStatus ||
					ev.SinceRequestInit != w.SinceRequestInit || ev.SinceResponseInit != w.SinceResponseInit ||
					ev.ResponseBytes != w.ResponseBytes || ev.EOS != w.EOS {
					t.Errorf("event %d = %+v\nwant %+v", i, ev, w)
				}
			}
			if i := 0; rec.events[i] == rec.events[i+1] {
				t.Error("events share memory; each must be fresh")
			}
		})
	}
}

// cutter serves one stream per request from script: each entry writes its
// events and then either cuts the connection mid-frame, answers an HTTP
// status, or keeps the stream open until the client goes away.
type step struct {
	status int  // non-zero: answer this status with a Status body
	cut    bool // after the events, abort mid-frame
	events []*gate.Event
}

func scripted(t *testing.T, steps []step) (*httptest.Server, *int) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := steps[min(n, len(steps)-1)]
		n++
		mu.Unlock()
		if s.status != 0 {
			w.WriteHeader(s.status)
			io.WriteString(w, statusJSON(s.status, metav1.StatusReasonServiceUnavailable, "service unavailable"))
			return
		}
		for _, ev := range s.events {
			w.Write(frame(t, wire.FromEvent(ev)))
		}
		if s.cut {
			var hdr [4]byte
			binary.LittleEndian.PutUint32(hdr[:], 100)
			w.Write(hdr[:])
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection: unexpected EOF
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	return srv, &n
}

func TestReconnect(t *testing.T) {
	evs := sampleEvents()
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{"cut mid-frame", []step{{cut: true, events: evs[:1]}, {events: evs[1:2]}},
			[]string{"tap stream for web (deploy/web) broke after", "unexpected EOF", "reconnected after"}},
		// Once the stream has opened, a 503 is the tap pod restarting, not
		// a missing APIService: retry.
		{"503 after open", []step{{cut: true, events: evs[:1]}, {status: 503}, {status: 503}, {events: evs[1:2]}},
			[]string{"broke after", "reconnected after", "(2 failed attempts)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := scripted(t, tc.steps)
			defer srv.Close()
			src, err := NewSource(tlsConfig(srv, ""), nil, []gate.Target{webTarget}, "", Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel() // before srv.Close, so a failed test does not hang
			from := time.Now()
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, rec) }()
			rec.wait(t, 2)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run = %v", err)
			}
			to := time.Now()
			if rec.events[0].Kind != gate.RequestInit || rec.events[1].Kind != gate.ResponseInit {
				t.Errorf("events %v, %v", rec.events[0].Kind, rec.events[1].Kind)
			}
			notes := rec.notesText()
			for _, w := range tc.want {
				if !strings.Contains(notes, w) {
					t.Errorf("notes lack %q:\n%s", w, notes)
				}
			}
			// The gap between the cut and the reconnect is not covered.
			tapped := src.Tapped(0, from, to)
			if tapped <= 0 || tapped >= to.Sub(from) {
				t.Errorf("Tapped = %v of a %v window; want 0 < tapped < window", tapped, to.Sub(from))
			}
			if n := len(src.open[0]); n != 2 {
				t.Errorf("%d open intervals, want 2", n)
			}
		})
	}
}

func TestTapped(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	s := &Source{opts: Options{Now: func() time.Time { return at(100) }}, open: [][]interval{{
		{from: at(0), to: at(10)}, {from: at(15), to: at(30)}, {from: at(40)},
	}}}
	tests := []struct {
		from, to int
		want     int
	}{
		{0, 100, 10 + 15 + 60},
		{5, 20, 5 + 5},
		{10, 15, 0},
		{50, 200, 50}, // the open interval counts until now
		{-10, 0, 0},
	}
	for _, tc := range tests {
		if got := s.Tapped(0, at(tc.from), at(tc.to)); got != time.Duration(tc.want)*time.Second {
			t.Errorf("Tapped(%d, %d) = %v, want %ds", tc.from, tc.to, got, tc.want)
		}
	}
	if got := s.Tapped(3, at(0), at(100)); got != 0 {
		t.Errorf("Tapped of an unknown target = %v", got)
	}
}

// TestStopOnCancel checks that an idle stream (tap sends no heartbeat) is
// closed by the client when ctx ends, even if the server never notices.
func TestStopOnCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	targets := []gate.Target{webTarget, {Resource: gate.ResourceRef{Type: "sts", Name: "db", Namespace: "prod"}}}
	src, err := NewSource(tlsConfig(srv, ""), nil, targets, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, newRecorder()) }()
	// Wait until both streams are open.
	for {
		src.mu.Lock()
		n := len(src.open[0]) + len(src.open[1])
		src.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	t.Logf("Run returned %v after cancel", time.Since(start))
	for i := range targets {
		if iv := src.open[i][0]; iv.to.IsZero() {
			t.Errorf("target %d: interval still open after Run returned", i)
		}
	}
}

// TestPermanentErrorStopsOthers: one target denied, the other open: Run
// returns the denial and closes the healthy stream.
func TestPermanentErrorStopsOthers(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/statefulsets/") {
			w.WriteHeader(403)
			io.WriteString(w, statusJSON(403, metav1.StatusReasonForbidden, "denied"))
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	targets := []gate.Target{webTarget, {Resource: gate.ResourceRef{Type: "sts", Name: "db", Namespace: "prod"}}}
	src, err := NewSource(tlsConfig(srv, ""), nil, targets, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	defer cancel()
	err = src.Run(ctx, newRecorder())
	var ke *Error
	if !errors.As(err, &ke) || ke.Kind != Forbidden || ke.Target != "sts/db" || !strings.Contains(ke.Hint, `"statefulsets/tap"`) {
		t.Fatalf("Run = %v, want Forbidden for sts/db", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	cfg := tlsConfig(srv, "")
	srv.Close() // connection refused from now on
	src, err := NewSource(cfg, nil, []gate.Target{webTarget}, "", Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// End the window once a few attempts have failed.
		for !strings.Contains(rec.notesText(), "could not open") {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	err = src.Run(ctx, rec)
	var ke *Error
	if !errors.As(err, &ke) || ke.Kind != Unreachable || !strings.Contains(err.Error(), "never opened") {
		t.Fatalf("Run = %v, want Unreachable", err)
	}
	if src.Tapped(0, time.Time{}, time.Now()) != 0 {
		t.Error("coverage of a stream that never opened must be 0")
	}
}

func TestNewSourceBadTarget(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, tg := range []gate.Target{
		{Name: "x", Resource: gate.ResourceRef{Type: "configmap", Name: "a", Namespace: "n"}},
		{Name: "y", Resource: gate.ResourceRef{Type: "deploy", Name: "a"}}, // no namespace anywhere
		{Name: "z"},
	} {
		_, err := NewSource(cfg, nil, []gate.Target{tg}, "", Options{})
		var ke *Error
		if !errors.As(err, &ke) || ke.Kind != BadTarget {
			t.Errorf("%s: NewSource = %v, want BadTarget", tg.Name, err)
		}
	}
}
