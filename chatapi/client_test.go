package chatapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"imcast/chatapi"
	"imcast/emulator"
)

// startEmulator serves an emulator on 127.0.0.1 for the test's lifetime.
func startEmulator(t *testing.T, cfg emulator.Config) *emulator.Running {
	t.Helper()
	srv, err := emulator.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func newClient(t *testing.T, host string, tokens chatapi.TokenSource, timeout time.Duration) *chatapi.Client {
	t.Helper()
	c, err := chatapi.New(chatapi.Config{Host: host, Org: "demo", App: "imcast", Tokens: tokens, Timeout: timeout})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

func txt(kind chatapi.Kind, scope string, to ...string) chatapi.Batch {
	return chatapi.Batch{Kind: kind, Scope: scope, To: to, Message: chatapi.Message{
		Type: "txt", Body: json.RawMessage(`{"msg":"hello"}`),
	}}
}

func TestSendDelivers(t *testing.T) {
	srv := startEmulator(t, emulator.Config{Token: "good"})
	c := newClient(t, srv.URL, chatapi.StaticToken("good"), 0)
	tests := []struct {
		name      string
		batch     chatapi.Batch
		sameID    bool   // every recipient gets one ID (directed)
		wantValue string // the value every recipient gets, if fixed
	}{
		{name: "users", batch: txt(chatapi.Users, "", "u1", "u2", "u3")},
		{name: "groups", batch: txt(chatapi.Groups, "", "g1", "g2")},
		{name: "rooms", batch: txt(chatapi.Rooms, "", "r1")},
		{name: "group members", batch: txt(chatapi.GroupMembers, "g1", "m1", "m2"), sameID: true},
		{name: "room members", batch: txt(chatapi.RoomMembers, "r1", "m1", "m2", "m3"), sameID: true},
		{name: "legacy users", batch: txt(chatapi.LegacyUsers, "", "u1", "u2"), wantValue: "success"},
		{name: "legacy groups", batch: txt(chatapi.LegacyGroups, "", "g1"), wantValue: "success"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Send(context.Background(), tt.batch)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(res.IDs) != len(tt.batch.To) {
				t.Fatalf("got %d IDs %v, want one for each of %v", len(res.IDs), res.IDs, tt.batch.To)
			}
			seen := map[string]bool{}
			for _, to := range tt.batch.To {
				id := res.IDs[to]
				switch {
				case id == "":
					t.Errorf("recipient %s: no message ID", to)
				case tt.wantValue != "" && id != tt.wantValue:
					t.Errorf("recipient %s: got %q, want %q", to, id, tt.wantValue)
				}
				seen[id] = true
			}
			if tt.sameID && len(seen) != 1 {
				t.Errorf("directed batch: got IDs %v, want one ID for all members", res.IDs)
			}
			if !tt.sameID && tt.wantValue == "" && len(seen) != len(tt.batch.To) {
				t.Errorf("got IDs %v, want a distinct ID per recipient", res.IDs)
			}
			// the emulator names the legacy kinds as the client does
			kind := string(tt.batch.Kind)
			for _, to := range tt.batch.To {
				if n := srv.Delivered(kind, tt.batch.Scope, to); n != 1 {
					t.Errorf("emulator delivered %s to %s/%s %d times, want 1", kind, tt.batch.Scope, to, n)
				}
			}
		})
	}
}

// refresher counts refreshes and hands out the good token after the first.
type refresher struct {
	token     atomic.Value
	refreshes atomic.Int32
}

func (r *refresher) Token(context.Context) (string, error) { return r.token.Load().(string), nil }
func (r *refresher) Refresh(context.Context, string) error {
	r.refreshes.Add(1)
	r.token.Store("good")
	return nil
}

func TestSendRefreshesTokenOn401(t *testing.T) {
	srv := startEmulator(t, emulator.Config{Token: "good"})
	r := &refresher{}
	r.token.Store("expired")
	c := newClient(t, srv.URL, r, 0)
	if _, err := c.Send(context.Background(), txt(chatapi.Users, "", "u1")); err != nil {
		t.Fatalf("Send after a refresh: %v", err)
	}
	if got := r.refreshes.Load(); got != 1 {
		t.Errorf("got %d refreshes, want 1", got)
	}
	if n := srv.Delivered("users", "", "u1"); n != 1 {
		t.Errorf("delivered %d times, want 1", n)
	}
}

func TestSendFailureOutcomes(t *testing.T) {
	tooMany := make([]string, 601)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("u%d", i)
	}
	tests := []struct {
		name      string
		cfg       emulator.Config
		token     string
		timeout   time.Duration
		batch     chatapi.Batch
		want      chatapi.Outcome
		status    int
		desc      string // wanted error_description, when the server sends one
		delivered int    // deliveries the emulator must have recorded to u1
	}{
		{name: "429 call quota", cfg: emulator.Config{Faults: emulator.Faults{TooManyRequests: 1}},
			want: chatapi.NotDelivered, status: 429},
		{name: "403 message quota", cfg: emulator.Config{Faults: emulator.Faults{QuotaForbidden: 1}},
			want: chatapi.NotDelivered, status: 403, desc: "message send reach limit"},
		{name: "503 throttled", cfg: emulator.Config{Faults: emulator.Faults{Unavailable: 1}},
			want: chatapi.NotDelivered, status: 503},
		{name: "401 wrong token, no refresher", cfg: emulator.Config{Token: "good"}, token: "bad",
			want: chatapi.NotDelivered, status: 401},
		{name: "400 too many recipients", batch: txt(chatapi.Users, "", tooMany...),
			want: chatapi.Permanent, status: 400, desc: "params to's size can't exceed limit 600"},
		{name: "400 empty from", batch: chatapi.Batch{Kind: chatapi.Users, To: []string{"u1"}, Message: chatapi.Message{
			Type: "txt", Body: json.RawMessage(`{"msg":"x"}`), From: new(""),
		}}, want: chatapi.Permanent, status: 400, desc: "param from can't be empty"},
		{name: "404 legacy unknown user", cfg: emulator.Config{UnknownIDs: []string{"u1"}},
			batch: txt(chatapi.LegacyUsers, "", "u1"), want: chatapi.Permanent, status: 404},
		{name: "500 before delivering", cfg: emulator.Config{Faults: emulator.Faults{ErrorBefore: 1}},
			want: chatapi.Ambiguous, status: 500},
		{name: "500 after delivering", cfg: emulator.Config{Faults: emulator.Faults{ErrorAfter: 1}},
			want: chatapi.Ambiguous, status: 500, delivered: 1},
		{name: "reset after delivering", cfg: emulator.Config{Faults: emulator.Faults{ResetAfter: 1}},
			want: chatapi.Ambiguous, delivered: 1},
		{name: "timeout after the request was written", cfg: emulator.Config{Faults: emulator.Faults{Latency: 2 * time.Second}},
			timeout: 200 * time.Millisecond, want: chatapi.Ambiguous, delivered: 1}, // counted at arrival, answered late
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startEmulator(t, tt.cfg)
			token := tt.token
			if token == "" {
				token = tt.cfg.Token
			}
			if token == "" {
				token = "any"
			}
			c := newClient(t, srv.URL, chatapi.StaticToken(token), tt.timeout)
			batch := tt.batch
			if batch.To == nil {
				batch = txt(chatapi.Users, "", "u1")
			}
			_, err := c.Send(context.Background(), batch)
			var e *chatapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("Send: got error %v, want a *chatapi.Error", err)
			}
			if e.Outcome != tt.want || chatapi.OutcomeOf(err) != tt.want {
				t.Errorf("outcome: got %v, want %v (error: %v)", e.Outcome, tt.want, err)
			}
			if e.Status != tt.status {
				t.Errorf("status: got %d, want %d", e.Status, tt.status)
			}
			if tt.desc != "" && e.Description != tt.desc {
				t.Errorf("description: got %q, want %q", e.Description, tt.desc)
			}
			if n := srv.Delivered("users", "", "u1"); n != tt.delivered {
				t.Errorf("emulator delivered to u1 %d times, want %d", n, tt.delivered)
			}
		})
	}
}

