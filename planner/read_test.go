package planner

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// readRow is one row as a reader hands it on.
type readRow struct {
	line     int
	to       string // the recipients, joined by |
	msg      string
	from     string
	hasFrom  bool
	problems int
}

// readRows reads a campaign file with the package's reader for its
// extension and returns its rows and problems.
func readRows(t *testing.T, path, encoding string) ([]readRow, []string) {
	t.Helper()
	var rows []readRow
	var probs []string
	_, err := readFile(path, encoding, nil, new(int64), func(line int, f *fields, to []string) error {
		rows = append(rows, readRow{line: line, to: strings.Join(to, "|"), msg: f.Msg.V, from: f.From.V, hasFrom: f.From.OK})
		return nil
	}, func(line int, format string, args ...any) {
		probs = append(probs, fmt.Sprintf("%d: %s", line, fmt.Sprintf(format, args...)))
	})
	if err != nil {
		t.Fatalf("readFile(%s): %v", path, err)
	}
	return rows, probs
}

// TestReadCSV checks what a CSV may hold: a UTF-8 byte-order mark, CRLF
// line ends, header names in any case and with blanks around them, quoted
// commas, quotes and new lines, blank lines, and any Unicode. A row's line
// is the line its record starts on.
func TestReadCSV(t *testing.T) {
	rows, probs := readRows(t, "testdata/read/bom_crlf.csv", "")
	checkLines(t, "problems", probs, nil)
	want := []readRow{
		{line: 2, to: "alice", msg: "Hello, Alice", from: "shop", hasFrom: true},
		{line: 3, to: "bob", msg: "Two lines:\nsecond line", from: "shop", hasFrom: true},
		{line: 5, to: "陈伟", msg: "你好，世界 🎉", from: "商店", hasFrom: true},
		{line: 6, to: "dave", msg: `He said "hi"`, from: "shop", hasFrom: true},
		{line: 8, to: "erin", msg: "a,b,\"c\"\nd", from: "shop", hasFrom: true},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows:\ngot  %+v\nwant %+v", rows, want)
	}
}

// TestReadCSVEndToEnd checks that the text read from a CSV arrives intact in
// the batches.
func TestReadCSVEndToEnd(t *testing.T) {
	bs := batchesOf(t, Options{Files: []string{"testdata/read/bom_crlf.csv"}}, nil)
	got := map[string]string{}
	for _, b := range bs {
		for _, to := range b.To {
			got[to] = bodyMsg(t, b)
		}
	}
	want := map[string]string{
		"alice": "Hello, Alice",
		"bob":   "Two lines:\nsecond line",
		"陈伟":    "你好，世界 🎉",
		"dave":  `He said "hi"`,
		"erin":  "a,b,\"c\"\nd",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages by recipient:\ngot  %q\nwant %q", got, want)
	}
}

