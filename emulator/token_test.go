package emulator

import (
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"
)

const (
	testClientID     = "YXA6client"
	testClientSecret = "YXA6secret"
)

// issuedToken is the form of an issued token.
var issuedToken = regexp.MustCompile(`^YWMt[A-Za-z0-9_-]{40}$`)

// grant is a valid token request for the test credentials, with the keys
// and values of kv set as by with.
func grant(kv ...any) map[string]any {
	return with(map[string]any{"grant_type": "client_credentials", "client_id": testClientID, "client_secret": testClientSecret}, kv...)
}

// token asks h for a token with body and fails unless it gets one.
func (h *harness) token(body any) string {
	h.t.Helper()
	a := h.do(http.MethodPost, easemob+"/token", "", body)
	if a.status != http.StatusOK || !issuedToken.MatchString(a.str("access_token")) {
		h.t.Fatalf("POST /token: got %d %v, want 200 and a token", a.status, a.body)
	}
	return a.str("access_token")
}

func TestTokenIssue(t *testing.T) {
	cases := []struct {
		name     string
		tokenTTL time.Duration
		ttl      any // the request's ttl; absent leaves it out
		want     float64
	}{
		{"default lifetime", 0, absent, 86400},
		{"ttl 0 is absent", 0, 0, 86400},
		{"negative ttl is absent", 0, -5, 86400},
		{"ttl shortens", 0, 3600, 3600},
		{"ttl beyond the default", 0, 7 * 86400, 86400},
		{"TokenTTL sets the lifetime", 10 * time.Minute, absent, 600},
		{"ttl shortens TokenTTL", 10 * time.Minute, 60, 60},
		{"ttl cannot lengthen TokenTTL", 10 * time.Minute, 7200, 600},
		{"TokenTTL rounds up to a second", 1500 * time.Millisecond, absent, 2},
		{"TokenTTL under a second is one", time.Millisecond, absent, 1},
	}
	for _, c := range cases {
		for _, b := range []string{easemob, agora} {
			t.Run(c.name+" under "+b, func(t *testing.T) {
				h := start(t, Config{ClientID: testClientID, ClientSecret: testClientSecret, TokenTTL: c.tokenTTL})
				a := h.do(http.MethodPost, b+"/token", "", grant("ttl", c.ttl))
				if a.status != http.StatusOK {
					t.Fatalf("got status %d (%v), want 200", a.status, a.body)
				}
				if len(a.body) != 3 {
					t.Errorf("got keys %v, want access_token, expires_in and application", a.body)
				}
				tok := a.str("access_token")
				if !issuedToken.MatchString(tok) {
					t.Errorf("got access_token %q, want YWMt and 40 base64url characters", tok)
				}
				if got := a.body["expires_in"]; got != c.want {
					t.Errorf("got expires_in %v, want %v", got, c.want)
				}
				if got := a.str("application"); got != applicationUUID {
					t.Errorf("got application %q, want %q", got, applicationUUID)
				}
				if got := h.run.IssuedTokens(); !slices.Equal(got, []string{tok}) {
					t.Errorf("got issued tokens %q, want [%q]", got, tok)
				}
				if st := h.run.Stats(); st.TokenRequests != 1 || st.TokensIssued != 1 || st.Calls != 0 {
					t.Errorf("got %d token requests, %d issued, %d calls, want 1, 1, 0", st.TokenRequests, st.TokensIssued, st.Calls)
				}
			})
		}
	}
	t.Run("tokens differ", func(t *testing.T) {
		h := start(t, Config{})
		seen := map[string]bool{}
		for range 20 {
			tok := h.token(grant())
			if seen[tok] {
				t.Fatalf("got token %q twice, want each new", tok)
			}
			seen[tok] = true
		}
		if got := len(h.run.IssuedTokens()); got != 20 {
			t.Errorf("got %d issued tokens, want 20", got)
		}
	})
	t.Run("no ClientID accepts any credentials", func(t *testing.T) {
		h := start(t, Config{})
		h.token(grant("client_id", "anyone", "client_secret", "anything"))
	})
}

