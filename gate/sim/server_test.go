package sim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// TestTapDeploymentFullRate taps deploy/checkout with a rate limit it
// never reaches and checks the stream against the ground truth.
func TestTapDeploymentFullRate(t *testing.T) {
	s, base := server(t, DemoScenario(), ffOptions(5*time.Second), true)
	res := tapTarget(t, base, gate.Target{Name: "t", Resource: deploy("checkout"), MaxRPS: 10000}, "shop")
	if res.status != 200 || res.header.Get("linkerd-error") != "" || res.readErr != nil {
		t.Fatalf("status %d, linkerd-error %q, read error %v", res.status, res.header.Get("linkerd-error"), res.readErr)
	}
	if ct, via := res.header.Get("Content-Type"), res.header.Get("Via"); ct != "application/octet-stream" || via != "1.1 linkerd" {
		t.Errorf("Content-Type %q, Via %q", ct, via)
	}
	truth := s.Truth()
	pods := map[string]bool{}
	for _, p := range s.m.deps[0].pods {
		pods[p.name] = true
	}
	reqs := correlate(t, res.events)
	var inInit, inEnd, inFail, outInit, auth int
	var lat []time.Duration
	for k, o := range reqs {
		if o.init == nil {
			t.Fatalf("%+v: response without RequestInit (tap started at time 0)", k)
		}
		if o.order[0] != gate.RequestInit || (o.end != nil && o.order[len(o.order)-1] != gate.ResponseEnd) {
			t.Fatalf("%+v: events out of order: %v", k, o.order)
		}
		if !pods[o.init.Pod()] {
			t.Fatalf("event from pod %q, not a checkout pod", o.init.Pod())
		}
		for _, h := range o.init.Headers {
			if h.Name == "authorization" {
				auth++
			}
		}
		switch k.dir {
		case gate.Inbound:
			d := o.init.Destination.Labels
			if d["deployment"] != "checkout" || d["namespace"] != "shop" || d["serviceaccount"] != "checkout" ||
				d["control_plane_ns"] != "linkerd" || d["pod_template_hash"] == "" || d["tls"] != "true" {
				t.Fatalf("inbound destination labels %v", d)
			}
			inInit++
			if o.resp != nil {
				lat = append(lat, o.resp.SinceRequestInit)
				if o.end != nil && o.end.SinceRequestInit < o.resp.SinceRequestInit {
					t.Fatalf("%+v: ResponseEnd since_request_init %v < ResponseInit's %v", k, o.end.SinceRequestInit, o.resp.SinceRequestInit)
				}
			}
			if o.end != nil {
				inEnd++
				if o.resp != nil && o.resp.HTTPStatus >= 500 || o.end.EOS.Kind == gate.EOSReset {
					inFail++
				}
			}
		case gate.Outbound:
			if o.init.Source.Labels["deployment"] != "checkout" || o.init.Destination.Labels["deployment"] != "payments" {
				t.Fatalf("outbound labels: src %v dst %v", o.init.Source.Labels, o.init.Destination.Labels)
			}
			outInit++
		default:
			t.Fatalf("event without direction: %+v", o.init)
		}
	}
	c := truth.Deployments["shop/checkout"]
	edge := truth.Edges["shop/checkout -> shop/payments"]
	if c == nil || edge == nil {
		t.Fatalf("truth: %v", truth)
	}
	// Every request was tapped, so the stream agrees with the ground truth
	// exactly: ~150 inbound requests in 5s.
	if uint64(inInit) != c.Started || uint64(inEnd) != c.Requests || uint64(inFail) != c.Failures {
		t.Errorf("tap saw %d started / %d completed / %d failed; truth %d / %d / %d", inInit, inEnd, inFail, c.Started, c.Requests, c.Failures)
	}
	if uint64(outInit) != edge.Started || outInit == 0 {
		t.Errorf("tap saw %d outbound requests, truth %d", outInit, edge.Started)
	}
	if c.Requests < 100 {
		t.Errorf("only %d requests in 5s at ~30 rps", c.Requests)
	}
	if auth == 0 {
		t.Error("no request carried an authorization header")
	}
	// The latencies on the wire are the exact ones the model drew.
	seen := map[time.Duration]int{}
	for _, l := range lat {
		seen[l]++
	}
	for _, l := range c.Latencies {
		if seen[l] == 0 {
			t.Fatalf("latency %v of a completed request was never tapped", l)
		}
		seen[l]--
	}
	if extra := uint64(len(lat) - len(c.Latencies)); extra > c.Started-c.Requests {
		t.Errorf("%d tapped latencies beyond the ground truth's, but only %d requests in flight", extra, c.Started-c.Requests)
	}
	infos := s.TapRequests()
	if len(infos) != 1 || infos[0].Target != "deployment/checkout" || len(infos[0].Pods) != 3 || infos[0].Events != uint64(len(res.events)) {
		t.Errorf("TapRequests = %+v (stream had %d events)", infos, len(res.events))
	}
}

