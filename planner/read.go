package planner

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// rowFunc receives each row read: its line (the first line of a CSV record
// that spans lines), its fields and its recipients. The slices are reused
// after it returns.
type rowFunc func(line int, f *fields, to []string) error

// badFunc receives a problem at a line.
type badFunc func(line int, format string, args ...any)

// Encodings a CSV file may be read in.
const (
	UTF8 = "utf-8"
	GBK  = "gbk"
)

// readFile streams the rows of one campaign file, by its extension, from
// its start or, with t, from where an earlier read ended. Problems with
// single rows go to bad and reading goes on; an error that leaves the rest
// of the file unreadable (malformed CSV quoting, a CSV record or JSON line
// over maxLine bytes, an I/O error) goes to bad too and ends that file.
// The error returned is fn's. It returns what it read of the file; the
// bytes read are added to *read.
func readFile(path, encoding string, t *tail, read *int64, fn rowFunc, bad badFunc) (SourceFile, error) {
	file, err := os.Open(path)
	if err != nil {
		bad(0, "%s", errText(err))
		return SourceFile{}, nil
	}
	defer file.Close()
	f, err := newSourceReader(file, path, t, read)
	if err != nil {
		bad(0, "%s", errText(err))
		return SourceFile{}, nil
	}
	shift := 0
	var r io.Reader = f
	if t != nil {
		shift = t.from.Lines
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		if t != nil {
			// the header, then the rows after the earlier read's
			r, shift = io.MultiReader(bytes.NewReader(t.from.Header), f), shift-1
		}
		switch strings.ToLower(encoding) {
		case "", UTF8, "utf8":
		case GBK:
			sniff := &utf8Sniffer{r: r}
			r = simplifiedchinese.GBK.NewDecoder().Reader(sniff)
			defer func() {
				if sniff.isUTF8() {
					bad(0, "--encoding gbk, but the file is UTF-8 (its non-ASCII text is valid UTF-8): read as GBK it would be sent garbled; drop --encoding gbk")
				}
			}()
		default:
			bad(0, "unknown encoding %q (want utf-8 or gbk)", encoding)
			return SourceFile{}, nil
		}
		err = readCSV(r, shift, fn, bad)
	case ".jsonl", ".ndjson":
		err = readJSONL(r, shift, fn, bad)
	default:
		bad(0, "unknown file type %q: want .csv or .jsonl", filepath.Ext(path))
		return SourceFile{}, nil
	}
	return f.source(), err
}