func TestTokenErrors(t *testing.T) {
	const (
		illegal      = "illegal_argument"
		invalidGrant = "invalid_grant"
		invalidBody  = "invalid_request_body"
	)
	cases := []struct {
		name   string
		body   any
		status int
		err    string
		desc   string
	}{
		{"malformed JSON", `{"grant_type":`, 400, invalidBody, descInvalidBody},
		{"not an object", `["client_credentials"]`, 400, invalidBody, descInvalidBody},
		{"ttl not a number", grant("ttl", "60"), 400, invalidBody, descInvalidBody},
		{"ttl not an integer", grant("ttl", 1.5), 400, invalidBody, descInvalidBody},
		{"client_id not a string", grant("client_id", 7), 400, invalidBody, descInvalidBody},
		{"no body", "", 400, invalidBody, descInvalidBody},
		{"client_id absent", grant("client_id", absent), 400, illegal, "client_id must be provided"},
		{"client_id empty", grant("client_id", ""), 400, illegal, "client_id must be provided"},
		{"client_id null", grant("client_id", nil), 400, illegal, "client_id must be provided"},
		{"client_secret absent", grant("client_secret", absent), 400, illegal, "client_secret must be provided"},
		{"client_secret empty", grant("client_secret", ""), 400, illegal, "client_secret must be provided"},
		{"both absent: client_id first", grant("client_id", absent, "client_secret", absent), 400, illegal, "client_id must be provided"},
		{"grant_type absent", grant("grant_type", absent), 400, illegal, "grant_type must be client_credentials"},
		{"grant_type password", grant("grant_type", "password"), 400, illegal, "grant_type must be client_credentials"},
		{"wrong client_id", grant("client_id", "YXA6other"), 400, invalidGrant, descBadSecret},
		{"wrong client_secret", grant("client_secret", "YXA6wrong"), 400, invalidGrant, descBadSecret},
		{"secret of another case", grant("client_secret", "yxa6secret"), 400, invalidGrant, descBadSecret},
		{"GET", nil, 405, "method_not_allowed", "Request method 'GET' is not supported"},
	}
	// The token quota is 1 a second: a refused call that used it would fail
	// the last call.
	h := start(t, Config{ClientID: testClientID, ClientSecret: testClientSecret, QuotaScale: 0.001, Now: newClock().Now})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := http.MethodPost
			if c.body == nil {
				method = http.MethodGet
			}
			a := h.do(method, agora+"/token", "", c.body)
			if a.status != c.status || a.str("error") != c.err || a.str("error_description") != c.desc {
				t.Errorf("got %d %q %q, want %d %q %q", a.status, a.str("error"), a.str("error_description"), c.status, c.err, c.desc)
			}
			if _, ok := a.body["access_token"]; ok {
				t.Errorf("got an access_token in %v, want none", a.body)
			}
		})
	}
	t.Run("no token issued and no quota used", func(t *testing.T) {
		if got := h.run.IssuedTokens(); len(got) != 0 {
			t.Errorf("got issued tokens %q, want none", got)
		}
		h.token(grant())
		st := h.run.Stats()
		if st.TokenRequests != len(cases) || st.TokensIssued != 1 || st.Responses[400] != len(cases)-1 {
			t.Errorf("got %d token requests, %d issued, %d answers 400, want %d, 1, %d",
				st.TokenRequests, st.TokensIssued, st.Responses[400], len(cases), len(cases)-1)
		}
	})
}

