package job_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/emulator"
	"imcast/job"
	"imcast/planner"
)

func groupRows(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, `{"kind":"groups","to":"g%03d","msg":"hi"}`+"\n", i)
	}
	return b.String()
}

func appendRows(t *testing.T, path, rows string) {
	t.Helper()
	file, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteString(rows); err != nil {
		t.Fatal(err)
	}
	file.Close()
}

// checkOnce checks that the emulator delivered each of groups g[from, to)
// exactly once.
func checkOnce(t *testing.T, f *fixture, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if got := f.srv.Delivered("groups", "", fmt.Sprintf("g%03d", i)); got != 1 {
			t.Errorf("g%03d delivered %d times, want once", i, got)
		}
	}
}

// TestRerunOfUnchangedFilesReadsNoRow checks that a run of files unchanged
// since every delivery was sent reads no row and makes no call, and that
// a run that did not send everything leaves the next run to read all.
func TestRerunOfUnchangedFilesReadsNoRow(t *testing.T) {
	f := newFixture(t, groupRows(0, 30), emulator.Config{QuotaScale: 10}, "t")
	if _, err := f.run(t, job.CampaignConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	calls := f.srv.Stats().Calls
	res, err := f.run(t, job.CampaignConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Unchanged || res.Plan.Rows != 0 || res.AlreadySent != 30 || !res.Complete() {
		t.Errorf("rerun: unchanged %v, %d rows read, %d already sent, complete %v; want true, 0, 30, true",
			res.Unchanged, res.Plan.Rows, res.AlreadySent, res.Complete())
	}
	if got := f.srv.Stats().Calls; got != calls {
		t.Errorf("rerun made %d calls, want none", got-calls)
	}
	checkOnce(t, f, 0, 30)
}

// TestRerunOfAppendedRowsSendsOnlyThem checks that a run of a file with
// rows appended since every delivery was sent reads only those rows, sends
// only the new deliveries among them, and finds those another campaign
// sent; and that a run stopped partway leaves the next to read all.
func TestRerunOfAppendedRowsSendsOnlyThem(t *testing.T) {
	f := newFixture(t, groupRows(0, 30), emulator.Config{QuotaScale: 10}, "t")
	path := f.camp.Unread().Files[0]
	if _, err := f.run(t, job.CampaignConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	// one new row, and one the file had before
	appendRows(t, path, groupRows(30, 31)+groupRows(5, 6))
	res, err := f.run(t, job.CampaignConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Unchanged || res.Plan.Rows != 2 || res.Plan.Total.Pending != 1 || !res.Complete() {
		t.Errorf("run after appending: unchanged %v, %d rows read, %d to send, complete %v; want false, 2, 1, true",
			res.Unchanged, res.Plan.Rows, res.Plan.Total.Pending, res.Complete())
	}
	checkOnce(t, f, 0, 31)
	if planned, _ := f.store.Campaign("c").Planned(); planned != 31 {
		t.Errorf("planned: %d, want 31", planned)
	}
	if res, err := f.run(t, job.CampaignConfig{}, nil); err != nil || !res.Unchanged {
		t.Errorf("run again: unchanged %v (%v), want true", res != nil && res.Unchanged, err)
	}

	// a row another campaign of the ledger sent: not sent again
	f.recordSent(t, &checkpoint.Record{Campaign: "other", Kind: "groups", Digest: f.digestOf(t), To: []string{"g031"}})
	appendRows(t, path, groupRows(31, 32))
	cfg := job.CampaignConfig{}
	cfg.Quotas, cfg.Campaign = f.quotas, "c"
	_, err = job.RunCampaign(context.Background(), f.camp, f.store, f.client, cfg)
	var elsewhere *job.SentElsewhereError
	if !errors.As(err, &elsewhere) || elsewhere.Found["other"] != 1 {
		t.Fatalf("run of a row sent under another campaign: %v, want it found in other", err)
	}
	if got := f.srv.Delivered("groups", "", "g031"); got != 0 {
		t.Errorf("g031 delivered %d times, want 0", got)
	}

	// a run stopped after its first call: the next reads all, sends the rest
	appendRows(t, path, groupRows(32, 60))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n atomic.Int64
	stopper := senderFunc(func(ctx context.Context, b chatapi.Batch) (chatapi.Result, error) {
		r, err := f.client.Send(ctx, b)
		if n.Add(1) == 1 {
			cancel()
		}
		return r, err
	})
	cfg.Named = true
	if res, err := job.RunCampaign(ctx, f.camp, f.store, stopper, cfg); err == nil && res.Complete() {
		t.Fatalf("stopped run: complete, want it stopped partway")
	}
	res, err = f.run(t, job.CampaignConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Unchanged || res.Plan.Rows != 61 || !res.Complete() {
		t.Errorf("run after a stopped one: unchanged %v, %d rows read, complete %v; want false, 61, true", res.Unchanged, res.Plan.Rows, res.Complete())
	}
	checkOnce(t, f, 0, 31)
	checkOnce(t, f, 32, 60)
}

// digestOf is the digest of the fixture campaign's first message.
func (f *fixture) digestOf(t *testing.T) (d [32]byte) {
	t.Helper()
	errFound := errors.New("found")
	err := f.camp.Batches(context.Background(), f.quotas, nil, func(b planner.Batch) error {
		d = b.Message.Digest
		return errFound
	})
	if !errors.Is(err, errFound) {
		t.Fatal(err)
	}
	return d
}
