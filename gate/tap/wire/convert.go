package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
)

// unmarshalOpts replaces (never merges into) the target message, so one
// pb.TapEvent can be reused for a whole stream without state leaking from one
// event into the next.
var unmarshalOpts = proto.UnmarshalOptions{Merge: false}

// DecodeEvent decodes one frame payload into ev, replacing its contents.
func DecodeEvent(b []byte, ev *pb.TapEvent) error {
	if err := unmarshalOpts.Unmarshal(b, ev); err != nil {
		return fmt.Errorf("decoding TapEvent (%d bytes): %w", len(b), err)
	}
	return nil
}

// ErrorHeader is the response header the tap server sets, on an HTTP 200
// response, when the body is a single ApiError frame instead of events.
const ErrorHeader = "linkerd-error"

// DecodeAPIError decodes the single frame of a response that carries a
// `linkerd-error` header: a linkerd2.viz.ApiError.
func DecodeAPIError(b []byte) (string, error) {
	var e pb.ApiError
	if err := proto.Unmarshal(b, &e); err != nil {
		return "", fmt.Errorf("decoding linkerd2.viz.ApiError (%d bytes): %w", len(b), err)
	}
	return e.GetError(), nil
}

// ToEvent converts a decoded TapEvent into out, overwriting every field
// (including At/HasTime, which the caller stamps afterwards). A TapEvent that
// holds no HTTP event leaves out.Kind zero; callers skip such events.
//
// out shares the label maps and strings of pe rather than copying them. That
// is safe with DecodeEvent, which allocates fresh maps for every event, but
// the maps must be treated as read-only.
func ToEvent(pe *pb.TapEvent, out *gate.Event) {
	*out = gate.Event{
		Source:      gate.Endpoint{Addr: addrPort(pe.GetSource()), Labels: pe.GetSourceMeta().GetLabels()},
		Destination: gate.Endpoint{Addr: addrPort(pe.GetDestination()), Labels: pe.GetDestinationMeta().GetLabels()},
		RouteMeta:   pe.GetRouteMeta().GetLabels(),
	}
	switch pe.GetProxyDirection() {
	case pb.TapEvent_INBOUND:
		out.Direction = gate.Inbound
	case pb.TapEvent_OUTBOUND:
		out.Direction = gate.Outbound
	}

	switch h := pe.GetHttp().GetEvent().(type) {
	case *pb.TapEvent_Http_RequestInit_:
		ri := h.RequestInit
		out.Kind = gate.RequestInit
		out.ID = streamID(ri.GetId())
		out.Method = methodString(ri.GetMethod())
		out.Scheme = schemeString(ri.GetScheme())
		out.Authority = ri.GetAuthority()
		out.Path = ri.GetPath()
		out.Headers = headers(ri.GetHeaders())
	case *pb.TapEvent_Http_ResponseInit_:
		rsp := h.ResponseInit
		out.Kind = gate.ResponseInit
		out.ID = streamID(rsp.GetId())
		out.SinceRequestInit = duration(rsp.GetSinceRequestInit())
		out.HTTPStatus = rsp.GetHttpStatus()
		out.Headers = headers(rsp.GetHeaders())
	case *pb.TapEvent_Http_ResponseEnd_:
		end := h.ResponseEnd
		out.Kind = gate.ResponseEnd
		out.ID = streamID(end.GetId())
		out.SinceRequestInit = duration(end.GetSinceRequestInit())
		out.SinceResponseInit = duration(end.GetSinceResponseInit())
		out.ResponseBytes = end.GetResponseBytes()
		switch e := end.GetEos().GetEnd().(type) {
		case *pb.Eos_GrpcStatusCode:
			out.EOS = gate.EOS{Kind: gate.EOSGRPCStatus, Code: e.GrpcStatusCode}
		case *pb.Eos_ResetErrorCode:
			out.EOS = gate.EOS{Kind: gate.EOSReset, Code: e.ResetErrorCode}
		}
		out.Trailers = headers(end.GetTrailers())
	}
}

