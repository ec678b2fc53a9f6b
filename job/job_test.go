package job_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	quotas planner.Quotas
}

func newFixture(t *testing.T, rows string, cfg emulator.Config, token string) *fixture {
	t.Helper()
	dir := t.TempDir()
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
	quotas, err := planner.NewQuotas(scale, nil)
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
	if sender == nil {
		sender = f.client
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return job.RunCampaign(ctx, f.camp, f.store.Campaign(name), sender, cfg)
}

func TestRunStopsOnARefusedToken(t *testing.T) {
	f := newFixture(t, `{"to":["a","b"],"msg":"hi"}`+"\n", emulator.Config{Token: "good"}, "bad")
	_, err := f.run(t, job.CampaignConfig{}, nil)
	if !errors.Is(err, job.ErrUnauthorized) {
		t.Fatalf("got %v, want ErrUnauthorized", err)
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
