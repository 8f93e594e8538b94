package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/internal/intern"
	"github.com/tapgate/tapgate/gate/tap/pb"
)

// Decoder reads a tap response stream and converts each frame straight into
// a gate.Event. It gives the same result as DecodeEvent followed by ToEvent
// (a differential fuzz test holds it to that) but skips the intermediate
// protobuf objects: endpoint label sets, which repeat on every event of a
// pod, are decoded once and shared, and short strings are interned. Anything
// unusual (duplicated or mistyped fields, invalid UTF-8, malformed varints)
// falls back to the generated protobuf code, which also produces the error.
//
// Label maps in the events it returns are shared between events and must be
// treated as read-only.
type Decoder struct {
	// SkipRequestHeaders leaves RequestInit events' Headers nil: only a
	// recording uses request headers, and decoding them (unique values such
	// as x-request-id included) is a tenth of a live gate's CPU. Response
	// headers and trailers, which carry grpc-status, are always decoded.
	SkipRequestHeaders bool

	fr        *FrameReader
	pe        pb.TapEvent
	labels    map[string]map[string]string // by sorted entries
	raw       map[string]map[string]string // by encoded bytes
	strs      map[string]string
	hdrSlots  [256]recentHeader
	admit     intern.Recent // admits a value to strs on its second sighting
	recent    [64]recentLabels
	kvs       []kv
	key       []byte
	fallbacks int
}

type kv struct{ k, v []byte }

// recentHeader is a header entry decoded recently, by its encoded bytes.
type recentHeader struct {
	raw []byte
	h   gate.Header
	ok  bool
}

// recentLabels is a label set decoded recently, by its encoded bytes.
type recentLabels struct {
	raw []byte
	m   map[string]string
}

// Bounds on the caches: enough for every peer of a large deployment, small
// enough that a stream of unique values cannot grow memory. A full cache is
// dropped and rebuilt, so it adapts to whatever currently repeats.
const (
	maxLabelSets  = 4096
	maxInterned   = 8192
	maxInternSize = 128
	maxRecentSize = 2048 // bytes of one encoded label set in d.recent
)

// NewDecoder returns a Decoder reading frames from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{
		fr:     NewFrameReader(r),
		labels: make(map[string]map[string]string),
		raw:    make(map[string]map[string]string),
		strs:   make(map[string]string),
		admit:  intern.NewRecent(),
	}
}

// Frames gives access to the underlying FrameReader, e.g. to set
// MaxFrameSize or read the byte offset.
func (d *Decoder) Frames() *FrameReader { return d.fr }

// Next reads and decodes the next event into out, overwriting it. It
// returns io.EOF at a clean end of stream.
func (d *Decoder) Next(out *gate.Event) error {
	start := d.fr.Offset()
	b, err := d.fr.Next()
	if err != nil {
		return err
	}
	if err := d.Decode(b, out); err != nil {
		return fmt.Errorf("frame at byte offset %d: %w", start, err)
	}
	return nil
}

// Decode converts one frame payload into out, overwriting it.
func (d *Decoder) Decode(b []byte, out *gate.Event) error {
	if d.fast(b, out) {
		return nil
	}
	d.fallbacks++
	if err := DecodeEvent(b, &d.pe); err != nil {
		return err
	}
	ToEvent(&d.pe, out)
	if d.SkipRequestHeaders && out.Kind == gate.RequestInit {
		out.Headers = nil
	}
	return nil
}

// fast decodes the canonical encoding the tap server produces. It reports
// false, leaving out in an unspecified state, when the input needs the
// general decoder.
func (d *Decoder) fast(b []byte, out *gate.Event) bool {
	*out = gate.Event{}
	var seen uint32
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return false
		}
		switch f.num {
		case 1, 2: // source, destination
			if !f.single(&seen, protowire.BytesType) {
				return false
			}
			ap, ok := tcpAddr(f.b)
			if !ok {
				return false
			}
			if f.num == 1 {
				out.Source.Addr = ap
			} else {
				out.Destination.Addr = ap
			}
		case 3: // http
			if !f.single(&seen, protowire.BytesType) || !d.http(f.b, out) {
				return false
			}
		case 4, 5, 7: // destination_meta, source_meta, route_meta
			if !f.single(&seen, protowire.BytesType) {
				return false
			}
			m, ok := d.labelSet(f.b)
			if !ok {
				return false
			}
			switch f.num {
			case 4:
				out.Destination.Labels = m
			case 5:
				out.Source.Labels = m
			default:
				out.RouteMeta = m
			}
		case 6: // proxy_direction
			if !f.single(&seen, protowire.VarintType) {
				return false
			}
			switch pb.TapEvent_ProxyDirection(int32(f.x)) {
			case pb.TapEvent_INBOUND:
				out.Direction = gate.Inbound
			case pb.TapEvent_OUTBOUND:
				out.Direction = gate.Outbound
			}
		}
	}
	return true
}

