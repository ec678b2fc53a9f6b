package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"imcast/redistest"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCommandsRunWithoutTheCLI runs each command's function from its
// options alone, as a program embedding imcast would: plan, run on the
// in-process emulator, then status and report of the ledger it wrote.
func TestCommandsRunWithoutTheCLI(t *testing.T) {
	ctx := context.Background()
	camp := campaignOptions{Files: []string{"samples/users.csv"}, Quotas: quotaOptions{Scale: 1}}
	var out bytes.Buffer
	if err := plan(ctx, planOpts{Campaign: camp}, &out, io.Discard); err != nil {
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
	if err := status(ctx, statusOpts{State: state}, &out, io.Discard); err != nil {
		t.Fatalf("status: %v", err)
	}
	if !strings.Contains(out.String(), "users") {
		t.Errorf("status names no campaign users:\n%s", out.String())
	}
	out.Reset()
	if err := writeReport(ctx, reportOpts{State: state, Format: "csv", Only: "sent"}, &out, io.Discard); err != nil {
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

// TestCheckAndFakeServerWithoutTheCLI runs check against the in-process
// emulator, and fake-server until its context ends, from options alone.
func TestCheckAndFakeServerWithoutTheCLI(t *testing.T) {
	var out bytes.Buffer
	if err := check(context.Background(), checkOpts{Conn: connOptions{Fake: true}, Quotas: quotaOptions{Scale: 2}}, &out, io.Discard); err != nil {
		t.Fatalf("check: %v", err)
	}
	if !strings.Contains(out.String(), "http://127.0.0.1:") || !strings.Contains(out.String(), "users") {
		t.Errorf("check printed no base URL or quotas:\n%s", out.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- fakeServer(ctx, fakeServerOpts{Addr: "127.0.0.1:0"}, &stderr) }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "listening on"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("fake-server said nothing in 10 s: %q", stderr.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("fake-server after its context ended: %v", err)
	}
}

// TestRunThroughRedis runs a campaign whose quotas are shared through a
// Redis, and refuses to run unshared when the Redis named does not answer.
func TestRunThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	// groups: new windows hold their calls back a second (users: a minute)
	camp := campaignOptions{Files: []string{"samples/groups.jsonl"}, Quotas: quotaOptions{Scale: 1}}
	var out bytes.Buffer
	o := runOpts{Campaign: camp, Conn: connOptions{Fake: true}, State: filepath.Join(t.TempDir(), "l.db"), Workers: 2, Quiet: true, Redis: srv.URL()}
	if err := runCampaign(context.Background(), o, &out, io.Discard); err != nil {
		t.Fatalf("run through %s: %v\n%s", srv.URL(), err, out.String())
	}
	o.State, o.Redis = filepath.Join(t.TempDir(), "l.db"), "redis://127.0.0.1:1"
	err := runCampaign(context.Background(), o, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--redis") || exitCode(err) != exitFatal {
		t.Errorf("run through a Redis that does not answer: %v (exit %d), want a fatal error naming --redis", err, exitCode(err))
	}
}

// TestRedisURLErrorsKeepThePassword gives run malformed Redis URLs with a
// password in them: the error says what is wrong, never the password.
func TestRedisURLErrorsKeepThePassword(t *testing.T) {
	for _, url := range []string{"redis://:Pw%Secret42@127.0.0.1:16380/3", "redis://:Secret42@127.0.0.1:abc/3", "redis:/:Secret42@127.0.0.1:1", "redis://:Pw/Secret42#x@127.0.0.1:1"} {
		o := runOpts{Campaign: campaignOptions{Files: []string{"samples/users.csv"}, Quotas: quotaOptions{Scale: 1}},
			Conn: connOptions{Fake: true}, State: filepath.Join(t.TempDir(), "l.db"), Quiet: true, Redis: url}
		err := runCampaign(context.Background(), o, io.Discard, io.Discard)
		if err == nil || strings.Contains(err.Error(), "Secret42") {
			t.Errorf("run --redis %s: %v, want an error without the password", url, err)
		}
	}
}

// TestAppOfIgnoresTheHostName checks that one app reached by two names of
// its host shares one set of windows, and two apps do not.
func TestAppOfIgnoresTheHostName(t *testing.T) {
	a, b := appOf("http://127.0.0.1:8765/o/a"), appOf("http://localhost:8765/o/a/")
	if a != b || a == appOf("http://127.0.0.1:8765/o/other") || appOf("https://x/app-id/123") != "/app-id/123" {
		t.Errorf("appOf: %q and %q for one app; %q for another", a, b, appOf("http://127.0.0.1:8765/o/other"))
	}
}
