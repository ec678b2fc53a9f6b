package emulator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
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
	t.Run("delays a refused call too", func(t *testing.T) {
		begin := time.Now()
		a := h.do(http.MethodPost, easemob+suffixes[KindUsers], "", txt("u1"))
		if took := time.Since(begin); took < latency {
			t.Errorf("got the answer after %v, want at least %v", took, latency)
		}
		if a.status != http.StatusUnauthorized {
			t.Errorf("got status %d, want 401", a.status)
		}
	})
	t.Run("a call given up while delayed stands", func(t *testing.T) {
		h.run.SetFaults(Faults{Latency: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := h.async(ctx, KindUsers, txt("u2"))
		waitFor(t, "the delayed call to deliver", func() bool { return h.run.Delivered(KindUsers, "", "u2") == 1 })
		cancel()
		if a := <-done; a.err == nil {
			t.Fatalf("got status %d, want the call given up", a.status)
		}
		// The handler sees the connection close and returns at once.
		waitFor(t, "the handler to return", func() bool { return h.run.inflight.Load() == 0 })
		if got := h.run.Delivered(KindUsers, "", "u2"); got != 1 {
			t.Errorf("got %d deliveries to u2, want 1", got)
		}
		if got := h.run.Stats().Responses[http.StatusOK]; got != 2 {
			t.Errorf("got %d answers 200 counted, want 2 (the first call and the given-up one)", got)
		}
	})
}

func TestAdmissionAtArrival(t *testing.T) {
	// Groups get 1 call per second, and the clock stands still: a call
	// delayed by its latency has taken the quota as it arrived.
	clock := newClock()
	h := start(t, Config{Now: clock.Now, QuotaScale: 0.05, Faults: Faults{Latency: time.Minute}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := h.async(ctx, KindGroups, txt("g1"))
	waitFor(t, "the delayed call to deliver", func() bool { return h.run.Delivered(KindGroups, "", "g1") == 1 })
	select {
	case a := <-done:
		t.Fatalf("got status %d (err %v) before the latency was over, want no answer yet", a.status, a.err)
	default:
	}
	if got := h.run.Stats().Responses[http.StatusOK]; got != 0 {
		t.Errorf("got %d answers 200 counted, want 0 while the call waits out its latency", got)
	}

	h.run.SetFaults(Faults{})
	if a := h.send(KindGroups, txt("g2")); a.status != http.StatusTooManyRequests {
		t.Errorf("second call: got status %d (%v), want 429 (the delayed call took the quota)", a.status, a.body)
	}
	cancel()
	if a := <-done; a.err == nil {
		t.Errorf("got status %d, want the call given up", a.status)
	}
	waitFor(t, "the handlers to return", func() bool { return h.run.inflight.Load() == 0 })
	if got := h.run.Delivered(KindGroups, "", "g2"); got != 0 {
		t.Errorf("got %d deliveries to g2, want 0", got)
	}
}

func TestLatencyJitter(t *testing.T) {
	cases := []struct {
		name            string
		latency, jitter time.Duration
	}{
		{"latency and jitter", 10 * time.Millisecond, 120 * time.Millisecond},
		{"jitter alone", 0, 80 * time.Millisecond},
	}
	const seed = 11
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, Config{Seed: seed, Faults: Faults{Latency: c.latency, LatencyJitter: c.jitter}})
			// The same source as the server's: with no probabilistic
			// fault, it draws only the jitter, once per call.
			rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			var delays []time.Duration
			for i := range 6 {
				want := c.latency + time.Duration(rng.Int64N(int64(c.jitter)))
				delays = append(delays, want)
				begin := time.Now()
				a := h.send(KindUsers, txt("u1"))
				took := time.Since(begin)
				if a.status != http.StatusOK {
					t.Fatalf("call %d: got status %d, want 200", i, a.status)
				}
				if took < want || took > want+time.Second {
					t.Errorf("call %d: got the answer after %v, want %v and a little", i, took, want)
				}
			}
			if slices.Min(delays) == slices.Max(delays) {
				t.Fatalf("the draws %v are all the same: pick another seed", delays)
			}
			if got := h.run.Stats().Faults[FaultLatency]; got != 6 {
				t.Errorf("got %d latency faults counted, want 6", got)
			}
		})
	}
}

