package replay

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// Mirrors of the structs linkerd's `tap -o json` marshals (field order,
// omitempty and all), extended with tapgate's timestamp and eos keys: what
// encoding/json.MarshalIndent makes of them is the exact expected text.
type (
	lkEndpoint struct {
		IP       string            `json:"ip"`
		Port     uint32            `json:"port"`
		Metadata map[string]string `json:"metadata"`
	}
	lkID struct {
		Base   uint32 `json:"base"`
		Stream uint64 `json:"stream"`
	}
	lkDuration struct {
		Seconds int64 `json:"seconds,omitempty"`
		Nanos   int32 `json:"nanos,omitempty"`
	}
	lkHeader struct {
		Name     string  `json:"name"`
		ValueStr *string `json:"valueStr,omitempty"`
		ValueBin []byte  `json:"valueBin,omitempty"`
	}
	lkReq struct {
		ID        *lkID      `json:"id"`
		Method    string     `json:"method"`
		Scheme    string     `json:"scheme"`
		Authority string     `json:"authority"`
		Path      string     `json:"path"`
		Headers   []lkHeader `json:"headers"`
	}
	lkRsp struct {
		ID               *lkID       `json:"id"`
		SinceRequestInit *lkDuration `json:"sinceRequestInit"`
		HTTPStatus       uint32      `json:"httpStatus"`
		Headers          []lkHeader  `json:"headers"`
	}
	lkEOS struct {
		GrpcStatusCode *uint32 `json:"grpcStatusCode,omitempty"`
		ResetErrorCode *uint32 `json:"resetErrorCode,omitempty"`
	}
	lkEnd struct {
		ID                *lkID       `json:"id"`
		SinceRequestInit  *lkDuration `json:"sinceRequestInit"`
		SinceResponseInit *lkDuration `json:"sinceResponseInit"`
		ResponseBytes     uint64      `json:"responseBytes"`
		Trailers          []lkHeader  `json:"trailers"`
		GrpcStatusCode    uint32      `json:"grpcStatusCode"`
		ResetErrorCode    uint32      `json:"resetErrorCode,omitempty"`
		EOS               *lkEOS      `json:"eos,omitempty"`
	}
	lkEvent struct {
		Timestamp      string            `json:"timestamp,omitempty"`
		Source         *lkEndpoint       `json:"source"`
		Destination    *lkEndpoint       `json:"destination"`
		RouteMeta      map[string]string `json:"routeMeta"`
		ProxyDirection string            `json:"proxyDirection"`
		Req            *lkReq            `json:"requestInitEvent,omitempty"`
		Rsp            *lkRsp            `json:"responseInitEvent,omitempty"`
		End            *lkEnd            `json:"responseEndEvent,omitempty"`
	}
)

