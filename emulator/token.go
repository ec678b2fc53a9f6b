package emulator

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Names of the token and upload endpoints in Stats.Limits. They have no
// entry in Stats.Kinds: Stats counts them in fields of their own.
const (
	KindToken  = "token"
	KindUpload = "chatfiles"
)

const (
	// defaultTokenTTL is the lifetime of issued tokens when Config.TokenTTL
	// is 0: the longest the Agora Chat docs allow.
	defaultTokenTTL = 24 * time.Hour
	// maxTokenTTL bounds Config.TokenTTL, so that its rounding cannot
	// overflow.
	maxTokenTTL = 100 * 365 * 24 * time.Hour
	// tokenCallsPerSecond is the default quota of POST /token.
	tokenCallsPerSecond = 300
	// maxTokenBody bounds the body of a token request.
	maxTokenBody = 64 << 10
	// tokenPrefix starts every issued token, as Easemob app tokens do.
	tokenPrefix = "YWMt"
)

// tokenRequest is the body of POST /token.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	TTL          int64  `json:"ttl"` // seconds; 0 or less: absent
}

// tokenAnswer is the 200 answer of POST /token.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"` // seconds
	Application string `json:"application"`
}

// serveToken answers POST {base}/token. The token_redirect fault comes
// first; then the checks run in this order: malformed JSON, client_id,
// client_secret, grant_type, credentials, quota. Only an issued token uses
// quota.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.TokenRequests++
	if p := s.faults.TokenRedirect; p > 0 && s.rng.Float64() < p {
		s.countFault(nil, FaultTokenRedirect)
		o := s.redirect(http.StatusTemporaryRedirect, "/token", s.now())
		s.countResponse(nil, o.status)
		s.mu.Unlock()
		o.write(w)
		return
	}
	s.mu.Unlock()

	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenBody))
	var req tokenRequest
	if err != nil || json.Unmarshal(raw, &req) != nil {
		s.fail(w, nil, errInvalidBody())
		return
	}
	switch {
	case req.ClientID == "":
		s.fail(w, nil, errIllegalArgument("client_id must be provided"))
		return
	case req.ClientSecret == "":
		s.fail(w, nil, errIllegalArgument("client_secret must be provided"))
		return
	case req.GrantType != "client_credentials":
		s.fail(w, nil, errIllegalArgument("grant_type must be client_credentials"))
		return
	case !s.credentialsMatch(req.ClientID, req.ClientSecret):
		s.fail(w, nil, errInvalidGrant())
		return
	}

	life := s.tokenTTL
	if req.TTL > 0 && req.TTL < int64(life/time.Second) {
		life = time.Duration(req.TTL) * time.Second
	}
	tok := tokenPrefix + randomText(30)

	s.mu.Lock()
	now, ok := s.takeCall(w, s.tokenQuota)
	if !ok {
		return
	}
	s.tokens[tok] = now.Add(life)
	s.issued = append(s.issued, tok)
	s.stats.TokensIssued++
	s.countResponse(nil, http.StatusOK)
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, tokenAnswer{AccessToken: tok, ExpiresIn: int64(life / time.Second), Application: applicationUUID})
}

// credentialsMatch reports whether id and secret are accepted: any when no
// ClientID is configured, else only the configured pair.
func (s *Server) credentialsMatch(id, secret string) bool {
	if s.clientID == "" {
		return true
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret))
	return idOK&secretOK == 1
}

// IssuedTokens returns every token issued so far, expired ones included, in
// the order they were issued.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// authorize checks the bearer token of every call but those to /token. A
// token issued by POST /token is accepted until it expires by the server
// clock, and refused after that whatever the configuration. Other tokens:
// with neither Config.Token nor Config.ClientID set, any non-empty token is
// accepted; otherwise only Config.Token, if set.
func (s *Server) authorize(r *http.Request) *apiError {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return errUnauthorized(descNoToken)
	}
	s.mu.Lock()
	expiry, issued := s.tokens[tok]
	now := s.now()
	s.mu.Unlock()
	switch {
	case issued:
		if now.Before(expiry) {
			return nil
		}
	case s.token != "":
		if subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1 {
			return nil
		}
	case s.clientID == "":
		return nil
	}
	return errUnauthorized(descBadToken)
}

// randomText returns n random bytes from crypto/rand, base64url-encoded
// without padding (4 characters per 3 bytes).
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24 and later)
	return base64.RawURLEncoding.EncodeToString(b)
}

// takeCall takes one call from q at the server's now, or answers 429 and
// unlocks s.mu. s.mu is held; it stays held when the call is taken.
func (s *Server) takeCall(w http.ResponseWriter, q *quota) (time.Time, bool) {
	now := s.now()
	if !q.w.fits(now, 1) {
		o := s.failed(nil, errAPILimit(), now)
		s.mu.Unlock()
		o.write(w)
		return now, false
	}
	q.w.add(now, 1)
	return now, true
}
