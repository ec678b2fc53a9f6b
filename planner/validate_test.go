package planner

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const invalidDir = "testdata/invalid/"

// kindList is how an unknown kind's problem names the known kinds.
const kindList = "(want one of users, groups, rooms, group_members, room_members, legacy_users, legacy_groups)"

// customEventWant is the start of a customEvent problem.
const customEventWant = "body.customEvent: want 1 to 32 of a-z A-Z 0-9 - _ / . "

// TestValidation plans each bad campaign in testdata/invalid and checks that
// every problem is reported, in order, as FILE:LINE: what is wrong. Each
// file also holds good rows, which must not be reported.
func TestValidation(t *testing.T) {
	tests := []struct {
		name  string
		files []string // in testdata/invalid
		want  []string // problems, FILE relative to testdata/invalid
	}{
		{
			name:  "unknown kind",
			files: []string{"kind_unknown.csv"},
			want: []string{
				`kind_unknown.csv:3: unknown kind "usr" ` + kindList,
				`kind_unknown.csv:4: unknown kind "chatgroups" ` + kindList,
			},
		},
		{
			name:  "unknown type, and types the legacy API lacks",
			files: []string{"type_unknown.jsonl"},
			want: []string{
				`type_unknown.jsonl:1: unknown type "text" (want one of txt, img, audio, video, file, loc, cmd, custom)`,
				`type_unknown.jsonl:3: unknown type "loc" (want one of txt, img, audio, video, cmd)`,
				`type_unknown.jsonl:4: unknown type "custom" (want one of txt, img, audio, video, cmd)`,
				`type_unknown.jsonl:5: unknown type "file" (want one of txt, img, audio, video, cmd)`,
			},
		},
		{
			name:  "required body fields per type (JSONL)",
			files: []string{"body_required.jsonl"},
			want: []string{
				"body_required.jsonl:1: a txt message needs msg (or body.msg)",
				"body_required.jsonl:2: body.msg is empty",
				"body_required.jsonl:3: body.msg: want a string",
				"body_required.jsonl:4: body.url: an img message needs it",
				"body_required.jsonl:5: body.url: an audio message needs it",
				"body_required.jsonl:6: body.url is empty",
				"body_required.jsonl:7: body.url: a file message needs it",
				"body_required.jsonl:8: body.lng: a loc message needs it",
				"body_required.jsonl:8: body.addr: a loc message needs it",
				"body_required.jsonl:9: body.lat: want a string",
				"body_required.jsonl:10: body.action: a cmd message needs it",
				"body_required.jsonl:11: body.action is empty",
				"body_required.jsonl:14: body.lat: a loc message needs it",
			},
		},
		{
			name:  "required body fields per type (CSV)",
			files: []string{"body_required.csv"},
			want: []string{
				"body_required.csv:2: a txt message needs msg (or body.msg)",
				"body_required.csv:3: body.url: an img message needs it",
				"body_required.csv:4: body.addr: a loc message needs it",
				"body_required.csv:5: body.action: a cmd message needs it",
			},
		},
		{
			name:  "body not an object or malformed",
			files: []string{"body_not_object.csv"},
			want: []string{
				"body_not_object.csv:2: body: want a JSON object, got an array",
				"body_not_object.csv:4: body: malformed JSON: unexpected EOF",
				"body_not_object.csv:5: body: want a JSON object, got null",
			},
		},
		{
			name:  `from set to ""`,
			files: []string{"from_empty.jsonl"},
			want:  []string{`from_empty.jsonl:2: from is "": leave it out to send as admin`},
		},
		{
			name:  "ext not an object (CSV)",
			files: []string{"ext_not_object.csv"},
			want: []string{
				"ext_not_object.csv:3: ext: want a JSON object, got null",
				"ext_not_object.csv:4: ext: want a JSON object, got an array",
				"ext_not_object.csv:5: ext: want a JSON object, got a string",
				"ext_not_object.csv:6: ext: want a JSON object, got a number",
				"ext_not_object.csv:7: ext: want a JSON object, got a boolean",
				"ext_not_object.csv:8: ext: malformed JSON at byte 2: invalid character 'o' looking for beginning of object key string",
			},
		},
		{
			name:  "ext not an object (JSONL)",
			files: []string{"ext_not_object.jsonl"},
			want: []string{
				"ext_not_object.jsonl:2: ext: want a JSON object, got null",
				"ext_not_object.jsonl:3: ext: want a JSON object, got an array",
				"ext_not_object.jsonl:4: ext: want a JSON object, got a string",
				"ext_not_object.jsonl:5: ext: want a JSON object, got a number",
				"ext_not_object.jsonl:6: ext: want a JSON object, got a boolean",
			},
		},
		{
			name:  "customEvent off its pattern",
			files: []string{"custom_event.jsonl"},
			want: []string{
				`custom_event.jsonl:1: ` + customEventWant + `(got "abcdefghijklmnopqrstuvwxyz0123456")`,
				`custom_event.jsonl:2: ` + customEventWant + `(got "flash sale")`,
				`custom_event.jsonl:3: ` + customEventWant + `(got "")`,
				`custom_event.jsonl:4: ` + customEventWant + `(got 7)`,
				`custom_event.jsonl:7: ` + customEventWant + `(got "促销")`,
			},
		},
		{
			name:  "customExts: more than 16, values not strings",
			files: []string{"custom_exts.jsonl"},
			want: []string{
				"custom_exts.jsonl:1: body.customExts: 17 entries, at most 16",
				"custom_exts.jsonl:3: body.customExts.n: want a string",
				"custom_exts.jsonl:3: body.customExts.ok: want a string",
				"custom_exts.jsonl:4: body.customExts: want an object of strings",
			},
		},
		{
			name:  "roam_ignore_users: 21 for groups and rooms, fine for users (JSONL)",
			files: []string{"roam_ignore_users.jsonl"},
			want: []string{
				"roam_ignore_users.jsonl:1: roam_ignore_users: 21 users, at most 20 for groups",
				"roam_ignore_users.jsonl:3: roam_ignore_users: 21 users, at most 20 for rooms",
				`roam_ignore_users.jsonl:6: roam_ignore_users: want a JSON array of user IDs, got "u01"`,
				"roam_ignore_users.jsonl:7: roam_ignore_users: want a JSON array of user IDs, got null",
				"roam_ignore_users.jsonl:8: roam_ignore_users: want a JSON array of user IDs, got [1]",
			},
		},
		{
			name:  "roam_ignore_users (CSV)",
			files: []string{"roam_ignore_users.csv"},
			want: []string{
				"roam_ignore_users.csv:2: roam_ignore_users: 21 users, at most 20 for groups",
				"roam_ignore_users.csv:4: roam_ignore_users: want a JSON array of user IDs, got u00",
			},
		},
		{
			name:  "chatroom_msg_level not high, normal or low",
			files: []string{"chatroom_msg_level.csv"},
			want: []string{
				`chatroom_msg_level.csv:3: chatroom_msg_level: want high, normal or low, got "urgent"`,
				`chatroom_msg_level.csv:4: chatroom_msg_level: want high, normal or low, got "HIGH"`,
			},
		},
		{
			name:  "routetype not ROUTE_ONLINE",
			files: []string{"routetype.jsonl"},
			want: []string{
				`routetype.jsonl:2: routetype: want ROUTE_ONLINE, got "ROUTE_ALL"`,
				`routetype.jsonl:3: routetype: want ROUTE_ONLINE, got "route_online"`,
			},
		},
		{
			name:  "options on a kind they do not apply to",
			files: []string{"options_kind.jsonl"},
			want: []string{
				"options_kind.jsonl:1: sync_device is only for users, not groups",
				"options_kind.jsonl:2: need_group_ack is only for groups, not users",
				"options_kind.jsonl:3: chatroom_msg_level is only for rooms and room_members, not groups",
				"options_kind.jsonl:4: routetype is only for users and groups, not rooms",
				"options_kind.jsonl:5: roam_ignore_users is only for users, groups and rooms, not group_members",
				"options_kind.jsonl:6: sync_device is only for users, not room_members",
				"options_kind.jsonl:7: routetype is only for users and groups, not legacy_users",
			},
		},
		{
			name:  "boolean options not true or false (CSV)",
			files: []string{"options_value.csv"},
			want: []string{
				"options_value.csv:3: sync_device: want true or false, got yes",
				"options_value.csv:4: need_group_ack: want true or false, got 1",
			},
		},
		{
			name:  "scope missing for members, scope on other kinds (JSONL)",
			files: []string{"scope.jsonl"},
			want: []string{
				"scope.jsonl:1: scope: group_members needs the ID of its group",
				"scope.jsonl:2: scope: room_members needs the ID of its chat room",
				"scope.jsonl:3: scope: group_members needs the ID of its group",
				"scope.jsonl:4: scope is only for group_members and room_members, not users",
				"scope.jsonl:5: scope is only for group_members and room_members, not groups",
			},
		},
		{
			name:  "scope missing for members, scope on users (CSV)",
			files: []string{"scope.csv"},
			want: []string{
				"scope.csv:2: scope: room_members needs the ID of its chat room",
				"scope.csv:3: scope is only for group_members and room_members, not users",
			},
		},
		{
			// A scope of blanks is no group: it would send to group "".
			name:  "scope of blanks",
			files: []string{"scope_blank.jsonl"},
			want:  []string{"scope_blank.jsonl:1: scope: group_members needs the ID of its group"},
		},
		{
			// Relative paths are read from the campaign file's folder
			// (testdata/invalid), not from the working directory.
			name:  "file that does not exist",
			files: []string{"file_missing.jsonl"},
			want: []string{
				"file_missing.jsonl:1: file ../media/pic.png: outside the folder testdata/invalid",
				"file_missing.jsonl:2: file nope.png: no such file or directory",
				"file_missing.jsonl:3: file testdata/media/pic.png: no such file or directory",
				"file_missing.jsonl:4: file media: not a regular file",
			},
		},
		{
			name:  "file with a type that takes no file",
			files: []string{"file_txt.jsonl"},
			want: []string{
				"file_txt.jsonl:1: file is for img, audio, video and file messages, not txt",
				"file_txt.jsonl:2: file is for img, audio, video and file messages, not loc",
			},
		},
		{
			name:  "msg with a type other than txt",
			files: []string{"msg_not_txt.jsonl"},
			want: []string{
				"msg_not_txt.jsonl:1: msg is the text of a txt message; an img message takes body",
				"msg_not_txt.jsonl:2: msg is the text of a txt message; a cmd message takes body",
			},
		},
		{
			// Reading stops at malformed quoting: carol's row is not read.
			name:  "CSV bare quote",
			files: []string{"csv_bare_quote.csv"},
			want:  []string{`csv_bare_quote.csv:3: malformed CSV: a bare " in an unquoted field (column 9); quote the field and double the "`},
		},
		{
			name:  "CSV bare quote in the first column",
			files: []string{"csv_bare_quote_first_column.csv"},
			want:  []string{`csv_bare_quote_first_column.csv:3: malformed CSV: a bare " in an unquoted field (column 3); quote the field and double the "`},
		},
		{
			name:  "CSV unclosed quote",
			files: []string{"csv_unclosed_quote.csv"},
			want:  []string{"csv_unclosed_quote.csv:4: malformed CSV: a quoted field is not closed properly (column 10, starting at line 3)"},
		},
		{
			name:  "CSV unclosed quote in the first column",
			files: []string{"csv_unclosed_quote_first_column.csv"},
			want:  []string{"csv_unclosed_quote_first_column.csv:4: malformed CSV: a quoted field is not closed properly (column 10, starting at line 3)"},
		},
		{
			name:  "CSV text after a closing quote",
			files: []string{"csv_quote_then_text.csv"},
			want:  []string{"csv_quote_then_text.csv:2: malformed CSV: a quoted field is not closed properly (column 10, starting at line 2)"},
		},
		{
			// A row with the wrong field count is reported and reading goes on.
			name:  "CSV wrong field count",
			files: []string{"csv_field_count.csv"},
			want: []string{
				"csv_field_count.csv:3: wrong number of fields: the header has 2",
				"csv_field_count.csv:4: wrong number of fields: the header has 2",
			},
		},
		{
			name:  "CSV row line is the line its record starts on",
			files: []string{"multiline.csv"},
			want: []string{
				"multiline.csv:4: to is empty",
				"multiline.csv:7: to is empty",
			},
		},
		{
			name:  "JSONL malformed lines",
			files: []string{"jsonl_malformed.jsonl"},
			want: []string{
				"jsonl_malformed.jsonl:2: malformed JSON: unexpected EOF",
				`jsonl_malformed.jsonl:3: malformed JSON at byte 15: invalid character '"' after object key:value pair`,
				"jsonl_malformed.jsonl:4: malformed JSON at byte 2: invalid character 'o' in literal null (expecting 'u')",
				"jsonl_malformed.jsonl:5: want a JSON object, got a JSON array",
				"jsonl_malformed.jsonl:6: malformed JSON: text after the object",
				"jsonl_malformed.jsonl:7: malformed JSON at byte 26: invalid character '}' looking for beginning of object key string",
				"jsonl_malformed.jsonl:8: want a JSON object, got a JSON string",
			},
		},
		{
			name:  "JSONL values of the wrong type",
			files: []string{"jsonl_wrong_type.jsonl"},
			want: []string{
				"jsonl_wrong_type.jsonl:1: to: want a string or an array of strings, got 5",
				`jsonl_wrong_type.jsonl:2: sync_device: want true or false, got "yes"`,
				"jsonl_wrong_type.jsonl:3: kind: want a string, got 1",
				`jsonl_wrong_type.jsonl:4: to: want a string or an array of strings, got ["alice",2]`,
				`jsonl_wrong_type.jsonl:5: msg: want a string, got ["hi"]`,
				"jsonl_wrong_type.jsonl:6: from: want a string, got 7",
				`jsonl_wrong_type.jsonl:7: need_group_ack: want true or false, got "true"`,
			},
		},
		{
			name:  "unknown CSV column",
			files: []string{"unknown_column.csv"},
			want:  []string{`unknown_column.csv:1: unknown column "colour"`},
		},
		{
			name:  "CSV column twice",
			files: []string{"duplicate_column.csv"},
			want:  []string{`duplicate_column.csv:1: column "to" appears twice`},
		},
		{
			name:  "unknown JSONL key",
			files: []string{"unknown_key.jsonl"},
			want:  []string{`unknown_key.jsonl:2: unknown key "colour"`},
		},
		{
			name:  "empty to (CSV)",
			files: []string{"to_empty.csv"},
			want: []string{
				"to_empty.csv:3: to is empty",
				"to_empty.csv:4: to is empty",
			},
		},
		{
			name:  "empty or missing to (JSONL)",
			files: []string{"to_empty.jsonl"},
			want: []string{
				"to_empty.jsonl:2: to is empty",
				"to_empty.jsonl:3: to is missing: every row needs a recipient",
				"to_empty.jsonl:4: to is missing: every row needs a recipient",
				"to_empty.jsonl:5: to is empty",
				"to_empty.jsonl:5: to is empty",
				"to_empty.jsonl:6: to is empty",
			},
		},
		{
			name:  "missing to column",
			files: []string{"to_missing_column.csv"},
			want:  []string{"to_missing_column.csv:1: no to column: every row needs a recipient"},
		},
		{
			name:  "invalid UTF-8 in CSV",
			files: []string{"invalid_utf8.csv"},
			want: []string{
				"invalid_utf8.csv:3: not UTF-8 text (a file saved on a Chinese system may need --encoding gbk)",
				"invalid_utf8.csv:4: not UTF-8 text (a file saved on a Chinese system may need --encoding gbk)",
			},
		},
		{
			name:  "invalid UTF-8 in JSONL",
			files: []string{"invalid_utf8.jsonl"},
			want:  []string{"invalid_utf8.jsonl:2: not UTF-8 text"},
		},
		{
			name:  "empty CSV",
			files: []string{"empty.csv"},
			want:  []string{"empty.csv: no deliveries: the file holds no rows"},
		},
		{
			name:  "not CSV or JSONL",
			files: []string{"campaign.txt"},
			want:  []string{`campaign.txt: unknown file type ".txt": want .csv or .jsonl`},
		},
		{
			name:  "campaign file that does not exist",
			files: []string{"nope.csv"},
			want:  []string{"nope.csv: no such file or directory"},
		},
		{
			name:  "several problems in one file, in order",
			files: []string{"several.csv"},
			want: []string{
				`several.csv:3: unknown kind "usr" ` + kindList,
				"several.csv:4: a txt message needs msg (or body.msg)",
				"several.csv:5: scope: group_members needs the ID of its group",
				"several.csv:6: ext: want a JSON object, got null",
				"several.csv:7: body.lng: a loc message needs it",
				"several.csv:7: body.addr: a loc message needs it",
			},
		},
		{
			name:  "several files, problems in file order",
			files: []string{"several.jsonl", "from_empty.jsonl", "several.csv"},
			want: []string{
				`several.jsonl:1: from is "": leave it out to send as admin`,
				`several.jsonl:3: from is "": leave it out to send as admin`,
				"several.jsonl:3: ext: want a JSON object, got an array",
				`several.jsonl:3: chatroom_msg_level: want high, normal or low, got "urgent"`,
				`from_empty.jsonl:2: from is "": leave it out to send as admin`,
				`several.csv:3: unknown kind "usr" ` + kindList,
				"several.csv:4: a txt message needs msg (or body.msg)",
				"several.csv:5: scope: group_members needs the ID of its group",
				"several.csv:6: ext: want a JSON object, got null",
				"several.csv:7: body.lng: a loc message needs it",
				"several.csv:7: body.addr: a loc message needs it",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := make([]string, len(tt.files))
			for i, f := range tt.files {
				files[i] = invalidDir + f
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = invalidDir + w
			}
			_, err := planOpts(t, Options{Files: files})
			if errors.Is(err, errPanicked) {
				return
			}
			if err == nil {
				t.Fatalf("Plan(%v): got no error, want %d problems", files, len(want))
			}
			checkLines(t, "problems", problemStrings(t, err), want)
		})
	}
}

