package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFlagsAfterTheFiles runs commands with their flags after the files,
// as crontab lines are often written: the flags are flags, a flag's value
// goes with it, and after `--` everything is a file.
func TestFlagsAfterTheFiles(t *testing.T) {
	dir := t.TempDir()
	ids := filepath.Join(dir, "ids.csv")
	msg := filepath.Join(dir, "welcome.json")
	if err := os.WriteFile(ids, []byte("to\nu1\nu2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(msg, []byte(`{"type":"txt","body":{"msg":"hi"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "l.db")
	for _, args := range [][]string{
		{"plan", ids, "--message", msg},
		{"plan", ids, "--message=" + msg, "--json"},
		{"run", "--fake", ids, "--message", msg, "--state", state, "--quiet"},
	} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), append([]string{"imcast"}, args...), &out, &errs); code != exitOK {
			t.Errorf("imcast %s: exit %d, want 0\n%s%s", strings.Join(args, " "), code, out.String(), errs.String())
		}
	}
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"imcast", "plan", "--", "--message", msg}, &out, &errs); code != exitInvalid || !strings.Contains(errs.String(), "--message: no such file") {
		t.Errorf("after --, --message is a file: exit %d, want 2 naming it\n%s", code, errs.String())
	}
	app := newApp(&out, &errs)
	got, err := flagsFirst(app, []string{"imcast", "run", "a.csv", "--workers", "3", "b.csv", "--quiet", "--", "-c.csv"})
	want := []string{"imcast", "run", "--workers", "3", "--quiet", "--", "a.csv", "b.csv", "-c.csv"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("flagsFirst: %q %v, want %q", got, err, want)
	}
	// a value flag last with no value is refused, not given the "--" the
	// files follow (a ledger or a campaign named "--": all sent again)
	for _, last := range []string{"--state", "--campaign", "--message"} {
		errs.Reset()
		code := run(context.Background(), []string{"imcast", "run", "--fake", ids, last}, &out, &errs)
		if code != exitFatal || !strings.Contains(errs.String(), "flag "+last+" needs a value") {
			t.Errorf("imcast run ids.csv %s: exit %d, %q; want 1, the flag needs a value", last, code, errs.String())
		}
		if _, err := os.Stat("--"); err == nil {
			t.Fatalf("imcast run ids.csv %s made a file named --", last)
		}
	}
	// a value flag followed by another flag or a dash does not take it as
	// its value, and an empty value is no value (--window= ran with no
	// window at all); a negative number is a value, refused by its flag
	for _, bad := range [][]string{
		{"--state", "--quiet"}, {"--state", "--"}, {"--state", "-"}, {"--campaign", "--"},
		{"--window="}, {"--campaign="}, {"--state", ""}, {"--timezone="},
	} {
		errs.Reset()
		args := append([]string{"imcast", "run", "--fake", ids}, bad...)
		code := run(context.Background(), args, &out, &errs)
		if code != exitFatal || !strings.Contains(errs.String(), "flag "+strings.TrimSuffix(bad[0], "=")+" needs a value") {
			t.Errorf("imcast run ids.csv %q: exit %d, %q; want 1, the flag needs a value", bad, code, errs.String())
		}
		for _, name := range []string{"--quiet", "--", "-"} {
			if _, err := os.Stat(name); err == nil {
				t.Fatalf("imcast run ids.csv %q made a file named %s", bad, name)
			}
		}
	}
	got, err = flagsFirst(app, []string{"imcast", "run", "a.csv", "--workers", "-3", "--state=-x"})
	want = []string{"imcast", "run", "--workers", "-3", "--state=-x", "--", "a.csv"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("flagsFirst with dash values: %q %v, want %q", got, err, want)
	}
	// counts are decimal: Go's flag package reads 010 as 8, 0x10 as 16
	got, err = flagsFirst(app, []string{"imcast", "run", "a.csv", "--canary", "010", "--workers=08"})
	want = []string{"imcast", "run", "--canary", "10", "--workers=8", "--", "a.csv"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("flagsFirst with leading zeros: %q %v, want %q", got, err, want)
	}
	for _, n := range []string{"0x10", "0b11", "1_0", "0o7", "1e3"} {
		if _, err := flagsFirst(app, []string{"imcast", "run", "a.csv", "--canary", n}); err == nil || !strings.Contains(err.Error(), "want a whole number") {
			t.Errorf("--canary %s: %v, want refused as not a whole number", n, err)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"imcast", "run", ids, "--message", msg, "--help"}, &out, &errs); code != exitOK || !strings.Contains(out.String(), "--canary") {
		t.Errorf("--help after the files: exit %d, want the run command's help\n%s", code, out.String())
	}
}

