package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imcast/emulator"
)

// sentPromo writes promo.csv with rows into a fresh directory and runs it
// against a fresh emulator; args gives a run's arguments at that emulator
// with the same ledger.
func sentPromo(t *testing.T, rows string) (dir, file string, srv *emulator.Running, args func(extra ...string) []string) {
	t.Helper()
	dir = t.TempDir()
	state := filepath.Join(dir, "ledger.db")
	file = filepath.Join(dir, "promo.csv")
	if err := os.WriteFile(file, []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	srv = startFake(t, emulator.Config{})
	t.Setenv("EASEMOB_TOKEN", "t")
	args = func(extra ...string) []string {
		return append([]string{"run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--quiet"}, extra...)
	}
	if code, _, stderr := runCLI(t, args(file)...); code != exitOK {
		t.Fatalf("first run: exit %d: %s", code, stderr)
	}
	return dir, file, srv, args
}

// TestRenamedFileSendsNothing copies a campaign that was sent to a new name:
// run without --campaign, it sends nothing and names the campaign that
// holds its deliveries; with --campaign, it sends on purpose.
func TestRenamedFileSendsNothing(t *testing.T) {
	dir, a, srv, args := sentPromo(t, "to,msg\nu1,sale\nu2,sale\nu3,sale\n")
	b := filepath.Join(dir, "promo-final.csv")
	data, _ := os.ReadFile(a)
	if err := os.WriteFile(b, append(data, "u4,sale\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	before := srv.Stats().Requests
	code, _, stderr := runCLI(t, args(b)...)
	if code != exitInvalid || !strings.Contains(stderr, `campaign "promo" already holds 3`) || !strings.Contains(stderr, "run with --campaign promo;") {
		t.Errorf("renamed file: exit %d, stderr %q; want %d naming campaign promo, its 3 deliveries, and how to go on with it", code, stderr, exitInvalid)
	}
	// a campaign column naming a campaign the ledger does not hold is
	// no way around it
	c := filepath.Join(dir, "edited.csv")
	if err := os.WriteFile(c, []byte("campaign,to,msg\nzzz,u1,sale\nzzz,u2,sale\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = runCLI(t, args(c)...); code != exitInvalid || !strings.Contains(stderr, `campaign "promo" already holds 2`) {
		t.Errorf("renamed file: exit %d, stderr %q; want %d naming campaign promo and its 3 deliveries", code, stderr, exitInvalid)
	}
	if n := srv.Stats().Requests - before; n != 0 {
		t.Errorf("the renamed file made %d requests, want 0", n)
	}
	if code, _, stderr := runCLI(t, args("--campaign", "again", b)...); code != exitOK {
		t.Fatalf("--campaign again: exit %d: %s", code, stderr)
	}
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		if n := srv.Delivered("users", "", u); n != 1+map[bool]int{true: 1}[u != "u4"] {
			t.Errorf("%s delivered %d times; want the campaign sent once more on purpose", u, n)
		}
	}
}

// TestFullReportFedBackKeepsItsCampaign feeds a report of every delivery
// back to run under the report's own name: its rows stay in the campaign
// they came from, so the sent stay sent, the uncertain stay uncertain, and
// only the failed are sent again.
func TestFullReportFedBackKeepsItsCampaign(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "ledger.db")
	campaign := filepath.Join(dir, "spring.jsonl")
	rows := `{"to":["a","b"],"msg":"hello"}
{"kind":"legacy_users","to":["c"],"msg":"hello legacy"}
{"kind":"rooms","to":["r1","r2"],"msg":"hello rooms"}
`
	if err := os.WriteFile(campaign, []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startFake(t, emulator.Config{UnknownIDs: []string{"c"}})
	t.Setenv("EASEMOB_TOKEN", "t")
	args := []string{"--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--quiet"}
	// answers that leave recipients out make them uncertain; c is
	// unknown to the legacy API: failed
	srv.SetFaults(emulator.Faults{Partial: 1})
	code, _, stderr := runCLI(t, append(append([]string{"run"}, args...), campaign)...)
	if code != exitIncomplete {
		t.Fatalf("first run: exit %d, want %d: %s", code, exitIncomplete, stderr)
	}
	states := map[string]int{}
	for _, row := range reportRows(t, state) {
		states[row["state"]]++
	}
	if states["uncertain"] == 0 || states["failed"] != 1 {
		t.Fatalf("first run left %v; want some uncertain and 1 failed", states)
	}
	for _, format := range []string{"csv", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(dir, "retry."+format)
			if code, _, stderr := runCLI(t, "report", "--state", state, "--format", format, "--out", out); code != exitOK {
				t.Fatalf("report: exit %d: %s", code, stderr)
			}
			before := srv.Stats()
			code, stdout, stderr := runCLI(t, append(append([]string{"run"}, args...), out)...)
			if code != exitIncomplete {
				t.Errorf("fed-back run: exit %d, want %d\n%s\n%s", code, exitIncomplete, stdout, stderr)
			}
			after := srv.Stats()
			if got := after.Delivered - before.Delivered; got != 0 || after.Duplicates != 0 {
				t.Errorf("the fed-back report delivered %d messages (%d duplicates); want none", got, after.Duplicates)
			}
			if got := after.Kinds["legacy"].Calls - before.Kinds["legacy"].Calls; got != 1 {
				t.Errorf("the failed legacy delivery was tried %d times, want once more", got)
			}
			code, out2, _ := runCLI(t, "status", "--state", state)
			if code != exitOK || strings.Contains(out2, "retry") {
				t.Errorf("status: exit %d\n%s\nwant no campaign named after the report", code, out2)
			}
		})
	} // The same report fed to a new ledger, on another machine say: its
	// state column still says what was sent and what may have been.
	out := filepath.Join(dir, "retry.csv")
	fresh := startFake(t, emulator.Config{})
	newArgs := []string{"run", "--host", fresh.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "new.db"), "--quiet", out}
	if code, stdout, stderr := runCLI(t, newArgs...); code != exitIncomplete {
		t.Errorf("report on a new ledger: exit %d, want %d\n%s\n%s", code, exitIncomplete, stdout, stderr)
	}
	if st := fresh.Stats(); st.Delivered != 1 || st.Delivered != fresh.Delivered("legacy_users", "", "c") {
		t.Errorf("report on a new ledger delivered %d messages; want only the failed one, to c", st.Delivered)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestDeadHostStops runs against a port nothing listens on, and against a
// host that takes connections and never answers: the run stops by itself
// with exit 1, naming the host, with a fixed token and with client
// credentials (the token host dead).
func TestDeadHostStops(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	dead := freeAddr(t)
	dir := t.TempDir()
	campaign := filepath.Join(dir, "c.csv")
	if err := os.WriteFile(campaign, []byte("to,msg\nu1,hi\nu2,hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, addr string
		env        map[string]string
	}{
		{"refused, token", dead, map[string]string{"EASEMOB_TOKEN": "t"}},
		{"refused, client credentials", dead, map[string]string{"EASEMOB_CLIENT_ID": "id", "EASEMOB_CLIENT_SECRET": "sec"}},
		{"silent, token", silent.Addr().String(), map[string]string{"EASEMOB_TOKEN": "t"}},
	}
	bin := binary(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin, "run", "--host", "http://"+tt.addr, "--org", "o", "--app", "a",
				"--state", filepath.Join(dir, fmt.Sprintf("l%d.db", i)), "--quiet", campaign)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
			for k, v := range tt.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			start := time.Now()
			code := exitCodeOf(cmd.Run())
			t.Logf("stopped after %v: %s", time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(stderr.String()))
			if code != exitFatal || !strings.Contains(stderr.String(), tt.addr) || !strings.Contains(stderr.String(), "answered") {
				t.Errorf("exit %d, stderr %q; want %d naming %s", code, stderr.String(), exitFatal, tt.addr)
			}
		})
	}
}

