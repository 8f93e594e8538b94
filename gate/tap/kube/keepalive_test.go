package kube

import (
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// freezer is a TCP proxy whose existing connections can be frozen: bytes
// stop flowing both ways but the sockets stay open, as with a peer that
// vanished without a FIN (a node lost, a NAT entry dropped). New
// connections still flow.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen chan struct{} // closed by freeze: existing connections stall
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, frozen: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			stall := f.frozen
			f.mu.Unlock()
			go f.pipe(c, stall)
		}
	}()
	return f
}

func (f *freezer) pipe(c net.Conn, stall chan struct{}) {
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		c.Close()
		return
	}
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			select {
			case <-stall:
				// Swallow everything from now on, never close: silence.
				io.Copy(io.Discard, src)
				return
			default:
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				dst.Close()
				return
			}
		}
	}
	go cp(up, c)
	go cp(c, up)
}

// freeze stalls the connections open now; later ones flow.
func (f *freezer) freeze() {
	f.mu.Lock()
	close(f.frozen)
	f.frozen = make(chan struct{})
	f.mu.Unlock()
}

// TestDeadConnectionVersusIdle: a tap stream whose connection goes silent
// is detected by HTTP/2 keepalive pings and re-opened, while a stream that
// is alive but carries no events is reported as an idle workload.
func TestDeadConnectionVersusIdle(t *testing.T) {
	t.Setenv("HTTP2_READ_IDLE_TIMEOUT_SECONDS", "1")
	t.Setenv("HTTP2_PING_TIMEOUT_SECONDS", "1")
	evs := sampleEvents()
	var mu sync.Mutex
	requests := 0
	// The frozen connection's handler never learns its client left.
	stop := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		if !strings.HasSuffix(r.URL.Path, "/tap") || strings.Contains(r.URL.Path, "/idle/") {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		w.Write(frame(t, wire.FromEvent(evs[min(n-1, 2)])))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	defer close(stop)
	proxy := newFreezer(t, srv.Listener.Addr().String())
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg := &rest.Config{Host: "https://" + proxy.ln.Addr().String(), TLSClientConfig: rest.TLSClientConfig{CAData: ca}}

	t.Run("dead connection", func(t *testing.T) {
		src, err := NewSource(cfg, nil, []gate.Target{webTarget}, "", Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, rec) }()
		rec.wait(t, 1)
		proxy.freeze()
		rec.wait(t, 1) // from the re-opened stream, after the pings failed
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		notes := rec.notesText()
		if !strings.Contains(notes, "broke after") {
			t.Errorf("the dead connection was not reported:\n%s", notes)
		}
		if strings.Contains(notes, "carried no events") {
			t.Errorf("a dead connection reported as idle:\n%s", notes)
		}
	})

	t.Run("idle workload", func(t *testing.T) {
		idle := gate.Target{Name: "idle", Resource: gate.ResourceRef{Type: "deploy", Name: "quiet", Namespace: "idle"}}
		src, err := NewSource(cfg, nil, []gate.Target{idle}, "", Options{})
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		// Longer than read-idle + ping timeout: the pings keep it alive.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := src.Run(ctx, rec); err != nil {
			t.Fatalf("Run = %v", err)
		}
		notes := rec.notesText()
		if !strings.Contains(notes, "carried no events") || !strings.Contains(notes, "HTTP/2") || strings.Contains(notes, "broke after") {
			t.Errorf("idle stream notes:\n%s", notes)
		}
	})
}
