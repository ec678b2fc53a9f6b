package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
)

// maxContent is the most bytes that body plus ext may take, compacted.
const maxContent = 5120

// maxRoamIgnore caps roam_ignore_users for groups and rooms.
const maxRoamIgnore = 20

// messageTypes are the types of the newer API; legacyTypes those of seed 000.
var (
	messageTypes = map[string]bool{"txt": true, "img": true, "audio": true, "video": true, "file": true, "loc": true, "cmd": true, "custom": true}
	legacyTypes  = map[string]bool{"txt": true, "img": true, "audio": true, "video": true, "cmd": true}
	msgLevels    = map[string]bool{"high": true, "normal": true, "low": true}
	customEvent  = regexp.MustCompile(`^[a-zA-Z0-9_/.\-]{1,32}$`)
)

const maxCustomExts = 16

// request is a validated message call.
type request struct {
	to      []string // to (newer API) or target (legacy)
	users   []string // directed kinds: the members
	scope   string   // directed kinds: to[0]; legacy: target_type
	digest  [sha256.Size]byte
	cmd     bool         // a cmd message, which cannot be recalled
	recalls []recallItem // recall endpoints: the messages named
}

// recipients lists who gets the message, all within r.scope.
func (r *request) recipients(ep *endpoint) []string {
	if ep.directed {
		return r.users
	}
	return r.to
}

// parseSend validates the body of a newer-API call (seeds 001, 002, 003).
// JSON null stands for an absent field, except for ext, which may not be null.
func parseSend(ep *endpoint, raw []byte) (*request, *apiError) {
	top, ok := object(raw)
	if !ok {
		return nil, errInvalidBody()
	}
	for _, k := range []string{"from", "type", "routetype", "chatroom_msg_level"} {
		if v := field(top, k); v != nil && jsonKind(v) != '"' {
			return nil, errInvalidBody()
		}
	}
	for _, k := range []string{"sync_device", "need_group_ack"} {
		if v := field(top, k); v != nil && jsonKind(v) != 't' && jsonKind(v) != 'f' {
			return nil, errInvalidBody()
		}
	}
	lists := map[string][]string{}
	for _, k := range []string{"to", "users", "roam_ignore_users"} {
		if v := field(top, k); v != nil {
			l, ok := stringList(v)
			if !ok {
				return nil, errInvalidBody()
			}
			lists[k] = l
		}
	}
	body := field(top, "body")
	if body != nil && jsonKind(body) != '{' {
		return nil, errInvalidBody()
	}

	if v := field(top, "from"); v != nil && str(v) == "" {
		return nil, errSend("param from can't be empty")
	}
	to := lists["to"]
	if len(to) == 0 {
		return nil, errSend("param to can't be empty")
	}
	if hasEmpty(to) {
		return nil, errInvalidBody()
	}
	typ := str(field(top, "type"))
	if typ == "" {
		return nil, errSend("param type can't be empty")
	}
	if !messageTypes[typ] {
		return nil, errInvalidBody()
	}
	fields, _ := object(body)
	if len(fields) == 0 {
		return nil, errSend("param body can't be empty")
	}
	ext, hasExt := top["ext"]
	if hasExt && jsonKind(ext) != '{' {
		return nil, errSend("param ext must be JSONObject")
	}
	users := lists["users"]
	if ep.directed {
		if len(users) == 0 {
			return nil, errSend("param users can't be empty")
		}
		if hasEmpty(users) {
			return nil, errInvalidBody()
		}
	}
	if len(to) > ep.maxTo {
		return nil, errSend(fmt.Sprintf("params to's size can't exceed limit %d", ep.maxTo))
	}
	if ep.directed && len(users) > ep.maxUsers {
		return nil, errSend(fmt.Sprintf("params users's size can't exceed limit %d", ep.maxUsers))
	}
	if (ep.kind == KindGroups || ep.kind == KindRooms) && len(lists["roam_ignore_users"]) > maxRoamIgnore {
		return nil, errSend(fmt.Sprintf("params roam_ignore_users's size can't exceed limit %d", maxRoamIgnore))
	}
	if compactLen(body)+compactLen(ext) > maxContent {
		return nil, errTooLarge()
	}
	if !validBody(typ, fields) {
		return nil, errInvalidBody()
	}
	if v := field(top, "routetype"); v != nil && str(v) != "ROUTE_ONLINE" {
		return nil, errInvalidBody()
	}
	if v := field(top, "chatroom_msg_level"); v != nil && !msgLevels[str(v)] {
		return nil, errInvalidBody()
	}

	r := &request{to: to, digest: digest(raw, "to", "users"), cmd: typ == "cmd"}
	if ep.directed {
		r.users, r.scope = users, to[0]
	}
	return r, nil
}