// TestRedirectsCarryNothingAway has the server redirect every message call,
// and every token request: nothing reaches the redirect's target, the
// messages fail naming it, and a token redirect stops the run.
func TestRedirectsCarryNothingAway(t *testing.T) {
	dir := t.TempDir()
	campaign := filepath.Join(dir, "c.csv")
	if err := os.WriteFile(campaign, []byte("to,msg\nu1,hi\nu2,hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startFake(t, emulator.Config{Faults: emulator.Faults{Redirect: 1, TokenRedirect: 1}})
	run := func(state string) (int, string) {
		code, _, stderr := runCLI(t, "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, state), "--quiet", campaign)
		return code, stderr
	}
	t.Setenv("EASEMOB_TOKEN", "bearer-token")
	if code, stderr := run("a.db"); code != exitIncomplete {
		t.Errorf("message redirects: exit %d, want %d: %s", code, exitIncomplete, stderr)
	}
	rows := reportRows(t, filepath.Join(dir, "a.db"))
	for d, row := range rows {
		if row["state"] != "failed" || !strings.Contains(row["error"], srv.TrapURL) {
			t.Errorf("%v: %s %q; want failed, naming %s", d, row["state"], row["error"], srv.TrapURL)
		}
	}
	t.Setenv("EASEMOB_TOKEN", "")
	t.Setenv("EASEMOB_CLIENT_ID", "id")
	t.Setenv("EASEMOB_CLIENT_SECRET", "client-secret")
	code, stderr := run("b.db")
	if code != exitFatal || !strings.Contains(stderr, srv.TrapURL) || strings.Contains(stderr, "client-secret") {
		t.Errorf("token redirect: exit %d, stderr %q; want %d naming the trap, without the secret", code, stderr, exitFatal)
	}
	if got := srv.TrapRequests(); len(got) != 0 {
		t.Errorf("the redirect target received %d requests: %+v", len(got), got)
	}
}

// TestRenamedFileGoesOnAsTheRefusalSays: the refusal of a renamed file
// says how to go on with the campaign that holds its deliveries; doing so
// sends only what that campaign has not sent.
func TestRenamedFileGoesOnAsTheRefusalSays(t *testing.T) {
	dir, _, srv, args := sentPromo(t, "to,msg\nu1,sale\nu2,sale\n")
	b := filepath.Join(dir, "promo-v2.csv")
	if err := os.WriteFile(b, []byte("to,msg\nu1,sale\nu2,sale\nu3,sale\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, args(b)...)
	hint := regexp.MustCompile(`To go on with campaign \S+ \(what it sent stays sent\), run with (--campaign \S+);`).FindStringSubmatch(stderr)
	if code != exitInvalid || hint == nil {
		t.Fatalf("renamed file: exit %d, stderr %q; want %d and how to go on", code, stderr, exitInvalid)
	}
	if code, _, stderr := runCLI(t, args(append(strings.Fields(hint[1]), b)...)...); code != exitOK {
		t.Fatalf("%s: exit %d: %s", hint[1], code, stderr)
	}
	for _, u := range []string{"u1", "u2", "u3"} {
		if n := srv.Delivered("users", "", u); n != 1 {
			t.Errorf("%s delivered %d times, want once", u, n)
		}
	}
}
