package replay

import (
	"encoding/base64"
	"io"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tapgate/tapgate/gate"
)

// Writer records events in the shape `linkerd viz tap -o json` prints
// (pretty-printed, 2-space indented objects, one after another), plus the
// arrival time under TimestampKey and, for a ResponseEnd with an end of
// stream, an "eos" object that keeps gRPC OK apart from no eos at all (the
// linkerd shape prints grpcStatusCode 0 for both). Secret header values are
// replaced by gate.Redacted. Each event is one Write call on the
// underlying writer; wrap a file in a bufio.Writer for throughput and flush
// it at the end.
type Writer struct {
	w   io.Writer
	red *gate.Redactor
	buf []byte
	ind int
}

// NewWriter returns a Writer to w. A nil Redactor redacts the default secret
// headers; a disabled one (an explicit user flag) redacts nothing.
func NewWriter(w io.Writer, r *gate.Redactor) *Writer {
	return &Writer{w: w, red: r}
}

// Write records one event. A zero arrival time writes no timestamp.
func (w *Writer) Write(ev *gate.Event, arrival time.Time) error {
	b := w.buf[:0]
	w.ind = 0
	b = w.open(b, '{')
	if !arrival.IsZero() {
		b = w.key(b, TimestampKey)
		b = appendString(b, arrival.UTC().Format(time.RFC3339Nano))
		b = w.comma(b)
	}
	b = w.endpoint(b, "source", &ev.Source)
	b = w.comma(b)
	b = w.endpoint(b, "destination", &ev.Destination)
	b = w.comma(b)
	b = w.key(b, "routeMeta")
	b = w.labels(b, ev.RouteMeta)
	b = w.comma(b)
	b = w.key(b, "proxyDirection")
	b = appendString(b, ev.Direction.String())
	b = w.comma(b)
	switch ev.Kind {
	case gate.RequestInit:
		b = w.key(b, "requestInitEvent")
		b = w.open(b, '{')
		b = w.id(b, ev.ID)
		b = w.strField(b, "method", ev.Method)
		b = w.strField(b, "scheme", ev.Scheme)
		b = w.strField(b, "authority", ev.Authority)
		b = w.strField(b, "path", ev.Path)
		b = w.key(b, "headers")
		b = w.headers(b, ev.Headers)
	case gate.ResponseInit:
		b = w.key(b, "responseInitEvent")
		b = w.open(b, '{')
		b = w.id(b, ev.ID)
		b = w.duration(b, "sinceRequestInit", ev.SinceRequestInit)
		b = w.key(b, "httpStatus")
		b = strconv.AppendUint(b, uint64(ev.HTTPStatus), 10)
		b = w.comma(b)
		b = w.key(b, "headers")
		b = w.headers(b, ev.Headers)
	default:
		b = w.key(b, "responseEndEvent")
		b = w.open(b, '{')
		b = w.id(b, ev.ID)
		b = w.duration(b, "sinceRequestInit", ev.SinceRequestInit)
		b = w.duration(b, "sinceResponseInit", ev.SinceResponseInit)
		b = w.key(b, "responseBytes")
		b = strconv.AppendUint(b, ev.ResponseBytes, 10)
		b = w.comma(b)
		b = w.key(b, "trailers")
		b = w.headers(b, ev.Trailers)
		b = w.comma(b)
		// The linkerd shape: grpcStatusCode always, resetErrorCode when set.
		var grpcCode, resetCode uint32
		switch ev.EOS.Kind {
		case gate.EOSGRPCStatus:
			grpcCode = ev.EOS.Code
		case gate.EOSReset:
			resetCode = ev.EOS.Code
		}
		b = w.key(b, "grpcStatusCode")
		b = strconv.AppendUint(b, uint64(grpcCode), 10)
		if resetCode != 0 {
			b = w.comma(b)
			b = w.key(b, "resetErrorCode")
			b = strconv.AppendUint(b, uint64(resetCode), 10)
		}
		if ev.EOS.Kind != gate.EOSNone {
			b = w.comma(b)
			b = w.key(b, "eos")
			b = w.open(b, '{')
			if ev.EOS.Kind == gate.EOSReset {
				b = w.key(b, "resetErrorCode")
			} else {
				b = w.key(b, "grpcStatusCode")
			}
			b = strconv.AppendUint(b, uint64(ev.EOS.Code), 10)
			b = w.close(b, '}')
		}
	}
	b = w.close(b, '}')
	b = w.close(b, '}')
	b = append(b, '\n')
	w.buf = b
	_, err := w.w.Write(b)
	return err
}