// TestVersionAndWorkers checks imcast --version, and that --workers out
// of 1 to 256 is refused before anything is read or sent.
func TestVersionAndWorkers(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"imcast", "--version"}, &out, &errs); code != exitOK || !strings.HasPrefix(out.String(), "imcast version ") {
		t.Errorf("--version: exit %d, %q", code, out.String())
	}
	for _, n := range []string{"0", "-3", "1000"} {
		out.Reset()
		errs.Reset()
		code := run(context.Background(), []string{"imcast", "run", "--fake", "--state", filepath.Join(t.TempDir(), "l.db"), "--workers", n, "samples/mixed.jsonl"}, &out, &errs)
		if code != exitFatal || !strings.Contains(errs.String(), "--workers "+n+": want 1 to 256") {
			t.Errorf("--workers %s: exit %d, %q; want 1 naming the flag", n, code, errs.String())
		}
	}
}

// TestStrayWordsAndBadFlags: a command that takes no files refuses words
// after it (recall --force false would recall past the window, the
// "false" dropped), and a flag it cannot parse is one line naming the
// flag as written, not the command's whole help.
func TestStrayWordsAndBadFlags(t *testing.T) {
	state := filepath.Join(t.TempDir(), "l.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"recall", "--fake", "--state", state, "--campaign", "c", "--force", "false"}, `given ["false"]`},
		{[]string{"status", "--state", state, "extra.csv"}, `given ["extra.csv"]`},
		{[]string{"status", "--nope"}, "not defined: --nope"},
		{[]string{"run", "--max-failure-rate", "abc", "x.csv"}, "flag --max-failure-rate"},
		{[]string{"run", "--fake", "--stall-timeout", "0", "x.csv"}, "--stall-timeout 0s: want 1s or more"},
		{[]string{"run", "--fake", "--stall-timeout=-5s", "x.csv"}, "--stall-timeout -5s"},
		{[]string{"resolve", "--state", state, "--campaign", "c", "x.csv"}, "--as sent (they arrived) or --as failed"},
		{[]string{"recall", "--state", state, "--campaign", "c", "--quota-scale", "Inf"}, "--quota-scale +Inf: want a positive number"},
		{[]string{"run", "--fake", "--state", state, "--quota-scale", "Inf", "x.csv"}, "quota scale +Inf"},
	} {
		code, stdout, stderr := runCLI(t, c.args...)
		if code != exitFatal || !strings.Contains(stderr, c.want) || strings.Contains(stdout+stderr, "USAGE:") {
			t.Errorf("imcast %s: exit %d; want 1 saying %q in one line\n%s%s", strings.Join(c.args, " "), code, c.want, stdout, stderr)
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Error("a refused command made a ledger")
	}
	t.Setenv("IMCAST_STATE", "")
	for _, cmd := range []string{"status", "report"} {
		if code, _, stderr := runCLI(t, cmd); code != exitFatal || !strings.Contains(stderr, "IMCAST_STATE) is empty") {
			t.Errorf("IMCAST_STATE= imcast %s: exit %d %q; want 1 saying the ledger is not named", cmd, code, stderr)
		}
	}
}
