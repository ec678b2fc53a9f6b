package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	invalidBody = "invalid_request_body"
	sendError   = "message_send_error"
)

// sized returns a text message to "u1" whose body and ext take exactly n
// bytes as compact JSON; ext is {"k":"v"} (9 bytes), or absent if noExt.
func sized(t *testing.T, n int, noExt bool) map[string]any {
	t.Helper()
	extLen := 9
	if noExt {
		extLen = 0
	}
	body := map[string]any{"msg": strings.Repeat("a", n-extLen-len(`{"msg":""}`))}
	m := with(txt("u1"), "body", body)
	if !noExt {
		m["ext"] = map[string]any{"k": "v"}
	}
	got := len(mustJSON(t, body))
	if !noExt {
		got += len(mustJSON(t, m["ext"]))
	}
	if got != n {
		t.Fatalf("sized(%d): built %d bytes", n, got)
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// customExts returns n string entries.
func customExts(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func typed(typ string, body map[string]any) map[string]any {
	return with(txt("u1"), "type", typ, "body", body)
}

func TestValidationErrors(t *testing.T) {
	// Every limit is 1, so that a 400 that used quota would show at the end.
	h := start(t, Config{QuotaScale: 0.001})
	u := txt("u1")
	cases := []struct {
		name   string
		kind   string
		body   any
		status int
		err    string
		desc   string
		code   int
	}{
		// invalid_request_body: not JSON, not an object, wrong field types.
		{"not JSON", KindUsers, `{"to":`, 400, invalidBody, descInvalidBody, 0},
		{"not an object", KindUsers, `["u1"]`, 400, invalidBody, descInvalidBody, 0},
		{"null", KindUsers, `null`, 400, invalidBody, descInvalidBody, 0},
		{"empty request body", KindUsers, ``, 400, invalidBody, descInvalidBody, 0},
		{"to not an array", KindUsers, with(u, "to", "u1"), 400, invalidBody, descInvalidBody, 0},
		{"to holds a number", KindUsers, with(u, "to", []any{1}), 400, invalidBody, descInvalidBody, 0},
		{"to holds an empty ID", KindUsers, with(u, "to", []string{"u1", ""}), 400, invalidBody, descInvalidBody, 0},
		{"from not a string", KindUsers, with(u, "from", 7), 400, invalidBody, descInvalidBody, 0},
		{"type not a string", KindUsers, with(u, "type", 1), 400, invalidBody, descInvalidBody, 0},
		{"body not an object", KindUsers, with(u, "body", "hello"), 400, invalidBody, descInvalidBody, 0},
		{"users not an array", KindGroupMembers, with(directed("g1", "u1"), "users", "u1"), 400, invalidBody, descInvalidBody, 0},
		{"users holds a number", KindRoomMembers, with(directed("r1", "u1"), "users", []any{2}), 400, invalidBody, descInvalidBody, 0},
		{"users holds an empty ID", KindGroupMembers, directed("g1", "u1", ""), 400, invalidBody, descInvalidBody, 0},
		{"sync_device not a bool", KindUsers, with(u, "sync_device", "yes"), 400, invalidBody, descInvalidBody, 0},
		{"need_group_ack not a bool", KindGroups, with(txt("g1"), "need_group_ack", 1), 400, invalidBody, descInvalidBody, 0},
		{"routetype not a string", KindUsers, with(u, "routetype", true), 400, invalidBody, descInvalidBody, 0},
		{"chatroom_msg_level not a string", KindRooms, with(txt("r1"), "chatroom_msg_level", 1), 400, invalidBody, descInvalidBody, 0},
		{"roam_ignore_users not an array", KindGroups, with(txt("g1"), "roam_ignore_users", "u2"), 400, invalidBody, descInvalidBody, 0},
		{"unknown type", KindUsers, with(u, "type", "sticker"), 400, invalidBody, descInvalidBody, 0},
		{"txt without msg", KindUsers, typed("txt", map[string]any{"text": "hi"}), 400, invalidBody, descInvalidBody, 0},
		{"txt with empty msg", KindUsers, typed("txt", map[string]any{"msg": ""}), 400, invalidBody, descInvalidBody, 0},
		{"txt with a number msg", KindUsers, typed("txt", map[string]any{"msg": 5}), 400, invalidBody, descInvalidBody, 0},
		{"img without url", KindUsers, typed("img", map[string]any{"filename": "a.jpg"}), 400, invalidBody, descInvalidBody, 0},
		{"audio with empty url", KindUsers, typed("audio", map[string]any{"url": "", "length": 3}), 400, invalidBody, descInvalidBody, 0},
		{"video with a number url", KindUsers, typed("video", map[string]any{"url": 9}), 400, invalidBody, descInvalidBody, 0},
		{"file without url", KindGroups, with(typed("file", map[string]any{"filename": "a.txt"}), "to", []string{"g1"}), 400, invalidBody, descInvalidBody, 0},
		{"loc without addr", KindUsers, typed("loc", map[string]any{"lat": "39.9", "lng": "116.3"}), 400, invalidBody, descInvalidBody, 0},
		{"loc with a number lat", KindUsers, typed("loc", map[string]any{"lat": 39.9, "lng": "116.3", "addr": "x"}), 400, invalidBody, descInvalidBody, 0},
		{"cmd without action", KindUsers, typed("cmd", map[string]any{"act": "a"}), 400, invalidBody, descInvalidBody, 0},
		{"cmd with empty action", KindRooms, with(typed("cmd", map[string]any{"action": ""}), "to", []string{"r1"}), 400, invalidBody, descInvalidBody, 0},
		{"customEvent off its pattern", KindUsers, typed("custom", map[string]any{"customEvent": "bad event!"}), 400, invalidBody, descInvalidBody, 0},
		{"customEvent of 33 characters", KindUsers, typed("custom", map[string]any{"customEvent": strings.Repeat("e", 33)}), 400, invalidBody, descInvalidBody, 0},
		{"customEvent empty", KindUsers, typed("custom", map[string]any{"customEvent": ""}), 400, invalidBody, descInvalidBody, 0},
		{"customExts of 17 entries", KindUsers, typed("custom", map[string]any{"customExts": customExts(17)}), 400, invalidBody, descInvalidBody, 0},
		{"customExts with a number value", KindUsers, typed("custom", map[string]any{"customExts": map[string]any{"k": 1}}), 400, invalidBody, descInvalidBody, 0},
		{"customExts not an object", KindUsers, typed("custom", map[string]any{"customExts": []string{"k"}}), 400, invalidBody, descInvalidBody, 0},
		{"routetype not ROUTE_ONLINE", KindUsers, with(u, "routetype", "ROUTE_ALL"), 400, invalidBody, descInvalidBody, 0},
		{"chatroom_msg_level unknown", KindRooms, with(txt("r1"), "chatroom_msg_level", "urgent"), 400, invalidBody, descInvalidBody, 0},

		// message_send_error.
		{"from empty", KindUsers, with(u, "from", ""), 400, sendError, "param from can't be empty", 0},
		{"to missing", KindUsers, with(u, "to", absent), 400, sendError, "param to can't be empty", 0},
		{"to empty", KindGroups, with(u, "to", []string{}), 400, sendError, "param to can't be empty", 0},
		{"type missing", KindUsers, with(u, "type", absent), 400, sendError, "param type can't be empty", 0},
		{"type empty", KindRooms, with(txt("r1"), "type", ""), 400, sendError, "param type can't be empty", 0},
		{"body missing", KindUsers, with(u, "body", absent), 400, sendError, "param body can't be empty", 0},
		{"body empty", KindUsers, with(u, "body", map[string]any{}), 400, sendError, "param body can't be empty", 0},
		{"ext null", KindUsers, with(u, "ext", nil), 400, sendError, "param ext must be JSONObject", 0},
		{"ext a string", KindGroups, with(txt("g1"), "ext", "x"), 400, sendError, "param ext must be JSONObject", 0},
		{"ext an array", KindRoomMembers, with(directed("r1", "u1"), "ext", []string{}), 400, sendError, "param ext must be JSONObject", 0},
		{"group members: users missing", KindGroupMembers, txt("g1"), 400, sendError, "param users can't be empty", 0},
		{"room members: users empty", KindRoomMembers, directed("r1"), 400, sendError, "param users can't be empty", 0},
		{"601 users", KindUsers, txt(ids("u", 601)...), 400, sendError, "params to's size can't exceed limit 600", 0},
		{"4 groups", KindGroups, txt(ids("g", 4)...), 400, sendError, "params to's size can't exceed limit 3", 0},
		{"11 rooms", KindRooms, txt(ids("r", 11)...), 400, sendError, "params to's size can't exceed limit 10", 0},
		{"group members: 2 groups", KindGroupMembers, with(directed("g1", "u1"), "to", []string{"g1", "g2"}), 400, sendError, "params to's size can't exceed limit 1", 0},
		{"room members: 2 rooms", KindRoomMembers, with(directed("r1", "u1"), "to", []string{"r1", "r2"}), 400, sendError, "params to's size can't exceed limit 1", 0},
		{"group members: 21 users", KindGroupMembers, directed("g1", ids("u", 21)...), 400, sendError, "params users's size can't exceed limit 20", 0},
		{"room members: 21 users", KindRoomMembers, directed("r1", ids("u", 21)...), 400, sendError, "params users's size can't exceed limit 20", 0},
		{"groups: 21 roam_ignore_users", KindGroups, with(txt("g1"), "roam_ignore_users", ids("u", 21)), 400, sendError, "params roam_ignore_users's size can't exceed limit 20", 0},
		{"rooms: 21 roam_ignore_users", KindRooms, with(txt("r1"), "roam_ignore_users", ids("u", 21)), 400, sendError, "params roam_ignore_users's size can't exceed limit 20", 0},
		{"body and ext of 5121 bytes", KindUsers, sized(t, 5121, false), 400, sendError, "message is too large", 14007},
		{"body of 5121 bytes", KindGroups, with(sized(t, 5121, true), "to", []string{"g1"}), 400, sendError, "message is too large", 14007},

		// legacy (seed 000).
		{"legacy: not JSON", KindLegacy, `{`, 400, invalidBody, descInvalidBody, 0},
		{"legacy: target_type rooms", KindLegacy, with(legacy("users", "u1"), "target_type", "rooms"), 400, invalidBody, descInvalidBody, 0},
		{"legacy: target_type missing", KindLegacy, with(legacy("users", "u1"), "target_type", absent), 400, invalidBody, descInvalidBody, 0},
		{"legacy: target not an array", KindLegacy, with(legacy("users"), "target", "u1"), 400, invalidBody, descInvalidBody, 0},
		{"legacy: target missing", KindLegacy, with(legacy("users"), "target", absent), 400, sendError, "param target can't be empty", 0},
		{"legacy: target empty", KindLegacy, legacy("chatgroups"), 400, sendError, "param target can't be empty", 0},
		{"legacy: msg missing", KindLegacy, with(legacy("users", "u1"), "msg", absent), 400, invalidBody, descInvalidBody, 0},
		{"legacy: msg not an object", KindLegacy, with(legacy("users", "u1"), "msg", "hello"), 400, invalidBody, descInvalidBody, 0},
		{"legacy: msg type file", KindLegacy, with(legacy("users", "u1"), "msg", map[string]any{"type": "file", "url": "x"}), 400, invalidBody, descInvalidBody, 0},
		{"legacy: txt without msg", KindLegacy, with(legacy("users", "u1"), "msg", map[string]any{"type": "txt"}), 400, invalidBody, descInvalidBody, 0},
		{"legacy: img without url", KindLegacy, with(legacy("users", "u1"), "msg", map[string]any{"type": "img", "filename": "a.jpg"}), 400, invalidBody, descInvalidBody, 0},
		{"legacy: cmd without action", KindLegacy, with(legacy("users", "u1"), "msg", map[string]any{"type": "cmd"}), 400, invalidBody, descInvalidBody, 0},
		{"legacy: ext null", KindLegacy, with(legacy("users", "u1"), "ext", nil), 400, sendError, "param ext must be JSONObject", 0},
		{"legacy: from empty", KindLegacy, with(legacy("users", "u1"), "from", ""), 400, sendError, "param from can't be empty", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h.send(c.kind, c.body)
			if a.status != c.status {
				t.Fatalf("got status %d (%v), want %d", a.status, a.body, c.status)
			}
			if got := a.str("error"); got != c.err {
				t.Errorf("got error %q, want %q", got, c.err)
			}
			if got := a.str("error_description"); got != c.desc {
				t.Errorf("got error_description %q, want %q", got, c.desc)
			}
			wantX := exceptionInvalid
			if c.err == sendError {
				wantX = exceptionSend
			}
			if got := a.str("exception"); got != wantX {
				t.Errorf("got exception %q, want %q", got, wantX)
			}
			code, hasCode := a.body["error_code"].(float64)
			if c.code == 0 && hasCode || c.code != 0 && int(code) != c.code {
				t.Errorf("got error_code %v, want %d", a.body["error_code"], c.code)
			}
			if ts, _ := a.body["timestamp"].(float64); ts <= 0 {
				t.Errorf("got timestamp %v, want a positive number of milliseconds", a.body["timestamp"])
			}
			if d, ok := a.body["duration"].(float64); !ok || d != 0 {
				t.Errorf("got duration %v, want 0", a.body["duration"])
			}
		})
	}

	t.Run("no quota used by 400s", func(t *testing.T) {
		st := h.run.Stats()
		if st.Accepted != 0 || st.Delivered != 0 {
			t.Errorf("got %d accepted calls and %d deliveries, want 0 and 0", st.Accepted, st.Delivered)
		}
		if got, want := st.Responses[400], len(cases); got != want {
			t.Errorf("got %d answers 400, want %d", got, want)
		}
		valid := map[string]any{
			KindUsers: txt("u1"), KindGroups: txt("g1"), KindRooms: txt("r1"),
			KindGroupMembers: directed("g1", "u1"), KindRoomMembers: directed("r1", "u1"),
			KindLegacy: legacy("users", "u1"),
		}
		for kind, body := range valid {
			if a := h.send(kind, body); a.status != http.StatusOK {
				t.Errorf("%s: first valid call (every limit 1): got status %d (%v), want 200", kind, a.status, a.body)
			}
		}
	})
}

func TestValidationAccepts(t *testing.T) {
	clock := newClock()
	h := start(t, Config{Now: clock.Now})
	u := txt("u1")
	cases := []struct {
		name string
		kind string
		body any
	}{
		{"600 users", KindUsers, txt(ids("u", 600)...)},
		{"3 groups", KindGroups, txt(ids("g", 3)...)},
		{"10 rooms", KindRooms, txt(ids("r", 10)...)},
		{"group members: 20 users", KindGroupMembers, directed("g1", ids("u", 20)...)},
		{"room members: 20 users", KindRoomMembers, directed("r1", ids("u", 20)...)},
		{"body and ext of 5120 bytes", KindUsers, sized(t, 5120, false)},
		{"body of 5120 bytes", KindRooms, with(sized(t, 5120, true), "to", []string{"r1"})},
		{"users: 21 roam_ignore_users", KindUsers, with(u, "roam_ignore_users", ids("u", 21))},
		{"groups: 20 roam_ignore_users", KindGroups, with(txt("g1"), "roam_ignore_users", ids("u", 20))},
		{"from absent", KindUsers, with(u, "from", absent)},
		{"from null", KindUsers, with(u, "from", nil)},
		{"ext empty", KindUsers, with(u, "ext", map[string]any{})},
		{"ext silent", KindGroups, with(txt("g1"), "ext", map[string]any{"em_ignore_notification": true})},
		{"unknown fields", KindUsers, with(u, "colour", "blue")},
		{"all options", KindUsers, with(u, "sync_device", true, "routetype", "ROUTE_ONLINE", "roam_ignore_users", []string{})},
		{"need_group_ack", KindGroups, with(txt("g1"), "need_group_ack", false)},
		{"chatroom_msg_level high", KindRooms, with(txt("r1"), "chatroom_msg_level", "high")},
		{"chatroom_msg_level low", KindRoomMembers, with(directed("r1", "u1"), "chatroom_msg_level", "low")},
		{"img", KindUsers, typed("img", map[string]any{"url": "https://h/o/a/chatfiles/1", "filename": "a.jpg", "secret": "s", "size": map[string]any{"width": 480, "height": 720}})},
		{"audio", KindUsers, typed("audio", map[string]any{"url": "https://h/o/a/chatfiles/2", "length": 10})},
		{"video", KindUsers, typed("video", map[string]any{"url": "https://h/o/a/chatfiles/3", "thumb": "t", "file_length": 58103})},
		{"file", KindUsers, typed("file", map[string]any{"url": "https://h/o/a/chatfiles/4", "filename": "a.txt"})},
		{"loc", KindUsers, typed("loc", map[string]any{"lat": "39.966", "lng": "116.322", "addr": "Beijing"})},
		{"cmd", KindUsers, typed("cmd", map[string]any{"action": "action1"})},
		{"custom", KindUsers, typed("custom", map[string]any{"customEvent": "a-Z_0/9.x", "customExts": customExts(16)})},
		{"custom with 32-character event", KindUsers, typed("custom", map[string]any{"customEvent": strings.Repeat("e", 32)})},
		{"custom with other fields only", KindUsers, typed("custom", map[string]any{"anything": 1})},
		{"legacy users img", KindLegacy, with(legacy("users", "u1"), "msg", map[string]any{"type": "img", "url": "x"})},
		{"legacy chatgroups audio", KindLegacy, with(legacy("chatgroups", "g1"), "msg", map[string]any{"type": "audio", "url": "x"})},
		{"legacy video", KindLegacy, with(legacy("users", "u1"), "msg", map[string]any{"type": "video", "url": "x"})},
		{"legacy cmd", KindLegacy, with(legacy("users", "u1"), "msg", map[string]any{"type": "cmd", "action": "a"})},
		{"legacy 25 targets with from and ext", KindLegacy, with(legacy("users", ids("u", 25)...), "from", "jma2", "ext", map[string]any{"a": "b"})},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock.Set(time.Duration(i) * time.Minute) // every quota is fresh
			if a := h.send(c.kind, c.body); a.status != http.StatusOK {
				t.Errorf("got status %d (%v), want 200", a.status, a.body)
			}
		})
	}
}