func sampleScenario(t *testing.T, rps string) *Scenario {
	return mustParse(t, `
name: sample
seed: 3
namespaces:
- name: ns
  deployments:
  - name: one
    pods: 1
    rps: `+rps+`
    routes: [{path: /a}]
    latency: {constant: 20ms}
  - name: idle
    pods: 2
    rps: 0
    routes: [{path: /a}]
  - name: off
    pods: 2
    tapEnabled: false
    rps: 5
    routes: [{path: /a}]
`)
}

// TestMaxRpsSampling: maxRps 2 on one pod at 50 rps taps the first two
// requests of every second of the tap, and nothing else.
func TestMaxRpsSampling(t *testing.T) {
	const seconds = 10
	s, base := server(t, sampleScenario(t, "50"), ffOptions(seconds*time.Second), true)
	res := tapTarget(t, base, gate.Target{Name: "t", Resource: deploy("one"), MaxRPS: 2}, "ns")
	if res.status != 200 || res.readErr != nil {
		t.Fatalf("status %d, %v", res.status, res.readErr)
	}
	tapped := map[gate.StreamID]bool{}
	for _, e := range res.events {
		if e.Kind == gate.RequestInit {
			tapped[e.ID] = true
		}
	}
	truth := s.Truth()
	recs := truth.Records["ns/"+s.m.deps[0].pods[0].name]
	if !sort.SliceIsSorted(recs, func(i, j int) bool { return recs[i].Start < recs[j].Start }) {
		t.Fatal("records are not in start order")
	}
	start := s.TapRequests()[0].Start
	perSecond := map[int][]gate.StreamID{}
	for _, r := range recs {
		if r.Start < start {
			continue
		}
		sec := int((r.Start - start) / time.Second)
		perSecond[sec] = append(perSecond[sec], r.ID)
	}
	total := 0
	for sec := 0; sec < seconds; sec++ {
		ids := perSecond[sec]
		if len(ids) < 10 {
			t.Fatalf("second %d: only %d requests at 50 rps", sec, len(ids))
		}
		for i, id := range ids {
			if got, want := tapped[id], i < 2; got != want {
				t.Errorf("second %d: request #%d tapped=%v, want %v", sec, i, got, want)
			}
		}
		total += min(2, len(ids))
	}
	if len(tapped) != total {
		t.Errorf("tapped %d requests, want %d (2 per second)", len(tapped), total)
	}
	// Every tapped request's three events were forwarded.
	if got := len(res.events); got != 3*len(tapped) {
		t.Errorf("%d events for %d tapped requests", got, len(tapped))
	}
}