func TestSuccessFaults(t *testing.T) {
	cases := []struct {
		name   string
		faults Faults
		status int
		body   bool
	}{
		{FaultCreated, Faults{Created: 1}, http.StatusCreated, true},
		{FaultAccepted, Faults{Accepted202: 1}, http.StatusAccepted, true},
		{FaultNoContent, Faults{NoContent: 1}, http.StatusNoContent, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, Config{KeepIDs: true, Faults: c.faults})
			a := h.send(KindUsers, txt("u1", "u2"))
			if a.err != nil || a.status != c.status {
				t.Fatalf("got status %d (err %v), want %d", a.status, a.err, c.status)
			}
			if !c.body && a.body != nil {
				t.Errorf("got body %v, want none", a.body)
			}
			for _, u := range []string{"u1", "u2"} {
				if got := h.run.Delivered(KindUsers, "", u); got != 1 {
					t.Errorf("got %d deliveries to %s, want 1", got, u)
				}
				ids := h.run.IDs(KindUsers, "", u)
				if len(ids) != 1 {
					t.Errorf("got IDs %v for %s, want one", ids, u)
					continue
				}
				if got := a.data()[u]; c.body && got != ids[0] {
					t.Errorf("got data[%s] %v, want the ID %s", u, got, ids[0])
				}
			}
			if c.body && (a.str("action") != "post" || a.str("path") != "/messages/users") {
				t.Errorf("got body %v, want the usual success body", a.body)
			}
			st := h.run.Stats()
			if st.Responses[c.status] != 1 || st.Kinds[KindUsers].Responses[c.status] != 1 {
				t.Errorf("got responses %v, for users %v, want one %d in each", st.Responses, st.Kinds[KindUsers].Responses, c.status)
			}
			if st.Faults[c.name] != 1 || st.Kinds[KindUsers].Faults[c.name] != 1 || st.Accepted != 1 {
				t.Errorf("got faults %v and %d accepted, want one %s and 1", st.Faults, st.Accepted, c.name)
			}
		})
	}
}