// wireField is one decoded field: b for length-delimited payloads, x for
// varint and fixed values.
type wireField struct {
	num protowire.Number
	typ protowire.Type
	b   []byte
	x   uint64
}

// next consumes one field from *b. Groups are left to the general decoder.
// Every field of a tap event has a one-byte tag; that case is decoded
// inline, with the common one-byte lengths and values first.
func next(b *[]byte) (wireField, bool) {
	p := *b
	if len(p) >= 2 && p[0] < 0x80 && p[0] >= 8 {
		num, typ := protowire.Number(p[0]>>3), protowire.Type(p[0]&7)
		switch typ {
		case protowire.BytesType:
			n, m := uint64(p[1]), 1
			if n >= 0x80 {
				n, m = protowire.ConsumeVarint(p[1:])
				if m < 0 {
					return wireField{}, false
				}
			}
			if uint64(len(p)-1-m) < n {
				return wireField{}, false
			}
			end := 1 + m + int(n)
			*b = p[end:]
			return wireField{num: num, typ: typ, b: p[1+m : end]}, true
		case protowire.VarintType:
			if p[1] < 0x80 {
				*b = p[2:]
				return wireField{num: num, typ: typ, x: uint64(p[1])}, true
			}
			x, m := protowire.ConsumeVarint(p[1:])
			if m < 0 {
				return wireField{}, false
			}
			*b = p[1+m:]
			return wireField{num: num, typ: typ, x: x}, true
		case protowire.Fixed32Type:
			if len(p) < 5 {
				return wireField{}, false
			}
			*b = p[5:]
			return wireField{num: num, typ: typ, x: uint64(binary.LittleEndian.Uint32(p[1:]))}, true
		}
	}
	return nextSlow(b)
}

func nextSlow(b *[]byte) (wireField, bool) {
	num, typ, n := protowire.ConsumeTag(*b)
	if n < 0 || !num.IsValid() {
		return wireField{}, false
	}
	p := (*b)[n:]
	f := wireField{num: num, typ: typ}
	switch typ {
	case protowire.BytesType:
		f.b, n = protowire.ConsumeBytes(p)
	case protowire.VarintType:
		f.x, n = protowire.ConsumeVarint(p)
	case protowire.Fixed32Type:
		var x uint32
		x, n = protowire.ConsumeFixed32(p)
		f.x = uint64(x)
	case protowire.Fixed64Type:
		f.x, n = protowire.ConsumeFixed64(p)
	default:
		return wireField{}, false
	}
	if n < 0 {
		return wireField{}, false
	}
	*b = p[n:]
	return f, true
}

// single checks a known singular field: expected wire type (protobuf treats
// a mismatch as an unknown field) and first occurrence (a repeat means
// merging, which the general decoder does). Members of one oneof share a
// bit in seen via oneofBit, so a second member also falls back.
func (f wireField) single(seen *uint32, typ protowire.Type) bool {
	return f.typ == typ && first(seen, uint32(1)<<(f.num&31))
}

// oneof is single for a member of a oneof: all members share bit 0.
func (f wireField) oneof(seen *uint32, typ protowire.Type) bool {
	return f.typ == typ && first(seen, 1)
}

func first(seen *uint32, bit uint32) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

func tcpAddr(b []byte) (netip.AddrPort, bool) {
	// The canonical IPv4 encoding, {ip: {ipv4: fixed32}, port: varint},
	// is nearly every address a tap server sends.
	if len(b) >= 7 && b[0] == 0x0a && b[1] == 5 && b[2] == 0x0d {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b[3:]))
		rest := b[7:]
		if len(rest) == 0 {
			return netip.AddrPortFrom(netip.AddrFrom4(a), 0), true
		}
		if rest[0] == 0x10 {
			if port, n := protowire.ConsumeVarint(rest[1:]); n == len(rest)-1 {
				return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(uint32(port))), true
			}
		}
	}
	var seen uint32
	var ip netip.Addr
	var port uint32
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return netip.AddrPort{}, false
		}
		switch f.num {
		case 1:
			if !f.single(&seen, protowire.BytesType) {
				return netip.AddrPort{}, false
			}
			if ip, ok = ipAddress(f.b); !ok {
				return netip.AddrPort{}, false
			}
		case 2:
			if !f.single(&seen, protowire.VarintType) {
				return netip.AddrPort{}, false
			}
			port = uint32(f.x)
		}
	}
	return netip.AddrPortFrom(ip, uint16(port)), true
}

