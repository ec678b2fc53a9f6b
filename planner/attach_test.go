package planner

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAttachments(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "clip.mp4", "video")
	writeFile(t, dir, "still.png", "png")
	big := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(big, make([]byte, MaxUpload+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		rows string
		want []string
	}{
		{name: "a video with its thumbnail, restricted",
			rows: `{"to":"a","type":"video","file":"clip.mp4","thumb":"still.png","restrict_access":true}`},
		{name: "thumb on an image",
			rows: `{"to":"a","type":"img","file":"still.png","thumb":"still.png"}`,
			want: []string{"c.jsonl:1: thumb is the thumbnail of a video message, not an img"}},
		{name: "a missing thumbnail",
			rows: `{"to":"a","type":"video","file":"clip.mp4","thumb":"gone.png"}`,
			want: []string{"c.jsonl:1: thumb gone.png: no such file or directory"}},
		{name: "restrict_access with nothing to upload",
			rows: `{"to":"a","type":"img","body":{"url":"https://x/y"},"restrict_access":true}`,
			want: []string{"c.jsonl:1: restrict_access is for messages with a file or thumb to upload"}},
		{name: "restrict_access not a boolean",
			rows: `{"to":"a","type":"img","file":"still.png","restrict_access":"yes"}`,
			want: []string{`c.jsonl:1: restrict_access: want true or false, got "yes"`}},
		{name: "a file over 10 MB",
			rows: `{"to":"a","type":"file","file":"big.bin"}`,
			want: []string{"c.jsonl:1: file big.bin: 10485761 bytes, over the 10485760 the service takes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, "c.jsonl", tt.rows+"\n")
			_, err := planOpts(t, Options{Files: []string{path}})
			var want []string
			for _, w := range tt.want {
				want = append(want, filepath.Join(dir, w))
			}
			checkLines(t, "problems", problemStrings(t, err), want)
		})
	}
}
