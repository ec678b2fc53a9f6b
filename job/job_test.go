package job_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/emulator"
	"imcast/job"
	"imcast/planner"
)

// fixture is a campaign, an emulator, a client and a ledger for one test.
type fixture struct {
	srv    *emulator.Running
	client *chatapi.Client
	store  *checkpoint.Store
	camp   *planner.Campaign
	quotas chatapi.Quotas
}

func newFixture(t *testing.T, rows string, cfg emulator.Config, token string) *fixture {
	t.Helper()
	return newFixtureIn(t, t.TempDir(), rows, cfg, token)
}

// newFixtureIn is newFixture with the campaign file in dir.
func newFixtureIn(t *testing.T, dir, rows string, cfg emulator.Config, token string) *fixture {
	t.Helper()
	path := filepath.Join(dir, "c.jsonl")
	if err := os.WriteFile(path, []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := emulator.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	client, err := chatapi.New(chatapi.Config{Host: srv.URL, Org: "o", App: "a", Tokens: chatapi.StaticToken(token)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := checkpoint.Open(filepath.Join(dir, "ledger.db"), checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	camp, err := planner.Open(planner.Options{Files: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	scale := cfg.QuotaScale
	if scale == 0 {
		scale = 1
	}
	quotas, err := chatapi.NewQuotas(scale, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, client: client, store: store, camp: camp, quotas: quotas}
}

func (f *fixture) run(t *testing.T, cfg job.CampaignConfig, sender job.Sender) (*job.Result, error) {
	t.Helper()
	return f.runAs(t, "c", cfg, sender)
}

// runAs runs the campaign under the ledger name given.
func (f *fixture) runAs(t *testing.T, name string, cfg job.CampaignConfig, sender job.Sender) (*job.Result, error) {
	t.Helper()
	cfg.Quotas = f.quotas
	cfg.Campaign, cfg.Named = name, true
	if sender == nil {
		sender = f.client
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return job.RunCampaign(ctx, f.camp, f.store, sender, cfg)
}

func TestRunStopsOnARefusedToken(t *testing.T) {
	f := newFixture(t, `{"to":["a","b"],"msg":"hi"}`+"\n", emulator.Config{Token: "good"}, "bad")
	_, err := f.run(t, job.CampaignConfig{}, nil)
	if !errors.Is(err, chatapi.ErrCredentials) {
		t.Fatalf("got %v, want ErrCredentials", err)
	}
	d, err := f.store.Campaign("c").Load()
	if err != nil {
		t.Fatal(err)
	}
	if d.Count(checkpoint.Pending) != 2 || d.Count(checkpoint.Uncertain) != 0 {
		t.Errorf("ledger: %d pending, %d uncertain; want the 2 refused deliveries pending", d.Count(checkpoint.Pending), d.Count(checkpoint.Uncertain))
	}
}

func TestRunGivesUpAfterMaxAttempts(t *testing.T) {
	f := newFixture(t, `{"to":["a","b"],"msg":"hi"}`+"\n", emulator.Config{Faults: emulator.Faults{TooManyRequests: 1}}, "t")
	res, err := f.run(t, job.CampaignConfig{Config: job.Config{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Progress.Kind(chatapi.Users)
	if c.Failed.Load() != 2 || c.Calls.Load() != 3 || c.Retries.Load() != 2 || c.Refused.Load() != 3 {
		t.Errorf("failed %d calls %d retries %d refused %d; want 2, 3, 2, 3",
			c.Failed.Load(), c.Calls.Load(), c.Retries.Load(), c.Refused.Load())
	}
	err = f.store.Campaign("c").EachDelivery(func(d checkpoint.Delivery) error {
		if d.State != checkpoint.Failed || !strings.HasPrefix(d.Error, "gave up after 3 attempts: not delivered: status 429") {
			t.Errorf("%s: %v %q", d.To, d.State, d.Error)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// recorder keeps the batches sent.
type recorder struct {
	job.Sender
	mu      sync.Mutex
	batches []chatapi.Batch
}

func (r *recorder) Send(ctx context.Context, b chatapi.Batch) (chatapi.Result, error) {
	r.mu.Lock()
	r.batches = append(r.batches, b)
	r.mu.Unlock()
	return r.Sender.Send(ctx, b)
}

func TestDedupExtIsStablePerMessage(t *testing.T) {
	rows := `{"to":["a","b"],"msg":"hi","ext":{"k":"v"}}
{"to":["c"],"msg":"other"}
`
	f := newFixture(t, rows, emulator.Config{Faults: emulator.Faults{ErrorAfter: 1}}, "t")
	rec := &recorder{Sender: f.client}
	if _, err := f.run(t, job.CampaignConfig{Config: job.Config{DedupExt: true}}, rec); err != nil {
		t.Fatal(err)
	}
	// everything is uncertain; resend it, as a user who chose to would
	f.srv.SetFaults(emulator.Faults{})
	if _, err := f.run(t, job.CampaignConfig{Config: job.Config{DedupExt: true}, ResendUncertain: true}, rec); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{} // recipient → dedup key
	for _, b := range rec.batches {
		var ext map[string]string
		if err := json.Unmarshal(b.Message.Ext, &ext); err != nil {
			t.Fatalf("ext %s: %v", b.Message.Ext, err)
		}
		key := ext[job.DedupKey]
		if len(key) != 32 {
			t.Fatalf("ext %s: no %s key of 32 hex digits", b.Message.Ext, job.DedupKey)
		}
		if strings.Contains(string(b.Message.Body), "hi") && ext["k"] != "v" {
			t.Errorf("ext %s lost the campaign's own key", b.Message.Ext)
		}
		for _, to := range b.To {
			if old, ok := keys[to]; ok && old != key {
				t.Errorf("%s: key %s on the first send, %s on the resend", to, old, key)
			}
			keys[to] = key
		}
	}
	if keys["a"] != keys["b"] || keys["a"] == keys["c"] {
		t.Errorf("keys %v: want one per message", keys)
	}
	if len(rec.batches) != 4 {
		t.Errorf("%d calls, want 2 sends and 2 resends", len(rec.batches))
	}
}

func TestRunSplitsGroupBatchesToFillTheWindow(t *testing.T) {
	var sb strings.Builder
	for i := range 60 {
		sb.WriteString(`{"kind":"groups","to":"g` + string(rune('A'+i/26)) + string(rune('a'+i%26)) + `","msg":"hi"}` + "\n")
	}
	f := newFixture(t, sb.String(), emulator.Config{}, "t")
	rec := &recorder{Sender: f.client}
	res, err := f.run(t, job.CampaignConfig{}, rec)
	if err != nil || !res.Complete() {
		t.Fatalf("run: %v, complete %v", err, res != nil && res.Complete())
	}
	sizes := map[int]int{}
	for _, b := range rec.batches {
		sizes[len(b.To)]++
	}
	if sizes[3] == 0 || sizes[1]+sizes[2] == 0 {
		t.Errorf("batch sizes %v: want full batches of 3 and some split ones", sizes)
	}
	st := f.srv.Stats()
	if st.Responses[403]+st.Responses[429] != 0 || st.Delivered != 60 || st.Duplicates != 0 {
		t.Errorf("emulator: %v refusals, %d delivered, %d duplicates; want 0, 60, 0", st.Responses, st.Delivered, st.Duplicates)
	}
}

// failingLedger passes writes to the store until a batch is finished, then
// fails every write after it, as a full disk or a crash would.
type failingLedger struct {
	*checkpoint.Store
	mu       sync.Mutex
	finished bool
}

var errDiskFull = errors.New("disk full")

func (l *failingLedger) Begin(r *checkpoint.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished {
		return errDiskFull
	}
	return l.Store.Begin(r)
}

func (l *failingLedger) Finish(r *checkpoint.Record, parts ...*checkpoint.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished {
		return errDiskFull
	}
	l.finished = true
	return l.Store.Finish(r, parts...)
}

// TestPartialAnswerIsRecordedAtOnce has the server deliver a batch but name
// only some of its recipients, and the ledger fail every write after the
// one that records that answer: the recipients left out must still be
// held uncertain, so that the next run does not send them again.
func TestPartialAnswerIsRecordedAtOnce(t *testing.T) {
	var to []string
	for i := range 40 {
		to = append(to, fmt.Sprintf("u%02d", i))
	}
	b, _ := json.Marshal(to)
	f := newFixture(t, `{"to":`+string(b)+`,"msg":"hi"}`+"\n", emulator.Config{Faults: emulator.Faults{Partial: 1}}, "t")
	cfg := job.CampaignConfig{Config: job.Config{Quotas: f.quotas, Campaign: "c", Named: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := job.RunCampaign(ctx, f.camp, &failingLedger{Store: f.store}, f.client, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	d, err := f.store.Campaign("c").Load()
	if err != nil {
		t.Fatal(err)
	}
	sent, uncertain := d.Count(checkpoint.Sent), d.Count(checkpoint.Uncertain)
	if sent == 0 || uncertain == 0 || sent+uncertain != 40 {
		t.Fatalf("ledger: %d sent, %d uncertain; want the 40 split between them", sent, uncertain)
	}
	f.srv.SetFaults(emulator.Faults{})
	if _, err := f.run(t, job.CampaignConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	if st := f.srv.Stats(); st.Duplicates != 0 || st.Calls != 1 {
		t.Errorf("after the rerun: %d calls, %d duplicates; want the 1 call of the first run and none", st.Calls, st.Duplicates)
	}
}

// TestSplitPartsOwnTheirRecipients runs group_members batches through many
// splits and refusals: every member gets the message once.
func TestSplitPartsOwnTheirRecipients(t *testing.T) {
	var rows strings.Builder
	for i := range 600 {
		fmt.Fprintf(&rows, `{"kind":"group_members","scope":"g1","to":"m%03d","msg":"hi"}`+"\n", i)
	}
	f := newFixture(t, rows.String(), emulator.Config{QuotaScale: 10, Seed: 3, Faults: emulator.Faults{TooManyRequests: 0.3, NoRetryAfter: true}}, "t")
	// windows of 50 ms holding 23 messages: most calls of 20 are split
	f.quotas = chatapi.Quotas{chatapi.GroupMembers: {Calls: chatapi.Limit{N: 40, Window: 50 * time.Millisecond}, Messages: chatapi.Limit{N: 23, Window: 50 * time.Millisecond}}}
	rec := &recorder{Sender: f.client}
	res, err := f.run(t, job.CampaignConfig{Config: job.Config{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Pacing: job.Pacing{Margin: 10 * time.Millisecond, Lead: time.Millisecond, MaxMargin: 20 * time.Millisecond, Memory: 100 * time.Millisecond, Floor: 0.2}}}, rec)
	if err != nil || !res.Complete() {
		t.Fatalf("run: %v, complete %v", err, res != nil && res.Complete())
	}
	split := 0
	for _, b := range rec.batches {
		if len(b.To) < 20 {
			split++
		}
	}
	st := f.srv.Stats()
	if st.Duplicates != 0 || st.Delivered != 600 || split == 0 || st.Responses[429] == 0 {
		t.Errorf("%d delivered, %d duplicates, %d split calls, %d refusals; want 600, 0, some, some", st.Delivered, st.Duplicates, split, st.Responses[429])
	}
}

// recordSent records r in the ledger as a call a run made and saw sent.
func (f *fixture) recordSent(t *testing.T, r *checkpoint.Record) {
	t.Helper()
	if err := f.store.Begin(r); err != nil {
		t.Fatal(err)
	}
	r.State = checkpoint.Sent
	if err := f.store.Finish(r); err != nil {
		t.Fatal(err)
	}
}

// TestRunStartsWithTheCallsJustMade runs a campaign right after another
// run of the ledger sent a full second's worth of group messages: the
// windows start with those calls, and the first call waits for them to
// leave.
func TestRunStartsWithTheCallsJustMade(t *testing.T) {
	f := newFixture(t, `{"kind":"groups","to":["g1","g2"],"msg":"hi"}`+"\n", emulator.Config{}, "t")
	just := time.Now()
	full := chatapi.Groups.DefaultQuota().Messages.N
	earlier := &checkpoint.Record{Campaign: "earlier", Kind: string(chatapi.Groups), To: make([]string, full), Time: just}
	for i := range earlier.To {
		earlier.To[i] = fmt.Sprint("other", i)
	}
	f.recordSent(t, earlier)
	if _, err := f.run(t, job.CampaignConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	first := f.srv.Stats().Kinds["groups"].First
	if waited := first.Sub(just); waited < time.Second {
		t.Errorf("first call %v after a full window of calls, want at least 1 s", waited)
	}
}

func TestRunStartsWithTheRoomMessagesJustPosted(t *testing.T) {
	f := newFixture(t, `{"kind":"rooms","to":["r1"],"msg":"hi"}`+"\n", emulator.Config{}, "t")
	just := time.Now()
	// A second's worth of messages into r1, half to the room, half to
	// members of it, by a run that stopped a moment ago.
	for i := range chatapi.RoomMessagesPerSecond {
		r := &checkpoint.Record{Campaign: "earlier", Kind: string(chatapi.Rooms), To: []string{"r1"}, Time: just}
		if i%2 == 1 {
			r.Kind, r.Scope, r.To = string(chatapi.RoomMembers), "r1", []string{fmt.Sprint("u", i)}
		}
		r.Digest[0] = byte(i)
		f.recordSent(t, r)
	}
	if _, err := f.run(t, job.CampaignConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	first := f.srv.Stats().Kinds["rooms"].First
	if waited := first.Sub(just); waited < time.Second {
		t.Errorf("first call %v after a full second of messages into the room, want at least 1 s", waited)
	}
}

// appendOnFirstSend appends rows to a campaign file as the first call of
// a run leaves: a file changed while the run sends.
type appendOnFirstSend struct {
	job.Sender
	path, rows string
	once       sync.Once
	err        error
}

func (a *appendOnFirstSend) Send(ctx context.Context, b chatapi.Batch) (chatapi.Result, error) {
	a.once.Do(func() {
		f, err := os.OpenFile(a.path, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(a.rows)
			err = errors.Join(err, f.Close())
		}
		a.err = err
	})
	return a.Sender.Send(ctx, b)
}

func TestRunSendsOnlyWhatItValidated(t *testing.T) {
	// Large enough that a second read of the file, were there one, would
	// still be reading when the first call leaves.
	var rows strings.Builder
	const n = 2000
	for i := range n {
		fmt.Fprintf(&rows, `{"kind":"groups","to":"g%05d","msg":"hello from the campaign"}`+"\n", i)
	}
	dir := t.TempDir()
	f := newFixtureIn(t, dir, rows.String(), emulator.Config{QuotaScale: 50}, "t")
	path := filepath.Join(dir, "c.jsonl")
	appended := `{"kind":"groups","to":"late","msg":"hello from the campaign"}` + "\n" + `{"kind":"groups","msg":"no recipient"}` + "\n"
	sender := &appendOnFirstSend{Sender: f.client, path: path, rows: appended}
	res, err := f.run(t, job.CampaignConfig{}, sender)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if sender.err != nil {
		t.Fatal(sender.err)
	}
	if sent, _, _ := res.Progress.Done(); sent != n {
		t.Errorf("sent %d, want the %d validated", sent, n)
	}
	if got := f.srv.Delivered("groups", "", "late"); got != 0 {
		t.Errorf("the row appended mid-run was delivered %d times, want 0", got)
	}

	// The next run reads the file as it is now, and refuses it.
	before := f.srv.Stats().Calls
	_, err = f.run(t, job.CampaignConfig{}, nil)
	var invalid *planner.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("rerun: %v, want an invalid campaign", err)
	}
	if want := fmt.Sprintf("%s:%d", path, n+2); !strings.Contains(err.Error(), want) {
		t.Errorf("rerun: %v, want the bad row named %s", err, want)
	}
	if calls := f.srv.Stats().Calls; calls != before {
		t.Errorf("rerun of an invalid campaign made %d calls", calls-before)
	}
}

func TestRunCapsBatchesAtTheMessageQuota(t *testing.T) {
	to := make([]string, chatapi.Users.MaxPerCall())
	for i := range to {
		to[i] = fmt.Sprintf("u%03d", i)
	}
	row, _ := json.Marshal(map[string]any{"kind": "users", "to": to, "msg": "hi"})
	f := newFixture(t, string(row)+"\n", emulator.Config{}, "t")
	quotas, err := chatapi.NewQuotas(1, []string{"users.messages=30000"})
	if err != nil {
		t.Fatal(err)
	}
	f.quotas = quotas
	var first atomic.Int64
	sender := senderFunc(func(ctx context.Context, b chatapi.Batch) (chatapi.Result, error) {
		first.CompareAndSwap(0, int64(len(b.To)))
		return f.client.Send(ctx, b)
	})
	// the first call leaves at once; the rest waits for the window
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cfg := job.CampaignConfig{}
	cfg.Quotas, cfg.Campaign, cfg.Named = f.quotas, "c", true
	_, err = job.RunCampaign(ctx, f.camp, f.store, sender, cfg)
	if got := first.Load(); got != 500 {
		t.Errorf("first call of %d recipients (run: %v), want the 500 a second of the 30000/min message quota", got, err)
	}
}

// senderFunc is a Sender in a function.
type senderFunc func(ctx context.Context, b chatapi.Batch) (chatapi.Result, error)

func (f senderFunc) Send(ctx context.Context, b chatapi.Batch) (chatapi.Result, error) {
	return f(ctx, b)
}

// TestBreakerSaysTheShare: the breaker's share is not rounded to the
// limit it passed (41 of 200 is 20.5 %, more than 20 %).
func TestBreakerSaysTheShare(t *testing.T) {
	for _, c := range []struct {
		bad, of int
		max     float64
		want    string
	}{
		{41, 200, 0.2, "(20.5%, more than --max-failure-rate 20%)"},
		{80, 200, 0.2, "(40%, more than --max-failure-rate 20%)"},
		{3, 200, 0.011, "(1.5%, more than --max-failure-rate 1.1%)"},
	} {
		got := (&job.BreakerError{Bad: c.bad, Of: c.of, Max: c.max, Last: "x"}).Error()
		if !strings.Contains(got, c.want) {
			t.Errorf("%d of %d over %v: %q, want %q", c.bad, c.of, c.max, got, c.want)
		}
	}
}