func TestTapErrors(t *testing.T) {
	s, base := server(t, DemoScenario(), Options{}, false)
	_ = s
	good, err := wire.BuildRequest(gate.Target{Resource: deploy("checkout")}, "shop")
	if err != nil {
		t.Fatal(err)
	}
	anyMatch := func() *pb.TapByResourceRequest {
		r, _ := wire.BuildRequest(gate.Target{Resource: deploy("checkout")}, "shop")
		r.Match = &pb.TapByResourceRequest_Match{Match: &pb.TapByResourceRequest_Match_Any{Any: &pb.TapByResourceRequest_Match_Seq{}}}
		return r
	}
	notInAll := func() *pb.TapByResourceRequest {
		r, _ := wire.BuildRequest(gate.Target{Resource: deploy("checkout")}, "shop")
		r.Match.GetAll().Matches = append(r.Match.GetAll().Matches, &pb.TapByResourceRequest_Match{
			Match: &pb.TapByResourceRequest_Match_Not{Not: &pb.TapByResourceRequest_Match{}}})
		return r
	}
	withSelector := func() *pb.TapByResourceRequest {
		r, _ := wire.BuildRequest(gate.Target{Resource: deploy("checkout"), LabelSelector: "app in (("}, "shop")
		return r
	}
	tests := []struct {
		name       string
		target     gate.Target
		req        *pb.TapByResourceRequest // overrides target's request
		path       string                   // overrides target's path
		raw        []byte
		wantHeader string
		wantErr    string
	}{
		{name: "unmeshed", target: gate.Target{Resource: deploy("legacy-batch")},
			wantHeader: "Internal Server Error", wantErr: "no pods to tap for deployment/legacy-batch\n"},
		{name: "missing deployment", target: gate.Target{Resource: deploy("nope")},
			wantHeader: "Internal Server Error", wantErr: `deployment.apps "nope" not found`},
		{name: "missing pod", target: gate.Target{Resource: gate.ResourceRef{Type: "pod", Name: "nope"}},
			wantHeader: "Internal Server Error", wantErr: `pod "nope" not found`},
		{name: "missing namespace", target: gate.Target{Resource: gate.ResourceRef{Type: "namespace", Name: "nope"}},
			wantHeader: "Internal Server Error", wantErr: `namespace "nope" not found`},
		{name: "body does not match URL", req: good, path: "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/shop/deployments/other/tap",
			wantHeader: "Internal Server Error", wantErr: `tap request body did not match APIServer URL: "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/shop/deployments/checkout/tap" != "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/shop/deployments/other/tap"`},
		{name: "undecodable body", raw: []byte{0xff, 0xff, 0xff}, path: wire.RequestPath(good),
			wantHeader: "Bad Request", wantErr: "proto: "},
		{name: "match any", req: anyMatch(), wantHeader: "Internal Server Error", wantErr: "unexpected match specified: "},
		{name: "match not inside all", req: notInAll(), wantHeader: "Internal Server Error", wantErr: "unknown match type: not"},
		{name: "bad label selector", req: withSelector(), wantHeader: "Internal Server Error", wantErr: `invalid label selector "app in ((": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			if req == nil && tt.raw == nil {
				var err error
				if req, err = wire.BuildRequest(tt.target, "shop"); err != nil {
					t.Fatal(err)
				}
			}
			path := tt.path
			if path == "" {
				path = wire.RequestPath(req)
			}
			var res tapResult
			if tt.raw != nil {
				res = postRaw(t, base, path, tt.raw, nil)
			} else {
				res = post(t, base, path, req, nil)
			}
			if res.status != 200 {
				t.Fatalf("HTTP %d, want 200 with linkerd-error (body %s)", res.status, res.body)
			}
			if h := res.header.Get("linkerd-error"); h != tt.wantHeader {
				t.Errorf("linkerd-error = %q, want %q", h, tt.wantHeader)
			}
			// The protobuf runtime randomly writes "proto:" with a space or
			// a non-breaking space, so that nobody matches its messages.
			if got := strings.ReplaceAll(res.apiError, "\u00a0", " "); !strings.HasPrefix(got, tt.wantErr) {
				t.Errorf("ApiError = %q, want prefix %q", res.apiError, tt.wantErr)
			}
		})
	}
}

func TestTapNotEnabledAndIdle(t *testing.T) {
	_, base := server(t, sampleScenario(t, "5"), ffOptions(2*time.Second), true)
	res := tapTarget(t, base, gate.Target{Resource: deploy("off")}, "ns")
	want := "no pods to tap for deployment/off\n2 pods found with tap not enabled:\n\t* off-"
	if !strings.HasPrefix(res.apiError, want) || !strings.HasSuffix(res.apiError, "restart these pods to enable tap and make them valid tap targets\n") {
		t.Errorf("ApiError = %q", res.apiError)
	}
	// An idle target sends nothing at all; the stream ends with the
	// simulation (here: once the clock, started by this tap, reaches 2s).
	res = tapTarget(t, base, gate.Target{Resource: deploy("idle")}, "ns")
	if res.status != 200 || res.header.Get("linkerd-error") != "" || len(res.events) != 0 || res.readErr != nil {
		t.Errorf("idle target: status %d, error %q, %d events, %v", res.status, res.header.Get("linkerd-error"), len(res.events), res.readErr)
	}
}

func TestUnknownResourceTypeIs404(t *testing.T) {
	_, base := server(t, DemoScenario(), Options{}, false)
	good, _ := wire.BuildRequest(gate.Target{Resource: deploy("checkout")}, "shop")
	good.Target.Resource.Type = "widget"
	res := post(t, base, "/apis/tap.linkerd.io/v1alpha1/watch/namespaces/shop/widgets/checkout/tap", good, nil)
	if res.status != 404 || !strings.Contains(string(res.body), `"paths"`) {
		t.Fatalf("status %d body %s", res.status, res.body)
	}
}

func TestHTTPMatch(t *testing.T) {
	s, base := server(t, DemoScenario(), ffOptions(5*time.Second), true)
	target := gate.Target{Resource: deploy("checkout"), MaxRPS: 10000, Match: gate.HTTPMatch{Method: "GET", PathPrefix: "/api/v1/c"}}
	res := tapTarget(t, base, target, "shop")
	inits := 0
	for _, e := range res.events {
		if e.Kind == gate.RequestInit {
			inits++
			if e.Method != "GET" || !strings.HasPrefix(e.Path, "/api/v1/c") {
				t.Fatalf("request %s %s passed the match", e.Method, e.Path)
			}
		}
	}
	want := 0
	for _, p := range s.m.deps[0].pods {
		for _, r := range s.Truth().Records["shop/"+p.name] {
			if r.Method == "GET" && r.Path == "/api/v1/cart" {
				want++
			}
		}
	}
	if inits != want || want == 0 {
		t.Errorf("tapped %d requests, %d GET /api/v1/cart requests were sent", inits, want)
	}
}

func TestDestinationsMatch(t *testing.T) {
	opts := ffOptions(5 * time.Second)
	opts.StartAfterTaps = 2
	s, base := server(t, DemoScenario(), opts, true)
	// payments -> payments: an inbound proxy knows no destination labels,
	// so a destinations match never holds for inbound traffic.
	selfDone := make(chan tapResult, 1)
	go func() {
		selfDone <- tapTarget(t, base, gate.Target{Resource: deploy("payments"), To: deploy("payments"), MaxRPS: 10000}, "shop")
	}()
	target := gate.Target{Resource: deploy("checkout"), To: deploy("payments"), MaxRPS: 10000}
	res := tapTarget(t, base, target, "shop")
	if self := <-selfDone; len(self.events) != 0 || self.apiError != "" {
		t.Errorf("tap payments --to payments: %d events (ApiError %q), want none", len(self.events), self.apiError)
	}
	inits := 0
	for _, e := range res.events {
		if e.Direction != gate.Outbound || e.Destination.Labels["deployment"] != "payments" || e.Source.Labels["deployment"] != "checkout" {
			t.Fatalf("event passed the destinations match: %v %v -> %v", e.Direction, e.Source.Labels, e.Destination.Labels)
		}
		if e.Kind == gate.RequestInit {
			inits++
		}
	}
	if want := s.Truth().Edges["shop/checkout -> shop/payments"].Started; uint64(inits) != want || want == 0 {
		t.Errorf("tapped %d outbound requests, %d were sent", inits, want)
	}
}

func TestNamespaceTarget(t *testing.T) {
	_, base := server(t, DemoScenario(), ffOptions(3*time.Second), true)
	res := tapTarget(t, base, gate.Target{Resource: gate.ResourceRef{Type: "namespace", Name: "shop"}, MaxRPS: 10000}, "")
	deps := map[string]bool{}
	for _, e := range res.events {
		if e.Direction == gate.Inbound {
			deps[e.Destination.Labels["deployment"]] = true
		}
	}
	for _, d := range []string{"checkout", "checkout-canary", "payments"} {
		if !deps[d] {
			t.Errorf("namespace tap saw no inbound traffic of %s (saw %v)", d, deps)
		}
	}
	if deps["legacy-batch"] {
		t.Error("namespace tap saw the unmeshed deployment")
	}
}

func TestDiscovery(t *testing.T) {
	_, base := server(t, DemoScenario(), Options{}, false)
	get := func(path string) (int, []byte) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	var rl struct {
		Kind, GroupVersion string
		APIResources       []struct {
			Name  string
			Verbs []string
		} `json:"resources"`
	}
	code, b := get("/apis/tap.linkerd.io/v1alpha1")
	if err := json.Unmarshal(b, &rl); code != 200 || err != nil {
		t.Fatalf("%d %v %s", code, err, b)
	}
	names := []string{}
	for _, r := range rl.APIResources {
		names = append(names, r.Name)
	}
	if rl.Kind != "APIResourceList" || rl.GroupVersion != "tap.linkerd.io/v1alpha1" || len(names) != 20 || !slices.Contains(names, "deployments/tap") {
		t.Errorf("APIResourceList: %+v", rl)
	}
	for path, want := range map[string]string{
		"/apis":                `"kind": "APIGroupList"`,
		"/apis/tap.linkerd.io": `"preferredVersion"`,
		"/healthz":             "ok",
	} {
		if code, b := get(path); code != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %s", path, code, b)
		}
	}
	if code, _ := get("/apis/tap.linkerd.io/v1alpha1/watch/namespaces/shop/deployments/checkout/tap"); code != 404 {
		t.Errorf("GET on a tap route: %d, want 404 (tap is POST only)", code)
	}
}

func TestTLSRemoteUserAndFaults(t *testing.T) {
	s, err := New(DemoScenario(), Options{Speed: 50})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, caPEM, err := s.Serve(ctx, ServeOptions{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Run(ctx) }()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA PEM does not parse")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	base := "https://" + addr
	req, _ := wire.BuildRequest(gate.Target{Resource: deploy("checkout-canary"), MaxRPS: 1000}, "shop")
	body, _ := proto.Marshal(req)
	path := wire.RequestPath(req)
	hdr := http.Header{"X-Remote-User": {"alice"}, "X-Remote-Group": {"devs", "system:authenticated"}}

	// A cut stream: events, then the connection breaks.
	s.CutStreamsAfterEvents(4)
	res := postWith(t, client, base, path, body, hdr)
	if len(res.events) != 4 || res.readErr == nil {
		t.Fatalf("cut stream: %d events, error %v; want 4 events then an error", len(res.events), res.readErr)
	}
	s.CutStreamsAfterEvents(0)

	// An ApiError frame mid-stream.
	s.ErrorMidStream(3, "proxy went away")
	res = postWith(t, client, base, path, body, hdr)
	if len(res.events) != 3 || res.apiError != "proxy went away" {
		t.Fatalf("mid-stream error: %d events, ApiError %q", len(res.events), res.apiError)
	}
	s.ErrorMidStream(0, "")

	// The apiserver's answer when the APIService is unavailable.
	s.FailNext(1, 503, "")
	res = postWith(t, client, base, path, body, hdr)
	if res.status != 503 || !strings.Contains(string(res.body), `"reason":"ServiceUnavailable"`) {
		t.Fatalf("FailNext: %d %s", res.status, res.body)
	}

	// The tap server's own authorization check.
	s.DenyUsers("mallory")
	res = postWith(t, client, base, path, body, http.Header{"X-Remote-User": {"mallory"}})
	var je struct{ Error string }
	if res.status != 403 || json.Unmarshal(res.body, &je) != nil || !strings.HasPrefix(je.Error, "tap authorization failed") {
		t.Fatalf("denied user: %d %s", res.status, res.body)
	}

	infos := s.TapRequests()
	if len(infos) != 4 || infos[0].User != "alice" || !slices.Equal(infos[0].Groups, []string{"devs", "system:authenticated"}) || infos[3].User != "mallory" || infos[3].HTTPStatus != 403 {
		t.Errorf("TapRequests = %+v", infos)
	}
}

// TestRealTimeStreamEndsWithSimulation runs the clock at 20x for 2
// simulated seconds: events arrive while the simulation runs and the
// stream ends cleanly when it stops.
func TestRealTimeStreamEndsWithSimulation(t *testing.T) {
	// The clock starts when the tap opens, so the test does not depend on
	// how fast this machine sets up a connection.
	s, err := New(DemoScenario(), Options{Speed: 20, Duration: 2 * time.Second, StartAfterTaps: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _, err := s.Serve(ctx, ServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	res := tapTarget(t, "http://"+addr, gate.Target{Resource: deploy("checkout"), MaxRPS: 1000}, "shop")
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if res.readErr != nil || len(res.events) == 0 {
		t.Fatalf("%d events, %v", len(res.events), res.readErr)
	}
	for k, o := range correlate(t, res.events) {
		if o.init == nil && o.order[0] != gate.RequestInit {
			continue // began before the tap
		}
		if o.order[0] != gate.RequestInit {
			t.Fatalf("%+v: order %v", k, o.order)
		}
	}
	select {
	case <-s.Done():
	default:
		t.Error("Done not closed after Run returned")
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("context cancelled early")
	}
}

func TestLabelSelector(t *testing.T) {
	_, base := server(t, DemoScenario(), ffOptions(3*time.Second), true)
	target := gate.Target{Resource: gate.ResourceRef{Type: "namespace", Name: "shop"}, LabelSelector: "app=checkout,track=canary", MaxRPS: 10000}
	res := tapTarget(t, base, target, "")
	if len(res.events) == 0 {
		t.Fatalf("no events (ApiError %q)", res.apiError)
	}
	for _, e := range res.events {
		if e.Destination.Labels["deployment"] != "checkout-canary" {
			t.Fatalf("selector track=canary let through %v", e.Destination.Labels)
		}
	}
}

func TestCutStreamsAfterWallTime(t *testing.T) {
	s, base := server(t, DemoScenario(), Options{Speed: 10}, true)
	s.CutStreamsAfter(50 * time.Millisecond)
	res := tapTarget(t, base, gate.Target{Resource: deploy("checkout"), MaxRPS: 1000}, "shop")
	if res.readErr == nil {
		t.Fatalf("stream ended cleanly after %d events; want it cut", len(res.events))
	}
}

// BenchmarkTapStream measures a full-rate tap of the whole demo namespace
// (one minute of simulated traffic per op) over loopback HTTP, simulation
// and client decoding (wire.Decoder) included.
func BenchmarkTapStream(b *testing.B) {
	events := 0
	for i := 0; i < b.N; i++ {
		_, base := server(b, DemoScenario(), Options{FastForward: true, StartAfterTaps: 1, Duration: time.Minute}, true)
		target := gate.Target{Resource: gate.ResourceRef{Type: "namespace", Name: "shop"}, MaxRPS: 1e6}
		req, _ := wire.BuildRequest(target, "")
		body, _ := proto.Marshal(req)
		resp, err := http.Post(base+wire.RequestPath(req), "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		dec := wire.NewDecoder(resp.Body)
		var ev gate.Event
		for {
			err := dec.Next(&ev)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			events++
		}
		resp.Body.Close()
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// TestTLSClientCertificates: with ClientCAs the server takes only clients
// with a certificate from that CA (the aggregator's front-proxy client
// certificate), and it speaks HTTP/2 as the aggregator expects.
func TestTLSClientCertificates(t *testing.T) {
	clientCA, clientCert := testClientCert(t)
	pool := x509.NewCertPool()
	pool.AddCert(clientCA)
	s, err := New(DemoScenario(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, caPEM, err := s.Serve(ctx, ServeOptions{TLS: true, ClientCAs: pool, Hosts: []string{"tap.example"}})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	get := func(certs []tls.Certificate) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
		return c.Get("https://" + addr + "/apis/tap.linkerd.io/v1alpha1")
	}
	if resp, err := get(nil); err == nil {
		resp.Body.Close()
		t.Fatal("a client without a certificate was served")
	}
	resp, err := get([]tls.Certificate{clientCert})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Errorf("status %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
}

func testClientCert(t *testing.T) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "front-proxy-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "front-proxy-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
