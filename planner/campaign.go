package planner

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"imcast/checkpoint"
	"os"
	"path/filepath"
	"strings"
)

// Options say which files make a campaign and how to read them.
type Options struct {
	Files      []string // CSV (.csv) and JSON Lines (.jsonl) files, read in order
	Message    string   // a JSON file of default fields for every row (--message)
	Encoding   string   // of CSV files: utf-8 (default) or gbk
	ExtReserve int      // bytes the runner adds to each ext (--dedup-ext), counted in the 5 KB limit
	// FilesDir is the folder the file and thumb of rows are named in, and
	// must stay inside (--files); "": each campaign file's own folder.
	FilesDir string
}

// Campaign is one or more campaign files read as one.
type Campaign struct {
	opts     Options
	defaults *fields
	// optionsSum is a digest of all but the files that shapes the
	// deliveries: the defaults' bytes, the encoding, the files folder and
	// the ext reserve (see Source).
	optionsSum [32]byte
	// With since (see Since), the files are read from where the read that
	// found since ended, file i from tails[i].
	since *Source
	tails []tail
}

// Open checks the options and reads the --message defaults. The campaign
// files are read later, by Plan and Batches.
func Open(opts Options) (*Campaign, error) {
	var ps problems
	if len(opts.Files) == 0 {
		ps.add("campaign", 0, "no campaign files given")
	}
	c := &Campaign{opts: opts}
	var defaults []byte
	if opts.Message != "" {
		c.defaults, defaults = readDefaults(opts.Message, &ps)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	filesDir := opts.FilesDir
	if filesDir != "" {
		filesDir, _ = filepath.Abs(filesDir)
	}
	c.optionsSum = sha256.Sum256(fmt.Appendf(nil, "defaults %x\nencoding %q\nfiles %q\next %d\n",
		sha256.Sum256(defaults), strings.ToLower(opts.Encoding), filesDir, opts.ExtReserve))
	return c, nil
}

// Name is the default campaign name: the first file's base name without its
// extension.
func (c *Campaign) Name() string {
	base := filepath.Base(c.opts.Files[0])
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// readDefaults reads the --message file: its fields, and its bytes.
func readDefaults(path string, ps *problems) (*fields, []byte) {
	data, err := os.ReadFile(path)
	if err != nil {
		ps.add(path, 0, "%s", errText(err))
		return nil, nil
	}
	data = skipBOMBytes(data)
	var row jsonRow
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := row.decode(dec); err != nil {
		ps.add(path, lineAt(data, errOffset(err, data, dec.InputOffset())), "%s", jsonError(err))
		return nil, nil
	}
	if rest := dec.InputOffset(); !onlySpace(data[rest:]) {
		ps.add(path, lineAt(data, rest+1), "malformed JSON: text after the object")
		return nil, nil
	}
	bad := func(format string, args ...any) { ps.add(path, 1, format, args...) }
	// what only a row gives, each said once, in the table's order
	why := map[string]string{
		"to":        "to: recipients come from the campaign files, not from --message",
		"recipient": "to: recipients come from the campaign files, not from --message",
		"campaign":  "campaign: name it with --campaign, not in --message",
	}
	said := map[string]bool{}
	for i, c := range columns {
		if !c.perRow || row[i] == nil {
			continue
		}
		msg := cmp.Or(why[c.name], c.name+": a delivery's "+c.name+" comes from a report's rows, not from --message")
		if !said[msg] {
			said[msg] = true
			bad("%s", msg)
		}
	}
	f := row.fields(bad)
	return &f, data
}

// errOffset is where in data a JSON error is: the offset a syntax error
// gives, the first place an unknown key stands, or at.
func errOffset(err error, data []byte, at int64) int64 {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Offset
	}
	if key, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if i := bytes.Index(data, []byte(key)); i >= 0 {
			return int64(i) + 1
		}
	}
	return at
}

// lineAt is the line of data holding the byte at offset (1-based lines;
// offsets count from 1, as json.SyntaxError's do).
func lineAt(data []byte, offset int64) int {
	offset = min(max(offset-1, 0), int64(len(data)))
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}

func skipBOMBytes(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		return b[3:]
	}
	return b
}

// deliveryFunc receives each valid delivery: a message and one recipient.
type deliveryFunc func(m *Message, to string) error

// scan reads every file and calls fn for each delivery of each valid row,
// duplicates included. Rows with problems are not passed on; their problems
// come back as an *InvalidError once every file is read. A file with no rows
// at all is a problem too: a campaign that sends nothing is a mistake (but
// a file with nothing appended since, read by a Campaign Since made, is
// not read). *prog follows how far the scan is. It returns what it read of
// each file.
func (c *Campaign) scan(ctx context.Context, prog *progress, fn deliveryFunc) ([]SourceFile, error) {
	var ps problems
	msgs := &messages{defaults: c.defaults, extReserve: c.opts.ExtReserve, cache: map[string]compiled{}}
	rows := 0
	c.startProgress(prog)
	files := make([]SourceFile, len(c.opts.Files))
	for i, file := range c.opts.Files {
		var t *tail
		if c.since != nil {
			if t = &c.tails[i]; t.same {
				files[i] = t.from
				continue
			}
		}
		dir := filepath.Dir(file)
		if c.opts.FilesDir != "" {
			dir = c.opts.FilesDir
		}
		bad := func(line int, format string, args ...any) { ps.add(file, line, format, args...) }
		found := ps.count()
		fileRows := 0
		read, err := readFile(file, c.opts.Encoding, t, &prog.read, func(line int, f *fields, to []string) error {
			fileRows++
			if rows++; rows%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			e := msgs.of(f, dir)
			for _, p := range e.probs {
				bad(line, "%s", p)
			}
			return deliveries(e.msg, to, line, bad, fn)
		}, bad)
		if err != nil {
			return nil, err
		}
		files[i] = read
		if fileRows == 0 && ps.count() == found && t == nil {
			ps.add(file, 0, "no deliveries: the file holds no rows")
		}
	}
	return files, ps.err()
}

