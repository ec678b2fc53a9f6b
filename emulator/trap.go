package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
)

// TrapRequest is one request that the trap received.
type TrapRequest struct {
	Method        string
	Path          string
	Authorization bool // the request had an Authorization header
	ClientSecret  bool // its body contained "client_secret"
	BodyLen       int  // the length of its body, in bytes
}

// trapAnswer is the answer of the trap: what a successful send looks like.
type trapAnswer struct {
	Data map[string]string `json:"data"`
}

// serveTrap records a request to the trap and answers it 200 as if it
// had delivered to every ID in the to array of its JSON body. It is
// hostile on purpose: a client that followed a redirect fault there would
// believe it delivered.
func (s *Server) serveTrap(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	s.mu.Lock()
	s.trapped = append(s.trapped, TrapRequest{
		Method:        r.Method,
		Path:          r.URL.Path,
		Authorization: r.Header.Get("Authorization") != "",
		ClientSecret:  bytes.Contains(raw, []byte("client_secret")),
		BodyLen:       len(raw),
	})
	s.mu.Unlock()

	data := map[string]string{}
	var body struct {
		To []string `json:"to"`
	}
	if json.Unmarshal(raw, &body) == nil {
		for _, id := range body.To {
			data[id] = "1"
		}
	}
	writeJSON(w, http.StatusOK, trapAnswer{Data: data})
}

// TrapRequests returns every request the trap received, in order.
func (r *Running) TrapRequests() []TrapRequest {
	r.Server.mu.Lock()
	defer r.Server.mu.Unlock()
	return slices.Clone(r.Server.trapped)
}
