package chatapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// TokenSource hands out the app token sent as "Authorization: Bearer".
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Refresher is a TokenSource that can replace a token the server refused.
// Send calls Refresh after a 401 and tries the call once more.
type Refresher interface {
	TokenSource
	Refresh(ctx context.Context, stale string) error
}

// StaticToken is a TokenSource that always returns the same token.
type StaticToken string

// Token returns the token.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// Config says where the API is and how to reach it.
type Config struct {
	Host     string      // scheme://host[:port], e.g. https://a1.easemob.com
	Org, App string      // the /{org}/{app} flavour
	AppID    string      // the /app-id/{app_id} flavour, used when set
	Tokens   TokenSource // the app token; nil with ClientID set: fetched with client credentials
	// ClientID and ClientSecret fetch the app token from {base}/token,
	// when Tokens is nil.
	ClientID, ClientSecret string
	HTTPClient             *http.Client  // nil: a client with sane connection limits
	Timeout                time.Duration // per call; 0: 30 s
}

// Client sends batches to the message-send API. It is safe for concurrent
// use.
type Client struct {
	base    string
	host    string // host[:port] of base, as errors name it
	tokens  TokenSource
	http    *http.Client
	timeout time.Duration
	secrets []string // never to appear in an error: the client secret
}

// New checks cfg and returns a client. A plain http:// host is refused unless
// it is a loopback address (ErrInsecureHost).
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.Host, "/"))
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("host %s: %w", u.Host, ErrInsecureHost)
	default:
		return nil, fmt.Errorf("host %q: want an https:// URL", cfg.Host)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("host %q: want scheme://host[:port] only", u.Redacted())
	}
	var base string
	switch {
	case cfg.AppID != "":
		base = u.Scheme + "://" + u.Host + "/app-id/" + url.PathEscape(cfg.AppID)
	case cfg.Org != "" && cfg.App != "":
		base = u.Scheme + "://" + u.Host + "/" + url.PathEscape(cfg.Org) + "/" + url.PathEscape(cfg.App)
	default:
		return nil, errors.New("either an app ID or both org and app names are needed")
	}
	if cfg.Tokens == nil && (cfg.ClientID == "" || cfg.ClientSecret == "") {
		return nil, errors.New("no app token: give a token, or a client ID and secret")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
	}
	// A redirect is never followed: a 307 would re-post the message or the
	// client secret to whatever host Location names, a 303 would turn the
	// call into a GET. The answer is read as it is, and fails.
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	c := &Client{base: base, host: u.Host, tokens: cfg.Tokens, http: &noRedirect, timeout: timeout}
	if cfg.Tokens == nil {
		c.tokens = &clientCredentials{client: c, id: cfg.ClientID, secret: cfg.ClientSecret}
		c.secrets = append(c.secrets, cfg.ClientSecret)
	}
	return c, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CloseIdleConnections closes the connections kept for the next calls.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Host is the host[:port] the client sends to.
func (c *Client) Host() string { return c.host }

// BaseURL is the URL every endpoint path is appended to.
func (c *Client) BaseURL() string { return c.base }

// NewRequest builds the exact HTTP request of b, with the given token.
func (c *Client) NewRequest(ctx context.Context, b Batch, token string) (*http.Request, error) {
	body, err := b.Encode()
	if err != nil {
		return nil, err
	}
	return c.post(ctx, b.Kind.Path(), body, token)
}

// post builds a JSON POST of body to path under the base URL, with the
// token.
func (c *Client) post(ctx context.Context, path string, body []byte, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

// Result is what a delivered call returned.
type Result struct {
	// IDs maps each recipient of the batch to the message ID the server
	// gave it. For the directed kinds every member gets the one ID the
	// server returned for the group or room; the legacy API returns
	// "success" instead of an ID. A recipient the answer left out is absent.
	IDs map[string]string
}

// answer is the JSON of every reply, success or failure.
type answer struct {
	Data        map[string]json.RawMessage `json:"data"`
	Error       string                     `json:"error"`
	Description string                     `json:"error_description"`
}

// Send makes one call for b and reads its answer. A failure is an *Error
// whose Outcome says whether the batch may be sent again.
func (c *Client) Send(ctx context.Context, b Batch) (Result, error) {
	var res Result
	err := c.withToken(ctx, func(token string) (err error) {
		res, err = c.send(ctx, b, token)
		// A server that answers with a secret as a message ID does not
		// get it written to the ledger: that recipient has no ID.
		for to, id := range res.IDs {
			if c.holdsSecret(id, token) {
				delete(res.IDs, to)
			}
		}
		return err
	})
	return res, err
}

// withToken runs call with the app token. After a 401 it has the token
// source replace the token, if it can, and runs call once more. Errors come
// back scrubbed of the token and the client secret.
func (c *Client) withToken(ctx context.Context, call func(token string) error) error {
	token, err := c.tokens.Token(ctx)
	if err != nil {
		return c.redact(tokenError(err), token)
	}
	err = call(token)
	var e *Error
	if r, ok := c.tokens.(Refresher); ok && errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		stale := token
		if err := r.Refresh(ctx, stale); err != nil {
			return c.redact(tokenError(err), stale)
		}
		if token, err = r.Token(ctx); err != nil {
			return c.redact(tokenError(err), stale)
		}
		err = call(token)
		return c.redact(err, stale, token)
	}
	return c.redact(err, token)
}

