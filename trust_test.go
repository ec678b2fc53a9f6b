package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"imcast/emulator"
)

// TestHostileAttachmentsAreRefusedBeforeSending runs a campaign from
// someone else that names files outside its folder: the run exits 2
// listing each at its line, having made no request; plan lists the files a
// good campaign uploads.
func TestHostileAttachmentsAreRefusedBeforeSending(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "banner.png"), 8, 8)
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "host.png")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.png"), 0o600); err != nil {
		t.Fatal(err)
	}
	rows := []string{
		`{"to":"u1","type":"img","file":"banner.png"}`,
		`{"to":"u2","type":"img","file":"/etc/hostname"}`,
		`{"to":"u3","type":"file","file":"/proc/self/environ"}`,
		`{"to":"u4","type":"img","file":"../../etc/hostname"}`,
		`{"to":"u5","type":"img","file":"host.png"}`,
		`{"to":"u6","type":"img","file":"fifo.png"}`,
	}
	campaign := filepath.Join(dir, "hostile.jsonl")
	if err := os.WriteFile(campaign, []byte(strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startFake(t, emulator.Config{})
	t.Setenv("EASEMOB_CLIENT_ID", "id")
	t.Setenv("EASEMOB_CLIENT_SECRET", "client-secret-value")
	code, _, stderr := runCLI(t, "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "l.db"), campaign)
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d: %s", code, exitInvalid, stderr)
	}
	for line := 2; line <= 6; line++ {
		if want := campaign + ":" + string(rune('0'+line)) + ": file "; !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name line %d (%q):\n%s", line, want, stderr)
		}
	}
	if st := srv.Stats(); st.Requests != 0 {
		t.Errorf("%d requests for an invalid campaign, want 0", st.Requests)
	}

	good := filepath.Join(dir, "good.jsonl")
	if err := os.WriteFile(good, []byte(rows[0]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "plan", good)
	if code != exitOK || !strings.Contains(stdout, "files to upload (1):") || !strings.Contains(stdout, filepath.Join(dir, "banner.png")) {
		t.Errorf("plan: exit %d\n%s%s\nwant banner.png listed to upload", code, stdout, stderr)
	}
}
