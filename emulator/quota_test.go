package emulator

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	at := func(d time.Duration) time.Time { return epoch.Add(d) }
	w := newWindow(10, time.Second)
	steps := []struct {
		name string
		at   time.Duration
		add  int
		used int // after the add
	}{
		{"first events", 0, 4, 4},
		{"same instant merges", 0, 2, 6},
		{"later events", 500 * time.Millisecond, 4, 10},
		{"just before the first leaves", 999 * time.Millisecond, 0, 10},
		{"the first leave at exactly span", time.Second, 0, 4},
		{"the second leave at span after them", 1500 * time.Millisecond, 0, 0},
		{"empty window takes again", 1500 * time.Millisecond, 10, 10},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			w.add(at(s.at), s.add)
			if got := w.used(at(s.at)); got != s.used {
				t.Errorf("got %d used, want %d", got, s.used)
			}
		})
	}
	t.Run("fits", func(t *testing.T) {
		if w.fits(at(1500*time.Millisecond), 1) {
			t.Errorf("got fits for 1 more in a full window, want not")
		}
		if !w.fits(at(2500*time.Millisecond), 10) {
			t.Errorf("got no room for 10 once the window emptied, want room")
		}
	})
	t.Run("entries stay bounded", func(t *testing.T) {
		w := newWindow(100, time.Second)
		for i := range 100_000 {
			now := at(time.Duration(i) * time.Millisecond)
			if w.fits(now, 1) {
				w.add(now, 1)
			}
		}
		if got := len(w.events); got > 200 {
			t.Errorf("got %d entries kept, want at most 200", got)
		}
	})
}

