package chatapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The files in testdata/golden are transcriptions of every request example
// of the four seed documents (/work/shared/seeds/000-003): the curl examples,
// and for the legacy API (000) also each section's "Request Body" block. Each
// holds the example's method, URL path, headers and JSON body; a "note" says
// where a seed defect had to be corrected. They are not outputs of the
// client, so there is no -update flag: a failure means the client and the
// documentation disagree.

// golden is one transcribed request example.
type golden struct {
	Seed    string            `json:"seed"`
	Section string            `json:"section"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
	Note    string            `json:"note"`
}

// goldenCase is the message value, written from the seed by hand, that must
// reproduce the golden file of the same name.
type goldenCase struct {
	name  string // the golden file's name without .json
	cfg   Config
	token string
	batch Batch
}

// The clients of the seeds' examples.
var (
	// 000: https://a1.easemob.com/easemob-demo/chatdemoui/messages
	goldenDemo = Config{Host: "https://a1.easemob.com", Org: "easemob-demo", App: "chatdemoui"}
	// 001, 002: https://XXXX/XXXX/XXXX/messages/...
	goldenOrgApp = Config{Host: "https://XXXX", Org: "XXXX", App: "XXXX"}
	// 003: https://XXXX/app-id/XXXX/messages/users
	goldenAppID = Config{Host: "https://XXXX", AppID: "XXXX"}
)

// The tokens of the seeds' examples.
const (
	// 000's Request Headers line: "Authorization":"Bearer ${token}".
	goldenDocToken = "${token}"
	// The token of 000's curl examples, except the image one.
	goldenDemoToken = "YWMtxc6K0L1aEeKf9LWFzT9xEAAAAT7MNR_9OcNq-GwPsKwj_TruuxZfFSC2eIQ"
	// The token of 000's image curl example.
	goldenDemoImgToken = "YWMtsFVigGSuEeSTc7k5183Z5QAAAUqzeFx_9IjRch-ZxNbIlBIvx_4GWvzheSU"
	// 001, 002 and 003.
	goldenAppToken = "<YourAppToken>"
)

func goldenCases() []goldenCase {
	legacyExt := json.RawMessage(`{"attr1": "v1", "attr2": "v2"}`)
	silent := json.RawMessage(`{"em_ignore_notification": true}`)
	return []goldenCase{
		// 000: the legacy /messages API. Body holds msg without its type.
		{"000-txt-body", goldenDemo, goldenDocToken, Batch{
			Kind: LegacyUsers, To: []string{"u1", "u2", "u3"},
			Message: Message{Type: "txt", Body: json.RawMessage(`{"msg": "hello from rest"}`),
				From: new("jma2"), Ext: legacyExt},
		}},
		{"000-txt-curl", goldenDemo, goldenDemoToken, Batch{
			Kind: LegacyUsers, To: []string{"stliu1", "jma3", "stliu", "jma4"},
			Message: Message{Type: "txt", Body: json.RawMessage(`{"msg": "hello from rest"}`),
				From: new("jma2"), Ext: legacyExt},
		}},
		{"000-img-body", goldenDemo, goldenDocToken, Batch{
			Kind: LegacyUsers, To: []string{"u1", "u2", "u3"},
			Message: Message{Type: "img", Body: json.RawMessage(`{
				"url": "https://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/55f12940-64af-11e4-8a5b-ff2336f03252",
				"filename": "24849.jpg",
				"secret": "VfEpSmSvEeS7yU8dwa9rAQc-DIL2HhmpujTNfSTsrDt6eNb_",
				"size": {"width": 480, "height": 720}
			}`), From: new("jma2"), Ext: legacyExt},
		}},
		{"000-img-curl", goldenDemo, goldenDemoImgToken, Batch{
			Kind: LegacyUsers, To: []string{"l1k4vpllxp"},
			Message: Message{Type: "img", Body: json.RawMessage(`{
				"filename": "24849.jpg",
				"secret": "VfEpSmSvEeS7yU8dwa9rAQc-DIL2HhmpujTNfSTsrDt6eNb_",
				"url": "https://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/55f12940-64af-11e4-8a5b-ff2336f03252",
				"size": {"width": 480, "height": 720}
			}`), From: new("jma2")},
		}},
		{"000-audio-body", goldenDemo, goldenDocToken, Batch{
			Kind: LegacyUsers, To: []string{"testd", "testb", "testc"},
			Message: Message{Type: "audio", Body: json.RawMessage(`{
				"url": "https://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/1dfc7f50-55c6-11e4-8a07-7d75b8fb3d42",
				"filename": "messages.amr",
				"length": 10,
				"secret": "Hfx_WlXGEeSdDW-SuX2EaZcXDC7ZEig3OgKZye9IzKOwoCjM"
			}`), From: new("testa"), Ext: legacyExt},
		}},
		{"000-audio-curl", goldenDemo, goldenDemoToken, Batch{
			Kind: LegacyUsers, To: []string{"testd", "testb", "testc"},
			Message: Message{Type: "audio", Body: json.RawMessage(`{
				"url": "https://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/1dfc7f50-55c6-11e4-8a07-7d75b8fb3d42",
				"filename": "messages.amr",
				"length": 10,
				"secret": "Hfx_WlXGEeSdDW-SuX2EaZcXDC7ZEig3OgKZye9IzKOwoCjM"
			}`), From: new("testa")},
		}},
		{"000-video-body", goldenDemo, goldenDocToken, Batch{
			Kind: LegacyUsers, To: []string{"ceshib"},
			Message: Message{Type: "video", Body: json.RawMessage(`{
				"filename": "1418105136313.mp4",
				"thumb": "https://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/67279b20-7f69-11e4-8eee-21d3334b3a97",
				"length": 10,
				"secret": "VfEpSmSvEeS7yU8dwa9rAQc-DIL2HhmpujTNfSTsrDt6eNb_",
				"file_length": 58103,
				"thumb_secret": "ZyebKn9pEeSSfY03ROk7ND24zUf74s7HpPN1oMV-1JxN2O2I",
				"url": "https://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/671dfe30-7f69-11e4-ba67-8fef0d502f46"
			}`), From: new("ceshia")},
		}},
		{"000-video-curl", goldenDemo, goldenDemoToken, Batch{
			Kind: LegacyUsers, To: []string{"testd", "testb", "testc"},
			Message: Message{Type: "video", Body: json.RawMessage(`{
				"filename": "1418105136313.mp4",
				"thumb": "http://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/67279b20-7f69-11e4-8eee-21d3334b3a97",
				"length": 0,
				"secret": "VfEpSmSvEeS7yU8dwa9rAQc-DIL2HhmpujTNfSTsrDt6eNb_",
				"file_length": 58103,
				"thumb_secret": "ZyebKn9pEeSSfY03ROk7ND24zUf74s7HpPN1oMV-1JxN2O2I",
				"url": "http://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/671dfe30-7f69-11e4-ba67-8fef0d502f46"
			}`), From: new("testa")},
		}},
		{"000-cmd-body", goldenDemo, goldenDocToken, Batch{
			Kind: LegacyUsers, To: []string{"testb", "testc"},
			Message: Message{Type: "cmd", Body: json.RawMessage(`{"action": "action1"}`),
				From: new("testa"), Ext: legacyExt},
		}},
		{"000-cmd-curl", goldenDemo, goldenDemoToken, Batch{
			Kind: LegacyUsers, To: []string{"testb", "testc"},
			Message: Message{Type: "cmd", Body: json.RawMessage(`{"action": "action1"}`),
				From: new("testa"), Ext: legacyExt},
		}},

		// 001: group messages, POST /messages/chatgroups[/users].
		{"001-txt", goldenOrgApp, goldenAppToken, Batch{
			Kind: Groups, To: []string{"184524748161025"},
			Message: Message{Type: "txt", Body: json.RawMessage(`{"msg": "testmessages"}`),
				From: new("user1"), Ext: silent, RoamIgnoreUsers: []string{}, NeedGroupAck: new(false)},
		}},
		{"001-txt-online", goldenOrgApp, goldenAppToken, Batch{
			Kind: Groups, To: []string{"184524748161025"},
			Message: Message{Type: "txt", Body: json.RawMessage(`{"msg": "testmessages"}`),
				From: new("user1"), Ext: silent, RouteType: "ROUTE_ONLINE", NeedGroupAck: new(false)},
		}},
		{"001-img", goldenOrgApp, goldenAppToken, Batch{
			Kind: Groups, To: []string{"184524748161025"},
			Message: Message{Type: "img", Body: json.RawMessage(`{
				"filename": "testimg.jpg",
				"secret": "VfXXXXNb_",
				"url": "https://XXXX/XXXX/XXXX/chatfiles/55f12940-XXXX-XXXX-8a5b-ff2336f03252",
				"size": {"width": 480, "height": 720}
			}`), From: new("user1")},
		}},
		{"001-audio", goldenOrgApp, goldenAppToken, Batch{
			Kind: Groups, To: []string{"184524748161025"},
			Message: Message{Type: "audio", Body: json.RawMessage(`{
				"url": "https://XXXX/XXXX/XXXX/chatfiles/1dfc7f50-XXXX-XXXX-8a07-7d75b8fb3d42",
				"filename": "testaudio.amr",
				"length": 10,
				"secret": "HfXXXXCjM"
			}`), From: new("user1")},
		}},
		{"001-video", goldenOrgApp, goldenAppToken, Batch{
			Kind: Groups, To: []string{"184524748161025"},
			Message: Message{Type: "video", Body: json.RawMessage(`{
				"filename": "test.avi",
				"thumb": "https://XXXX/XXXX/XXXX/chatfiles/67279b20-7f69-11e4-8eee-21d3334b3a97",
				"length": 0,
				"secret": "VfXXXXNb_",
				"file_length": 58103,
				"thumb_secret": "ZyXXXX2I",
				"url": "https://XXXX/XXXX/XXXX/chatfiles/671dfe30-XXXX-XXXX-ba67-8fef0d502f46"
			}`), From: new("user1")},
		}},
		{"001-file", goldenOrgApp, goldenAppToken, Batch{
			Kind: Groups, To: []string{"184524748161025"},
			Message: Message{Type: "file", Body: json.RawMessage(`{
				"filename": "test.txt",
				"secret": "1-g0XXXXua",
				"url": "https://XXXX/XXXX/XXXX/chatfiles/d7eXXXX7444"
			}`), From: new("user1")},
		}},
		{"001-loc", goldenOrgApp, goldenAppToken, Batch{
			Kind: Groups, To: []string{"184524748161025"},
			Message: Message{Type: "loc", Body: json.RawMessage(`{"lat": "39.966", "lng": "116.322", "addr": "中国北京市海淀区中关村"}`),
				From: new("user1")},
		}},
		{"001-cmd", goldenOrgApp, goldenAppToken, Batch{
			Kind: Groups, To: []string{"184524748161025"},
			Message: Message{Type: "cmd", Body: json.RawMessage(`{"action": "action1"}`), From: new("user1")},
		}},
		{"001-custom", goldenOrgApp, goldenAppToken, Batch{
			Kind: Groups, To: []string{"184524748161025"},
			Message: Message{Type: "custom", Body: json.RawMessage(`{
				"customEvent": "custom_event",
				"customExts": {"ext_key1": "ext_value1"}
			}`), From: new("user1")},
		}},
		{"001-directed", goldenOrgApp, goldenAppToken, Batch{
			Kind: GroupMembers, Scope: "184524748161025", To: []string{"user2", "user3"},
			Message: Message{Type: "txt", Body: json.RawMessage(`{"msg": "testmessages"}`),
				From: new("user1"), Ext: silent},
		}},

		// 002: chat room messages, POST /messages/chatrooms[/users].
		{"002-txt", goldenOrgApp, goldenAppToken, Batch{
			Kind: Rooms, To: []string{"185145305923585"},
			Message: Message{Type: "txt", Body: json.RawMessage(`{"msg": "testmessages"}`),
				From: new("user1"), RoamIgnoreUsers: []string{}},
		}},
		{"002-img", goldenOrgApp, goldenAppToken, Batch{
			Kind: Rooms, To: []string{"185145305923585"},
			Message: Message{Type: "img", Body: json.RawMessage(`{
				"filename": "testimg.jpg",
				"secret": "VfXXXXNb_",
				"url": "https://XXXX/XXXX/XXXX/chatfiles/55f12940-XXXX-XXXX-8a5b-ff2336f03252",
				"size": {"width": 480, "height": 720}
			}`), From: new("user1")},
		}},
		{"002-audio", goldenOrgApp, goldenAppToken, Batch{
			Kind: Rooms, To: []string{"185145305923585"},
			Message: Message{Type: "audio", Body: json.RawMessage(`{
				"url": "https://XXXX/XXXX/XXXX/chatfiles/1dfc7f50-XXXX-XXXX-8a07-7d75b8fb3d42",
				"filename": "testaudio.amr",
				"length": 10,
				"secret": "HfXXXXCjM"
			}`), From: new("user1")},
		}},
		{"002-video", goldenOrgApp, goldenAppToken, Batch{
			Kind: Rooms, To: []string{"185145305923585"},
			Message: Message{Type: "video", Body: json.RawMessage(`{
				"thumb": "https://XXXX/XXXX/XXXX/chatfiles/67279b20-7f69-11e4-8eee-21d3334b3a97",
				"length": 0,
				"secret": "VfXXXXNb_",
				"file_length": 58103,
				"thumb_secret": "ZyXXXX2I",
				"url": "https://XXXX/XXXX/XXXX/chatfiles/671dfe30-XXXX-XXXX-ba67-8fef0d502f46"
			}`), From: new("user1")},
		}},
		{"002-file", goldenOrgApp, goldenAppToken, Batch{
			Kind: Rooms, To: []string{"185145305923585"},
			Message: Message{Type: "file", Body: json.RawMessage(`{
				"filename": "test.txt",
				"secret": "1-g0XXXXua",
				"url": "https://XXXX/XXXX/XXXX/chatfiles/d7eXXXX7444"
			}`), From: new("user1")},
		}},
		{"002-loc", goldenOrgApp, goldenAppToken, Batch{
			Kind: Rooms, To: []string{"185145305923585"},
			Message: Message{Type: "loc", Body: json.RawMessage(`{"lat": "39.966", "lng": "116.322", "addr": "中国北京市海淀区中关村"}`),
				From: new("user1")},
		}},
		{"002-cmd", goldenOrgApp, goldenAppToken, Batch{
			Kind: Rooms, To: []string{"185145305923585"},
			Message: Message{Type: "cmd", Body: json.RawMessage(`{"action": "action1"}`), From: new("user1")},
		}},
		{"002-custom", goldenOrgApp, goldenAppToken, Batch{
			Kind: Rooms, To: []string{"185145305923585"},
			Message: Message{Type: "custom", Body: json.RawMessage(`{
				"customEvent": "custom_event",
				"customExts": {"ext_key1": "ext_value1"}
			}`), From: new("user1")},
		}},
		{"002-directed", goldenOrgApp, goldenAppToken, Batch{
			Kind: RoomMembers, Scope: "185145305923585", To: []string{"user2", "user3"},
			Message: Message{Type: "txt", Body: json.RawMessage(`{"msg": "testmessages"}`), From: new("user1")},
		}},

		// 003: one-to-one messages, Agora Chat flavour, POST /messages/users.
		{"003-txt", goldenAppID, goldenAppToken, Batch{
			Kind: Users, To: []string{"user2"},
			Message: Message{Type: "txt", Body: json.RawMessage(`{"msg": "testmessages"}`),
				From: new("user1"), Ext: silent, RoamIgnoreUsers: []string{}},
		}},
		{"003-txt-online", goldenAppID, goldenAppToken, Batch{
			Kind: Users, To: []string{"user2"},
			Message: Message{Type: "txt", Body: json.RawMessage(`{"msg": "testmessages"}`),
				From: new("user1"), Ext: silent, RoamIgnoreUsers: []string{},
				RouteType: "ROUTE_ONLINE", SyncDevice: new(true)},
		}},
		{"003-img", goldenAppID, goldenAppToken, Batch{
			Kind: Users, To: []string{"user2"},
			Message: Message{Type: "img", Body: json.RawMessage(`{
				"filename": "testimg.jpg",
				"secret": "VfXXXXNb_",
				"url": "https://XXXX/app-id/XXXX/chatfiles/55f12940-XXXX-XXXX-8a5b-ff2336f03252",
				"size": {"width": 480, "height": 720}
			}`), From: new("user1")},
		}},
		{"003-audio", goldenAppID, goldenAppToken, Batch{
			Kind: Users, To: []string{"user2"},
			Message: Message{Type: "audio", Body: json.RawMessage(`{
				"url": "https://XXXX/XXXX/XXXX/chatfiles/1dfc7f50-XXXX-XXXX-8a07-7d75b8fb3d42",
				"filename": "testaudio.amr",
				"length": 10,
				"secret": "HfXXXXCjM"
			}`), From: new("user1")},
		}},
		{"003-video", goldenAppID, goldenAppToken, Batch{
			Kind: Users, To: []string{"user2"},
			Message: Message{Type: "video", Body: json.RawMessage(`{
				"filename": "test.avi",
				"thumb": "https://XXXX/app-id/XXXX/chatfiles/67279b20-7f69-11e4-8eee-21d3334b3a97",
				"length": 0,
				"secret": "VfXXXXNb_",
				"file_length": 58103,
				"thumb_secret": "ZyXXXX2I",
				"url": "https://XXXX/app-id/XXXX/chatfiles/671dfe30-XXXX-XXXX-ba67-8fef0d502f46"
			}`), From: new("user1")},
		}},
		{"003-file", goldenAppID, goldenAppToken, Batch{
			Kind: Users, To: []string{"user2"},
			Message: Message{Type: "file", Body: json.RawMessage(`{
				"filename": "test.txt",
				"secret": "1-g0XXXXua",
				"url": "https://XXXX/app-id/XXXX/chatfiles/d7eXXXX7444"
			}`), From: new("user1")},
		}},
		{"003-loc", goldenAppID, goldenAppToken, Batch{
			Kind: Users, To: []string{"user2"},
			Message: Message{Type: "loc", Body: json.RawMessage(`{"lat": "39.966", "lng": "116.322", "addr": "中国北京市海淀区中关村"}`),
				From: new("user1")},
		}},
		{"003-cmd", goldenAppID, goldenAppToken, Batch{
			Kind: Users, To: []string{"user2"},
			Message: Message{Type: "cmd", Body: json.RawMessage(`{"action": "action1"}`), From: new("user1")},
		}},
		{"003-custom", goldenAppID, goldenAppToken, Batch{
			Kind: Users, To: []string{"user2"},
			Message: Message{Type: "custom", Body: json.RawMessage(`{
				"customEvent": "custom_event",
				"customExts": {"ext_key1": "ext_value1"}
			}`), From: new("user1")},
		}},
	}
}

// TestGoldenCoverage checks that every golden file has a case and every case
// a golden file, so that no seed example is silently dropped.
func TestGoldenCoverage(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, p := range paths {
		files = append(files, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	var names []string
	seen := map[string]bool{}
	for _, tc := range goldenCases() {
		if seen[tc.name] {
			t.Errorf("case %s: listed twice", tc.name)
		}
		seen[tc.name] = true
		names = append(names, tc.name)
	}
	for _, f := range files {
		if !seen[f] {
			t.Errorf("golden file %s.json: no case in goldenCases", f)
		}
	}
	for _, n := range names {
		if !slices.Contains(files, n) {
			t.Errorf("case %s: no golden file testdata/golden/%s.json", n, n)
		}
	}
	// The seeds hold 10 (000: 5 body blocks, 5 curls), 10, 9 and 9 examples.
	want := map[string]int{"000": 10, "001": 10, "002": 9, "003": 9}
	got := map[string]int{}
	for _, f := range files {
		seed, _, _ := strings.Cut(f, "-")
		got[seed]++
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("golden files per seed: got %v, want %v", got, want)
	}
}

// TestGolden builds the request of each case and compares it with the
// example transcribed from the seed.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			g := readGolden(t, tc.name)
			if seed, _, _ := strings.Cut(tc.name, "-"); g.Seed != seed {
				t.Errorf("golden seed: got %q, want %q (from the file name)", g.Seed, seed)
			}
			if g.Section == "" {
				t.Error("golden section: empty")
			}

			cfg := tc.cfg
			cfg.Tokens = StaticToken(tc.token)
			c, err := New(cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			req, err := c.NewRequest(context.Background(), tc.batch, tc.token)
			if err != nil {
				t.Fatalf("NewRequest: %v", err)
			}

			if req.Method != g.Method {
				t.Errorf("method: got %s, want %s", req.Method, g.Method)
			}
			if req.URL.Path != g.Path {
				t.Errorf("path: got %s, want %s", req.URL.Path, g.Path)
			}
			if req.URL.RawQuery != "" {
				t.Errorf("query: got %q, want none", req.URL.RawQuery)
			}
			if len(g.Headers) == 0 {
				t.Error("golden headers: none")
			}
			for name, want := range g.Headers {
				if got := req.Header.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("header %s: got %q, want %q", name, got, want)
				}
			}

			raw, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			got, want := goldenDecode(t, "request body", raw), goldenDecode(t, "golden body", g.Body)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body:\n got %s\nwant %s", goldenCanonical(t, got), goldenCanonical(t, want))
			}
		})
	}
}

// readGolden reads testdata/golden/name.json strictly.
func readGolden(t *testing.T, name string) golden {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var g golden
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	if dec.More() {
		t.Fatalf("golden %s: data after the object", name)
	}
	return g
}

// goldenDecode parses one JSON value, keeping numbers as written.
func goldenDecode(t *testing.T, what string, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, raw)
	}
	if dec.More() {
		t.Fatalf("%s: data after the value\n%s", what, raw)
	}
	return v
}

// goldenCanonical prints a decoded value with sorted keys, for diffing by eye.
func goldenCanonical(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