func ipAddress(b []byte) (netip.Addr, bool) {
	var seen uint32
	var ip netip.Addr
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return netip.Addr{}, false
		}
		switch f.num {
		case 1:
			if !f.oneof(&seen, protowire.Fixed32Type) {
				return netip.Addr{}, false
			}
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], uint32(f.x))
			ip = netip.AddrFrom4(a)
		case 2:
			if !f.oneof(&seen, protowire.BytesType) {
				return netip.Addr{}, false
			}
			var a [16]byte
			var s6 uint32
			for v := f.b; len(v) > 0; {
				g, ok := next(&v)
				if !ok {
					return netip.Addr{}, false
				}
				if g.num == 1 || g.num == 2 {
					if !g.single(&s6, protowire.Fixed64Type) {
						return netip.Addr{}, false
					}
					binary.BigEndian.PutUint64(a[8*(g.num-1):], g.x)
				}
			}
			ip = netip.AddrFrom16(a)
		}
	}
	return ip, true
}

func (d *Decoder) http(b []byte, out *gate.Event) bool {
	var seen uint32
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return false
		}
		switch f.num {
		case 1:
			out.Kind = gate.RequestInit
			ok = f.oneof(&seen, protowire.BytesType) && d.requestInit(f.b, out)
		case 2:
			out.Kind = gate.ResponseInit
			ok = f.oneof(&seen, protowire.BytesType) && d.responseInit(f.b, out)
		case 3:
			out.Kind = gate.ResponseEnd
			ok = f.oneof(&seen, protowire.BytesType) && d.responseEnd(f.b, out)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (d *Decoder) requestInit(b []byte, out *gate.Event) bool {
	var seen uint32
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return false
		}
		switch f.num {
		case 1:
			ok = f.single(&seen, protowire.BytesType) && streamIDInto(f.b, &out.ID)
		case 2:
			ok = f.single(&seen, protowire.BytesType)
			if ok {
				out.Method, ok = d.registered(f.b, true)
			}
		case 3:
			ok = f.single(&seen, protowire.BytesType)
			if ok {
				out.Scheme, ok = d.registered(f.b, false)
			}
		case 4:
			ok = f.single(&seen, protowire.BytesType) && utf8.Valid(f.b)
			out.Authority = d.intern(f.b)
		case 5:
			ok = f.single(&seen, protowire.BytesType) && utf8.Valid(f.b)
			out.Path = string(f.b)
		case 6:
			ok = f.single(&seen, protowire.BytesType)
			if ok && !d.SkipRequestHeaders {
				out.Headers, ok = d.headers(f.b)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (d *Decoder) responseInit(b []byte, out *gate.Event) bool {
	var seen uint32
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return false
		}
		switch f.num {
		case 1:
			ok = f.single(&seen, protowire.BytesType) && streamIDInto(f.b, &out.ID)
		case 2:
			ok = f.single(&seen, protowire.BytesType)
			if ok {
				out.SinceRequestInit, ok = durationOf(f.b)
			}
		case 3:
			ok = f.single(&seen, protowire.VarintType)
			out.HTTPStatus = uint32(f.x)
		case 4:
			ok = f.single(&seen, protowire.BytesType)
			if ok {
				out.Headers, ok = d.headers(f.b)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (d *Decoder) responseEnd(b []byte, out *gate.Event) bool {
	var seen uint32
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return false
		}
		switch f.num {
		case 1:
			ok = f.single(&seen, protowire.BytesType) && streamIDInto(f.b, &out.ID)
		case 2:
			ok = f.single(&seen, protowire.BytesType)
			if ok {
				out.SinceRequestInit, ok = durationOf(f.b)
			}
		case 3:
			ok = f.single(&seen, protowire.BytesType)
			if ok {
				out.SinceResponseInit, ok = durationOf(f.b)
			}
		case 4:
			ok = f.single(&seen, protowire.VarintType)
			out.ResponseBytes = f.x
		case 5:
			ok = f.single(&seen, protowire.BytesType)
			if ok {
				out.EOS, ok = eos(f.b)
			}
		case 6:
			ok = f.single(&seen, protowire.BytesType)
			if ok {
				out.Trailers, ok = d.headers(f.b)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func streamIDInto(b []byte, id *gate.StreamID) bool {
	var seen uint32
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return false
		}
		switch f.num {
		case 1:
			if !f.single(&seen, protowire.VarintType) {
				return false
			}
			id.Base = uint32(f.x)
		case 2:
			if !f.single(&seen, protowire.VarintType) {
				return false
			}
			id.Stream = f.x
		}
	}
	return true
}

func durationOf(b []byte) (time.Duration, bool) {
	var seen uint32
	var pd durationpb.Duration
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return 0, false
		}
		switch f.num {
		case 1:
			if !f.single(&seen, protowire.VarintType) {
				return 0, false
			}
			pd.Seconds = int64(f.x)
		case 2:
			if !f.single(&seen, protowire.VarintType) {
				return 0, false
			}
			pd.Nanos = int32(f.x)
		}
	}
	// Same saturation rules as the generated path.
	return pd.AsDuration(), true
}

func eos(b []byte) (gate.EOS, bool) {
	var seen uint32
	var e gate.EOS
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return gate.EOS{}, false
		}
		switch f.num {
		case 1, 2:
			if !f.oneof(&seen, protowire.VarintType) {
				return gate.EOS{}, false
			}
			e = gate.EOS{Kind: gate.EOSGRPCStatus, Code: uint32(f.x)}
			if f.num == 2 {
				e.Kind = gate.EOSReset
			}
		}
	}
	return e, true
}

// methodNames avoids the reflective enum String() for the common methods.
var methodNames = func() []string {
	names := make([]string, len(pb.HttpMethod_Registered_name))
	for i := range names {
		names[i] = pb.HttpMethod_Registered(i).String()
	}
	return names
}()

// registered decodes HttpMethod (method true) or Scheme: a registered enum
// rendered by name, or an unregistered string.
func (d *Decoder) registered(b []byte, method bool) (string, bool) {
	var seen uint32
	var s string
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return "", false
		}
		switch f.num {
		case 1:
			if !f.oneof(&seen, protowire.VarintType) {
				return "", false
			}
			if method && f.x < uint64(len(methodNames)) {
				s = methodNames[f.x]
			} else if method {
				s = pb.HttpMethod_Registered(int32(f.x)).String()
			} else {
				s = pb.Scheme_Registered(int32(f.x)).String()
			}
		case 2:
			if !f.oneof(&seen, protowire.BytesType) || !utf8.Valid(f.b) {
				return "", false
			}
			s = d.intern(f.b)
		}
	}
	return s, true
}

