package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"imcast/checkpoint"
	"imcast/emulator"
	"imcast/report"
)

// recallCampaign writes a campaign of every kind, n users among them, with
// messages recall can and cannot withdraw (cmd, legacy), and returns its
// path and how many distinct message IDs the emulator will give out for
// what can be recalled, and for the cmd messages.
func recallCampaign(t testing.TB, dir string, users int) (path string, ids int) {
	t.Helper()
	var rows strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&rows, format+"\n", args...) }
	for i := range users {
		line(`{"kind":"users","to":"u%06d","msg":"hi"}`, i)
	}
	ids = users
	for i := range 30 {
		line(`{"kind":"groups","to":"g%03d","msg":"hi"}`, i)
		line(`{"kind":"rooms","to":"r%03d","msg":"hi"}`, i)
		line(`{"kind":"group_members","scope":"G%d","to":"m%03d","msg":"hi"}`, i%3, i) // one ID a group
		line(`{"kind":"room_members","scope":"R%d","to":"m%03d","msg":"hi"}`, i%2, i)
	}
	ids += 30 + 30 + 3 + 2
	for i := range 5 {
		line(`{"kind":"legacy_users","to":"l%d","msg":"hi"}`, i)
		line(`{"kind":"users","to":"c%d","type":"cmd","body":{"action":"a"}}`, i)
	}
	path = filepath.Join(dir, "spring.jsonl")
	if err := os.WriteFile(path, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, ids
}

// sendRecallCampaign sends recallCampaign's campaign of users (and every
// other kind) to an emulator of cfg, and returns it, the ledger and the
// count of message IDs to recall.
func sendRecallCampaign(t *testing.T, users int, cfg emulator.Config) (srv *emulator.Running, state string, ids int) {
	t.Helper()
	dir := t.TempDir()
	campaign, ids := recallCampaign(t, dir, users)
	state = filepath.Join(dir, "l.db")
	srv = startFake(t, cfg)
	if code, out := guardRun(t, srv, state, campaign); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	return srv, state, ids
}

