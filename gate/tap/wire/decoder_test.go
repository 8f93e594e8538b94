package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
)

// reference decodes with the generated code: the behaviour Decoder must match.
func reference(b []byte) (gate.Event, error) {
	var pe pb.TapEvent
	var ev gate.Event
	if err := DecodeEvent(b, &pe); err != nil {
		return ev, err
	}
	ToEvent(&pe, &ev)
	return ev, nil
}

// same checks that Decoder gives the reference result for b and reports
// whether it needed the fallback.
func same(t *testing.T, d *Decoder, b []byte) (fellBack bool) {
	t.Helper()
	want, wantErr := reference(b)
	before := d.fallbacks
	var got gate.Event
	got.Path = "stale" // must be overwritten
	err := d.Decode(b, &got)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Decode(%x) err = %v, reference err = %v", b, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%x):\n got %+v\nwant %+v", b, got, want)
	}
	return d.fallbacks != before
}

func TestDecoderMatchesGenerated(t *testing.T) {
	d := NewDecoder(nil)
	for i, ev := range roundTripEvents() {
		for _, det := range []bool{true, false} {
			b, err := proto.MarshalOptions{Deterministic: det}.Marshal(FromEvent(&ev))
			if err != nil {
				t.Fatal(err)
			}
			if same(t, d, b) {
				t.Errorf("event %d (deterministic=%v) needed the fallback", i, det)
			}
		}
	}
	for _, tc := range wireCases() {
		if _, ok := tc.msg.(*pb.TapEvent); !ok {
			continue
		}
		if same(t, d, tc.wire) {
			t.Errorf("%s needed the fallback", tc.name)
		}
	}
}

