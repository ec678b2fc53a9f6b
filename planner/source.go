package planner

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Source is what one read of a campaign read: each file's bytes, as many
// as were read, and a digest of everything else that shapes the
// deliveries (the --message defaults, the encoding, the files folder, the
// ext reserve) and the attachments the rows named. A run keeps it in the
// ledger once the campaign is complete; Since compares the files with it,
// so that a rerun of unchanged files reads no row, and a rerun of files
// only appended to reads only what was appended.
type Source struct {
	Options     [32]byte           `json:"options"`
	Files       []SourceFile       `json:"files"`
	Attachments []SourceAttachment `json:"attachments,omitempty"`
}

// SourceFile is one campaign file as a read found it.
type SourceFile struct {
	Path  string   `json:"path"` // absolute
	Size  int64    `json:"size"` // bytes read
	Sum   [32]byte `json:"sha256"`
	Lines int      `json:"lines"` // line ends in those bytes
	// Header is a CSV file's first line, its line end included, when it
	// holds no quote: what a read of the appended rows alone maps them
	// by. nil where the rows cannot be read without the whole file.
	Header []byte `json:"header,omitempty"`
}

// SourceAttachment is a file the rows name: the way they reach it, where
// that led, and its content's digest.
type SourceAttachment struct {
	Named string   `json:"named"` // absolute, symlinks not resolved
	Path  string   `json:"path"`  // Named with its symlinks resolved
	Sum   [32]byte `json:"sha256"`
}

// Equal reports whether s and o read the same bytes.
func (s *Source) Equal(o *Source) bool {
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(o)
	return bytes.Equal(a, b)
}

// Marshal encodes s for the ledger.
func (s *Source) Marshal() []byte {
	b, _ := json.Marshal(s)
	return b
}

// tail is where a read of a campaign file starts: past the bytes an
// earlier read read, which the file still begins with.
type tail struct {
	from  SourceFile // what the earlier read read
	state []byte     // the SHA-256 state after those bytes
	same  bool       // nothing was appended: the file is not read at all
	upto  int64      // if set, the read stops at this size (see Upto)
}

// Since compares the campaign's files with old, what an earlier read of
// them read. It returns the campaign that reads only what was appended to
// the files since (Unchanged says when that is nothing), or nil when any
// file changed otherwise, or the options or an attachment did: then the
// whole campaign must be read again. A file that cannot be read gives nil
// too, and the full read says what is wrong with it.
func (c *Campaign) Since(old *Source) *Campaign {
	if old == nil || old.Options != c.optionsSum || len(old.Files) != len(c.opts.Files) {
		return nil
	}
	for _, a := range old.Attachments {
		// a link retargeted, or removed, changes the message as much
		// as a file rewritten
		if path, err := filepath.EvalSymlinks(a.Named); err != nil || path != a.Path {
			return nil
		}
		if sum, _, err := fileSum(a.Path); err != nil || sum != a.Sum {
			return nil
		}
	}
	tails := make([]tail, len(old.Files))
	for i, file := range c.opts.Files {
		t, ok := tailOf(file, old.Files[i])
		if !ok {
			return nil
		}
		tails[i] = t
	}
	tc := *c
	tc.tails, tc.since = tails, old
	return &tc
}

// Upto returns the campaign, one Since made, that reads no further into
// each file than s, what a read of it read: a second read of the same rows
// then reads the same bytes, or fewer if the file was changed meanwhile,
// never rows appended since.
func (c *Campaign) Upto(s *Source) *Campaign {
	tc := *c
	tc.tails = slices.Clone(c.tails)
	for i := range tc.tails {
		if i < len(s.Files) {
			tc.tails[i].upto = s.Files[i].Size
		}
	}
	return &tc
}

// Unchanged reports whether the campaign is one Since returned, and no
// file has anything to read.
func (c *Campaign) Unchanged() bool {
	if c.since == nil {
		return false
	}
	for _, t := range c.tails {
		if !t.same {
			return false
		}
	}
	return true
}

