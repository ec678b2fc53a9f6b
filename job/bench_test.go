package job_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	quotas, err := planner.NewQuotas(scale, nil)
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
	store, err := checkpoint.Open(filepath.Join(dir, "ledger.db"), checkpoint.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	camp, err := planner.Open(planner.Options{Files: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	sender := &timedSender{Sender: client}
	res, err := job.RunCampaign(context.Background(), camp, store.Campaign("pacing"), sender, job.CampaignConfig{
		Config: job.Config{Quotas: quotas},
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
