package chatapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"imcast/chatapi"
	"imcast/emulator"
)

// clock is a settable clock for the emulator.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func credClient(t *testing.T, url, id, secret string) *chatapi.Client {
	t.Helper()
	c, err := chatapi.New(chatapi.Config{Host: url, AppID: "app", ClientID: id, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientCredentialsFetchAndRefreshOn401(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}
	srv := startEmulator(t, emulator.Config{ClientID: "id", ClientSecret: "s3cret", TokenTTL: time.Hour, Now: clk.Now})
	c := credClient(t, srv.URL, "id", "s3cret")
	for i := range 3 {
		if _, err := c.Send(context.Background(), txt(chatapi.Users, "", "u1")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if n := srv.Stats().TokensIssued; n != 1 {
		t.Errorf("after 3 sends: %d tokens issued, want 1 (the token is kept)", n)
	}
	// The server's clock runs past the token's life while the client still
	// thinks it fresh: the 401 makes it fetch a new one and send again.
	clk.Add(2 * time.Hour)
	if _, err := c.Send(context.Background(), txt(chatapi.Users, "", "u2")); err != nil {
		t.Fatalf("send after expiry: %v", err)
	}
	st := srv.Stats()
	if st.TokensIssued != 2 || st.Responses[401] != 1 {
		t.Errorf("tokens issued %d, 401 answers %d; want 2 and 1", st.TokensIssued, st.Responses[401])
	}
	if srv.Delivered("users", "", "u2") != 1 {
		t.Error("u2 was not delivered once")
	}
}

func TestClientCredentialsRefusedNamesNoSecret(t *testing.T) {
	srv := startEmulator(t, emulator.Config{ClientID: "id", ClientSecret: "right-secret"})
	c := credClient(t, srv.URL, "id", "wrong-secret-value")
	_, err := c.Send(context.Background(), txt(chatapi.Users, "", "u1"))
	if !errors.Is(err, chatapi.ErrCredentials) {
		t.Fatalf("got %v, want ErrCredentials", err)
	}
	if chatapi.OutcomeOf(err) != chatapi.NotDelivered {
		t.Errorf("outcome %v, want not delivered", chatapi.OutcomeOf(err))
	}
	if msg := err.Error(); strings.Contains(msg, "wrong-secret-value") || !strings.Contains(msg, "client_secret does not match") {
		t.Errorf("error %q: want the server's reason and no secret", msg)
	}
	_, _, err = c.CheckToken(context.Background())
	if !errors.Is(err, chatapi.ErrCredentials) {
		t.Errorf("CheckToken: got %v, want ErrCredentials", err)
	}
}

func TestTokensAreRenewedAtHalfLife(t *testing.T) {
	srv := startEmulator(t, emulator.Config{ClientID: "id", ClientSecret: "s", TokenTTL: 2 * time.Second})
	c := credClient(t, srv.URL, "id", "s")
	deadline := time.Now().Add(3500 * time.Millisecond)
	sends := 0
	for time.Now().Before(deadline) {
		if _, err := c.Send(context.Background(), txt(chatapi.Rooms, "", "r1")); err != nil {
			t.Fatalf("send %d: %v", sends, err)
		}
		sends++
		time.Sleep(100 * time.Millisecond)
	}
	st := srv.Stats()
	if st.Responses[401] != 0 {
		t.Errorf("%d answers were 401: a stale token was sent", st.Responses[401])
	}
	if st.TokensIssued < 3 {
		t.Errorf("%d tokens issued over 3.5 s of 2 s tokens, want at least 3 (renewed at half life)", st.TokensIssued)
	}
}

func TestCheckTokenWithAFixedToken(t *testing.T) {
	srv := startEmulator(t, emulator.Config{})
	c := newClient(t, srv.URL, chatapi.StaticToken("t"), 0)
	fetched, _, err := c.CheckToken(context.Background())
	if err != nil || fetched {
		t.Errorf("got fetched %v, %v; want not fetched and no error", fetched, err)
	}
	if n := srv.Stats().TokenRequests; n != 0 {
		t.Errorf("%d token requests for a fixed token", n)
	}
}

func TestUpload(t *testing.T) {
	srv := startEmulator(t, emulator.Config{})
	c := newClient(t, srv.URL, chatapi.StaticToken("t"), 0)
	up, err := c.Upload(context.Background(), "pics/pic.bin", []byte("picture bytes"), true)
	if err != nil {
		t.Fatal(err)
	}
	ups := srv.Uploads()
	if len(ups) != 1 {
		t.Fatalf("%d uploads, want 1", len(ups))
	}
	got := ups[0]
	if up.UUID != got.UUID || up.Secret != got.Secret || up.URL != c.BaseURL()+"/chatfiles/"+got.UUID {
		t.Errorf("upload %+v; emulator has %+v", up, got)
	}
	if !got.Restricted || got.Filename != "pic.bin" || got.Size != int64(len("picture bytes")) {
		t.Errorf("emulator recorded %+v, want restricted pic.bin of 13 bytes", got)
	}
}

// TestScrubEscapedSecrets: a secret comes out of an error however a
// server echoing the request wrote it: as is, as a JSON string, as a URL
// query; a secret under 4 bytes is left (it would garble words).
func TestScrubEscapedSecrets(t *testing.T) {
	for _, secret := range []string{"p&ss<w>rd99", `sec"ret\\zz`, "plain-secret-42", "a b+c/d"} {
		quoted, _ := json.Marshal(secret)
		for _, echo := range []string{secret, string(quoted), url.QueryEscape(secret)} {
			if got := chatapi.Scrub("got "+echo+" back", secret); strings.Contains(got, strings.Trim(echo, `"`)) || !strings.Contains(got, "[redacted]") {
				t.Errorf("secret %q echoed as %q: scrubbed to %q", secret, echo, got)
			}
		}
	}
	if got := chatapi.Scrub("a cab", "ab"); got != "a cab" {
		t.Errorf("a 2-byte secret garbled %q", got)
	}
}