// tailOf checks that file still begins with the bytes of old, and says
// where a read of what follows them starts.
func tailOf(file string, old SourceFile) (tail, bool) {
	abs, err := filepath.Abs(file)
	if err != nil || abs != old.Path {
		return tail{}, false
	}
	f, err := os.Open(file)
	if err != nil {
		return tail{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() < old.Size {
		return tail{}, false
	}
	h := sha256.New()
	last := &lastByte{w: h}
	if n, err := io.CopyN(last, f, old.Size); err != nil || n != old.Size || [32]byte(h.Sum(nil)) != old.Sum {
		return tail{}, false
	}
	if fi.Size() == old.Size {
		return tail{from: old, same: true}, true
	}
	// Rows go on after a line end; a CSV file's need its header.
	csvFile := filepath.Ext(file) != ".jsonl" && filepath.Ext(file) != ".ndjson"
	if (old.Size > 0 && last.b != '\n') || (csvFile && old.Header == nil) {
		return tail{}, false
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return tail{}, false
	}
	return tail{from: old, state: state}, true
}

// lastByte passes writes on, remembering the last byte written.
type lastByte struct {
	w io.Writer
	b byte
}

func (l *lastByte) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.b = p[len(p)-1]
	}
	return l.w.Write(p)
}

// sourceReader reads a campaign file as a read takes it in: it hashes
// and counts the bytes, keeps the first line, and adds the bytes read to
// a scan's progress.
type sourceReader struct {
	r      io.Reader
	sum    hash.Hash
	file   SourceFile
	header []byte // the first line, while it is read
	inHead bool
	read   *int64
}

// maxHeader is the longest first line a Source keeps.
const maxHeader = 64 << 10

// newSourceReader reads f from its start, or, with t, from where t's
// earlier read ended (f is moved there).
func newSourceReader(f *os.File, path string, t *tail, read *int64) (*sourceReader, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	s := &sourceReader{r: f, sum: sha256.New(), file: SourceFile{Path: abs}, inHead: true, read: read}
	if t != nil {
		if err := s.sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(t.state); err != nil {
			return nil, err
		}
		if _, err := f.Seek(t.from.Size, io.SeekStart); err != nil {
			return nil, err
		}
		if t.upto > 0 {
			s.r = io.LimitReader(f, t.upto-t.from.Size)
		}
		s.file = t.from
		s.inHead = false
	}
	return s, nil
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	b := p[:n]
	s.sum.Write(b)
	s.file.Size += int64(n)
	s.file.Lines += bytes.Count(b, []byte("\n"))
	*s.read += int64(n)
	if s.inHead {
		end := bytes.IndexByte(b, '\n')
		if end >= 0 {
			b = b[:end+1]
		}
		s.header = append(s.header, b...)
		if end >= 0 || len(s.header) > maxHeader {
			s.inHead = false
			if end >= 0 && len(s.header) <= maxHeader && bytes.IndexByte(s.header, '"') < 0 && !blankLine(s.header) {
				s.file.Header = s.header
			}
		}
	}
	return n, err
}

// blankLine reports whether a first line holds nothing but a byte-order
// mark and its line end: the header is on a later line, which encoding/csv
// finds, and a read of the rows after it alone cannot be made.
func blankLine(line []byte) bool {
	line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	return len(bytes.TrimRight(line, "\r\n")) == 0
}

// source is what the reader read of its file.
func (s *sourceReader) source() SourceFile {
	f := s.file
	f.Sum = [32]byte(s.sum.Sum(nil))
	return f
}

// sourceOf is the Source of a read: the files as read, and the
// attachments its messages name, with those of the read it went on from.
func (c *Campaign) sourceOf(files []SourceFile, groups map[Key]*group) *Source {
	s := &Source{Options: c.optionsSum, Files: files}
	seen := map[SourceAttachment]bool{}
	add := func(a SourceAttachment) {
		if !seen[a] {
			seen[a] = true
			s.Attachments = append(s.Attachments, a)
		}
	}
	if c.since != nil {
		for _, a := range c.since.Attachments {
			add(a)
		}
	}
	eachAttachment(groups, func(a Attachment) {
		add(SourceAttachment{Named: a.Named, Path: a.Path, Sum: a.Sum})
	})
	slices.SortFunc(s.Attachments, func(a, b SourceAttachment) int {
		return cmp.Or(strings.Compare(a.Named, b.Named), strings.Compare(a.Path, b.Path))
	})
	return s
}
