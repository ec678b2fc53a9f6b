package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imcast/emulator"
)

// TestMetricsMidRun scrapes a run's Prometheus metrics while it sends 80
// groups at 20 a second to a server refusing a fifth of the calls (403):
// the deliveries so far, the calls, the refusals by status, and the pace,
// quota and margin in force are there before the run ends.
func TestMetricsMidRun(t *testing.T) {
	dir := t.TempDir()
	var rows strings.Builder
	for i := range 80 {
		fmt.Fprintf(&rows, `{"kind":"groups","to":"g%03d","msg":"hi"}`+"\n", i)
	}
	campaign := filepath.Join(dir, "g.jsonl")
	if err := os.WriteFile(campaign, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startFake(t, emulator.Config{Faults: emulator.Faults{QuotaForbidden: 0.2}, Seed: 2})
	t.Setenv("EASEMOB_TOKEN", "test-token")
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"imcast", "run", "--host", srv.URL, "--org", "o", "--app", "a",
			"--state", filepath.Join(dir, "l.db"), "--metrics-addr", "127.0.0.1:0", campaign}, &out, &errb)
	}()
	at := regexp.MustCompile(`metrics at (http://\S+/metrics)`)
	var url string
	for deadline := time.Now().Add(30 * time.Second); url == ""; time.Sleep(10 * time.Millisecond) {
		if m := at.FindStringSubmatch(errb.String()); m != nil {
			url = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics address in the start line:\n%s", errb.String())
		}
	}
	sent := regexp.MustCompile(`(?m)^imcast_deliveries_total\{kind="groups",state="sent"\} (\d+)$`)
	var page string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("the run ended (exit %d) before its metrics showed sent deliveries and a refusal:\n%s", code, page)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sent deliveries and refusals in the metrics in 30 s:\n%s", page)
		}
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page = string(b)
		if m := sent.FindStringSubmatch(page); m != nil && m[1] != "0" && m[1] != "80" && strings.Contains(page, `imcast_refusals_total{kind="groups",status="403"}`) {
			break
		}
	}
	for _, want := range []string{
		`imcast_deliveries_to_send{kind="groups"} 80`,
		`imcast_calls_total{kind="groups"}`,
		`imcast_retries_total{kind="groups"}`,
		`imcast_quota{kind="groups",limit="messages",window_seconds="1"} 20`,
		`imcast_quota{kind="groups",limit="calls",window_seconds="1"} 20`,
		`imcast_pace_ratio{kind="groups"}`,
		`imcast_pacing_margin_seconds{kind="groups"} 0.0`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("metrics lack %q:\n%s", want, page)
		}
	}
	if code := <-done; code != exitOK {
		t.Errorf("run: exit %d\n%s", code, errb.String())
	}
}
