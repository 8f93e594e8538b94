package sim

import (
	"encoding/binary"
	"net/netip"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// Field numbers of linkerd2.tap.TapEvent.
const (
	fieldSource          = 1
	fieldDestination     = 2
	fieldHTTP            = 3
	fieldDestinationMeta = 4
	fieldSourceMeta      = 5
	fieldProxyDirection  = 6
	fieldRouteMeta       = 7
)

var marshalDet = proto.MarshalOptions{Deterministic: true}

// encodeMeta is the encoded linkerd2.tap.TapEvent.EndpointMeta of a label
// set; label sets are fixed per pod, so this runs once per pod, not once
// per event (sorting map keys dominated the cost of a frame).
func encodeMeta(labels map[string]string) []byte {
	b, err := marshalDet.Marshal(&pb.TapEvent_EndpointMeta{Labels: labels})
	if err != nil {
		return nil
	}
	return b
}

// appendFrame appends the framed TapEvent for one event of a view: the
// same bytes (up to field order) as wire.AppendFrame(wire.FromEvent(ev))
// with RouteMeta present and empty, as Linkerd's tap server sends it.
func (v *view) appendFrame(dst []byte, kind gate.EventKind, headers bool) []byte {
	var ev gate.Event
	v.fill(kind, headers, &ev)
	httpMsg, err := marshalDet.Marshal(wire.FromEvent(&ev).GetHttp())
	if err != nil {
		return dst
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = appendTCP(dst, fieldSource, v.src.Addr)
	dst = appendTCP(dst, fieldDestination, v.dst.Addr)
	dst = protowire.AppendTag(dst, fieldHTTP, protowire.BytesType)
	dst = protowire.AppendBytes(dst, httpMsg)
	dst = protowire.AppendTag(dst, fieldDestinationMeta, protowire.BytesType)
	dst = protowire.AppendBytes(dst, v.dstMeta)
	dst = protowire.AppendTag(dst, fieldSourceMeta, protowire.BytesType)
	dst = protowire.AppendBytes(dst, v.srcMeta)
	dir := pb.TapEvent_INBOUND
	if v.dir == gate.Outbound {
		dir = pb.TapEvent_OUTBOUND
	}
	dst = protowire.AppendTag(dst, fieldProxyDirection, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(dir))
	dst = protowire.AppendTag(dst, fieldRouteMeta, protowire.BytesType)
	dst = protowire.AppendVarint(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// appendTCP encodes a linkerd2.common.net.TcpAddress field. The model
// only hands out IPv4 addresses.
func appendTCP(dst []byte, field protowire.Number, ap netip.AddrPort) []byte {
	var m []byte
	if a := ap.Addr(); a.Is4() {
		ip := a.As4()
		var ipMsg []byte
		ipMsg = protowire.AppendTag(ipMsg, 1, protowire.Fixed32Type)
		ipMsg = protowire.AppendFixed32(ipMsg, binary.BigEndian.Uint32(ip[:]))
		m = protowire.AppendTag(m, 1, protowire.BytesType)
		m = protowire.AppendBytes(m, ipMsg)
	}
	if ap.Port() != 0 {
		m = protowire.AppendTag(m, 2, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(ap.Port()))
	}
	dst = protowire.AppendTag(dst, field, protowire.BytesType)
	return protowire.AppendBytes(dst, m)
}
