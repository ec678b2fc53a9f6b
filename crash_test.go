package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"imcast/checkpoint"
	"imcast/emulator"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary builds imcast once for the tests that run it as a process.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imcast-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "imcast")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build imcast: %v", buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	if path := os.Getenv(bareLoopEnv); path != "" {
		// started by BenchmarkPlanLarge to be the bare loop
		if err := bareLoop(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// startRun starts the binary on a campaign against srv.
func startRun(t *testing.T, srv *emulator.Running, state, campaign string, extra ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", state,
		"--quota-scale", "5", "--quiet"}, extra...)
	return startBinary(t, append(args, campaign)...)
}

// startBinary starts the binary with args and a token, its output kept
// in its Stdout (a *strings.Builder); it is killed when t ends if it is
// still running.
func startBinary(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "EASEMOB_TOKEN=crash-test-token")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestCrashAndResume kills a run with SIGKILL at many moments and runs it
// again each time: in the end no recipient got a message twice, every one
// is sent or uncertain, and the uncertain ones are exactly those whose
// batch was in flight at a kill.
func TestCrashAndResume(t *testing.T) {
	dir := t.TempDir()
	campaign, all := testCampaign(t, dir, 8000)
	srv := startFake(t, emulator.Config{QuotaScale: 5, Faults: emulator.Faults{Latency: 150 * time.Millisecond}})
	state := filepath.Join(dir, "ledger.db")
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for i := range 10 {
		cmd := startRun(t, srv, state, campaign)
		// Each kill lands after a few calls of this run have reached the
		// server; most while a call is on the wire, the moment that
		// matters, some wherever they fall.
		after := srv.Stats().Requests + 1 + rng.IntN(4)
		waitUntil(t, "the run's calls to reach the server", func() bool { return srv.Stats().Requests >= after })
		if i%3 != 0 {
			waitUntil(t, "a call on the wire", func() bool { return callOnWire(srv) })
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			kills++
		} else if code := exitCodeOf(err); code != exitOK && code != exitIncomplete {
			t.Fatalf("run %d ended by itself with exit %d: %s", i, code, cmd.Stdout)
		}
	}
	if kills != 10 {
		t.Fatalf("only %d of 10 runs were killed mid-way; the campaign is too short for the test", kills)
	}
	cmd := startRun(t, srv, state, campaign)
	err := cmd.Wait()
	code := exitCodeOf(err)
	if code != exitOK && code != exitIncomplete {
		t.Fatalf("final run: exit %d: %s", code, cmd.Stdout)
	}

	if d := srv.Stats().Duplicates; d != 0 {
		t.Fatalf("the emulator counted %d duplicates", d)
	}
	// Which deliveries did a kill leave in flight? The ledger marked them
	// uncertain with InterruptedError when the next run started.
	store, err := checkpoint.Open(state, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	interrupted := map[delivery]bool{}
	err = store.Campaign("mixed").Records(func(r checkpoint.Record) error {
		if r.Error == checkpoint.InterruptedError {
			for _, to := range r.To {
				interrupted[delivery{r.Kind, r.Scope, to}] = true
			}
		}
		return nil
	})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	rows := reportRows(t, state)
	uncertain := 0
	for _, d := range all {
		got := srv.Delivered(d.kind, d.scope, d.to)
		switch state := rows[d]["state"]; {
		case state == "sent" && got == 1:
		case state == "uncertain" && interrupted[d] && got <= 1:
			uncertain++
		default:
			t.Errorf("%v: state %q, delivered %d times, interrupted in flight %v", d, state, got, interrupted[d])
		}
	}
	if uncertain != len(interrupted) {
		t.Errorf("%d deliveries uncertain, %d were in flight at a kill", uncertain, len(interrupted))
	}
	if wantCode := map[bool]int{true: exitIncomplete, false: exitOK}[uncertain > 0]; code != wantCode {
		t.Errorf("final run: exit %d, want %d", code, wantCode)
	}
	t.Logf("%d kills, %d deliveries, %d left uncertain", kills, len(all), uncertain)
}

// waitUntil waits for cond, checked every 2 ms, for at most a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in a minute", what)
		}
	}
}