func streamID(id *pb.TapEvent_Http_StreamId) gate.StreamID {
	return gate.StreamID{Base: id.GetBase(), Stream: id.GetStream()}
}

// duration converts without the allocation-free durationpb.AsDuration
// needing a non-nil receiver; an absent duration is zero.
func duration(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

// addrPort converts Linkerd's TcpAddress: IPv4 is one big-endian uint32, IPv6
// two big-endian uint64 halves. An absent address is the zero AddrPort.
func addrPort(a *pb.TcpAddress) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ipAddr(a.GetIp()), uint16(a.GetPort()))
}

func ipAddr(ip *pb.IPAddress) netip.Addr {
	switch v := ip.GetIp().(type) {
	case *pb.IPAddress_Ipv4:
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], v.Ipv4)
		return netip.AddrFrom4(b)
	case *pb.IPAddress_Ipv6:
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], v.Ipv6.GetFirst())
		binary.BigEndian.PutUint64(b[8:], v.Ipv6.GetLast())
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}

// methodString renders a registered method by its name (GET, POST, ...) and
// an unregistered one verbatim, as `linkerd viz tap -o json` does.
func methodString(m *pb.HttpMethod) string {
	switch t := m.GetType().(type) {
	case *pb.HttpMethod_Registered_:
		return t.Registered.String()
	case *pb.HttpMethod_Unregistered:
		return t.Unregistered
	}
	return ""
}

// schemeString renders HTTP / HTTPS for registered schemes, like the CLI.
func schemeString(s *pb.Scheme) string {
	switch t := s.GetType().(type) {
	case *pb.Scheme_Registered_:
		return t.Registered.String()
	case *pb.Scheme_Unregistered:
		return t.Unregistered
	}
	return ""
}

func headers(h *pb.Headers) []gate.Header {
	hs := h.GetHeaders()
	if len(hs) == 0 {
		return nil
	}
	out := make([]gate.Header, len(hs))
	for i, x := range hs {
		out[i].Name = x.GetName()
		switch v := x.GetValue().(type) {
		case *pb.Headers_Header_ValueStr:
			out[i].Value = v.ValueStr
		case *pb.Headers_Header_ValueBin:
			out[i].Value = string(v.ValueBin)
		}
	}
	return out
}

// FromEvent builds the TapEvent a tap server would have sent for ev. It is
// the inverse of ToEvent for the simulator, recordings and tests; At and
// HasTime have no wire representation and are dropped. The result shares
// ev's label maps; marshal it before changing them.
func FromEvent(ev *gate.Event) *pb.TapEvent {
	pe := &pb.TapEvent{
		Source:          tcpAddress(ev.Source.Addr),
		SourceMeta:      endpointMeta(ev.Source.Labels),
		Destination:     tcpAddress(ev.Destination.Addr),
		DestinationMeta: endpointMeta(ev.Destination.Labels),
	}
	if ev.RouteMeta != nil {
		pe.RouteMeta = &pb.TapEvent_RouteMeta{Labels: ev.RouteMeta}
	}
	switch ev.Direction {
	case gate.Inbound:
		pe.ProxyDirection = pb.TapEvent_INBOUND
	case gate.Outbound:
		pe.ProxyDirection = pb.TapEvent_OUTBOUND
	}

	id := &pb.TapEvent_Http_StreamId{Base: ev.ID.Base, Stream: ev.ID.Stream}
	var h pb.TapEvent_Http
	switch ev.Kind {
	case gate.RequestInit:
		h.Event = &pb.TapEvent_Http_RequestInit_{RequestInit: &pb.TapEvent_Http_RequestInit{
			Id:        id,
			Method:    httpMethod(ev.Method),
			Scheme:    scheme(ev.Scheme),
			Authority: ev.Authority,
			Path:      ev.Path,
			Headers:   pbHeaders(ev.Headers),
		}}
	case gate.ResponseInit:
		h.Event = &pb.TapEvent_Http_ResponseInit_{ResponseInit: &pb.TapEvent_Http_ResponseInit{
			Id:               id,
			SinceRequestInit: durationpb.New(ev.SinceRequestInit),
			HttpStatus:       ev.HTTPStatus,
			Headers:          pbHeaders(ev.Headers),
		}}
	case gate.ResponseEnd:
		end := &pb.TapEvent_Http_ResponseEnd{
			Id:                id,
			SinceRequestInit:  durationpb.New(ev.SinceRequestInit),
			SinceResponseInit: durationpb.New(ev.SinceResponseInit),
			ResponseBytes:     ev.ResponseBytes,
			Trailers:          pbHeaders(ev.Trailers),
		}
		switch ev.EOS.Kind {
		case gate.EOSGRPCStatus:
			end.Eos = &pb.Eos{End: &pb.Eos_GrpcStatusCode{GrpcStatusCode: ev.EOS.Code}}
		case gate.EOSReset:
			end.Eos = &pb.Eos{End: &pb.Eos_ResetErrorCode{ResetErrorCode: ev.EOS.Code}}
		}
		h.Event = &pb.TapEvent_Http_ResponseEnd_{ResponseEnd: end}
	default:
		return pe
	}
	pe.Event = &pb.TapEvent_Http_{Http: &h}
	return pe
}