// TestValidationTrailingText checks that text after the JSON value of a
// JSONL line, a body, an ext or the --message file is malformed JSON, not
// silently dropped. The
// exact wording is left to the planner: only FILE:LINE and the start of the
// message are checked.
func TestValidationTrailingText(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // prefixes of the problems
	}{
		{
			name: "JSONL line",
			file: "trailing_text.jsonl",
			want: []string{
				"trailing_text.jsonl:1: malformed JSON",
				"trailing_text.jsonl:2: malformed JSON",
			},
		},
		{
			name: "CSV body and ext",
			file: "trailing_text.csv",
			want: []string{
				"trailing_text.csv:2: body: malformed JSON",
				"trailing_text.csv:3: ext: malformed JSON",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := planOpts(t, Options{Files: []string{invalidDir + tt.file}})
			got := problemStrings(t, err)
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(got[i], invalidDir+tt.want[i])
			}
			if !ok {
				t.Errorf("problems:\ngot  %q\nwant %d starting with %q", got, len(tt.want), tt.want)
			}
		})
	}
	t.Run("--message file", func(t *testing.T) {
		const file = "testdata/message/trailing.json"
		_, err := Open(Options{Files: []string{"testdata/read/ids.csv"}, Message: file})
		got := problemStrings(t, err)
		if len(got) != 1 || !strings.HasPrefix(got[0], file+":") || !strings.Contains(got[0], "malformed JSON") {
			t.Errorf("problems:\ngot  %q\nwant 1 at %s saying malformed JSON", got, file)
		}
	})
}

