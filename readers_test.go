package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imcast/checkpoint"
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
