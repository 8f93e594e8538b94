package kube

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// TestAPIServerRestart stops the server behind an open tap stream, keeps
// the port closed for a while (connections refused, as while an apiserver
// restarts), then serves again on the same address: the source must
// reconnect, count the failed attempts, and leave the gap out of coverage.
func TestAPIServerRestart(t *testing.T) {
	evs := sampleEvents()
	handler := func(ev *gate.Event) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(frame(t, wire.FromEvent(ev)))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
	}
	first := httptest.NewUnstartedServer(handler(evs[0]))
	first.EnableHTTP2 = true
	first.StartTLS()
	addr := first.Listener.Addr().String()
	cert := first.TLS.Certificates[0]
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: first.Certificate().Raw})
	cfg := &rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}

	src, err := NewSource(cfg, nil, []gate.Target{webTarget}, "", Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(guardCtx(t))
	defer cancel()
	from := time.Now()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()
	rec.wait(t, 1)

	first.CloseClientConnections()
	first.Close()
	down := 400 * time.Millisecond
	time.Sleep(down)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not re-listen on %s: %v", addr, err)
	}
	second := &http.Server{Handler: handler(evs[1]), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}}
	go func() { _ = second.ServeTLS(ln, "", "") }()
	defer second.Close()

	rec.wait(t, 1)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	to := time.Now()
	notes := rec.notesText()
	if !strings.Contains(notes, "broke after") || !strings.Contains(notes, "failed attempts") {
		t.Errorf("restart not reported:\n%s", notes)
	}
	// The client notices the break a moment after the server closed, so
	// the gap it leaves out can be a few milliseconds shorter than the
	// sleep; a source that left no gap at all would leave out nothing.
	if gap := to.Sub(from) - src.Tapped(0, from, to); gap < down/2 {
		t.Errorf("coverage gap %v, want about the %v the server was down", gap, down)
	}
}