func (c *Client) send(ctx context.Context, b Batch, token string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ctx, wrote := traceWritten(ctx)
	req, err := c.NewRequest(ctx, b, token)
	if err != nil {
		return Result{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Result{}, &Error{Outcome: transportOutcome(wrote), Err: stripURL(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if success(resp.StatusCode) {
		// Any 2xx is an answer: the server took the call. What it
		// delivered is what its data names; without data, nothing can be
		// known.
		if err != nil {
			return Result{}, &Error{Outcome: Ambiguous, Status: resp.StatusCode, Err: fmt.Errorf("read answer: %w", stripURL(err))}
		}
		var a answer
		if jerr := json.Unmarshal(raw, &a); jerr != nil {
			return Result{}, &Error{Outcome: Ambiguous, Status: resp.StatusCode, Err: fmt.Errorf("read answer: %w", jerr)}
		}
		if a.Data == nil {
			return Result{}, &Error{Outcome: Ambiguous, Status: resp.StatusCode, Err: errors.New("the answer holds no data naming what was delivered")}
		}
		return Result{IDs: messageIDs(b, a.Data)}, nil
	}
	return Result{}, failure(resp, raw)
}

// traceWritten returns ctx traced for its request: the flag turns true
// once the whole request went out, from when the server may act on it,
// whatever happens to the answer.
func traceWritten(ctx context.Context) (context.Context, *atomic.Bool) {
	wrote := new(atomic.Bool)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	}), wrote
}

// transportOutcome is what a call that got no answer did: nothing, if
// its request never went out, else who knows. On an error the transport
// waits for its writer to finish before Do returns, so wrote is final.
func transportOutcome(wrote *atomic.Bool) Outcome {
	if wrote.Load() {
		return Ambiguous
	}
	return NotDelivered
}

// success reports whether status is a 2xx.
func success(status int) bool { return status >= 200 && status < 300 }

// failure reads a non-2xx answer into an *Error.
func failure(resp *http.Response, raw []byte) *Error {
	if redirect(resp.StatusCode) {
		return &Error{Outcome: Permanent, Status: resp.StatusCode,
			Err: fmt.Errorf("%w to %s", ErrRedirect, location(resp))}
	}
	var a answer
	jerr := json.Unmarshal(raw, &a)
	e := &Error{Outcome: classify(resp.StatusCode), Status: resp.StatusCode, Code: a.Error, Description: a.Description}
	if e.Status == http.StatusForbidden && e.Code == "forbidden_op" {
		// not the message quota (message_send_error, "reach limit") but
		// an operation the app may not do: asking again will not change it
		e.Outcome = Permanent
	}
	if jerr != nil && e.Description == "" {
		e.Description = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
	}
	// read whatever the outcome: a token or upload call that failed is
	// not delivered whatever its status, and waits as asked
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// redirect reports whether status asks the client to go elsewhere.
func redirect(status int) bool { return status >= 300 && status < 400 }

// location names where a redirect points, without its query or user
// info, or says it names nowhere.
func location(resp *http.Response) string {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "no Location"
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return fmt.Sprintf("%q", loc[:min(len(loc), 200)])
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// classify sorts a status that is neither a 2xx nor a redirect. Only the
// statuses the API documents as refusals are "not delivered"; a status it
// does not know may have delivered, so it is ambiguous, never retried.
func classify(status int) Outcome {
	switch status {
	case http.StatusTooManyRequests, http.StatusForbidden, http.StatusServiceUnavailable, http.StatusUnauthorized:
		return NotDelivered
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		return Permanent
	}
	return Ambiguous
}

// messageIDs maps the batch's recipients to the IDs in the answer's data.
func messageIDs(b Batch, data map[string]json.RawMessage) map[string]string {
	ids := make(map[string]string, len(b.To))
	// An ID is a non-empty string or a number; the legacy API names what
	// it delivered "success", and anything else there is no delivery.
	str := func(raw json.RawMessage) (string, bool) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, s != "" && (!b.Kind.Legacy() || s == "success")
		}
		var n json.Number
		if json.Unmarshal(raw, &n) == nil && !b.Kind.Legacy() {
			return n.String(), true
		}
		return "", false
	}
	if b.Kind.Scoped() {
		if id, ok := str(data[b.Scope]); ok {
			for _, to := range b.To {
				ids[to] = id
			}
		}
		return ids
	}
	for _, to := range b.To {
		if id, ok := str(data[to]); ok {
			ids[to] = id
		}
	}
	return ids
}

// MaxRetryAfter is the longest pause a Retry-After header is honoured
// for: a server asking for more does not get to silence a run for hours.
const MaxRetryAfter = 60 * time.Second

// retryAfter reads a Retry-After header, delay seconds or an HTTP date,
// capped at MaxRetryAfter.
func retryAfter(h string, now time.Time) time.Duration {
	return min(parseRetryAfter(h, now), MaxRetryAfter)
}

func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		return time.Duration(min(max(secs, 0), int64(MaxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// stripURL drops the URL that net/http wraps around transport errors: the
// error then says what failed, not where, and never carries a query string.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
