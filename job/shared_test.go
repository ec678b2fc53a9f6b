package job

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	sw, err := newSharedWindows(context.Background(), rdb, "/o/a")
	if err != nil {
		t.Fatal(err)
	}
	return sw
}

// TestSharedWindowsHoldAcrossProcesses has three pacers, each with its own
// connection, book, wait and stamp calls against one Redis as three
// processes would: no sliding window of either limit ever holds more than
// its quota.
func TestSharedWindowsHoldAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	const (
		span      = 200 * time.Millisecond
		callLimit = 20  // calls a window
		msgLimit  = 100 // messages a window
		perCall   = 10  // messages a call
		each      = 30  // calls a pacer
	)
	limits := []sharedLimit{{name: "calls", limit: callLimit, base: span, amount: 1, spaced: true}, {name: "messages", limit: msgLimit, base: span, amount: perCall, spaced: true}}
	spacing := span * perCall / msgLimit
	var mu sync.Mutex
	var stamps []time.Time
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		sw := sharedFor(t, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for range each {
				at, seq, _, err := sw.book(ctx, "users", perCall, limits, 0, time.Time{})
				if err != nil {
					errs <- err
					return
				}
				for {
					time.Sleep(time.Until(at))
					ok, when, server, err := sw.stampAt(ctx, "users", seq, limits, 0)
					if err != nil {
						errs <- err
						return
					}
					if ok {
						mu.Lock()
						stamps = append(stamps, time.UnixMicro(server))
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
	// the server's times, as its windows hold them
	for i, s := range stamps {
		n := 0
		for j := i; j >= 0 && stamps[j].After(s.Add(-span)); j-- {
			n++
		}
		if n > callLimit || n*perCall > msgLimit {
			t.Fatalf("the window ending at stamp %d holds %d calls (%d messages); quotas %d and %d", i, n, n*perCall, callLimit, msgLimit)
		}
	}
	// how close to the quota is for BenchmarkSharedRuns to say; here, only
	// the pace as it went
	took := stamps[len(stamps)-1].Sub(stamps[0])
	t.Logf("redis real=%v: %d calls in %v (%.2f of the even pace)", srv.Real, len(stamps), took, (time.Duration(len(stamps)-1)*spacing).Seconds()/took.Seconds())
}

// forgetBirth drops the windows' birth, for a test of windows an hour
// long: a booking into new windows waits until they reach back no
// further than their birth (TestNewWindowsWaitAWindow).
func forgetBirth(t *testing.T, sw *sharedWindows) {
	t.Helper()
	if err := sw.rdb.Del(context.Background(), sw.prefix+"born").Err(); err != nil {
		t.Fatal(err)
	}
}

// TestNewWindowsWaitAWindow joins new windows: they know nothing of the
// calls made before, so the first booking waits until its window reaches
// back no further than their birth; a run joining them later finds the
// same birth, and a booking once that is past goes at once.
func TestNewWindowsWaitAWindow(t *testing.T) {
	srv := redistest.Start(t)
	first := sharedFor(t, srv)
	ctx := context.Background()
	limits := []sharedLimit{{name: "calls", limit: 10, base: 300 * time.Millisecond, amount: 1, spaced: true}}
	at, _, _, err := first.book(ctx, "groups", 1, limits, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if wait := at.Sub(first.born); wait < 299*time.Millisecond {
		t.Errorf("first booking %v after the windows' birth, want a window's 300 ms", wait)
	}
	second := sharedFor(t, srv)
	if !second.born.Equal(first.born) {
		t.Errorf("a second run found the windows born at %v, the first at %v", second.born, first.born)
	}
	time.Sleep(time.Until(first.born.Add(400 * time.Millisecond)))
	before := time.Now()
	at, _, _, err = second.book(ctx, "groups", 1, limits, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if late := at.Sub(before); late > 100*time.Millisecond {
		t.Errorf("a booking once the birth is a window past waits %v, want none", late)
	}
}

// TestEvictingRedisIsRefused joins a Redis that may evict keys: refused,
// naming its policy; with noeviction, joined.
func TestEvictingRedisIsRefused(t *testing.T) {
	srv := redistest.Start(t)
	if !srv.Real {
		t.Log("miniredis has no memory policy: only the noeviction case runs")
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	if srv.Real {
		if err := rdb.ConfigSet(ctx, "maxmemory", "100mb").Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := newSharedWindows(ctx, rdb, "/o/a"); err == nil || !strings.Contains(err.Error(), "volatile-lru") {
			t.Errorf("an evicting Redis joined: %v, want refused naming its policy", err)
		}
		if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := newSharedWindows(ctx, rdb, "/o/a"); err != nil {
		t.Errorf("a Redis that does not evict: %v", err)
	}
}

// TestStampedWindowsExpire books and stamps calls into one chat room
// each: every window key, a room's emptied and made anew by its one
// call's stamp among them, expires; only the app's epoch, birth,
// sequence and margin last.
func TestStampedWindowsExpire(t *testing.T) {
	srv := redistest.Start(t)
	sw := sharedFor(t, srv)
	ctx := context.Background()
	forgetBirth(t, sw)
	for i := range 5 {
		limits := []sharedLimit{
			{name: "calls", limit: 100, base: time.Second, amount: 1, spaced: true},
			{name: fmt.Sprint("room:r", i), global: true, limit: 20, base: time.Second, amount: 1},
		}
		at, seq, _, err := sw.book(ctx, "rooms", 1, limits, 0, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(at))
		if ok, _, err := sw.stamp(ctx, "rooms", seq, limits, 0); err != nil || !ok {
			t.Fatalf("stamp %d: %v %v", i, ok, err)
		}
	}
	keys, err := sw.rdb.Keys(ctx, sw.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		ttl, err := sw.rdb.PTTL(ctx, k).Result()
		switch lasting := slices.Contains([]string{"epoch", "born", "seq", "margin"}, strings.TrimPrefix(k, sw.prefix)); {
		case err != nil:
			t.Fatal(err)
		case !lasting && ttl <= 0:
			t.Errorf("%s never expires (%v)", k, ttl)
		}
	}
}

// TestSharedCancelGivesTheSlotBack checks that a cancelled booking no
// longer counts, and that a stamp with no room says when to try again.
func TestSharedCancelGivesTheSlotBack(t *testing.T) {
	srv := redistest.Start(t)
	sw := sharedFor(t, srv)
	ctx := context.Background()
	forgetBirth(t, sw) // an hour's window would first wait out its birth
	limits := []sharedLimit{{name: "calls", limit: 1, base: time.Hour, amount: 1}}
	first, one, _, err := sw.book(ctx, "groups", 1, limits, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	second, two, _, err := sw.book(ctx, "groups", 1, limits, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Sub(first) < 59*time.Minute {
		t.Fatalf("second booking %v after the first, want the window's hour", second.Sub(first))
	}
	if ok, retry, err := sw.stamp(ctx, "groups", two, limits, 0); err != nil || ok || retry.Sub(first) < 59*time.Minute {
		t.Fatalf("stamp of the second now: ok %v, retry in %v (%v); want refused until the hour is over", ok, retry.Sub(first), err)
	}
	if err := sw.cancel(ctx, "groups", one, limits); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := sw.stamp(ctx, "groups", two, limits, 0); err != nil || !ok {
		t.Fatalf("stamp after the first was cancelled: ok %v (%v), want counted", ok, err)
	}
}

// TestSharedBookingCarriesThePartThatFits books calls of 3 recipients
// into a window of 8: where it may split, the third call carries the 2
// that fit at once, and only the rooms of those 2 count; where it may
// not, it waits for the window to free.
func TestSharedBookingCarriesThePartThatFits(t *testing.T) {
	srv := redistest.Start(t)
	sw := sharedFor(t, srv)
	ctx := context.Background()
	limits := func(split bool, rooms ...string) []sharedLimit {
		ls := []sharedLimit{{name: "messages", limit: 8, base: time.Hour, amount: 3, split: split}}
		for i, r := range rooms {
			ls = append(ls, sharedLimit{name: "room:" + r, global: true, limit: 20, base: time.Hour, amount: 1, from: i})
		}
		return ls
	}
	var first time.Time
	for i := range 2 {
		at, _, n, err := sw.book(ctx, "rooms", 3, limits(true, "a", "b", "c"), 0, time.Time{})
		if err != nil || n != 3 {
			t.Fatalf("booking %d: %d recipients (%v), want 3", i, n, err)
		}
		first = at
	}
	at, _, n, err := sw.book(ctx, "rooms", 3, limits(true, "a", "b", "c"), 0, time.Time{})
	if err != nil || n != 2 || at.Sub(first) > time.Minute {
		t.Fatalf("split booking: %d recipients %v after the first (%v), want 2 at once", n, at.Sub(first), err)
	}
	rooms, err := sw.rdb.Keys(ctx, sw.prefix+"room:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := sw.rdb.ZCard(ctx, sw.prefix+"room:c").Result(); c != 2 {
		t.Fatalf("room c holds %d events, want the first two calls' only (rooms %v)", c, rooms)
	}
	for range 2 {
		if at, _, n, err = sw.book(ctx, "groups", 3, limits(false), 0, time.Time{}); err != nil || n != 3 || at.Sub(first) > time.Minute {
			t.Fatalf("unsplit booking: %d recipients %v after the first (%v), want 3 at once", n, at.Sub(first), err)
		}
	}
	if at, _, n, _ = sw.book(ctx, "groups", 3, limits(false), 0, time.Time{}); n != 3 || at.Sub(first) < 59*time.Minute {
		t.Fatalf("unsplit booking into a full window: %d recipients %v after the first, want 3 once the hour is over", n, at.Sub(first))
	}
}

// BenchmarkSharedBookings measures what a booking and its stamp cost
// through Redis on loopback, with the windows as full as runs at the
// quota keep them: three clients, each with its own connection (three
// processes), book calls and stamp each at its time for 2 s, at the
// busiest call quota an endpoint has at ten times the defaults: legacy
// (300 calls a second, 20 recipients a call) and users with a message per
// user (1000 calls a second, 60000 messages a minute). It reports the
// median and 99th percentile of a booking's two round trips, the bookings
// a second one connection could make at that median, and what the three
// booked.
func BenchmarkSharedBookings(b *testing.B) {
	legacy := chatapi.LegacyUsers.DefaultQuota()
	users := chatapi.Users.DefaultQuota()
	cases := []struct {
		name   string
		limits []sharedLimit
	}{
		{"legacy_10x", []sharedLimit{{name: "calls", limit: 10 * legacy.Calls.N, base: legacy.Calls.Window, amount: 1, spaced: true}}},
		{"users_10x", []sharedLimit{
			{name: "calls", limit: 10 * users.Calls.N, base: users.Calls.Window, amount: 1, spaced: true},
			{name: "messages", limit: 10 * users.Messages.N, base: users.Messages.Window, amount: 1, spaced: true},
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			srv := redistest.Start(b)
			for b.Loop() {
				took := sharedBookings(b, srv, c.limits, 2*time.Second)
				slices.Sort(took)
				med, p99 := took[len(took)/2], took[len(took)*99/100]
				b.ReportMetric(float64(med.Microseconds()), "µs/booking")
				b.ReportMetric(float64(p99.Microseconds()), "p99_µs")
				b.ReportMetric(float64(time.Second/med), "bookings/s")
				b.ReportMetric(float64(len(took))/2, "booked/s")
			}
		})
	}
}

// sharedBookings has three clients book and stamp calls under limits for
// d, and returns how long each booking's two round trips took.
func sharedBookings(b *testing.B, srv *redistest.Server, limits []sharedLimit, d time.Duration) []time.Duration {
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range 3 {
		sw := sharedFor(b, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for time.Now().Before(end) {
				start := time.Now()
				at, seq, _, err := sw.book(ctx, "e", limits[len(limits)-1].amount, limits, 0, time.Time{})
				if err != nil {
					b.Error(err)
					return
				}
				booked := time.Since(start)
				time.Sleep(time.Until(at))
				start = time.Now()
				if _, _, err := sw.stamp(ctx, "e", seq, limits, 0); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				took = append(took, booked+time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return took
}

// oneKindCampaign writes a campaign of n deliveries of one message of
// kind, to prefix0..., and opens it and a ledger of its own (closed when
// t ends).
func oneKindCampaign(t testing.TB, kind, prefix string, n int) (*planner.Campaign, *checkpoint.Store) {
	t.Helper()
	dir := t.TempDir()
	var rows strings.Builder
	for i := range n {
		fmt.Fprintf(&rows, `{"kind":%q,"to":"%s%05d","msg":"hi"}`+"\n", kind, prefix, i)
	}
	path := filepath.Join(dir, "c.jsonl")
	if err := os.WriteFile(path, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := checkpoint.Open(filepath.Join(dir, "ledger.db"), checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	camp, err := planner.Open(planner.Options{Files: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	return camp, store
}

// sharedRuns runs campaigns of perRun rooms deliveries each, one per
// element of runs, at once, each with its own ledger, against one app of
// a new emulator at twice the default quotas, through srv when shared.
// It returns the emulator's stats of the rooms endpoint and how long the
// slowest run took.
func sharedRuns(t testing.TB, srv *redistest.Server, runs, perRun int, shared bool) (*emulator.KindStats, int, time.Duration) {
	t.Helper()
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
	errs := make(chan error, runs)
	var mu sync.Mutex
	var slowest time.Duration
	for run := range runs {
		camp, store := oneKindCampaign(t, "rooms", fmt.Sprintf("r%d-", run), perRun)
		cfg := CampaignConfig{Config: Config{Quotas: quotas, Campaign: "c", Named: true}}
		if shared {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
			defer rdb.Close()
			if cfg.Shared, err = NewSharedQuota(context.Background(), rdb, "/o/a"); err != nil {
				t.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			res, err := RunCampaign(ctx, camp, store, client, cfg)
			if err == nil && !res.Complete() {
				err = fmt.Errorf("run %d incomplete", run)
			}
			if res != nil {
				mu.Lock()
				slowest = max(slowest, res.Elapsed)
				mu.Unlock()
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
	st := emu.Stats()
	ks := st.Kinds["rooms"]
	return &ks, st.Duplicates, slowest
}

// TestRunsShareOneQuota runs two campaigns at once, each with its own
// ledger, against one app of the emulator: paced through one Redis, the
// server refuses none of their calls and their sum stays in the quota;
// each pacing alone, they trip it (so the test tests something).
func TestRunsShareOneQuota(t *testing.T) {
	srv := redistest.Start(t)
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			st, dups, took := sharedRuns(t, srv, 2, 300, shared)
			refused := st.Responses[403] + st.Responses[429]
			if st.Delivered != 600 || dups != 0 {
				t.Errorf("%d delivered, %d duplicates; want 600 and none", st.Delivered, dups)
			}
			switch {
			case shared && refused != 0:
				t.Errorf("through one Redis: %d refusals, want none", refused)
			case !shared && refused == 0:
				t.Errorf("each pacing alone: no refusal; the two runs never overran the quota, so the shared case shows nothing")
			}
			t.Logf("shared %v: %d refusals in %v, peaks %v", shared, refused, took, st.Peaks)
		})
	}
}

// BenchmarkSharedRuns runs three campaigns of rooms deliveries at once
// through one Redis, at twice the default quotas (200 messages a second
// for the app), and reports their combined share of the message quota
// over the slowest run, and the refusals.
func BenchmarkSharedRuns(b *testing.B) {
	srv := redistest.Start(b)
	for b.Loop() {
		st, dups, took := sharedRuns(b, srv, 3, 1000, true)
		if dups != 0 || st.Delivered != 3000 {
			b.Fatalf("%d delivered, %d duplicates", st.Delivered, dups)
		}
		// the last call's messages go at the end of the span
		share := float64(st.Delivered-10) / took.Seconds() / 200
		b.ReportMetric(share, "share")
		b.ReportMetric(float64(st.Responses[403]+st.Responses[429]), "refusals")
	}
}

// TestRedisGoneStopsTheRun kills the Redis a run shares its quotas
// through, mid-run, restarts it empty, or takes its booking numbers back
// as a restored snapshot would: the run stops within 5 s with an error
// naming it, the calls it made are recorded, none was sent twice, and a
// rerun through another Redis finishes the campaign.
func TestRedisGoneStopsTheRun(t *testing.T) {
	for _, how := range []string{"killed", "restarted empty", "restored from a snapshot"} {
		t.Run(how, func(t *testing.T) { redisGone(t, how) })
	}
}

// redisGone is TestRedisGoneStopsTheRun with the Redis killed, or killed
// and started again empty at its address (its client reconnects, and the
// windows it booked in are gone).
func redisGone(t *testing.T, how string) {
	srv := redistest.Start(t)
	emu, err := emulator.Listen("127.0.0.1:0", emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	client, err := chatapi.New(chatapi.Config{Host: emu.URL, Org: "o", App: "a", Tokens: chatapi.StaticToken("t")})
	if err != nil {
		t.Fatal(err)
	}
	camp, store := oneKindCampaign(t, "groups", "g", 200)
	quotas, _ := chatapi.NewQuotas(1, nil)
	run := func(srv *redistest.Server) (*Result, error) {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer rdb.Close()
		shared, err := NewSharedQuota(context.Background(), rdb, "/o/a")
		if err != nil {
			return nil, err
		}
		cfg := CampaignConfig{Config: Config{Quotas: quotas, Campaign: "c", Named: true, Shared: shared}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return RunCampaign(ctx, camp, store, client, cfg)
	}
	// groups: 20 messages a second, so 200 take about 10 s
	done := make(chan error, 1)
	var killed time.Time
	go func() { _, err := run(srv); done <- err }()
	for deadline := time.Now().Add(time.Minute); emu.Stats().Kinds["groups"].Delivered < 30; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no 30 deliveries in a minute")
		}
	}
	switch how {
	case "restarted empty":
		srv.Restart()
	case "restored from a snapshot":
		// a snapshot holds the windows and the app's epoch as they were,
		// and the booking numbers given since are given again
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		if err := rdb.Set(context.Background(), "imcast:/o/a:seq", 1, 0).Err(); err != nil {
			t.Fatal(err)
		}
		rdb.Close()
	default:
		srv.Kill()
	}
	killed = time.Now()
	select {
	case err := <-done:
		if took := time.Since(killed); err == nil || !strings.Contains(strings.ToLower(err.Error()), "redis") || took > 5*time.Second {
			t.Fatalf("run after its Redis died: %v, %v after; want an error naming redis within 5 s", err, took)
		} else {
			t.Logf("stopped %v after the kill: %v", took, err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the run went on a minute after its Redis died")
	}
	if d := emu.Stats().Duplicates; d != 0 {
		t.Fatalf("%d duplicates", d)
	}
	res, err := run(redistest.Start(t))
	if err != nil || !res.Complete() {
		t.Fatalf("rerun: %v, complete %v", err, res != nil && res.Complete())
	}
	if st := emu.Stats(); st.Kinds["groups"].Delivered != 200 || st.Duplicates != 0 {
		t.Errorf("after the rerun: %d delivered, %d duplicates; want 200, none", st.Kinds["groups"].Delivered, st.Duplicates)
	}
}