// TestValidationSize checks the 5 KB limit on body plus ext, counted on the
// compact, key-sorted JSON sent (no HTML escaping), plus the room reserved for
// --dedup-ext and for an upload's url and secret.
func TestValidationSize(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pic.png", "not really a picture")
	// compact is the size of v as sent: keys sorted, no spaces, and no HTML
	// escaping (the strings here hold no <, > or & unless said).
	compact := func(v any) int {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return len(b)
	}
	msgOf := func(n int) string { return strings.Repeat("x", n) }
	// bodyFor returns a msg that makes {"msg":msg} plus ext take size bytes.
	bodyFor := func(size int, ext map[string]any) string {
		n := size - compact(map[string]string{"msg": ""})
		if ext != nil {
			n -= compact(ext)
		}
		return msgOf(n)
	}
	ext := map[string]any{"order": "A-1001", "campaign": "welcome", "n": json.Number("30")}
	over := func(n int) string {
		return fmt.Sprintf("body and ext take %d bytes, over the limit of %d", n, MaxBodyExt)
	}

	tests := []struct {
		name       string
		row        map[string]any
		extReserve int
		want       string // the problem, "" for none
	}{
		{name: "body of exactly 5120 bytes", row: map[string]any{"msg": bodyFor(5120, nil)}},
		{name: "body of 5121 bytes", row: map[string]any{"msg": bodyFor(5121, nil)}, want: over(5121)},
		{name: "body and ext of exactly 5120 bytes", row: map[string]any{"msg": bodyFor(5120, ext), "ext": ext}},
		{name: "body and ext of 5121 bytes", row: map[string]any{"msg": bodyFor(5121, ext), "ext": ext}, want: over(5121)},
		{
			// 5110 '<' would take 30,660 bytes if HTML-escaped as \u003c.
			name: "no HTML escaping",
			row:  map[string]any{"msg": strings.Repeat("<", 5110)},
		},
		{
			name: "multi-byte text counts its UTF-8 bytes",
			row:  map[string]any{"msg": strings.Repeat("中", 1703) + "a"}, // 5110 bytes
		},
		{
			name: "multi-byte text one byte over",
			row:  map[string]any{"msg": strings.Repeat("中", 1703) + "ab"},
			want: over(5121),
		},
		{
			name:       "room for --dedup-ext",
			row:        map[string]any{"msg": bodyFor(5120, nil)},
			extReserve: 64,
			want:       over(5184),
		},
		{
			name:       "room for --dedup-ext, just fits",
			row:        map[string]any{"msg": bodyFor(5120-64, nil)},
			extReserve: 64,
		},
		{
			// body {} takes 2 bytes; the upload's url and secret are reserved.
			name: "file upload reserve, just fits",
			row:  map[string]any{"type": "img", "file": "pic.png", "ext": map[string]string{"k": msgOf(5120 - 2 - UploadReserve - compact(map[string]string{"k": ""}))}},
		},
		{
			name: "file upload reserve, one byte over",
			row:  map[string]any{"type": "img", "file": "pic.png", "ext": map[string]string{"k": msgOf(5121 - 2 - UploadReserve - compact(map[string]string{"k": ""}))}},
			want: over(5121),
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := map[string]any{"to": "alice"}
			for k, v := range tt.row {
				row[k] = v
			}
			file := writeFile(t, dir, fmt.Sprintf("size%d.jsonl", i), jsonLines(t, row))
			_, err := planOpts(t, Options{Files: []string{file}, ExtReserve: tt.extReserve})
			var want []string
			if tt.want != "" {
				want = []string{file + ":1: " + tt.want}
			}
			checkLines(t, "problems", problemStrings(t, err), want)
		})
	}

	// The size is the canonical one: a body and ext written with spaces and
	// keys out of order count as their compact, sorted form.
	t.Run("counted on compact JSON", func(t *testing.T) {
		msg := bodyFor(5120, map[string]any{"a": "1", "b": "2"})
		line := fmt.Sprintf(`{ "to" : "alice" , "ext" : { "b" : "2" ,   "a" : "1" } , "body" : {   "msg" : %q } }`+"\n", msg)
		if len(line) <= MaxBodyExt+10 {
			t.Fatalf("test line of %d bytes: want one longer than the limit as written", len(line))
		}
		file := writeFile(t, dir, "spaced.jsonl", line)
		_, err := planOpts(t, Options{Files: []string{file}})
		checkLines(t, "problems", problemStrings(t, err), nil)
	})
}

