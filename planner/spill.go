package planner

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// dedupSlots is the most slots the in-memory set of a read's deliveries
// takes (8 bytes each, 256 MB): past the 25 million deliveries it holds,
// the read spills the rest to disk (see spill). A variable for tests.
var dedupSlots = 1 << 25

// spillParts is how many partitions a spill sorts its hashes into.
const spillParts = 64

// spill holds the deliveries a read found once the in-memory set was full
// and not in it: each in a log on disk, in read order, and its hash, with
// its place in the log, in one of spillParts partitions by the hash's top
// bits. Once the read ends, each partition's repeats are found with a set
// of its own, a 64th of the size, and the log is read back in order with
// each delivery's verdict: the first of a message and recipient is new,
// the rest repeats, as an in-memory set would have said.
type spill struct {
	dir   string
	log   *tempFile
	parts [spillParts]*tempFile
	sizes [spillParts]int
	msgs  []*Message
	index map[*Message]uint32
	n     uint32 // deliveries spilled
	buf   []byte
}

// tempFile is a buffered file in dir, named by pattern (see
// os.CreateTemp), removed as soon as it is made so that a process killed
// at any point leaves nothing behind; where an open file cannot be
// removed, its close removes it.
type tempFile struct {
	f *os.File
	w *bufio.Writer
}

func newTempFile(dir, pattern string, buf int) (*tempFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	return &tempFile{f: f, w: bufio.NewWriterSize(f, buf)}, nil
}

// reader flushes what was written and reads the file from its start.
func (t *tempFile) reader() (*bufio.Reader, error) {
	if err := t.w.Flush(); err != nil {
		return nil, err
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return bufio.NewReaderSize(t.f, 256<<10), nil
}

func (t *tempFile) close() {
	if t != nil {
		t.f.Close()
		os.Remove(t.f.Name())
	}
}

func newSpill(dir string) (*spill, error) {
	s := &spill{dir: dir, index: map[*Message]uint32{}}
	var err error
	if s.log, err = newTempFile(dir, ".imcast-spill-*", 1<<20); err != nil {
		return nil, fmt.Errorf("spill the deliveries to disk: %w", err)
	}
	for i := range s.parts {
		if s.parts[i], err = newTempFile(dir, ".imcast-spill-*", 64<<10); err != nil {
			s.close()
			return nil, fmt.Errorf("spill the deliveries to disk: %w", err)
		}
	}
	return s, nil
}

// put adds a delivery and its hash.
func (s *spill) put(m *Message, to string, h uint64) error {
	if s.n == ^uint32(0) {
		return errors.New("spill the deliveries to disk: over 4 billion")
	}
	i, ok := s.index[m]
	if !ok {
		i = uint32(len(s.msgs))
		s.msgs = append(s.msgs, m)
		s.index[m] = i
	}
	b := binary.AppendUvarint(s.buf[:0], uint64(i))
	b = binary.AppendUvarint(b, uint64(len(to)))
	b = append(b, to...)
	s.buf = b
	if _, err := s.log.w.Write(b); err != nil {
		return fmt.Errorf("spill the deliveries to disk: %w", err)
	}
	var e [12]byte
	binary.LittleEndian.PutUint64(e[:], h)
	binary.LittleEndian.PutUint32(e[8:], s.n)
	p := h >> (64 - 6)
	if _, err := s.parts[p].w.Write(e[:]); err != nil {
		return fmt.Errorf("spill the deliveries to disk: %w", err)
	}
	s.sizes[p]++
	s.n++
	return nil
}

// replay calls fn with every delivery spilled, in the order put took
// them, and whether it is the first of its message and recipient among
// them.
func (s *spill) replay(ctx context.Context, fn func(m *Message, to string, new bool) error) error {
	fail := func(err error) error { return fmt.Errorf("read the deliveries spilled to disk: %w", err) }
	repeated := make([]uint64, (int(s.n)+63)/64)
	for p, part := range s.parts {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r, err := part.reader()
		if err != nil {
			return fail(err)
		}
		set := newHashSet(s.sizes[p])
		var e [12]byte
		for range s.sizes[p] {
			if _, err := io.ReadFull(r, e[:]); err != nil {
				return fail(err)
			}
			if !set.add(binary.LittleEndian.Uint64(e[:])) {
				seq := binary.LittleEndian.Uint32(e[8:])
				repeated[seq/64] |= 1 << (seq % 64)
			}
		}
		part.close()
		s.parts[p] = nil
	}
	r, err := s.log.reader()
	if err != nil {
		return fail(err)
	}
	var to []byte
	for seq := range s.n {
		if seq%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		i, err := binary.ReadUvarint(r)
		if err != nil {
			return fail(err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil || i >= uint64(len(s.msgs)) {
			return fail(errors.Join(err, errors.New("bad record")))
		}
		to = slices.Grow(to[:0], int(n))[:n]
		if _, err := io.ReadFull(r, to); err != nil {
			return fail(err)
		}
		if err := fn(s.msgs[i], string(to), repeated[seq/64]&(1<<(seq%64)) == 0); err != nil {
			return err
		}
	}
	return nil
}

// close removes the spill's files.
func (s *spill) close() {
	if s == nil {
		return
	}
	s.log.close()
	for _, p := range s.parts {
		p.close()
	}
}
