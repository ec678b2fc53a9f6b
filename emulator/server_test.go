package emulator

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRouting(t *testing.T) {
	h := start(t, Config{})
	bodies := map[string]any{
		KindUsers: txt("u1"), KindGroups: txt("g1"), KindRooms: txt("r1"),
		KindGroupMembers: directed("g1", "u1"), KindRoomMembers: directed("r1", "u1"),
		KindLegacy: legacy("users", "u1"),
	}
	for kind, suffix := range suffixes {
		for _, b := range []string{easemob, agora, "/other-org/other-app"} {
			t.Run(kind+" under "+b, func(t *testing.T) {
				a := h.do(http.MethodPost, b+suffix, testToken, bodies[kind])
				if a.status != http.StatusOK {
					t.Fatalf("got status %d (%v), want 200", a.status, a.body)
				}
				if len(a.data()) != 1 {
					t.Errorf("got data %v, want one entry", a.data())
				}
			})
		}
	}
	t.Run("each flavour delivered to each kind", func(t *testing.T) {
		for kind := range suffixes {
			if got := h.run.Stats().Kinds[kind].Accepted; got != 3 {
				t.Errorf("%s: got %d accepted calls, want 3", kind, got)
			}
		}
	})

	cases := []struct {
		name, method, path string
		status             int
		err                string
	}{
		{"unknown endpoint", http.MethodPost, easemob + "/messages/unknown", 404, "service_resource_not_found"},
		{"directed path with a tail", http.MethodPost, agora + "/messages/chatgroups/users/x", 404, "service_resource_not_found"},
		{"no app", http.MethodPost, "/org1/messages", 404, "service_resource_not_found"},
		{"empty org", http.MethodPost, "//app1/messages/users", 404, "service_resource_not_found"},
		{"root", http.MethodGet, "/", 404, "service_resource_not_found"},
		{"GET users", http.MethodGet, easemob + "/messages/users", 405, "method_not_allowed"},
		{"PUT chatrooms", http.MethodPut, agora + "/messages/chatrooms", 405, "method_not_allowed"},
		{"DELETE legacy", http.MethodDelete, easemob + "/messages", 405, "method_not_allowed"},
		{"unknown control path", http.MethodGet, "/_emulator/nothing", 404, "service_resource_not_found"},
		{"POST stats", http.MethodPost, "/_emulator/stats", 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h.do(c.method, c.path, testToken, nil)
			if a.status != c.status || a.str("error") != c.err {
				t.Errorf("got %d %q, want %d %q", a.status, a.str("error"), c.status, c.err)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	path := easemob + suffixes[KindGroups]
	cases := []struct {
		name   string
		cfg    Config
		header string // the Authorization header; "" sends none
		status int
		desc   string
	}{
		{"no header", Config{Token: "secret"}, "", 401, descNoToken},
		{"empty bearer", Config{Token: "secret"}, "Bearer ", 401, descNoToken},
		{"other scheme", Config{Token: "secret"}, "Basic secret", 401, descNoToken},
		{"wrong token", Config{Token: "secret"}, "Bearer nope", 401, descBadToken},
		{"right token", Config{Token: "secret"}, "Bearer secret", 200, ""},
		{"scheme in lower case", Config{Token: "secret"}, "bearer secret", 200, ""},
		{"any token when none is set", Config{}, "Bearer whatever", 200, ""},
		{"no header when none is set", Config{}, "", 401, descNoToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Every limit is 1: a 401 that used quota would fail the last call.
			c.cfg.QuotaScale = 0.001
			run, err := Listen("127.0.0.1:0", c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer run.Close()
			call := func(header string) (int, map[string]any) {
				req, err := http.NewRequest(http.MethodPost, run.URL+path, strings.NewReader(`{"to":["g1"],"type":"txt","body":{"msg":"hi"}}`))
				if err != nil {
					t.Fatal(err)
				}
				if header != "" {
					req.Header.Set("Authorization", header)
				}
				resp, err := direct.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatalf("decode answer: %v", err)
				}
				return resp.StatusCode, body
			}
			for range 3 {
				status, body := call(c.header)
				if status != c.status {
					t.Fatalf("got status %d (%v), want %d", status, body, c.status)
				}
				if c.status != 401 {
					break
				}
				if body["error"] != "unauthorized" || body["error_description"] != c.desc {
					t.Errorf("got %v / %v, want unauthorized / %s", body["error"], body["error_description"], c.desc)
				}
			}
			if c.status == 401 {
				good := "Bearer secret"
				if c.cfg.Token == "" {
					good = "Bearer any"
				}
				if status, body := call(good); status != 200 {
					t.Errorf("after 401s: got status %d (%v), want 200 (a 401 uses no quota)", status, body)
				}
				if got := run.Stats().Responses[401]; got != 3 {
					t.Errorf("got %d answers 401, want 3", got)
				}
			}
		})
	}
}

func TestStatsEndpoint(t *testing.T) {
	h := start(t, Config{Faults: Faults{TooManyRequests: 0.5}, Seed: 3})
	for i := range 10 {
		h.send(KindUsers, txt("u1"))
		h.send(KindLegacy, legacy("chatgroups", "g1"))
		if i%3 == 0 {
			h.send(KindRooms, `{}`)
			h.do(http.MethodGet, "/nowhere", "", nil)
		}
	}
	resp, err := h.client.Get(h.run.URL + "/_emulator/stats") // no token needed
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	var got Stats
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decode stats: %v", err)
	}
	if want := h.run.Stats(); !reflect.DeepEqual(got, want) {
		t.Errorf("got stats\n%+v\nwant\n%+v", got, want)
	}
	var shape map[string]json.RawMessage
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"requests", "calls", "accepted", "delivered", "duplicates", "room_drops", "responses", "faults", "kinds", "limits"} {
		if _, ok := shape[k]; !ok {
			t.Errorf("got stats without %q: %s", k, raw)
		}
	}
	if got.Requests != 28 || got.Calls != 24 || got.Responses[400] != 4 || got.Responses[404] != 4 {
		t.Errorf("got %d requests, %d calls, %d answers 400 and %d 404, want 28, 24, 4 and 4",
			got.Requests, got.Calls, got.Responses[400], got.Responses[404])
	}
	if got.Faults[FaultTooManyRequests] == 0 || got.Faults[FaultTooManyRequests] != got.Responses[429] {
		t.Errorf("got %d too_many_requests faults and %d answers 429, want the same, not 0", got.Faults[FaultTooManyRequests], got.Responses[429])
	}
}

