package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imcast/emulator"
)

// BenchmarkRecall sends a mixed campaign of 100,000 deliveries (users,
// groups, rooms, group and room members) through fake-server, its own
// process (latency 5-60 ms), fast, and recalls it at the default recall
// quota (100 calls/s), the ledger on disk: it reports the recall calls'
// share of that quota over their span, and fails on a quota refusal, a
// message not recalled, or one asked twice; a second recall must make no
// call.
func BenchmarkRecall(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		var rows strings.Builder
		line := func(format string, args ...any) { fmt.Fprintf(&rows, format+"\n", args...) }
		for i := range 90000 {
			line(`{"kind":"users","to":"u%06d","msg":"hi"}`, i)
		}
		ids := 90000
		for i := range 3000 {
			line(`{"kind":"groups","to":"g%05d","msg":"hi"}`, i)
			line(`{"kind":"rooms","to":"r%05d","msg":"hi"}`, i)
		}
		ids += 6000
		for i := range 2000 {
			line(`{"kind":"group_members","scope":"G%03d","to":"m%05d","msg":"hi"}`, i/20, i)
			line(`{"kind":"room_members","scope":"R%03d","to":"m%05d","msg":"hi"}`, i/20, i)
		}
		ids += 200
		campaign := filepath.Join(dir, "spring.jsonl")
		if err := os.WriteFile(campaign, []byte(rows.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		bin := binary(b)
		url, stats := startFakeServer(b, bin, "--quota-scale", "100", "--recall-quota-scale", "1", "--latency", "5ms-60ms")
		state := filepath.Join(dir, "l.db")
		imcast := func(args ...string) (string, error) {
			cmd := exec.Command(bin, append(args[:1:1], append([]string{"--host", url, "--org", "o", "--app", "a", "--state", state, "--quiet"}, args[1:]...)...)...)
			cmd.Env = append(os.Environ(), "EASEMOB_TOKEN=bench-token")
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := imcast("run", "--quota-scale", "100", campaign); err != nil {
			b.Fatalf("run: %v\n%s", err, out)
		}
		if out, err := imcast("recall", "--campaign", "spring"); err != nil {
			b.Fatalf("recall: %v\n%s", err, out)
		}
		st := stats()
		k := st.Kinds[emulator.KindBatchRecall]
		if st.Recalled != ids || st.RecallRepeats != 0 || k.Responses[429] != 0 {
			b.Fatalf("%d of %d recalled, %d asked again, %d refused (429)", st.Recalled, ids, st.RecallRepeats, k.Responses[429])
		}
		share := float64(k.Calls-1) / k.Last.Sub(k.First).Seconds() / 100
		if out, err := imcast("recall", "--campaign", "spring"); err != nil || stats().Kinds[emulator.KindBatchRecall].Calls != k.Calls {
			b.Fatalf("a second recall: %v, %d calls more\n%s", err, stats().Kinds[emulator.KindBatchRecall].Calls-k.Calls, out)
		}
		b.ReportMetric(share, "quota_share")
		b.ReportMetric(float64(k.Calls), "calls")
		b.ReportMetric(k.Last.Sub(k.First).Seconds(), "span_s")
	}
}
