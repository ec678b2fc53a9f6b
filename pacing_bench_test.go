package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"imcast/chatapi"
	"imcast/emulator"
)

// pacingCase is one campaign of BenchmarkPacingStrict.
type pacingCase struct {
	name     string
	kind     string  // the emulator's kind name
	scale    float64 // --quota-scale of both sides
	messages int     // distinct messages, interleaved
	perCall  int     // recipients a call
	calls    bool    // the share is of the call quota (legacy), not the message quota
}

var pacingCases = []pacingCase{
	{name: "users", kind: "users", scale: 10, messages: 1, perCall: 600},
	{name: "groups", kind: "groups", scale: 1.5, messages: 1, perCall: 3},
	{name: "groups-4-messages", kind: "groups", scale: 1.5, messages: 4, perCall: 3},
	{name: "rooms", kind: "rooms", scale: 1, messages: 1, perCall: 10},
	{name: "group_members", kind: "group_members", scale: 1, messages: 1, perCall: 20},
	{name: "room_members", kind: "room_members", scale: 1, messages: 1, perCall: 20},
	{name: "legacy_users", kind: "legacy", scale: 1, messages: 1, perCall: 20, calls: true},
}

// BenchmarkPacingStrict runs each campaign with the built binary against
// `imcast fake-server` as a separate process (each call counted when it
// arrives, answered after a latency drawn for it), the ledger on disk, 4
// workers, sized to take IMCAST_PACING_SECONDS (default 40) at the quota.
// It reports the share of the quota reached over the span of the admitted
// calls, the refusals, the peak of the busiest server window against its
// quota, and the run's time against the plan's estimate.
//
// IMCAST_PACING_LATENCY sets the latency ("20ms", "5ms-60ms");
// IMCAST_PACING_CASES picks cases by name ("groups,rooms");
// IMCAST_PACING_SERVER adds fake-server flags ("--fail-429 0.2");
// IMCAST_PACING_OTHER has a second sender take that share of the quota on
// the same app, evenly, while imcast runs: the share is then of the rest,
// and "refusing_s" is how long imcast's refusals went on after its first.
func BenchmarkPacingStrict(b *testing.B) {
	env := pacingEnv{seconds: 40, latency: "20ms"}
	if v := os.Getenv("IMCAST_PACING_SECONDS"); v != "" {
		env.seconds, _ = strconv.ParseFloat(v, 64)
	}
	if v := os.Getenv("IMCAST_PACING_LATENCY"); v != "" {
		env.latency = v
	}
	if v := os.Getenv("IMCAST_PACING_OTHER"); v != "" {
		env.other, _ = strconv.ParseFloat(v, 64)
	}
	env.serverFlags = strings.Fields(os.Getenv("IMCAST_PACING_SERVER"))
	cases := strings.Split(os.Getenv("IMCAST_PACING_CASES"), ",")
	bin := binary(b)
	for _, pc := range pacingCases {
		if cases[0] != "" && !slices.Contains(cases, pc.name) {
			continue
		}
		b.Run(pc.name, func(b *testing.B) {
			for range b.N {
				m := pacingRun(b, bin, pc, env)
				b.ReportMetric(m.share, "share")
				b.ReportMetric(float64(m.refusals), "refusals")
				b.ReportMetric(m.peak, "peak/quota")
				b.ReportMetric(m.estimate, "run/estimate")
				if env.other > 0 {
					b.ReportMetric(m.refusing.Seconds(), "refusing_s")
				}
			}
		})
	}
}

type pacingEnv struct {
	seconds     float64
	latency     string
	other       float64
	serverFlags []string
}

type pacingMetrics struct {
	share    float64       // of the quota, or of the rest of it beside another sender
	refusals int           // imcast's calls refused
	peak     float64       // the busiest server window, of its quota
	estimate float64       // the run's time over the plan's estimate
	refusing time.Duration // from imcast's first refusal to its last
}

