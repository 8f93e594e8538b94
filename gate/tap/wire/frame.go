// Package wire is the byte-level contract with Linkerd's tap APIServer: the
// framing of its response stream, conversion between its protobuf TapEvent
// and tapgate's gate.Event, and building the TapByResourceRequest and URL
// path that `linkerd viz tap` sends.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/proto"
)

// DefaultMaxFrameSize bounds a single frame. Real tap events are a few hundred
// bytes (a few KiB with headers); a larger declared length means a corrupt
// stream or something that is not a tap server answering.
const DefaultMaxFrameSize = 4 << 20

// headerSize is the 4-byte little-endian length prefix of every frame.
const headerSize = 4

// ErrFrameTooLarge is wrapped by the error Next returns for a frame whose
// declared length exceeds the reader's MaxFrameSize.
var ErrFrameTooLarge = errors.New("frame too large")

// FrameReader splits a tap response body into frames: a 4-byte little-endian
// payload length followed by that many bytes of protobuf.
type FrameReader struct {
	// MaxFrameSize is the largest payload accepted; 0 means
	// DefaultMaxFrameSize. It is checked before any buffer is allocated.
	MaxFrameSize int

	r   *bufio.Reader
	buf []byte
	off int64 // bytes consumed from the stream so far
}

// NewFrameReader returns a FrameReader reading from r through a buffer.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Offset is the number of bytes consumed so far: the byte offset of the next
// frame once Next has returned successfully.
func (f *FrameReader) Offset() int64 { return f.off }

// Next returns the payload of the next frame. The slice is only valid until
// the following call to Next, which reuses its memory. A stream that ends
// exactly at a frame boundary returns io.EOF; one that ends inside a frame
// returns an error wrapping io.ErrUnexpectedEOF. A zero-length frame is valid
// (an empty TapEvent) and returns an empty, non-nil slice.
func (f *FrameReader) Next() ([]byte, error) {
	start := f.off
	hdr, err := f.r.Peek(headerSize)
	n := len(hdr)
	if err != nil {
		f.off += int64(n)
		_, _ = f.r.Discard(n)
		switch {
		case err == io.EOF && n == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, fmt.Errorf("truncated frame header at byte offset %d: got %d of %d bytes: %w",
				start, n, headerSize, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("reading frame header at byte offset %d: %w", start, err)
	}
	size := binary.LittleEndian.Uint32(hdr)
	_, _ = f.r.Discard(headerSize)
	f.off += headerSize

	limit := f.MaxFrameSize
	if limit <= 0 {
		limit = DefaultMaxFrameSize
	}
	if uint64(size) > uint64(limit) {
		return nil, fmt.Errorf("frame at byte offset %d declares %d bytes, more than the %d-byte limit (corrupt stream, or not a tap server): %w",
			start, size, limit, ErrFrameTooLarge)
	}

	if int(size) <= f.r.Size() {
		// The usual frame fits the read buffer: hand out the buffered
		// bytes themselves, without copying them.
		b, err := f.r.Peek(int(size))
		if err == nil {
			_, _ = f.r.Discard(len(b))
			f.off += int64(len(b))
			return b, nil
		}
		n, _ := f.r.Discard(len(b))
		f.off += int64(n)
		if err == io.EOF {
			return nil, fmt.Errorf("truncated frame at byte offset %d: header says %d bytes, got %d: %w",
				start, size, n, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("reading frame at byte offset %d (%d of %d bytes read): %w", start, n, size, err)
	}

	if f.buf == nil || cap(f.buf) < int(size) {
		f.buf = make([]byte, size)
	}
	f.buf = f.buf[:size]
	n, err = io.ReadFull(f.r, f.buf)
	f.off += int64(n)
	switch {
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("truncated frame at byte offset %d: header says %d bytes, got %d: %w",
			start, size, n, io.ErrUnexpectedEOF)
	case err != nil:
		return nil, fmt.Errorf("reading frame at byte offset %d (%d of %d bytes read): %w", start, n, size, err)
	}
	return f.buf, nil
}

// marshalOpts is deterministic so recordings and tests are byte-stable
// (label maps are otherwise encoded in random order).
var marshalOpts = proto.MarshalOptions{Deterministic: true}

// AppendFrame appends m, framed, to dst and returns the extended slice.
func AppendFrame(dst []byte, m proto.Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := marshalOpts.MarshalAppend(dst, m)
	if err != nil {
		return dst[:start], fmt.Errorf("encoding frame: %w", err)
	}
	size := len(dst) - start - headerSize
	if uint64(size) > math.MaxUint32 {
		return dst[:start], fmt.Errorf("encoding frame: message of %d bytes does not fit a 4-byte length", size)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(size))
	return dst, nil
}

// WriteFrame writes m as one frame with a single Write call, so concurrent
// writers to a chunked HTTP response never interleave partial frames.
func WriteFrame(w io.Writer, m proto.Message) error {
	b, err := AppendFrame(make([]byte, 0, headerSize+marshalOpts.Size(m)), m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