// recallCLI runs imcast recall of campaign spring against srv.
func recallCLI(t *testing.T, srv *emulator.Running, state string, extra ...string) (int, string) {
	t.Helper()
	t.Setenv("EASEMOB_TOKEN", "test-token")
	args := append([]string{"recall", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--campaign", "spring", "--quota-scale", "20", "--quiet"}, extra...)
	code, stdout, stderr := runCLI(t, args...)
	return code, stdout + stderr
}

// TestRecallWithdrawsACampaign sends a campaign of every kind and recalls
// it: every message ID the server gave for what can be recalled is
// recalled once, the cmd and legacy deliveries are not (with the reason),
// exit 3; a second recall makes no call; status and report show the
// recall states.
func TestRecallWithdrawsACampaign(t *testing.T) {
	srv, state, ids := sendRecallCampaign(t, 700, emulator.Config{QuotaScale: 20})
	code, out := recallCLI(t, srv, state)
	st := srv.Stats()
	if code != exitIncomplete || st.Recalled != ids || st.RecallRepeats != 0 {
		t.Fatalf("recall: exit %d, %d recalled (%d repeats); want 3, %d, 0\n%s", code, st.Recalled, st.RecallRepeats, ids, out)
	}
	for _, want := range []string{"5: cmd messages cannot be recalled", "5: no message ID"} {
		if !strings.Contains(out, want) {
			t.Errorf("the recall summary does not say %q:\n%s", want, out)
		}
	}
	calls := st.Kinds[emulator.KindBatchRecall].Calls
	if code, out := recallCLI(t, srv, state); code != exitIncomplete || srv.Stats().Kinds[emulator.KindBatchRecall].Calls != calls {
		t.Errorf("a second recall: exit %d, %d calls more; want 3 and none\n%s", code, srv.Stats().Kinds[emulator.KindBatchRecall].Calls-calls, out)
	}
	_, status, _ := runCLI(t, "status", "--state", state, "--json")
	if !strings.Contains(status, `"recalled":820`) || !strings.Contains(status, `"not_recalled":10`) {
		t.Errorf("status --json after the recall: %s", status)
	}
	_, rows, _ := runCLI(t, "report", "--state", state)
	if !strings.Contains(rows, ",recalled,") || !strings.Contains(rows, "not recalled: cmd messages cannot be recalled") || !strings.Contains(rows, "not recalled: no message ID") {
		t.Errorf("report shows no recall states:\n%.600s", rows)
	}
}

// TestRecallWindowAndForce: messages sent longer ago than the app's
// recall window are not recalled, with the server's reason; --force
// recalls them.
func TestRecallWindowAndForce(t *testing.T) {
	srv, state, ids := sendRecallCampaign(t, 50, emulator.Config{QuotaScale: 20, RecallWindow: time.Nanosecond})
	if code, out := recallCLI(t, srv, state); code != exitIncomplete || srv.Stats().Recalled != 0 || !strings.Contains(out, "exceed recall time limit") || !strings.Contains(out, "recall --force") {
		t.Fatalf("recall past the window: exit %d, %d recalled; want none, saying why\n%s", code, srv.Stats().Recalled, out)
	}
	if code, out := recallCLI(t, srv, state, "--force", "--only", "users,groups"); code != exitIncomplete || srv.Stats().Recalled != 50+30 {
		t.Errorf("recall --force --only users,groups: exit %d, %d recalled; want %d\n%s", code, srv.Stats().Recalled, 80, out)
	}
	if code, out := recallCLI(t, srv, state, "--force"); code != exitIncomplete || srv.Stats().Recalled != ids || srv.Stats().RecallRepeats != 0 {
		t.Errorf("recall --force: exit %d, %d recalled (%d repeats); want %d, 0\n%s", code, srv.Stats().Recalled, srv.Stats().RecallRepeats, ids, out)
	}
}

// TestRecallUnderFaults recalls through every fault of the emulator, seed
// after seed: every message recalled at the server is recalled in the
// ledger and the other way round, none is left, and the server refused
// no call for its quota. Odd seeds have the server refuse a whole batch
// for one message it cannot recall (one recalled already, after a call
// whose answer was lost), so those batches are asked again one by one.
func TestRecallUnderFaults(t *testing.T) {
	for seed := range int64(8) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			srv, state, ids := sendRecallCampaign(t, 200, emulator.Config{QuotaScale: 20, Seed: seed, RecallRefusesWhole: seed%2 == 1})
			srv.SetFaults(emulator.Faults{TooManyRequests: 0.05, Unavailable: 0.05, ErrorBefore: 0.05, ErrorAfter: 0.1, ResetAfter: 0.05,
				Partial: 0.1, NoContent: 0.05, Created: 0.05, RetryAfter: time.Millisecond})
			for range 5 {
				if code, _ := recallCLI(t, srv, state); code == exitIncomplete && srv.Stats().Recalled == ids {
					break
				}
			}
			st := srv.Stats()
			if st.Recalled != ids {
				t.Fatalf("%d of %d recalled at the server", st.Recalled, ids)
			}
			ledgerAgrees(t, state, ids)
		})
	}
}

