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
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gocarina/gocsv"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// csvRow maps a CSV header to the row's fields, through gocsv's tags.
type csvRow struct {
	Kind             string `csv:"kind"`
	To               string `csv:"to"`
	Recipient        string `csv:"recipient"`
	Scope            string `csv:"scope"`
	Type             string `csv:"type"`
	Msg              string `csv:"msg"`
	Body             string `csv:"body"`
	File             string `csv:"file"`
	Thumb            string `csv:"thumb"`
	RestrictAccess   string `csv:"restrict_access"`
	From             string `csv:"from"`
	Ext              string `csv:"ext"`
	SyncDevice       string `csv:"sync_device"`
	RouteType        string `csv:"routetype"`
	RoamIgnoreUsers  string `csv:"roam_ignore_users"`
	NeedGroupAck     string `csv:"need_group_ack"`
	ChatroomMsgLevel string `csv:"chatroom_msg_level"`
	// Columns of a report (imcast report), so that a report can be fed
	// back as a campaign: its rows stay in their campaign, and the rest
	// are ignored.
	Campaign  string `csv:"campaign"`
	State     string `csv:"state"`
	MessageID string `csv:"message_id"`
	Error     string `csv:"error"`
	Time      string `csv:"time"`
}

func cell(s string) opt {
	if s == "" {
		return opt{}
	}
	return some(s)
}

func (r *csvRow) fields() fields {
	return fields{
		Kind: cell(r.Kind), Scope: cell(r.Scope), Type: cell(r.Type), File: cell(r.File),
		Thumb: cell(r.Thumb), RestrictAccess: cell(r.RestrictAccess),
		Msg: cell(r.Msg), From: cell(r.From), RouteType: cell(r.RouteType),
		ChatroomMsgLevel: cell(r.ChatroomMsgLevel), Body: cell(r.Body), Ext: cell(r.Ext),
		RoamIgnoreUsers: cell(r.RoamIgnoreUsers), SyncDevice: cell(r.SyncDevice), NeedGroupAck: cell(r.NeedGroupAck),
		Campaign: cell(r.Campaign), State: cell(r.State),
	}
}

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
			r = simplifiedchinese.GBK.NewDecoder().Reader(r)
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
// readCSVReference. The header is always gocsv's to map. Lines after the
// header are shifted by shift, for input that goes on from the header at
// line shift+2 of the file.
func readCSV(r io.Reader, shift int, fn rowFunc, bad badFunc) error {
	br := skipBOM(r)
	first, err := br.ReadSlice('\n')
	header := plainLine(first)
	var headers []string
	ok := header != nil && (err == nil || err == io.EOF)
	if ok {
		headers, ok = csvHeaders(header)
	}
	if !ok {
		// the reference reads it all, and says what is wrong with a bad header
		return readCSVReference(io.MultiReader(bytes.NewReader(bytes.Clone(first)), br), fn, bad, shift)
	}
	header = bytes.Clone(header)
	var row csvRow
	cells := row.columns(headers)
	to := make([]string, 1)
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
		row = csvRow{}
		for i, cell := range record {
			if p := cells[i]; p != nil {
				*p = cell
			}
		}
		if err := row.emit(line, fn, bad, to, utf8.Valid(plain)); err != nil {
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

// csvHeaders maps a header line through gocsv as readCSVReference does,
// and reports whether it is a valid campaign header.
func csvHeaders(line []byte) ([]string, bool) {
	um, err := gocsv.NewUnmarshaller(csv.NewReader(bytes.NewReader(line)), csvRow{})
	if err != nil {
		return nil, false
	}
	ok := true
	if err := um.RenormalizeHeaders(normalizeHeaders); err != nil {
		return nil, false
	}
	checkHeaders(um.Headers, um.MismatchedHeaders, func(int, string, ...any) { ok = false })
	return um.Headers, ok
}

func normalizeHeaders(h []string) []string {
	out := make([]string, len(h))
	for i, s := range h {
		out[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return out
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

// emit checks the row read at line and hands it to fn; valid says the
// whole line is UTF-8 text, so its fields are.
func (r *csvRow) emit(line int, fn rowFunc, bad badFunc, to []string, valid bool) error {
	if !valid && !validUTF8(r) {
		bad(line, "not UTF-8 text (a file saved on a Chinese system may need --encoding gbk)")
		return nil
	}
	f := r.fields()
	to[0] = r.To
	if r.To == "" {
		to[0] = r.Recipient
	}
	return fn(line, &f, to)
}

// readCSVReference reads a CSV file with encoding/csv and gocsv alone: the
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
	um, err := gocsv.NewUnmarshaller(cr, csvRow{})
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
	if err := um.RenormalizeHeaders(normalizeHeaders); err != nil {
		bad(1, "header: %v", err)
		return nil
	}
	if !checkHeaders(um.Headers, um.MismatchedHeaders, bad) {
		return nil
	}
	// gocsv matched the header to csvRow's fields; the rows are read
	// straight into one reused csvRow through that mapping, which spares
	// a reflective allocation per row.
	var row csvRow
	cells := row.columns(um.Headers)
	to := make([]string, 1)
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
				bad(pe.StartLine, "wrong number of fields: the header has %d", len(um.Headers))
				prev, prevLine = record, pe.StartLine
				continue
			}
			bad(csvLine(err, 0), "%s", csvError(err))
			return nil
		}
		line, _ := cr.FieldPos(0)
		line += shift
		prev, prevLine = record, line
		row = csvRow{}
		for i, cell := range record {
			if p := cells[i]; p != nil {
				*p = cell
			}
		}
		if err := row.emit(line, fn, bad, to, false); err != nil {
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

// csvFields maps a csv tag to the index of its csvRow field.
var csvFields = func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeFor[csvRow]()
	for i := range t.NumField() {
		m[t.Field(i).Tag.Get("csv")] = i
	}
	return m
}()

// columns points each column of the header at its field of r, nil where
// the column has none.
func (r *csvRow) columns(headers []string) []*string {
	v := reflect.ValueOf(r).Elem()
	cells := make([]*string, len(headers))
	for i, h := range headers {
		if f, ok := csvFields[h]; ok {
			cells[i] = v.Field(f).Addr().Interface().(*string)
		}
	}
	return cells
}

func validUTF8(r *csvRow) bool {
	for _, s := range [...]string{r.To, r.Recipient, r.Kind, r.Scope, r.Type, r.Msg, r.Body, r.File, r.Thumb, r.From, r.Ext,
		r.RoamIgnoreUsers, r.RouteType, r.ChatroomMsgLevel, r.SyncDevice, r.NeedGroupAck, r.Campaign, r.State} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
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
			dec.DisallowUnknownFields()
			if err := dec.Decode(&row); err != nil {
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