// Without a recording, request headers are not decoded; everything else,
// response headers and trailers (grpc-status) included, is, on the fast path
// and on the fallback alike.
func TestDecoderSkipRequestHeaders(t *testing.T) {
	d := NewDecoder(nil)
	d.SkipRequestHeaders = true
	var sawReq, sawResp, sawTrailers bool
	check := func(name string, b []byte) {
		t.Helper()
		want, err := reference(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want.Kind == gate.RequestInit {
			sawReq = sawReq || len(want.Headers) > 0
			want.Headers = nil
		}
		sawResp = sawResp || (want.Kind == gate.ResponseInit && len(want.Headers) > 0)
		sawTrailers = sawTrailers || len(want.Trailers) > 0
		var got gate.Event
		if err := d.Decode(b, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	for i, ev := range roundTripEvents() {
		b, err := proto.Marshal(FromEvent(&ev))
		if err != nil {
			t.Fatal(err)
		}
		check(strconv.Itoa(i), b)
		// A repeated source forces the general decoder.
		check(strconv.Itoa(i)+" (fallback)", cat(msg(1, varint(2, 80)), b))
	}
	if !sawReq || !sawResp || !sawTrailers {
		t.Fatalf("round-trip events lack headers: request %v, response %v, trailers %v", sawReq, sawResp, sawTrailers)
	}
}

func TestDecoderUnusualInput(t *testing.T) {
	reqInit := msg(3, msg(1, msg(1, varint(1, 7)), str(5, "/x")))
	tests := []struct {
		name     string
		in       []byte
		fallback bool
	}{
		{"unknown fields are skipped", cat(varint(99, 1), reqInit, str(50, "x"), fixed64(1000, 3)), false},
		{"unknown field inside a nested message", msg(3, msg(1, varint(9, 1), str(5, "/x"))), false},
		{"repeated source merges", cat(msg(1, varint(2, 80)), msg(1, msg(1, fixed32(1, 1)))), true},
		{"last proxy_direction wins", cat(varint(6, 1), varint(6, 2)), true},
		{"second http event replaces the first", cat(reqInit, msg(3, msg(2, varint(3, 200)))), true},
		{"known field with another wire type is unknown", cat(varint(1, 5), reqInit), true},
		{"ipv4 then ipv6", msg(1, msg(1, fixed32(1, 1), msg(2, fixed64(2, 1)))), true},
		{"duplicate label key: last wins", msg(5, msg(1, str(1, "pod"), str(2, "a")), msg(1, str(1, "pod"), str(2, "b"))), true},
		{"label entry without value", msg(5, msg(1, str(1, "pod"))), false},
		{"value_str then value_bin", msg(3, msg(1, msg(6, msg(1, str(1, "h"), str(2, "a"), str(3, "b"))))), true},
		{"unknown proxy_direction", varint(6, 9), false},
		{"unknown registered method", msg(3, msg(1, msg(2, varint(1, 42)))), false},
		{"group field", cat(protowire.AppendTag(nil, 20, protowire.StartGroupType), protowire.AppendTag(nil, 20, protowire.EndGroupType), reqInit), true},
		{"invalid UTF-8 path is an error", msg(3, msg(1, str(5, "\xff"))), true},
		{"invalid UTF-8 label is an error", msg(5, msg(1, str(1, "pod"), str(2, "\xff"))), true},
		{"truncated", reqInit[:len(reqInit)-1], true},
		{"overlong varint", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, true},
		{"field number zero", []byte{0x00, 0x01}, true},
		{"huge durations saturate", msg(3, msg(3, msg(2, varint(1, 1<<62)), msg(3, varint(1, 1<<63)))), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if fb := same(t, NewDecoder(nil), tc.in); fb != tc.fallback {
				t.Errorf("fallback = %v, want %v", fb, tc.fallback)
			}
		})
	}
}

// Label sets repeat on every event of a pod: the decoder returns one shared
// map for a set whatever order its entries were encoded in.
func TestDecoderSharesLabelSets(t *testing.T) {
	a := msg(5, msg(1, str(1, "pod"), str(2, "web-1")), msg(1, str(1, "ns"), str(2, "x")))
	b := msg(5, msg(1, str(1, "ns"), str(2, "x")), msg(1, str(1, "pod"), str(2, "web-1")))
	c := msg(5, msg(1, str(1, "ns"), str(2, "y")), msg(1, str(1, "pod"), str(2, "web-1")))
	d := NewDecoder(nil)
	var e1, e2, e3, e4 gate.Event
	for _, x := range []struct {
		in []byte
		ev *gate.Event
	}{{a, &e1}, {b, &e2}, {c, &e3}, {a, &e4}} {
		if err := d.Decode(x.in, x.ev); err != nil {
			t.Fatal(err)
		}
	}
	p := func(m map[string]string) uintptr { return reflect.ValueOf(m).Pointer() }
	if p(e1.Source.Labels) != p(e2.Source.Labels) || p(e1.Source.Labels) != p(e4.Source.Labels) {
		t.Error("equal label sets decoded into different maps")
	}
	if p(e1.Source.Labels) == p(e3.Source.Labels) || e3.Source.Labels["ns"] != "y" {
		t.Errorf("different label sets share a map: %v", e3.Source.Labels)
	}
}

func TestDecoderCachesAreBounded(t *testing.T) {
	d := NewDecoder(nil)
	var ev gate.Event
	for i := 0; i < maxLabelSets+10; i++ {
		v := string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		if err := d.Decode(msg(5, msg(1, str(1, "pod"), str(2, v))), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Source.Labels["pod"] != v {
			t.Fatalf("label %d = %q, want %q", i, ev.Source.Labels["pod"], v)
		}
	}
	if len(d.labels) > maxLabelSets || len(d.raw) > maxLabelSets || len(d.strs) > maxInterned {
		t.Errorf("caches grew past their bounds: %d %d %d", len(d.labels), len(d.raw), len(d.strs))
	}
}

func TestDecoderStream(t *testing.T) {
	evs := realisticEvents()
	stream := encodeStream(t, evs, 9)
	stream = append(stream, 5, 0, 0, 0, 0x0a) // truncated tail
	d := NewDecoder(iotest.OneByteReader(bytes.NewReader(stream)))
	var ev gate.Event
	for i := 0; i < 9; i++ {
		if err := d.Next(&ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !reflect.DeepEqual(ev, *evs[i%3]) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, ev, *evs[i%3])
		}
	}
	err := d.Next(&ev)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "truncated frame at byte offset") {
		t.Errorf("truncated tail: %v", err)
	}

	// A frame that is not a TapEvent names its offset.
	bad := append(encodeStream(t, evs, 1), 2, 0, 0, 0, 0x0a, 0x05)
	d = NewDecoder(bytes.NewReader(bad))
	if err := d.Next(&ev); err != nil {
		t.Fatal(err)
	}
	err = d.Next(&ev)
	if want := "frame at byte offset " + strconv.Itoa(len(bad)-6) + ": decoding TapEvent (2 bytes)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("bad frame: %v, want %q", err, want)
	}
	if err := d.Next(&ev); err != io.EOF {
		t.Errorf("after the bad frame: %v, want io.EOF", err)
	}
}

// FuzzDecoder holds the hand-written decoder to the generated one on any
// input: same error-or-not, same event.
func FuzzDecoder(f *testing.F) {
	for _, ev := range roundTripEvents() {
		b, _ := proto.Marshal(FromEvent(&ev))
		f.Add(b)
	}
	for _, tc := range wireCases() {
		f.Add(tc.wire)
	}
	d := NewDecoder(nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		same(t, d, b)
	})
}