// ledgerAgrees checks the ledger marks exactly want message IDs recalled.
func ledgerAgrees(t *testing.T, state string, want int) {
	t.Helper()
	store, err := checkpoint.Open(state, checkpoint.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	marks, err := store.Campaign("spring").Recalls()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range marks {
		if m.State == checkpoint.Recalled {
			n++
		}
	}
	if n != want {
		t.Errorf("the ledger marks %d message IDs recalled, the server recalled %d", n, want)
	}
}

// TestRecallKilledAndResumed kills a recall (SIGKILL, another process)
// mid-way and runs it again: every message recalled once at the server,
// the ledger agreeing, and a third recall makes no call.
func TestRecallKilledAndResumed(t *testing.T) {
	srv, state, ids := sendRecallCampaign(t, 20000, emulator.Config{QuotaScale: 20, RecallQuotaScale: 1, Faults: emulator.Faults{Latency: 5 * time.Millisecond}})
	for _, at := range []int{1000, 8000} {
		cmd := startRecall(t, srv, state)
		for deadline := time.Now().Add(time.Minute); srv.Stats().Recalled < at; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d recalled in a minute", at)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		t.Logf("killed at %d recalled", srv.Stats().Recalled)
	}
	cmd := startRecall(t, srv, state)
	if err := cmd.Wait(); exitCodeOf(err) != exitIncomplete {
		t.Fatalf("the recall after the kills: %v\n%s", err, cmd.Stdout)
	}
	st := srv.Stats()
	if st.Recalled != ids {
		t.Errorf("%d of %d recalled at the server", st.Recalled, ids)
	}
	ledgerAgrees(t, state, ids)
	t.Logf("%d recalls asked again for messages recalled before the kills", st.RecallRepeats)
	calls := st.Kinds[emulator.KindBatchRecall].Calls
	if code, _ := recallCLI(t, srv, state); code != exitIncomplete || srv.Stats().Kinds[emulator.KindBatchRecall].Calls != calls {
		t.Errorf("a recall after all were recalled made %d calls", srv.Stats().Kinds[emulator.KindBatchRecall].Calls-calls)
	}
}

// startRecall starts the binary's recall of campaign spring against srv,
// at the default recall quota.
func startRecall(t *testing.T, srv *emulator.Running, state string) *exec.Cmd {
	t.Helper()
	return startBinary(t, "recall", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--campaign", "spring", "--quiet")
}

// TestRecallSaysWhatMayHaveArrived: deliveries left uncertain may have
// arrived and have no message ID: a recall that withdrew every sent one
// still exits 3, naming them.
func TestRecallSaysWhatMayHaveArrived(t *testing.T) {
	dir := t.TempDir()
	campaign := filepath.Join(dir, "spring.jsonl")
	if err := os.Rename(writeCampaign(t, dir, map[string]int{"rooms": 300}), campaign); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "l.db")
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{ErrorAfter: 0.3}, Seed: 3})
	if code, out := guardRun(t, srv, state, campaign, "--max-failure-rate", "1"); code != exitIncomplete {
		t.Fatalf("run: exit %d, want 3\n%s", code, out)
	}
	srv.SetFaults(emulator.Faults{})
	code, out := recallCLI(t, srv, state)
	if code != exitIncomplete || !strings.Contains(out, "uncertain: they may have arrived") {
		t.Errorf("recall with uncertain deliveries: exit %d, want 3 naming them\n%s", code, out)
	}
}

// TestRecallRefusedWholeStopsAndLeavesNoneBehind: a recall call refused
// as a whole (404: a wrong app) stops the recall (exit 1) without
// recording its messages as not recalled; the next recall, once the host
// answers again, recalls them all.
func TestRecallRefusedWholeStopsAndLeavesNoneBehind(t *testing.T) {
	srv, f, state, ids := sendThroughFront(t, 60, emulator.Config{QuotaScale: 20})
	f.set(front404)
	if code, out := recallCLI(t, f.Running, state); code != exitFatal || !strings.Contains(out, "404") {
		t.Fatalf("recall against a host that knows no such app: exit %d, want 1 naming the 404\n%s", code, out)
	}
	if n := recallsInFlight(t, state); n != 0 {
		t.Errorf("status after the refused recall: %d recalls in flight, want none (the server did nothing)", n)
	}
	f.set(frontPass)
	if code, out := recallCLI(t, f.Running, state); code != exitIncomplete || srv.Stats().Recalled != ids {
		t.Errorf("the recall after: exit %d, %d of %d recalled; want every one\n%s", code, srv.Stats().Recalled, ids, out)
	}
	ledgerAgrees(t, state, ids)
}

