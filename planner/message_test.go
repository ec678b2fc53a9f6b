package planner

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// distinctMessages returns the messages of a campaign that must be valid,
// in the order of their batches.
func distinctMessages(t *testing.T, opts Options) []*Message {
	t.Helper()
	var out []*Message
	seen := map[[32]byte]bool{}
	for _, b := range batchesOf(t, opts, nil) {
		if !seen[b.Message.Digest] {
			seen[b.Message.Digest] = true
			out = append(out, b.Message)
		}
	}
	return out
}

// TestRowJSONRoundTrip checks that a message written back as a campaign row
// by RowJSON (as a report does, to be fed back to run) reads as the same
// message, with the same digest, in JSONL and in CSV, from another folder.
func TestRowJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		files []string
	}{
		{name: "samples", files: []string{"../samples/mixed.jsonl", "../samples/mixed.csv", "../samples/users.csv", "../samples/rooms.csv", "../samples/groups.jsonl", "../samples/group_members.jsonl", "../samples/room_members.csv", "../samples/legacy.jsonl"}},
		{name: "options", files: []string{"testdata/read/options.jsonl"}},
		// The campaign is named by a relative path, as on a command line;
		// the report is read from another folder.
		{name: "files", files: []string{"testdata/read/files.jsonl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := distinctMessages(t, Options{Files: tt.files})
			if len(msgs) == 0 {
				t.Fatal("no messages")
			}
			dir := t.TempDir()
			var jsonl strings.Builder
			csvRows := [][]string{}
			columns := []string{"to", "kind", "scope", "type", "body", "from", "ext", "sync_device", "routetype", "roam_ignore_users", "need_group_ack", "chatroom_msg_level", "file"}
			for i, m := range msgs {
				var row map[string]json.RawMessage
				if err := json.Unmarshal(m.RowJSON(), &row); err != nil {
					t.Fatalf("RowJSON %s: %v", m.RowJSON(), err)
				}
				for k := range row {
					if !slices.Contains(columns, k) {
						t.Errorf("RowJSON %s: key %q is not a campaign key", m.RowJSON(), k)
					}
				}
				to := fmt.Sprintf("r%d", i)
				row["to"] = json.RawMessage(fmt.Sprintf("%q", to))
				line, _ := json.Marshal(row)
				jsonl.Write(line)
				jsonl.WriteByte('\n')
				cells := make([]string, len(columns))
				for j, c := range columns {
					cells[j] = cellOf(row[c])
				}
				csvRows = append(csvRows, cells)
			}
			var csv strings.Builder
			csv.WriteString(strings.Join(columns, ",") + "\n")
			for _, cells := range csvRows {
				for j, c := range cells {
					if j > 0 {
						csv.WriteByte(',')
					}
					csv.WriteString(`"` + strings.ReplaceAll(c, `"`, `""`) + `"`)
				}
				csv.WriteByte('\n')
			}
			for _, file := range []string{
				writeFile(t, dir, "back.jsonl", jsonl.String()),
				writeFile(t, dir, "back.csv", csv.String()),
			} {
				t.Run(filepath.Ext(file), func(t *testing.T) {
					// the files are where the campaign named them
					back, err := tryBatches(t, Options{Files: []string{file}, FilesDir: filepath.Dir(tt.files[0])}, nil)
					if err != nil {
						t.Fatalf("reading the rows back: %v", err)
					}
					got := map[string][32]byte{}
					for _, b := range back {
						for _, to := range b.To {
							got[to] = b.Message.Digest
						}
					}
					for i, m := range msgs {
						if d := got[fmt.Sprintf("r%d", i)]; d != m.Digest {
							t.Errorf("message %d %s: read back with digest %x, want %x", i, m.RowJSON(), d[:8], m.Digest[:8])
						}
					}
				})
			}
		})
	}
}

// cellOf writes a JSON value as a campaign CSV cell: strings as they are,
// other values as JSON text.
func cellOf(raw json.RawMessage) string {
	if raw == nil {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
