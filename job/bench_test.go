package job_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// timedSender records when each call went out and with how many messages.
type timedSender struct {
	job.Sender
	mu    sync.Mutex
	times []time.Time
	sizes []int
}

func (s *timedSender) Send(ctx context.Context, b chatapi.Batch) (chatapi.Result, error) {
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	s.sizes = append(s.sizes, len(b.To))
	s.mu.Unlock()
	return s.Sender.Send(ctx, b)
}

// openCampaign opens a ledger in dir, closed with the benchmark, and the
// campaign file at path.
func openCampaign(b *testing.B, dir, path string) (*checkpoint.Store, *planner.Campaign) {
	store, err := checkpoint.Open(filepath.Join(dir, "ledger.db"), checkpoint.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	camp, err := planner.Open(planner.Options{Files: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	return store, camp
}

// BenchmarkPacing runs a campaign of one kind against the emulator with 20
// ms of latency, quotas scaled by 10 and sized to take about a minute
// (IMCAST_PACING_SECONDS to change it), and reports the message rate
// reached as a fraction of the quota and the quota refusals received.
func BenchmarkPacing(b *testing.B) {
	seconds := 60
	if v := os.Getenv("IMCAST_PACING_SECONDS"); v != "" {
		seconds, _ = strconv.Atoi(v)
	}
	const scale = 10
	for _, kind := range []chatapi.Kind{chatapi.Users, chatapi.Groups, chatapi.Rooms} {
		b.Run(string(kind), func(b *testing.B) {
			for range b.N {
				pacingRun(b, kind, scale, seconds)
			}
		})
	}
}

func pacingRun(b *testing.B, kind chatapi.Kind, scale float64, seconds int) {
	dir := b.TempDir()
	quotas, err := chatapi.NewQuotas(scale, nil)
	if err != nil {
		b.Fatal(err)
	}
	q := quotas[kind]
	n := int(q.Messages.PerSecond() * float64(seconds))
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "{\"kind\":%q,\"to\":\"id%06d\",\"msg\":\"pacing\"}\n", kind, i)
	}
	path := filepath.Join(dir, "pacing.jsonl")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	srv, err := emulator.Listen("127.0.0.1:0", emulator.Config{QuotaScale: scale, Faults: emulator.Faults{Latency: 20 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	client, err := chatapi.New(chatapi.Config{Host: srv.URL, Org: "o", App: "a", Tokens: chatapi.StaticToken("t")})
	if err != nil {
		b.Fatal(err)
	}
	store, camp := openCampaign(b, dir, path)
	sender := &timedSender{Sender: client}
	res, err := job.RunCampaign(context.Background(), camp, store, sender, job.CampaignConfig{
		Config: job.Config{Quotas: quotas, Campaign: "pacing"},
	})
	if err != nil {
		b.Fatal(err)
	}
	if !res.Complete() {
		b.Fatalf("campaign not complete")
	}
	// The rate over the calls' span: all messages but the last call's,
	// which go out at the end of it.
	times, sizes := sender.times, sender.sizes
	total := 0
	for _, s := range sizes[:len(sizes)-1] {
		total += s
	}
	span := times[len(times)-1].Sub(times[0]).Seconds()
	ratio := float64(total) / span / q.Messages.PerSecond()
	st := srv.Stats()
	refusals := st.Responses[403] + st.Responses[429]
	b.ReportMetric(ratio, "of-quota")
	b.ReportMetric(float64(refusals), "refusals")
	b.ReportMetric(float64(total)/span*60, "msgs/min")
	b.ReportMetric(float64(len(times)), "calls")
	if st.Duplicates != 0 {
		b.Fatalf("%d duplicates", st.Duplicates)
	}
}

// firstSend cancels the run at its first call and remembers when that was.
type firstSend struct {
	cancel context.CancelFunc
	once   sync.Once
	at     time.Time
}

func (f *firstSend) Send(ctx context.Context, b chatapi.Batch) (chatapi.Result, error) {
	f.once.Do(func() { f.at = time.Now(); f.cancel() })
	return chatapi.Result{}, &chatapi.Error{Outcome: chatapi.NotDelivered, Status: 503}
}

// BenchmarkResumeToFirstSend measures a resumed run of a campaign of
// IMCAST_RESUME_DELIVERIES users (default 1 million) whose ledger already
// holds every one as sent, and one new user appended to the file: the time
// from the start of the run (ledger read, whole campaign validated) to its
// first call.
func BenchmarkResumeToFirstSend(b *testing.B) {
	_, dir, path := usersCampaign(b, "IMCAST_RESUME_DELIVERIES")
	store, camp := openCampaign(b, dir, path)
	led := store.Campaign("users")
	// Record every delivery as sent, as a finished run would have.
	err := camp.Batches(context.Background(), nil, nil, func(bt planner.Batch) error {
		r := &checkpoint.Record{Kind: string(bt.Message.Kind), Digest: bt.Message.Digest, To: bt.To}
		if err := led.Begin(r); err != nil {
			return err
		}
		r.State = checkpoint.Sent
		r.IDs = make([]string, len(bt.To))
		for i := range r.IDs {
			r.IDs[i] = "1029457500870543736"
		}
		return led.Finish(r)
	})
	if err != nil {
		b.Fatal(err)
	}
	af, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	af.WriteString("newcomer,welcome\n")
	af.Close()
	quotas, _ := chatapi.NewQuotas(1, nil)
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		sender := &firstSend{cancel: cancel}
		start := time.Now()
		_, err := job.RunCampaign(ctx, camp, store, sender, job.CampaignConfig{Config: job.Config{Quotas: quotas, Campaign: "users"}})
		cancel()
		if !errors.Is(err, context.Canceled) || sender.at.IsZero() {
			b.Fatalf("run: %v, first send at %v", err, sender.at)
		}
		b.ReportMetric(sender.at.Sub(start).Seconds(), "s-to-first-send")
	}
}

// usersCampaign writes a users CSV of as many rows as the variable env
// says (default 1 million) in a temporary folder.
func usersCampaign(b *testing.B, env string) (n int, dir, path string) {
	n = 1_000_000
	if v := os.Getenv(env); v != "" {
		n, _ = strconv.Atoi(v)
	}
	dir = b.TempDir()
	path = filepath.Join(dir, "users.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("to,msg\n")
	for i := range n {
		fmt.Fprintf(w, "user%08d,welcome\n", i)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		b.Fatal(err)
	}
	return n, dir, path
}

// okSender answers every call as delivered, with a numeric message ID per
// recipient, and counts the calls and recipients.
type okSender struct {
	next       atomic.Uint64
	calls, got atomic.Int64
	first      atomic.Int64 // unix nanoseconds of the first call since reset
}

func (s *okSender) Send(ctx context.Context, b chatapi.Batch) (chatapi.Result, error) {
	s.first.CompareAndSwap(0, time.Now().UnixNano())
	s.calls.Add(1)
	s.got.Add(int64(len(b.To)))
	ids := make(map[string]string, len(b.To))
	for _, to := range b.To {
		ids[to] = strconv.FormatUint(1029457500870543736+s.next.Add(1), 10)
	}
	return chatapi.Result{IDs: ids}, nil
}

func (s *okSender) reset() { s.calls.Store(0); s.got.Store(0); s.first.Store(0) }

// BenchmarkRerunOfCompleteCampaign measures the reruns of a campaign of
// IMCAST_RERUN_DELIVERIES users (default 1 million) that a real run sent
// in full (quotas scaled by 10000 against a sender that answers at once,
// so the ledger is as a run writes it): "unchanged", the file as it was,
// the time the run takes to find nothing to send; "one-appended", a new
// row appended, the time to its first call, and the deliveries sent (1).
// It also reports the ledger's bytes per delivery.
func BenchmarkRerunOfCompleteCampaign(b *testing.B) {
	n, dir, path := usersCampaign(b, "IMCAST_RERUN_DELIVERIES")
	store, camp := openCampaign(b, dir, path)
	fast, _ := chatapi.NewQuotas(10000, nil)
	sender := &okSender{}
	setup := time.Now()
	res, err := job.RunCampaign(context.Background(), camp, store, sender, job.CampaignConfig{Config: job.Config{Quotas: fast, Campaign: "users", Workers: 16}})
	if err != nil || !res.Complete() {
		b.Fatalf("first run: %v (complete %v)", err, res != nil && res.Complete())
	}
	b.Logf("first run: %d deliveries in %d calls, %.1fs", sender.got.Load(), sender.calls.Load(), time.Since(setup).Seconds())
	if fi, err := os.Stat(store.Path()); err == nil {
		b.Logf("ledger: %d bytes, %.1f bytes per delivery", fi.Size(), float64(fi.Size())/float64(n))
	}
	quotas, _ := chatapi.NewQuotas(1, nil)
	cfg := job.CampaignConfig{Config: job.Config{Quotas: quotas, Campaign: "users"}}
	b.Run("unchanged", func(b *testing.B) {
		for range b.N {
			sender.reset()
			start := time.Now()
			res, err := job.RunCampaign(context.Background(), camp, store, sender, cfg)
			took := time.Since(start)
			if err != nil || !res.Unchanged || sender.calls.Load() != 0 {
				b.Fatalf("rerun: %v, unchanged %v, %d calls", err, res != nil && res.Unchanged, sender.calls.Load())
			}
			b.ReportMetric(took.Seconds(), "s-to-exit")
		}
	})
	b.Run("one-appended", func(b *testing.B) {
		for i := range b.N {
			af, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(af, "newcomer%d-%d,welcome\n", time.Now().UnixNano(), i)
			af.Close()
			sender.reset()
			start := time.Now()
			res, err := job.RunCampaign(context.Background(), camp, store, sender, cfg)
			if err != nil || !res.Complete() || sender.got.Load() != 1 {
				b.Fatalf("rerun: %v, complete %v, %d deliveries sent, want 1", err, res != nil && res.Complete(), sender.got.Load())
			}
			b.ReportMetric(time.Unix(0, sender.first.Load()).Sub(start).Seconds(), "s-to-first-send")
			b.ReportMetric(float64(sender.got.Load()), "sent")
		}
	})
}
