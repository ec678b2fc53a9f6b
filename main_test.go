package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from the CLI's goroutine while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	code = run(context.Background(), append([]string{"imcast"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestFakeServerServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"imcast", "fake-server", "--addr", "127.0.0.1:0", "--quota-scale", "2"}, &out, &errb)
	}()
	listening := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var url string
	for deadline := time.Now().Add(5 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listening.FindStringSubmatch(errb.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("fake-server printed no address; stderr: %q", errb.String())
	}
	resp, err := http.Get(url + "/_emulator/stats")
	if err != nil {
		t.Fatalf("GET stats: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET stats: got status %d, want 200", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit code after cancel: got %d, want %d", code, exitOK)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fake-server did not stop after its context was cancelled")
	}
}

func TestFakeServerRefusesNonLoopback(t *testing.T) {
	code, _, stderr := runCLI(t, "fake-server", "--addr", "0.0.0.0:0")
	if code != exitFatal {
		t.Errorf("exit code: got %d, want %d", code, exitFatal)
	}
	if !strings.Contains(stderr, "loopback") {
		t.Errorf("stderr %q does not say the address must be loopback", stderr)
	}
}

func TestPlanCommand(t *testing.T) {
	t.Run("valid campaign", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "plan", "samples/mixed.jsonl")
		if code != exitOK {
			t.Fatalf("exit code %d, want 0; stderr: %s", code, stderr)
		}
		for _, kind := range []string{"users", "groups", "rooms", "group_members", "room_members", "total"} {
			if !strings.Contains(stdout, kind) {
				t.Errorf("plan does not list %s:\n%s", kind, stdout)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "plan", "--json", "--message", "samples/welcome.json", "samples/ids.csv")
		if code != exitOK {
			t.Fatalf("exit code %d, want 0; stderr: %s", code, stderr)
		}
		var plan struct {
			Total struct {
				Recipients       int64   `json:"recipients"`
				Batches          int64   `json:"batches"`
				EstimatedSeconds float64 `json:"estimated_seconds"`
			} `json:"total"`
		}
		if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
			t.Fatalf("plan --json: %v\n%s", err, stdout)
		}
		if plan.Total.Recipients != 5 || plan.Total.Batches != 1 || plan.Total.EstimatedSeconds != 0 {
			t.Errorf("got %+v, want 5 recipients, 1 batch, 0 s: one call goes at once", plan.Total)
		}
	})
	t.Run("invalid campaign exits 2 and names the line", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "plan", "samples/ids.csv")
		if code != exitInvalid {
			t.Fatalf("exit code %d, want %d", code, exitInvalid)
		}
		if stdout != "" {
			t.Errorf("stdout: got %q, want nothing", stdout)
		}
		if !strings.Contains(stderr, "samples/ids.csv:2: a txt message needs msg (or body.msg)") {
			t.Errorf("stderr does not name the file and line:\n%s", stderr)
		}
	})
}

func TestParseLatency(t *testing.T) {
	tests := []struct {
		in           string
		base, jitter time.Duration
		bad          bool
	}{
		{in: ""}, {in: "20ms", base: 20 * time.Millisecond},
		{in: "5ms-60ms", base: 5 * time.Millisecond, jitter: 55 * time.Millisecond},
		{in: "60ms-5ms", bad: true}, {in: "soon", bad: true}, {in: "5ms-", bad: true},
	}
	for _, tt := range tests {
		base, jitter, err := parseLatency(tt.in)
		if (err != nil) != tt.bad || base != tt.base || jitter != tt.jitter {
			t.Errorf("parseLatency(%q): got %v, %v, %v; want %v, %v, error %v", tt.in, base, jitter, err, tt.base, tt.jitter, tt.bad)
		}
	}
}
