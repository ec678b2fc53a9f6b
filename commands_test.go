package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandsRunWithoutTheCLI runs each command's function from its
// options alone, as a program embedding imcast would: plan, run on the
// in-process emulator, then status and report of the ledger it wrote.
func TestCommandsRunWithoutTheCLI(t *testing.T) {
	ctx := context.Background()
	camp := campaignOptions{Files: []string{"samples/users.csv"}, Quotas: quotaOptions{Scale: 1}}
	var out bytes.Buffer
	if err := plan(ctx, planOpts{Campaign: camp}, &out); err != nil {
		t.Fatalf("plan: %v", err)
	}
	if !strings.Contains(out.String(), "total") {
		t.Errorf("plan printed no total:\n%s", out.String())
	}
	state := filepath.Join(t.TempDir(), "ledger.db")
	out.Reset()
	var progress bytes.Buffer
	err := runCampaign(ctx, runOpts{Campaign: camp, Conn: connOptions{Fake: true}, State: state, Workers: 2, Quiet: true}, &out, &progress)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "every delivery is sent") {
		t.Errorf("run summary:\n%s", out.String())
	}
	out.Reset()
	if err := status(statusOpts{State: state}, &out); err != nil {
		t.Fatalf("status: %v", err)
	}
	if !strings.Contains(out.String(), "users") {
		t.Errorf("status names no campaign users:\n%s", out.String())
	}
	out.Reset()
	if err := writeReport(reportOpts{State: state, Format: "csv", Only: "sent"}, &out); err != nil {
		t.Fatalf("report: %v", err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := csv.NewReader(strings.NewReader(mustRead(t, "samples/users.csv"))).ReadAll(); err != nil || len(rows) != len(plain) {
		t.Errorf("report: %d rows, want one per row of the campaign and a header (%d) (%v)", len(rows), len(plain), err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
