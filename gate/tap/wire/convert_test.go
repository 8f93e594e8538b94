package wire

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
)

func TestAddressConversion(t *testing.T) {
	tests := []struct {
		name string
		in   *pb.TcpAddress
		want string // netip.AddrPort.String(); "" for the zero AddrPort
	}{
		{"nil address", nil, ""},
		{"ipv4", &pb.TcpAddress{Ip: &pb.IPAddress{Ip: &pb.IPAddress_Ipv4{Ipv4: 0x0a000001}}, Port: 8080}, "10.0.0.1:8080"},
		{"ipv4 byte order", &pb.TcpAddress{Ip: &pb.IPAddress{Ip: &pb.IPAddress_Ipv4{Ipv4: 0xc0a80102}}, Port: 1}, "192.168.1.2:1"},
		{"ipv4 zero", &pb.TcpAddress{Ip: &pb.IPAddress{Ip: &pb.IPAddress_Ipv4{Ipv4: 0}}, Port: 0}, "0.0.0.0:0"},
		{"ipv4 broadcast", &pb.TcpAddress{Ip: &pb.IPAddress{Ip: &pb.IPAddress_Ipv4{Ipv4: 0xffffffff}}, Port: 65535}, "255.255.255.255:65535"},
		{"ipv6 halves", &pb.TcpAddress{Ip: &pb.IPAddress{Ip: &pb.IPAddress_Ipv6{Ipv6: &pb.IPv6{
			First: 0x20010db800000000, Last: 0x0000000000000001}}}, Port: 443}, "[2001:db8::1]:443"},
		{"ipv6 all nodes (Linkerd's test value)", &pb.TcpAddress{Ip: &pb.IPAddress{Ip: &pb.IPAddress_Ipv6{Ipv6: &pb.IPv6{
			First: 0xff01000000000000, Last: 1}}}, Port: 80}, "[ff01::1]:80"},
		{"ipv6 last half only", &pb.TcpAddress{Ip: &pb.IPAddress{Ip: &pb.IPAddress_Ipv6{Ipv6: &pb.IPv6{
			Last: 0x0123456789abcdef}}}, Port: 1}, "[::123:4567:89ab:cdef]:1"},
		{"ipv4-mapped ipv6 stays ipv6", &pb.TcpAddress{Ip: &pb.IPAddress{Ip: &pb.IPAddress_Ipv6{Ipv6: &pb.IPv6{
			Last: 0x0000ffff0a000001}}}, Port: 1}, "[::ffff:10.0.0.1]:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := addrPort(tc.in)
			if tc.want == "" {
				if got != (netip.AddrPort{}) {
					t.Fatalf("got %v, want zero AddrPort", got)
				}
			} else if got.String() != tc.want {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
			// And back: the same wire value.
			back := tcpAddress(got)
			if tc.in == nil {
				if back != nil {
					t.Errorf("zero AddrPort encoded as %v, want nil", back)
				}
				return
			}
			if !protoEqual(back, tc.in) {
				t.Errorf("round trip = %v, want %v", back, tc.in)
			}
		})
	}
}

