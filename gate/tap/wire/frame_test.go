package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tapgate/tapgate/gate/tap/pb"
)

func frame(payload string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	return append(b, payload...)
}

func TestFrameReader(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    []string
		wantErr string // substring of the error after the frames; "" means io.EOF
		is      error
	}{
		{name: "empty stream", in: nil, want: nil},
		{name: "one frame", in: frame("abc"), want: []string{"abc"}},
		{name: "several frames", in: cat(frame("a"), frame("bcd"), frame("efghij")), want: []string{"a", "bcd", "efghij"}},
		{name: "empty frame is a valid empty TapEvent", in: cat(frame(""), frame("x"), frame("")), want: []string{"", "x", ""}},
		{
			name: "truncated header", in: cat(frame("ab"), []byte{3, 0}),
			want: []string{"ab"}, wantErr: "truncated frame header at byte offset 6: got 2 of 4 bytes", is: io.ErrUnexpectedEOF,
		},
		{
			name: "truncated payload", in: cat(frame("ab"), frame("hello")[:6]),
			want: []string{"ab"}, wantErr: "truncated frame at byte offset 6: header says 5 bytes, got 2", is: io.ErrUnexpectedEOF,
		},
		{
			name: "header only", in: frame("hello")[:4],
			wantErr: "truncated frame at byte offset 0: header says 5 bytes, got 0", is: io.ErrUnexpectedEOF,
		},
		{
			name: "oversized declared length", in: cat(frame("ok"), []byte{0xff, 0xff, 0xff, 0x7f}),
			want:    []string{"ok"},
			wantErr: "frame at byte offset 6 declares 2147483647 bytes, more than the 4194304-byte limit", is: ErrFrameTooLarge,
		},
		{
			name: "configured limit", in: cat(frame("1234"), frame("12345")), max: 4,
			want: []string{"1234"}, wantErr: "frame at byte offset 8 declares 5 bytes, more than the 4-byte limit", is: ErrFrameTooLarge,
		},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
	}
	for _, tc := range tests {
		for rname, wrap := range readers {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				fr := NewFrameReader(wrap(bytes.NewReader(tc.in)))
				fr.MaxFrameSize = tc.max
				var got []string
				var err error
				for {
					var b []byte
					b, err = fr.Next()
					if err != nil {
						break
					}
					if b == nil {
						t.Fatal("Next returned a nil payload without error")
					}
					got = append(got, string(b))
				}
				if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
					t.Errorf("frames = %q, want %q", got, tc.want)
				}
				if tc.wantErr == "" {
					if err != io.EOF {
						t.Errorf("end error = %v, want io.EOF", err)
					}
					if fr.Offset() != int64(len(tc.in)) {
						t.Errorf("Offset = %d, want %d", fr.Offset(), len(tc.in))
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				if !errors.Is(err, tc.is) {
					t.Errorf("error %v does not wrap %v", err, tc.is)
				}
				if err == io.EOF {
					t.Errorf("a broken stream must not look like a clean end")
				}
			})
		}
	}
}

// TestFrameReaderReusesBuffer: frames are handed out from the reader's own
// memory, so reading a stream allocates nothing per frame.
func TestFrameReaderReusesBuffer(t *testing.T) {
	var stream []byte
	for i := 0; i < 200; i++ {
		stream = cat(stream, frame("hello"), frame("abc"))
	}
	fr := NewFrameReader(bytes.NewReader(stream))
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	b, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "abc" {
		t.Errorf("second frame = %q", b)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := fr.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame, want 0", allocs)
	}
}

// The limit is checked before allocating: a 2 GiB declaration must not
// allocate 2 GiB.
func TestFrameReaderLimitBeforeAllocation(t *testing.T) {
	fr := NewFrameReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0x7f}))
	if _, err := fr.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if cap(fr.buf) != 0 {
		t.Errorf("buffer of %d bytes allocated for a refused frame", cap(fr.buf))
	}
}

type chunkWriter struct{ writes [][]byte }

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

func TestWriteFrameRoundTrip(t *testing.T) {
	msgs := []*pb.TapEvent{{}, FromEvent(realisticEvents()[0]), FromEvent(realisticEvents()[2])}
	var w chunkWriter
	for _, m := range msgs {
		if err := WriteFrame(&w, m); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.writes) != len(msgs) {
		t.Fatalf("%d writes for %d frames: a frame must be one Write", len(w.writes), len(msgs))
	}
	fr := NewFrameReader(iotest.OneByteReader(bytes.NewReader(bytes.Join(w.writes, nil))))
	for i, m := range msgs {
		b, err := fr.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var got pb.TapEvent
		if err := DecodeEvent(b, &got); err != nil {
			t.Fatal(err)
		}
		if !protoEqual(&got, m) {
			t.Errorf("frame %d round trip differs", i)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Errorf("after last frame: %v, want io.EOF", err)
	}
}

// FuzzFrameReader checks that any byte stream is either split into frames
// that re-encode to exactly the bytes consumed, or ends with io.EOF at a
// boundary or a descriptive error; never a panic or a silent clean end in
// the middle of a frame.
func FuzzFrameReader(f *testing.F) {
	f.Add(cat(frame("abc"), frame("")), uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint16) {
		var r io.Reader = bytes.NewReader(in)
		if chunk%3 == 1 {
			r = iotest.OneByteReader(r)
		} else if chunk%3 == 2 {
			r = iotest.HalfReader(r)
		}
		fr := NewFrameReader(r)
		fr.MaxFrameSize = 1 << 16
		var re []byte
		for {
			b, err := fr.Next()
			if err == io.EOF {
				if !bytes.Equal(re, in) {
					t.Fatalf("clean EOF after %d of %d bytes", len(re), len(in))
				}
				return
			}
			if err != nil {
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				if !bytes.HasPrefix(in, re) {
					t.Fatal("frames before the error do not match the input")
				}
				return
			}
			if len(b) > fr.MaxFrameSize {
				t.Fatalf("frame of %d bytes exceeds limit", len(b))
			}
			re = append(binary.LittleEndian.AppendUint32(re, uint32(len(b))), b...)
			if int64(len(re)) != fr.Offset() {
				t.Fatalf("Offset %d, consumed %d", fr.Offset(), len(re))
			}
			if !bytes.HasPrefix(in, re) {
				t.Fatal("re-encoded frames are not a prefix of the input")
			}
		}
	})
}

func TestAppendFrameError(t *testing.T) {
	dst := []byte("keep")
	// proto3 strings must be UTF-8: marshalling fails, dst is left as it was.
	got, err := AppendFrame(dst, &pb.ApiError{Error: "\xff"})
	if err == nil || !strings.Contains(err.Error(), "encoding frame") {
		t.Fatalf("err = %v", err)
	}
	if string(got) != "keep" {
		t.Errorf("dst after a failed append = %q", got)
	}
	if err := WriteFrame(&chunkWriter{}, &pb.ApiError{Error: "\xff"}); err == nil {
		t.Error("WriteFrame of an invalid message succeeded")
	}
}
