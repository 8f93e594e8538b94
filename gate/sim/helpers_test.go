package sim

import (
	"bytes"
	"context"
	"crypto/x509"

	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

func mustParse(t testing.TB, y string) *Scenario {
	t.Helper()
	s, err := Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return s
}

// server starts a simulator on loopback. With run, the clock runs in
// fast-forward once the first tap stream is open and stops at dur.
func server(t testing.TB, sc *Scenario, opts Options, run bool) (*Simulator, string) {
	t.Helper()
	s, err := New(sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, _, err := s.Serve(ctx, ServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if run {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := s.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	return s, "http://" + addr
}

func ffOptions(dur time.Duration) Options {
	return Options{FastForward: true, StartAfterTaps: 1, Duration: dur, Record: 100000}
}

// tapResult is everything a tap request returned.
type tapResult struct {
	status   int
	header   http.Header
	events   []gate.Event
	apiError string // ApiError frame when linkerd-error was set
	body     []byte // non-200 bodies
	readErr  error  // error ending the stream other than a clean EOF
}

func tapTarget(t testing.TB, base string, target gate.Target, ns string) tapResult {
	t.Helper()
	req, err := wire.BuildRequest(target, ns)
	if err != nil {
		t.Fatal(err)
	}
	return post(t, base, wire.TapPath(target, ns), req, nil)
}

func post(t testing.TB, base, path string, req proto.Message, hdr http.Header) tapResult {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return postRaw(t, base, path, body, hdr)
}

func postRaw(t testing.TB, base, path string, body []byte, hdr http.Header) tapResult {
	t.Helper()
	return postWith(t, http.DefaultClient, base, path, body, hdr)
}

func postWith(t testing.TB, c *http.Client, base, path string, body []byte, hdr http.Header) tapResult {
	t.Helper()
	hr, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		hr.Header[k] = v
	}
	resp, err := c.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	res := tapResult{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		res.body, _ = io.ReadAll(resp.Body)
		return res
	}
	fr := wire.NewFrameReader(resp.Body)
	if resp.Header.Get("linkerd-error") != "" {
		b, err := fr.Next()
		if err != nil {
			t.Fatalf("linkerd-error %q without an ApiError frame: %v", resp.Header.Get("linkerd-error"), err)
		}
		if res.apiError, err = wire.DecodeAPIError(b); err != nil {
			t.Fatal(err)
		}
		if _, err := fr.Next(); err != io.EOF {
			t.Fatalf("after the ApiError frame: got %v, want EOF", err)
		}
		return res
	}
	var pe pb.TapEvent
	for {
		b, err := fr.Next()
		if err == io.EOF {
			return res
		}
		if err != nil {
			res.readErr = err
			return res
		}
		// An ApiError frame mid-stream may or may not decode as a TapEvent;
		// it never carries an http event.
		if err := wire.DecodeEvent(b, &pe); err != nil || pe.GetHttp() == nil {
			if msg, e2 := wire.DecodeAPIError(b); e2 == nil && msg != "" {
				res.apiError = msg
				continue
			}
			t.Fatalf("frame %d is neither an event nor an ApiError: %v", len(res.events), err)
		}
		var ev gate.Event
		wire.ToEvent(&pe, &ev)
		res.events = append(res.events, ev)
	}
}

func deploy(name string) gate.ResourceRef {
	return gate.ResourceRef{Type: "deployment", Name: name}
}

// reqKey correlates the events of one request (stream id + proxy).
type reqKey struct {
	dir   gate.Direction
	proxy string
	id    gate.StreamID
}

type observed struct {
	init, resp, end *gate.Event
	order           []gate.EventKind
}

func correlate(t testing.TB, evs []gate.Event) map[reqKey]*observed {
	t.Helper()
	out := map[reqKey]*observed{}
	for i := range evs {
		e := &evs[i]
		k := reqKey{e.Direction, e.Proxy().String(), e.ID}
		o := out[k]
		if o == nil {
			o = &observed{}
			out[k] = o
		}
		o.order = append(o.order, e.Kind)
		switch e.Kind {
		case gate.RequestInit:
			if o.init != nil {
				t.Fatalf("duplicate RequestInit for %+v", k)
			}
			o.init = e
		case gate.ResponseInit:
			o.resp = e
		case gate.ResponseEnd:
			o.end = e
		default:
			t.Fatalf("event %d has no kind", i)
		}
	}
	return out
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func x509Pool(t testing.TB, pemBytes []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemBytes) {
		t.Fatal("PEM does not parse")
	}
	return p
}