func TestSendConnectionNeverOpened(t *testing.T) {
	// A port that was free a moment ago: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, "http://"+addr, chatapi.StaticToken("t"), time.Second)
	_, err = c.Send(context.Background(), txt(chatapi.Users, "", "u1"))
	if got := chatapi.OutcomeOf(err); got != chatapi.NotDelivered {
		t.Fatalf("outcome: got %v, want %v (error: %v)", got, chatapi.NotDelivered, err)
	}
}

func TestSendRetryAfter(t *testing.T) {
	srv := startEmulator(t, emulator.Config{Faults: emulator.Faults{TooManyRequests: 1}})
	c := newClient(t, srv.URL, chatapi.StaticToken("t"), 0)
	_, err := c.Send(context.Background(), txt(chatapi.Users, "", "u1"))
	var e *chatapi.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a *chatapi.Error", err)
	}
	if e.RetryAfter != time.Second {
		t.Errorf("RetryAfter: got %v, want 1s from the emulator's Retry-After header", e.RetryAfter)
	}
}

func TestNewRefusesPlainHTTPToARemoteHost(t *testing.T) {
	tests := []struct {
		host    string
		wantErr error
	}{
		{host: "http://a1.easemob.com", wantErr: chatapi.ErrInsecureHost},
		{host: "http://10.0.0.1:8080", wantErr: chatapi.ErrInsecureHost},
		{host: "http://127.0.0.1:8080"},
		{host: "http://localhost:8080"},
		{host: "http://[::1]:8080"},
		{host: "https://a1.easemob.com"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			_, err := chatapi.New(chatapi.Config{Host: tt.host, AppID: "x", Tokens: chatapi.StaticToken("t")})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestRefusedIsAQuotaRefusalOnly(t *testing.T) {
	tests := []struct {
		err         error
		want, calls bool
	}{
		{&chatapi.Error{Outcome: chatapi.NotDelivered, Status: http.StatusTooManyRequests}, true, true},
		{&chatapi.Error{Outcome: chatapi.NotDelivered, Status: http.StatusForbidden}, true, false},
		{&chatapi.Error{Outcome: chatapi.NotDelivered, Status: http.StatusServiceUnavailable}, true, false},
		{fmt.Errorf("wrapped: %w", &chatapi.Error{Outcome: chatapi.NotDelivered, Status: http.StatusTooManyRequests}), true, true},
		{&chatapi.Error{Outcome: chatapi.Ambiguous, Status: http.StatusServiceUnavailable}, false, false},
		{&chatapi.Error{Outcome: chatapi.Ambiguous, Status: http.StatusTooManyRequests}, false, false},
		{&chatapi.Error{Outcome: chatapi.NotDelivered, Status: http.StatusInternalServerError}, false, false},
		{&chatapi.Error{Outcome: chatapi.Permanent, Status: http.StatusBadRequest}, false, false},
		{errors.New("no status"), false, false},
		{nil, false, false},
	}
	for _, tt := range tests {
		if got := chatapi.Refused(tt.err); got != tt.want {
			t.Errorf("Refused(%v) = %v, want %v", tt.err, got, tt.want)
		}
		if got := chatapi.RefusedCalls(tt.err); got != tt.calls {
			t.Errorf("RefusedCalls(%v) = %v, want %v", tt.err, got, tt.calls)
		}
	}
}