// TestRecallOfABatchRefusedWhole: a server that answers a batch_recall
// naming a message past the recall window as msg_recall does (403 exceed
// recall time limit for the whole call, nothing recalled) has the
// messages asked one at a time: the recent ones recalled, the late ones
// not recalled with the reason, none asked twice once answered; --force
// then recalls the late ones, and a last recall makes no call.
func TestRecallOfABatchRefusedWhole(t *testing.T) {
	dir := t.TempDir()
	var rows strings.Builder
	for i := range 60 {
		fmt.Fprintf(&rows, `{"to":"u%03d","msg":"hi"}`+"\n", i)
	}
	campaign := filepath.Join(dir, "spring.jsonl")
	if err := os.WriteFile(campaign, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var ahead atomic.Int64 // the server's clock runs this far ahead
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	srv := startFake(t, emulator.Config{QuotaScale: 20, Now: now, RecallRefusesWhole: true})
	state := filepath.Join(dir, "l.db")
	if code, out := guardRun(t, srv, state, campaign, "--canary", "25"); code != exitStopped {
		t.Fatalf("the canary: exit %d\n%s", code, out)
	}
	ahead.Store(int64(3 * time.Minute)) // the canary's messages are past the 2 minutes
	if code, out := guardRun(t, srv, state, campaign); code != exitOK || srv.Stats().Delivered != 60 {
		t.Fatalf("the rest: exit %d, %d delivered\n%s", code, srv.Stats().Delivered, out)
	}
	code, out := recallCLI(t, srv, state)
	if st := srv.Stats(); code != exitIncomplete || st.Recalled != 35 || st.RecallRepeats != 0 || !strings.Contains(out, "exceed recall time limit") {
		t.Fatalf("recall: exit %d, %d recalled, %d repeats; want 3, the 35 recent ones, 0, the 25 late named\n%s", code, st.Recalled, st.RecallRepeats, out)
	}
	_, status, _ := runCLI(t, "status", "--state", state, "--json")
	var st report.CampaignStatus
	if err := json.Unmarshal([]byte(status), &st); err != nil || st.Recalled != 35 || st.NotRecalled != 25 || st.RecallInFlight != 0 {
		t.Errorf("status after the recall: %d recalled, %d not, %d in flight; want 35, 25, 0 (%v)\n%s", st.Recalled, st.NotRecalled, st.RecallInFlight, err, status)
	}
	if code, out := recallCLI(t, srv, state, "--force"); code != exitOK || srv.Stats().Recalled != 60 || srv.Stats().RecallRepeats != 0 {
		t.Errorf("recall --force: exit %d, %d recalled, %d repeats; want 0, 60, 0\n%s", code, srv.Stats().Recalled, srv.Stats().RecallRepeats, out)
	}
	calls := srv.Stats().Calls
	if code, out := recallCLI(t, srv, state); code != exitOK || srv.Stats().Calls != calls {
		t.Errorf("a last recall: exit %d, %d calls; want 0 and none\n%s", code, srv.Stats().Calls-calls, out)
	}
	ledgerAgrees(t, state, 60)
}

// recallsInFlight is the count of recalls in flight status gives.
func recallsInFlight(t *testing.T, state string) int64 {
	t.Helper()
	_, out, _ := runCLI(t, "status", "--state", state, "--json")
	var st report.CampaignStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st.RecallInFlight
}

// TestRecallOfAnUnreachableHost: a recall none of whose calls the host
// answers stops after 10 s with exit 1 naming the host, its messages left
// with no outcome: none in flight when connections were refused (nothing
// went out), some when the host took the calls and never answered (they
// may have been recalled there). A recall at another host, which did not
// send the messages, asks for none of them and says which host did; the
// recall after, at that host, asks each again and recalls every one, none
// asked twice there.
func TestRecallOfAnUnreachableHost(t *testing.T) {
	srv, f, state, ids := sendThroughFront(t, 40, emulator.Config{QuotaScale: 20})
	f.down()
	code, out := recallCLI(t, f.Running, state)
	if code != exitFatal || !strings.Contains(out, f.addr) || !strings.Contains(out, "no call of this run was answered") || !strings.Contains(out, "still unknown") {
		t.Fatalf("recall against a dead host: exit %d; want 1 naming the host, the messages unknown\n%s", code, out)
	}
	if n := recallsInFlight(t, state); n != 0 {
		t.Errorf("after a recall whose connections were refused: %d in flight, want none", n)
	}
	f.up(t)
	f.set(frontStall)
	if code, out = recallCLI(t, f.Running, state); code != exitFatal || !strings.Contains(out, "no call of this run was answered") {
		t.Fatalf("recall against a host that never answers: exit %d; want 1 naming the host\n%s", code, out)
	}
	if n := recallsInFlight(t, state); n == 0 {
		t.Errorf("after a recall whose calls were taken and never answered: none in flight, want those calls' messages")
	}
	other := startFake(t, emulator.Config{QuotaScale: 20})
	code, out = recallCLI(t, other, state)
	if code != exitIncomplete || other.Stats().Calls != 0 || !strings.Contains(out, "sent through "+f.URL+"/o/a, not this host") {
		t.Fatalf("a recall at a host that sent none of the messages: exit %d, %d calls; want 3, none, and the host that sent them\n%s", code, other.Stats().Calls, out)
	}
	ledgerAgrees(t, state, 0)
	f.set(frontPass)
	if code, out := recallCLI(t, f.Running, state); code != exitIncomplete || srv.Stats().Recalled != ids || srv.Stats().RecallRepeats != 0 {
		t.Errorf("the recall after: exit %d, %d of %d recalled (%d repeats)\n%s", code, srv.Stats().Recalled, ids, srv.Stats().RecallRepeats, out)
	}
	if n := recallsInFlight(t, state); n != 0 {
		t.Errorf("after the recall: %d still in flight, want 0", n)
	}
	ledgerAgrees(t, state, ids)
}

// killRecallAt starts the binary's recall of campaign spring at srv, kills
// it (SIGKILL) once srv has answered, or taken, enough of it, and returns
// how many messages the ledger then holds in flight.
func killRecallAt(t *testing.T, srv *emulator.Running, state string, enough func(emulator.Stats) bool) int64 {
	t.Helper()
	cmd := startRecall(t, srv, state)
	for deadline := time.Now().Add(time.Minute); !enough(srv.Stats()); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the recall to kill did not get far enough in a minute")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	n := recallsInFlight(t, state)
	if n == 0 {
		t.Fatal("the killed recall left no message in flight: the test shows nothing")
	}
	return n
}

// TestRecallAsksOnlyTheHostThatSent: a campaign sent partly through one
// host and partly through another (whose message IDs are the same
// numbers: each emulator counts from one base) is recalled at each host
// for what that host sent. A recall killed at the first host with
// messages in flight, run there again, counts as recalled only what that
// host recalled: the other host's messages, which it never had, are not
// asked there. The ledger agrees with both servers, and a last recall at
// each makes no call.
func TestRecallAsksOnlyTheHostThatSent(t *testing.T) {
	dir := t.TempDir()
	campaign, _ := recallCampaign(t, dir, 3000)
	state := filepath.Join(dir, "l.db")
	slow := emulator.Config{QuotaScale: 20, Faults: emulator.Faults{Latency: 300 * time.Millisecond}}
	a, b := startFake(t, slow), startFake(t, slow)
	if code, out := guardRun(t, a, state, campaign, "--canary", "1500"); code != exitStopped {
		t.Fatalf("the canary at a: exit %d\n%s", code, out)
	}
	if code, out := guardRun(t, b, state, campaign); code != exitOK {
		t.Fatalf("the rest at b: exit %d\n%s", code, out)
	}
	n := killRecallAt(t, a, state, func(st emulator.Stats) bool { return st.Recalled >= 300 })
	t.Logf("killed at a with %d in flight, %d recalled there", n, a.Stats().Recalled)
	code, out := recallCLI(t, a, state)
	if code != exitIncomplete || !strings.Contains(out, "sent through "+b.URL+"/o/a, not this host") {
		t.Fatalf("the recall again at a: exit %d, want 3 naming b for the rest\n%s", code, out)
	}
	if st := b.Stats(); st.Kinds[emulator.KindBatchRecall].Calls != 0 {
		t.Fatalf("recalls at a made %d calls at b", st.Kinds[emulator.KindBatchRecall].Calls)
	}
	ledgerAgrees(t, state, a.Stats().Recalled)
	if code, out := recallCLI(t, b, state); code != exitIncomplete || strings.Contains(out, "not this host") {
		t.Fatalf("the recall at b: exit %d, want 3 for the cmd and legacy, nothing left elsewhere\n%s", code, out)
	}
	ledgerAgrees(t, state, a.Stats().Recalled+b.Stats().Recalled)
	if a.Stats().Delivered+b.Stats().Delivered == 0 || b.Stats().Recalled == 0 || int64(a.Stats().RecallRepeats) > n {
		t.Errorf("a recalled %d, b %d, a asked again %d of %d in flight", a.Stats().Recalled, b.Stats().Recalled, a.Stats().RecallRepeats, n)
	}
	for _, srv := range []*emulator.Running{a, b} {
		calls := srv.Stats().Calls
		if code, out := recallCLI(t, srv, state); code != exitIncomplete || srv.Stats().Calls != calls || strings.Contains(out, "not this host") {
			t.Errorf("a last recall at %s: exit %d, %d calls; want 3, none, and nothing left to another host\n%s", srv.URL, code, srv.Stats().Calls-calls, out)
		}
	}
	if n := recallsInFlight(t, state); n != 0 {
		t.Errorf("after the recalls: %d still in flight, want 0", n)
	}
}

// TestRecallAtADeadHostKeepsTheMarks: a recall whose calls all went
// unanswered (the server recalled, then failed with 500) leaves its
// messages in flight; a recall when the host is down sends nothing and
// must leave those marks as they were, so that the host's not found,
// once it is up, reads as recalled.
func TestRecallAtADeadHostKeepsTheMarks(t *testing.T) {
	srv, f, state, ids := sendThroughFront(t, 60, emulator.Config{QuotaScale: 20})
	srv.SetFaults(emulator.Faults{ErrorAfter: 1})
	if code, out := recallCLI(t, f.Running, state); code == exitOK {
		t.Fatalf("a recall answered only with 500s: exit 0\n%s", out)
	}
	srv.SetFaults(emulator.Faults{})
	n := recallsInFlight(t, state)
	if n == 0 || srv.Stats().Recalled != ids {
		t.Fatalf("after the 500s: %d in flight, %d of %d recalled at the server; want all in flight and recalled", n, srv.Stats().Recalled, ids)
	}
	f.down()
	if code, out := recallCLI(t, f.Running, state); code != exitFatal {
		t.Fatalf("a recall at a dead host: exit %d, want 1\n%s", code, out)
	}
	if m := recallsInFlight(t, state); m != n {
		t.Fatalf("a recall at a dead host left %d in flight of %d", m, n)
	}
	f.up(t)
	if code, out := recallCLI(t, f.Running, state); code != exitIncomplete || srv.Stats().RecallRepeats == 0 {
		t.Fatalf("the recall once the host is up: exit %d, %d asked again\n%s", code, srv.Stats().RecallRepeats, out)
	}
	ledgerAgrees(t, state, ids)
}

// front stands in front of an emulator at an address of its own: the
// host a campaign is sent through, which passes calls on, or fails as
// hosts fail: it answers them 404 (a wrong app), takes them and never
// answers, or is down (connections refused).
type front struct {
	*emulator.Running // its URL is the front's
	addr              string
	mode              atomic.Int32
	handler           http.Handler
	mu                sync.Mutex
	srv               *http.Server
	quit              chan struct{}
}

// What a front does with a call.
const (
	frontPass = iota
	front404
	frontStall
)

func startFront(t *testing.T, srv *emulator.Running) *front {
	t.Helper()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &front{quit: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(target)
	f.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch f.mode.Load() {
		case front404:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"organization_application_not_found","error_description":"no such app"}`)
		case frontStall:
			select {
			case <-r.Context().Done():
			case <-f.quit:
			}
		default:
			proxy.ServeHTTP(w, r)
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	f.Running = &emulator.Running{Server: srv.Server, URL: "http://" + f.addr}
	f.serve(l)
	t.Cleanup(func() {
		close(f.quit)
		f.down()
	})
	return f
}

func (f *front) set(mode int32) { f.mode.Store(mode) }

func (f *front) serve(l net.Listener) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.srv = &http.Server{Handler: f.handler}
	go f.srv.Serve(l)
}

// down closes the front's listener and connections: connections to it
// are refused until up.
func (f *front) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.srv.Close()
}

// up listens at the front's address again.
func (f *front) up(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	f.serve(l)
}

// sendThroughFront sends the recall campaign of users (recallCampaign)
// through a front of an emulator of cfg.
func sendThroughFront(t *testing.T, users int, cfg emulator.Config) (srv *emulator.Running, f *front, state string, ids int) {
	t.Helper()
	dir := t.TempDir()
	campaign, ids := recallCampaign(t, dir, users)
	state = filepath.Join(dir, "l.db")
	srv = startFake(t, cfg)
	f = startFront(t, srv)
	if code, out := guardRun(t, f.Running, state, campaign); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	return srv, f, state, ids
}

// TestRecallAfterAResend: deliveries left uncertain by a 500 after
// delivery, then sent again with --resend-uncertain, have two copies at
// the server, the first with no message ID: a recall withdraws the
// second and still exits 3, saying the first may have arrived.
func TestRecallAfterAResend(t *testing.T) {
	dir := t.TempDir()
	campaign := filepath.Join(dir, "spring.csv")
	if err := os.WriteFile(campaign, []byte("kind,to,msg\nrooms,r1,hi\nrooms,r2,hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "l.db")
	srv := startFake(t, emulator.Config{QuotaScale: 20, Faults: emulator.Faults{ErrorAfter: 1}})
	if code, out := guardRun(t, srv, state, campaign, "--max-failure-rate", "1"); code != exitIncomplete {
		t.Fatalf("the run answered 500: exit %d, want 3\n%s", code, out)
	}
	srv.SetFaults(emulator.Faults{})
	if code, out := guardRun(t, srv, state, campaign, "--resend-uncertain"); code != exitOK || srv.Stats().Delivered != 4 {
		t.Fatalf("the resend: exit %d, %d delivered; want 0 and each room twice\n%s", code, srv.Stats().Delivered, out)
	}
	code, out := recallCLI(t, srv, state)
	if code != exitIncomplete || srv.Stats().Recalled != 2 || !strings.Contains(out, "2 deliveries were sent again after an uncertain call") {
		t.Errorf("recall after the resend: exit %d, %d recalled; want 3, both second copies, and the 2 first copies named\n%s", code, srv.Stats().Recalled, out)
	}
}

// TestRecallsBackToBackStayUnderTheQuota: recalls run one right after
// another at a small recall quota (5 calls a second), of one campaign and
// of another in the same ledger, are never refused 429: the calls of the
// one before still fill the server's window, and the next waits it out
// before its first call.
func TestRecallsBackToBackStayUnderTheQuota(t *testing.T) {
	srv, state, ids := sendRecallCampaign(t, 600, emulator.Config{QuotaScale: 20, RecallQuotaScale: 0.05})
	autumn := filepath.Join(t.TempDir(), "autumn.csv")
	var rows strings.Builder
	rows.WriteString("to,msg\n")
	for i := range 90 {
		fmt.Fprintf(&rows, "a%03d,fall\n", i)
	}
	if err := os.WriteFile(autumn, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := guardRun(t, srv, state, autumn); code != exitOK {
		t.Fatalf("run autumn: exit %d\n%s", code, out)
	}
	for _, step := range [][]string{
		{"--only", "users"},
		{"--campaign", "autumn"},
		{"--only", "groups,rooms"},
		{"--only", "group_members,room_members"},
	} {
		args := append([]string{"recall", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state, "--campaign", "spring", "--quota-scale", "0.05", "--quiet"}, step...)
		if code, stdout, stderr := runCLI(t, args...); code != exitOK && code != exitIncomplete {
			t.Fatalf("recall %v: exit %d\n%s%s", step, code, stdout, stderr)
		}
		t.Logf("after %v: %d refused, %d calls", step, srv.Stats().Kinds[emulator.KindBatchRecall].Responses[http.StatusTooManyRequests], srv.Stats().Kinds[emulator.KindBatchRecall].Calls)
	}
	st := srv.Stats()
	if n := st.Kinds[emulator.KindBatchRecall].Responses[http.StatusTooManyRequests]; n != 0 || st.Recalled != ids+90 {
		t.Errorf("back-to-back recalls: %d refused 429, %d of %d recalled; want none refused, all recalled", n, st.Recalled, ids+90)
	}
}
