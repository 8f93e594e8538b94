package replay

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestRepeatedLabelSpans: label objects recognized by their bytes (the
// reader's span cache) decode exactly as parsed ones, across buffer refills.
func TestRepeatedLabelSpans(t *testing.T) {
	fixture := mustRead(t, "linkerd_tap.json")
	once, err := decodeAll(fixture)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat(fixture, 1+3*initialBuf/len(fixture))
	all, err := decodeAll(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(all)%len(once) != 0 {
		t.Fatalf("decoded %d events from copies of %d", len(all), len(once))
	}
	for i := range all {
		if want := once[i%len(once)]; !reflect.DeepEqual(all[i], want) {
			t.Fatalf("event %d = %+v, want %+v", i, all[i], want)
		}
	}
}

// TestErrorPositionsAfterSpans: line and column of an error stay exact
// after label objects that were skipped by their bytes rather than parsed.
func TestErrorPositionsAfterSpans(t *testing.T) {
	fixture := mustRead(t, "linkerd_tap.json")
	data := bytes.Repeat(fixture, 1+2*initialBuf/len(fixture))
	for off := len(fixture); off < len(data); off += 997 {
		bad := bytes.Clone(data)
		bad[off] = 0x01 // invalid anywhere in JSON
		_, err := decodeAll(bad)
		var re *Error
		if !errors.As(err, &re) {
			t.Fatalf("corrupt byte %d: error %v, want *Error", off, err)
		}
		line := 1 + bytes.Count(bad[:re.Offset], []byte{'\n'})
		col := int(re.Offset) - bytes.LastIndexByte(bad[:re.Offset], '\n')
		if re.Line != line || re.Column != col {
			t.Fatalf("corrupt byte %d: error at %d:%d (byte %d), want %d:%d", off, re.Line, re.Column, re.Offset, line, col)
		}
	}
}
