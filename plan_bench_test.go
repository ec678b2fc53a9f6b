package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPlanLarge plans a generated users CSV of IMCAST_PLAN_ROWS rows
// (default 1,000,000; the figure is 10,000,000) with imcast plan,
// a process of its own, and beside it, in the same run, the simplest
// program that does the same work: encoding/csv into a Go map of the
// recipients. It reports both rates, their ratio and each peak RSS.
// IMCAST_PLAN_BARE=0 leaves the bare loop out (at 100 million rows its map
// takes gigabytes).
//
//	IMCAST_PLAN_ROWS=10000000 go test -run '^$' -bench BenchmarkPlanLarge -benchtime 3x .
func BenchmarkPlanLarge(b *testing.B) {
	bin, rows, file, message := largeCampaign(b)
	var ours, bare, ourRSS, bareRSS []float64
	for b.Loop() {
		secs, rss := measure(b, exec.Command(bin, "plan", "--message", message, file))
		ours, ourRSS = append(ours, float64(rows)/secs), append(ourRSS, rss)
		if os.Getenv("IMCAST_PLAN_BARE") == "0" {
			continue
		}
		loop := exec.Command(os.Args[0], "-test.run=^$")
		loop.Env = append(os.Environ(), bareLoopEnv+"="+file)
		secs, rss = measure(b, loop)
		bare, bareRSS = append(bare, float64(rows)/secs), append(bareRSS, rss)
	}
	b.ReportMetric(median(ours), "rows/s")
	b.ReportMetric(median(ourRSS), "peak_MB")
	if len(bare) == 0 {
		b.Logf("%d rows: imcast plan %.2f M rows/s (%.1f s), %.0f MB", rows, median(ours)/1e6, float64(rows)/median(ours), median(ourRSS))
		return
	}
	b.ReportMetric(median(bare), "bare_rows/s")
	b.ReportMetric(median(bareRSS), "bare_peak_MB")
	b.ReportMetric(median(ours)/median(bare), "ratio")
	b.Logf("%d rows: imcast plan %.2f M rows/s, %.0f MB; encoding/csv and a map %.2f M rows/s, %.0f MB; ratio %.2f",
		rows, median(ours)/1e6, median(ourRSS), median(bare)/1e6, median(bareRSS), median(ours)/median(bare))
}

// largeCampaign builds imcast and writes a users CSV of IMCAST_PLAN_ROWS
// rows (1,000,000 if unset) and a --message file beside it.
func largeCampaign(b *testing.B) (bin string, rows int, file, message string) {
	rows = 1_000_000
	if v := os.Getenv("IMCAST_PLAN_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("IMCAST_PLAN_ROWS=%q: want a count of rows", v)
		}
		rows = n
	}
	bin = binary(b)
	dir := b.TempDir()
	file = filepath.Join(dir, "users.csv")
	writeUsersCSV(b, file, rows)
	message = filepath.Join(dir, "welcome.json")
	if err := os.WriteFile(message, []byte(`{"msg":"Welcome aboard!","from":"shop"}`), 0o600); err != nil {
		b.Fatal(err)
	}
	return bin, rows, file, message
}

// BenchmarkRunLargeToFirstCall runs imcast run, a process of its own with
// a fresh ledger, on a generated users CSV of IMCAST_PLAN_ROWS rows
// against fake-server, and stops it (SIGTERM) once the server has counted
// its first call: the time from its start to that call, and its peak RSS
// up to then.
//
//	IMCAST_PLAN_ROWS=100000000 go test -run '^$' -bench BenchmarkRunLargeToFirstCall -benchtime 1x -timeout 60m .
func BenchmarkRunLargeToFirstCall(b *testing.B) {
	bin, rows, file, message := largeCampaign(b)
	dir := filepath.Dir(file)
	url, stats := startFakeServer(b, bin)
	var secs, rss []float64
	for i := 0; b.Loop(); i++ {
		run := exec.Command(bin, "run", "--host", url, "--org", "o", "--app", "a", "--quiet",
			"--state", filepath.Join(dir, fmt.Sprintf("ledger%d.db", i)), "--message", message, file)
		run.Env = append(os.Environ(), "EASEMOB_TOKEN=bench-token")
		before := stats().Calls
		start := time.Now()
		if err := run.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- run.Wait() }()
		tick := time.NewTicker(20 * time.Millisecond)
		var first time.Duration
		for first == 0 {
			select {
			case err := <-exited:
				b.Fatalf("run ended before its first call: %v", err)
			case <-tick.C:
				if stats().Calls > before {
					first = time.Since(start)
				} else if time.Since(start) > 50*time.Minute {
					b.Fatal("no call in 50 minutes")
				}
			}
		}
		tick.Stop()
		run.Process.Signal(syscall.SIGTERM)
		<-exited
		ru, ok := run.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			b.Fatal("no resource usage on this system")
		}
		secs, rss = append(secs, first.Seconds()), append(rss, float64(ru.Maxrss)/1024)
	}
	b.ReportMetric(median(secs), "s-to-first-call")
	b.ReportMetric(median(rss), "peak_MB")
	b.Logf("%d rows: first call %.1f s after the start, peak RSS %.0f MB", rows, median(secs), median(rss))
}

// measure runs cmd and returns its wall time in seconds and its peak RSS
// in MB.
func measure(b *testing.B, cmd *exec.Cmd) (float64, float64) {
	b.Helper()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	secs := time.Since(start).Seconds()
	if err != nil {
		b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no resource usage on this system")
	}
	return secs, float64(ru.Maxrss) / 1024 // Linux gives KB
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

func writeUsersCSV(b *testing.B, path string, rows int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("to\n")
	for i := range rows {
		fmt.Fprintf(w, "user%08d\n", i)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		b.Fatal(err)
	}
}

// bareLoopEnv names the CSV file the test binary, started with it, reads
// as the bare loop does, then exits.
const bareLoopEnv = "IMCAST_BARE_LOOP_CSV"

// bareLoop is the simplest program that plans a users CSV: encoding/csv
// into a Go map of the recipients.
func bareLoop(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return err
	}
	seen := map[string]struct{}{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		seen[rec[0]] = struct{}{}
	}
	fmt.Println(len(seen), "recipients")
	return nil
}
