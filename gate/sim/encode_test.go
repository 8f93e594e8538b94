package sim

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// TestAppendFrameMatchesWire checks the hand-assembled frames decode to
// exactly the TapEvent wire.FromEvent builds, for every kind of event the
// model produces (inbound, outbound, resets, gRPC, with and without
// headers).
func TestAppendFrameMatchesWire(t *testing.T) {
	sc, err := Load("../../examples/scenarios/grpc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, s := range []*Scenario{DemoScenario(), sc} {
		m, err := compile(s)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		e := newEngine(m, hooks{emit: func(v *view, kind gate.EventKind, _ time.Duration) {
			for _, headers := range []bool{true, false} {
				frame := v.appendFrame(nil, kind, headers)
				fr := wire.NewFrameReader(bytesReader(frame))
				b, err := fr.Next()
				if err != nil {
					t.Fatal(err)
				}
				var got pb.TapEvent
				if err := proto.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				var ev gate.Event
				v.fill(kind, headers, &ev)
				want := wire.FromEvent(&ev)
				if !proto.Equal(&got, want) {
					t.Fatalf("frame differs from wire.FromEvent:\n got %v\nwant %v", &got, want)
				}
				if got.RouteMeta == nil {
					t.Fatal("route_meta missing: Linkerd's tap server always sets it")
				}
				kinds[ev.Direction.String()+"/"+ev.Kind.String()+"/"+string(rune('0'+ev.EOS.Kind))] = true
			}
			n++
		}})
		for n < 4000 && e.step() {
		}
	}
	for _, k := range []string{"OUTBOUND/requestInit/0", "INBOUND/responseInit/0", "INBOUND/responseEnd/0", "INBOUND/responseEnd/1", "INBOUND/responseEnd/2"} {
		if !kinds[k] {
			t.Errorf("no %s event was checked: %v", k, kinds)
		}
	}
}
