package job

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/emulator"
	"imcast/planner"
	"imcast/redistest"
)

func sharedFor(t testing.TB, srv *redistest.Server) *sharedWindows {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return newSharedWindows(rdb, "http://127.0.0.1:1/o/a")
}

// TestSharedWindowsHoldAcrossProcesses has three pacers, each with its own
// connection, book, wait and stamp calls against one Redis as three
// processes would: no sliding window of either limit ever holds more than
// its quota, and together they reach close to it.
func TestSharedWindowsHoldAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	const (
		span      = 200 * time.Millisecond
		callLimit = 20  // calls a window
		msgLimit  = 100 // messages a window
		perCall   = 10  // messages a call
		each      = 30  // calls a pacer
	)
	limits := []sharedLimit{{name: "calls", limit: callLimit, span: span, amount: 1}, {name: "messages", limit: msgLimit, span: span, amount: perCall}}
	spacing := span * perCall / msgLimit
	var mu sync.Mutex
	var stamps []time.Time
	var ids atomic.Uint64
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		sw := sharedFor(t, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for range each {
				id := ids.Add(1)
				at, err := sw.book(ctx, "users", id, limits, spacing, time.Time{})
				if err != nil {
					errs <- err
					return
				}
				for {
					time.Sleep(time.Until(at))
					ok, when, err := sw.stamp(ctx, "users", id, limits)
					if err != nil {
						errs <- err
						return
					}
					if ok {
						mu.Lock()
						stamps = append(stamps, when)
						mu.Unlock()
						break
					}
					at = when
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.SortFunc(stamps, func(a, b time.Time) int { return a.Compare(b) })
	// the clocks of the three connections are mapped from the server's
	// within a fraction of a loopback round trip
	const slack = time.Millisecond
	for i, s := range stamps {
		n := 0
		for j := i; j >= 0 && stamps[j].After(s.Add(-(span - slack))); j-- {
			n++
		}
		if n > callLimit || n*perCall > msgLimit {
			t.Fatalf("the window ending at stamp %d holds %d calls (%d messages); quotas %d and %d", i, n, n*perCall, callLimit, msgLimit)
		}
	}
	took := stamps[len(stamps)-1].Sub(stamps[0])
	// messages bind, paced evenly: a call every spacing. The stamps land
	// a little after their bookings (the sleep, the round trip), and a
	// booking counts them where they land, which costs some of the pace;
	// run's pacer is to win that back with its lead and margin.
	ideal := time.Duration(len(stamps)-1) * spacing
	if share := ideal.Seconds() / took.Seconds(); share < 0.75 {
		t.Errorf("%d calls took %v, %.2f of the even pace the quota allows (want at least 0.75)", len(stamps), took, share)
	}
	t.Logf("redis real=%v: %d calls in %v", srv.Real, len(stamps), took)
}

// TestSharedCancelGivesTheSlotBack checks that a cancelled booking no
// longer counts, and that a stamp with no room says when to try again.
func TestSharedCancelGivesTheSlotBack(t *testing.T) {
	srv := redistest.Start(t)
	sw := sharedFor(t, srv)
	ctx := context.Background()
	limits := []sharedLimit{{name: "calls", limit: 1, span: time.Hour, amount: 1}}
	first, err := sw.book(ctx, "groups", 1, limits, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := sw.book(ctx, "groups", 2, limits, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Sub(first) < 59*time.Minute {
		t.Fatalf("second booking %v after the first, want the window's hour", second.Sub(first))
	}
	if ok, retry, err := sw.stamp(ctx, "groups", 2, limits); err != nil || ok || retry.Sub(first) < 59*time.Minute {
		t.Fatalf("stamp of the second now: ok %v, retry in %v (%v); want refused until the hour is over", ok, retry.Sub(first), err)
	}
	if err := sw.cancel(ctx, "groups", 1, limits); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := sw.stamp(ctx, "groups", 2, limits); err != nil || !ok {
		t.Fatalf("stamp after the first was cancelled: ok %v (%v), want counted", ok, err)
	}
}

// BenchmarkSharedBookings measures bookings and stamps through Redis on
// loopback, one after the other from one connection.
func BenchmarkSharedBookings(b *testing.B) {
	srv := redistest.Start(b)
	sw := sharedFor(b, srv)
	ctx := context.Background()
	limits := []sharedLimit{{name: "calls", limit: 1 << 30, span: time.Second, amount: 1}, {name: "messages", limit: 1 << 30, span: time.Minute, amount: 100}}
	i := uint64(0)
	for b.Loop() {
		i++
		if _, err := sw.book(ctx, fmt.Sprint("e", i%4), i, limits, 0, time.Time{}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := sw.stamp(ctx, fmt.Sprint("e", i%4), i, limits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bookings/s")
}

// TestRunsShareOneQuota runs two campaigns at once, each with its own
// ledger, against one app of the emulator: paced through one Redis, the
// server refuses none of their calls and their sum stays in the quota;
// each pacing alone, they trip it (so the test tests something).
func TestRunsShareOneQuota(t *testing.T) {
	srv := redistest.Start(t)
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			emu, err := emulator.Listen("127.0.0.1:0", emulator.Config{QuotaScale: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer emu.Close()
			client, err := chatapi.New(chatapi.Config{Host: emu.URL, Org: "o", App: "a", Tokens: chatapi.StaticToken("t")})
			if err != nil {
				t.Fatal(err)
			}
			quotas, _ := chatapi.NewQuotas(2, nil)
			var wg sync.WaitGroup
			errs := make(chan error, 2)
			for run := range 2 {
				dir := t.TempDir()
				var rows strings.Builder
				for i := range 300 {
					fmt.Fprintf(&rows, `{"kind":"rooms","to":"r%d-%04d","msg":"hi"}`+"\n", run, i)
				}
				path := filepath.Join(dir, "c.jsonl")
				if err := os.WriteFile(path, []byte(rows.String()), 0o600); err != nil {
					t.Fatal(err)
				}
				store, err := checkpoint.Open(filepath.Join(dir, "ledger.db"), checkpoint.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer store.Close()
				camp, err := planner.Open(planner.Options{Files: []string{path}})
				if err != nil {
					t.Fatal(err)
				}
				cfg := CampaignConfig{Config: Config{Quotas: quotas, Campaign: "c", Named: true}}
				if shared {
					rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
					defer rdb.Close()
					cfg.Shared = NewSharedQuota(rdb, client.BaseURL())
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					res, err := RunCampaign(ctx, camp, store, client, cfg)
					if err == nil && !res.Complete() {
						err = fmt.Errorf("run %d incomplete", run)
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			st := emu.Stats().Kinds["rooms"]
			refused := st.Responses[403] + st.Responses[429]
			if st.Delivered != 600 || emu.Stats().Duplicates != 0 {
				t.Errorf("%d delivered, %d duplicates; want 600 and none", st.Delivered, emu.Stats().Duplicates)
			}
			switch {
			case shared && refused != 0:
				t.Errorf("through one Redis: %d refusals, want none", refused)
			case !shared && refused == 0:
				t.Errorf("each pacing alone: no refusal; the two runs never overran the quota, so the shared case shows nothing")
			}
			t.Logf("shared %v: %d refusals, peaks %v", shared, refused, st.Peaks)
		})
	}
}