func (w *Writer) nl(b []byte) []byte {
	b = append(b, '\n')
	for i := 0; i < w.ind; i++ {
		b = append(b, ' ', ' ')
	}
	return b
}

func (w *Writer) comma(b []byte) []byte { return w.nl(append(b, ',')) }

func (w *Writer) open(b []byte, c byte) []byte {
	b = append(b, c)
	w.ind++
	return w.nl(b)
}

func (w *Writer) close(b []byte, c byte) []byte {
	w.ind--
	b = w.nl(b)
	return append(b, c)
}

func (w *Writer) key(b []byte, k string) []byte {
	b = appendString(b, k)
	return append(b, ':', ' ')
}

func (w *Writer) strField(b []byte, k, v string) []byte {
	b = w.key(b, k)
	b = appendString(b, v)
	return w.comma(b)
}

func (w *Writer) endpoint(b []byte, k string, ep *gate.Endpoint) []byte {
	b = w.key(b, k)
	b = w.open(b, '{')
	b = w.key(b, "ip")
	ip := ""
	if ep.Addr.Addr().IsValid() {
		ip = ep.Addr.Addr().String()
	}
	b = appendString(b, ip)
	b = append(b, ',')
	b = w.nl(b)
	b = w.key(b, "port")
	b = strconv.AppendUint(b, uint64(ep.Addr.Port()), 10)
	b = append(b, ',')
	b = w.nl(b)
	b = w.key(b, "metadata")
	b = w.labels(b, ep.Labels)
	b = w.close(b, '}')
	return b
}

// labels writes a map with sorted keys, as encoding/json does: null when
// nil, {} when empty.
func (w *Writer) labels(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	if len(m) == 0 {
		return append(b, '{', '}')
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = w.open(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
			b = w.nl(b)
		}
		b = w.key(b, k)
		b = appendString(b, m[k])
	}
	return w.close(b, '}')
}

func (w *Writer) id(b []byte, id gate.StreamID) []byte {
	b = w.key(b, "id")
	b = w.open(b, '{')
	b = w.key(b, "base")
	b = strconv.AppendUint(b, uint64(id.Base), 10)
	b = append(b, ',')
	b = w.nl(b)
	b = w.key(b, "stream")
	b = strconv.AppendUint(b, id.Stream, 10)
	b = w.close(b, '}')
	return w.comma(b)
}

// duration writes a protobuf Duration as encoding/json renders it: zero
// fields omitted, so a zero duration is {}.
func (w *Writer) duration(b []byte, k string, d time.Duration) []byte {
	b = w.key(b, k)
	secs := int64(d / time.Second)
	nanos := int64(d % time.Second)
	if secs == 0 && nanos == 0 {
		b = append(b, '{', '}')
	} else {
		b = w.open(b, '{')
		if secs != 0 {
			b = w.key(b, "seconds")
			b = strconv.AppendInt(b, secs, 10)
			if nanos != 0 {
				b = append(b, ',')
				b = w.nl(b)
			}
		}
		if nanos != 0 {
			b = w.key(b, "nanos")
			b = strconv.AppendInt(b, nanos, 10)
		}
		b = w.close(b, '}')
	}
	return w.comma(b)
}

// headers writes [{name, valueStr}] (valueBin, base64, for values that are
// not UTF-8), null when there are none, redacting secret values.
func (w *Writer) headers(b []byte, hs []gate.Header) []byte {
	if len(hs) == 0 {
		return append(b, "null"...)
	}
	b = w.open(b, '[')
	for i, h := range hs {
		if i > 0 {
			b = append(b, ',')
			b = w.nl(b)
		}
		v := h.Value
		if w.red.IsSecret(h.Name) {
			v = gate.Redacted
		}
		b = w.open(b, '{')
		b = w.key(b, "name")
		b = appendString(b, h.Name)
		b = append(b, ',')
		b = w.nl(b)
		if utf8.ValidString(v) {
			b = w.key(b, "valueStr")
			b = appendString(b, v)
		} else {
			b = w.key(b, "valueBin")
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, []byte(v))
			b = append(b, '"')
		}
		b = w.close(b, '}')
	}
	return w.close(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString quotes s the way encoding/json does by default (including
// its HTML-safe escapes), so recordings match linkerd's byte for byte.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