// parseLegacy validates the body of a legacy call (seed 000). The advised cap
// of 20 targets is not enforced, nor is the 5 KB size of the newer API.
func parseLegacy(raw []byte) (*request, *apiError) {
	top, ok := object(raw)
	if !ok {
		return nil, errInvalidBody()
	}
	for _, k := range []string{"target_type", "from"} {
		if v := field(top, k); v != nil && jsonKind(v) != '"' {
			return nil, errInvalidBody()
		}
	}
	var target []string
	if v := field(top, "target"); v != nil {
		if target, ok = stringList(v); !ok {
			return nil, errInvalidBody()
		}
	}
	msg := field(top, "msg")
	if msg != nil && jsonKind(msg) != '{' {
		return nil, errInvalidBody()
	}

	if v := field(top, "from"); v != nil && str(v) == "" {
		return nil, errSend("param from can't be empty")
	}
	tt := str(field(top, "target_type"))
	if tt != "users" && tt != "chatgroups" {
		return nil, errInvalidBody()
	}
	if len(target) == 0 {
		return nil, errSend("param target can't be empty")
	}
	if hasEmpty(target) {
		return nil, errInvalidBody()
	}
	fields, _ := object(msg)
	typ := str(field(fields, "type"))
	if !legacyTypes[typ] {
		return nil, errInvalidBody()
	}
	if ext, ok := top["ext"]; ok && jsonKind(ext) != '{' {
		return nil, errSend("param ext must be JSONObject")
	}
	if !validBody(typ, fields) {
		return nil, errInvalidBody()
	}
	return &request{to: target, scope: tt, digest: digest(raw, "target")}, nil
}

// validBody checks the fields a message type requires.
func validBody(typ string, f map[string]json.RawMessage) bool {
	switch typ {
	case "txt":
		return str(field(f, "msg")) != ""
	case "img", "audio", "video", "file":
		return str(field(f, "url")) != ""
	case "loc":
		for _, k := range []string{"lat", "lng", "addr"} {
			if jsonKind(field(f, k)) != '"' {
				return false
			}
		}
		return true
	case "cmd":
		return str(field(f, "action")) != ""
	case "custom":
		if v := field(f, "customEvent"); v != nil && (jsonKind(v) != '"' || !customEvent.MatchString(str(v))) {
			return false
		}
		if v := field(f, "customExts"); v != nil {
			exts, ok := object(v)
			if !ok || len(exts) > maxCustomExts {
				return false
			}
			for _, e := range exts {
				if jsonKind(e) != '"' {
					return false
				}
			}
		}
		return true
	}
	return false
}

// jsonKind returns the first byte of a JSON value: '{', '[', '"', 't', 'f',
// 'n', or a digit or '-' for numbers; 0 for nothing.
func jsonKind(v json.RawMessage) byte {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

// field returns the value of key, or nil when it is absent or null.
func field(m map[string]json.RawMessage, key string) json.RawMessage {
	v, ok := m[key]
	if !ok || jsonKind(v) == 'n' {
		return nil
	}
	return v
}

// object decodes a JSON object; ok is false for anything else.
func object(v []byte) (map[string]json.RawMessage, bool) {
	if jsonKind(v) != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, false
	}
	return m, true
}

// str returns a JSON string's value, or "" for anything else.
func str(v json.RawMessage) string {
	var s string
	if jsonKind(v) != '"' || json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// stringList decodes a JSON array of strings; ok is false for anything else.
func stringList(v json.RawMessage) ([]string, bool) {
	if jsonKind(v) != '[' {
		return nil, false
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, false
	}
	out := make([]string, len(items))
	for i, it := range items {
		if jsonKind(it) != '"' {
			return nil, false
		}
		out[i] = str(it)
	}
	return out, true
}

func hasEmpty(ids []string) bool {
	for _, id := range ids {
		if id == "" {
			return true
		}
	}
	return false
}

// compactLen is the length of v as compact JSON; 0 when v is empty.
func compactLen(v json.RawMessage) int {
	if len(v) == 0 {
		return 0
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return len(v)
	}
	return b.Len()
}

// digest identifies a message: the SHA-256 of the request's canonical JSON
// (decoded into any, numbers kept as written, and re-marshalled with sorted
// keys) with the recipient fields removed. raw must be a valid JSON object.
func digest(raw []byte, drop ...string) [sha256.Size]byte {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return sha256.Sum256(raw)
	}
	for _, k := range drop {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return sha256.Sum256(raw)
	}
	return sha256.Sum256(b)
}