func (d *Decoder) headers(b []byte) ([]gate.Header, bool) {
	// Count first so the slice is allocated once, at its final size.
	n := 0
	for p := b; len(p) > 0; {
		f, ok := next(&p)
		if !ok || (f.num == 1 && f.typ != protowire.BytesType) {
			return nil, false
		}
		if f.num == 1 {
			n++
		}
	}
	if n == 0 {
		return nil, true
	}
	out := make([]gate.Header, 0, n)
	for len(b) > 0 {
		f, _ := next(&b)
		if f.num != 1 {
			continue
		}
		// Most header entries repeat whole (content-type, user-agent,
		// grpc-status): a slot picked from a few of the entry's bytes
		// holds the last entry decoded there, and a match replaces
		// decoding and interning its name and value.
		sl := &d.hdrSlots[fingerprint(f.b)>>56]
		if sl.ok && string(sl.raw) == string(f.b) {
			out = append(out, sl.h)
			continue
		}
		h, ok := d.header(f.b)
		if !ok {
			return nil, false
		}
		if len(f.b) <= maxInternSize {
			sl.raw, sl.h, sl.ok = append(sl.raw[:0], f.b...), h, true
		}
		out = append(out, h)
	}
	return out, true
}

func (d *Decoder) header(b []byte) (gate.Header, bool) {
	var seen uint32
	var h gate.Header
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return h, false
		}
		switch f.num {
		case 1:
			if !f.single(&seen, protowire.BytesType) || !utf8.Valid(f.b) {
				return h, false
			}
			h.Name = d.intern(f.b)
		case 2:
			// value_str and value_bin are one oneof: bit 0 of seen.
			if !f.oneof(&seen, protowire.BytesType) || !utf8.Valid(f.b) {
				return h, false
			}
			h.Value = d.intern(f.b)
		case 3:
			if !f.oneof(&seen, protowire.BytesType) {
				return h, false
			}
			h.Value = d.intern(f.b)
		}
	}
	return h, true
}

