package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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
// calls, the refusals, and the peak of the busiest server window against
// its quota; IMCAST_PACING_LATENCY sets the latency ("20ms", "5ms-60ms").
func BenchmarkPacingStrict(b *testing.B) {
	seconds := 40.0
	if v := os.Getenv("IMCAST_PACING_SECONDS"); v != "" {
		seconds, _ = strconv.ParseFloat(v, 64)
	}
	latency := "20ms"
	if v := os.Getenv("IMCAST_PACING_LATENCY"); v != "" {
		latency = v
	}
	bin := binary(b)
	for _, pc := range pacingCases {
		b.Run(pc.name, func(b *testing.B) {
			for range b.N {
				share, refusals, peak := pacingRun(b, bin, pc, seconds, latency)
				b.ReportMetric(share, "share")
				b.ReportMetric(float64(refusals), "refusals")
				b.ReportMetric(peak, "peak/quota")
			}
		})
	}
}

func pacingRun(b *testing.B, bin string, pc pacingCase, seconds float64, latency string) (share float64, refusals int, peak float64) {
	dir := b.TempDir()
	scale := strconv.FormatFloat(pc.scale, 'f', -1, 64)
	srv := exec.Command(bin, "fake-server", "--addr", "127.0.0.1:0", "--quota-scale", scale, "--latency", latency)
	stderr, err := srv.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
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
	lim := stats().Limits[pc.kind]
	var quota emulator.Quota
	for _, q := range lim.Quotas {
		if (q.Unit == "calls") == pc.calls {
			quota = q
		}
	}
	perSecond := float64(quota.Limit) / quota.Span.Seconds()
	total := int(perSecond * seconds)
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
	run := exec.Command(bin, "run", "--host", url, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "ledger.db"),
		"--quota-scale", scale, "--workers", "4", "--quiet", campaign)
	run.Env = append(os.Environ(), "EASEMOB_TOKEN=bench-token")
	start := time.Now()
	if out, err := run.CombinedOutput(); err != nil {
		b.Fatalf("run: %v\n%s", err, out)
	}
	elapsed := time.Since(start)
	st := stats()
	ks := st.Kinds[pc.kind]
	span := ks.Last.Sub(ks.First).Seconds()
	done := float64(ks.Delivered - ks.LastMessages)
	if pc.calls {
		done = float64(ks.Accepted - 1)
	}
	share = done / span / perSecond
	refusals = ks.Responses[403] + ks.Responses[429] + ks.Responses[503]
	for _, q := range lim.Quotas {
		key := q.Unit + "/" + q.Span.String()
		peak = max(peak, float64(ks.Peaks[key])/float64(q.Limit))
	}
	b.Logf("%s at %s: %d delivered in %.1fs of calls (run %.1fs): %.4f of the quota, %d refusals, busiest window %.3f of its quota",
		pc.name, latency, ks.Delivered, span, elapsed.Seconds(), share, refusals, peak)
	return share, refusals, peak
}
