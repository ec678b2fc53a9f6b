package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imcast/checkpoint"
	"imcast/emulator"
	"imcast/report"
)

// TestReadCommandsNeedALedger runs status and report on a --state that
// names no file: exit 1 naming it, and no ledger is created there.
func TestReadCommandsNeedALedger(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo.db")
	for _, cmd := range []string{"status", "report"} {
		var out, errs bytes.Buffer
		code := run(context.Background(), []string{"imcast", cmd, "--state", missing}, &out, &errs)
		if code != exitFatal || !strings.Contains(errs.String(), missing) || !strings.Contains(errs.String(), "no ledger") {
			t.Errorf("%s on a missing ledger: exit %d, %q; want 1 naming the file", cmd, code, errs.String())
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatalf("%s created %s (%v)", cmd, missing, err)
		}
	}
}

// TestLockedLedgerNamesItsHolder has status and report read a ledger a
// run holds: they fail (exit 1) saying it is in use, by which process and
// since when.
func TestLockedLedgerNamesItsHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	store, err := checkpoint.Open(path, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, cmd := range []string{"status", "report"} {
		var out, errs bytes.Buffer
		code := run(context.Background(), []string{"imcast", cmd, "--state", path}, &out, &errs)
		if code != exitFatal || !strings.Contains(errs.String(), "in use") || !strings.Contains(errs.String(), fmt.Sprintf("pid %d", os.Getpid())) || !strings.Contains(errs.String(), "since") {
			t.Errorf("%s on a held ledger: exit %d, %q; want 1 naming the holder's pid and since when", cmd, code, errs.String())
		}
	}
}

// TestStatusShowsARunningRun runs status while a run (another process)
// holds the ledger: it names the run and prints the counts the run shares
// beside the ledger, kind by kind, as a table and as JSON; report says to
// use status; once the run is over, its shared counts are gone.
func TestStatusShowsARunningRun(t *testing.T) {
	dir := t.TempDir()
	var rows strings.Builder
	for i := range 600 {
		fmt.Fprintf(&rows, `{"kind":"groups","to":"g%04d","msg":"hi"}`+"\n", i)
	}
	campaign, state := filepath.Join(dir, "c.jsonl"), filepath.Join(dir, "l.db")
	if err := os.WriteFile(campaign, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startFake(t, emulator.Config{QuotaScale: 5, Faults: emulator.Faults{Latency: 10 * time.Millisecond}})
	cmd := startRun(t, srv, state, campaign)
	for deadline := time.Now().Add(time.Minute); srv.Stats().Delivered < 30; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the run delivered nothing in a minute")
		}
	}
	code, stdout, stderr := runCLI(t, "status", "--state", state)
	pid := fmt.Sprintf("pid %d", cmd.Process.Pid)
	if code != exitOK || !strings.Contains(stdout, "in use") || !strings.Contains(stdout, pid) || !strings.Contains(stdout, "groups") || !strings.Contains(stdout, "600") {
		t.Errorf("status during the run: exit %d, want 0 naming %s and the run's groups counts\n%s%s", code, pid, stdout, stderr)
	}
	// the run shares its counts every second: wait for some sent
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		code, stdout, _ = runCLI(t, "status", "--state", state, "--json")
		var live struct{ Live report.Live }
		err := json.Unmarshal([]byte(stdout), &live)
		if code != exitOK || err != nil || len(live.Live.Kinds) != 1 || live.Live.Kinds[0].ToSend != 600 || live.Live.PID != cmd.Process.Pid {
			t.Fatalf("status --json during the run: exit %d %v, %q", code, err, stdout)
		}
		if k := live.Live.Kinds[0]; k.Sent > 0 && k.Left == k.ToSend-k.Sent-k.Failed-k.Uncertain {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run's shared counts never showed a delivery sent: %s", stdout)
		}
	}
	if code, _, stderr := runCLI(t, "report", "--state", state); code != exitFatal || !strings.Contains(stderr, "imcast status --state") {
		t.Errorf("report during the run: exit %d %q, want 1 pointing to status", code, stderr)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, cmd.Stdout)
	}
	if _, err := os.Stat(report.LivePath(state)); !os.IsNotExist(err) {
		t.Errorf("the run's shared counts outlived it: %v", err)
	}
	if code, stdout, _ := runCLI(t, "status", "--state", state); code != exitOK || !strings.Contains(stdout, "600") || strings.Contains(stdout, "in use") {
		t.Errorf("status after the run: exit %d\n%s", code, stdout)
	}
}

// TestReportOfAnUnknownCampaign: report --campaign naming a campaign the
// ledger does not hold is an error naming those it holds, not an empty
// report.
func TestReportOfAnUnknownCampaign(t *testing.T) {
	state := filepath.Join(t.TempDir(), "l.db")
	if code, _, errs := runCLI(t, "run", "--fake", "--state", state, "--quiet", "samples/mixed.jsonl"); code != exitOK {
		t.Fatalf("run: exit %d %s", code, errs)
	}
	code, _, errs := runCLI(t, "report", "--state", state, "--campaign", "nope")
	if code != exitFatal || !strings.Contains(errs, `no campaign "nope"`) || !strings.Contains(errs, "mixed") {
		t.Errorf("report --campaign nope: exit %d %q, want 1 naming the campaigns held", code, errs)
	}
	// recall and resolve need a campaign, and say which the ledger holds
	for _, args := range [][]string{{"recall", "--fake"}, {"resolve", "--as", "sent"}, {"recall", "--fake", "--campaign", "nope"}} {
		code, stdout, errs := runCLI(t, append(args, "--state", state)...)
		if code != exitFatal || !strings.Contains(errs, "mixed") || strings.Contains(errs, "host") {
			t.Errorf("%s: exit %d %q; want 1 naming the campaign the ledger holds, before any word to the host\n%s", strings.Join(args, " "), code, errs, stdout)
		}
	}
}

// TestRefusedRunLeavesNoLedger: a run refused before it began (a mistyped
// file, an invalid campaign) leaves no empty ledger behind, while a
// ledger that was there before, or that a run recorded in, stays.
func TestRefusedRunLeavesNoLedger(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "l.db")
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"kind":"nope","to":"u1","msg":"hi"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		code int
	}{{filepath.Join(dir, "typo.csv"), exitInvalid}, {bad, exitInvalid}} {
		code, _, stderr := runCLI(t, "run", "--fake", "--state", state, "--quiet", c.file)
		if _, err := os.Stat(state); code != c.code || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("run %s: exit %d (want %d), the ledger: %v; want none left behind\n%s", filepath.Base(c.file), code, c.code, err, stderr)
		}
	}
	if code, _, stderr := runCLI(t, "run", "--fake", "--state", state, "--quiet", "samples/mixed.jsonl"); code != exitOK {
		t.Fatalf("run samples/mixed.jsonl: exit %d\n%s", code, stderr)
	}
	if code, _, _ := runCLI(t, "run", "--fake", "--state", state, "--quiet", bad); code != exitInvalid {
		t.Fatalf("run bad.jsonl: exit %d, want 2", code)
	}
	if code, out, _ := runCLI(t, "status", "--state", state); code != exitOK || !strings.Contains(out, "mixed") {
		t.Errorf("the ledger a run had recorded in, after a refused run: status exit %d\n%s", code, out)
	}
}
