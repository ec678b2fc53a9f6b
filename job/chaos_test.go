package job_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/emulator"
	"imcast/job"
)

// TestChaos runs whole campaigns over HTTP against the emulator, one per
// seed, each with its own shape (kinds, messages, recipients, repeats)
// and its own mix of hostile answers, and checks after every run what the
// guarantee promises: no recipient got a message twice, the ledger agrees
// with what the server delivered, nothing is lost, and a run that
// returned without error left nothing pending or in flight. Each seed runs
// three times: with faults, interrupted or not; again with other faults;
// and once more with none, which must send every failed delivery.
//
// IMCAST_CHAOS_SEEDS sets the number of seeds (default 50), for a soak.
func TestChaos(t *testing.T) {
	seeds := 50
	if v := os.Getenv("IMCAST_CHAOS_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("IMCAST_CHAOS_SEEDS=%q: want a positive number", v)
		}
		seeds = n
	}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			t.Parallel()
			chaosSeed(t, uint64(seed))
		})
	}
}

// chaosDelivery is one delivery as the emulator names it.
type chaosDelivery struct{ kind, scope, to string }

// chaosCampaign draws a random campaign and returns its rows and its
// distinct deliveries.
func chaosCampaign(t *testing.T, rng *rand.Rand) (string, map[chaosDelivery]bool) {
	t.Helper()
	type shape struct {
		kind   chatapi.Kind
		most   int // recipients of one message, at most
		scopes bool
	}
	shapes := []shape{
		{chatapi.Users, 1500, false}, {chatapi.Groups, 150, false}, {chatapi.Rooms, 300, false},
		{chatapi.GroupMembers, 400, true}, {chatapi.RoomMembers, 400, true}, {chatapi.LegacyUsers, 60, false},
	}
	rng.Shuffle(len(shapes), func(i, j int) { shapes[i], shapes[j] = shapes[j], shapes[i] })
	var lines []string
	all := map[chaosDelivery]bool{}
	for ki, s := range shapes[:1+rng.IntN(3)] {
		for mi := range 1 + rng.IntN(3) {
			scope := ""
			if s.scopes {
				scope = fmt.Sprintf("s%d-%d", ki, rng.IntN(2))
			}
			n := 1 + rng.IntN(s.most)
			var to []string
			for i := range n {
				id := fmt.Sprintf("%s-m%d-%d", s.kind, mi, i)
				to = append(to, id)
				all[chaosDelivery{string(s.kind), scope, id}] = true
				if rng.IntN(20) == 0 {
					to = append(to, id) // listed twice: sent once
				}
			}
			rng.Shuffle(len(to), func(i, j int) { to[i], to[j] = to[j], to[i] })
			// rows of up to 50 recipients, so that batches are made of
			// several rows
			for len(to) > 0 {
				k := min(len(to), 1+rng.IntN(50))
				row := map[string]any{"kind": s.kind, "to": to[:k], "msg": fmt.Sprintf("chaos %d/%d", ki, mi)}
				if scope != "" {
					row["scope"] = scope
				}
				b, _ := json.Marshal(row)
				lines = append(lines, string(b))
				to = to[k:]
			}
		}
	}
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	return strings.Join(lines, "\n") + "\n", all
}

// chaosFaults draws a fault mix.
func chaosFaults(rng *rand.Rand) emulator.Faults {
	p := func(most float64) float64 {
		if rng.IntN(3) == 0 {
			return 0
		}
		return most * rng.Float64()
	}
	f := emulator.Faults{
		TooManyRequests: p(0.4), QuotaForbidden: p(0.1), Unavailable: p(0.1),
		ErrorBefore: p(0.08), ErrorAfter: p(0.08), ResetAfter: p(0.08),
		Created: p(0.1), Accepted202: p(0.1), NoContent: p(0.04),
		Partial: p(0.1), PartialDeliver: p(0.1), Redirect: p(0.04), StallAfter: p(0.02),
		Latency:       time.Duration(rng.IntN(3)) * time.Millisecond,
		LatencyJitter: time.Duration(rng.IntN(8)) * time.Millisecond,
		NoRetryAfter:  true,
	}
	return f
}

// chaosQuotas are the emulator's quotas at scale 10, counted here over
// windows of 100 ms holding a twelfth of a second's quota: calls go out in
// many small windows, so that message windows fill part way and batches
// are split and joined again.
func chaosQuotas() chatapi.Quotas {
	q := chatapi.Quotas{}
	for _, k := range chatapi.Kinds {
		d := k.DefaultQuota()
		lim := func(l chatapi.Limit) chatapi.Limit {
			if l.N == 0 {
				return l
			}
			perSecond := l.PerSecond() * 10
			return chatapi.Limit{N: max(1, int(perSecond/12)), Window: 100 * time.Millisecond}
		}
		q[k] = chatapi.Quota{Calls: lim(d.Calls), Messages: lim(d.Messages)}
	}
	return q
}

// countingSender cancels the run after a number of calls.
type countingSender struct {
	job.Sender
	calls  atomic.Int64
	after  int64 // 0: never
	cancel context.CancelFunc
}

func (s *countingSender) Send(ctx context.Context, b chatapi.Batch) (chatapi.Result, error) {
	if n := s.calls.Add(1); s.after > 0 && n == s.after {
		s.cancel()
	}
	return s.Sender.Send(ctx, b)
}

