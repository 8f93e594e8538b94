// Package replay reads recorded tap traffic — what `linkerd viz tap -o json`
// prints, or what tapgate itself records — and feeds it to the gate as if it
// were live. It also writes recordings in that same shape.
//
// The accepted input is a stream of JSON objects, one per tap event, either
// pretty-printed and concatenated (linkerd's own output) or one per line
// (JSON Lines), optionally gzip-compressed. tapgate's recordings add a
// "timestamp" key (RFC 3339, arrival time); linkerd's have none, so events
// replayed from them have HasTime false.
//
// Besides linkerd's rendering the reader accepts the protobuf/protojson
// variants of the same fields (numbers as strings, method and scheme as
// {"registered": ...} objects, durations as "0.025s", IPs as {"ipv4": n}),
// and ignores unknown keys. linkerd prints "grpcStatusCode": 0 both for
// gRPC OK and for a stream with no end-of-stream code, and omits a zero
// resetErrorCode; such events decode as EOSNone. tapgate's writer adds a
// protojson-style "eos" object whenever there is one, which the reader
// trusts over the other two keys, so its recordings round-trip exactly.
package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/internal/intern"
)

// Error is a malformed recording: where it is and what was expected.
// Line and Column are 1-based (Column counts bytes); Offset is the 0-based
// byte offset. For gzip input the position is in the decompressed stream.
type Error struct {
	File   string
	Line   int
	Column int
	Offset int64
	Msg    string
}

func (e *Error) Error() string {
	f := e.File
	if f == "" {
		f = "recording"
	}
	return fmt.Sprintf("%s:%d:%d (byte %d): %s", f, e.Line, e.Column, e.Offset, e.Msg)
}

// TimestampKey is the top-level key tapgate's recordings use for the arrival
// time of an event (RFC 3339 with nanoseconds). linkerd's output has none.
const TimestampKey = "timestamp"

const (
	initialBuf = 64 << 10
	maxToken   = 64 << 20 // a single string longer than this is not a tap event
	maxDepth   = 512      // nesting bound when skipping unknown values
	// Bounds on the intern tables, so memory stays constant whatever the
	// length of the recording: unique values (request ids) stop being
	// interned once the tables are full.
	internMax      = 1 << 16
	internMaxBytes = 8 << 20
)

// Reader decodes tap events from a recording, one at a time, in constant
// memory. It is not safe for concurrent use.
type Reader struct {
	file   string
	src    io.Reader
	closer io.Closer

	buf       []byte
	pos, end  int
	base      int64 // stream offset of buf[0]
	line      int
	lineStart int64 // stream offset of the current line's first byte
	eof       bool
	rerr      error
	gz        bool // positions are in the decompressed stream

	scratch []byte // unescaped strings
	kv      []byte // metadata pairs of the map being read, for interning

	strs        map[string]string
	admit       intern.Recent // admits a value to strs on its second sighting
	internBytes int
	maps        map[string]map[string]string
	addrs       map[string]netip.Addr

	hdrs, trls []gate.Header
	spans      []labelSpan

	firstTS  time.Time
	haveTS   bool
	objStart int64
	objLine  int
	objCol   int
}

// NewReader returns a Reader over r. Gzip input is detected by its magic
// bytes. file names the input in errors.
func NewReader(r io.Reader, file string) (*Reader, error) {
	br := bufio.NewReaderSize(r, 4096)
	rd := &Reader{
		file:  file,
		src:   br,
		buf:   make([]byte, initialBuf),
		line:  1,
		strs:  make(map[string]string),
		admit: intern.NewRecent(),
		maps:  make(map[string]map[string]string),
		addrs: make(map[string]netip.Addr),
	}
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &Error{File: file, Line: 1, Column: 1, Msg: "the input looks gzip-compressed but its header is invalid: " + err.Error()}
		}
		zr.Multistream(true)
		rd.src, rd.closer = zr, zr
		rd.gz = true
	}
	return rd, nil
}