func TestTokenAuth(t *testing.T) {
	const static = "static-secret"
	creds := func(cfg Config) Config {
		cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
		return cfg
	}
	// bearers are tokens of every sort, by name.
	bearers := []string{"static", "any", "issued", "expired", "foreign"}
	cases := []struct {
		name string
		cfg  Config
		want map[string]int // status by bearer
	}{
		{"no Token, no ClientID", Config{}, map[string]int{
			"static": 200, "any": 200, "issued": 200, "expired": 401, "foreign": 200}},
		{"Token only", Config{Token: static}, map[string]int{
			"static": 200, "any": 401, "issued": 200, "expired": 401, "foreign": 401}},
		{"ClientID only", creds(Config{}), map[string]int{
			"static": 401, "any": 401, "issued": 200, "expired": 401, "foreign": 401}},
		{"Token and ClientID", creds(Config{Token: static}), map[string]int{
			"static": 200, "any": 401, "issued": 200, "expired": 401, "foreign": 401}},
	}
	foreign := listen(t, creds(Config{})).token(grant())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			c.cfg.Now = clock.Now
			h := listen(t, c.cfg)
			tokens := map[string]string{
				"static":  static,
				"any":     "whatever",
				"issued":  h.token(grant()),
				"expired": h.token(grant("ttl", 1)),
				"foreign": foreign,
			}
			clock.Set(time.Second)
			for _, name := range bearers {
				a := h.do(http.MethodPost, easemob+suffixes[KindUsers], tokens[name], txt("u1"))
				if a.status != c.want[name] {
					t.Errorf("%s token: got status %d (%v), want %d", name, a.status, a.body, c.want[name])
				}
				if a.status == 401 && a.str("error_description") != descBadToken {
					t.Errorf("%s token: got %q, want %q", name, a.str("error_description"), descBadToken)
				}
			}
		})
	}

	t.Run("expiry by the server clock", func(t *testing.T) {
		clock := newClock()
		h := listen(t, creds(Config{Now: clock.Now, TokenTTL: time.Hour}))
		short := h.token(grant("ttl", 60))
		long := h.token(grant())
		steps := []struct {
			at     time.Duration
			token  string
			status int
		}{
			{0, short, 200},
			{59*time.Second + 999*time.Millisecond, short, 200},
			{time.Minute, short, 401},
			{time.Minute, long, 200},
			{time.Hour - time.Millisecond, long, 200},
			{time.Hour, long, 401},
			{time.Hour, "", 401},
		}
		for i, s := range steps {
			clock.Set(s.at)
			for _, b := range []string{easemob, agora} {
				a := h.do(http.MethodPost, b+suffixes[KindUsers], s.token, txt("u1"))
				if a.status != s.status {
					t.Errorf("step %d at %v under %s: got status %d (%v), want %d", i, s.at, b, a.status, a.body, s.status)
				}
			}
		}
		if got := h.run.Delivered(KindUsers, "", "u1"); got != 8 {
			t.Errorf("got %d deliveries, want 8", got)
		}
		if got := h.run.IssuedTokens(); !slices.Equal(got, []string{short, long}) {
			t.Errorf("got issued tokens %q, want expired ones too: %q", got, []string{short, long})
		}
	})
}

func TestTokenQuota(t *testing.T) {
	t.Run("limits", func(t *testing.T) {
		for scale, want := range map[float64]int{0: 300, 1: 300, 0.01: 3, 0.001: 1, 2: 600} {
			got := New(Config{QuotaScale: scale}).Limits()[KindToken]
			if len(got.Quotas) != 1 || got.Quotas[0] != (Quota{unitCalls, want, time.Second, 429}) {
				t.Errorf("scale %v: got %+v, want one quota of %d calls a second answering 429", scale, got, want)
			}
		}
	})

	clock := newClock()
	h := start(t, Config{ClientID: testClientID, ClientSecret: testClientSecret, QuotaScale: 0.01, Now: clock.Now})
	bad := grant("client_secret", "wrong")
	steps := []struct {
		name   string
		at     time.Duration
		n      int
		body   any
		status int
	}{
		{"the quota", 0, 3, grant(), 200},
		{"over it", 0, 2, grant(), 429},
		{"a refused call still answers 400", 0, 1, bad, 400},
		{"just before the window slides", 999 * time.Millisecond, 1, grant(), 429},
		{"the window slid: 429s used no quota", time.Second, 3, grant(), 200},
		{"over it again", time.Second, 1, grant(), 429},
		{"400s use no quota", 2 * time.Second, 5, bad, 400},
		{"the whole quota after 400s", 2 * time.Second, 3, grant(), 200},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clock.Set(s.at)
			for i := range s.n {
				a := h.do(http.MethodPost, easemob+"/token", "", s.body)
				if a.status != s.status {
					t.Fatalf("call %d of %d: got status %d (%v), want %d", i+1, s.n, a.status, a.body, s.status)
				}
				if s.status == 429 && (a.str("error") != "resource_limited" || a.str("error_description") != descAPILimit) {
					t.Errorf("got %v, want resource_limited / %s", a.body, descAPILimit)
				}
			}
		})
	}
	t.Run("counts", func(t *testing.T) {
		st := h.run.Stats()
		if st.TokenRequests != 19 || st.TokensIssued != 9 || st.Responses[429] != 4 || st.Responses[400] != 6 {
			t.Errorf("got %d token requests, %d issued, %d answers 429, %d 400, want 19, 9, 4, 6",
				st.TokenRequests, st.TokensIssued, st.Responses[429], st.Responses[400])
		}
		if got := len(h.run.IssuedTokens()); got != 9 {
			t.Errorf("got %d issued tokens, want 9", got)
		}
		if st.Calls != 0 || st.Kinds[KindUsers].Calls != 0 {
			t.Errorf("got %d message calls, want 0: tokens are not message calls", st.Calls)
		}
	})
	t.Run("the token quota is not the users quota", func(t *testing.T) {
		if a := h.send(KindUsers, txt("u1")); a.status != 200 {
			t.Errorf("got status %d (%v), want 200", a.status, a.body)
		}
	})
}
