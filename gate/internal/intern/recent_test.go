package intern

import (
	"strconv"
	"testing"
)

func TestRecent(t *testing.T) {
	r := NewRecent()
	if r.SeenBefore([]byte("content-type")) {
		t.Fatal("first sighting reported as seen")
	}
	if !r.SeenBefore([]byte("content-type")) {
		t.Fatal("second sighting not reported as seen")
	}
	if r.SeenBefore(nil) {
		t.Fatal("empty value seen before its first sighting")
	}
	// Unique values are never admitted: a stream of request ids does not
	// report any of them as seen (bar hash collisions, which are rare).
	hits := 0
	for i := range 100000 {
		if r.SeenBefore([]byte("req-" + strconv.Itoa(i))) {
			hits++
		}
	}
	if hits > 100 {
		t.Fatalf("%d of 100000 unique values reported as seen", hits)
	}
}
