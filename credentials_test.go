package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"imcast/emulator"
)

// TestTokenShorterThanTheRun runs a campaign of about five seconds with app
// tokens that live two: it completes, and no call meets a stale token.
func TestTokenShorterThanTheRun(t *testing.T) {
	dir := t.TempDir()
	campaign, all := testCampaign(t, dir, 1300)
	srv := startFake(t, emulator.Config{ClientID: "cid", ClientSecret: "csecret", TokenTTL: 2 * time.Second, QuotaScale: 3})
	t.Setenv("EASEMOB_CLIENT_ID", "cid")
	t.Setenv("EASEMOB_CLIENT_SECRET", "csecret")
	code, stdout, stderr := runCLI(t, "run", "--host", srv.URL, "--app-id", "app", "--state", filepath.Join(dir, "l.db"),
		"--quota-scale", "3", "--quiet", campaign)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	st := srv.Stats()
	if st.Responses[401] != 0 {
		t.Errorf("%d calls were refused with 401", st.Responses[401])
	}
	if st.TokensIssued < 3 {
		t.Errorf("%d tokens issued for a run of about 5 s with 2 s tokens, want at least 3", st.TokensIssued)
	}
	if st.Delivered != len(all) || st.Duplicates != 0 {
		t.Errorf("delivered %d with %d duplicates, want %d and 0", st.Delivered, st.Duplicates, len(all))
	}
}

// TestSecretsNeverLeave runs campaigns with a known client secret and a
// known token, with faults that put errors in the ledger, and searches
// everything imcast wrote for them.
func TestSecretsNeverLeave(t *testing.T) {
	const clientSecret = "client-SECRET-7f3a9c"
	const staticToken = "static-TOKEN-91b2e4"
	dir := t.TempDir()
	campaign, _ := testCampaign(t, dir, 700)
	state := filepath.Join(dir, "ledger.db")
	var written []string
	check := func(name, text string, secrets []string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q", name, s)
			}
		}
		written = append(written, name)
	}

	// client credentials, short-lived tokens, and calls failing every way
	srv := startFake(t, emulator.Config{ClientID: "cid", ClientSecret: clientSecret, TokenTTL: time.Second, QuotaScale: 10,
		Faults: emulator.Faults{ErrorBefore: 0.1, ErrorAfter: 0.1, ResetAfter: 0.1, TooManyRequests: 0.1}})
	t.Setenv("EASEMOB_CLIENT_ID", "cid")
	t.Setenv("EASEMOB_CLIENT_SECRET", clientSecret)
	args := []string{"--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--quota-scale", "10"}
	_, out1, err1 := runCLI(t, append(append([]string{"run"}, args...), campaign)...)
	_, out2, err2 := runCLI(t, append(append([]string{"run", "--json"}, args...), campaign)...)
	_, out3, err3 := runCLI(t, "check", "--host", srv.URL, "--org", "o", "--app", "a")
	t.Setenv("EASEMOB_CLIENT_SECRET", "wrong-"+clientSecret)
	code, out4, err4 := runCLI(t, "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "fresh.db"), campaign)
	if code != exitFatal || !strings.Contains(err4, "client_secret does not match") {
		t.Errorf("run with a wrong secret: exit %d, stderr %q; want 1 and the server's reason", code, err4)
	}
	code, out5, err5 := runCLI(t, "check", "--host", srv.URL, "--org", "o", "--app", "a")
	if code != exitFatal || !strings.Contains(err5, "client_secret does not match") {
		t.Errorf("check with a wrong secret: exit %d, stderr %q; want 1 and the server's reason", code, err5)
	}
	t.Setenv("EASEMOB_CLIENT_SECRET", clientSecret)
	secrets := append([]string{clientSecret, "wrong-" + clientSecret}, srv.IssuedTokens()...)
	if len(secrets) < 4 {
		t.Fatalf("only %d tokens issued; the test needs the run to outlive its tokens", len(secrets)-2)
	}
	for i, text := range []string{out1, err1, out2, err2, out3, err3, out4, err4, out5, err5} {
		check(fmt.Sprintf("output %d", i+1), text, secrets)
	}

	// a fixed token
	srv2 := startFake(t, emulator.Config{Token: staticToken, Faults: emulator.Faults{ErrorAfter: 0.2}})
	t.Setenv("EASEMOB_CLIENT_ID", "")
	t.Setenv("EASEMOB_CLIENT_SECRET", "")
	t.Setenv("EASEMOB_TOKEN", staticToken)
	state2 := filepath.Join(dir, "ledger2.db")
	_, out6, err6 := runCLI(t, "run", "--host", srv2.URL, "--org", "o", "--app", "a", "--state", state2, campaign)
	check("output 6", out6+err6, []string{staticToken})
	t.Setenv("EASEMOB_TOKEN", "")
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("not-the-"+staticToken+"\n"), 0o600)
	_, out7, err7 := runCLI(t, "run", "--host", srv2.URL, "--org", "o", "--app", "a", "--state", state2, "--token-file", tokenFile, campaign)
	check("output 7", out7+err7, []string{staticToken})

	all := append(secrets, staticToken)
	for _, st := range []string{state, state2} {
		for _, format := range []string{"csv", "jsonl"} {
			_, rep, _ := runCLI(t, "report", "--state", st, "--format", format)
			if rep == "" {
				t.Errorf("report of %s is empty", st)
			}
			check("report "+format, rep, all)
		}
		_, status, _ := runCLI(t, "status", "--state", st)
		check("status", status, all)
		data, err := os.ReadFile(st)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("ledger %s holds the secret %q", st, s)
			}
		}
		if !bytes.Contains(data, []byte("u0001")) {
			t.Errorf("ledger %s does not hold the recipients: the search proves nothing", st)
		}
	}
	if !strings.Contains(out1+out2, "uncertain") {
		t.Errorf("the runs reported no uncertain delivery; the faults did not put errors in the ledger")
	}
}