// Close releases the gzip decompressor, if any. It does not close the
// underlying reader.
func (r *Reader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Next decodes the next event into ev, reusing ev's Headers and Trailers
// storage: the slices are only valid until the following call. Strings and
// label maps are immutable and may be kept (label maps are shared between
// events and must not be modified). Next returns io.EOF at the clean end of
// the input and an *Error for malformed input.
func (r *Reader) Next(ev *gate.Event) error {
	c, ok := r.ws()
	if !ok {
		if r.rerr != nil {
			return r.errHere("reading the recording: " + r.rerr.Error())
		}
		return io.EOF
	}
	if c != '{' {
		return r.errHere(fmt.Sprintf("expected '{' starting a tap event object, found %s", describe(c)))
	}
	return r.event(ev)
}

// --- errors and positions ---------------------------------------------------

func (r *Reader) errAt(off int64, line int, col int, msg string) error {
	return &Error{File: r.file, Line: line, Column: col, Offset: off, Msg: msg}
}

func (r *Reader) errHere(msg string) error {
	off := r.base + int64(r.pos)
	return r.errAt(off, r.line, int(off-r.lineStart)+1, msg)
}

// errEOF reports input that ends inside a value.
func (r *Reader) errEOF(inside string) error {
	if r.rerr != nil {
		return r.errHere(fmt.Sprintf("reading the recording inside %s: %v", inside, r.rerr))
	}
	return r.errHere("unexpected end of input inside " + inside + ": the recording is truncated")
}

func describe(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// --- buffer ----------------------------------------------------------------

// fill reads more input, keeping buf[pos:end]. It reports whether any byte
// was added.
func (r *Reader) fill() bool {
	if r.eof {
		return false
	}
	if r.pos > 0 {
		n := copy(r.buf, r.buf[r.pos:r.end])
		r.base += int64(r.pos)
		r.end = n
		r.pos = 0
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= maxToken {
			r.eof = true
			r.rerr = fmt.Errorf("a single token is longer than %d MiB", maxToken>>20)
			return false
		}
		nb := make([]byte, 2*len(r.buf))
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	for tries := 0; tries < 100; tries++ {
		n, err := r.src.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.eof = true
			if !errors.Is(err, io.EOF) {
				r.rerr = err
				if r.gz {
					r.rerr = fmt.Errorf("decompressing gzip: %w", err)
				}
			}
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	r.eof = true
	r.rerr = io.ErrNoProgress
	return false
}

// ws skips whitespace, counting lines, and peeks at the next byte. It is
// the hottest loop (pretty-printed input is mostly indentation), so it works
// on locals and skips runs of spaces eight bytes at a time.
func (r *Reader) ws() (byte, bool) {
	for {
		buf, pos := r.buf[:r.end], r.pos
		for pos < len(buf) {
			c := buf[pos]
			if c > ' ' {
				r.pos = pos
				return c, true
			}
			switch c {
			case ' ':
				pos++
				for pos+8 <= len(buf) {
					x := binary.LittleEndian.Uint64(buf[pos:]) ^ spaces8
					if x != 0 {
						pos += bits.TrailingZeros64(x) >> 3
						break
					}
					pos += 8
				}
				continue
			case '\t', '\r':
			case '\n':
				r.line++
				r.lineStart = r.base + int64(pos) + 1
			default:
				r.pos = pos
				return c, true
			}
			pos++
		}
		r.pos = pos
		if !r.fill() {
			return 0, false
		}
	}
}

const (
	lsb8    = 0x0101010101010101
	msb8    = 0x8080808080808080
	spaces8 = lsb8 * ' '
)

// peek is ws that reports end of input as a truncation inside what.
func (r *Reader) peek(inside string) (byte, error) {
	if r.pos < r.end {
		if c := r.buf[r.pos]; c > ' ' {
			return c, nil
		}
	}
	return r.peekSlow(inside)
}

// at reports whether the next byte, with no whitespace before it, is c:
// the fast path of the token checks below (pretty-printed input has the
// colon right after the key and the opening quote right after indentation).
func (r *Reader) at(c byte) bool { return r.pos < r.end && r.buf[r.pos] == c }

func (r *Reader) peekSlow(inside string) (byte, error) {
	c, ok := r.ws()
	if !ok {
		return 0, r.errEOF(inside)
	}
	return c, nil
}

func (r *Reader) expect(want byte, inside string) error {
	if r.at(want) {
		r.pos++
		return nil
	}
	c, err := r.peek(inside)
	if err != nil {
		return err
	}
	if c != want {
		return r.errHere(fmt.Sprintf("expected %q in %s, found %s", want, inside, describe(c)))
	}
	r.pos++
	return nil
}

// more handles the separator after a member or element: it consumes ',' and
// reports true, or consumes the closing byte and reports false.
func (r *Reader) more(closing byte, inside string) (bool, error) {
	if r.at(',') {
		r.pos++
		return true, nil
	}
	c, err := r.peek(inside)
	if err != nil {
		return false, err
	}
	switch c {
	case ',':
		r.pos++
		return true, nil
	case closing:
		r.pos++
		return false, nil
	}
	return false, r.errHere(fmt.Sprintf("expected ',' or %q in %s, found %s", closing, inside, describe(c)))
}

// --- strings ---------------------------------------------------------------

// str reads a JSON string at the current position. The returned bytes are
// only valid until the next read.
func (r *Reader) str(inside string) ([]byte, error) {
	if !r.at('"') {
		c, err := r.peek(inside)
		if err != nil {
			return nil, err
		}
		if c != '"' {
			return nil, r.errHere(fmt.Sprintf("expected a string in %s, found %s", inside, describe(c)))
		}
	}
	r.pos++
	start := r.pos
	i := start
	for {
		buf := r.buf[:r.end]
		// Eight bytes at a time up to the first byte that may end the
		// plain scan; the byte loop below decides what it is.
		for i+8 <= len(buf) {
			if m := special8(binary.LittleEndian.Uint64(buf[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(buf) {
			c := buf[i]
			if !strSpecial[c] {
				i++
				continue
			}
			if c == '"' {
				r.pos = i + 1
				return buf[start:i], nil
			}
			if c == '\\' {
				r.pos = start
				return r.strEscaped(i-start, inside)
			}
			r.pos = i
			return nil, r.errHere(fmt.Sprintf("control character %s inside a string in %s", describe(c), inside))
		}
		rel := i - start
		r.pos = start
		if !r.fill() {
			r.pos = r.end
			return nil, r.errEOF("a string in " + inside)
		}
		start = r.pos
		i = start + rel
	}
}

// special8 flags (high bit of the byte) the bytes of x that are '"', '\\' or
// control characters. The classic has-zero-byte test can also flag bytes
// above a flagged one, never below it, so the lowest flag is exact.
func special8(x uint64) uint64 {
	q := x ^ (lsb8 * '"')
	b := x ^ (lsb8 * '\\')
	return ((q-lsb8)&^q | (b-lsb8)&^b | (x-lsb8*0x20)&^x) & msb8
}

// strSpecial marks the bytes that end the fast scan of a string.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// strEscaped decodes a string containing escapes into r.scratch; pos is at
// the string's first byte and n bytes of it are known to be plain.
func (r *Reader) strEscaped(n int, inside string) ([]byte, error) {
	r.scratch = append(r.scratch[:0], r.buf[r.pos:r.pos+n]...)
	r.pos += n
	for {
		if r.pos >= r.end && !r.fill() {
			return nil, r.errEOF("a string in " + inside)
		}
		c := r.buf[r.pos]
		switch {
		case c == '"':
			r.pos++
			return r.scratch, nil
		case c < 0x20:
			return nil, r.errHere(fmt.Sprintf("control character %s inside a string in %s", describe(c), inside))
		case c != '\\':
			r.scratch = append(r.scratch, c)
			r.pos++
			continue
		}
		// An escape: make sure it is complete in the buffer.
		for r.end-r.pos < 12 && r.fill() {
		}
		if r.end-r.pos < 2 {
			r.pos = r.end
			return nil, r.errEOF("a string in " + inside)
		}
		e := r.buf[r.pos+1]
		switch e {
		case '"', '\\', '/':
			r.scratch = append(r.scratch, e)
		case 'b':
			r.scratch = append(r.scratch, '\b')
		case 'f':
			r.scratch = append(r.scratch, '\f')
		case 'n':
			r.scratch = append(r.scratch, '\n')
		case 'r':
			r.scratch = append(r.scratch, '\r')
		case 't':
			r.scratch = append(r.scratch, '\t')
		case 'u':
			cp, ok := hex4(r.buf[r.pos+2 : min(r.pos+6, r.end)])
			if !ok {
				return nil, r.errHere("invalid \\u escape in a string in " + inside + ": expected 4 hex digits")
			}
			adv := 6
			if utf16.IsSurrogate(cp) {
				cp2 := rune(-1)
				if r.end-r.pos >= 12 && r.buf[r.pos+6] == '\\' && r.buf[r.pos+7] == 'u' {
					if v, ok := hex4(r.buf[r.pos+8 : r.pos+12]); ok {
						cp2 = v
					}
				}
				if d := utf16.DecodeRune(cp, cp2); d != utf8.RuneError {
					cp = d
					adv = 12
				} else {
					cp = utf8.RuneError
				}
			}
			r.scratch = utf8.AppendRune(r.scratch, cp)
			r.pos += adv
			continue
		default:
			return nil, r.errHere(fmt.Sprintf("invalid escape \\%c in a string in %s", e, inside))
		}
		r.pos += 2
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// intern returns a string equal to b, shared with earlier equal strings while
// the table has room: labels, methods, paths and header names repeat on
// almost every event.
func (r *Reader) intern(b []byte) string {
	if s, ok := r.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if !r.admit.SeenBefore(b) {
		return s
	}
	if len(r.strs) < internMax && r.internBytes+len(s) <= internMaxBytes {
		r.strs[s] = s
		r.internBytes += len(s)
	}
	return s
}

func (r *Reader) strValue(inside string) (string, error) {
	b, err := r.str(inside)
	if err != nil {
		return "", err
	}
	return r.intern(b), nil
}

// --- literals and numbers ----------------------------------------------------

// isNull consumes a null literal if one is next.
func (r *Reader) isNull(inside string) (bool, error) {
	if r.at('{') || r.at('"') {
		return false, nil
	}
	c, err := r.peek(inside)
	if err != nil || c != 'n' {
		return false, err
	}
	return true, r.literal("null", inside)
}

func (r *Reader) literal(lit string, inside string) error {
	for r.end-r.pos < len(lit) && r.fill() {
	}
	if r.end-r.pos < len(lit) {
		if string(r.buf[r.pos:r.end]) == lit[:r.end-r.pos] {
			r.pos = r.end
			return r.errEOF(inside)
		}
		return r.errHere(fmt.Sprintf("invalid literal in %s, expected %s", inside, lit))
	}
	if string(r.buf[r.pos:r.pos+len(lit)]) != lit {
		return r.errHere(fmt.Sprintf("invalid literal in %s, expected %s", inside, lit))
	}
	r.pos += len(lit)
	return nil
}

// uint reads a non-negative integer, as a JSON number or, protojson style,
// a string of digits.
func (r *Reader) uint(inside string, max uint64) (uint64, error) {
	c, err := r.peek(inside)
	if err != nil {
		return 0, err
	}
	if c == '"' {
		b, err := r.str(inside)
		if err != nil {
			return 0, err
		}
		v, perr := strconv.ParseUint(string(b), 10, 64)
		if perr != nil || v > max {
			return 0, r.errHere(fmt.Sprintf("expected an integer from 0 to %d in %s, found %q", max, inside, b))
		}
		return v, nil
	}
	if c < '0' || c > '9' {
		return 0, r.errHere(fmt.Sprintf("expected an integer in %s, found %s", inside, describe(c)))
	}
	var v uint64
	digits := 0
	for {
		if r.pos >= r.end && !r.fill() {
			break
		}
		c := r.buf[r.pos]
		if c < '0' || c > '9' {
			if c == '.' || c == 'e' || c == 'E' {
				return 0, r.errHere(fmt.Sprintf("expected an integer in %s, found a fraction or exponent", inside))
			}
			break
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, r.errHere(fmt.Sprintf("integer in %s is too large", inside))
		}
		v = v*10 + d
		digits++
		r.pos++
	}
	if v > max {
		return 0, r.errHere(fmt.Sprintf("integer %d in %s is larger than %d", v, inside, max))
	}
	return v, nil
}

// int reads a possibly negative integer (duration seconds and nanos).
func (r *Reader) int(inside string) (int64, error) {
	c, err := r.peek(inside)
	if err != nil {
		return 0, err
	}
	neg := false
	if c == '-' {
		neg = true
		r.pos++
	} else if c == '"' {
		b, err := r.str(inside)
		if err != nil {
			return 0, err
		}
		v, perr := strconv.ParseInt(string(b), 10, 64)
		if perr != nil {
			return 0, r.errHere(fmt.Sprintf("expected an integer in %s, found %q", inside, b))
		}
		return v, nil
	}
	if neg && r.pos >= r.end && !r.fill() {
		return 0, r.errEOF(inside)
	}
	u, err := r.uint(inside, math.MaxInt64)
	if err != nil {
		return 0, err
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// --- generic skipping --------------------------------------------------------

// skip consumes one value of any type: unknown keys are ignored so newer
// recordings still load.
func (r *Reader) skip(inside string, depth int) error {
	if depth > maxDepth {
		return r.errHere("values nested too deeply in " + inside)
	}
	c, err := r.peek(inside)
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		_, err := r.str(inside)
		return err
	case c == '{':
		r.pos++
		if c, err := r.peek(inside); err != nil {
			return err
		} else if c == '}' {
			r.pos++
			return nil
		}
		for {
			if _, err := r.str(inside); err != nil {
				return err
			}
			if err := r.expect(':', inside); err != nil {
				return err
			}
			if err := r.skip(inside, depth+1); err != nil {
				return err
			}
			if more, err := r.more('}', inside); err != nil || !more {
				return err
			}
		}
	case c == '[':
		r.pos++
		if c, err := r.peek(inside); err != nil {
			return err
		} else if c == ']' {
			r.pos++
			return nil
		}
		for {
			if err := r.skip(inside, depth+1); err != nil {
				return err
			}
			if more, err := r.more(']', inside); err != nil || !more {
				return err
			}
		}
	case c == 't':
		return r.literal("true", inside)
	case c == 'f':
		return r.literal("false", inside)
	case c == 'n':
		return r.literal("null", inside)
	case c == '-' || (c >= '0' && c <= '9'):
		n := 0
		for {
			if r.pos >= r.end && !r.fill() {
				break
			}
			c := r.buf[r.pos]
			if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
				break
			}
			r.pos++
			n++
		}
		return nil
	}
	return r.errHere(fmt.Sprintf("expected a JSON value in %s, found %s", inside, describe(c)))
}

// object iterates the members of an object whose '{' is next, calling member
// with each key (valid only until member reads further).
func (r *Reader) object(inside string, member func(key []byte) error) error {
	if err := r.expect('{', inside); err != nil {
		return err
	}
	c, err := r.peek(inside)
	if err != nil {
		return err
	}
	if c == '}' {
		r.pos++
		return nil
	}
	for {
		key, err := r.str(inside)
		if err != nil {
			return err
		}
		// Callers switch on the key before reading anything else, so the
		// bytes are still valid; ':' is consumed inside.
		if err := member(key); err != nil {
			return err
		}
		if more, err := r.more('}', inside); err != nil || !more {
			return err
		}
	}
}

// colon consumes the ':' after a key.
func (r *Reader) colon(inside string) error {
	// Pretty-printed input: ": " then the value.
	if p := r.pos; r.end-p >= 3 && r.buf[p] == ':' && r.buf[p+1] == ' ' && r.buf[p+2] > ' ' {
		r.pos = p + 2
		return nil
	}
	return r.expect(':', inside)
}

// --- the event ---------------------------------------------------------------

const (
	inEvent = "an event object"
	inReq   = "requestInitEvent"
	inRsp   = "responseInitEvent"
	inEnd   = "responseEndEvent"
)

func (r *Reader) event(ev *gate.Event) error {
	hdrs, trls := r.hdrs[:0], r.trls[:0]
	*ev = gate.Event{}
	r.objStart = r.base + int64(r.pos)
	r.objLine = r.line
	r.objCol = int(r.objStart-r.lineStart) + 1
	kinds := 0
	var eosSet bool
	var eos gate.EOS
	var grpcCode, resetCode uint64
	var hasReset bool
	err := r.object(inEvent, func(key []byte) error {
		switch string(key) {
		case "source":
			if err := r.colon(inEvent); err != nil {
				return err
			}
			return r.endpoint(&ev.Source, &sourceNames)
		case "destination":
			if err := r.colon(inEvent); err != nil {
				return err
			}
			return r.endpoint(&ev.Destination, &destinationNames)
		case "routeMeta":
			if err := r.colon(inEvent); err != nil {
				return err
			}
			m, err := r.labels("routeMeta")
			ev.RouteMeta = m
			return err
		case "proxyDirection":
			if err := r.colon(inEvent); err != nil {
				return err
			}
			d, err := r.direction()
			ev.Direction = d
			return err
		case TimestampKey:
			if err := r.colon(inEvent); err != nil {
				return err
			}
			return r.timestamp(ev)
		case "requestInitEvent":
			if err := r.colon(inEvent); err != nil {
				return err
			}
			if null, err := r.isNull(inReq); null || err != nil {
				return err // null: absent, as other encoders may write it
			}
			kinds++
			ev.Kind = gate.RequestInit
			return r.object(inReq, func(key []byte) error {
				switch string(key) {
				case "id":
					return r.colonThen(inReq, func() error { return r.streamID(&ev.ID, inReq+".id") })
				case "method":
					return r.colonThen(inReq, func() (err error) { ev.Method, err = r.method(); return })
				case "scheme":
					return r.colonThen(inReq, func() (err error) { ev.Scheme, err = r.scheme(); return })
				case "authority":
					return r.colonThen(inReq, func() (err error) { ev.Authority, err = r.strValue(inReq + ".authority"); return })
				case "path":
					return r.colonThen(inReq, func() (err error) { ev.Path, err = r.strValue(inReq + ".path"); return })
				case "headers":
					return r.colonThen(inReq, func() (err error) { hdrs, err = r.headers(hdrs, inReq+".headers"); return })
				}
				return r.colonThen(inReq, func() error { return r.skip(inReq, 0) })
			})
		case "responseInitEvent":
			if err := r.colon(inEvent); err != nil {
				return err
			}
			if null, err := r.isNull(inRsp); null || err != nil {
				return err // null: absent, as other encoders may write it
			}
			kinds++
			ev.Kind = gate.ResponseInit
			return r.object(inRsp, func(key []byte) error {
				switch string(key) {
				case "id":
					return r.colonThen(inRsp, func() error { return r.streamID(&ev.ID, inRsp+".id") })
				case "sinceRequestInit":
					return r.colonThen(inRsp, func() (err error) { ev.SinceRequestInit, err = r.duration(inRsp + ".sinceRequestInit"); return })
				case "httpStatus":
					return r.colonThen(inRsp, func() error {
						v, err := r.uint(inRsp+".httpStatus", math.MaxUint32)
						ev.HTTPStatus = uint32(v)
						return err
					})
				case "headers":
					return r.colonThen(inRsp, func() (err error) { hdrs, err = r.headers(hdrs, inRsp+".headers"); return })
				}
				return r.colonThen(inRsp, func() error { return r.skip(inRsp, 0) })
			})
		case "responseEndEvent":
			if err := r.colon(inEvent); err != nil {
				return err
			}
			if null, err := r.isNull(inEnd); null || err != nil {
				return err // null: absent, as other encoders may write it
			}
			kinds++
			ev.Kind = gate.ResponseEnd
			return r.object(inEnd, func(key []byte) error {
				switch string(key) {
				case "id":
					return r.colonThen(inEnd, func() error { return r.streamID(&ev.ID, inEnd+".id") })
				case "sinceRequestInit":
					return r.colonThen(inEnd, func() (err error) { ev.SinceRequestInit, err = r.duration(inEnd + ".sinceRequestInit"); return })
				case "sinceResponseInit":
					return r.colonThen(inEnd, func() (err error) { ev.SinceResponseInit, err = r.duration(inEnd + ".sinceResponseInit"); return })
				case "responseBytes":
					return r.colonThen(inEnd, func() (err error) { ev.ResponseBytes, err = r.uint(inEnd+".responseBytes", math.MaxUint64); return })
				case "trailers":
					return r.colonThen(inEnd, func() (err error) { trls, err = r.headers(trls, inEnd+".trailers"); return })
				case "grpcStatusCode":
					return r.colonThen(inEnd, func() (err error) { grpcCode, err = r.uint(inEnd+".grpcStatusCode", math.MaxUint32); return })
				case "resetErrorCode":
					hasReset = true
					return r.colonThen(inEnd, func() (err error) { resetCode, err = r.uint(inEnd+".resetErrorCode", math.MaxUint32); return })
				case "eos":
					eosSet = true
					return r.colonThen(inEnd, func() (err error) { eos, err = r.eos(); return })
				}
				return r.colonThen(inEnd, func() error { return r.skip(inEnd, 0) })
			})
		}
		if err := r.colon(inEvent); err != nil {
			return err
		}
		return r.skip(inEvent, 0)
	})
	if err != nil {
		return err
	}
	switch {
	case kinds == 0:
		return r.errAt(r.objStart, r.objLine, r.objCol, "the object starting here has none of requestInitEvent, responseInitEvent or responseEndEvent: it is not a tap event")
	case kinds > 1:
		return r.errAt(r.objStart, r.objLine, r.objCol, "the object starting here has more than one of requestInitEvent, responseInitEvent and responseEndEvent; a tap event has exactly one")
	}
	if ev.Kind == gate.ResponseEnd {
		// linkerd's renderer always prints grpcStatusCode (0 both for gRPC OK
		// and for no eos at all) and omits resetErrorCode when it is 0. An
		// explicit protojson-style "eos" object (tapgate's recordings write
		// one) settles it; otherwise 0 means no eos.
		switch {
		case eosSet:
			ev.EOS = eos
		case hasReset && resetCode != 0:
			ev.EOS = gate.EOS{Kind: gate.EOSReset, Code: uint32(resetCode)}
		case grpcCode != 0:
			ev.EOS = gate.EOS{Kind: gate.EOSGRPCStatus, Code: uint32(grpcCode)}
		}
	}
	if len(hdrs) > 0 {
		ev.Headers = hdrs
	}
	if len(trls) > 0 {
		ev.Trailers = trls
	}
	r.hdrs, r.trls = hdrs, trls
	return nil
}

func (r *Reader) colonThen(inside string, f func() error) error {
	if err := r.colon(inside); err != nil {
		return err
	}
	return f()
}

// endpointNames are the error contexts of an endpoint's fields, built once:
// concatenating them per event would allocate on the hot path.
type endpointNames struct{ self, ip, port, metadata string }

var (
	sourceNames      = endpointNames{"source", "source.ip", "source.port", "source.metadata"}
	destinationNames = endpointNames{"destination", "destination.ip", "destination.port", "destination.metadata"}
)

func (r *Reader) endpoint(ep *gate.Endpoint, names *endpointNames) error {
	inside := names.self
	if null, err := r.isNull(inside); null || err != nil {
		return err
	}
	var ip netip.Addr
	var port uint64
	err := r.object(inside, func(key []byte) error {
		switch string(key) {
		case "ip":
			return r.colonThen(inside, func() (err error) { ip, err = r.ip(names.ip); return })
		case "port":
			return r.colonThen(inside, func() (err error) { port, err = r.uint(names.port, math.MaxUint16); return })
		case "metadata":
			return r.colonThen(inside, func() (err error) { ep.Labels, err = r.labels(names.metadata); return })
		}
		return r.colonThen(inside, func() error { return r.skip(inside, 0) })
	})
	if err != nil {
		return err
	}
	if ip.IsValid() {
		ep.Addr = netip.AddrPortFrom(ip, uint16(port))
	}
	return nil
}

// ip accepts linkerd's rendering (dotted IPv4, plain or bracketed IPv6),
// an IPv4 as a number, and the protobuf shape {"ipv4": n} /
// {"ipv6": {"first": n, "last": n}}.
func (r *Reader) ip(inside string) (netip.Addr, error) {
	c, err := r.peek(inside)
	if err != nil {
		return netip.Addr{}, err
	}
	switch {
	case c == 'n':
		return netip.Addr{}, r.literal("null", inside)
	case c >= '0' && c <= '9':
		v, err := r.uint(inside, math.MaxUint32)
		return ipv4(uint32(v)), err
	case c == '{':
		var a netip.Addr
		err := r.object(inside, func(key []byte) error {
			switch string(key) {
			case "ipv4":
				return r.colonThen(inside, func() error {
					v, err := r.uint(inside+".ipv4", math.MaxUint32)
					a = ipv4(uint32(v))
					return err
				})
			case "ipv6":
				return r.colonThen(inside, func() error {
					var hi, lo uint64
					err := r.object(inside+".ipv6", func(key []byte) error {
						switch string(key) {
						case "first":
							return r.colonThen(inside, func() (err error) { hi, err = r.uint(inside+".ipv6.first", math.MaxUint64); return })
						case "last":
							return r.colonThen(inside, func() (err error) { lo, err = r.uint(inside+".ipv6.last", math.MaxUint64); return })
						}
						return r.colonThen(inside, func() error { return r.skip(inside, 0) })
					})
					var b [16]byte
					for i := 0; i < 8; i++ {
						b[i] = byte(hi >> (56 - 8*i))
						b[8+i] = byte(lo >> (56 - 8*i))
					}
					a = netip.AddrFrom16(b)
					return err
				})
			}
			return r.colonThen(inside, func() error { return r.skip(inside, 0) })
		})
		return a, err
	}
	b, err := r.str(inside)
	if err != nil {
		return netip.Addr{}, err
	}
	if a, ok := r.addrs[string(b)]; ok {
		return a, nil
	}
	s := string(b)
	t := s
	if len(t) >= 2 && t[0] == '[' && t[len(t)-1] == ']' {
		t = t[1 : len(t)-1]
	}
	var a netip.Addr
	if t != "" {
		a, err = netip.ParseAddr(t)
		if err != nil {
			return netip.Addr{}, r.errHere(fmt.Sprintf("%s %q is not an IP address", inside, s))
		}
	}
	if len(r.addrs) < internMax {
		r.addrs[s] = a
	}
	return a, nil
}

func ipv4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// labels reads a string map (or null). Equal maps are shared: the metadata
// of a pod repeats on every one of its events.
func (r *Reader) labels(inside string) (map[string]string, error) {
	if null, err := r.isNull(inside); null || err != nil {
		return nil, err
	}
	if m, ok := r.knownSpan(); ok {
		return m, nil
	}
	start := r.base + int64(r.pos)
	m, err := r.parseLabels(inside)
	if err == nil && start >= r.base {
		r.rememberSpan(r.buf[start-r.base:r.pos], m)
	}
	return m, err
}

// A labelSpan is the exact text of a label object already decoded: a pod's
// metadata repeats on every one of its events, byte for byte, so the next
// occurrence is recognized by comparing bytes instead of parsing it again.
// A complete JSON object that matches the input byte for byte decodes the
// same way, so this changes nothing but speed.
type labelSpan struct {
	raw    []byte
	m      map[string]string
	lines  int // newlines in raw
	lastNL int // index of the last newline in raw, -1 for none
}

const (
	maxSpans    = 32   // most recently seen label objects kept
	maxSpanSize = 4096 // longer objects are always parsed
)

// knownSpan consumes a label object at pos that is one of the remembered
// spans, most recently used first.
func (r *Reader) knownSpan() (map[string]string, bool) {
	if len(r.spans) == 0 {
		return nil, false
	}
	if r.end-r.pos < maxSpanSize && !r.eof {
		r.fill()
	}
	in := r.buf[r.pos:r.end]
	for i := range r.spans {
		sp := &r.spans[i]
		if !bytes.HasPrefix(in, sp.raw) {
			continue
		}
		if sp.lines > 0 {
			r.line += sp.lines
			r.lineStart = r.base + int64(r.pos+sp.lastNL) + 1
		}
		r.pos += len(sp.raw)
		m := sp.m
		if i > 0 {
			hit := *sp
			copy(r.spans[1:i+1], r.spans[:i])
			r.spans[0] = hit
		}
		return m, true
	}
	return nil, false
}

func (r *Reader) rememberSpan(raw []byte, m map[string]string) {
	if len(raw) > maxSpanSize || len(raw) < 2 {
		return
	}
	sp := labelSpan{raw: bytes.Clone(raw), m: m, lines: bytes.Count(raw, []byte{'\n'}), lastNL: bytes.LastIndexByte(raw, '\n')}
	if len(r.spans) < maxSpans {
		r.spans = append(r.spans, labelSpan{})
	}
	copy(r.spans[1:], r.spans[:len(r.spans)-1])
	r.spans[0] = sp
}

func (r *Reader) parseLabels(inside string) (map[string]string, error) {
	r.kv = r.kv[:0]
	n := 0
	err := r.object(inside, func(key []byte) error {
		r.kv = append(r.kv, key...)
		r.kv = append(r.kv, 0)
		if err := r.colon(inside); err != nil {
			return err
		}
		if null, err := r.isNull(inside); err != nil {
			return err
		} else if !null {
			v, err := r.str(inside)
			if err != nil {
				return err
			}
			r.kv = append(r.kv, v...)
		}
		r.kv = append(r.kv, 0)
		n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if m, ok := r.maps[string(r.kv)]; ok {
		return m, nil
	}
	m := make(map[string]string, n)
	rest := r.kv
	for len(rest) > 0 {
		k, tail := cut0(rest)
		v, tail2 := cut0(tail)
		m[r.intern(k)] = r.intern(v)
		rest = tail2
	}
	if len(r.maps) < internMax && r.internBytes+len(r.kv) <= internMaxBytes {
		r.maps[string(r.kv)] = m
		r.internBytes += len(r.kv)
	}
	return m, nil
}

func cut0(b []byte) (head, tail []byte) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

func (r *Reader) direction() (gate.Direction, error) {
	const inside = "proxyDirection"
	c, err := r.peek(inside)
	if err != nil {
		return 0, err
	}
	if c >= '0' && c <= '9' {
		v, err := r.uint(inside, math.MaxUint32)
		switch v {
		case 1:
			return gate.Inbound, err
		case 2:
			return gate.Outbound, err
		}
		return gate.DirectionUnknown, err
	}
	if null, err := r.isNull(inside); null || err != nil {
		return gate.DirectionUnknown, err
	}
	b, err := r.str(inside)
	if err != nil {
		return 0, err
	}
	switch string(b) {
	case "INBOUND":
		return gate.Inbound, nil
	case "OUTBOUND":
		return gate.Outbound, nil
	}
	return gate.DirectionUnknown, nil
}

func (r *Reader) streamID(id *gate.StreamID, inside string) error {
	if null, err := r.isNull(inside); null || err != nil {
		return err
	}
	return r.object(inside, func(key []byte) error {
		switch string(key) {
		case "base":
			return r.colonThen(inside, func() error {
				v, err := r.uint(inside, math.MaxUint32)
				id.Base = uint32(v)
				return err
			})
		case "stream":
			return r.colonThen(inside, func() (err error) { id.Stream, err = r.uint(inside, math.MaxUint64); return })
		}
		return r.colonThen(inside, func() error { return r.skip(inside, 0) })
	})
}

// Registered methods and schemes in linkerd's HttpMethod.Registered and
// Scheme.Registered enums, by number, for protojson input.
var (
	methodNames = [...]string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "HEAD", "TRACE"}
	schemeNames = [...]string{"HTTP", "HTTPS"}
)

// method accepts linkerd's rendering ("GET") and the protobuf shape
// {"registered": "GET"|0} / {"unregistered": "PURGE"}.
func (r *Reader) method() (string, error) {
	return r.registeredOrString(inReq+".method", methodNames[:])
}

func (r *Reader) scheme() (string, error) {
	return r.registeredOrString(inReq+".scheme", schemeNames[:])
}

func (r *Reader) registeredOrString(inside string, names []string) (string, error) {
	c, err := r.peek(inside)
	if err != nil {
		return "", err
	}
	switch c {
	case 'n':
		return "", r.literal("null", inside)
	case '"':
		return r.strValue(inside)
	case '{':
	default:
		return "", r.errHere(fmt.Sprintf("expected a string or an object in %s, found %s", inside, describe(c)))
	}
	var s string
	err = r.object(inside, func(key []byte) error {
		switch string(key) {
		case "registered":
			return r.colonThen(inside, func() error {
				c, err := r.peek(inside)
				if err != nil {
					return err
				}
				if c == '"' {
					s, err = r.strValue(inside)
					return err
				}
				v, err := r.uint(inside, math.MaxUint32)
				if err != nil {
					return err
				}
				if v >= uint64(len(names)) {
					return r.errHere(fmt.Sprintf("unknown registered value %d in %s", v, inside))
				}
				s = names[v]
				return nil
			})
		case "unregistered":
			return r.colonThen(inside, func() (err error) { s, err = r.strValue(inside); return })
		}
		return r.colonThen(inside, func() error { return r.skip(inside, 0) })
	})
	return s, err
}

// headers reads [{name, valueStr|valueBin}] (or null, or protojson's
// {"headers": [...]}) appending to hs.
func (r *Reader) headers(hs []gate.Header, inside string) ([]gate.Header, error) {
	c, err := r.peek(inside)
	if err != nil {
		return hs, err
	}
	switch c {
	case 'n':
		return hs, r.literal("null", inside)
	case '{':
		err := r.object(inside, func(key []byte) error {
			if string(key) == "headers" {
				return r.colonThen(inside, func() (err error) { hs, err = r.headers(hs, inside); return })
			}
			return r.colonThen(inside, func() error { return r.skip(inside, 0) })
		})
		return hs, err
	case '[':
	default:
		return hs, r.errHere(fmt.Sprintf("expected an array of headers in %s, found %s", inside, describe(c)))
	}
	r.pos++
	if c, err := r.peek(inside); err != nil {
		return hs, err
	} else if c == ']' {
		r.pos++
		return hs, nil
	}
	for {
		var h gate.Header
		err := r.object(inside, func(key []byte) error {
			switch string(key) {
			case "name":
				return r.colonThen(inside, func() (err error) { h.Name, err = r.strValue(inside); return })
			case "valueStr":
				return r.colonThen(inside, func() (err error) { h.Value, err = r.strValue(inside); return })
			case "valueBin":
				return r.colonThen(inside, func() error {
					b, err := r.str(inside)
					if err != nil {
						return err
					}
					n := base64.StdEncoding.DecodedLen(len(b))
					dst := make([]byte, n)
					n, derr := base64.StdEncoding.Decode(dst, b)
					if derr != nil {
						return r.errHere(fmt.Sprintf("%s.valueBin is not valid base64: %v", inside, derr))
					}
					h.Value = r.intern(dst[:n])
					return nil
				})
			}
			return r.colonThen(inside, func() error { return r.skip(inside, 0) })
		})
		if err != nil {
			return hs, err
		}
		hs = append(hs, h)
		if more, err := r.more(']', inside); err != nil || !more {
			return hs, err
		}
	}
}

// duration accepts {"seconds": n, "nanos": n} (either may be missing, or
// strings), null, and protojson's "1.5s".
func (r *Reader) duration(inside string) (time.Duration, error) {
	c, err := r.peek(inside)
	if err != nil {
		return 0, err
	}
	switch c {
	case 'n':
		return 0, r.literal("null", inside)
	case '"':
		b, err := r.str(inside)
		if err != nil {
			return 0, err
		}
		d, perr := time.ParseDuration(string(b))
		if perr != nil {
			return 0, r.errHere(fmt.Sprintf("%s %q is not a duration like \"0.025s\"", inside, b))
		}
		return d, nil
	}
	var secs, nanos int64
	err = r.object(inside, func(key []byte) error {
		switch string(key) {
		case "seconds":
			return r.colonThen(inside, func() (err error) { secs, err = r.int(inside); return })
		case "nanos":
			return r.colonThen(inside, func() (err error) { nanos, err = r.int(inside); return })
		}
		return r.colonThen(inside, func() error { return r.skip(inside, 0) })
	})
	if err != nil {
		return 0, err
	}
	if secs > math.MaxInt64/int64(time.Second)-1 || secs < math.MinInt64/int64(time.Second)+1 {
		return 0, r.errHere(fmt.Sprintf("%s is out of range", inside))
	}
	return time.Duration(secs)*time.Second + time.Duration(nanos), nil
}

// eos reads the protobuf Eos shape {"grpcStatusCode": n} / {"resetErrorCode": n}.
func (r *Reader) eos() (gate.EOS, error) {
	const inside = inEnd + ".eos"
	var e gate.EOS
	if null, err := r.isNull(inside); null || err != nil {
		return e, err
	}
	err := r.object(inside, func(key []byte) error {
		switch string(key) {
		case "grpcStatusCode":
			e.Kind = gate.EOSGRPCStatus
			return r.colonThen(inside, func() error {
				v, err := r.uint(inside+".grpcStatusCode", math.MaxUint32)
				e.Code = uint32(v)
				return err
			})
		case "resetErrorCode":
			e.Kind = gate.EOSReset
			return r.colonThen(inside, func() error {
				v, err := r.uint(inside+".resetErrorCode", math.MaxUint32)
				e.Code = uint32(v)
				return err
			})
		}
		return r.colonThen(inside, func() error { return r.skip(inside, 0) })
	})
	return e, err
}

func (r *Reader) timestamp(ev *gate.Event) error {
	const inside = TimestampKey
	if null, err := r.isNull(inside); null || err != nil {
		return err
	}
	b, err := r.str(inside)
	if err != nil {
		return err
	}
	t, ok := parseUTC(b)
	if !ok {
		t, err = time.Parse(time.RFC3339Nano, string(b))
		if err != nil {
			return r.errHere(fmt.Sprintf("%s %q is not an RFC 3339 time like \"2026-11-28T14:00:00.123456Z\"", inside, b))
		}
	}
	if !r.haveTS {
		r.firstTS, r.haveTS = t, true
	}
	ev.At = t.Sub(r.firstTS)
	ev.HasTime = true
	return nil
}

// parseUTC is a fast path for the "2006-01-02T15:04:05.999999999Z" form
// tapgate writes; anything else goes through time.Parse.
func parseUTC(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		v := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	s, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59 {
		return time.Time{}, false
	}
	ns := 0
	frac := b[19 : len(b)-1]
	if len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		v, ok := num(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			v *= 10
		}
		ns = v
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	if t.Day() != d { // e.g. February 30th: let time.Parse reject it
		return time.Time{}, false
	}
	return t, true
}
