package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imcast/emulator"
	"imcast/report"
)

// writeCampaign writes a JSON Lines campaign of n recipients of each kind
// given, and returns its path.
func writeCampaign(t *testing.T, dir string, n map[string]int) string {
	t.Helper()
	var rows strings.Builder
	for _, kind := range []string{"users", "groups", "rooms"} {
		for i := range n[kind] {
			fmt.Fprintf(&rows, `{"kind":%q,"to":"%s%05d","msg":"hi"}`+"\n", kind, kind[:1], i)
		}
	}
	path := filepath.Join(dir, "c.jsonl")
	if err := os.WriteFile(path, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// guardRun runs the CLI's run against srv with the ledger state and the
// extra flags, and returns its exit code and output.
func guardRun(t *testing.T, srv *emulator.Running, state, campaign string, extra ...string) (int, string) {
	t.Helper()
	t.Setenv("EASEMOB_TOKEN", "test-token")
	args := append([]string{"run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--quota-scale", "20", "--quiet"}, extra...)
	code, stdout, stderr := runCLI(t, append(args, campaign)...)
	return code, stdout + stderr
}

// TestCanarySendsExactlyN: --canary N sends exactly N deliveries, the
// first in plan order, cutting a batch to fit, and stops with exit 4
// saying how many are left; the next run without it sends the rest, none
// twice.
func TestCanarySendsExactlyN(t *testing.T) {
	dir := t.TempDir()
	campaign := writeCampaign(t, dir, map[string]int{"users": 700, "groups": 30})
	state := filepath.Join(dir, "l.db")
	srv := startFake(t, emulator.Config{QuotaScale: 20})
	for _, c := range []struct{ canary, total int }{{25, 25}, {690, 715}} {
		code, out := guardRun(t, srv, state, campaign, "--canary", fmt.Sprint(c.canary))
		st := srv.Stats()
		if code != exitStopped || st.Delivered != c.total || !strings.Contains(out, fmt.Sprintf("%d left", 730-c.total)) {
			t.Fatalf("--canary %d: exit %d, %d delivered in all; want 4, %d, saying %d left\n%s", c.canary, code, st.Delivered, c.total, 730-c.total, out)
		}
		if st.Kinds["users"].Delivered != min(c.total, 700) {
			t.Errorf("--canary %d: %d users delivered, want the first in plan order (users)", c.canary, st.Kinds["users"].Delivered)
		}
	}
	code, out := guardRun(t, srv, state, campaign)
	if st := srv.Stats(); code != exitOK || st.Delivered != 730 || st.Duplicates != 0 {
		t.Fatalf("the run after the canaries: exit %d, %d delivered, %d duplicates; want 0, 730, 0\n%s", code, st.Delivered, st.Duplicates, out)
	}
	if code, out := guardRun(t, srv, state, campaign, "--canary", "5"); code != exitOK || srv.Stats().Delivered != 730 {
		t.Errorf("a canary of a campaign all sent: exit %d, want 0 and nothing sent\n%s", code, out)
	}
}

// TestBreakerStopsAFailingRun: with 40 % of calls answered 500 after
// delivering (uncertain), the run stops after far fewer calls than the
// campaign has, exit 1 with the share and the last error; a rerun against
// a healed server sends the rest, none twice.
func TestBreakerStopsAFailingRun(t *testing.T) {
	dir := t.TempDir()
	campaign := writeCampaign(t, dir, map[string]int{"rooms": 3000})
	state := filepath.Join(dir, "l.db")
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{ErrorAfter: 0.4}, Seed: 7})
	code, out := guardRun(t, srv, state, campaign, "--max-failure-rate", "0.2")
	st := srv.Stats()
	if code != exitFatal || !strings.Contains(out, "of the last 200 deliveries") || !strings.Contains(out, "status 500") {
		t.Fatalf("exit %d, want 1 naming the share and the last error\n%s", code, out)
	}
	if st.Calls > 100 {
		t.Errorf("the breaker let %d of the campaign's 300 calls go", st.Calls)
	}
	t.Logf("stopped after %d calls: %s", st.Calls, out)
	srv.SetFaults(emulator.Faults{})
	code, out = guardRun(t, srv, state, campaign)
	st = srv.Stats()
	if code != exitIncomplete || st.Delivered != 3000 || st.Duplicates != 0 {
		t.Errorf("the rerun: exit %d, %d delivered, %d duplicates; want 3 (the uncertain held), 3000, 0\n%s", code, st.Delivered, st.Duplicates, out)
	}
}

// TestBreakerIgnoresRefusals: refusals sent again are no outcome, so a
// run refused half the time finishes.
func TestBreakerIgnoresRefusals(t *testing.T) {
	dir := t.TempDir()
	campaign := writeCampaign(t, dir, map[string]int{"rooms": 1000})
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{TooManyRequests: 0.5, RetryAfter: time.Millisecond}, Seed: 7})
	if code, out := guardRun(t, srv, filepath.Join(dir, "l.db"), campaign); code != exitOK {
		t.Errorf("refused half the time: exit %d, want 0\n%s", code, out)
	}
}