func TestFaultsEndpoint(t *testing.T) {
	h := start(t, Config{})
	cases := []struct {
		name   string
		body   string
		status int
		want   Faults // the faults in force after the call
	}{
		{"set with a duration string", `{"error_before": 1, "latency": "1ms"}`, 200, Faults{ErrorBefore: 1, Latency: 1000000}},
		{"latency in nanoseconds", `{"reset_after": 0.25, "latency": 2000000}`, 200, Faults{ResetAfter: 0.25, Latency: 2000000}},
		{"new durations as strings", `{"latency_jitter": "5ms", "retry_after": "1.5s", "no_retry_after": true}`, 200,
			Faults{LatencyJitter: 5 * time.Millisecond, RetryAfter: 1500 * time.Millisecond, NoRetryAfter: true}},
		{"new durations in nanoseconds", `{"latency_jitter": 7, "retry_after": 2500000000}`, 200, Faults{LatencyJitter: 7, RetryAfter: 2500 * time.Millisecond}},
		{"new faults", `{"created": 0.1, "accepted": 0.1, "no_content": 0.1, "partial": 0.1, "partial_deliver": 0.1, "redirect": 0.1, "stall_after": 0.1, "token_redirect": 1}`, 200,
			Faults{Created: 0.1, Accepted202: 0.1, NoContent: 0.1, Partial: 0.1, PartialDeliver: 0.1, Redirect: 0.1, StallAfter: 0.1, TokenRedirect: 1}},
		{"absent fields are cleared", `{"unavailable": 0.5}`, 200, Faults{Unavailable: 0.5}},
		{"misspelt fault", `{"error_befor": 1}`, 400, Faults{Unavailable: 0.5}},
		{"probability above 1", `{"error_before": 2}`, 400, Faults{Unavailable: 0.5}},
		{"negative latency", `{"latency": "-1s"}`, 400, Faults{Unavailable: 0.5}},
		{"bad duration", `{"latency": "soon"}`, 400, Faults{Unavailable: 0.5}},
		{"not JSON", `{`, 400, Faults{Unavailable: 0.5}},
		{"negative jitter", `{"latency_jitter": "-1ms"}`, 400, Faults{Unavailable: 0.5}},
		{"negative retry_after", `{"retry_after": -5}`, 400, Faults{Unavailable: 0.5}},
		{"bad retry_after", `{"retry_after": "later"}`, 400, Faults{Unavailable: 0.5}},
		{"stall_after above 1", `{"stall_after": 1.5}`, 400, Faults{Unavailable: 0.5}},
		{"negative token_redirect", `{"token_redirect": -0.1}`, 400, Faults{Unavailable: 0.5}},
		{"misspelt new fault", `{"partial_delivery": 0.5}`, 400, Faults{Unavailable: 0.5}},
		{"cleared", `{}`, 200, Faults{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h.do(http.MethodPost, "/_emulator/faults", "", c.body)
			if a.status != c.status {
				t.Fatalf("got status %d (%v), want %d", a.status, a.body, c.status)
			}
			if got := h.run.Faults(); got != c.want {
				t.Errorf("got faults %+v, want %+v", got, c.want)
			}
			g := h.do(http.MethodGet, "/_emulator/faults", "", nil)
			if g.status != 200 || g.body["latency"] != float64(c.want.Latency) || g.body["unavailable"] != c.want.Unavailable {
				t.Errorf("GET: got %d %v, want 200 and %+v", g.status, g.body, c.want)
			}
		})
	}
	t.Run("set faults apply", func(t *testing.T) {
		if a := h.do(http.MethodPost, "/_emulator/faults", "", `{"error_before": 1}`); a.status != 200 {
			t.Fatalf("got status %d, want 200", a.status)
		}
		if a := h.send(KindUsers, txt("u1")); a.status != 500 {
			t.Errorf("got status %d, want 500", a.status)
		}
		if got := h.run.Delivered(KindUsers, "", "u1"); got != 0 {
			t.Errorf("got %d deliveries, want 0", got)
		}
	})
}