// writePNG writes a w×h PNG.
func writePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestImageUploadedOnce sends one image to 2,000 users in 4 batches,
// killing the run after its first batch: the image is uploaded once, and
// the rerun does not upload it again.
func TestImageUploadedOnce(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "banner.png"), 64, 32)
	var sb strings.Builder
	sb.WriteString("to,type,file\n")
	for i := range 2000 {
		fmt.Fprintf(&sb, "user%04d,img,banner.png\n", i)
	}
	campaign := filepath.Join(dir, "banner.csv")
	if err := os.WriteFile(campaign, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startFake(t, emulator.Config{QuotaScale: 2})
	state := filepath.Join(dir, "ledger.db")
	args := []string{"--quota-scale", "2"}
	cmd := startRun(t, srv, state, campaign, args...)
	for deadline := time.Now().Add(20 * time.Second); srv.Stats().Delivered < 600 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := srv.Stats().Delivered; got >= 2000 || got < 600 {
		t.Fatalf("%d delivered when killed; want the run killed after its first batch", got)
	}
	if n := srv.Stats().Uploads; n != 1 {
		t.Fatalf("%d uploads before the kill, want 1", n)
	}
	cmd = startRun(t, srv, state, campaign, args...)
	if code := exitCodeOf(cmd.Wait()); code != exitOK && code != exitIncomplete {
		t.Fatalf("rerun: exit %d: %s", code, cmd.Stdout)
	}
	st := srv.Stats()
	if st.Uploads != 1 || st.DuplicateUploads != 0 {
		t.Errorf("uploads %d (duplicates %d), want the image uploaded once", st.Uploads, st.DuplicateUploads)
	}
	if st.Duplicates != 0 {
		t.Errorf("%d duplicate deliveries", st.Duplicates)
	}
	calls := st.Kinds["users"].Accepted
	rows := reportRows(t, state)
	sent := 0
	for _, row := range rows {
		if row["state"] == "sent" {
			sent++
		}
	}
	if sent+len(rows)-sent != 2000 || calls < 4 {
		t.Errorf("%d deliveries in the ledger (%d sent) over %d calls; want 2000 over at least 4", len(rows), sent, calls)
	}
}

// TestMalformedTokenIsRefusedAtOnce gives a token no Authorization header
// can carry: the run stops before any request, saying so, not after 10 s
// blaming the host.
func TestMalformedTokenIsRefusedAtOnce(t *testing.T) {
	dir := t.TempDir()
	campaign := filepath.Join(dir, "c.csv")
	if err := os.WriteFile(campaign, []byte("to,msg\nu1,hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startFake(t, emulator.Config{})
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("tok extra\nline2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ env, file string }{{env: "bad\x01token"}, {file: file}} {
		t.Setenv("EASEMOB_TOKEN", tt.env)
		args := []string{"run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "l.db"), "--quiet"}
		if tt.file != "" {
			args = append(args, "--token-file", tt.file)
		}
		code, _, stderr := runCLI(t, append(args, campaign)...)
		if code != exitFatal || !strings.Contains(stderr, "token") || strings.Contains(stderr, "extra") {
			t.Errorf("exit %d, stderr %q; want %d naming the token, not printing it", code, stderr, exitFatal)
		}
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("%d requests with a malformed token, want 0", n)
	}
}