func chaosSeed(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	rows, all := chaosCampaign(t, rng)
	f := newFixture(t, rows, emulator.Config{QuotaScale: 10, Seed: int64(seed), KeepIDs: true}, "t")
	srv, store, camp := f.srv, f.store, f.camp
	// calls the server stalls are given up soon, and uncertain
	client, err := chatapi.New(chatapi.Config{Host: srv.URL, Org: "o", App: "a", Tokens: chatapi.StaticToken("t"), Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := job.CampaignConfig{Config: job.Config{
		Workers: 1 + rng.IntN(8), Quotas: chaosQuotas(), Campaign: "c",
		Backoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Pacing: job.Pacing{Margin: 10 * time.Millisecond, Lead: 2 * time.Millisecond, MaxMargin: 20 * time.Millisecond, Memory: 300 * time.Millisecond, Floor: 0.05},
	}}

	for phase := range 3 {
		faults := emulator.Faults{}
		if phase < 2 {
			faults = chaosFaults(rng)
		}
		srv.SetFaults(faults)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		sender := &countingSender{Sender: client, cancel: cancel}
		if phase == 0 && rng.IntN(2) == 0 {
			sender.after = 1 + rng.Int64N(20)
		}
		res, err := job.RunCampaign(ctx, camp, store, sender, cfg)
		cancel()
		interrupted := sender.after > 0 && sender.calls.Load() >= sender.after
		if err != nil && !(interrupted && errors.Is(err, context.Canceled)) {
			t.Fatalf("phase %d (faults %+v): run: %v", phase, faults, err)
		}
		client.CloseIdleConnections()
		chaosCheck(t, phase, faults, srv, store, all, err == nil)
		if err == nil && res != nil {
			sent, failed, uncertain := res.Progress.Done()
			if sent+failed+uncertain != res.Plan.Total.Pending {
				t.Errorf("phase %d: the run answered for %d+%d+%d deliveries of the %d it set out to send",
					phase, sent, failed, uncertain, res.Plan.Total.Pending)
			}
		}
		if t.Failed() {
			t.Fatalf("phase %d faults: %+v", phase, faults)
		}
	}
}

// chaosCheck holds the ledger against the emulator.
func chaosCheck(t *testing.T, phase int, faults emulator.Faults, srv *emulator.Running, store *checkpoint.Store, all map[chaosDelivery]bool, finished bool) {
	t.Helper()
	st := srv.Stats()
	t.Logf("phase %d: %d calls, %d delivered; answers %v; faults %v", phase, st.Calls, st.Delivered, st.Responses, st.Faults)
	if st.Duplicates != 0 {
		t.Errorf("phase %d: the emulator counted %d duplicate deliveries", phase, st.Duplicates)
	}
	if st.TrapRequests != 0 {
		t.Errorf("phase %d: %d requests followed a redirect", phase, st.TrapRequests)
	}
	c := store.Campaign("c")
	err := c.Records(func(r checkpoint.Record) error {
		if r.State == checkpoint.InFlight {
			t.Errorf("phase %d: record %d is still in flight after the run returned", phase, r.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[chaosDelivery]bool{}
	held := 0 // deliveries the ledger says may have arrived
	err = c.EachDelivery(func(d checkpoint.Delivery) error {
		key := chaosDelivery{d.Kind, d.Scope, d.To}
		if !all[key] {
			t.Errorf("phase %d: the ledger holds %v, which the campaign does not", phase, key)
		}
		seen[key] = true
		n := srv.Delivered(d.Kind, d.Scope, d.To)
		switch d.State {
		case checkpoint.Sent:
			held++
			ids := srv.IDs(d.Kind, d.Scope, d.To)
			if n != 1 || len(ids) != 1 || d.MessageID != ids[0] {
				t.Errorf("phase %d: %v sent as %q, but the emulator delivered it %d times with IDs %v", phase, key, d.MessageID, n, ids)
			}
		case checkpoint.Failed:
			if n != 0 || d.Error == "" {
				t.Errorf("phase %d: %v failed (%q), but the emulator delivered it %d times", phase, key, d.Error, n)
			}
		case checkpoint.Uncertain:
			held += n
			if n > 1 || d.Error == "" {
				t.Errorf("phase %d: %v uncertain (%q), delivered %d times", phase, key, d.Error, n)
			}
		case checkpoint.Pending:
			if finished || n != 0 {
				t.Errorf("phase %d: %v pending (%q), delivered %d times, after a run that finished: %v", phase, key, d.Error, n, finished)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if finished {
		for key := range all {
			if !seen[key] {
				t.Errorf("phase %d: %v was never sent, and the run finished", phase, key)
			}
		}
	}
	if st.Delivered != held {
		t.Errorf("phase %d: the emulator delivered %d messages, the ledger accounts for %d", phase, st.Delivered, held)
	}
	if phase == 2 {
		// a run without faults sends whatever failed before
		err := c.EachDelivery(func(d checkpoint.Delivery) error {
			if d.State != checkpoint.Sent && d.State != checkpoint.Uncertain {
				t.Errorf("after a run without faults, %s/%s/%s is %v (%q)", d.Kind, d.Scope, d.To, d.State, d.Error)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
