package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imcast/emulator"
)

// TestResolveSettlesUncertain runs a campaign against a server that
// answers half the calls 500 without delivering: their deliveries are
// uncertain. The operator settles those a trimmed report lists as failed,
// and the rest as sent: status counts them all resolved, report says so
// in each one's error, and the next run sends the failed ones, exactly,
// and exits 0.
func TestResolveSettlesUncertain(t *testing.T) {
	dir := t.TempDir()
	campaign, all := testCampaign(t, dir, 300)
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{ErrorBefore: 0.5}, Seed: 5})
	t.Setenv("EASEMOB_TOKEN", "test-token")
	state := filepath.Join(dir, "l.db")
	send := []string{"run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--quota-scale", "20", "--max-failure-rate", "1", "--quiet", campaign}
	if code, out, errs := runCLI(t, send...); code != exitIncomplete {
		t.Fatalf("first run: exit %d, want 3\n%s%s", code, out, errs)
	}
	uncertain := 0
	for _, row := range reportRows(t, state) {
		if row["state"] == "uncertain" {
			uncertain++
		}
	}
	if uncertain == 0 {
		t.Fatal("no uncertain delivery: the faults did nothing")
	}
	// the operator checks, and keeps in the file the rows that did not arrive
	listed := filepath.Join(dir, "u.csv")
	if code, _, errs := runCLI(t, "report", "--state", state, "--only", "uncertain", "--out", listed); code != exitOK {
		t.Fatalf("report: exit %d %s", code, errs)
	}
	raw, err := os.ReadFile(listed)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	failed := (len(lines) - 1) / 2
	if err := os.WriteFile(listed, []byte(strings.Join(lines[:1+failed], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "resolve", "--state", state, "--campaign", "mixed", "--as", "failed", listed)
	if code != exitOK || !strings.Contains(out, "resolved as failed") {
		t.Fatalf("resolve as failed: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs = runCLI(t, "resolve", "--state", state, "--campaign", "mixed", "--as", "sent"); code != exitOK {
		t.Fatalf("resolve as sent: exit %d\n%s%s", code, out, errs)
	}
	rows := reportRows(t, state)
	resolvedFailed, resolvedSent := 0, 0
	for _, row := range rows {
		switch {
		case row["state"] == "uncertain":
			t.Errorf("still uncertain after resolve: %v", row)
		case strings.HasPrefix(row["error"], "resolved as failed by the operator"):
			resolvedFailed++
		case strings.HasPrefix(row["error"], "resolved as sent by the operator"):
			resolvedSent++
		}
	}
	if resolvedFailed == 0 || resolvedFailed+resolvedSent != uncertain {
		t.Errorf("resolved %d failed and %d sent, want %d in all and some failed", resolvedFailed, resolvedSent, uncertain)
	}
	if code, out, _ = runCLI(t, "status", "--state", state, "--json"); code != exitOK || !strings.Contains(out, `"uncertain":0`) || !strings.Contains(out, `"resolved":`) {
		t.Errorf("status after resolve: exit %d %s", code, out)
	}
	before := 0
	for _, d := range all {
		before += srv.Delivered(d.kind, d.scope, d.to)
	}
	srv.SetFaults(emulator.Faults{})
	if code, out, errs = runCLI(t, send...); code != exitOK {
		t.Fatalf("run after resolve: exit %d, want 0\n%s%s", code, out, errs)
	}
	after := 0
	for _, d := range all {
		after += srv.Delivered(d.kind, d.scope, d.to)
	}
	// the rows a report lists count one delivery each, but the resolved
	// failed ones are all sent, those of the file and no other
	if got := after - before; got != resolvedFailed {
		t.Errorf("the run after resolve sent %d deliveries, want the %d resolved as failed", got, resolvedFailed)
	}
}