func TestScaledLimits(t *testing.T) {
	cases := []struct {
		name  string
		scale float64
		kind  string
		want  KindLimits
	}{
		{"default users", 0, KindUsers, KindLimits{MaxTo: 600, Quotas: []Quota{
			{unitCalls, 100, time.Second, 429}, {unitMessages, 6000, time.Minute, 403}}}},
		{"default groups", 1, KindGroups, KindLimits{MaxTo: 3, Quotas: []Quota{
			{unitCalls, 20, time.Second, 429}, {unitMessages, 20, time.Second, 403}}}},
		{"default rooms", 1, KindRooms, KindLimits{MaxTo: 10, Quotas: []Quota{
			{unitCalls, 100, time.Second, 429}, {unitMessages, 100, time.Second, 403}}}},
		{"default group members", 1, KindGroupMembers, KindLimits{MaxTo: 1, MaxUsers: 20, Quotas: []Quota{
			{unitCalls, 100, time.Second, 403}, {unitMessages, 100, time.Second, 403}}}},
		{"default room members", 1, KindRoomMembers, KindLimits{MaxTo: 1, MaxUsers: 20, Quotas: []Quota{
			{unitCalls, 100, time.Second, 403}, {unitMessages, 100, time.Second, 403}}}},
		{"default legacy", 1, KindLegacy, KindLimits{Quotas: []Quota{
			{unitCalls, 30, time.Second, 503}}}},
		{"scaled 2.5, caps unchanged", 2.5, KindUsers, KindLimits{MaxTo: 600, Quotas: []Quota{
			{unitCalls, 250, time.Second, 429}, {unitMessages, 15000, time.Minute, 403}}}},
		{"scaled 0.07 rounds", 0.07, KindGroups, KindLimits{MaxTo: 3, Quotas: []Quota{
			{unitCalls, 1, time.Second, 429}, {unitMessages, 1, time.Second, 403}}}},
		{"scaled 0.001 is at least 1", 0.001, KindLegacy, KindLimits{Quotas: []Quota{
			{unitCalls, 1, time.Second, 503}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := New(Config{QuotaScale: c.scale}).Limits()[c.kind]
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// step sends body(i) for i in [0, n) and wants every answer to have status
// want; at, if set, moves the clock first.
type step struct {
	at   time.Duration
	n    int
	body func(i int) any
	want int
}

func same(body any) func(int) any { return func(int) any { return body } }

func TestQuotas(t *testing.T) {
	each := func(f func(id string) any, prefix string) func(int) any {
		return func(i int) any { return f(fmt.Sprintf("%s%d", prefix, i)) }
	}
	toOne := func(id string) any { return txt(id) }
	cases := []struct {
		name  string
		kind  string
		steps []step
		// want, at the end, for the kind
		accepted, delivered int
		responses           map[int]int
	}{
		{"users calls answer 429", KindUsers, []step{
			{0, 100, each(toOne, "u"), 200},
			{0, 1, same(txt("u1")), 429},
			{time.Second, 1, same(txt("u1")), 200},
		}, 101, 101, map[int]int{200: 101, 429: 1}},
		{"users: a 429 uses no message quota", KindUsers, []step{
			{0, 100, each(toOne, "u"), 200},                    // 100 messages
			{0, 3, same(txt(ids("a", 600)...)), 429},           // would be 1800
			{time.Second, 9, same(txt(ids("b", 600)...)), 200}, // 5500
			{time.Second, 1, same(txt(ids("c", 500)...)), 200}, // 6000
			{time.Second, 1, same(txt("d1")), 403},             // full
			{2 * time.Second, 1, same(txt("d1")), 403},         // still full for a minute
		}, 110, 6000, map[int]int{200: 110, 429: 3, 403: 2}},
		{"groups calls answer 429", KindGroups, []step{
			{0, 20, each(toOne, "g"), 200},
			{0, 1, same(txt("g1")), 429},
		}, 20, 20, map[int]int{200: 20, 429: 1}},
		{"groups messages answer 403 and a 403 uses no quota", KindGroups, []step{
			{0, 6, same(txt("g1", "g2", "g3")), 200}, // 18 messages
			{0, 1, same(txt("g1", "g2", "g3")), 403}, // 21 would not fit
			{0, 1, same(txt("g4", "g5")), 200},       // 20 fit exactly
			{0, 1, same(txt("g6")), 403},
			{time.Second, 1, same(txt("g1", "g2", "g3")), 200},
		}, 8, 23, map[int]int{200: 8, 403: 2}},
		{"rooms calls answer 429", KindRooms, []step{
			{0, 100, each(toOne, "r"), 200},
			{0, 1, same(txt("r1")), 429},
		}, 100, 100, map[int]int{200: 100, 429: 1}},
		{"rooms messages answer 403", KindRooms, []step{
			{0, 9, same(txt(ids("r", 10)...)), 200}, // 90 messages
			{0, 1, same(txt(ids("s", 10)...)), 200}, // 100
			{0, 1, same(txt("r1")), 403},
		}, 10, 100, map[int]int{200: 10, 403: 1}},
		{"group members calls answer 403", KindGroupMembers, []step{
			{0, 100, func(i int) any { return directed("g1", fmt.Sprint("u", i)) }, 200},
			{0, 1, same(directed("g1", "u1")), 403},
		}, 100, 100, map[int]int{200: 100, 403: 1}},
		{"group members messages answer 403 and a 403 uses no quota", KindGroupMembers, []step{
			{0, 4, same(directed("g1", ids("u", 20)...)), 200}, // 80
			{0, 1, same(directed("g1", ids("v", 20)...)), 200}, // 100
			{0, 1, same(directed("g2", "u1")), 403},
			{500 * time.Millisecond, 1, same(directed("g2", "u1")), 403},
			{time.Second, 1, same(directed("g2", ids("w", 20)...)), 200},
		}, 6, 120, map[int]int{200: 6, 403: 2}},
		{"room members calls answer 403", KindRoomMembers, []step{
			{0, 100, func(i int) any { return directed("r1", fmt.Sprint("u", i)) }, 200},
			{0, 1, same(directed("r1", "u1")), 403},
		}, 100, 100, map[int]int{200: 100, 403: 1}},
		{"room members messages answer 403", KindRoomMembers, []step{
			{0, 5, same(directed("r1", ids("u", 20)...)), 200},
			{0, 1, same(directed("r1", "x")), 403},
		}, 5, 100, map[int]int{200: 5, 403: 1}},
		{"legacy calls answer 503", KindLegacy, []step{
			{0, 30, func(i int) any { return legacy("users", fmt.Sprint("u", i)) }, 200},
			{0, 2, same(legacy("users", "u1")), 503},
			{time.Second, 1, same(legacy("users", "u1")), 200},
		}, 31, 31, map[int]int{200: 31, 503: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			h := start(t, Config{Now: clock.Now})
			for si, s := range c.steps {
				clock.Set(s.at)
				for i := range s.n {
					a := h.send(c.kind, s.body(i))
					if a.status != s.want {
						t.Fatalf("step %d, call %d: got status %d (%v), want %d", si, i, a.status, a.body, s.want)
					}
					checkQuotaBody(t, a)
				}
			}
			ks := h.run.Stats().Kinds[c.kind]
			if ks.Accepted != c.accepted || ks.Delivered != c.delivered {
				t.Errorf("got %d accepted calls and %d deliveries, want %d and %d", ks.Accepted, ks.Delivered, c.accepted, c.delivered)
			}
			if fmt.Sprint(ks.Responses) != fmt.Sprint(c.responses) {
				t.Errorf("got responses %v, want %v", ks.Responses, c.responses)
			}
		})
	}
}

// checkQuotaBody checks the error body of a quota answer.
func checkQuotaBody(t *testing.T, a answer) {
	t.Helper()
	want := map[int][2]string{
		http.StatusTooManyRequests:    {"resource_limited", descAPILimit},
		http.StatusForbidden:          {sendError, descReachLimit},
		http.StatusServiceUnavailable: {"service_unavailable", descUnavailable},
	}
	w, ok := want[a.status]
	if !ok {
		return
	}
	if a.str("error") != w[0] || a.str("error_description") != w[1] {
		t.Errorf("status %d: got error %q / %q, want %q / %q", a.status, a.str("error"), a.str("error_description"), w[0], w[1])
	}
}

func TestWindowsSlide(t *testing.T) {
	cases := []struct {
		name  string
		kind  string
		steps []step
	}{
		{"users 6000 messages per 60 s", KindUsers, []step{
			{59 * time.Second, 10, same(txt(ids("u", 600)...)), 200},
			{60 * time.Second, 1, same(txt("x")), 403},          // the burst at 59 s still counts
			{118900 * time.Millisecond, 1, same(txt("x")), 403}, // 59.9 s after it
			{119 * time.Second, 1, same(txt("x")), 200},         // 60 s after it: gone
			{119 * time.Second, 1, same(txt(ids("y", 600)...)), 200},
		}},
		{"groups 20 calls per 1 s", KindGroups, []step{
			{500 * time.Millisecond, 20, same(txt("g1")), 200},
			{1400 * time.Millisecond, 1, same(txt("g1")), 429},
			{1500 * time.Millisecond, 1, same(txt("g1")), 200},
			{1500 * time.Millisecond, 19, same(txt("g1")), 200},
			{1500 * time.Millisecond, 1, same(txt("g1")), 429},
		}},
		{"rooms 100 messages per 1 s", KindRooms, []step{
			{0, 5, same(txt(ids("r", 10)...)), 200},
			{900 * time.Millisecond, 5, same(txt(ids("r", 10)...)), 200},
			{999 * time.Millisecond, 1, same(txt("r1")), 403},
			{time.Second, 5, same(txt(ids("r", 10)...)), 200},
			{time.Second, 1, same(txt("r1")), 403},
		}},
		{"legacy 30 calls per 1 s", KindLegacy, []step{
			{0, 15, same(legacy("users", "u1")), 200},
			{600 * time.Millisecond, 15, same(legacy("users", "u1")), 200},
			{999 * time.Millisecond, 1, same(legacy("users", "u1")), 503},
			{time.Second, 15, same(legacy("users", "u1")), 200},
			{time.Second, 1, same(legacy("users", "u1")), 503},
			{1600 * time.Millisecond, 15, same(legacy("users", "u1")), 200},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			h := start(t, Config{Now: clock.Now})
			for si, s := range c.steps {
				clock.Set(s.at)
				for i := range s.n {
					if a := h.send(c.kind, s.body(i)); a.status != s.want {
						t.Fatalf("step %d at %v, call %d: got status %d (%v), want %d", si, s.at, i, a.status, a.body, s.want)
					}
				}
			}
		})
	}
}