// TestSendWindow: a window that opens a moment after the run starts and
// stays open 3 s: the run waits for it, saying until when, sends its first
// call after it opened and none after it closed, and exits 4; the next
// run outside any window sends the rest, none twice.
func TestSendWindow(t *testing.T) {
	dir := t.TempDir()
	campaign := writeCampaign(t, dir, map[string]int{"groups": 300}) // 15 s at the quota
	state := filepath.Join(dir, "l.db")
	srv := startFake(t, emulator.Config{})
	now := time.Now().UTC()
	open := now.Truncate(time.Second).Add(2 * time.Second)
	shut := open.Add(3 * time.Second)
	window := open.Format("15:04:05") + "-" + shut.Format("15:04:05")
	t.Setenv("EASEMOB_TOKEN", "test-token")
	code, stdout, stderr := runCLI(t, "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--window", window, "--timezone", "UTC", campaign)
	st := srv.Stats()
	g := st.Kinds["groups"]
	if code != exitStopped || !strings.Contains(stderr, "waiting until") || !strings.Contains(stderr+stdout, "closed at") {
		t.Fatalf("window %s: exit %d, want 4, waiting first and saying it closed\n%s%s", window, code, stdout, stderr)
	}
	if g.First.Before(open) || !g.Last.Before(shut) || g.Delivered == 0 || g.Delivered >= 300 {
		t.Errorf("window [%v, %v): calls from %v to %v, %d delivered; want all inside, some sent, not all", open, shut, g.First, g.Last, g.Delivered)
	}
	if code, out := guardRun(t, srv, state, campaign); code != exitOK || srv.Stats().Delivered != 300 || srv.Stats().Duplicates != 0 {
		t.Errorf("the rerun: exit %d, %d delivered, %d duplicates\n%s", code, srv.Stats().Delivered, srv.Stats().Duplicates, out)
	}
}

// TestBreakerCountsDeliveriesGivenUp: refusals sent again do not count,
// but deliveries given up on after them failed: a server refusing every
// call stops the run long before the campaign is spent.
func TestBreakerCountsDeliveriesGivenUp(t *testing.T) {
	dir := t.TempDir()
	campaign := writeCampaign(t, dir, map[string]int{"rooms": 3000})
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{TooManyRequests: 1, RetryAfter: time.Millisecond}})
	state := filepath.Join(dir, "l.db")
	code, out := guardRun(t, srv, state, campaign)
	_, status, _ := runCLI(t, "status", "--state", state, "--json")
	var st report.CampaignStatus
	if err := json.Unmarshal([]byte(status), &st); err != nil || code != exitFatal || !strings.Contains(out, "gave up after") || st.Failed > 1000 || st.Pending < 2000 {
		t.Errorf("every call refused: exit %d, %d failed and %d pending; want 1 naming the give-ups, most of the 3000 left to send\n%s", code, st.Failed, st.Pending, out)
	}
}

// TestEndlessRefusalsStop: a server that answers every call 403 "message
// send reach limit" (the quota used up, or taken by another job) is
// answering, but the run makes no progress: it stops after the stall
// timeout with exit 1 naming the refusal, sends nothing and holds nothing
// uncertain, and a rerun once the quota is back sends all, none twice. A
// campaign too small for the breaker's 200 deliveries waited out ten
// backoffs per batch before.
func TestEndlessRefusalsStop(t *testing.T) {
	dir := t.TempDir()
	campaign := writeCampaign(t, dir, map[string]int{"groups": 30})
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{QuotaForbidden: 1}})
	state := filepath.Join(dir, "l.db")
	code, out := guardRun(t, srv, state, campaign, "--stall-timeout", "2s")
	_, status, _ := runCLI(t, "status", "--state", state, "--json")
	var st report.CampaignStatus
	if err := json.Unmarshal([]byte(status), &st); err != nil || code != exitFatal || !strings.Contains(out, "every call was refused") || !strings.Contains(out, "reach limit") || st.Sent != 0 || st.Uncertain != 0 {
		t.Fatalf("every call refused 403: exit %d, %d sent and %d uncertain; want 1 naming the refusal, none sent or uncertain\n%s", code, st.Sent, st.Uncertain, out)
	}
	if srv.Stats().Delivered != 0 {
		t.Fatalf("a refusing server delivered %d", srv.Stats().Delivered)
	}
	srv.SetFaults(emulator.Faults{})
	if code, out := guardRun(t, srv, state, campaign); code != exitOK || srv.Stats().Delivered != 30 || srv.Stats().Duplicates != 0 {
		t.Errorf("the rerun with the quota back: exit %d, %d delivered, %d duplicates; want 0, 30, 0\n%s", code, srv.Stats().Delivered, srv.Stats().Duplicates, out)
	}
}

// TestShortSendWindow: a window of one second still sends what fits in
// it (a call booked past the close stops its endpoint, not the calls
// booked before it).
func TestShortSendWindow(t *testing.T) {
	dir := t.TempDir()
	campaign := writeCampaign(t, dir, map[string]int{"users": 1000})
	srv := startFake(t, emulator.Config{})
	open := time.Now().UTC().Truncate(time.Second).Add(2 * time.Second)
	window := open.Format("15:04:05") + "-" + open.Add(time.Second).Format("15:04:05")
	t.Setenv("EASEMOB_TOKEN", "test-token")
	code, stdout, stderr := runCLI(t, "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "l.db"), "--window", window, "--timezone", "UTC", "--json", campaign)
	if st := srv.Stats(); code != exitStopped || st.Delivered == 0 || !st.Kinds["users"].Last.Before(open.Add(time.Second)) {
		t.Errorf("window %s: exit %d, %d delivered, the last call at %v; want 4, some sent inside\n%s%s", window, code, st.Delivered, st.Kinds["users"].Last, stdout, stderr)
	}
	// the wait is a "pause" event saying why and until when
	var paused bool
	for _, line := range strings.Split(stdout+stderr, "\n") {
		var e struct{ Event, Reason, Until string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Event == "pause" {
			until, err := time.Parse(time.RFC3339, e.Until)
			paused = err == nil && until.Equal(open) && strings.Contains(e.Reason, "send window")
		}
	}
	if !paused {
		t.Errorf("--json run waiting for its window: no pause event naming the window, until %v\n%s%s", open, stdout, stderr)
	}
}
