package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"syscall"
	"time"
)

// The layout of a bbolt meta page, as bbolt 1.x writes it (native byte
// order): a 16-byte page header, then magic, version, page size, flags,
// the root bucket (page, sequence), the freelist page, the high-water
// page, the transaction ID and an FNV-64a checksum of what precedes it.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSize       = 64
	noFreelist     = ^uint64(0)
)

// meta is a bbolt meta page as read from the file.
type meta struct {
	magic, version, pageSize uint32
	root, freelist, pgid     uint64
	txid, checksum, sum      uint64
}

func readMeta(b []byte) (meta, bool) {
	if len(b) < pageHeaderSize+metaSize {
		return meta{}, false
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	e := binary.NativeEndian
	h := fnv.New64a()
	h.Write(m[:56])
	return meta{
		magic: e.Uint32(m[0:]), version: e.Uint32(m[4:]), pageSize: e.Uint32(m[8:]),
		root: e.Uint64(m[16:]), freelist: e.Uint64(m[32:]), pgid: e.Uint64(m[40:]),
		txid: e.Uint64(m[48:]), checksum: e.Uint64(m[56:]), sum: h.Sum64(),
	}, true
}

// problem says what is wrong with a meta page, "" if nothing.
func (m meta) problem() string {
	switch {
	case m.magic != boltMagic:
		return "it is not a ledger file (no bbolt header)"
	case m.version != boltVersion:
		return fmt.Sprintf("it was written in another file format (bbolt version %d)", m.version)
	case m.checksum != m.sum:
		return "its header fails its checksum"
	case m.pageSize < 512 || m.pageSize&(m.pageSize-1) != 0:
		return fmt.Sprintf("its header names a page size of %d", m.pageSize)
	}
	return ""
}

// checkFile looks at a ledger file before bbolt maps it into memory: bbolt
// trusts the file's header, and a file cut short of the pages its header
// names makes the process die of SIGBUS on the first read past the end.
// A file that does not exist is fine (it will be created); an empty one is
// not: it would silently become a new ledger that knows nothing of what
// the old one sent.
//
// It reads under a shared lock, taken within timeout: a run writing the
// file holds it exclusively (ErrLocked then), and its pages are never read
// half-written.
func checkFile(path string, timeout time.Duration) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // a FIFO must not block
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return &DamagedError{Path: path, Reason: "it is not a regular file"}
	}
	if err := lockShared(f, timeout); err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return &DamagedError{Path: path, Reason: "it is empty"}
	}
	page := func(off int64) (meta, bool) {
		buf := make([]byte, pageHeaderSize+metaSize)
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return meta{}, false
		}
		return readMeta(buf)
	}
	m0, _ := page(0)
	var good []meta
	why := m0.problem()
	if why == "" {
		good = append(good, m0)
	}
	// The second meta page sits one page in; without a first page to say
	// how big a page is, try the sizes bbolt would.
	sizes := []int64{int64(m0.pageSize)}
	if why != "" {
		sizes = sizes[:0]
		for s := int64(1024); s <= 16<<20 && s < size; s <<= 1 {
			sizes = append(sizes, s)
		}
	}
	for _, ps := range sizes {
		if m1, ok := page(ps); ok && m1.problem() == "" && int64(m1.pageSize) == ps {
			good = append(good, m1)
			break
		}
	}
	if len(good) == 0 {
		if why == "" {
			why = "its second header page is unreadable"
		}
		return &DamagedError{Path: path, Reason: why}
	}
	// bbolt uses the valid meta of the latest transaction.
	m := good[0]
	for _, g := range good[1:] {
		if g.txid > m.txid {
			m = g
		}
	}
	need := int64(m.pgid) * int64(m.pageSize)
	switch {
	case m.pgid < 2 || m.root >= m.pgid || (m.freelist != noFreelist && m.freelist >= m.pgid):
		return &DamagedError{Path: path, Reason: "its header names pages it does not have"}
	case need > size || need < 0:
		return &DamagedError{Path: path, Reason: fmt.Sprintf("it is cut short: %d bytes, where its header names %d", size, need)}
	}
	if m.freelist != noFreelist && !freelistOK(f, m, size) {
		// bbolt panics on a bad freelist page while opening, with the
		// file mapped and locked: it must not get that far.
		return &DamagedError{Path: path, Reason: "its freelist page is overwritten"}
	}
	return nil
}

// lockShared takes a shared lock on f, trying until timeout; closing f
// lets go of it.
func lockShared(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return err
		case time.Now().After(deadline):
			return ErrLocked
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freelistOK reports whether the freelist page m names is one, and fits
// in the file.
func freelistOK(f *os.File, m meta, size int64) bool {
	const freelistFlag = 0x10
	off := int64(m.freelist) * int64(m.pageSize)
	h := make([]byte, pageHeaderSize+8)
	if _, err := f.ReadAt(h, off); err != nil {
		return false
	}
	e := binary.NativeEndian
	id, flags := e.Uint64(h[0:]), e.Uint16(h[8:])
	count, overflow := uint64(e.Uint16(h[10:])), int64(e.Uint32(h[12:]))
	if id != m.freelist || flags != freelistFlag {
		return false
	}
	ids := int64(pageHeaderSize)
	if count == 0xFFFF { // the count is the page's first element
		count = e.Uint64(h[pageHeaderSize:])
		ids += 8
	}
	end := (int64(m.freelist) + overflow + 1) * int64(m.pageSize)
	return count <= uint64(size)/8 && off+ids+int64(count)*8 <= end && end <= size && int64(m.freelist)+overflow < int64(m.pgid)
}