// labelSet decodes an EndpointMeta/RouteMeta (map<string,string> labels = 1).
// The tap server encodes maps in random order, so the cache key is the
// entries sorted by key; a hit returns the shared map without allocating.
func (d *Decoder) labelSet(b []byte) (map[string]string, bool) {
	// The same bytes decode to the same map. Go randomizes only the start of
	// a small map's iteration, so one label set arrives in a handful of byte
	// orders and this exact-bytes lookup usually hits.
	slot := &d.recent[labelSlot(b)]
	if slot.m != nil && string(slot.raw) == string(b) {
		return slot.m, true
	}
	if m, ok := d.raw[string(b)]; ok {
		d.recentPut(b, m)
		return m, true
	}
	raw := b
	kvs := d.kvs[:0]
	for len(b) > 0 {
		f, ok := next(&b)
		if !ok {
			return nil, false
		}
		if f.num != 1 {
			continue
		}
		if f.typ != protowire.BytesType {
			return nil, false
		}
		var e kv
		var seen uint32
		for p := f.b; len(p) > 0; {
			g, ok := next(&p)
			if !ok {
				return nil, false
			}
			switch g.num {
			case 1:
				if !g.single(&seen, protowire.BytesType) {
					return nil, false
				}
				e.k = g.b
			case 2:
				if !g.single(&seen, protowire.BytesType) {
					return nil, false
				}
				e.v = g.b
			}
		}
		// Insertion sort: label sets are small (about 7 entries).
		kvs = append(kvs, e)
		for i := len(kvs) - 1; i > 0 && string(kvs[i].k) <= string(kvs[i-1].k); i-- {
			if string(kvs[i].k) == string(kvs[i-1].k) {
				return nil, false // duplicate key: last-wins is the general decoder's job
			}
			kvs[i], kvs[i-1] = kvs[i-1], kvs[i]
		}
	}
	d.kvs = kvs
	if len(kvs) == 0 {
		return nil, true
	}
	key := d.key[:0]
	for _, e := range kvs {
		key = protowire.AppendBytes(key, e.k)
		key = protowire.AppendBytes(key, e.v)
	}
	d.key = key
	if m, ok := d.labels[string(key)]; ok {
		d.remember(raw, m)
		return m, true
	}
	m := make(map[string]string, len(kvs))
	for _, e := range kvs {
		if !utf8.Valid(e.k) || !utf8.Valid(e.v) {
			return nil, false
		}
		m[d.intern(e.k)] = d.intern(e.v)
	}
	if len(d.labels) >= maxLabelSets {
		d.labels = make(map[string]map[string]string)
	}
	d.labels[string(key)] = m
	d.remember(raw, m)
	return m, true
}

// fingerprint mixes the length and three 8-byte words of b (start, middle,
// end) into a slot index for the decoder's direct-mapped caches: cheaper
// than hashing every byte, and a hit is always confirmed by comparing them.
func fingerprint(b []byte) uint64 {
	x := uint64(len(b))
	if len(b) >= 8 {
		x ^= binary.LittleEndian.Uint64(b) ^
			binary.LittleEndian.Uint64(b[len(b)/2-len(b)/2%8:])*0x9e3779b97f4a7c15 ^
			binary.LittleEndian.Uint64(b[len(b)-8:])*0xc2b2ae3d27d4eb4f
	} else {
		for _, c := range b {
			x = x<<8 | uint64(c)
		}
	}
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 32
	return x * 0x94d049bb133111eb
}

// labelSlot is the recent-label-set slot of an encoded label set: the same
// pods' label sets arrive on nearly every event, and a slot hit costs one
// comparison instead of a map lookup.
func labelSlot(b []byte) int { return int(fingerprint(b) >> 58) } // 64 slots

func (d *Decoder) recentPut(raw []byte, m map[string]string) {
	if len(raw) <= maxRecentSize {
		slot := &d.recent[labelSlot(raw)]
		slot.raw, slot.m = append(slot.raw[:0], raw...), m
	}
}

func (d *Decoder) remember(raw []byte, m map[string]string) {
	d.recentPut(raw, m)
	if len(d.raw) >= maxLabelSets {
		d.raw = make(map[string]map[string]string)
	}
	d.raw[string(raw)] = m
}

// intern returns b as a string, sharing one copy of short values that
// repeat (header names, authorities, label values).
func (d *Decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternSize {
		return string(b)
	}
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if !d.admit.SeenBefore(b) {
		// Kept only from its second sighting on, so values that never
		// repeat (request ids) do not churn the table.
		return s
	}
	if len(d.strs) >= maxInterned {
		d.strs = make(map[string]string)
	}
	d.strs[s] = s
	return s
}
