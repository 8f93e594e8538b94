package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
)

// realisticEvents is one request's three events with the labels and headers
// a meshed emojivoto pod reports.
func realisticEvents() []*gate.Event {
	src := gate.Endpoint{
		Addr: netip.MustParseAddrPort("10.244.0.17:43210"),
		Labels: map[string]string{
			"control_plane_ns": "linkerd", "deployment": "vote-bot", "namespace": "emojivoto",
			"pod": "vote-bot-5b7f5657f6-xbjjc", "pod_template_hash": "5b7f5657f6",
			"serviceaccount": "default", "tls": "true",
		},
	}
	dst := gate.Endpoint{
		Addr: netip.MustParseAddrPort("10.244.0.21:8080"),
		Labels: map[string]string{
			"control_plane_ns": "linkerd", "deployment": "web", "namespace": "emojivoto",
			"pod": "web-68cbb8b6d8-9xw5s", "pod_template_hash": "68cbb8b6d8",
			"serviceaccount": "web", "tls": "true",
		},
	}
	id := gate.StreamID{Base: 7, Stream: 123456}
	return []*gate.Event{
		{Kind: gate.RequestInit, Direction: gate.Inbound, ID: id, Source: src, Destination: dst,
			Method: "POST", Scheme: "HTTP", Authority: "web-svc.emojivoto:80", Path: "/api/vote?choice=:doughnut:",
			Headers: []gate.Header{{Name: ":authority", Value: "web-svc.emojivoto:80"}, {Name: "user-agent", Value: "Go-http-client/1.1"}, {Name: "accept-encoding", Value: "gzip"}}},
		{Kind: gate.ResponseInit, Direction: gate.Inbound, ID: id, Source: src, Destination: dst,
			HTTPStatus: 200, SinceRequestInit: 1830 * time.Microsecond,
			Headers: []gate.Header{{Name: "content-type", Value: "application/json"}, {Name: "content-length", Value: "0"}}},
		{Kind: gate.ResponseEnd, Direction: gate.Inbound, ID: id, Source: src, Destination: dst,
			SinceRequestInit: 1950 * time.Microsecond, SinceResponseInit: 120 * time.Microsecond, ResponseBytes: 0},
	}
}

// encodeStream frames n events cycling through evs. Like the tap server it
// marshals non-deterministically, so label maps arrive in varying order.
func encodeStream(tb testing.TB, evs []*gate.Event, n int) []byte {
	tb.Helper()
	var buf []byte
	for i := 0; i < n; i++ {
		b, err := proto.Marshal(FromEvent(evs[i%len(evs)]))
		if err != nil {
			tb.Fatal(err)
		}
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(b)))
		buf = append(buf, b...)
	}
	return buf
}

// BenchmarkDecodeStream measures the whole per-event cost of a live tap
// before the engine sees the event: frame read, protobuf decode and
// conversion to gate.Event. "decoder" is the Decoder tapgate uses;
// "generated" is DecodeEvent + ToEvent on the generated code.
func BenchmarkDecodeStream(b *testing.B) {
	const perStream = 3000
	stream := encodeStream(b, realisticEvents(), perStream)
	run := func(b *testing.B, next func(r io.Reader) func(*gate.Event) error) {
		b.SetBytes(int64(len(stream) / perStream))
		b.ReportAllocs()
		r := bytes.NewReader(stream)
		decode := next(r)
		var ev gate.Event
		b.ResetTimer()
		cpu0 := processCPU()
		for i := 0; i < b.N; i++ {
			err := decode(&ev)
			if err == io.EOF {
				r.Reset(stream)
				err = decode(&ev)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		// On a shared machine wall time undercounts; CPU time is what one
		// core would need.
		if cpu := processCPU() - cpu0; cpu > 0 {
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
		}
	}
	b.Run("decoder", func(b *testing.B) {
		run(b, func(r io.Reader) func(*gate.Event) error {
			d := NewDecoder(r)
			return d.Next
		})
	})
	b.Run("generated", func(b *testing.B) {
		run(b, func(r io.Reader) func(*gate.Event) error {
			fr := NewFrameReader(r)
			var pe pb.TapEvent
			return func(ev *gate.Event) error {
				frame, err := fr.Next()
				if err != nil {
					return err
				}
				if err := DecodeEvent(frame, &pe); err != nil {
					return err
				}
				ToEvent(&pe, ev)
				return nil
			}
		})
	})
}

// processCPU is the user+system CPU time of the test process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
