package planner

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// readTos plans c and returns the recipients of the deliveries it read,
// in file order, and the plan.
func readTos(t *testing.T, c *Campaign) ([]string, *Plan, error) {
	t.Helper()
	var tos []string
	p, err := c.PlanPending(context.Background(), defaultQuotas(t), func(m *Message, to string) (bool, error) {
		tos = append(tos, to)
		return true, nil
	}, nil)
	return tos, p, err
}

// readFirst opens a campaign that must be valid and reads it once.
func readFirst(t *testing.T, opts Options) (*Campaign, *Plan) {
	t.Helper()
	c, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, p, err := readTos(t, c)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestSinceReadsOnlyWhatWasAppended checks that a campaign Since makes
// reads the rows appended after an earlier read and nothing else, with
// their lines as a full read numbers them, and that its Source is the one
// a full read of the files would give.
func TestSinceReadsOnlyWhatWasAppended(t *testing.T) {
	for _, tt := range []struct {
		name, file, start, appended, encoding string
		want                                  []string
	}{
		{name: "csv", file: "a.csv", start: "to,msg\nu1,hi\nu2,hi\n", appended: "u3,hi\nu1,hi\n", want: []string{"u3"}},
		{name: "csv with BOM and CRLF", file: "a.csv", start: "\xef\xbb\xbfto,msg\r\nu1,hi\r\n", appended: "u2,hi\r\n", want: []string{"u2"}},
		{name: "csv, a quoted row appended", file: "a.csv", start: "to,msg\nu1,hi\n", appended: "u2,\"a, b\"\n", want: []string{"u2"}},
		{name: "jsonl", file: "a.jsonl", start: `{"to":"u1","msg":"hi"}` + "\n", appended: `{"to":["u2","u3"],"msg":"hi"}` + "\n", want: []string{"u2", "u3"}},
		{name: "gbk", file: "a.csv", start: "to,msg\nu1,你好\n", appended: "u2,你好\n", encoding: GBK, want: []string{"u2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start, appended := tt.start, tt.appended
			if tt.encoding == GBK {
				enc := simplifiedchinese.GBK.NewEncoder()
				start, _ = enc.String(start)
				appended, _ = enc.String(appended)
			}
			path := writeFile(t, t.TempDir(), tt.file, start)
			opts := Options{Files: []string{path}, Encoding: tt.encoding}
			c, first := readFirst(t, opts)
			if tc := c.Since(first.Source); tc == nil || !tc.Unchanged() {
				t.Fatalf("Since, nothing appended: got %v, want an unchanged campaign", tc)
			}
			appendTo(t, path, appended)
			tc := c.Since(first.Source)
			if tc == nil || tc.Unchanged() {
				t.Fatalf("Since, rows appended: got %v, want a campaign of what was appended", tc)
			}
			got, tp, err := readTos(t, tc)
			if err != nil {
				t.Fatal(err)
			}
			// the recipient listed before too is read again: the ledger,
			// not the read, knows it was sent
			want := tt.want
			if strings.Contains(appended, "u1,") {
				want = append(slices.Clone(want), "u1")
			}
			if !slices.Equal(got, want) {
				t.Errorf("read after appending: got %v, want %v", got, want)
			}
			_, full, err := readTos(t, c)
			if err != nil {
				t.Fatal(err)
			}
			if !tp.Source.Equal(full.Source) {
				t.Errorf("source of the appended read:\n%s\nof a full read:\n%s", tp.Source.Marshal(), full.Source.Marshal())
			}
			// and from that source, nothing more to read
			if again := c.Since(tp.Source); again == nil || !again.Unchanged() {
				t.Errorf("Since the appended read: got %v, want unchanged", again)
			}
		})
	}
}

// TestSinceNamesTheLinesOfAppendedProblems checks that a problem in an
// appended row is reported at its line of the file.
func TestSinceNamesTheLinesOfAppendedProblems(t *testing.T) {
	for _, file := range []string{"a.csv", "a.jsonl"} {
		t.Run(file, func(t *testing.T) {
			start, bad := "to,msg\nu1,hi\nu2,hi\n", "u3,hi\nu4,hi,extra\n"
			if file == "a.jsonl" {
				start = `{"to":"u1","msg":"hi"}` + "\n\n" + `{"to":"u2","msg":"hi"}` + "\n"
				bad = `{"to":"u3","msg":"hi"}` + "\n" + `{"to":"u4","type":"nope"}` + "\n"
			}
			path := writeFile(t, t.TempDir(), file, start)
			c, first := readFirst(t, Options{Files: []string{path}})
			appendTo(t, path, bad)
			_, _, err := readTos(t, c.Since(first.Source))
			_, _, fullErr := readTos(t, c)
			got, want := problemStrings(t, err), problemStrings(t, fullErr)
			if len(want) != 1 || !strings.HasPrefix(want[0], path+":5: ") {
				t.Fatalf("full read: got %q, want one problem at line 5", want)
			}
			if !slices.Equal(got, want) {
				t.Errorf("appended read: got %q, want %q", got, want)
			}
		})
	}
}

// TestSinceRefusesAnyOtherChange checks that Since gives nil, so that the
// whole campaign is read again, whenever the files changed in any way but
// rows appended after a line end, or what else shapes the deliveries did.
func TestSinceRefusesAnyOtherChange(t *testing.T) {
	const start = "to,type,msg,file\nu1,txt,hi,\nu2,img,,pic.png\n"
	for _, tt := range []struct {
		name   string
		change func(t *testing.T, dir, path string) Options
	}{
		{"a byte changed", func(t *testing.T, dir, path string) Options {
			writeFile(t, dir, "a.csv", strings.Replace(start, "u1", "u9", 1)+"u3,txt,hi,\n")
			return Options{}
		}},
		{"cut short", func(t *testing.T, dir, path string) Options {
			writeFile(t, dir, "a.csv", start[:len(start)-5])
			return Options{}
		}},
		{"the attachment changed", func(t *testing.T, dir, path string) Options {
			writeFile(t, dir, "v1.png", "another picture")
			return Options{}
		}},
		{"the attachment's link removed", func(t *testing.T, dir, path string) Options {
			os.Remove(filepath.Join(dir, "pic.png"))
			return Options{}
		}},
		{"the attachment's link retargeted", func(t *testing.T, dir, path string) Options {
			writeFile(t, dir, "other.png", "another picture")
			os.Remove(filepath.Join(dir, "pic.png"))
			if err := os.Symlink("other.png", filepath.Join(dir, "pic.png")); err != nil {
				t.Fatal(err)
			}
			return Options{}
		}},
		{"the defaults changed", func(t *testing.T, dir, path string) Options {
			return Options{Message: writeFile(t, dir, "m.json", `{"msg":"bye"}`)}
		}},
		{"another encoding", func(t *testing.T, dir, path string) Options {
			return Options{Encoding: GBK}
		}},
		{"another file list", func(t *testing.T, dir, path string) Options {
			return Options{Files: []string{path, writeFile(t, dir, "b.csv", "to\nu5\n")}}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "a.csv", start)
			// the row names a link, as a folder of campaign assets may
			writeFile(t, dir, "v1.png", "a picture")
			if err := os.Symlink("v1.png", filepath.Join(dir, "pic.png")); err != nil {
				t.Fatal(err)
			}
			_, first := readFirst(t, Options{Files: []string{path}})
			opts := tt.change(t, dir, path)
			if opts.Files == nil {
				opts.Files = []string{path}
			}
			c2, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc := c2.Since(first.Source); tc != nil {
				t.Errorf("Since: got a campaign of tails (unchanged %v), want nil", tc.Unchanged())
			}
		})
	}
	t.Run("appended to a line with no end", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "a.csv", "to,msg\nu1,hi\nu2,hi")
		c, first := readFirst(t, Options{Files: []string{path}})
		appendTo(t, path, "3,hi\n") // u2 becomes u23
		if tc := c.Since(first.Source); tc != nil {
			t.Errorf("Since: got a campaign of tails, want nil")
		}
	})
	t.Run("a blank first line", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "a.csv", "\r\nto,msg\nu1,hi\n")
		c, first := readFirst(t, Options{Files: []string{path}})
		appendTo(t, path, "u2,hi\n")
		if tc := c.Since(first.Source); tc != nil {
			t.Errorf("Since, appended: got a campaign of tails, want nil (the header is not on the first line)")
		}
		if got, _, err := readTos(t, c); err != nil || !slices.Equal(got, []string{"u1", "u2"}) {
			t.Errorf("full read: %v (%v), want [u1 u2]", got, err)
		}
	})
	t.Run("a quoted header", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "a.csv", "\"to\",msg\nu1,hi\n")
		c, first := readFirst(t, Options{Files: []string{path}})
		if tc := c.Since(first.Source); tc == nil || !tc.Unchanged() {
			t.Errorf("Since, unchanged: got %v, want unchanged", tc)
		}
		appendTo(t, path, "u2,hi\n")
		if tc := c.Since(first.Source); tc != nil {
			t.Errorf("Since, appended: got a campaign of tails, want nil (the header cannot be kept)")
		}
	})
}

// TestUptoReadsNoFurther checks that a second read of appended rows, made
// with Upto, reads the bytes of the first and none appended since.
func TestUptoReadsNoFurther(t *testing.T) {
	path := writeFile(t, t.TempDir(), "a.csv", "to,msg\nu1,hi\n")
	c, first := readFirst(t, Options{Files: []string{path}})
	appendTo(t, path, "u2,hi\n")
	tc := c.Since(first.Source)
	got, p, err := readTos(t, tc)
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "u3,hi\n")
	again, p2, err := readTos(t, tc.Upto(p.Source))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"u2"}) || !slices.Equal(again, got) || !p2.Source.Equal(p.Source) {
		t.Errorf("reads: %v then %v (same source %v), want [u2] twice from the same bytes", got, again, p2.Source.Equal(p.Source))
	}
}