// TestValidationManyProblems checks that a campaign's problems are listed up
// to MaxProblems and the rest counted.
func TestValidationManyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("kind,to,msg\n")
	for i := range 150 {
		fmt.Fprintf(&b, "usr,u%d,hi\n", i)
	}
	file := writeFile(t, t.TempDir(), "many.csv", b.String())
	_, err := planOpts(t, Options{Files: []string{file}})
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Plan: got error %v, want an *InvalidError", err)
	}
	if len(inv.Problems) != MaxProblems || inv.More != 50 {
		t.Errorf("got %d problems and %d more, want %d and 50", len(inv.Problems), inv.More, MaxProblems)
	}
	for i, p := range inv.Problems {
		want := fmt.Sprintf(`%s:%d: unknown kind "usr" %s`, file, i+2, kindList)
		if p.String() != want {
			t.Errorf("problem %d: got %q, want %q", i, p.String(), want)
			break
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if got, want := lines[0], "invalid campaign: 150 problems, nothing was sent"; got != want {
		t.Errorf("first line of Error(): got %q, want %q", got, want)
	}
	if got, want := lines[len(lines)-1], "... and 50 more"; got != want {
		t.Errorf("last line of Error(): got %q, want %q", got, want)
	}
	if got, want := len(lines), 1+MaxProblems+1; got != want {
		t.Errorf("Error() has %d lines, want %d", got, want)
	}
}

// TestInvalidErrorString checks the wording of Problem and InvalidError.
func TestInvalidErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  InvalidError
		want string
	}{
		{
			name: "one problem",
			err:  InvalidError{Problems: []Problem{{File: "a.csv", Line: 3, Msg: "to is empty"}}},
			want: "invalid campaign: 1 problem, nothing was sent\na.csv:3: to is empty",
		},
		{
			name: "problem with a whole file",
			err:  InvalidError{Problems: []Problem{{File: "a.csv", Msg: "no such file or directory"}, {File: "b.jsonl", Line: 1, Msg: "x"}}},
			want: "invalid campaign: 2 problems, nothing was sent\na.csv: no such file or directory\nb.jsonl:1: x",
		},
		{
			name: "more",
			err:  InvalidError{Problems: []Problem{{File: "a.csv", Line: 2, Msg: "x"}}, More: 7},
			want: "invalid campaign: 8 problems, nothing was sent\na.csv:2: x\n... and 7 more",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error():\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestMessageDefaultsInvalid checks the problems of a bad --message file,
// found by Open before any campaign file is read.
func TestMessageDefaultsInvalid(t *testing.T) {
	const dir = "testdata/message/"
	tests := []struct {
		name    string
		message string
		want    []string
	}{
		{name: "malformed JSON", message: dir + "malformed.json", want: []string{dir + "malformed.json:1: malformed JSON at byte 14: invalid character '}' looking for beginning of object key string"}},
		{name: "not an object", message: dir + "not_object.json", want: []string{dir + "not_object.json:1: want a JSON object, got a JSON array"}},
		{name: "unknown key", message: dir + "unknown_key.json", want: []string{dir + `unknown_key.json:1: unknown key "colour"`}},
		{name: "recipients", message: dir + "with_to.json", want: []string{dir + "with_to.json:1: to: recipients come from the campaign files, not from --message"}},
		{name: "value of the wrong type", message: dir + "wrong_type.json", want: []string{dir + "wrong_type.json:1: from: want a string, got 7"}},
		{name: "missing", message: dir + "nope.json", want: []string{dir + "nope.json: no such file or directory"}},
		{
			// The problem is on line 4 of a multi-line file, as the samples'
			// welcome.json is written.
			name:    "problem on a later line",
			message: dir + "multiline.json",
			want:    []string{dir + `multiline.json:4: unknown key "colour"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(Options{Files: []string{"testdata/read/ids.csv"}, Message: tt.message})
			if err == nil {
				t.Fatalf("Open: got campaign %v, want an error", c)
			}
			checkLines(t, "problems", problemStrings(t, err), tt.want)
		})
	}
}

// TestMessageDefaultsPerRow checks that a default value that is wrong is
// reported at each row that takes it, and not at a row that overrides it.
func TestMessageDefaultsPerRow(t *testing.T) {
	dir := t.TempDir()
	msg := writeFile(t, dir, "defaults.json", `{"msg":"hi","from":""}`)
	file := writeFile(t, dir, "rows.csv", "to,from\nalice,\nbob,shop\ncarol,\n")
	_, err := planOpts(t, Options{Files: []string{file}, Message: msg})
	checkLines(t, "problems", problemStrings(t, err), []string{
		file + `:2: from is "": leave it out to send as admin`,
		file + `:4: from is "": leave it out to send as admin`,
	})
}

// TestOpenNoFiles checks that a campaign needs files.
func TestOpenNoFiles(t *testing.T) {
	_, err := Open(Options{})
	checkLines(t, "problems", problemStrings(t, err), []string{"campaign: no campaign files given"})
}

// TestUnknownEncoding checks that an encoding other than utf-8 and gbk is
// refused.
func TestUnknownEncoding(t *testing.T) {
	_, err := planOpts(t, Options{Files: []string{"testdata/read/ids.csv"}, Encoding: "latin1"})
	checkLines(t, "problems", problemStrings(t, err), []string{`testdata/read/ids.csv: unknown encoding "latin1" (want utf-8 or gbk)`})
}