func TestMethodAndScheme(t *testing.T) {
	methods := []struct {
		in   *pb.HttpMethod
		want string
	}{
		{nil, ""},
		{&pb.HttpMethod{}, ""},
		{&pb.HttpMethod{Type: &pb.HttpMethod_Registered_{Registered: pb.HttpMethod_GET}}, "GET"},
		{&pb.HttpMethod{Type: &pb.HttpMethod_Registered_{Registered: pb.HttpMethod_POST}}, "POST"},
		{&pb.HttpMethod{Type: &pb.HttpMethod_Registered_{Registered: pb.HttpMethod_TRACE}}, "TRACE"},
		{&pb.HttpMethod{Type: &pb.HttpMethod_Unregistered{Unregistered: "PROPFIND"}}, "PROPFIND"},
	}
	for _, tc := range methods {
		if got := methodString(tc.in); got != tc.want {
			t.Errorf("methodString(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.want != "" && !protoEqual(httpMethod(tc.want), tc.in) {
			t.Errorf("httpMethod(%q) = %v, want %v", tc.want, httpMethod(tc.want), tc.in)
		}
	}
	// Methods are case-sensitive: "get" is not GET.
	if m := httpMethod("get"); m.GetUnregistered() != "get" {
		t.Errorf(`httpMethod("get") = %v, want unregistered`, m)
	}
	schemes := []struct {
		in   *pb.Scheme
		want string
	}{
		{nil, ""},
		{&pb.Scheme{Type: &pb.Scheme_Registered_{Registered: pb.Scheme_HTTP}}, "HTTP"},
		{&pb.Scheme{Type: &pb.Scheme_Registered_{Registered: pb.Scheme_HTTPS}}, "HTTPS"},
		{&pb.Scheme{Type: &pb.Scheme_Unregistered{Unregistered: "ws"}}, "ws"},
	}
	for _, tc := range schemes {
		if got := schemeString(tc.in); got != tc.want {
			t.Errorf("schemeString(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.want != "" && !protoEqual(scheme(tc.want), tc.in) {
			t.Errorf("scheme(%q) = %v, want %v", tc.want, scheme(tc.want), tc.in)
		}
	}
	if !protoEqual(scheme("https"), schemes[2].in) {
		t.Error(`scheme("https") is not registered HTTPS`)
	}
}

// roundTripEvents covers every field of gate.Event that has a wire form.
func roundTripEvents() []gate.Event {
	evs := []gate.Event{
		{},
		{Kind: gate.RequestInit},
		{Kind: gate.RequestInit, Direction: gate.Outbound, ID: gate.StreamID{Base: 1<<32 - 1, Stream: 1<<64 - 1},
			Source:      gate.Endpoint{Addr: netip.MustParseAddrPort("[2001:db8::5]:50000"), Labels: map[string]string{"pod": "a", "tls": "true"}},
			Destination: gate.Endpoint{Addr: netip.MustParseAddrPort("10.1.2.3:9090"), Labels: map[string]string{}},
			RouteMeta:   map[string]string{"rt_route": "GET /books/{id}"},
			Method:      "PROPFIND", Scheme: "ws", Authority: "books:7000", Path: "/books/1?x=ü",
			Headers: []gate.Header{{Name: "a", Value: "1"}, {Name: "bin", Value: "\xff\xfe"}, {Name: "empty", Value: ""}}},
		{Kind: gate.ResponseInit, Direction: gate.Inbound, HTTPStatus: 429, SinceRequestInit: 1234567 * time.Nanosecond},
		{Kind: gate.ResponseEnd, SinceRequestInit: -time.Second, SinceResponseInit: 90 * time.Minute,
			ResponseBytes: 1 << 40, EOS: gate.EOS{Kind: gate.EOSReset, Code: 8},
			Trailers: []gate.Header{{Name: "grpc-status", Value: "0"}}},
		{Kind: gate.ResponseEnd, EOS: gate.EOS{Kind: gate.EOSGRPCStatus, Code: 0}},
		{Kind: gate.ResponseEnd, EOS: gate.EOS{Kind: gate.EOSGRPCStatus, Code: 16}},
		{Kind: gate.RequestInit, Source: gate.Endpoint{Addr: netip.AddrPortFrom(netip.Addr{}, 80)}},
	}
	for _, ev := range realisticEvents() {
		evs = append(evs, *ev)
	}
	for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "HEAD", "TRACE"} {
		evs = append(evs, gate.Event{Kind: gate.RequestInit, Method: m, Scheme: "HTTPS"})
	}
	return evs
}

// normalized is what ToEvent can give back for ev: an empty label map has no
// wire form distinct from no map.
func normalized(ev gate.Event) gate.Event {
	if len(ev.Destination.Labels) == 0 {
		ev.Destination.Labels = nil
	}
	if len(ev.Source.Labels) == 0 {
		ev.Source.Labels = nil
	}
	if len(ev.RouteMeta) == 0 {
		ev.RouteMeta = nil
	}
	return ev
}

func TestEventRoundTrip(t *testing.T) {
	for i, ev := range roundTripEvents() {
		frame, err := AppendFrame(nil, FromEvent(&ev))
		if err != nil {
			t.Fatal(err)
		}
		var pe pb.TapEvent
		if err := DecodeEvent(frame[4:], &pe); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var got gate.Event
		got.At, got.HasTime = time.Hour, true // must be overwritten
		ToEvent(&pe, &got)
		if want := normalized(ev); !reflect.DeepEqual(got, want) {
			t.Errorf("event %d round trip:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func TestToEventOverwrites(t *testing.T) {
	out := gate.Event{Kind: gate.ResponseEnd, HTTPStatus: 500, Path: "/old", Headers: []gate.Header{{Name: "x"}}}
	ToEvent(&pb.TapEvent{}, &out)
	if !reflect.DeepEqual(out, gate.Event{}) {
		t.Errorf("empty TapEvent left %+v", out)
	}
}

func TestDecodeAPIError(t *testing.T) {
	msg, err := DecodeAPIError(str(1, "no pods to tap for type=deployment name=web"))
	if err != nil || msg != "no pods to tap for type=deployment name=web" {
		t.Errorf("DecodeAPIError = %q, %v", msg, err)
	}
	if _, err := DecodeAPIError([]byte{0x0a, 0x05, 'a'}); err == nil || !strings.Contains(err.Error(), "ApiError") {
		t.Errorf("truncated ApiError: err = %v", err)
	}
}

func TestDecodeEventError(t *testing.T) {
	var pe pb.TapEvent
	err := DecodeEvent([]byte{0x0a, 0x10, 0x01}, &pe)
	if err == nil || !strings.Contains(err.Error(), "decoding TapEvent (3 bytes)") {
		t.Errorf("err = %v", err)
	}
}

// Reusing one pb.TapEvent must not leak fields from the previous event.
func TestDecodeEventReplaces(t *testing.T) {
	var pe pb.TapEvent
	first, _ := AppendFrame(nil, FromEvent(realisticEvents()[0]))
	if err := DecodeEvent(first[4:], &pe); err != nil {
		t.Fatal(err)
	}
	if err := DecodeEvent(nil, &pe); err != nil {
		t.Fatal(err)
	}
	var ev gate.Event
	ToEvent(&pe, &ev)
	if !reflect.DeepEqual(ev, gate.Event{}) {
		t.Errorf("empty frame after a full one decoded as %+v", ev)
	}
}
