package chatapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// clientCredentials fetches the app token from {base}/token with the client
// ID and secret, keeps it, and fetches a new one at half its life (as the
// official SDKs do) or when the server refuses it. Callers wait while one
// of them fetches: one refresh at a time, and never a burst of them, which
// the docs warn can get an account banned.
type clientCredentials struct {
	client     *Client
	id, secret string

	mu      sync.Mutex
	token   string
	renewAt time.Time // zero: the token does not expire
}

// Token returns the kept token, fetching a new one when it is due.
func (cc *clientCredentials) Token(ctx context.Context) (string, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.token != "" && (cc.renewAt.IsZero() || time.Now().Before(cc.renewAt)) {
		return cc.token, nil
	}
	return cc.fetch(ctx)
}

// Refresh replaces stale, unless another caller already did.
func (cc *clientCredentials) Refresh(ctx context.Context, stale string) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.token != stale && cc.token != "" {
		return nil
	}
	_, err := cc.fetch(ctx)
	return err
}

// TokenInfo is what the token endpoint said of a fetched token.
type TokenInfo struct {
	ExpiresIn   time.Duration // 0: no expiry
	Application string
}

// fetch gets a new token; cc.mu is held.
func (cc *clientCredentials) fetch(ctx context.Context) (string, error) {
	tok, info, err := cc.client.fetchToken(ctx, cc.id, cc.secret)
	if err != nil {
		cc.token = ""
		return "", err
	}
	cc.token = tok
	cc.renewAt = time.Time{}
	if info.ExpiresIn > 0 {
		cc.renewAt = time.Now().Add(info.ExpiresIn / 2)
	}
	return tok, nil
}

// fetchToken makes the token call.
func (c *Client) fetchToken(ctx context.Context, id, secret string) (string, TokenInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := json.Marshal(map[string]string{"grant_type": "client_credentials", "client_id": id, "client_secret": secret})
	if err != nil {
		return "", TokenInfo{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/token", bytes.NewReader(body))
	if err != nil {
		return "", TokenInfo{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", TokenInfo{}, &Error{Outcome: NotDelivered, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", TokenInfo{}, failure(resp, raw)
	}
	var a struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Application string `json:"application"`
	}
	if jerr := json.Unmarshal(raw, &a); jerr != nil || a.AccessToken == "" {
		return "", TokenInfo{}, &Error{Outcome: NotDelivered, Status: resp.StatusCode, Err: errors.New("the token answer holds no access_token")}
	}
	return a.AccessToken, TokenInfo{ExpiresIn: time.Duration(a.ExpiresIn) * time.Second, Application: a.Application}, nil
}

// CheckToken fetches an app token, to check the credentials without
// sending a message. With a fixed token it only says so.
func (c *Client) CheckToken(ctx context.Context) (fetched bool, info TokenInfo, err error) {
	cc, ok := c.tokens.(*clientCredentials)
	if !ok {
		return false, TokenInfo{}, nil
	}
	_, info, err = c.fetchToken(ctx, cc.id, cc.secret)
	return true, info, c.redact(tokenError(err))
}

// tokenError words a failure to get a token as a failed call: the call
// was not made, so nothing was delivered; a refusal of the credentials
// wraps ErrCredentials.
func tokenError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		out := *e
		out.Op, out.Outcome = "app token", NotDelivered
		switch {
		case errors.Is(e.Err, ErrRedirect):
			// the secret must not follow it, and no retry will mend it
			out.Err = fmt.Errorf("%w: %w", ErrCredentials, e.Err)
		case e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests:
			out.Err = ErrCredentials
		}
		return &out
	}
	return &Error{Op: "app token", Outcome: NotDelivered, Err: err}
}

// redact returns err with every secret the client knows, the client secret
// and the tokens given, blotted out of its text.
func (c *Client) redact(err error, tokens ...string) error {
	if err == nil {
		return nil
	}
	secrets := append(slices.Clone(c.secrets), tokens...)
	scrub := func(s string) string { return Scrub(s, secrets...) }
	var e *Error
	if errors.As(err, &e) {
		out := *e
		out.Description = scrub(e.Description)
		out.Code = scrub(e.Code)
		if e.Err != nil && scrub(e.Err.Error()) != e.Err.Error() {
			out.Err = &redactedError{msg: scrub(e.Err.Error()), err: e.Err}
		}
		return &out
	}
	if s := err.Error(); scrub(s) != s {
		return &redactedError{msg: scrub(s), err: err}
	}
	return err
}

// holdsSecret reports whether s holds the client secret or one of tokens.
func (c *Client) holdsSecret(s string, tokens ...string) bool {
	return Scrub(s, append(slices.Clone(c.secrets), tokens...)...) != s
}

// Scrub returns s with every secret blotted out, as written and as a JSON
// string or a URL query writes it (a server echoing a request back
// escapes it). A secret of under 4 bytes is no secret, and blotting it out
// would garble every word that holds it.
func Scrub(s string, secrets ...string) string {
	for _, x := range secrets {
		if len(x) < 4 {
			continue
		}
		quoted, _ := json.Marshal(x)
		for _, form := range []string{x, string(quoted[1 : len(quoted)-1]), url.QueryEscape(x), strings.ReplaceAll(strings.ReplaceAll(string(quoted[1:len(quoted)-1]), `\`, `\\`), `"`, `\"`)} {
			s = strings.ReplaceAll(s, form, "[redacted]")
		}
	}
	return s
}

// redactedError is an error whose text had a secret in it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
