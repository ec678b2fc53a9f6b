package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testToken = "test-token"
	easemob   = "/org1/app1"
	agora     = "/app-id/5a1b2c3d"
)

// epoch is time zero of the fake clock.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// suffixes maps each kind to its path under the base.
var suffixes = map[string]string{
	KindUsers:        "/messages/users",
	KindGroups:       "/messages/chatgroups",
	KindRooms:        "/messages/chatrooms",
	KindGroupMembers: "/messages/chatgroups/users",
	KindRoomMembers:  "/messages/chatrooms/users",
	KindLegacy:       "/messages",
}

// direct is a client that never uses a proxy, for tests without a harness.
var direct = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to epoch+d.
func (c *fakeClock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = epoch.Add(d)
}

// harness is a Running emulator and a client that talks to it.
type harness struct {
	t      *testing.T
	run    *Running
	client *http.Client
}

// start listens on 127.0.0.1 with cfg (Token defaults to testToken) and
// closes the emulator when the test ends.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	return listen(t, cfg)
}

// listen is start with cfg as it is.
func listen(t *testing.T, cfg Config) *harness {
	t.Helper()
	run, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32},
		Timeout:   10 * time.Second,
	}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		if err := run.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &harness{t: t, run: run, client: client}
}

// answer is a decoded HTTP answer.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	err    error // transport error: no answer
}

// do sends a request; body is sent as is if it is a string, else as JSON;
// token "" sends no Authorization header.
func (h *harness) do(method, path, token string, body any) answer {
	h.t.Helper()
	req := h.request(context.Background(), method, path, token, body)
	resp, err := h.client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	a := readAnswer(resp)
	if len(a.raw) > 0 {
		h.t.Fatalf("%s %s: answer %d is not a JSON object: %q", method, path, resp.StatusCode, a.raw)
	}
	return a.answer
}

// async posts body to the kind's path under the Easemob base, with the
// token and ctx, and delivers the answer on the channel once there is one.
func (h *harness) async(ctx context.Context, kind string, body any) <-chan answer {
	h.t.Helper()
	req := h.request(ctx, http.MethodPost, easemob+suffixes[kind], testToken, body)
	out := make(chan answer, 1)
	go func() {
		resp, err := h.client.Do(req)
		if err != nil {
			out <- answer{err: err}
			return
		}
		out <- readAnswer(resp).answer
	}()
	return out
}

// request builds a request as do sends it.
func (h *harness) request(ctx context.Context, method, path, token string, body any) *http.Request {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	url := path
	if !strings.HasPrefix(path, "http://") {
		url = h.run.URL + path
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// rawAnswer is an answer and its body as sent.
type rawAnswer struct {
	answer
	raw []byte // the body, if it is not a JSON object
}

// readAnswer reads and closes resp.
func readAnswer(resp *http.Response) rawAnswer {
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	a := rawAnswer{answer: answer{status: resp.StatusCode, header: resp.Header, err: err}}
	if err == nil && len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &a.body) != nil {
		a.raw = raw
	}
	return a
}

// waitFor waits until cond holds, for up to 5 s, and fails the test if it
// never does.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5 s for %s, in vain", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// send posts body to the kind's path under the Easemob base, with the token.
func (h *harness) send(kind string, body any) answer {
	h.t.Helper()
	return h.do(http.MethodPost, easemob+suffixes[kind], testToken, body)
}

// txt is a valid text message to the given IDs.
func txt(to ...string) map[string]any {
	return map[string]any{"from": "admin1", "to": to, "type": "txt", "body": map[string]any{"msg": "hello"}}
}

// directed is a valid text message to users inside the group or room scope.
func directed(scope string, users ...string) map[string]any {
	return with(txt(scope), "users", users)
}

// legacy is a valid legacy text message.
func legacy(targetType string, targets ...string) map[string]any {
	return map[string]any{"target_type": targetType, "target": targets, "msg": map[string]any{"type": "txt", "msg": "hello"}}
}

// absent, as a value given to with, deletes the key.
type absentT struct{}

var absent absentT

// with returns a copy of m with the keys and values of kv set.
func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if _, ok := kv[i+1].(absentT); ok {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

// ids returns n IDs prefix0, prefix1, ...
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// str returns a field of a decoded answer as a string ("" if it is not).
func (a answer) str(key string) string {
	s, _ := a.body[key].(string)
	return s
}

// data returns the data object of an answer.
func (a answer) data() map[string]any {
	d, _ := a.body["data"].(map[string]any)
	return d
}
