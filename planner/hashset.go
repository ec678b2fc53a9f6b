package planner

// hashSet is a set of 64-bit hashes, open addressing with linear probing in
// one pointer-free slice: 8 bytes a slot and at most 3 slots in 4 used, so
// 10 million hashes take 128 MB, and the garbage collector never scans it.
type hashSet struct {
	slots []uint64 // 0 marks an empty slot; the hash 0 is stored as 1
	n     int
	mask  uint64
	// expect, if set, says how many hashes the set will hold in the end,
	// so that it grows there at once, not by doubling
	expect func() int
	// max, if set, is the most slots it grows to (expect notwithstanding);
	// its user keeps n to 3 in 4 of them
	max int
}

// newHashSet makes a set with room for n hashes before it grows.
func newHashSet(n int) *hashSet {
	size := 1 << 12
	for 3*size < 4*n {
		size *= 2
	}
	return &hashSet{slots: make([]uint64, size), mask: uint64(size - 1)}
}

// add inserts h and reports whether it was new.
func (s *hashSet) add(h uint64) bool {
	if h == 0 {
		h = 1
	}
	for i := h & s.mask; ; i = (i + 1) & s.mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			if 4*s.n > 3*len(s.slots) {
				s.grow()
			}
			return true
		}
	}
}

// has reports whether h is in the set.
func (s *hashSet) has(h uint64) bool {
	if h == 0 {
		h = 1
	}
	for i := h & s.mask; ; i = (i + 1) & s.mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	size := 2 * len(old)
	if s.expect != nil {
		for n := min(s.expect(), 16*s.n); 3*size < 4*n; {
			size *= 2
		}
	}
	if s.max > 0 {
		size = max(len(old), min(size, s.max))
	}
	s.slots = make([]uint64, size)
	s.mask = uint64(len(s.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & s.mask
		for s.slots[i] != 0 {
			i = (i + 1) & s.mask
		}
		s.slots[i] = h
	}
}