// TestReadGBK checks --encoding gbk: a CSV saved in GBK is decoded, and the
// same file read as UTF-8 is refused.
func TestReadGBK(t *testing.T) {
	text := "to,msg,from\r\n张伟,你好，世界！欢迎加入。,商店\r\nalice,\"价格: 30元, 包邮\",商店\r\n"
	enc, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(enc, []byte(text)) {
		t.Fatal("GBK encoding changed nothing")
	}
	dir := t.TempDir()
	file := dir + "/gbk.csv"
	if err := os.WriteFile(file, enc, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("gbk", func(t *testing.T) {
		for _, encoding := range []string{GBK, "GBK"} {
			bs := batchesOf(t, Options{Files: []string{file}, Encoding: encoding}, nil)
			type got struct{ to, msg, from string }
			var gots []got
			for _, b := range bs {
				for _, to := range b.To {
					gots = append(gots, got{to, bodyMsg(t, b), *b.Message.Message.From})
				}
			}
			want := []got{{"张伟", "你好，世界！欢迎加入。", "商店"}, {"alice", "价格: 30元, 包邮", "商店"}}
			if !slices.Equal(gots, want) {
				t.Errorf("encoding %q: got %q, want %q", encoding, gots, want)
			}
		}
	})
	t.Run("utf-8 read as gbk", func(t *testing.T) {
		utf := dir + "/utf8.csv"
		// long enough that the sniffer sees it across reads of the file
		if err := os.WriteFile(utf, []byte(strings.Repeat(text, 20000)[:len(text)]+strings.Repeat("bob,你好,商店\r\n", 20000)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := planOpts(t, Options{Files: []string{utf}, Encoding: GBK})
		checkLines(t, "problems", problemStrings(t, err), []string{
			utf + ": --encoding gbk, but the file is UTF-8 (its non-ASCII text is valid UTF-8): read as GBK it would be sent garbled; drop --encoding gbk",
		})
	})
	t.Run("read as utf-8", func(t *testing.T) {
		_, err := planOpts(t, Options{Files: []string{file}})
		checkLines(t, "problems", problemStrings(t, err), []string{
			file + ":2: not UTF-8 text (a file saved on a Chinese system may need --encoding gbk)",
			file + ":3: not UTF-8 text (a file saved on a Chinese system may need --encoding gbk)",
		})
	})
}

// TestReadJSONL checks JSON Lines: a byte-order mark, CRLF, "to" as a
// string and as an array, blank lines skipped (and counted), "recipient" in
// place of "to", and no final new line.
func TestReadJSONL(t *testing.T) {
	rows, probs := readRows(t, "testdata/read/to_forms.jsonl", "")
	checkLines(t, "problems", probs, nil)
	want := []readRow{
		{line: 1, to: "alice", msg: "hi"},
		{line: 3, to: "bob|carol", msg: "hi"},
		{line: 5, to: "dave", msg: "hi"},
		{line: 6, to: "erin", msg: "hi"},
		{line: 7, to: "😀", msg: "你好"},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows:\ngot  %+v\nwant %+v", rows, want)
	}
}

// TestReadReport checks that a report (imcast report, CSV or JSONL) can be
// fed back as a campaign: its recipient column is the to column, its other
// columns are ignored, and the message comes from --message.
func TestReadReport(t *testing.T) {
	opts := Options{
		Files:   []string{"testdata/read/report.csv", "testdata/read/report.jsonl"},
		Message: "testdata/read/welcome.json",
	}
	p := mustPlan(t, opts)
	got := kindPlan(p, "users")
	got.Estimate, got.EstimatedSeconds = 0, 0
	if want := (KindPlan{Kind: "users", Recipients: 2, Pending: 2, Repeated: 2, Messages: 1, Batches: 1, Calls: 1, QuotaMessages: 2}); got != want {
		t.Errorf("users:\ngot  %+v\nwant %+v", got, want)
	}
	bs := batchesOf(t, opts, nil)
	var gots []string
	for _, b := range bs {
		gots = append(gots, fmt.Sprintf("%s %s %q %s", b.Message.Kind, b.Message.Scope, b.To, bodyMsg(t, b)))
	}
	checkLines(t, "batches", gots, []string{
		`users  ["alice" "bob"] Welcome! Reply to this message to reach our team.`,
		`group_members 184524748161025 ["carol"] Welcome! Reply to this message to reach our team.`,
	})
}

// TestReadSeveralFiles checks that several files make one campaign: the
// same message from a CSV and a JSONL file is one message, and a recipient
// listed in both gets it once.
func TestReadSeveralFiles(t *testing.T) {
	opts := Options{Files: []string{"testdata/read/part1.csv", "testdata/read/part2.jsonl"}}
	p := mustPlan(t, opts)
	want := KindPlan{Kind: "users", Recipients: 5, Pending: 5, Repeated: 1, Messages: 2, Batches: 2, Calls: 2, QuotaMessages: 5}
	got := kindPlan(p, "users")
	got.Estimate, got.EstimatedSeconds = 0, 0
	if got != want {
		t.Errorf("users:\ngot  %+v\nwant %+v", got, want)
	}
	if p.Rows != 6 {
		t.Errorf("deliveries read: got %d, want 6", p.Rows)
	}
	bs := batchesOf(t, opts, nil)
	var gots []string
	for _, b := range bs {
		gots = append(gots, fmt.Sprintf("%q ext=%s", b.To, b.Message.Message.Ext))
	}
	checkLines(t, "batches", gots, []string{
		`["alice" "bob" "carol" "dave"] ext={"pct":30,"sale":"flash"}`,
		`["alice"] ext=`,
	})
}

// TestReadDefaults checks --message: its fields apply to every row that
// leaves them out, and a row's own value overrides them.
func TestReadDefaults(t *testing.T) {
	t.Run("ids only", func(t *testing.T) {
		bs := batchesOf(t, Options{Files: []string{"testdata/read/ids.csv"}, Message: "testdata/read/welcome.json"}, nil)
		if len(bs) != 1 {
			t.Fatalf("got %d batches, want 1", len(bs))
		}
		b := bs[0]
		if got, want := fmt.Sprint(b.To), "[alice bob carol dave]"; got != want {
			t.Errorf("to: got %s, want %s", got, want)
		}
		if got, want := string(b.Message.Message.Body), `{"msg":"Welcome! Reply to this message to reach our team."}`; got != want {
			t.Errorf("body: got %s, want %s", got, want)
		}
		if got, want := string(b.Message.Message.Ext), `{"em_ignore_notification":false}`; got != want {
			t.Errorf("ext: got %s, want %s", got, want)
		}
		if b.Message.Message.From == nil || *b.Message.Message.From != "support" {
			t.Errorf("from: got %v, want support", b.Message.Message.From)
		}
	})
	t.Run("row values override", func(t *testing.T) {
		bs := batchesOf(t, Options{Files: []string{"testdata/read/overrides.csv"}, Message: "testdata/read/welcome.json"}, nil)
		var got []string
		for _, b := range bs {
			got = append(got, fmt.Sprintf("%q from=%s msg=%s", b.To, *b.Message.Message.From, bodyMsg(t, b)))
		}
		const welcome = "Welcome! Reply to this message to reach our team."
		checkLines(t, "batches", got, []string{
			`["alice" "dave"] from=support msg=` + welcome,
			`["bob"] from=support msg=Your own text`,
			`["carol"] from=bot msg=` + welcome,
		})
	})
}

// TestPlanSamples checks that every sample campaign plans without problems,
// and that Plan and Batches agree on the batches and recipients.
func TestPlanSamples(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		message string
	}{
		{name: "users", files: []string{"users.csv"}},
		{name: "groups", files: []string{"groups.jsonl"}},
		{name: "rooms", files: []string{"rooms.csv"}},
		{name: "group members", files: []string{"group_members.jsonl"}},
		{name: "room members", files: []string{"room_members.csv"}},
		{name: "legacy", files: []string{"legacy.jsonl"}},
		{name: "mixed", files: []string{"mixed.jsonl", "mixed.csv"}},
		{name: "ids", files: []string{"ids.csv"}, message: "welcome.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{}
			for _, f := range tt.files {
				opts.Files = append(opts.Files, "../samples/"+f)
			}
			if tt.message != "" {
				opts.Message = "../samples/" + tt.message
			}
			p := mustPlan(t, opts)
			bs := batchesOf(t, opts, nil)
			var recipients int64
			for _, b := range bs {
				recipients += int64(len(b.To))
			}
			if int64(len(bs)) != p.Total.Batches || recipients != p.Total.Recipients {
				t.Errorf("Batches gave %d batches of %d recipients; Plan says %d and %d", len(bs), recipients, p.Total.Batches, p.Total.Recipients)
			}
		})
	}
}

// tooLong is the problem of a CSV record over maxLine bytes.
var tooLong = fmt.Sprintf("a record longer than %d bytes (an unclosed quote?)", maxLine)

// writeLarge writes head, then unit repeated until it takes at least n
// bytes, then tail, through a small buffer, so that writing the file holds
// little memory.
func writeLarge(t testing.TB, path, head, unit string, n int, tail string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	w.WriteString(head)
	chunk := strings.Repeat(unit, max(1, (64<<10)/len(unit)))
	for written := 0; written < n; written += len(chunk) {
		w.WriteString(chunk)
	}
	w.WriteString(tail)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReadCSVBoundedMemory plans, through Open and Plan, a CSV with one
// cell of 100 MB and one with a quote left open before 50 MB of rows, and
// checks that each is one problem at the line its record starts on, found in
// memory bounded by maxLine, not by the file. The heap growth is measured
// with runtime.ReadMemStats: HeapSys, the heap taken from the system, is the
// peak, and TotalAlloc, every byte allocated, bounds it from above.
func TestReadCSVBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes files of 100 MB")
	}
	const (
		maxPeak  = 32 << 20
		maxAlloc = 64 << 20
	)
	tests := []struct {
		name             string
		head, unit, tail string
		size             int
		want             []string // problems, after FILE:
	}{
		{
			name: "cell of 100 MB",
			head: "to,msg\nalice,hi\nbob,", unit: "x", size: 100 << 20, tail: "\ncarol,hi\n",
			want: []string{"3: " + tooLong},
		},
		{
			name: "unclosed quote before 50 MB of rows",
			head: "to,msg\nalice,hi\nbob,\"hi\n", unit: "carol,hi\n", size: 50 << 20,
			want: []string{"3: " + tooLong},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "big.csv")
			writeLarge(t, file, tt.head, tt.unit, tt.size, tt.tail)
			// a low GC target, so that the peak is what the reader holds
			// rather than garbage the collector has not yet come to
			defer debug.SetGCPercent(debug.SetGCPercent(20))
			var before, after runtime.MemStats
			debug.FreeOSMemory()
			runtime.ReadMemStats(&before)
			_, err := planOpts(t, Options{Files: []string{file}})
			runtime.ReadMemStats(&after)
			var want []string
			for _, w := range tt.want {
				want = append(want, file+":"+w)
			}
			checkLines(t, "problems", problemStrings(t, err), want)
			peak := int64(after.HeapSys-after.HeapReleased) - int64(before.HeapSys-before.HeapReleased)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("file of %d MB: heap grew by %.1f MB at its peak, %.1f MB allocated in all",
				tt.size>>20, float64(peak)/(1<<20), float64(alloc)/(1<<20))
			if peak >= maxPeak {
				t.Errorf("heap grew by %d bytes, want under %d", peak, maxPeak)
			}
			if alloc >= maxAlloc {
				t.Errorf("%d bytes allocated, want under %d", alloc, maxAlloc)
			}
		})
	}
}

