package main

import (
	"bytes"
	"context"
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