// startFakeServer starts `imcast fake-server` on a loopback port, a
// process of its own stopped when b ends, and returns its base URL and a
// reader of its stats.
func startFakeServer(b testing.TB, bin string, flags ...string) (string, func() emulator.Stats) {
	b.Helper()
	srv := exec.Command(bin, append([]string{"fake-server", "--addr", "127.0.0.1:0"}, flags...)...)
	stderr, err := srv.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	url := ""
	sc := bufio.NewScanner(stderr)
	for url == "" && sc.Scan() {
		if m := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		b.Fatal("fake-server printed no address")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	stats := func() emulator.Stats {
		resp, err := http.Get(url + "/_emulator/stats")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var st emulator.Stats
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			b.Fatal(err)
		}
		return st
	}
	return url, stats
}

func pacingRun(b *testing.B, bin string, pc pacingCase, env pacingEnv) pacingMetrics {
	dir := b.TempDir()
	scale := strconv.FormatFloat(pc.scale, 'f', -1, 64)
	args := append([]string{"--quota-scale", scale, "--latency", env.latency}, env.serverFlags...)
	url, stats := startFakeServer(b, bin, args...)
	lim := stats().Limits[pc.kind]
	var quota emulator.Quota
	for _, q := range lim.Quotas {
		if (q.Unit == "calls") == pc.calls {
			quota = q
		}
	}
	perSecond := float64(quota.Limit) / quota.Span.Seconds()
	rest := 1 - env.other
	total := int(perSecond * rest * env.seconds)
	if pc.calls {
		total *= pc.perCall
	}
	kind := map[string]string{"legacy": "legacy_users"}[pc.kind]
	if kind == "" {
		kind = pc.kind
	}
	var sbuf strings.Builder
	for i := range total {
		row := map[string]any{"kind": kind, "to": fmt.Sprintf("r%07d", i), "msg": fmt.Sprintf("bench %d", i%pc.messages)}
		if strings.HasSuffix(kind, "_members") {
			row["scope"] = fmt.Sprintf("s%d", i/400)
		}
		line, _ := json.Marshal(row)
		sbuf.Write(line)
		sbuf.WriteByte('\n')
	}
	campaign := filepath.Join(dir, "bench.jsonl")
	if err := os.WriteFile(campaign, []byte(sbuf.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	planOut, err := exec.Command(bin, "plan", "--json", "--quota-scale", scale, campaign).Output()
	if err != nil {
		b.Fatalf("plan: %v", err)
	}
	var plan struct {
		Total struct {
			Seconds float64 `json:"estimated_seconds"`
		} `json:"total"`
	}
	if err := json.Unmarshal(planOut, &plan); err != nil {
		b.Fatalf("plan --json: %v", err)
	}

	var other *otherSender
	if env.other > 0 {
		other = startOtherSender(b, url, kind, pc, env.other*perSecond)
	}
	// imcast's refusals, as the server counts them, less the other's
	var refusing struct {
		sync.Mutex
		first, last time.Time
	}
	polled := make(chan struct{})
	stopPoll := make(chan struct{})
	if other != nil {
		go func() {
			defer close(polled)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			seen := 0
			for {
				select {
				case <-stopPoll:
					return
				case now := <-tick.C:
					st := stats()
					ks := st.Kinds[pc.kind]
					// the other's calls not yet answered may be refusals
					// the server counted already
					n := ks.Responses[403] + ks.Responses[429] + ks.Responses[503] - int(other.refused.Load()) - int(other.flying.Load())
					if n > seen {
						refusing.Lock()
						if refusing.first.IsZero() {
							refusing.first = now
						}
						refusing.last = now
						refusing.Unlock()
						seen = n
					}
				}
			}
		}()
	} else {
		close(polled)
	}

	run := exec.Command(bin, "run", "--host", url, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "ledger.db"),
		"--quota-scale", scale, "--workers", "4", "--quiet", campaign)
	run.Env = append(os.Environ(), "EASEMOB_TOKEN=bench-token")
	start := time.Now()
	out, err := run.CombinedOutput()
	elapsed := time.Since(start)
	close(stopPoll)
	<-polled
	if other != nil {
		other.stop()
	}
	if err != nil {
		b.Fatalf("run: %v\n%s", err, out)
	}
	st := stats()
	ks := st.Kinds[pc.kind]
	var m pacingMetrics
	m.refusals = ks.Responses[403] + ks.Responses[429] + ks.Responses[503]
	for _, q := range lim.Quotas {
		key := q.Unit + "/" + q.Span.String()
		m.peak = max(m.peak, float64(ks.Peaks[key])/float64(q.Limit))
	}
	m.estimate = elapsed.Seconds() / plan.Total.Seconds
	if other != nil {
		// beside another sender, imcast's share is of the rest of the
		// quota, over its own run
		m.refusals -= int(other.refused.Load())
		mine := float64(int64(ks.Delivered) - other.delivered.Load())
		if pc.calls {
			mine = float64(int64(ks.Accepted) - other.calls.Load())
		}
		m.share = mine / elapsed.Seconds() / (rest * perSecond)
		m.refusing = refusing.last.Sub(refusing.first)
		b.Logf("%s at %s beside a sender of %.0f%%: %.4f of the rest, %d refusals for %.1fs, busiest window %.3f, run %.1fs = %.3f of the estimate",
			pc.name, env.latency, 100*env.other, m.share, m.refusals, m.refusing.Seconds(), m.peak, elapsed.Seconds(), m.estimate)
		return m
	}
	span := ks.Last.Sub(ks.First).Seconds()
	done := float64(ks.Delivered - ks.LastMessages)
	if pc.calls {
		done = float64(ks.Accepted - 1)
	}
	m.share = done / span / perSecond
	b.Logf("%s at %s %v: %d delivered in %.1fs of calls (run %.1fs = %.3f of the estimate): %.4f of the quota, %d refusals, busiest window %.3f of its quota",
		pc.name, env.latency, env.serverFlags, ks.Delivered, span, elapsed.Seconds(), m.estimate, m.share, m.refusals, m.peak)
	return m
}

// otherSender is another job on the same app: it sends calls of pc.perCall
// recipients evenly at a rate of messages (calls, for the legacy API) a
// second, and never adapts.
type otherSender struct {
	cancel                    context.CancelFunc
	done                      chan struct{}
	calls, delivered, refused atomic.Int64
	flying                    atomic.Int64 // calls sent and not yet answered
}

func startOtherSender(b *testing.B, url, kind string, pc pacingCase, rate float64) *otherSender {
	client, err := chatapi.New(chatapi.Config{Host: url, Org: "o", App: "a", Tokens: chatapi.StaticToken("other-token")})
	if err != nil {
		b.Fatal(err)
	}
	k := chatapi.Kind(kind)
	per := pc.perCall
	gap := time.Duration(float64(per) / rate * float64(time.Second))
	if pc.calls {
		per, gap = 1, time.Duration(float64(time.Second)/rate)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &otherSender{cancel: cancel, done: make(chan struct{})}
	body, _ := json.Marshal(map[string]string{"msg": "from the other job"})
	go func() {
		defer close(o.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		next := time.Now()
		for i := 0; ctx.Err() == nil && i < 1_000_000; i++ {
			to := make([]string, per)
			for j := range to {
				to[j] = fmt.Sprintf("o%07d", i*per+j)
			}
			batch := chatapi.Batch{Kind: k, To: to, Message: chatapi.Message{Type: "txt", Body: body}}
			if k.Scoped() {
				batch.Scope = "other-scope"
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				o.calls.Add(1)
				o.flying.Add(1)
				defer o.flying.Add(-1)
				if res, err := client.Send(context.WithoutCancel(ctx), batch); err == nil {
					o.delivered.Add(int64(len(res.IDs)))
				} else if chatapi.Refused(err) {
					o.refused.Add(1)
					o.calls.Add(-1)
				}
			}()
			next = next.Add(gap)
			select {
			case <-time.After(time.Until(next)):
			case <-ctx.Done():
			}
		}
	}()
	return o
}

func (o *otherSender) stop() {
	o.cancel()
	<-o.done
}