// TestReadCSVRecordCap checks the cap on a CSV record: maxLine bytes, its
// quoted new lines and line end included (not a byte-order mark), are read;
// one byte more is a problem at the line the record starts on, and reading
// that file stops there. The cap counts the text as decoded, for a GBK file
// too.
func TestReadCSVRecordCap(t *testing.T) {
	// cell returns a value that makes the record prefix+value+"\n" take n
	// bytes.
	cell := func(prefix string, n int) string { return strings.Repeat("x", n-len(prefix)-1) }
	gbk := func(s string) string {
		b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name     string
		content  string
		encoding string
		rows     []string // line:to of the rows read
		want     []string // problems
	}{
		{
			name:    "record of maxLine bytes",
			content: "to,msg\nalice,hi\nbob," + cell("bob,", maxLine) + "\ncarol,hi\n",
			rows:    []string{"2:alice", "3:bob", "4:carol"},
		},
		{
			name:    "record of maxLine bytes after a byte-order mark and CRLF",
			content: "\ufeffto,msg\r\nalice,hi\r\nbob," + cell("bob,\r", maxLine) + "\r\ncarol,hi\r\n",
			rows:    []string{"2:alice", "3:bob", "4:carol"},
		},
		{
			name:    "record of maxLine+1 bytes",
			content: "to,msg\nalice,hi\nbob," + cell("bob,", maxLine+1) + "\ncarol,hi\n",
			rows:    []string{"2:alice"},
			want:    []string{"3: " + tooLong},
		},
		{
			name:    "cell far over the cap, no new line",
			content: "to,msg\nalice,hi\nbob," + strings.Repeat("x", 3*maxLine),
			rows:    []string{"2:alice"},
			want:    []string{"3: " + tooLong},
		},
		{
			name:    "quoted new lines just over the cap",
			content: "to,msg\nalice,hi\nbob,\"" + strings.Repeat("line\n", maxLine/5) + "\"\ncarol,hi\n",
			rows:    []string{"2:alice"},
			want:    []string{"3: " + tooLong},
		},
		{
			name:    "quoted new lines far over the cap",
			content: "to,msg\nalice,hi\nbob,\"" + strings.Repeat("line\n", maxLine) + "\"\ncarol,hi\n",
			rows:    []string{"2:alice"},
			want:    []string{"3: " + tooLong},
		},
		{
			name:    "quote left open in the first field",
			content: "to,msg\nalice,hi\n\"bob,hi\n" + strings.Repeat("carol,hi\n", maxLine/4),
			rows:    []string{"2:alice"},
			want:    []string{"3: " + tooLong},
		},
		{
			name:    "after a record of several lines",
			content: "to,msg\n\"al\nice\",\"h\ni\"\nbob," + strings.Repeat("x", 2*maxLine),
			rows:    []string{"2:al\nice"},
			want:    []string{"5: " + tooLong},
		},
		{
			// The cap counts from the end of the record before: blank
			// lines are skipped, but not for free. Past the cap there is
			// no record to name, and the line after the last one read is.
			name:    "blank lines far over the cap",
			content: "to,msg\n\"al\nice\",hi\n" + strings.Repeat("\n", 2*maxLine) + "bob,hi\n",
			rows:    []string{"2:al\nice"},
			want:    []string{"4: " + tooLong},
		},
		{
			name:    "quote left open at the end of a small file",
			content: "to,msg\nalice,hi\nbob,\"hi\ncarol,hi\n",
			rows:    []string{"2:alice"},
			want:    []string{"4: malformed CSV: a quoted field is not closed properly (column 10, starting at line 3)"},
		},
		{
			name:    "header over the cap",
			content: "to," + strings.Repeat("x", maxLine) + "\nalice,hi\n",
			want:    []string{"1: " + tooLong},
		},
		{
			name:    "header with a quote left open",
			content: "to,\"msg\n" + strings.Repeat("alice,hi\n", maxLine/4),
			want:    []string{"1: " + tooLong},
		},
		{
			// 中 is 2 bytes in GBK and 3 in UTF-8: 1.5 million are 3 MB
			// of file and 4.5 MB of text.
			name:     "GBK cell over the cap as decoded",
			content:  gbk("to,msg\n张伟,你好\nalice," + strings.Repeat("中", 1_500_000) + "\ncarol,hi\n"),
			encoding: GBK,
			rows:     []string{"2:张伟"},
			want:     []string{"3: " + tooLong},
		},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, dir, fmt.Sprintf("cap%d.csv", i), tt.content)
			rows, probs := readRows(t, file, tt.encoding)
			var got []string
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%d:%s", r.line, r.to))
			}
			checkLines(t, "rows", got, tt.rows)
			checkLines(t, "problems", probs, tt.want)
		})
	}
}

