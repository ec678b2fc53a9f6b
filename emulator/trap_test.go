package emulator

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestTrap(t *testing.T) {
	h := start(t, Config{})
	if !strings.HasPrefix(h.run.TrapURL, "http://127.0.0.1:") || h.run.TrapURL == h.run.URL {
		t.Fatalf("got TrapURL %q (URL %q), want another http://127.0.0.1:PORT", h.run.TrapURL, h.run.URL)
	}
	cases := []struct {
		name, method, path, token string
		body                      any
		want                      map[string]any // the answer's data
		rec                       TrapRequest
	}{
		{"a send names its to", http.MethodPost, easemob + suffixes[KindUsers], testToken, txt("a", "b"),
			map[string]any{"a": "1", "b": "1"},
			TrapRequest{Method: http.MethodPost, Path: easemob + suffixes[KindUsers], Authorization: true, BodyLen: len(`{"body":{"msg":"hello"},"from":"admin1","to":["a","b"],"type":"txt"}`)}},
		{"no body", http.MethodGet, "/anything", "", nil,
			map[string]any{}, TrapRequest{Method: http.MethodGet, Path: "/anything"}},
		{"a secret", http.MethodPost, "/token", "", `{"client_id":"x","client_secret":"y"}`,
			map[string]any{}, TrapRequest{Method: http.MethodPost, Path: "/token", ClientSecret: true, BodyLen: 37}},
		{"to not a list", http.MethodPut, "/x/y", "", `{"to":"a"}`,
			map[string]any{}, TrapRequest{Method: http.MethodPut, Path: "/x/y", BodyLen: 10}},
		{"not JSON", http.MethodPost, "/x", "", `client_secret=y&to=a`,
			map[string]any{}, TrapRequest{Method: http.MethodPost, Path: "/x", ClientSecret: true, BodyLen: 20}},
	}
	var want []TrapRequest
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h.do(c.method, h.run.TrapURL+c.path, c.token, c.body)
			if a.status != http.StatusOK || !reflect.DeepEqual(a.data(), c.want) {
				t.Errorf("got %d %v, want 200 and data %v", a.status, a.body, c.want)
			}
			want = append(want, c.rec)
			if got := h.run.TrapRequests(); !slices.Equal(got, want) {
				t.Errorf("got trap requests %+v, want %+v", got, want)
			}
		})
	}
	st := h.run.Stats()
	if st.TrapRequests != len(cases) || st.Requests != 0 || st.Delivered != 0 {
		t.Errorf("got %d trap requests, %d requests, %d deliveries, want %d, 0, 0", st.TrapRequests, st.Requests, st.Delivered, len(cases))
	}
	if a := h.do(http.MethodGet, "/_emulator/stats", "", nil); a.body["trap_requests"] != float64(len(cases)) {
		t.Errorf("got stats %v, want trap_requests %d", a.body, len(cases))
	}

	h.client.CloseIdleConnections()
	if err := h.run.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if resp, err := direct.Get(h.run.TrapURL + "/after"); err == nil {
		resp.Body.Close()
		t.Errorf("GET the trap after Close: got status %d, want an error", resp.StatusCode)
	}
}
