package emulator

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	recallPath      = easemob + "/messages/msg_recall"
	batchRecallPath = easemob + "/messages/batch_recall"
)

// recallBody is a recall of msgID sent to to as chatType.
func recallBody(msgID, to, chatType string) map[string]any {
	return map[string]any{"msg_id": msgID, "to": to, "chat_type": chatType, "force": false}
}

// sentIDs sends body to kind and returns the answer's message IDs.
func (h *harness) sentIDs(kind string, body any) map[string]string {
	h.t.Helper()
	a := h.send(kind, body)
	if a.status != http.StatusOK {
		h.t.Fatalf("send %s: %d %v", kind, a.status, a.body)
	}
	out := map[string]string{}
	for k, v := range a.data() {
		out[k], _ = v.(string)
	}
	return out
}

// items returns a batch_recall answer's data.
func (a answer) items() []map[string]any {
	list, _ := a.body["data"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, v := range list {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

func TestRecallOne(t *testing.T) {
	h := start(t, Config{})
	id := h.sentIDs(KindUsers, txt("u1", "u2"))
	a := h.do(http.MethodPost, recallPath, testToken, recallBody(id["u1"], "u1", "chat"))
	d := a.data()
	if a.status != http.StatusOK || d["recalled"] != "yes" || d["chattype"] != "chat" || d["to"] != "u1" || d["from"] != "admin" || d["msg_id"] != id["u1"] {
		t.Fatalf("recall: %d %v", a.status, a.body)
	}
	cases := []struct {
		name   string
		body   map[string]any
		status int
		desc   string
	}{
		{"again", recallBody(id["u1"], "u1", "chat"), 403, "not_found msg"},
		{"unknown ID", recallBody("1", "u1", "chat"), 403, "not_found msg"},
		{"another recipient", recallBody(id["u2"], "u1", "chat"), 400, "can't find msg to"},
		{"another chat type", recallBody(id["u2"], "u2", "groupchat"), 400, "can't find msg to"},
		{"no msg_id", with(recallBody(id["u2"], "u2", "chat"), "msg_id", absent), 400, "param msg_id can't be empty"},
		{"no to", with(recallBody(id["u2"], "u2", "chat"), "to", ""), 400, "param to can't be empty"},
		{"no chat_type", with(recallBody(id["u2"], "u2", "chat"), "chat_type", absent), 400, "param chat_type can't be empty"},
		{"force not a bool", with(recallBody(id["u2"], "u2", "chat"), "force", "yes"), 400, descInvalidBody},
	}
	for _, c := range cases {
		a := h.do(http.MethodPost, recallPath, testToken, c.body)
		if a.status != c.status || a.str("error_description") != c.desc {
			t.Errorf("%s: %d %q, want %d %q", c.name, a.status, a.str("error_description"), c.status, c.desc)
		}
	}
	if a := h.do(http.MethodPost, recallPath, "", recallBody(id["u2"], "u2", "chat")); a.status != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", a.status)
	}
	st := h.run.Stats()
	if st.Recalled != 1 || st.RecallRepeats != 1 || st.Kinds[KindRecall].Calls != len(cases)+2 {
		t.Errorf("recalled %d, repeats %d, calls %d", st.Recalled, st.RecallRepeats, st.Kinds[KindRecall].Calls)
	}
}

func TestBatchRecall(t *testing.T) {
	h := start(t, Config{})
	users := h.sentIDs(KindUsers, txt("u1"))
	groups := h.sentIDs(KindGroups, txt("g1", "g2"))
	rooms := h.sentIDs(KindRooms, txt("r1"))
	members := h.sentIDs(KindGroupMembers, directed("g9", "m1", "m2"))
	cmd := h.sentIDs(KindUsers, map[string]any{"to": []string{"u1"}, "type": "cmd", "body": map[string]any{"action": "a"}})
	msgs := []map[string]any{
		recallBody(users["u1"], "u1", "chat"),
		recallBody(groups["g1"], "g1", "groupchat"),
		recallBody(groups["g2"], "g2", "groupchat"),
		recallBody(rooms["r1"], "r1", "chatroom"),
		recallBody(members["g9"], "g9", "groupchat"),
		recallBody(cmd["u1"], "u1", "chat"),
		with(recallBody(users["u1"], "u1", "chat"), "msg_id", ""),
	}
	a := h.do(http.MethodPost, batchRecallPath, testToken, map[string]any{"msgs": msgs})
	got := a.items()
	if a.status != http.StatusOK || len(got) != len(msgs) {
		t.Fatalf("batch_recall: %d %v", a.status, a.body)
	}
	want := []string{"yes", "yes", "yes", "yes", "yes", "cmd message can't be recalled", "param msg_id can't be empty"}
	for i, w := range want {
		if got[i]["recalled"] != w || got[i]["msg_id"] != msgs[i]["msg_id"] {
			t.Errorf("item %d: %v, want recalled %q", i, got[i], w)
		}
	}
	if got[1]["chattype"] != "groupchat" || got[3]["chattype"] != "chatroom" {
		t.Errorf("chattype of a group's and a room's: %v %v", got[1]["chattype"], got[3]["chattype"])
	}
	if st := h.run.Stats(); st.Recalled != 5 || st.RecallRepeats != 0 {
		t.Errorf("recalled %d, repeats %d; want 5 and 0", st.Recalled, st.RecallRepeats)
	}

	many := make([]map[string]any, 31)
	for i := range many {
		many[i] = recallBody("1", "u1", "chat")
	}
	for _, c := range []struct {
		body any
		desc string
	}{
		{map[string]any{"msgs": many}, "params msgs's size can't exceed limit 30"},
		{map[string]any{"msgs": []any{}}, "param msgs can't be empty"},
		{map[string]any{}, "param msgs can't be empty"},
	} {
		if a := h.do(http.MethodPost, batchRecallPath, testToken, c.body); a.status != 400 || a.str("error_description") != c.desc {
			t.Errorf("%v: %d %v, want 400 %q", c.body, a.status, a.body, c.desc)
		}
	}
	if a := h.do(http.MethodPost, batchRecallPath, testToken, map[string]any{"msgs": many[:30]}); a.status != 200 || len(a.items()) != 30 {
		t.Errorf("30 messages: %d, %d items", a.status, len(a.items()))
	}
}

func TestRecallWindow(t *testing.T) {
	for _, c := range []struct {
		window time.Duration
		after  time.Duration
		force  bool
		want   string
	}{
		{0, 2 * time.Minute, false, "yes"},
		{0, 2*time.Minute + time.Second, false, "exceed recall time limit"},
		{0, 2*time.Minute + time.Second, true, "yes"},
		{time.Hour, 59 * time.Minute, false, "yes"},
	} {
		clock := newClock()
		h := start(t, Config{Now: clock.Now, RecallWindow: c.window})
		id := h.sentIDs(KindUsers, txt("u1"))["u1"]
		clock.Set(c.after)
		a := h.do(http.MethodPost, batchRecallPath, testToken, map[string]any{"msgs": []any{with(recallBody(id, "u1", "chat"), "force", c.force)}})
		if got := a.items(); len(got) != 1 || got[0]["recalled"] != c.want {
			t.Errorf("window %v, %v later, force %v: %v, want %q", c.window, c.after, c.force, a.body, c.want)
		}
	}
}

func TestRecallQuotaAndService(t *testing.T) {
	clock := newClock()
	h := start(t, Config{Now: clock.Now, QuotaScale: 0.5})
	one := recallBody("1", "u", "chat")
	for path, body := range map[string]any{recallPath: one, batchRecallPath: map[string]any{"msgs": []any{one}}} {
		var codes []int
		for range 51 {
			codes = append(codes, h.do(http.MethodPost, path, testToken, body).status)
		}
		if codes[49] == http.StatusTooManyRequests || codes[50] != http.StatusTooManyRequests {
			t.Errorf("%s at 50 calls/s: the 50th answered %d, the 51st %d; want the 51st 429", path, codes[49], codes[50])
		}
	}
	if l := h.run.Stats().Limits[KindBatchRecall]; l.MaxTo != 30 || len(l.Quotas) != 1 || l.Quotas[0].Limit != 50 {
		t.Errorf("batch_recall limits %+v", l)
	}

	closed := start(t, Config{NoRecall: true})
	id := closed.sentIDs(KindUsers, txt("u1"))["u1"]
	a := closed.do(http.MethodPost, recallPath, testToken, recallBody(id, "u1", "chat"))
	if a.status != http.StatusForbidden || a.str("error") != "forbidden_op" || !strings.Contains(a.str("error_description"), "unopened") {
		t.Errorf("recall service unopened: %d %v", a.status, a.body)
	}
}

func TestPartialRecallRecallsAll(t *testing.T) {
	h := start(t, Config{Faults: Faults{Partial: 1}, Seed: 3})
	h.run.SetFaults(Faults{})
	id := h.sentIDs(KindUsers, txt(ids("u", 10)...))
	var msgs []any
	for to, m := range id {
		msgs = append(msgs, recallBody(m, to, "chat"))
	}
	h.run.SetFaults(Faults{Partial: 1})
	a := h.do(http.MethodPost, batchRecallPath, testToken, map[string]any{"msgs": msgs})
	if n := len(a.items()); a.status != 200 || n >= len(msgs) {
		t.Errorf("partial: %d with %d items of %d, want fewer", a.status, n, len(msgs))
	}
	if st := h.run.Stats(); st.Recalled != len(msgs) {
		t.Errorf("partial recalled %d of %d, want all", st.Recalled, len(msgs))
	}
}
