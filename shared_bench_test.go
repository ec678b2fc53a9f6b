package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"imcast/emulator"
	"imcast/redistest"
)

// sharedProcesses runs procs `imcast run` processes at once, each with its
// own campaign (groups and rooms) and ledger, against one fake-server
// process (latency 5-60 ms, quotas times scale), through one Redis when
// redisURL is set. The campaigns together take secs at the quota. It
// returns the server's stats.
func sharedProcesses(t testing.TB, redisURL string, procs int, scale float64, secs float64) emulator.Stats {
	t.Helper()
	bin := binary(t)
	sc := strconv.FormatFloat(scale, 'f', -1, 64)
	url, stats := startFakeServer(t, bin, "--quota-scale", sc, "--latency", "5ms-60ms")
	groups := int(20 * scale * secs / float64(procs))
	rooms := int(100 * scale * secs / float64(procs))
	var wg sync.WaitGroup
	outs := make([]string, procs)
	errs := make([]error, procs)
	for p := range procs {
		dir := t.TempDir()
		var rows strings.Builder
		for i := range groups {
			fmt.Fprintf(&rows, `{"kind":"groups","to":"g%d-%06d","msg":"hi"}`+"\n", p, i)
		}
		for i := range rooms {
			fmt.Fprintf(&rows, `{"kind":"rooms","to":"r%d-%06d","msg":"hi"}`+"\n", p, i)
		}
		campaign := filepath.Join(dir, fmt.Sprintf("c%d.jsonl", p))
		if err := os.WriteFile(campaign, []byte(rows.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"run", "--host", url, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "l.db"),
			"--quota-scale", sc, "--quiet"}
		if redisURL != "" {
			args = append(args, "--redis", redisURL)
		}
		args = append(args, campaign)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "EASEMOB_TOKEN=t")
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cmd.CombinedOutput()
			outs[p], errs[p] = string(out), err
		}()
	}
	wg.Wait()
	for p := range procs {
		if errs[p] != nil && (redisURL != "" || exitCodeOf(errs[p]) != exitIncomplete) {
			t.Fatalf("run %d: %v\n%s", p, errs[p], outs[p])
		}
	}
	return stats()
}

// refusals counts the server's quota refusals of a kind.
func refusals(st emulator.Stats, kind string) int {
	ks := st.Kinds[kind]
	return ks.Responses[403] + ks.Responses[429]
}

// TestThreeProcessesShareOneQuota checks the headline of shared quotas:
// three runs, separate processes, through one Redis: no quota refusal at
// all, every delivery once; the same three without it trip the quota.
func TestThreeProcessesShareOneQuota(t *testing.T) {
	srv := redistest.Start(t)
	st := sharedProcesses(t, srv.URL(), 3, 5, 2)
	if n := refusals(st, "groups") + refusals(st, "rooms"); n != 0 || st.Duplicates != 0 {
		t.Errorf("through one Redis: %d refusals, %d duplicates; want none", n, st.Duplicates)
	}
	alone := sharedProcesses(t, "", 3, 5, 2)
	if n := refusals(alone, "groups") + refusals(alone, "rooms"); n == 0 {
		t.Errorf("three runs pacing alone were never refused: the test shows nothing")
	}
	b, _ := json.Marshal(map[string]any{"shared": st.Kinds["groups"].Peaks, "alone": alone.Kinds["groups"].Peaks})
	t.Logf("redis real=%v; groups peaks %s", srv.Real, b)
}

// BenchmarkThreeProcessesShare reports each endpoint's combined share of
// its message quota, over the span of its calls at the server, for three
// processes through one Redis: IMCAST_SHARED_SCALE (default 1; 10 for the
// issue's figure) scales the quotas, IMCAST_SHARED_SECONDS (default 20)
// the campaigns.
func BenchmarkThreeProcessesShare(b *testing.B) {
	scale, secs := 1.0, 20.0
	if v := os.Getenv("IMCAST_SHARED_SCALE"); v != "" {
		scale, _ = strconv.ParseFloat(v, 64)
	}
	if v := os.Getenv("IMCAST_SHARED_SECONDS"); v != "" {
		secs, _ = strconv.ParseFloat(v, 64)
	}
	srv := redistest.Start(b)
	for b.Loop() {
		st := sharedProcesses(b, srv.URL(), 3, scale, secs)
		for kind, share := range shares(b, st, scale) {
			b.ReportMetric(share, kind+"_share")
			b.ReportMetric(float64(refusals(st, kind)), kind+"_refusals")
		}
	}
}

// shares is each endpoint's share of its message quota (times scale),
// over the span of its calls at the server; it fails b on a duplicate.
func shares(b *testing.B, st emulator.Stats, scale float64) map[string]float64 {
	if st.Duplicates != 0 {
		b.Fatalf("%d duplicates", st.Duplicates)
	}
	out := map[string]float64{}
	for kind, perSec := range map[string]float64{"groups": 20 * scale, "rooms": 100 * scale} {
		ks := st.Kinds[kind]
		out[kind] = float64(ks.Delivered-ks.LastMessages) / ks.Last.Sub(ks.First).Seconds() / perSec
	}
	return out
}

// BenchmarkOneProcessShared runs one process alone, through Redis and
// without it, one after the other in each round, and reports each share
// and their ratio (shared over alone) per endpoint.
func BenchmarkOneProcessShared(b *testing.B) {
	secs := 20.0
	if v := os.Getenv("IMCAST_SHARED_SECONDS"); v != "" {
		secs, _ = strconv.ParseFloat(v, 64)
	}
	srv := redistest.Start(b)
	for b.Loop() {
		shared := shares(b, sharedProcesses(b, srv.URL(), 1, 1, secs), 1)
		alone := shares(b, sharedProcesses(b, "", 1, 1, secs), 1)
		for kind := range shared {
			b.ReportMetric(shared[kind], kind+"_shared")
			b.ReportMetric(alone[kind], kind+"_alone")
			b.ReportMetric(shared[kind]/alone[kind], kind+"_ratio")
		}
	}
}
