package emulator

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestDeliveries(t *testing.T) {
	clock := newClock()
	h := start(t, Config{Now: clock.Now})
	sends := []struct {
		kind string
		body any
	}{
		{KindUsers, txt("u1", "u2")},
		{KindUsers, txt("u1", "u2")}, // the same message again: 2 duplicates
		{KindUsers, with(txt("u1"), "body", map[string]any{"msg": "other"})},
		// The same message as the first, keys in another order and spaced out.
		{KindUsers, `{ "type":"txt", "body":{"msg":"hello"},"to":["u3","u1"], "from":"admin1" }`},
		{KindUsers, txt("u4", "u4")},                                         // twice in one call: 1 duplicate
		{KindUsers, with(txt("u1"), "body", map[string]any{"msg": "other"})}, // u1's second message again
		{KindGroups, txt("g1")},
		{KindGroupMembers, directed("g1", "a", "b")},
		{KindGroupMembers, directed("g2", "a")}, // another group: not a duplicate
		{KindGroupMembers, directed("g1", "a")}, // a duplicate
		{KindRoomMembers, directed("r1", "a")},
		{KindLegacy, legacy("users", "u1", "u9")},
		{KindLegacy, legacy("chatgroups", "g1")},
		{KindLegacy, legacy("chatgroups", "g1")}, // a duplicate
	}
	for i, s := range sends {
		clock.Set(time.Duration(i) * time.Second)
		if a := h.send(s.kind, s.body); a.status != http.StatusOK {
			t.Fatalf("send %d (%s): got status %d (%v), want 200", i, s.kind, a.status, a.body)
		}
	}
	cases := []struct {
		kind, scope, recipient string
		want                   int
	}{
		{KindUsers, "", "u1", 5},
		{KindUsers, "", "u2", 2},
		{KindUsers, "", "u3", 1},
		{KindUsers, "", "u4", 2},
		{KindUsers, "", "g1", 0},
		{KindGroups, "", "g1", 1},
		{KindGroupMembers, "g1", "a", 2},
		{KindGroupMembers, "g1", "b", 1},
		{KindGroupMembers, "g2", "a", 1},
		{KindGroupMembers, "", "a", 0},
		{KindGroupMembers, "", "g1", 0},
		{KindRoomMembers, "r1", "a", 1},
		{KindRoomMembers, "g1", "a", 0},
		{KindLegacy, "users", "u1", 1},
		{KindLegacy, "users", "u9", 1},
		{KindLegacy, "chatgroups", "g1", 2},
		{KindLegacy, "users", "g1", 0},
		{KindLegacy, "", "u1", 0},
		{"legacy_users", "", "u1", 1},
		{"legacy_groups", "", "g1", 2},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/%s", c.kind, c.scope, c.recipient), func(t *testing.T) {
			if got := h.run.Delivered(c.kind, c.scope, c.recipient); got != c.want {
				t.Errorf("got %d deliveries, want %d", got, c.want)
			}
		})
	}
	t.Run("duplicates", func(t *testing.T) {
		st := h.run.Stats()
		want := map[string]int{KindUsers: 5, KindGroups: 0, KindGroupMembers: 1, KindRoomMembers: 0, KindLegacy: 1}
		total := 0
		for kind, n := range want {
			total += n
			if got := st.Kinds[kind].Duplicates; got != n {
				t.Errorf("%s: got %d duplicates, want %d", kind, got, n)
			}
		}
		if st.Duplicates != total {
			t.Errorf("got %d duplicates in all, want %d", st.Duplicates, total)
		}
		if st.Delivered != 20 || st.Accepted != len(sends) || st.Calls != len(sends) {
			t.Errorf("got %d deliveries, %d accepted of %d calls, want 20, %d of %d", st.Delivered, st.Accepted, st.Calls, len(sends), len(sends))
		}
	})
}

func TestAnswers(t *testing.T) {
	clock := newClock()
	clock.Set(1500 * time.Millisecond)
	h := start(t, Config{Now: clock.Now})
	ms := epoch.Add(1500 * time.Millisecond).UnixMilli()

	seen := map[string]bool{}
	idsOf := func(t *testing.T, a answer, want ...string) {
		t.Helper()
		d := a.data()
		if len(d) != len(want) {
			t.Errorf("got data %v, want the keys %v", d, want)
		}
		for _, k := range want {
			id, _ := d[k].(string)
			n, err := strconv.ParseUint(id, 10, 64)
			if err != nil || n < firstMessageID {
				t.Errorf("data[%q]: got %q, want a message ID of at least %d", k, id, uint64(firstMessageID))
			}
			if seen[id] {
				t.Errorf("data[%q]: got %q again, want a fresh ID", k, id)
			}
			seen[id] = true
		}
	}
	t.Run("users", func(t *testing.T) {
		a := h.send(KindUsers, txt("u1", "u2", "u3"))
		idsOf(t, a, "u1", "u2", "u3")
		if got, want := a.data()["u1"], strconv.FormatUint(firstMessageID, 10); got != want {
			t.Errorf("first message ID: got %v, want %s", got, want)
		}
		want := map[string]any{
			"path": "/messages/users", "uri": h.run.URL + easemob + "/messages/users",
			"timestamp": float64(ms), "organization": "org1", "application": applicationUUID,
			"action": "post", "duration": float64(0), "applicationName": "app1",
		}
		for k, v := range want {
			if a.body[k] != v {
				t.Errorf("%s: got %v, want %v", k, a.body[k], v)
			}
		}
	})
	t.Run("groups", func(t *testing.T) {
		a := h.send(KindGroups, txt("g1", "g2"))
		idsOf(t, a, "g1", "g2")
		if a.str("path") != "/messages/chatgroups" {
			t.Errorf("got path %q, want /messages/chatgroups", a.str("path"))
		}
	})
	t.Run("group members", func(t *testing.T) {
		a := h.send(KindGroupMembers, directed("g1", "a", "b", "c"))
		idsOf(t, a, "g1")
	})
	t.Run("room members", func(t *testing.T) {
		idsOf(t, h.send(KindRoomMembers, directed("r1", "a")), "r1")
	})
	t.Run("app-id flavour", func(t *testing.T) {
		a := h.do(http.MethodPost, agora+"/messages/chatrooms", testToken, txt("r1"))
		idsOf(t, a, "r1")
		if got, want := a.str("uri"), h.run.URL+agora+"/messages/chatrooms"; got != want {
			t.Errorf("got uri %q, want %q", got, want)
		}
		for _, k := range []string{"organization", "applicationName"} {
			if v, ok := a.body[k]; ok {
				t.Errorf("got %s %v, want none (seed 003)", k, v)
			}
		}
	})
	t.Run("legacy", func(t *testing.T) {
		a := h.send(KindLegacy, legacy("users", "u1", "u2"))
		if fmt.Sprint(a.data()) != "map[u1:success u2:success]" {
			t.Errorf("got data %v, want u1 and u2 success", a.data())
		}
		if got, want := a.str("uri"), h.run.URL+easemob; got != want {
			t.Errorf("got uri %q, want %q", got, want)
		}
		if a.str("organization") != "org1" || a.str("applicationName") != "app1" || a.str("action") != "post" {
			t.Errorf("got %v, want organization org1, applicationName app1, action post", a.body)
		}
	})
}

