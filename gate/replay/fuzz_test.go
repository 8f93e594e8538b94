package replay

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/tapgate/tapgate/gate"
)

// FuzzReader checks that no input makes the reader panic, that every failure
// is an *Error with a sane position, and that whatever decodes can be written
// and read back as the same sequence of events.
func FuzzReader(f *testing.F) {
	fixture := mustRead(f, "linkerd_tap.json")
	f.Add(fixture)
	f.Add(toJSONL(f, fixture))
	f.Add(gzipped(f, fixture[:len(fixture)/2]))
	f.Add([]byte(`{"timestamp":"2026-11-28T14:00:00Z","responseEndEvent":{"eos":{"resetErrorCode":2}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := decodeAll(data)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("error %v is a %T, want *replay.Error", err, err)
			}
			if re.Line < 1 || re.Column < 1 || re.Offset < 0 {
				t.Fatalf("bad position in %v", re)
			}
			gz := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
			if !gz && (re.Offset > int64(len(data)) || int64(re.Column-1) > re.Offset) {
				t.Fatalf("position %v outside the %d-byte input", re, len(data))
			}
			return
		}
		var buf bytes.Buffer
		w := NewWriter(&buf, nil)
		for i := range evs {
			if err := w.Write(&evs[i], time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		again, err := decodeAll(buf.Bytes())
		if err != nil {
			t.Fatalf("cannot read back what was written: %v\n%s", err, buf.Bytes())
		}
		if len(again) != len(evs) {
			t.Fatalf("read back %d events, wrote %d", len(again), len(evs))
		}
		for i := range evs {
			a, b := evs[i], again[i]
			if a.Kind != b.Kind || a.ID != b.ID || a.Direction != b.Direction || a.EOS != b.EOS ||
				a.HTTPStatus != b.HTTPStatus || a.SinceRequestInit != b.SinceRequestInit ||
				a.ResponseBytes != b.ResponseBytes || a.Source.Addr != b.Source.Addr || a.Destination.Addr != b.Destination.Addr {
				t.Fatalf("event %d changed in a round trip:\n%+v\n%+v", i, a, b)
			}
		}
	})
}

// The reader never reads the whole input: a stream far larger than its
// buffer decodes with a bounded buffer.
func TestStreamingMemory(t *testing.T) {
	one := mustRead(t, "linkerd_tap.json")
	r := &repeatReader{data: one, left: 2000}
	rd, err := NewReader(r, "big")
	if err != nil {
		t.Fatal(err)
	}
	var ev gate.Event
	n := 0
	for {
		err := rd.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 8000 || len(rd.buf) != initialBuf {
		t.Fatalf("decoded %d events with a %d-byte buffer", n, len(rd.buf))
	}
}

type repeatReader struct {
	data []byte
	off  int
	left int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	if r.off == len(r.data) {
		r.off = 0
		r.left--
	}
	return n, nil
}