// TestReadToAndRecipient checks that a row names its recipients once: a
// CSV header with both a to and a recipient column, and a JSONL row with
// both keys, are problems; either alone is fine.
func TestReadToAndRecipient(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		content string
		rows    []string // line:to of the rows read
		want    []string // problems
	}{
		{name: "CSV to", file: "a.csv", content: "to,msg\nalice,hi\n", rows: []string{"2:alice"}},
		{name: "CSV recipient", file: "a.csv", content: "recipient,msg\nalice,hi\n", rows: []string{"2:alice"}},
		{
			name: "CSV both", file: "a.csv", content: "to,msg,recipient\nalice,hi,bob\n",
			want: []string{"1: both to and recipient columns: keep one"},
		},
		{
			name: "CSV both, in any case", file: "a.csv", content: "Recipient,msg, TO \nalice,hi,bob\n",
			want: []string{"1: both to and recipient columns: keep one"},
		},
		{
			name: "CSV to twice", file: "a.csv", content: "to,msg,to\nalice,hi,bob\n",
			want: []string{`1: column "to" appears twice`},
		},
		{
			name: "JSONL both", file: "a.jsonl",
			content: `{"to":"alice","msg":"hi"}` + "\n" + `{"to":"bob","recipient":"carol","msg":"hi"}` + "\n" + `{"recipient":"dave","msg":"hi"}` + "\n",
			rows:    []string{"1:alice", "3:dave"},
			want:    []string{"2: both to and recipient keys: keep one"},
		},
		{
			name: "JSONL both, one of them null", file: "a.jsonl",
			content: `{"to":null,"recipient":"carol","msg":"hi"}` + "\n",
			want:    []string{"1: both to and recipient keys: keep one"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, t.TempDir(), tt.file, tt.content)
			rows, probs := readRows(t, file, "")
			var got []string
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%d:%s", r.line, r.to))
			}
			checkLines(t, "rows", got, tt.rows)
			checkLines(t, "problems", probs, tt.want)
		})
	}
}

// TestReadJSONLTakesJSONWhiteSpaceOnly checks that a line wrapped in white
// space JSON does not know (a vertical tab, a form feed, a no-break or an
// ideographic space, a line separator) is a problem, as encoding/json says,
// and JSON's own white space is not.
func TestReadJSONLTakesJSONWhiteSpaceOnly(t *testing.T) {
	row := `{"to":"u1","msg":"hi"}`
	dir := t.TempDir()
	for i, wrap := range []string{"\v", "\f", "\u00a0", "\u3000", "\u2028"} {
		path := writeFile(t, dir, fmt.Sprintf("w%d.jsonl", i), wrap+row+"\n"+row+wrap+"\n")
		rows, probs := readRows(t, path, "")
		if len(rows) != 0 || len(probs) != 2 {
			t.Errorf("%q around a row: %d rows, problems %q; want none read, 2 problems", wrap, len(rows), probs)
		}
	}
	path := writeFile(t, dir, "ok.jsonl", " \t"+row+"\t \r\n")
	if rows, probs := readRows(t, path, ""); len(rows) != 1 || len(probs) != 0 {
		t.Errorf("JSON white space around a row: %d rows, problems %q; want 1 and none", len(rows), probs)
	}
}