func TestLegacyUnknownIDs(t *testing.T) {
	h := start(t, Config{UnknownIDs: []string{"ghost", "g404"}})
	cases := []struct {
		name   string
		body   any
		status int
	}{
		{"unknown user", legacy("users", "u1", "ghost"), 404},
		{"unknown group", legacy("chatgroups", "g404"), 404},
		{"known users", legacy("users", "u1", "u2"), 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h.send(KindLegacy, c.body)
			if a.status != c.status {
				t.Fatalf("got status %d (%v), want %d", a.status, a.body, c.status)
			}
			if c.status == 404 && a.str("error") != "service_resource_not_found" {
				t.Errorf("got error %q, want service_resource_not_found", a.str("error"))
			}
		})
	}
	t.Run("404 delivers nothing", func(t *testing.T) {
		if got := h.run.Delivered("legacy_users", "", "u1"); got != 1 {
			t.Errorf("got %d deliveries to u1, want 1 (from the known call only)", got)
		}
		if got := h.run.Stats().Kinds[KindLegacy].Responses[404]; got != 2 {
			t.Errorf("got %d answers 404, want 2", got)
		}
	})
	t.Run("the newer API ignores UnknownIDs", func(t *testing.T) {
		if a := h.send(KindUsers, txt("ghost")); a.status != 200 {
			t.Errorf("got status %d, want 200", a.status)
		}
	})
}

func TestRoomDrops(t *testing.T) {
	clock := newClock()
	h := start(t, Config{Now: clock.Now})
	steps := []struct {
		at    time.Duration
		n     int
		to    []string
		drops int // in all, after the step
	}{
		{0, 25, []string{"r1"}, 5},
		{0, 10, []string{"r2", "r3"}, 5},
		{999 * time.Millisecond, 1, []string{"r1"}, 6},
		{time.Second, 20, []string{"r1"}, 6},
		{time.Second, 2, []string{"r1", "r2"}, 8}, // r1 is full again; r2 is not
	}
	for si, s := range steps {
		clock.Set(s.at)
		for i := range s.n {
			if a := h.send(KindRooms, txt(s.to...)); a.status != http.StatusOK {
				t.Fatalf("step %d, call %d: got status %d (%v), want 200", si, i, a.status, a.body)
			}
		}
		st := h.run.Stats()
		if st.RoomDrops != s.drops || st.Kinds[KindRooms].RoomDrops != s.drops {
			t.Errorf("step %d: got %d room drops (rooms: %d), want %d", si, st.RoomDrops, st.Kinds[KindRooms].RoomDrops, s.drops)
		}
	}
	if got := h.run.Delivered(KindRooms, "", "r1"); got != 48 {
		t.Errorf("got %d deliveries to r1, want 48 (drops are answered 200 and recorded)", got)
	}
}

func TestConcurrentCalls(t *testing.T) {
	clock := newClock()
	h := start(t, Config{Now: clock.Now, QuotaScale: 10})
	const workers, calls = 8, 25
	var wg sync.WaitGroup
	errs := make(chan string, workers*calls)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				a := h.send(KindUsers, txt(fmt.Sprintf("w%d-%d", w, i), "shared"))
				if a.status != http.StatusOK {
					errs <- fmt.Sprintf("worker %d call %d: got status %d, want 200", w, i, a.status)
				}
				_ = h.run.Stats()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	st := h.run.Stats()
	if st.Delivered != 2*workers*calls || st.Accepted != workers*calls {
		t.Errorf("got %d deliveries in %d calls, want %d in %d", st.Delivered, st.Accepted, 2*workers*calls, workers*calls)
	}
	if got := h.run.Delivered(KindUsers, "", "shared"); got != workers*calls {
		t.Errorf("got %d deliveries to shared, want %d", got, workers*calls)
	}
	if st.Duplicates != workers*calls-1 {
		t.Errorf("got %d duplicates, want %d", st.Duplicates, workers*calls-1)
	}
}
