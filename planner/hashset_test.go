package planner

import (
	"math/rand/v2"
	"testing"
)

// TestHashSet checks the delivery set's hash set against a map, through
// several rounds of growth.
func TestHashSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := newHashSet(0)
	want := map[uint64]bool{}
	var added []uint64
	for i := range 50_000 {
		h := r.Uint64()
		if i%10 == 0 && len(added) > 0 {
			h = added[r.IntN(len(added))] // again
		}
		if h <= 1 {
			continue // 0 is stored as 1
		}
		if got, wantNew := s.add(h), !want[h]; got != wantNew {
			t.Fatalf("add(%#x) #%d: got %v, want %v", h, i, got, wantNew)
		}
		want[h] = true
		added = append(added, h)
	}
	if s.n != len(want) {
		t.Errorf("n: got %d, want %d", s.n, len(want))
	}
	for h := range want {
		if !s.has(h) {
			t.Fatalf("has(%#x): got false, want true", h)
		}
	}
	for range 1000 {
		if h := r.Uint64(); !want[h] && s.has(h) {
			t.Fatalf("has(%#x): got true for a hash never added", h)
		}
	}
	if 4*s.n > 3*len(s.slots) {
		t.Errorf("%d hashes in %d slots: more than 3 in 4 used", s.n, len(s.slots))
	}
}

// TestHashSetZero checks that the hash 0, which marks an empty slot, can be
// added.
func TestHashSetZero(t *testing.T) {
	s := newHashSet(0)
	if !s.add(0) || s.add(0) || !s.has(0) {
		t.Error("add(0), add(0), has(0): want true, false, true")
	}
}