func tcpAddress(ap netip.AddrPort) *pb.TcpAddress {
	a := ap.Addr()
	if !a.IsValid() && ap.Port() == 0 {
		return nil
	}
	t := &pb.TcpAddress{Port: uint32(ap.Port())}
	switch {
	case a.Is4():
		b := a.As4()
		t.Ip = &pb.IPAddress{Ip: &pb.IPAddress_Ipv4{Ipv4: binary.BigEndian.Uint32(b[:])}}
	case a.Is6():
		// IPv4-mapped addresses stay IPv6 so a round trip is exact.
		b := a.As16()
		t.Ip = &pb.IPAddress{Ip: &pb.IPAddress_Ipv6{Ipv6: &pb.IPv6{
			First: binary.BigEndian.Uint64(b[:8]),
			Last:  binary.BigEndian.Uint64(b[8:]),
		}}}
	}
	return t
}

func endpointMeta(labels map[string]string) *pb.TapEvent_EndpointMeta {
	if labels == nil {
		return nil
	}
	return &pb.TapEvent_EndpointMeta{Labels: labels}
}

// httpMethod registers the standard methods (case-sensitive, as in HTTP) and
// sends anything else as unregistered, like the proxy.
func httpMethod(m string) *pb.HttpMethod {
	if m == "" {
		return nil
	}
	if v, ok := pb.HttpMethod_Registered_value[m]; ok {
		return &pb.HttpMethod{Type: &pb.HttpMethod_Registered_{Registered: pb.HttpMethod_Registered(v)}}
	}
	return &pb.HttpMethod{Type: &pb.HttpMethod_Unregistered{Unregistered: m}}
}

// scheme registers http and https in any case (schemes are case-insensitive).
func scheme(s string) *pb.Scheme {
	switch {
	case s == "":
		return nil
	case strings.EqualFold(s, "http"):
		return &pb.Scheme{Type: &pb.Scheme_Registered_{Registered: pb.Scheme_HTTP}}
	case strings.EqualFold(s, "https"):
		return &pb.Scheme{Type: &pb.Scheme_Registered_{Registered: pb.Scheme_HTTPS}}
	}
	return &pb.Scheme{Type: &pb.Scheme_Unregistered{Unregistered: s}}
}

// pbHeaders sends UTF-8 values as value_str and anything else as value_bin,
// as the proxy does.
func pbHeaders(hs []gate.Header) *pb.Headers {
	if len(hs) == 0 {
		return nil
	}
	out := &pb.Headers{Headers: make([]*pb.Headers_Header, len(hs))}
	for i, h := range hs {
		x := &pb.Headers_Header{Name: h.Name}
		if utf8.ValidString(h.Value) {
			x.Value = &pb.Headers_Header_ValueStr{ValueStr: h.Value}
		} else {
			x.Value = &pb.Headers_Header_ValueBin{ValueBin: []byte(h.Value)}
		}
		out.Headers[i] = x
	}
	return out
}
