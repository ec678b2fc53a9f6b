package planner

import (
	"strings"
	"testing"
	"unicode"
)

// TestValidationIDs checks recipient and scope IDs: at most 256 bytes, no
// control characters and no invisible format characters, each bad one a
// problem at its row that shows it escaped and clipped. Blanks around an ID
// are trimmed first.
func TestValidationIDs(t *testing.T) {
	long := strings.Repeat("u", 257)
	tests := []struct {
		name    string
		file    string
		content string
		want    []string // problems, after FILE:
	}{
		{
			name:    "control characters",
			file:    "ids.jsonl",
			content: jsonLines(t, txtRow("a\x00b"), txtRow("a\nb"), txtRow("\x1b[31mred"), txtRow("a\u0085b"), txtRow("a\x7fb"), txtRow("ok")),
			want: []string{
				`1: to "a\x00b": holds a control character (U+0000)`,
				`2: to "a\nb": holds a control character (U+000A)`,
				`3: to "\x1b[31mred": holds a control character (U+001B)`,
				`4: to "a\u0085b": holds a control character (U+0085)`,
				`5: to "a\x7fb": holds a control character (U+007F)`,
			},
		},
		{
			name:    "format characters",
			file:    "ids.jsonl",
			content: jsonLines(t, txtRow("\u202egnp.exe"), txtRow("ali\u200bce"), txtRow("bob\ufeff"), txtRow("\u2066carol"), txtRow("dave")),
			want: []string{
				`1: to "\u202egnp.exe": holds an invisible format character (U+202E)`,
				`2: to "ali\u200bce": holds an invisible format character (U+200B)`,
				`3: to "bob\ufeff": holds an invisible format character (U+FEFF)`,
				`4: to "\u2066carol": holds an invisible format character (U+2066)`,
			},
		},
		{
			name:    "length",
			file:    "ids.jsonl",
			content: jsonLines(t, txtRow(long[:256]), txtRow(long), txtRow(strings.Repeat("中", 100))),
			want: []string{
				`2: to "` + long[:40] + `"...: 257 bytes, at most 256`,
				`3: to "` + strings.Repeat("中", 13) + `"...: 300 bytes, at most 256`,
			},
		},
		{
			name:    "clipped and escaped",
			file:    "ids.jsonl",
			content: jsonLines(t, txtRow(strings.Repeat("\x1b", 50))),
			want:    []string{`1: to "` + strings.Repeat(`\x1b`, 40) + `"...: holds a control character (U+001B)`},
		},
		{
			name:    "each ID of an array",
			file:    "ids.jsonl",
			content: jsonLines(t, map[string]any{"to": []string{"alice", "b\u202eob", "carol", "d\x00"}, "msg": "hi"}),
			want: []string{
				`1: to "b\u202eob": holds an invisible format character (U+202E)`,
				`1: to "d\x00": holds a control character (U+0000)`,
			},
		},
		{
			name:    "recipient key",
			file:    "ids.jsonl",
			content: jsonLines(t, map[string]any{"recipient": "a\tb", "msg": "hi"}),
			want:    []string{`1: to "a\tb": holds a control character (U+0009)`},
		},
		{
			name:    "blanks around an ID are trimmed",
			file:    "ids.jsonl",
			content: jsonLines(t, txtRow(" alice "), txtRow("\tbob\r\n"), txtRow(" "+long[:256]+" ")),
		},
		{
			name:    "CSV",
			file:    "ids.csv",
			content: "to,msg\nalice,hi\n\"b\rob\",hi\nca\u200drol,hi\n  dave\t,hi\n",
			want: []string{
				`3: to "b\rob": holds a control character (U+000D)`,
				`4: to "ca\u200drol": holds an invisible format character (U+200D)`,
			},
		},
		{
			name: "scope",
			file: "scope.jsonl",
			content: jsonLines(t,
				map[string]any{"kind": "group_members", "scope": "g1\x00", "to": "alice", "msg": "hi"},
				map[string]any{"kind": "room_members", "scope": "\u202er1", "to": "alice", "msg": "hi"},
				map[string]any{"kind": "group_members", "scope": long, "to": "alice", "msg": "hi"},
				map[string]any{"kind": "group_members", "scope": " g2 ", "to": "alice", "msg": "hi"},
				map[string]any{"kind": "group_members", "scope": "g1\x00", "to": "bob\x00", "msg": "hi"},
			),
			want: []string{
				`1: scope "g1\x00": holds a control character (U+0000)`,
				`2: scope "\u202er1": holds an invisible format character (U+202E)`,
				`3: scope "` + long[:40] + `"...: 257 bytes, at most 256`,
				`5: scope "g1\x00": holds a control character (U+0000)`,
				`5: to "bob\x00": holds a control character (U+0000)`,
			},
		},
		{
			name:    "scope in CSV",
			file:    "scope.csv",
			content: "kind,scope,to,msg\ngroup_members,g\u200b1,alice,hi\ngroup_members,g1,bob,hi\n",
			want:    []string{`2: scope "g\u200b1": holds an invisible format character (U+200B)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, t.TempDir(), tt.file, tt.content)
			_, err := planOpts(t, Options{Files: []string{file}})
			var want []string
			for _, w := range tt.want {
				want = append(want, file+":"+w)
			}
			got := problemStrings(t, err)
			checkLines(t, "problems", got, want)
			for _, p := range got {
				if i := strings.IndexFunc(p, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }); i >= 0 {
					t.Errorf("problem %q holds %U: want every ID escaped", p, []rune(p[i:])[0])
				}
			}
		})
	}
}

// txtRow is a JSONL row of a txt message to one recipient.
func txtRow(to string) map[string]any { return map[string]any{"to": to, "msg": "hi"} }

// TestEmptyCampaign checks that a campaign file with no rows is a problem,
// whichever way it is empty, and that a file whose rows all have problems
// is reported through those alone.
func TestEmptyCampaign(t *testing.T) {
	const noRows = "no deliveries: the file holds no rows"
	tests := []struct {
		name  string
		files map[string]string // name: content, planned in name order
		want  []string          // problems, after the folder
	}{
		{name: "empty JSONL", files: map[string]string{"a.jsonl": ""}, want: []string{"a.jsonl: " + noRows}},
		{name: "JSONL of blank lines", files: map[string]string{"a.jsonl": "\n  \n\r\n\t\n"}, want: []string{"a.jsonl: " + noRows}},
		{name: "JSONL of a byte-order mark", files: map[string]string{"a.jsonl": "\ufeff"}, want: []string{"a.jsonl: " + noRows}},
		{name: "empty CSV", files: map[string]string{"a.csv": ""}, want: []string{"a.csv: " + noRows}},
		{name: "CSV of a byte-order mark", files: map[string]string{"a.csv": "\ufeff"}, want: []string{"a.csv: " + noRows}},
		{name: "header-only CSV", files: map[string]string{"a.csv": "to,msg\n"}, want: []string{"a.csv: " + noRows}},
		{name: "header-only CSV, no new line", files: map[string]string{"a.csv": "to"}, want: []string{"a.csv: " + noRows}},
		{name: "CSV of a header and blank lines", files: map[string]string{"a.csv": "to,msg\n\n\r\n"}, want: []string{"a.csv: " + noRows}},
		{
			name:  "one empty file of two",
			files: map[string]string{"a.csv": "to,msg\nalice,hi\n", "b.jsonl": "\n"},
			want:  []string{"b.jsonl: " + noRows},
		},
		{
			name:  "every row with a problem",
			files: map[string]string{"a.jsonl": `{"to":5}` + "\n" + `{"msg":"hi"}` + "\n"},
			want: []string{
				"a.jsonl:1: to: want a string or an array of strings, got 5",
				"a.jsonl:2: to is missing: every row needs a recipient",
			},
		},
		{
			name:  "a header with a problem",
			files: map[string]string{"a.csv": "msg\n"},
			want:  []string{"a.csv:1: no to column: every row needs a recipient"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir() + "/"
			var files []string
			for _, name := range []string{"a.csv", "a.jsonl", "b.jsonl"} {
				if content, ok := tt.files[name]; ok {
					files = append(files, writeFile(t, dir, name, content))
				}
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, dir+w)
			}
			_, err := planOpts(t, Options{Files: files})
			checkLines(t, "Plan problems", problemStrings(t, err), want)
			_, err = tryBatches(t, Options{Files: files}, nil)
			checkLines(t, "Batches problems", problemStrings(t, err), want)
		})
	}
}
