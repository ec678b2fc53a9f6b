package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imcast/emulator"
)

// TestReadmeSampleRun is the README's first command: a sample campaign on
// the built-in emulator runs to completion, and running it again sends
// nothing.
func TestReadmeSampleRun(t *testing.T) {
	state := filepath.Join(t.TempDir(), "imcast.db")
	code, stdout, stderr := runCLI(t, "run", "--fake", "--state", state, "samples/mixed.jsonl")
	if code != exitOK {
		t.Fatalf("first run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "campaign mixed: 10 sent") || !strings.Contains(stdout, "every delivery is sent") {
		t.Errorf("first run summary:\n%s", stdout)
	}
	code, stdout, stderr = runCLI(t, "run", "--fake", "--state", state, "samples/mixed.jsonl")
	if code != exitOK {
		t.Fatalf("second run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "campaign mixed: 0 sent") || !strings.Contains(stdout, "10 were sent before") {
		t.Errorf("second run summary:\n%s", stdout)
	}
	code, stdout, _ = runCLI(t, "status", "--state", state)
	if code != exitOK || !strings.Contains(stdout, "mixed") {
		t.Fatalf("status: exit %d\n%s", code, stdout)
	}
	fields := strings.Fields(strings.Split(strings.TrimSpace(stdout), "\n")[1])
	if want := []string{"mixed", "10", "10", "0", "0", "0", "0"}; strings.Join(fields, " ") != strings.Join(want, " ") {
		t.Errorf("status row: got %v, want %v", fields, want)
	}
}

func TestRunJSONEvents(t *testing.T) {
	state := filepath.Join(t.TempDir(), "imcast.db")
	code, stdout, stderr := runCLI(t, "run", "--fake", "--json", "--state", state, "samples/groups.jsonl")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var last struct {
		Event    string `json:"event"`
		Complete bool   `json:"complete"`
		Total    struct {
			Sent int64 `json:"sent"`
		} `json:"total"`
	}
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", l, err)
		}
	}
	if last.Event != "summary" || !last.Complete || last.Total.Sent != 5 {
		t.Errorf("last event: got %+v, want a complete summary with 5 sent", last)
	}
}

// TestReportFedBack runs a campaign with a failing message, reports the
// failures, and feeds the report back to run under the same campaign: only
// the failed deliveries are sent again.
func TestReportFedBack(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "ledger.db")
	campaign := filepath.Join(dir, "spring.jsonl")
	rows := `{"to":["a","b"],"msg":"hello"}
{"kind":"legacy_users","to":["c","d"],"msg":"hello legacy"}
`
	if err := os.WriteFile(campaign, []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startFake(t, emulator.Config{UnknownIDs: []string{"c"}})
	t.Setenv("EASEMOB_TOKEN", "t")
	args := []string{"--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--quiet"}
	code, stdout, stderr := runCLI(t, append(append([]string{"run"}, args...), campaign)...)
	if code != exitIncomplete {
		t.Fatalf("first run: exit %d, want %d\n%s\n%s", code, exitIncomplete, stdout, stderr)
	}
	failed := filepath.Join(dir, "failed.csv")
	code, _, stderr = runCLI(t, "report", "--state", state, "--only", "failed,uncertain", "--out", failed)
	if code != exitOK {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(failed)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "campaign,kind,scope,recipient,state,message_id,error,time") {
		t.Fatalf("report: got\n%s\nwant a header and the 2 failed legacy deliveries", data)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, ",failed,") || !strings.Contains(l, "legacy_users") {
			t.Errorf("report row %q: want a failed legacy_users delivery", l)
		}
	}
	// The user fixes the cause; the report goes back in as the campaign.
	srv.Close()
	srv2 := startFake(t, emulator.Config{})
	args[1] = srv2.URL
	code, stdout, stderr = runCLI(t, append(append([]string{"run", "--campaign", "spring"}, args...), failed)...)
	if code != exitOK {
		t.Fatalf("fed-back run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, to := range []string{"c", "d"} {
		if n := srv2.Delivered("legacy_users", "", to); n != 1 {
			t.Errorf("%s delivered %d times by the fed-back run, want 1", to, n)
		}
	}
	if n := srv2.Stats().Delivered; n != 2 {
		t.Errorf("the fed-back run delivered %d messages, want only the 2 failed", n)
	}
}

func TestRunRefusesBadInputBeforeSending(t *testing.T) {
	srv := startFake(t, emulator.Config{})
	t.Setenv("EASEMOB_TOKEN", "t")
	dir := t.TempDir()
	campaign := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(campaign, []byte("{\"to\":\"a\",\"msg\":\"ok\"}\n{\"to\":\"b\",\"kind\":\"channels\",\"msg\":\"x\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "l.db"), campaign)
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d: %s", code, exitInvalid, stderr)
	}
	if !strings.Contains(stderr, "bad.jsonl:2: unknown kind") {
		t.Errorf("stderr does not name the line: %s", stderr)
	}
	if n := srv.Stats().Calls; n != 0 {
		t.Errorf("%d calls made for an invalid campaign, want 0", n)
	}
}
