package sim

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

func TestAdoptPods(t *testing.T) {
	s, base := server(t, DemoScenario(), ffOptions(3*time.Second), true)
	ids := []PodIdentity{
		{Name: "checkout-7d9f8b6c5d-aaaaa", IP: netip.MustParseAddr("127.0.0.2")},
		{Name: "checkout-7d9f8b6c5d-bbbbb", IP: netip.MustParseAddr("127.0.0.3")},
		{Name: "checkout-7d9f8b6c5d-ccccc", IP: netip.MustParseAddr("127.0.0.4")},
	}
	if err := s.AdoptPods("shop", "checkout", "7d9f8b6c5d", ids[:2]); err == nil || !strings.Contains(err.Error(), "3 pods in the scenario, 2 given") {
		t.Fatalf("wrong pod count: %v", err)
	}
	if err := s.AdoptPods("shop", "nope", "", ids); err == nil {
		t.Fatal("unknown workload accepted")
	}
	if err := s.AdoptPods("shop", "checkout", "7d9f8b6c5d", ids); err != nil {
		t.Fatal(err)
	}
	byName := map[string]netip.Addr{}
	for _, p := range s.Pods() {
		if p.Owner == "deployment/checkout" {
			byName[p.Name] = p.IP
			if p.Labels["pod-template-hash"] != "7d9f8b6c5d" || !p.Meshed || !p.TapEnabled {
				t.Errorf("pod %+v", p)
			}
		}
	}
	if len(byName) != 3 || byName["checkout-7d9f8b6c5d-bbbbb"] != ids[1].IP {
		t.Fatalf("Pods() after AdoptPods: %v", byName)
	}
	res := tapTarget(t, base, gate.Target{Resource: gate.ResourceRef{Type: "pod", Name: ids[1].Name}, MaxRPS: 1000}, "shop")
	if len(res.events) == 0 {
		t.Fatalf("tap of an adopted pod: no events (ApiError %q)", res.apiError)
	}
	for _, e := range res.events {
		if e.Pod() != ids[1].Name || e.Proxy().Addr() != ids[1].IP || e.Destination.Labels["pod_template_hash"] != "7d9f8b6c5d" && e.Direction == gate.Inbound {
			t.Fatalf("event from %s at %v (labels %v)", e.Pod(), e.Proxy(), e.Destination.Labels)
		}
	}
	if err := s.AdoptPods("shop", "checkout", "", ids); err == nil {
		t.Error("AdoptPods after Run started was accepted")
	}
}

func TestServeWithGivenTLSConfig(t *testing.T) {
	cert, caPEM, err := selfSigned(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(DemoScenario(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, gotCA, err := s.Serve(ctx, ServeOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil || gotCA != nil {
		t.Fatalf("Serve: %v (CA %d bytes, want none)", err, len(gotCA))
	}
	roots := x509Pool(t, caPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	resp, err := c.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Errorf("%d over %s", resp.StatusCode, resp.Proto)
	}
}
