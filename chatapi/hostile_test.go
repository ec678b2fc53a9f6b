package chatapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"imcast/chatapi"
)

// trap is a second server that records everything it receives and answers
// every request as a successful send: a client that followed a redirect to
// it would believe the message delivered.
type trap struct {
	*httptest.Server
	mu   sync.Mutex
	got  []string // method and path of each request
	body []string
}

func newTrap(t *testing.T) *trap {
	t.Helper()
	tr := &trap{}
	tr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		tr.mu.Lock()
		tr.got = append(tr.got, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		tr.body = append(tr.body, string(b))
		tr.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"stolen","expires_in":3600,"data":{"u1":"1"}}`)
	}))
	t.Cleanup(tr.Close)
	return tr
}

func (tr *trap) requests() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.got...)
}

// redirector answers every request with status and a Location on to.
func redirector(t *testing.T, status int, to string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Location", to+r.URL.Path+"?sig=abc")
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRedirectsAreNeverFollowed(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			tr := newTrap(t)
			srv := redirector(t, status, tr.URL)

			t.Run("message", func(t *testing.T) {
				c := newClient(t, srv.URL, chatapi.StaticToken("bearer-secret"), time.Second)
				_, err := c.Send(context.Background(), txt(chatapi.Users, "", "u1"))
				if !errors.Is(err, chatapi.ErrRedirect) || chatapi.OutcomeOf(err) != chatapi.Permanent {
					t.Fatalf("Send: got %v (outcome %v), want a permanent ErrRedirect", err, chatapi.OutcomeOf(err))
				}
				if !strings.Contains(err.Error(), tr.URL+"/demo/imcast/messages/users") || strings.Contains(err.Error(), "sig=") {
					t.Errorf("error %q: want the Location named, without its query", err)
				}
			})
			t.Run("token", func(t *testing.T) {
				c, err := chatapi.New(chatapi.Config{Host: srv.URL, Org: "demo", App: "imcast", ClientID: "id", ClientSecret: "client-secret-xyz", Timeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Send(context.Background(), txt(chatapi.Users, "", "u1"))
				if !errors.Is(err, chatapi.ErrRedirect) || !errors.Is(err, chatapi.ErrCredentials) {
					t.Fatalf("Send: got %v, want ErrRedirect, stopping the run as ErrCredentials", err)
				}
				if strings.Contains(err.Error(), "client-secret-xyz") {
					t.Errorf("error %q holds the client secret", err)
				}
			})
			t.Run("upload", func(t *testing.T) {
				c := newClient(t, srv.URL, chatapi.StaticToken("bearer-secret"), time.Second)
				if _, err := c.Upload(context.Background(), "a.txt", []byte("hello"), false); !errors.Is(err, chatapi.ErrRedirect) {
					t.Fatalf("Upload: got %v, want ErrRedirect", err)
				}
			})
			if got := tr.requests(); len(got) != 0 {
				t.Errorf("the redirect target received %d requests, want none: %q", len(got), got)
			}
		})
	}
}

func TestAnswersAreReadByClass(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   chatapi.Outcome // 0: an answer naming u1
	}{
		{status: 200, body: `{"data":{"u1":"11"}}`},
		{status: 201, body: `{"data":{"u1":"11"}}`},
		{status: 202, body: `{"data":{"u1":"11"}}`},
		{status: 200, body: `{"action":"post"}`, want: chatapi.Ambiguous},
		{status: 204, want: chatapi.Ambiguous},
		{status: 202, body: `queued`, want: chatapi.Ambiguous},
		{status: 409, body: `{"error":"conflict"}`, want: chatapi.Ambiguous},
		{status: 418, want: chatapi.Ambiguous},
		{status: 405, want: chatapi.Ambiguous},
		{status: 400, body: `{"error":"invalid_request_body"}`, want: chatapi.Permanent},
		{status: 429, want: chatapi.NotDelivered},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.status, tt.body), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL, chatapi.StaticToken("t"), time.Second)
			res, err := c.Send(context.Background(), txt(chatapi.Users, "", "u1"))
			if tt.want == 0 {
				if err != nil || res.IDs["u1"] != "11" {
					t.Fatalf("got %v, %v; want u1 sent as 11", res.IDs, err)
				}
				return
			}
			if got := chatapi.OutcomeOf(err); got != tt.want {
				t.Errorf("outcome: got %v, want %v (error: %v)", got, tt.want, err)
			}
		})
	}
}

// TestSecretsAreNotTakenFromAnswers has a hostile server echo the bearer
// token as a message ID and as an error code, and give IDs that are no
// IDs: none of it is taken as a delivery, and no secret comes back.
func TestSecretsAreNotTakenFromAnswers(t *testing.T) {
	const token = "bearer-secret-value"
	status := 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
		if status == 200 {
			fmt.Fprintf(w, `{"data":{"u1":%q,"u2":"","u3":null,"u4":"77"}}`, token)
			return
		}
		fmt.Fprintf(w, `{"error":%q,"error_description":"x"}`, token)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, chatapi.StaticToken(token), time.Second)
	res, err := c.Send(context.Background(), txt(chatapi.Users, "", "u1", "u2", "u3", "u4"))
	if err != nil || len(res.IDs) != 1 || res.IDs["u4"] != "77" {
		t.Errorf("got %v, %v; want only u4 sent, as 77", res.IDs, err)
	}
	status = 400
	_, err = c.Send(context.Background(), txt(chatapi.Users, "", "u1"))
	if err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("error %v: want one without the token", err)
	}
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, `{"data":{"u1":"success","u2":"fail","u3":"user not found"}}`)
	}))
	t.Cleanup(legacy.Close)
	c = newClient(t, legacy.URL, chatapi.StaticToken(token), time.Second)
	res, err = c.Send(context.Background(), txt(chatapi.LegacyUsers, "", "u1", "u2", "u3"))
	if err != nil || len(res.IDs) != 1 || res.IDs["u1"] != "success" {
		t.Errorf("legacy: got %v, %v; want only u1 delivered", res.IDs, err)
	}
}