func TestPartialFaults(t *testing.T) {
	const rounds = 12
	cases := []struct {
		name   string
		kind   string
		faults Faults
		n      int    // recipients per call
		all    bool   // every recipient gets the message; else a non-empty proper subset (none when n is 1)
		data   string // "fewer": fewer IDs than recipients; "delivered": those delivered; "empty"
	}{
		{"partial", KindUsers, Faults{Partial: 1}, 5, true, "fewer"},
		{"partial to one", KindUsers, Faults{Partial: 1}, 1, true, "empty"},
		{"partial legacy", KindLegacy, Faults{Partial: 1}, 4, true, "fewer"},
		{"partial directed", KindGroupMembers, Faults{Partial: 1}, 5, true, "empty"},
		{"partial_deliver", KindUsers, Faults{PartialDeliver: 1}, 5, false, "delivered"},
		{"partial_deliver to one", KindUsers, Faults{PartialDeliver: 1}, 1, false, "delivered"},
		{"partial_deliver legacy", KindLegacy, Faults{PartialDeliver: 1}, 4, false, "delivered"},
		{"partial_deliver directed", KindRoomMembers, Faults{PartialDeliver: 1}, 5, true, "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, Config{Seed: 4, KeepIDs: true, Faults: c.faults})
			sizes := map[int]bool{}
			for round := range rounds {
				to := ids(fmt.Sprintf("r%d-", round), c.n)
				kind, scope := c.kind, ""
				var body any
				switch c.kind {
				case KindLegacy:
					body, kind = legacy("users", to...), "legacy_users"
				case KindGroupMembers, KindRoomMembers:
					scope = fmt.Sprintf("s%d", round)
					body = directed(scope, to...)
				default:
					body = txt(to...)
				}
				a := h.send(c.kind, body)
				if a.status != http.StatusOK {
					t.Fatalf("round %d: got status %d (%v), want 200", round, a.status, a.body)
				}
				var delivered []string
				for _, id := range to {
					switch got := h.run.Delivered(kind, scope, id); got {
					case 1:
						delivered = append(delivered, id)
					case 0:
						if got := h.run.IDs(kind, scope, id); got != nil {
							t.Errorf("round %d: got IDs %v for %s, undelivered, want none", round, got, id)
						}
					default:
						t.Errorf("round %d: got %d deliveries to %s, want 0 or 1", round, got, id)
					}
				}
				switch {
				case c.all && len(delivered) != c.n:
					t.Errorf("round %d: delivered to %v, want all of %v", round, delivered, to)
				case !c.all && c.n == 1 && len(delivered) != 0:
					t.Errorf("round %d: delivered to %v, want none", round, delivered)
				case !c.all && c.n > 1 && (len(delivered) == 0 || len(delivered) == c.n):
					t.Errorf("round %d: delivered to %v, want a non-empty proper subset of %v", round, delivered, to)
				}
				data := a.data()
				if data == nil {
					t.Fatalf("round %d: got body %v, want a data object", round, a.body)
				}
				for k, v := range data {
					ids := h.run.IDs(kind, scope, k)
					if !slices.Contains(to, k) || len(ids) != 1 || v != ids[0] {
						t.Errorf("round %d: got data[%s] %v, want a recipient's ID (kept %v)", round, k, v, ids)
					}
				}
				switch c.data {
				case "empty":
					if len(data) != 0 {
						t.Errorf("round %d: got data %v, want {}", round, data)
					}
				case "fewer":
					if len(data) >= c.n {
						t.Errorf("round %d: got data %v, want fewer than %d IDs", round, data, c.n)
					}
				case "delivered":
					for _, id := range delivered {
						if _, ok := data[id]; !ok {
							t.Errorf("round %d: got data %v without %s, delivered", round, data, id)
						}
					}
					if len(data) != len(delivered) {
						t.Errorf("round %d: got data %v, want only %v", round, data, delivered)
					}
				}
				sizes[len(delivered)*100+len(data)] = true
			}
			if c.n > 2 && c.data != "empty" && len(sizes) < 2 {
				t.Errorf("got the same sizes in all %d rounds, want random subsets", rounds)
			}
			if got := h.run.Stats().Faults; got[FaultPartial]+got[FaultPartialDeliver] != rounds {
				t.Errorf("got faults %v, want %d", got, rounds)
			}
		})
	}
}

func TestRedirectFault(t *testing.T) {
	statuses := []int{301, 302, 303, 307, 308}
	t.Run("answers a redirect to the trap", func(t *testing.T) {
		clock := newClock()
		h := start(t, Config{Now: clock.Now, QuotaScale: 0.05, Seed: 5, KeepIDs: true, Faults: Faults{Redirect: 1}})
		h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		seen := map[int]int{}
		const calls = 40
		for i := range calls {
			a := h.send(KindGroups, txt("g1"))
			if !slices.Contains(statuses, a.status) {
				t.Fatalf("call %d: got status %d (err %v), want one of %v", i, a.status, a.err, statuses)
			}
			if got, want := a.header.Get("Location"), h.run.TrapURL+easemob+suffixes[KindGroups]; got != want {
				t.Errorf("call %d: got Location %q, want %q", i, got, want)
			}
			if a.body == nil {
				t.Errorf("call %d: got no JSON body", i)
			}
			seen[a.status]++
		}
		if len(seen) != len(statuses) {
			t.Errorf("got statuses %v, want each of %v", seen, statuses)
		}
		if got := h.run.Delivered(KindGroups, "", "g1"); got != 0 {
			t.Errorf("got %d deliveries, want 0", got)
		}
		if got := h.run.IDs(KindGroups, "", "g1"); got != nil {
			t.Errorf("got IDs %v, want none", got)
		}
		st := h.run.Stats()
		for s, n := range seen {
			if st.Responses[s] != n || st.Kinds[KindGroups].Responses[s] != n {
				t.Errorf("got %d answers %d counted (%d for groups), want %d", st.Responses[s], s, st.Kinds[KindGroups].Responses[s], n)
			}
		}
		if st.Faults[FaultRedirect] != calls || st.Accepted != 0 || st.TrapRequests != 0 {
			t.Errorf("got %d redirect faults, %d accepted, %d trap requests, want %d, 0, 0", st.Faults[FaultRedirect], st.Accepted, st.TrapRequests, calls)
		}
		h.run.SetFaults(Faults{})
		if a := h.send(KindGroups, txt("g1")); a.status != http.StatusOK {
			t.Errorf("after the redirects: got status %d, want 200 (a redirect uses no quota)", a.status)
		}
	})
	t.Run("a client that follows it lands in the trap", func(t *testing.T) {
		h := start(t, Config{Seed: 6, Faults: Faults{Redirect: 1}})
		const calls = 20
		posted := 0
		for i := range calls {
			a := h.send(KindUsers, txt("u1"))
			if a.status != http.StatusOK {
				t.Fatalf("call %d: got status %d (err %v), want the trap's 200", i, a.status, a.err)
			}
			if a.data()["u1"] == "1" {
				posted++ // 307 and 308 keep the method and body
			}
		}
		if got := h.run.Delivered(KindUsers, "", "u1"); got != 0 {
			t.Errorf("got %d deliveries, want 0", got)
		}
		trapped := h.run.TrapRequests()
		if len(trapped) != calls || h.run.Stats().TrapRequests != calls {
			t.Fatalf("got %d trap requests (stats %d), want %d", len(trapped), h.run.Stats().TrapRequests, calls)
		}
		posts := 0
		for _, r := range trapped {
			if r.Path != easemob+suffixes[KindUsers] {
				t.Errorf("got a trap request to %q, want %q", r.Path, easemob+suffixes[KindUsers])
			}
			if r.Method == http.MethodPost {
				posts++
			}
		}
		if posts != posted || posted == 0 || posted == calls {
			t.Errorf("got %d POSTs to the trap and %d answers naming u1, want the same, neither 0 nor %d", posts, posted, calls)
		}
	})
}

