package emulator

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	// Groups get 1 call and 1 message per second, so whether a fault used
	// quota shows on the next call.
	cases := []struct {
		name      string
		faults    Faults
		status    int // 0: the connection is reset with no answer
		err       string
		desc      string
		delivered int
		next      int // status of a call at the same instant once faults are off
	}{
		{FaultTooManyRequests, Faults{TooManyRequests: 1}, 429, "resource_limited", descAPILimit, 0, 200},
		{FaultQuotaForbidden, Faults{QuotaForbidden: 1}, 403, sendError, descReachLimit, 0, 200},
		{FaultUnavailable, Faults{Unavailable: 1}, 503, "service_unavailable", descUnavailable, 0, 200},
		{FaultErrorBefore, Faults{ErrorBefore: 1}, 500, "internal_server_error", descInternal, 0, 200},
		{FaultErrorAfter, Faults{ErrorAfter: 1}, 500, "internal_server_error", descInternal, 1, 429},
		{FaultResetAfter, Faults{ResetAfter: 1}, 0, "", "", 1, 429},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			h := start(t, Config{Now: clock.Now, QuotaScale: 0.05, Faults: c.faults})
			a := h.send(KindGroups, txt("g1"))
			if c.status == 0 {
				if a.err == nil {
					t.Fatalf("got status %d (%v), want the connection reset", a.status, a.body)
				}
			} else {
				if a.err != nil || a.status != c.status {
					t.Fatalf("got status %d (err %v), want %d", a.status, a.err, c.status)
				}
				if a.str("error") != c.err || a.str("error_description") != c.desc {
					t.Errorf("got error %q / %q, want %q / %q", a.str("error"), a.str("error_description"), c.err, c.desc)
				}
			}
			if got := h.run.Delivered(KindGroups, "", "g1"); got != c.delivered {
				t.Errorf("got %d deliveries to g1, want %d", got, c.delivered)
			}
			st := h.run.Stats()
			if got := st.Faults[c.name]; got != 1 {
				t.Errorf("got %d %s faults counted, want 1", got, c.name)
			}
			if got := st.Kinds[KindGroups].Faults[c.name]; got != 1 {
				t.Errorf("got %d %s faults counted for groups, want 1", got, c.name)
			}
			if got := st.Accepted; got != c.delivered {
				t.Errorf("got %d accepted calls, want %d", got, c.delivered)
			}

			h.run.SetFaults(Faults{})
			if a := h.send(KindGroups, txt("g2")); a.status != c.next {
				t.Errorf("next call: got status %d (%v), want %d", a.status, a.body, c.next)
			}
		})
	}
}

func TestFaultsReproducible(t *testing.T) {
	faults := Faults{TooManyRequests: 0.2, QuotaForbidden: 0.1, ErrorBefore: 0.2, ErrorAfter: 0.2}
	run := func(seed int64) []int {
		clock := newClock()
		h := start(t, Config{Now: clock.Now, Seed: seed, Faults: faults})
		var statuses []int
		for i := range 50 {
			clock.Set(time.Duration(i) * time.Second)
			statuses = append(statuses, h.send(KindUsers, txt("u1")).status)
		}
		st := h.run.Stats()
		count := func(s int) int {
			n := 0
			for _, x := range statuses {
				if x == s {
					n++
				}
			}
			return n
		}
		if got, want := st.Faults[FaultTooManyRequests], count(429); got != want {
			t.Errorf("seed %d: got %d too_many_requests faults, want %d answers 429", seed, got, want)
		}
		if got, want := st.Faults[FaultErrorBefore]+st.Faults[FaultErrorAfter], count(500); got != want {
			t.Errorf("seed %d: got %d error faults, want %d answers 500", seed, got, want)
		}
		if got, want := st.Accepted, count(200)+st.Faults[FaultErrorAfter]; got != want {
			t.Errorf("seed %d: got %d accepted calls, want %d (200s and error_after)", seed, got, want)
		}
		if got := h.run.Delivered(KindUsers, "", "u1"); got != st.Accepted {
			t.Errorf("seed %d: got %d deliveries, want %d", seed, got, st.Accepted)
		}
		return statuses
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Errorf("seed 7 twice: got %v and %v, want the same", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8: got the same statuses %v, want different", a)
	}
	for _, s := range []int{200, 403, 429, 500} {
		if !slices.Contains(a, s) {
			t.Errorf("seed 7: got statuses %v, want some %d", a, s)
		}
	}
}

func TestFaultPick(t *testing.T) {
	f := Faults{TooManyRequests: 0.125, Unavailable: 0.25, ResetAfter: 0.375} // exact in binary
	cases := []struct {
		u    float64
		want string
	}{
		{0, FaultTooManyRequests},
		{0.1249, FaultTooManyRequests},
		{0.125, FaultUnavailable},
		{0.3749, FaultUnavailable},
		{0.375, FaultResetAfter},
		{0.7499, FaultResetAfter},
		{0.75, ""},
		{0.9999, ""},
	}
	for _, c := range cases {
		if got := f.pick(c.u); got != c.want {
			t.Errorf("pick(%v): got %q, want %q", c.u, got, c.want)
		}
	}
}

func TestLatency(t *testing.T) {
	const latency = 60 * time.Millisecond
	h := start(t, Config{Faults: Faults{Latency: latency}})
	t.Run("delays the answer", func(t *testing.T) {
		begin := time.Now()
		a := h.send(KindUsers, txt("u1"))
		if took := time.Since(begin); took < latency {
			t.Errorf("got the answer after %v, want at least %v", took, latency)
		}
		if a.status != http.StatusOK {
			t.Errorf("got status %d, want 200", a.status)
		}
		if got := h.run.Stats().Faults[FaultLatency]; got != 1 {
			t.Errorf("got %d latency faults counted, want 1", got)
		}
	})
	t.Run("comes before auth", func(t *testing.T) {
		begin := time.Now()
		a := h.do(http.MethodPost, easemob+suffixes[KindUsers], "", txt("u1"))
		if took := time.Since(begin); took < latency {
			t.Errorf("got the answer after %v, want at least %v", took, latency)
		}
		if a.status != http.StatusUnauthorized {
			t.Errorf("got status %d, want 401", a.status)
		}
	})
	t.Run("a call given up while delayed delivers nothing", func(t *testing.T) {
		h.run.SetFaults(Faults{Latency: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.run.URL+easemob+suffixes[KindUsers], nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		if resp, err := h.client.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("got status %d, want the call given up", resp.StatusCode)
		}
		h.run.SetFaults(Faults{})
		// The handler sees the connection close and answers 503 into it.
		for i := 0; h.run.Stats().Responses[http.StatusServiceUnavailable] == 0; i++ {
			if i == 200 {
				t.Fatalf("got no 503 counted after 2 s, want the delayed call to give up")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got := h.run.Delivered(KindUsers, "", "u1"); got != 1 {
			t.Errorf("got %d deliveries to u1, want 1 (the first call only)", got)
		}
	})
}
