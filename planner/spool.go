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

	"imcast/chatapi"
)

// A Spool holds the batches of a plan, from the read of the campaign that
// validated them to the run that sends them. It is a file on disk, so a
// campaign of any size costs memory for its distinct messages only, and
// the run sends exactly what was validated, whatever happens to the
// campaign files meanwhile: they are never read a second time.
//
// The file is removed as soon as it is made (where the system allows), so
// that a run killed at any point leaves nothing behind.
type Spool struct {
	dir   string // where it is, and where a read too large for memory spills
	f     *os.File
	w     *bufio.Writer
	size  int64
	msgs  []*Message
	index map[Key]uint64
	buf   []byte
	done  bool
}

// NewSpool makes an empty spool in dir ("" for the system's temporary
// folder).
func NewSpool(dir string) (*Spool, error) {
	t, err := newTempFile(dir, ".imcast-spool-*", 1<<20)
	if err != nil {
		return nil, fmt.Errorf("spool the plan: %w", err)
	}
	return &Spool{dir: dir, f: t.f, w: t.w, index: map[Key]uint64{}}, nil
}

// add appends batch b: its message's number, then its recipients, after
// the length of the whole so a reader can skip it.
func (s *Spool) add(b Batch) error {
	if s.done {
		return errors.New("spool: add after the spool was read")
	}
	i, ok := s.index[b.Message.Key()]
	if !ok {
		i = uint64(len(s.msgs))
		s.msgs = append(s.msgs, b.Message)
		s.index[b.Message.Key()] = i
	}
	body := binary.AppendUvarint(s.buf[:0], i)
	body = binary.AppendUvarint(body, uint64(len(b.To)))
	for _, to := range b.To {
		body = binary.AppendUvarint(body, uint64(len(to)))
		body = append(body, to...)
	}
	s.buf = body
	var head [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(head[:], uint64(len(body)))
	if _, err := s.w.Write(head[:n]); err != nil {
		return fmt.Errorf("spool the plan: %w", err)
	}
	if _, err := s.w.Write(body); err != nil {
		return fmt.Errorf("spool the plan: %w", err)
	}
	s.size += int64(n + len(body))
	return nil
}

// finish ends the writing; the spool can be read from then on.
func (s *Spool) finish() error {
	if s.done {
		return nil
	}
	s.done = true
	s.buf = nil
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool the plan: %w", err)
	}
	return nil
}

// Batches hands emit the spooled batches of the given kinds (all, for
// none), in the order they were planned. Readers may run side by side,
// one per endpoint.
func (s *Spool) Batches(ctx context.Context, kinds []chatapi.Kind, emit func(Batch) error) error {
	if err := s.finish(); err != nil {
		return err
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, s.size), 1<<20)
	var body []byte
	for n := int64(0); ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		size, err := binary.ReadUvarint(r)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.damaged(err)
		}
		body = slices.Grow(body[:0], int(size))[:size]
		if _, err := io.ReadFull(r, body); err != nil {
			return s.damaged(err)
		}
		b, err := s.decode(body, kinds)
		if err != nil {
			return err
		}
		if b.Message == nil {
			continue // another endpoint's
		}
		if err := emit(b); err != nil {
			return err
		}
	}
}

// decode reads one batch; a batch of another kind than kinds comes back
// with no message.
func (s *Spool) decode(body []byte, kinds []chatapi.Kind) (Batch, error) {
	i, k := binary.Uvarint(body)
	if k <= 0 || i >= uint64(len(s.msgs)) {
		return Batch{}, s.damaged(errors.New("bad message number"))
	}
	m := s.msgs[i]
	if len(kinds) > 0 && !slices.Contains(kinds, m.Kind) {
		return Batch{}, nil
	}
	body = body[k:]
	count, k := binary.Uvarint(body)
	if k <= 0 || count > uint64(len(body)) {
		return Batch{}, s.damaged(errors.New("bad recipient count"))
	}
	body = body[k:]
	to := make([]string, 0, count)
	for range count {
		l, k := binary.Uvarint(body)
		if k <= 0 || l > uint64(len(body)-k) {
			return Batch{}, s.damaged(errors.New("bad recipient"))
		}
		to = append(to, string(body[k:k+int(l)]))
		body = body[k+int(l):]
	}
	return Batch{Message: m, To: to}, nil
}

func (s *Spool) damaged(err error) error {
	return fmt.Errorf("read the spooled plan %s: %w", s.f.Name(), err)
}

// Close removes the spool.
func (s *Spool) Close() error {
	err := s.f.Close()
	if rmErr := os.Remove(s.f.Name()); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) && err == nil {
		err = rmErr
	}
	return err
}