// TestSecondSignalExitsAtOnce interrupts a run whose call never gets an
// answer: the first SIGINT says the run stops after the calls in flight
// and waits for that call, the second exits at once (130), saying so.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	dir := t.TempDir()
	campaign, _ := testCampaign(t, dir, 300)
	srv := startFake(t, emulator.Config{QuotaScale: 5, Faults: emulator.Faults{StallAfter: 1}})
	cmd := exec.Command(binary(t), "run", "--host", srv.URL, "--org", "o", "--app", "a", "--state", filepath.Join(dir, "ledger.db"),
		"--quiet", "--stall-timeout", "10m", campaign)
	cmd.Env = append(os.Environ(), "EASEMOB_TOKEN=crash-test-token")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	waitUntil(t, "a call on the wire", func() bool { return callOnWire(srv) })
	cmd.Process.Signal(syscall.SIGINT)
	waitUntil(t, "word of the first interrupt", func() bool { return strings.Contains(out.String(), "interrupt again") })
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		done <- err
		if code := exitCodeOf(err); code != exitInterrupted {
			t.Errorf("exit %d after two SIGINTs, want %d", code, exitInterrupted)
		}
	case <-time.After(time.Minute):
		t.Fatal("the run did not exit a minute after a second SIGINT")
	}
	if !strings.Contains(out.String(), "interrupted again") {
		t.Errorf("output does not say it exits at once: %q", out.String())
	}
}

// callOnWire reports whether the emulator holds a call it has not answered.
func callOnWire(srv *emulator.Running) bool {
	s := srv.Stats()
	answered := 0
	for _, n := range s.Responses {
		answered += n
	}
	return s.Requests > answered
}

// TestInterruptFinishesCallsInFlight sends SIGINT mid-run: the run stops,
// records its calls in flight, exits 130, and the next run finishes the
// campaign with nothing uncertain and nothing twice.
func TestInterruptFinishesCallsInFlight(t *testing.T) {
	dir := t.TempDir()
	campaign, all := testCampaign(t, dir, 3000)
	srv := startFake(t, emulator.Config{QuotaScale: 5, Faults: emulator.Faults{Latency: 100 * time.Millisecond}})
	state := filepath.Join(dir, "ledger.db")
	cmd := startRun(t, srv, state, campaign)
	// some calls answered, and one on the wire
	waitUntil(t, "answered calls and one in flight", func() bool {
		s := srv.Stats()
		answered := 0
		for _, n := range s.Responses {
			answered += n
		}
		return answered >= 3 && s.Requests > answered
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCodeOf(cmd.Wait()); code != exitInterrupted {
		t.Fatalf("exit %d after SIGINT, want %d: %s", code, exitInterrupted, cmd.Stdout)
	}
	rows := reportRows(t, state)
	if len(rows) == 0 {
		t.Fatal("the interrupted run recorded nothing; interrupt later")
	}
	for d, row := range rows {
		if row["state"] != "sent" && row["state"] != "pending" {
			t.Errorf("%v: %s after an interrupt (%s), want sent or pending", d, row["state"], row["error"])
		}
	}
	cmd = startRun(t, srv, state, campaign)
	if code := exitCodeOf(cmd.Wait()); code != exitOK {
		t.Fatalf("second run: exit %d: %s", code, cmd.Stdout)
	}
	if d := srv.Stats().Duplicates; d != 0 {
		t.Fatalf("the emulator counted %d duplicates", d)
	}
	for _, d := range all {
		if got := srv.Delivered(d.kind, d.scope, d.to); got != 1 {
			t.Errorf("%v delivered %d times, want 1", d, got)
		}
	}
}

// TestSecondProcessOnOneLedgerFailsAtOnce holds the ledger with a run and
// starts another on it.
func TestSecondProcessOnOneLedgerFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	campaign, _ := testCampaign(t, dir, 3000)
	srv := startFake(t, emulator.Config{QuotaScale: 5})
	state := filepath.Join(dir, "ledger.db")
	first := startRun(t, srv, state, campaign)
	// a call on the wire: the run holds the ledger
	waitUntil(t, "the first run's first call", func() bool { return srv.Stats().Requests > 0 })
	start := time.Now()
	second := startRun(t, srv, state, campaign)
	err := second.Wait()
	if code := exitCodeOf(err); code != exitFatal {
		t.Fatalf("second process: exit %d, want %d: %s", code, exitFatal, second.Stdout)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("second process took %v to give up; it must fail at once", took)
	}
	if out := second.Stdout.(*strings.Builder).String(); !strings.Contains(out, "in use by another imcast process") {
		t.Errorf("second process does not say why: %q", out)
	}
	first.Process.Signal(syscall.SIGINT)
	first.Wait()
}
