package planner

import (
	"bytes"
	"fmt"
	"os"
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
	err := readFile(path, encoding, func(line int, f *fields, to []string) error {
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
	got.MinDuration, got.MinSeconds = 0, 0
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
	got.MinDuration, got.MinSeconds = 0, 0
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
