package planner

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// TestAttachmentsStayInTheirFolder names files a campaign from someone
// else could use to send any file of the machine: each is refused, at its
// line, before anything is read from it; files inside the folder, and
// inside --files, are taken.
func TestAttachmentsStayInTheirFolder(t *testing.T) {
	outside := t.TempDir()
	secret := writeFile(t, outside, "secret.txt", "not for the recipients")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pics"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "pics/ok.png", "png")
	link := func(name, target string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	link("out.png", secret)
	link("env.png", "/proc/self/environ")
	link("pics/up.png", "../pics/ok.png") // a link that stays inside
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.png"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		filesDir   string
		want       string // the problem after "c.jsonl:1: file NAME: "; "" for none
	}{
		{name: "inside", file: "pics/ok.png"},
		{name: "a link inside", file: "pics/up.png"},
		{name: "absolute", file: secret, want: "an absolute path; name the file relative to the folder " + dir},
		{name: "proc", file: "/proc/self/environ", want: "an absolute path; name the file relative to the folder " + dir},
		{name: "dot dot", file: "../" + filepath.Base(outside) + "/secret.txt", want: "outside the folder " + dir},
		{name: "dot dot inside out", file: "pics/../../x.png", want: "outside the folder " + dir},
		{name: "a link out", file: "out.png", want: "a link to " + secret + ", outside the folder " + dir},
		{name: "a link to proc", file: "env.png", want: "outside the folder " + dir},
		{name: "a FIFO", file: "pipe.png", want: "not a regular file"},
		{name: "a folder", file: "pics", want: "not a regular file"},
		{name: "in --files", file: "secret.txt", filesDir: outside},
		{name: "out of --files", file: "../" + filepath.Base(dir) + "/pics/ok.png", filesDir: outside, want: "outside the folder " + outside},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, "c.jsonl", `{"to":"a","type":"img","file":`+strconv.Quote(tt.file)+"}\n")
			plan, err := planOpts(t, Options{Files: []string{path}, FilesDir: tt.filesDir})
			var want []string
			if tt.want != "" {
				want = []string{path + ":1: file " + tt.file + ": " + tt.want}
			}
			got := problemStrings(t, err)
			if len(got) == 1 && strings.Contains(got[0], "a link to /proc/") {
				got[0] = path + ":1: file " + tt.file + ": outside the folder " + dir // the pid varies
			}
			checkLines(t, "problems", got, want)
			if tt.want == "" && (plan == nil || len(plan.Attachments) != 1 || plan.Attachments[0].Bytes != 3 && tt.filesDir == "") {
				t.Errorf("plan attachments: got %+v, want the one file", plan)
			}
		})
	}
}