func write(t *testing.T, r *gate.Redactor, evs []gate.Event, at func(i int) time.Time) []byte {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b, r)
	for i := range evs {
		if err := w.Write(&evs[i], at(i)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

var t0 = time.Date(2026, 11, 28, 14, 0, 0, 123456000, time.UTC)

func stamps(i int) time.Time { return t0.Add(time.Duration(i) * 37 * time.Millisecond) }
func noStamps(int) time.Time { return time.Time{} }

// The writer's text is what encoding/json.MarshalIndent(v, "", "  ") gives
// for linkerd's structs, followed by a newline, byte for byte.
func TestWriterMatchesLinkerdShape(t *testing.T) {
	evs := append(linkerdFixtureEvents(), readAll(t, mustRead(t, "plain.json"))...)
	evs = append(evs, gate.Event{Kind: gate.RequestInit, Path: `/q?a=<b>&c="d"` + "\u2028\x01"})
	for _, at := range []func(int) time.Time{stamps, noStamps} {
		got := write(t, gate.NewRedactor(), evs, at)
		dec := json.NewDecoder(bytes.NewReader(got))
		var want bytes.Buffer
		for dec.More() {
			var e lkEvent
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("writer output is not JSON: %v", err)
			}
			b, err := json.MarshalIndent(&e, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want.Write(b)
			want.WriteByte('\n')
		}
		if !bytes.Equal(got, want.Bytes()) {
			gl, wl := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					t.Fatalf("line %d differs:\n got %q\nwant %q", i+1, gl[i], wl[i])
				}
			}
			t.Fatalf("lengths differ: %d vs %d lines", len(gl), len(wl))
		}
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"\`, "<a>&", "\x00\x1f\x7f", "\xff\xfe", "é😀", "\u2028\u2029", "a\tb\nc\rd\be\ff"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	evs := append(linkerdFixtureEvents(), readAll(t, mustRead(t, "plain.json"))...)
	evs = append(evs,
		gate.Event{Kind: gate.ResponseEnd, EOS: gate.EOS{Kind: gate.EOSGRPCStatus}},   // gRPC OK
		gate.Event{Kind: gate.ResponseEnd, EOS: gate.EOS{Kind: gate.EOSReset}},        // reset NO_ERROR
		gate.Event{Kind: gate.ResponseEnd, SinceRequestInit: -3 * time.Millisecond},   // nonsense, but kept
		gate.Event{Kind: gate.RequestInit, RouteMeta: map[string]string{}, Path: "é"}, // empty, not nil
		gate.Event{Kind: gate.RequestInit, Direction: gate.Inbound,
			Source: gate.Endpoint{Addr: netip.MustParseAddrPort("[::1]:1")}},
	)
	for name, at := range map[string]func(int) time.Time{"timestamps": stamps, "plain": noStamps} {
		t.Run(name, func(t *testing.T) {
			got := readAll(t, write(t, gate.NewRedactor(), evs, at))
			want := make([]gate.Event, len(evs))
			copy(want, evs)
			if name == "timestamps" {
				for i := range want {
					want[i].At = stamps(i).Sub(t0)
					want[i].HasTime = true
				}
			}
			diffEvents(t, got, want)
		})
	}
}

func TestWriterRedacts(t *testing.T) {
	ev := gate.Event{Kind: gate.RequestInit, Method: "GET", Path: "/", Headers: []gate.Header{
		{Name: "Authorization", Value: "Bearer s3cr3t-token-value"},
		{Name: "cookie", Value: "session=abcdef123"},
		{Name: "x-my-internal", Value: "internal-secret-xyz"},
		{Name: "accept", Value: "text/plain"},
	}}
	rsp := gate.Event{Kind: gate.ResponseInit, HTTPStatus: 200, Headers: []gate.Header{{Name: "set-cookie", Value: "id=42abc"}}}
	secrets := []string{"s3cr3t-token-value", "abcdef123", "internal-secret-xyz", "42abc"}

	out := string(write(t, gate.NewRedactor("X-My-Internal"), []gate.Event{ev, rsp}, stamps))
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %q written:\n%s", s, out)
		}
	}
	if n := strings.Count(out, `"valueStr": "`+gate.Redacted+`"`); n != 4 {
		t.Errorf("%d redacted values, want 4:\n%s", n, out)
	}
	if !strings.Contains(out, `"valueStr": "text/plain"`) {
		t.Errorf("ordinary header lost:\n%s", out)
	}
	// The caller's event is not modified.
	if ev.Headers[0].Value != "Bearer s3cr3t-token-value" {
		t.Errorf("writer modified the event: %v", ev.Headers)
	}
	// A nil redactor still hides the default list.
	out = string(write(t, nil, []gate.Event{ev}, stamps))
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "abcdef123") {
		t.Errorf("nil redactor leaked:\n%s", out)
	}
	// Only an explicitly disabled redactor writes secrets.
	r := gate.NewRedactor()
	r.Disabled = true
	if out := string(write(t, r, []gate.Event{ev}, stamps)); !strings.Contains(out, "s3cr3t-token-value") {
		t.Errorf("disabled redactor hid a value:\n%s", out)
	}
}