func TestRedirectWithoutTrap(t *testing.T) {
	srv := httptest.NewServer(New(Config{Token: testToken, Faults: Faults{Redirect: 1, TokenRedirect: 1}}))
	defer srv.Close()
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	cases := []struct {
		name, path, body string
	}{
		{"message call", easemob + suffixes[KindUsers], `{"to":["u1"],"type":"txt","body":{"msg":"hi"}}`},
		{"token call", easemob + "/token", `{"grant_type":"client_credentials","client_id":"a","client_secret":"b"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode < 300 || resp.StatusCode > 399 {
				t.Errorf("got status %d, want a redirect", resp.StatusCode)
			}
			if got := resp.Header.Get("Location"); got != "http://127.0.0.1:9/trap" {
				t.Errorf("got Location %q, want http://127.0.0.1:9/trap", got)
			}
		})
	}
}

func TestTokenRedirect(t *testing.T) {
	const creds = `{"grant_type":"client_credentials","client_id":"cid","client_secret":"csecret"}`
	h := start(t, Config{Faults: Faults{TokenRedirect: 1}})
	follow := h.client
	stay := &http.Client{
		Transport:     h.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	h.client = stay
	a := h.do(http.MethodPost, easemob+"/token", "", creds)
	if a.status != http.StatusTemporaryRedirect {
		t.Fatalf("got status %d (%v), want 307", a.status, a.body)
	}
	if got, want := a.header.Get("Location"), h.run.TrapURL+"/token"; got != want {
		t.Errorf("got Location %q, want %q", got, want)
	}
	if a := h.send(KindUsers, txt("u1")); a.status != http.StatusOK {
		t.Errorf("message call: got status %d, want 200 (token_redirect is for token calls)", a.status)
	}
	st := h.run.Stats()
	if st.Faults[FaultTokenRedirect] != 1 || st.Faults[FaultRedirect] != 0 || st.Responses[307] != 1 || st.TokensIssued != 0 {
		t.Errorf("got faults %v, responses %v, %d tokens issued, want one token_redirect, one 307, none issued", st.Faults, st.Responses, st.TokensIssued)
	}

	h.client = follow
	if a := h.do(http.MethodPost, easemob+"/token", "", creds); a.status != http.StatusOK || a.str("access_token") != "" {
		t.Errorf("following: got status %d (%v), want the trap's 200 and no token", a.status, a.body)
	}
	want := []TrapRequest{{Method: http.MethodPost, Path: "/token", ClientSecret: true, BodyLen: len(creds)}}
	if got := h.run.TrapRequests(); !slices.Equal(got, want) {
		t.Errorf("got trap requests %+v, want %+v", got, want)
	}
	if got := h.run.IssuedTokens(); len(got) != 0 {
		t.Errorf("got tokens %v issued, want none", got)
	}
}

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		name   string
		faults Faults
		calls  int // at the same instant; groups take 1 call per second
		status int
		want   string // "": no Retry-After
	}{
		{"default", Faults{TooManyRequests: 1}, 1, 429, "1"},
		{"rounded up", Faults{Unavailable: 1, RetryAfter: 2500 * time.Millisecond}, 1, 503, "3"},
		{"whole seconds", Faults{TooManyRequests: 1, RetryAfter: 2 * time.Second}, 1, 429, "2"},
		{"below a second", Faults{Unavailable: 1, RetryAfter: time.Millisecond}, 1, 503, "1"},
		{"on a full quota", Faults{RetryAfter: 4 * time.Second}, 2, 429, "4"},
		{"none", Faults{Unavailable: 1, NoRetryAfter: true, RetryAfter: time.Second}, 1, 503, ""},
		{"none on a full quota", Faults{NoRetryAfter: true}, 2, 429, ""},
		{"not with other errors", Faults{ErrorBefore: 1, RetryAfter: 5 * time.Second}, 1, 500, ""},
		{"not with success", Faults{RetryAfter: 5 * time.Second}, 1, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			h := start(t, Config{Now: clock.Now, QuotaScale: 0.05, Faults: c.faults})
			var a answer
			for range c.calls {
				a = h.send(KindGroups, txt("g1"))
			}
			if a.status != c.status {
				t.Fatalf("got status %d (%v), want %d", a.status, a.body, c.status)
			}
			got := a.header.Values("Retry-After")
			if c.want == "" && len(got) != 0 || c.want != "" && !slices.Equal(got, []string{c.want}) {
				t.Errorf("got Retry-After %q, want %q", got, c.want)
			}
		})
	}
}

func TestStallAfter(t *testing.T) {
	t.Run("until the client gives up", func(t *testing.T) {
		h := start(t, Config{KeepIDs: true, Faults: Faults{StallAfter: 1}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := h.async(ctx, KindUsers, txt("u1"))
		waitFor(t, "the stalled call to deliver", func() bool { return h.run.Delivered(KindUsers, "", "u1") == 1 })
		select {
		case a := <-done:
			t.Fatalf("got status %d (err %v), want no answer", a.status, a.err)
		default:
		}
		cancel()
		if a := <-done; a.err == nil {
			t.Fatalf("got status %d, want the call given up", a.status)
		}
		waitFor(t, "the stalled handler to return", func() bool { return h.run.inflight.Load() == 0 })
		st := h.run.Stats()
		if st.Faults[FaultStallAfter] != 1 || st.Accepted != 1 || len(st.Responses) != 0 {
			t.Errorf("got faults %v, %d accepted, responses %v, want one stall_after, 1, none", st.Faults, st.Accepted, st.Responses)
		}
		if got := h.run.IDs(KindUsers, "", "u1"); len(got) != 1 {
			t.Errorf("got IDs %v, want one", got)
		}
	})
	t.Run("until the emulator closes", func(t *testing.T) {
		h := start(t, Config{Faults: Faults{StallAfter: 1}})
		done := h.async(context.Background(), KindUsers, txt("u1"))
		waitFor(t, "the stalled call to deliver", func() bool { return h.run.Delivered(KindUsers, "", "u1") == 1 })
		begin := time.Now()
		if err := h.run.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if took := time.Since(begin); took >= shutdownGrace {
			t.Errorf("Close took %v, want less than its grace %v", took, shutdownGrace)
		}
		if a := <-done; a.err == nil {
			t.Errorf("got status %d, want the connection reset", a.status)
		}
		if got := h.run.inflight.Load(); got != 0 {
			t.Errorf("got %d handlers running after Close, want 0", got)
		}
	})
}