func TestListen(t *testing.T) {
	refused := []string{"0.0.0.0:0", "8.8.8.8:0", ":0", "[::]:0", "192.168.1.10:0", "example.com:0", "localhost.example.com:0"}
	for _, addr := range refused {
		t.Run("refuses "+addr, func(t *testing.T) {
			run, err := Listen(addr, Config{})
			if err == nil {
				run.Close()
				t.Fatalf("got no error, want one wrapping ErrNotLoopback")
			}
			if !errors.Is(err, ErrNotLoopback) {
				t.Errorf("got %v, want an error wrapping ErrNotLoopback", err)
			}
		})
	}
	t.Run("refuses an address without a port", func(t *testing.T) {
		if _, err := Listen("127.0.0.1", Config{}); err == nil {
			t.Errorf("got no error, want one")
		}
	})
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		t.Run("serves on "+addr, func(t *testing.T) {
			run, err := Listen(addr, Config{})
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if !strings.HasPrefix(run.URL, "http://127.0.0.") && !strings.HasPrefix(run.URL, "http://[::1]:") {
				t.Errorf("got URL %q, want http://127.0.0.x:PORT or http://[::1]:PORT", run.URL)
			}
			resp, err := direct.Get(run.URL + "/_emulator/stats")
			if err != nil {
				t.Fatalf("GET stats: %v", err)
			}
			resp.Body.Close()
			if err := run.Close(); err != nil {
				t.Errorf("Close: got %v, want nil", err)
			}
			if err := run.Close(); err != nil {
				t.Errorf("second Close: got %v, want nil", err)
			}
			if _, err := direct.Get(run.URL + "/_emulator/stats"); err == nil {
				t.Errorf("GET after Close: got an answer, want an error")
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	cases := map[string]bool{
		"127.0.0.1": true, "127.0.0.2": true, "127.255.255.254": true, "::1": true,
		"::ffff:127.0.0.1": true, "localhost": true, "LocalHost": true,
		"": false, "0.0.0.0": false, "::": false, "8.8.8.8": false, "10.0.0.1": false,
		"128.0.0.1": false, "example.com": false, "localhost.example.com": false, "::ffff:8.8.8.8": false,
	}
	for host, want := range cases {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q): got %v, want %v", host, got, want)
		}
	}
}

func TestFaultsValidate(t *testing.T) {
	cases := []struct {
		name string
		f    Faults
		ok   bool
	}{
		{"zero", Faults{}, true},
		{"all at bounds", Faults{TooManyRequests: 1, QuotaForbidden: 0, ErrorAfter: 1, Latency: 1}, true},
		{"negative", Faults{Unavailable: -0.1}, false},
		{"above 1", Faults{ResetAfter: 1.5}, false},
		{"negative latency", Faults{Latency: -1}, false},
		{"new faults at bounds", Faults{Created: 1, Accepted202: 1, NoContent: 1, Partial: 1, PartialDeliver: 1, Redirect: 1, StallAfter: 1,
			TokenRedirect: 1, LatencyJitter: 1, RetryAfter: 1}, true},
		{"stall_after above 1", Faults{StallAfter: 1.01}, false},
		{"redirect negative", Faults{Redirect: -0.5}, false},
		{"token_redirect NaN", Faults{TokenRedirect: math.NaN()}, false},
		{"negative jitter", Faults{LatencyJitter: -1}, false},
		{"negative retry_after", Faults{RetryAfter: -time.Second}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.f.Validate()
			if (err == nil) != c.ok {
				t.Errorf("got %v, want ok %v", err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidFaults) {
				t.Errorf("got %v, want an error wrapping ErrInvalidFaults", err)
			}
		})
	}
}
