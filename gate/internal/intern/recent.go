// Package intern holds what the replay reader and the tap decoder share
// when interning strings.
package intern

import "hash/maphash"

// Recent remembers hashes of recently seen values so that a string table
// can admit a value only on its second sighting: values that never repeat
// (request ids) would otherwise fill the table with entries that cost cache
// misses on every lookup and never hit. A direct-mapped table of 4096
// hashes: constant memory, and a collision only costs one table entry.
type Recent struct {
	seed maphash.Seed
	tab  *[4096]uint64
}

// NewRecent returns an empty Recent.
func NewRecent() Recent {
	return Recent{seed: maphash.MakeSeed(), tab: new([4096]uint64)}
}

// SeenBefore reports whether b was (probably) seen recently, and notes it.
func (r Recent) SeenBefore(b []byte) bool {
	h := maphash.Bytes(r.seed, b) | 1 // never 0, the empty slot
	slot := &r.tab[h&(uint64(len(r.tab))-1)]
	if *slot == h {
		return true
	}
	*slot = h
	return false
}
