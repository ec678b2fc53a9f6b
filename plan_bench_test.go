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
//
//	IMCAST_PLAN_ROWS=10000000 go test -run '^$' -bench BenchmarkPlanLarge -benchtime 3x .
func BenchmarkPlanLarge(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("IMCAST_PLAN_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("IMCAST_PLAN_ROWS=%q: want a count of rows", v)
		}
		rows = n
	}
	bin := binary(b)
	dir := b.TempDir()
	file := filepath.Join(dir, "users.csv")
	writeUsersCSV(b, file, rows)
	message := filepath.Join(dir, "welcome.json")
	if err := os.WriteFile(message, []byte(`{"msg":"Welcome aboard!","from":"shop"}`), 0o600); err != nil {
		b.Fatal(err)
	}
	var ours, bare, ourRSS, bareRSS []float64
	for b.Loop() {
		secs, rss := measure(b, exec.Command(bin, "plan", "--message", message, file))
		ours, ourRSS = append(ours, float64(rows)/secs), append(ourRSS, rss)
		loop := exec.Command(os.Args[0], "-test.run=^$")
		loop.Env = append(os.Environ(), bareLoopEnv+"="+file)
		secs, rss = measure(b, loop)
		bare, bareRSS = append(bare, float64(rows)/secs), append(bareRSS, rss)
	}
	b.ReportMetric(median(ours), "rows/s")
	b.ReportMetric(median(ourRSS), "peak_MB")
	b.ReportMetric(median(bare), "bare_rows/s")
	b.ReportMetric(median(bareRSS), "bare_peak_MB")
	b.ReportMetric(median(ours)/median(bare), "ratio")
	b.Logf("%d rows: imcast plan %.2f M rows/s, %.0f MB; encoding/csv and a map %.2f M rows/s, %.0f MB; ratio %.2f",
		rows, median(ours)/1e6, median(ourRSS), median(bare)/1e6, median(bareRSS), median(ours)/median(bare))
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