// startProgress sets prog to the bytes the scan is to read.
func (c *Campaign) startProgress(prog *progress) {
	*prog = progress{}
	for i, file := range c.opts.Files {
		if fi, err := os.Stat(file); err == nil {
			prog.total += fi.Size()
			if c.since != nil {
				prog.total -= c.tails[i].from.Size
			}
		}
	}
}

// deliveries checks the recipients of the row at line and hands fn each
// valid one with the row's message (none if the message has problems).
func deliveries(m *Message, to []string, line int, bad badFunc, fn deliveryFunc) error {
	if len(to) == 0 {
		bad(line, "to is missing: every row needs a recipient")
		return nil
	}
	for _, id := range to {
		id = strings.TrimSpace(id)
		if id == "" {
			bad(line, "to is empty")
			continue
		}
		if p := idProblem(id); p != "" {
			bad(line, "to %s", p)
			continue
		}
		if m != nil {
			if err := fn(m, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// compiled is a row's message, validated, or its problems.
type compiled struct {
	msg   *Message
	probs []string
}

// messages validates the message of each row's fields once for each
// distinct one (the cache is cleared past 65536 of them), and at once for
// a row like the one before, the common case.
type messages struct {
	defaults   *fields
	extReserve int
	cache      map[string]compiled
	key        []byte
	// the row before
	haveLast   bool
	lastFields fields
	lastDir    string
	last       compiled
}

func (ms *messages) of(f *fields, dir string) compiled {
	if ms.haveLast && *f == ms.lastFields && dir == ms.lastDir {
		return ms.last
	}
	merged := f.over(ms.defaults)
	ms.key = append(append(ms.key[:0], dir...), 0)
	ms.key = merged.appendKey(ms.key)
	e, ok := ms.cache[string(ms.key)]
	if !ok {
		if len(ms.cache) >= 1<<16 {
			clear(ms.cache)
		}
		m, probs := compile(merged, dir, ms.extReserve)
		if p := idProblem(strings.TrimSpace(merged.Scope.V)); p != "" {
			m, probs = nil, append(probs, "scope "+p)
		}
		e = compiled{msg: m, probs: probs}
		ms.cache[string(ms.key)] = e
	}
	ms.haveLast, ms.lastFields, ms.lastDir, ms.last = true, *f, dir, e
	return e
}

// deliverySet remembers deliveries by their checkpoint.Identity keys (and
// its collision policy): 10 million take 128 MB. Past what dedupSlots
// holds, deliveries not in memory go to a spill on disk in dir, whose
// verdicts come once the read ends (see spill).
type deliverySet struct {
	id    checkpoint.Identity
	seen  *hashSet
	limit int // hashes seen may hold
	dir   string
	spill *spill
}

// newDeliverySet makes an empty set; expect, if set, says how many
// deliveries it will hold in the end (see hashSet).
func newDeliverySet(expect func() int, dir string) *deliverySet {
	seen := newHashSet(0)
	seen.expect, seen.max = expect, dedupSlots
	return &deliverySet{id: checkpoint.NewIdentity(), seen: seen, limit: 3 * max(dedupSlots, len(seen.slots)) / 4, dir: dir}
}

// delivery is one delivery read, and whether it is new to the set, or
// spilled, its verdict to come.
type delivery struct {
	m       *Message
	to      string
	new     bool
	spilled bool
}

// addAll adds each delivery of ds and sets its new, or its spilled.
func (s *deliverySet) addAll(ds []delivery) error {
	var hs [256]uint64
	for i := 0; i < len(ds); i += len(hs) {
		part := ds[i:min(len(ds), i+len(hs))]
		for j, d := range part {
			hs[j] = s.hash(d.m, d.to)
		}
		for j := range part {
			if s.spill == nil && s.seen.n < s.limit {
				part[j].new = s.seen.add(hs[j])
				continue
			}
			if s.seen.has(hs[j]) {
				continue // a repeat of one held in memory
			}
			if s.spill == nil {
				var err error
				if s.spill, err = newSpill(s.dir); err != nil {
					return err
				}
			}
			part[j].spilled = true
			if err := s.spill.put(part[j].m, part[j].to, hs[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// replay gives fn the spilled deliveries, in read order, with their
// verdicts.
func (s *deliverySet) replay(ctx context.Context, fn func(m *Message, to string, new bool) error) error {
	if s.spill == nil {
		return nil
	}
	return s.spill.replay(ctx, fn)
}

// close removes the spill, if any.
func (s *deliverySet) close() { s.spill.close() }

func (s *deliverySet) hash(m *Message, to string) uint64 {
	return s.id.Key(m.Campaign, string(m.Kind), m.Scope, &m.Digest, to)
}

// progress is how far a scan is through the campaign files: their bytes,
// and those read so far.
type progress struct{ total, read int64 }

// expect guesses how many deliveries the scan will have found when it
// ends, from the n found so far and the share of the files' bytes read.
func (p *progress) expect(n int) int {
	if p.read <= 0 || p.total <= p.read {
		return n
	}
	return int(float64(n) * float64(p.total) / float64(p.read))
}
