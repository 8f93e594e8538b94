package wire

import (
	"bytes"
	"math"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
)

// These tests pin the field numbers and wire types of Linkerd's public protos
// (viz_tap.proto, viz.proto, common/net.proto) by encoding messages by hand,
// independently of the generated code.

// msg appends a length-delimited field holding the concatenated parts.
func msg(num protowire.Number, parts ...[]byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, bytes.Join(parts, nil))
}

func str(num protowire.Number, s string) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func varint(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func fixed32(num protowire.Number, v uint32) []byte {
	b := protowire.AppendTag(nil, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

func fixed64(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

type wireCase struct {
	name string
	wire []byte
	msg  proto.Message
}

func wireCases() []wireCase {
	return []wireCase{
		{
			// TapEvent{source: 10.0.0.1:8080, http: request_init{id {7, 9}, GET, /x}, INBOUND}
			name: "TapEvent request_init ipv4",
			// protobuf-go (the tap server's too) writes oneof fields after the
			// others, so http (3) comes last.
			wire: cat(
				msg(1, // source TcpAddress
					msg(1, fixed32(1, 0x0a000001)), // ip.ipv4 (big-endian number)
					varint(2, 8080)),               // port
				varint(6, 1), // proxy_direction INBOUND
				msg(3, // http
					msg(1, // request_init
						msg(1, varint(1, 7), varint(2, 9)), // id {base, stream}
						msg(2, varint(1, 0)),               // method.registered = GET (0, but set: oneof)
						str(5, "/x"))),                     // path
			),
			msg: &pb.TapEvent{
				Source: &pb.TcpAddress{
					Ip:   &pb.IPAddress{Ip: &pb.IPAddress_Ipv4{Ipv4: 0x0a000001}},
					Port: 8080,
				},
				ProxyDirection: pb.TapEvent_INBOUND,
				Event: &pb.TapEvent_Http_{Http: &pb.TapEvent_Http{
					Event: &pb.TapEvent_Http_RequestInit_{RequestInit: &pb.TapEvent_Http_RequestInit{
						Id:     &pb.TapEvent_Http_StreamId{Base: 7, Stream: 9},
						Method: &pb.HttpMethod{Type: &pb.HttpMethod_Registered_{Registered: pb.HttpMethod_GET}},
						Path:   "/x",
					}},
				}},
			},
		},
		{
			name: "TapEvent request_init every field",
			wire: cat(
				msg(2, msg(1, msg(2, fixed64(1, 0xfd00000000000000), fixed64(2, 1))), varint(2, 443)),
				msg(4, msg(1, str(1, "pod"), str(2, "web-1"))),      // destination_meta
				msg(5, msg(1, str(1, "pod"), str(2, "vote-bot-1"))), // source_meta
				varint(6, 2), // OUTBOUND
				msg(7, msg(1, str(1, "route"), str(2, "GET /api"))), // route_meta
				msg(3, msg(1,
					msg(1, varint(1, 1), varint(2, 2)),
					msg(2, str(2, "PURGE")), // method.unregistered
					msg(3, varint(1, 1)),    // scheme.registered = HTTPS
					str(4, "web.emojivoto:80"),
					str(5, "/api/vote"),
					msg(6, // headers
						msg(1, str(1, "user-agent"), str(2, "curl/8")), // value_str
						msg(1, str(1, "x-bin"), str(3, "\xff\x00"))))), // value_bin
			),
			msg: &pb.TapEvent{
				Destination: &pb.TcpAddress{
					Ip:   &pb.IPAddress{Ip: &pb.IPAddress_Ipv6{Ipv6: &pb.IPv6{First: 0xfd00000000000000, Last: 1}}},
					Port: 443,
				},
				DestinationMeta: &pb.TapEvent_EndpointMeta{Labels: map[string]string{"pod": "web-1"}},
				SourceMeta:      &pb.TapEvent_EndpointMeta{Labels: map[string]string{"pod": "vote-bot-1"}},
				ProxyDirection:  pb.TapEvent_OUTBOUND,
				RouteMeta:       &pb.TapEvent_RouteMeta{Labels: map[string]string{"route": "GET /api"}},
				Event: &pb.TapEvent_Http_{Http: &pb.TapEvent_Http{
					Event: &pb.TapEvent_Http_RequestInit_{RequestInit: &pb.TapEvent_Http_RequestInit{
						Id:        &pb.TapEvent_Http_StreamId{Base: 1, Stream: 2},
						Method:    &pb.HttpMethod{Type: &pb.HttpMethod_Unregistered{Unregistered: "PURGE"}},
						Scheme:    &pb.Scheme{Type: &pb.Scheme_Registered_{Registered: pb.Scheme_HTTPS}},
						Authority: "web.emojivoto:80",
						Path:      "/api/vote",
						Headers: &pb.Headers{Headers: []*pb.Headers_Header{
							{Name: "user-agent", Value: &pb.Headers_Header_ValueStr{ValueStr: "curl/8"}},
							{Name: "x-bin", Value: &pb.Headers_Header_ValueBin{ValueBin: []byte{0xff, 0}}},
						}},
					}},
				}},
			},
		},
		{
			name: "TapEvent response_init",
			wire: msg(3, msg(2,
				msg(1, varint(1, 7), varint(2, 9)),
				msg(2, varint(1, 1), varint(2, 500_000_000)), // since_request_init 1.5s
				varint(3, 503), // http_status
				msg(4, msg(1, str(1, "content-type"), str(2, "text/plain"))))),
			msg: &pb.TapEvent{Event: &pb.TapEvent_Http_{Http: &pb.TapEvent_Http{
				Event: &pb.TapEvent_Http_ResponseInit_{ResponseInit: &pb.TapEvent_Http_ResponseInit{
					Id:               &pb.TapEvent_Http_StreamId{Base: 7, Stream: 9},
					SinceRequestInit: durpb(1500 * time.Millisecond),
					HttpStatus:       503,
					Headers: &pb.Headers{Headers: []*pb.Headers_Header{
						{Name: "content-type", Value: &pb.Headers_Header_ValueStr{ValueStr: "text/plain"}},
					}},
				}},
			}}},
		},
		{
			name: "TapEvent response_end grpc status",
			wire: msg(3, msg(3,
				msg(1, varint(1, 7), varint(2, 9)),
				msg(2, varint(2, 2_000_000)),                          // since_request_init 2ms
				msg(3, varint(2, 1_000_000)),                          // since_response_init 1ms
				varint(4, 1234),                                       // response_bytes
				msg(5, varint(1, 14)),                                 // eos.grpc_status_code UNAVAILABLE
				msg(6, msg(1, str(1, "grpc-status"), str(2, "14"))))), // trailers
			msg: &pb.TapEvent{Event: &pb.TapEvent_Http_{Http: &pb.TapEvent_Http{
				Event: &pb.TapEvent_Http_ResponseEnd_{ResponseEnd: &pb.TapEvent_Http_ResponseEnd{
					Id:                &pb.TapEvent_Http_StreamId{Base: 7, Stream: 9},
					SinceRequestInit:  durpb(2 * time.Millisecond),
					SinceResponseInit: durpb(time.Millisecond),
					ResponseBytes:     1234,
					Eos:               &pb.Eos{End: &pb.Eos_GrpcStatusCode{GrpcStatusCode: 14}},
					Trailers: &pb.Headers{Headers: []*pb.Headers_Header{
						{Name: "grpc-status", Value: &pb.Headers_Header_ValueStr{ValueStr: "14"}},
					}},
				}},
			}}},
		},
		{
			name: "TapEvent response_end reset",
			wire: msg(3, msg(3, msg(5, varint(2, 2)))), // eos.reset_error_code INTERNAL_ERROR
			msg: &pb.TapEvent{Event: &pb.TapEvent_Http_{Http: &pb.TapEvent_Http{
				Event: &pb.TapEvent_Http_ResponseEnd_{ResponseEnd: &pb.TapEvent_Http_ResponseEnd{
					Eos: &pb.Eos{End: &pb.Eos_ResetErrorCode{ResetErrorCode: 2}},
				}},
			}}},
		},
		{
			name: "ApiError",
			wire: str(1, "no pods to tap for type=deployment name=web"),
			msg:  &pb.ApiError{Error: "no pods to tap for type=deployment name=web"},
		},
		{
			// What BuildRequest sends for deploy/web -n emojivoto --to deploy/voting --max-rps 5.
			name: "TapByResourceRequest",
			wire: cat(
				msg(1, msg(1, str(1, "emojivoto"), str(2, "deployment"), str(3, "web"))), // target.resource
				msg(2, msg(1, msg(1, // match.all.matches[0]
					msg(4, msg(1, str(1, "emojivoto"), str(2, "deployment"), str(3, "voting")))))), // destinations
				fixed32(3, math.Float32bits(5)), // maxRps (float)
				msg(4, msg(1, msg(1))),          // extract.http.headers {}
			),
			msg: mustBuild(gate.Target{
				Resource: gate.ResourceRef{Type: "deployment", Name: "web", Namespace: "emojivoto"},
				To:       gate.ResourceRef{Type: "deployment", Name: "voting"},
				MaxRPS:   5,
			}, ""),
		},
		{
			name: "TapByResourceRequest http matches and label selector",
			wire: cat(
				msg(1, msg(1, str(2, "namespace"), str(3, "emojivoto")), str(2, "app=web")),
				msg(2, msg(1,
					msg(1, msg(5, str(1, "https"))),   // http.scheme
					msg(1, msg(5, str(2, "POST"))),    // http.method
					msg(1, msg(5, str(3, "web:80"))),  // http.authority
					msg(1, msg(5, str(4, "/api/"))))), // http.path
				msg(4, msg(1, msg(1))),
			),
			msg: mustBuild(gate.Target{
				Resource:      gate.ResourceRef{Type: "namespace", Name: "emojivoto"},
				LabelSelector: "app=web",
				Match:         gate.HTTPMatch{Scheme: "https", Method: "POST", Authority: "web:80", PathPrefix: "/api/"},
			}, "ignored"),
		},
		{
			// Seq with no matches: an empty `all`, which must still be sent.
			name: "TapByResourceRequest empty all",
			wire: cat(
				msg(1, msg(1, str(1, "prod"), str(2, "pod"), str(3, "web-0"))),
				msg(2, msg(1)),
				msg(4, msg(1, msg(1))),
			),
			msg: mustBuild(gate.Target{Resource: gate.ResourceRef{Type: "po", Name: "web-0"}}, "prod"),
		},
	}
}

func durpb(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func mustBuild(t gate.Target, ns string) *pb.TapByResourceRequest {
	r, err := BuildRequest(t, ns)
	if err != nil {
		panic(err)
	}
	return r
}

func TestWireFormatMatchesLinkerd(t *testing.T) {
	for _, tc := range wireCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.msg.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(tc.wire, got); err != nil {
				t.Fatalf("unmarshal hand-encoded bytes: %v", err)
			}
			if !proto.Equal(tc.msg, got) {
				t.Errorf("decoded hand-encoded bytes:\n got %s\nwant %s", protojson.Format(got), protojson.Format(tc.msg))
			}
			if len(protoUnknown(got)) != 0 {
				t.Errorf("decoding left unknown fields: a field number is wrong")
			}
			enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, tc.wire) {
				t.Errorf("marshal = %x\nwant       %x", enc, tc.wire)
			}
		})
	}
}

// protoUnknown collects unknown fields anywhere in m.
func protoUnknown(m proto.Message) []byte {
	var out []byte
	var walk func(protoreflect.Message)
	walk = func(r protoreflect.Message) {
		out = append(out, r.GetUnknown()...)
		r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsMap():
				if fd.MapValue().Message() != nil {
					v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
						walk(mv.Message())
						return true
					})
				}
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message())
				}
			case fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
	return out
}

func TestWireToEvent(t *testing.T) {
	// The first wire case, converted, is the event the brief describes.
	var pe pb.TapEvent
	if err := DecodeEvent(wireCases()[0].wire, &pe); err != nil {
		t.Fatal(err)
	}
	var ev gate.Event
	ToEvent(&pe, &ev)
	want := gate.Event{
		Kind:      gate.RequestInit,
		Direction: gate.Inbound,
		ID:        gate.StreamID{Base: 7, Stream: 9},
		Source:    gate.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.1:8080")},
		Method:    "GET",
		Path:      "/x",
	}
	if !reflect.DeepEqual(want, ev) {
		t.Errorf("ToEvent:\n got %+v\nwant %+v", ev, want)
	}
}

func protoEqual(a, b proto.Message) bool { return proto.Equal(a, b) }