// skipBOM drops a UTF-8 byte-order mark.
func skipBOM(r io.Reader) *bufio.Reader {
	br := bufio.NewReaderSize(r, 256<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	return br
}

// readCSV streams the rows of a CSV file. Lines with no quote in them,
// the common case, are split at their commas here, as encoding/csv splits
// them, and much faster; from the first line with a quote on (or one longer
// than the read buffer), encoding/csv reads the rest of the file, through
// readCSVReference. The header is mapped through the column table. Lines after the
// header are shifted by shift, for input that goes on from the header at
// line shift+2 of the file.
func readCSV(r io.Reader, shift int, fn rowFunc, bad badFunc) error {
	br := skipBOM(r)
	first, err := br.ReadSlice('\n')
	header := plainLine(first)
	var headers []int
	ok := header != nil && (err == nil || err == io.EOF)
	if ok {
		headers, ok = csvHeaders(header)
	}
	if !ok {
		// the reference reads it all, and says what is wrong with a bad header
		return readCSVReference(io.MultiReader(bytes.NewReader(bytes.Clone(first)), br), fn, bad, shift)
	}
	header = bytes.Clone(header)
	rows := newCSVRows(headers)
	record := make([]string, 0, len(headers))
	for line := 2 + shift; ; line++ {
		raw, err := br.ReadSlice('\n')
		if len(raw) == 0 && err == io.EOF {
			return nil
		}
		plain := plainLine(raw)
		if plain == nil || (err != nil && err != io.EOF) {
			// encoding/csv reads on from this line, after the header
			rest := io.MultiReader(bytes.NewReader(append(append(header, '\n'), raw...)), br)
			return readCSVReference(rest, fn, bad, line-2)
		}
		if len(plain) == 0 {
			continue // encoding/csv skips empty lines
		}
		text := string(plain)
		record = record[:0]
		for {
			i := strings.IndexByte(text, ',')
			if i < 0 {
				record = append(record, text)
				break
			}
			record = append(record, text[:i])
			text = text[i+1:]
		}
		if len(record) != len(headers) {
			bad(line, "wrong number of fields: the header has %d", len(headers))
			continue
		}
		if err := rows.emit(line, record, fn, bad, utf8.Valid(plain)); err != nil {
			return err
		}
	}
}

// plainLine returns line without its line end ("\n", "\r\n", or a "\r"
// that ends the file), or nil if it holds a quote: a line encoding/csv
// reads as plain fields split at commas.
func plainLine(line []byte) []byte {
	if bytes.IndexByte(line, '"') >= 0 {
		return nil
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if line == nil {
		line = []byte{}
	}
	return line
}

// csvHeaders maps a header line as readCSVReference does, and reports
// whether it is a valid campaign header.
func csvHeaders(line []byte) ([]int, bool) {
	record, err := csv.NewReader(bytes.NewReader(line)).Read()
	if err != nil {
		return nil, false
	}
	cols, names, unknown := csvHeader(record)
	return cols, checkHeaders(names, unknown, func(int, string, ...any) {})
}

// checkHeaders reports the problems of a header to bad, and whether it has
// none.
func checkHeaders(headers, unknown []string, bad badFunc) bool {
	ok := true
	for _, h := range unknown {
		bad(1, "unknown column %q", h)
		ok = false
	}
	seen := map[string]bool{}
	for _, h := range headers {
		if seen[h] {
			bad(1, "column %q appears twice", h)
			ok = false
		}
		seen[h] = true
	}
	switch {
	case !seen["to"] && !seen["recipient"]:
		bad(1, "no to column: every row needs a recipient")
		ok = false
	case seen["to"] && seen["recipient"]:
		bad(1, "both to and recipient columns: keep one")
		ok = false
	}
	return ok
}

// csvRows turns the records of a CSV file into rows, through its header.
type csvRows struct {
	cols []int // of each cell: its place in columns, -1 for none
	to   []string
}

func newCSVRows(cols []int) *csvRows { return &csvRows{cols: cols, to: make([]string, 1)} }

// emit checks the record read at line and hands its row to fn; valid says
// the whole line is UTF-8 text, so its cells are. An empty cell is an
// absent value.
func (r *csvRows) emit(line int, record []string, fn rowFunc, bad badFunc, valid bool) error {
	var f fields
	var to, recipient string
	for i, cell := range record {
		c := r.cols[i]
		if c < 0 || cell == "" || columns[c].value == jsonIgnored {
			continue
		}
		if !valid && !utf8.ValidString(cell) {
			bad(line, "not UTF-8 text (a file saved on a Chinese system may need --encoding gbk)")
			return nil
		}
		switch col := &columns[c]; {
		case col.field != nil:
			*col.field(&f) = some(cell)
		case c == colTo:
			to = cell
		case c == colRecipient:
			recipient = cell
		}
	}
	if to == "" {
		to = recipient
	}
	r.to[0] = to
	return fn(line, &f, r.to)
}

// readCSVReference reads a CSV file with encoding/csv alone: the
// reference readCSV must agree with, and what reads the lines it leaves.
// Its lines are shifted by shift, for input that starts with the header
// and goes on at line shift+2 of the file. No record is read past maxLine
// bytes: encoding/csv has no limit of its own, and an unclosed quote would
// have it hold the rest of the file as one field.
func readCSVReference(r io.Reader, fn rowFunc, bad badFunc, shift int) error {
	lim := &capReader{r: r}
	lim.from(0)
	br := skipBOM(lim)
	// bytes the bufio.Reader may hold beyond what the CSV reader took, and
	// the byte-order mark, which the CSV reader never sees
	slack := int64(br.Size()) + lim.n - int64(br.Buffered())
	lim.limit += slack
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	// start is where the record being read starts, counted as the CSV
	// reader's InputOffset counts: from the end of the record before it,
	// blank lines between them included.
	var start int64
	tooLong := func() bool { return lim.hit || cr.InputOffset()-start > maxLine }
	const tooLongText = "a record longer than %d bytes (an unclosed quote?)"
	head, err := cr.Read()
	if tooLong() {
		bad(csvStartLine(err, 1), tooLongText, maxLine)
		return nil
	}
	if errors.Is(err, io.EOF) {
		return nil // no header and no rows: scan says the file holds none
	}
	if err != nil {
		bad(csvLine(err, 1), "header: %s", csvError(err))
		return nil
	}
	cols, names, unknown := csvHeader(head)
	if !checkHeaders(names, unknown, bad) {
		return nil
	}
	rows := newCSVRows(cols)
	// the record before, and its line, for a problem with no record of its own
	var prev []string
	prevLine := 1 + shift
	for {
		start = cr.InputOffset()
		lim.from(start + slack)
		record, err := cr.Read()
		if pe := (*csv.ParseError)(nil); shift != 0 && errors.As(err, &pe) {
			pe.StartLine, pe.Line = pe.StartLine+shift, pe.Line+shift
		}
		if tooLong() {
			line := csvStartLine(err, 0)
			if err == nil {
				line, _ = cr.FieldPos(0)
				line += shift
			} else if line == 0 {
				line = lineAfter(prevLine, prev)
			}
			bad(line, tooLongText, maxLine)
			return nil
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				bad(pe.StartLine, "wrong number of fields: the header has %d", len(cols))
				prev, prevLine = record, pe.StartLine
				continue
			}
			bad(csvLine(err, 0), "%s", csvError(err))
			return nil
		}
		line, _ := cr.FieldPos(0)
		line += shift
		prev, prevLine = record, line
		if err := rows.emit(line, record, fn, bad, false); err != nil {
			return err
		}
	}
}

// capReader passes a CSV file on to the CSV reader's bufio.Reader, and
// never beyond limit bytes, which readCSV moves past the start of each
// record. At the limit it ends the input, as if the file ended there, so
// that encoding/csv closes the record it is in and says which line that
// record started on; hit tells readCSV why the input ended.
type capReader struct {
	r     io.Reader
	n     int64 // bytes passed on
	limit int64
	hit   bool
}

// from lets the reader pass on maxLine bytes beyond offset.
func (c *capReader) from(offset int64) { c.limit = offset + maxLine }

func (c *capReader) Read(p []byte) (int, error) {
	room := c.limit - c.n
	if room <= 0 {
		c.hit = true
		return 0, io.EOF
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// lineAfter is the line after a record that starts at line: a new line in
// a field is a line of the record.
func lineAfter(line int, record []string) int {
	line++
	for _, f := range record {
		line += strings.Count(f, "\n")
	}
	return line
}

func csvLine(err error, fallback int) int {
	var pe *csv.ParseError
	if errors.As(err, &pe) && pe.Line > 0 {
		return pe.Line
	}
	return fallback
}

// csvStartLine is the line a record with a CSV error starts on, or fallback.
func csvStartLine(err error, fallback int) int {
	var pe *csv.ParseError
	if errors.As(err, &pe) && pe.StartLine > 0 {
		return pe.StartLine
	}
	return fallback
}

// csvError words a CSV error without its position, which the caller gives.
func csvError(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		switch {
		case errors.Is(pe.Err, csv.ErrBareQuote):
			return fmt.Sprintf("malformed CSV: a bare \" in an unquoted field (column %d); quote the field and double the \"", pe.Column)
		case errors.Is(pe.Err, csv.ErrQuote):
			return fmt.Sprintf("malformed CSV: a quoted field is not closed properly (column %d, starting at line %d)", pe.Column, pe.StartLine)
		}
		return "malformed CSV: " + pe.Err.Error()
	}
	return "read: " + err.Error()
}

// maxLine is the longest JSON Lines row and the longest CSV record read: a
// body and ext of 5 KB and hundreds of recipients fit many times over.
const maxLine = 4 << 20

// plainRows says whether readJSONL reads the common rows itself (see
// decodePlainRow); false, for tests, leaves every row to encoding/json.
var plainRows = true

func readJSONL(r io.Reader, shift int, fn rowFunc, bad badFunc) error {
	if shift == 0 {
		r = skipBOM(r)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := shift
	var to []string
	for sc.Scan() {
		line++
		// JSON's white space only: encoding/json takes no other
		text := bytes.Trim(sc.Bytes(), " \t\r\n")
		if len(text) == 0 {
			continue
		}
		if !utf8.Valid(text) {
			bad(line, "not UTF-8 text")
			continue
		}
		var row jsonRow
		if !plainRows || !decodePlainRow(text, &row) {
			row = jsonRow{}
			dec := json.NewDecoder(bytes.NewReader(text))
			if err := row.decode(dec); err != nil {
				bad(line, "%s", jsonError(err))
				continue
			}
			if !onlySpace(text[dec.InputOffset():]) {
				bad(line, "malformed JSON: text after the object")
				continue
			}
		}
		ok := true
		rowBad := func(format string, args ...any) { bad(line, format, args...); ok = false }
		f := row.fields(rowBad)
		to = append(to[:0], row.recipients(rowBad)...)
		if !ok {
			continue
		}
		if err := fn(line, &f, to); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			bad(line+1, "line longer than %d bytes", maxLine)
		} else {
			bad(line+1, "read: %v", err)
		}
	}
	return nil
}

// onlySpace reports whether b holds nothing but JSON white space.
func onlySpace(b []byte) bool {
	return len(bytes.Trim(b, " \t\r\n")) == 0
}

// utf8Sniffer passes a file through and tells whether it held non-ASCII
// text that is all valid UTF-8: a file said to be GBK that is in fact
// UTF-8 (GBK's Chinese text is almost never valid UTF-8).
type utf8Sniffer struct {
	r         io.Reader
	tail      []byte // an incomplete sequence at the end of the last read
	multibyte bool   // a valid sequence of more than one byte was seen
	invalid   bool
}

func (u *utf8Sniffer) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if !u.invalid && n > 0 {
		b := append(u.tail, p[:n]...)
		// keep back what may be the start of a sequence the next read ends
		cut := len(b)
		for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
			if b[i] >= 0xC0 {
				if !utf8.FullRune(b[i:]) {
					cut = i
				}
				break
			}
			if b[i] < 0x80 {
				break
			}
		}
		body := b[:cut]
		u.tail = append(u.tail[:0:0], b[cut:]...)
		if !utf8.Valid(body) {
			u.invalid = true
		} else if !u.multibyte && bytes.IndexFunc(body, func(r rune) bool { return r >= 0x80 }) >= 0 {
			u.multibyte = true
		}
	}
	return n, err
}

func (u *utf8Sniffer) isUTF8() bool { return u.multibyte && !u.invalid && len(u.tail) == 0 }
