package emulator

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind names, as used by Stats and Delivered.
const (
	KindUsers        = "users"
	KindGroups       = "groups"
	KindRooms        = "rooms"
	KindGroupMembers = "group_members"
	KindRoomMembers  = "room_members"
	KindLegacy       = "legacy"
)

const (
	// firstMessageID is the first message ID handed out (as in seed 003).
	firstMessageID = 1029457500870543736
	// applicationUUID is the constant "application" of every answer.
	applicationUUID = "e82bcc5f-0000-4000-a7c1-92de917ea2b0"
	// maxRequestBody bounds what a call may send.
	maxRequestBody = 8 << 20
	// roomDropLimit is how many messages one chat room keeps per second; the
	// rest are dropped silently (seed 002). It is not an app quota and does
	// not scale.
	roomDropLimit = 20
)

// Config configures a Server. Its zero value serves with the default
// quotas, accepts any non-empty bearer token and issues tokens for any
// non-empty client credentials.
type Config struct {
	QuotaScale float64          // multiplies every default quota (calls and messages); 0 means 1. Per-call caps never scale.
	Token      string           // a static bearer token accepted (see below)
	Faults     Faults           // initial fault injection
	Now        func() time.Time // clock of the quota windows, timestamps and token expiry, for tests; nil means time.Now
	Seed       int64            // seed of the fault source (math/rand/v2 PCG), so that fault runs are reproducible
	UnknownIDs []string         // legacy API only: a target in this list answers 404 (user or group does not exist)

	// ClientID and ClientSecret are the client credentials that POST /token
	// accepts; an empty ClientID accepts any non-empty client_id and
	// client_secret.
	//
	// Bearer tokens: with neither Token nor ClientID set, any non-empty
	// token is accepted (an expired issued token excepted); otherwise only
	// Token and the unexpired tokens issued by POST /token. An issued token
	// expires by the clock Now, and is refused after that in every case.
	ClientID     string
	ClientSecret string
	// TokenTTL is the longest lifetime of an issued token, rounded up to a
	// whole second; 0 means 24 h. A request's ttl > 0 shortens it, never
	// lengthens it.
	TokenTTL time.Duration

	// KeepIDs makes the server remember every message ID it issues to each
	// recipient, for IDs. It costs memory per delivery.
	KeepIDs bool

	// RecallWindow is how long after its sending a message may be
	// recalled without force; 0 means the default, 2 minutes. NoRecall
	// answers every recall 403 forbidden_op, the service unopened.
	RecallWindow time.Duration
	NoRecall     bool
	// RecallRefusesWhole answers a batch_recall naming a message it may
	// not recall as msg_recall answers that message (403 exceed recall
	// time limit, not_found msg, ...), recalling none of them, instead of
	// giving each message's outcome in the data.
	RecallRefusesWhole bool
	// RecallQuotaScale, if above 0, scales the recall quota instead of
	// QuotaScale (to send fast and recall at the default quota).
	RecallQuotaScale float64

	// Apps, when set, are the only apps served, each "org/app" or
	// "app-id/ID"; a call to another answers 404
	// organization_application_not_found. Empty serves any app.
	Apps []string
}

// Server emulates the message-send API. It implements http.Handler and is
// safe for concurrent use.
type Server struct {
	token              string
	clientID           string
	clientSecret       string
	tokenTTL           time.Duration // whole seconds, at least one
	now                func() time.Time
	unknown            map[string]bool
	byPath             map[string]*endpoint
	limits             map[string]KindLimits
	keepIDs            bool
	trapURL            string // set by Listen before serving; "" without a trap
	recallWindow       time.Duration
	noRecall           bool
	recallRefusesWhole bool
	apps               map[string]bool // Config.Apps; nil serves any

	mu       sync.Mutex // guards everything below, and the endpoints' windows
	faults   Faults
	rng      *rand.Rand
	lastID   uint64
	messages map[[sha256.Size]byte]uint32 // message digest to a small index
	receipts map[deliveryKey]receipt
	more     map[deliveryKey][]uint32 // distinct messages after the first
	ids      map[deliveryKey][]string // message IDs issued, with Config.KeepIDs
	sent     map[uint64]sentMessage   // every message ID issued, to recall it
	trapped  []TrapRequest            // what the trap received
	rooms    map[string]*window
	stats    Stats // Kinds and Limits are filled in by Stats
	kinds    map[string]*KindStats

	tokenQuota  *quota
	tokens      map[string]time.Time // issued token to its expiry
	issued      []string             // issued tokens, in order
	uploadQuota *quota
	uploads     []Upload
	byUUID      map[string]int                    // upload UUID to its index in uploads
	files       map[[sha256.Size]byte]*storedFile // content by digest
}

// deliveryKey names a recipient: scope is the group or room of directed
// kinds, the target_type of legacy calls, and "" otherwise.
type deliveryKey struct {
	kind, scope, recipient string
}

// receipt is what one recipient got. Messages are indexes into
// Server.messages, and the rare recipient that got more than one distinct
// message keeps the others in Server.more, so that a million recipients
// cost little more than their keys.
type receipt struct {
	n     uint32 // deliveries, duplicates included
	first uint32 // the first message delivered
}

// New returns a Server configured by cfg. cfg.Faults is taken as is; check
// it first with Faults.Validate if it comes from a user.
func New(cfg Config) *Server {
	scale := cfg.QuotaScale
	if scale <= 0 || math.IsNaN(scale) || math.IsInf(scale, 0) {
		scale = 1
	}
	s := &Server{
		token:              cfg.Token,
		clientID:           cfg.ClientID,
		clientSecret:       cfg.ClientSecret,
		tokenTTL:           defaultTokenTTL,
		now:                cfg.Now,
		unknown:            map[string]bool{},
		byPath:             map[string]*endpoint{},
		limits:             map[string]KindLimits{},
		keepIDs:            cfg.KeepIDs,
		faults:             cfg.Faults,
		rng:                rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15)),
		lastID:             firstMessageID - 1,
		messages:           map[[sha256.Size]byte]uint32{},
		receipts:           map[deliveryKey]receipt{},
		more:               map[deliveryKey][]uint32{},
		ids:                map[deliveryKey][]string{},
		sent:               map[uint64]sentMessage{},
		recallWindow:       cmp.Or(cfg.RecallWindow, defaultRecallWindow),
		noRecall:           cfg.NoRecall,
		recallRefusesWhole: cfg.RecallRefusesWhole,
		rooms:              map[string]*window{},
		kinds:              map[string]*KindStats{},
		stats:              Stats{Responses: map[int]int{}, Faults: map[string]int{}},

		tokenQuota:  newQuota(unitCalls, tokenCallsPerSecond, time.Second, http.StatusTooManyRequests, scale),
		tokens:      map[string]time.Time{},
		uploadQuota: newQuota(unitCalls, uploadCallsPerSecond, time.Second, http.StatusTooManyRequests, scale),
		byUUID:      map[string]int{},
		files:       map[[sha256.Size]byte]*storedFile{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if ttl := min(cfg.TokenTTL, maxTokenTTL); ttl > 0 {
		s.tokenTTL = ttl.Truncate(time.Second)
		if s.tokenTTL < ttl {
			s.tokenTTL += time.Second
		}
	}
	s.limits[KindToken] = KindLimits{Quotas: []Quota{s.tokenQuota.Quota}}
	s.limits[KindUpload] = KindLimits{Quotas: []Quota{s.uploadQuota.Quota}}
	for _, app := range cfg.Apps {
		if s.apps == nil {
			s.apps = map[string]bool{}
		}
		s.apps["/"+strings.Trim(app, "/")] = true
	}
	for _, id := range cfg.UnknownIDs {
		s.unknown[id] = true
	}
	recallScale := scale
	if cfg.RecallQuotaScale > 0 && !math.IsInf(cfg.RecallQuotaScale, 0) {
		recallScale = cfg.RecallQuotaScale
	}
	for _, ep := range newEndpoints(scale, recallScale) {
		s.byPath[ep.path] = ep
		s.limits[ep.kind] = ep.limits()
		s.kinds[ep.kind] = newKindStats()
	}
	return s
}

// SetFaults replaces the injected faults. Probabilities outside [0, 1] act
// as 0 or 1; see Faults.Validate.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Faults returns the faults now injected.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Limits returns the effective per-call caps and quotas of every kind.
func (s *Server) Limits() map[string]KindLimits {
	out := make(map[string]KindLimits, len(s.limits))
	for k, l := range s.limits {
		out[k] = l.clone()
	}
	return out
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Responses = maps.Clone(s.stats.Responses)
	st.Faults = maps.Clone(s.stats.Faults)
	st.Kinds = make(map[string]KindStats, len(s.kinds))
	for k, ks := range s.kinds {
		st.Kinds[k] = ks.clone()
	}
	st.Limits = s.Limits()
	st.TrapRequests = len(s.trapped)
	return st
}

// Delivered reports how many times anything was delivered to recipient.
// kind is one of the Kind names; scope is the group or room ID for the
// directed kinds, the target_type ("users" or "chatgroups") for legacy, and
// "" otherwise. As a shorthand, kind "legacy_users" or "legacy_groups" with
// scope "" stands for kind "legacy" with scope "users" or "chatgroups".
func (s *Server) Delivered(kind, scope, recipient string) int {
	k := keyOf(kind, scope, recipient)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.receipts[k].n)
}

// IDs returns the message IDs issued to recipient, one per delivery in the
// order delivered, when Config.KeepIDs is set; nil otherwise or if nothing
// was delivered. kind and scope are as for Delivered. A member of a
// directed kind gets the ID issued for its group or room in that call, a
// legacy target "success" as its answer says. The faults that deliver
// without naming the recipient in their answer (partial, no_content,
// error_after, reset_after, stall_after) still issue and keep an ID.
func (s *Server) IDs(kind, scope, recipient string) []string {
	k := keyOf(kind, scope, recipient)
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids[k])
}

// keyOf is the delivery key that Delivered and IDs name, with the legacy
// shorthand expanded.
func keyOf(kind, scope, recipient string) deliveryKey {
	switch kind {
	case "legacy_users":
		kind, scope = KindLegacy, "users"
	case "legacy_groups":
		kind, scope = KindLegacy, "chatgroups"
	}
	return deliveryKey{kind, scope, recipient}
}

// base is the part of a request path before the endpoint.
type base struct {
	prefix   string // "/org/app" or "/app-id/ID"
	org, app string // org is "" in the /app-id/ flavour
}

// ServeHTTP answers a call to the message-send, token or upload API, or to
// the control endpoints GET /_emulator/stats and GET or POST
// /_emulator/faults.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_emulator/") {
		s.serveControl(w, r)
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	s.mu.Unlock()
	b, rest, ok := splitBase(r.URL.Path)
	if !ok {
		s.fail(w, nil, errNotFound("Service resource not found"))
		return
	}
	if s.apps != nil && !s.apps[b.prefix] {
		s.fail(w, nil, errNoApp(b))
		return
	}
	if id, ok := strings.CutPrefix(rest, "/chatfiles/"); ok && id != "" && !strings.Contains(id, "/") {
		if s.allow(w, r, http.MethodGet, http.MethodHead) {
			s.serveDownload(w, r, id)
		}
		return
	}
	var serve func()
	switch rest {
	case "/token":
		serve = func() { s.serveToken(w, r) }
	case "/chatfiles":
		serve = func() { s.serveUpload(w, r, b) }
	default:
		ep, ok := s.byPath[rest]
		if !ok {
			s.fail(w, nil, errNotFound("Service resource not found"))
			return
		}
		serve = func() { s.serveCall(w, r, ep, b) }
	}
	if s.allow(w, r, http.MethodPost) {
		serve()
	}
}

// allow reports whether r uses one of methods, and answers 405 if not.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	s.fail(w, nil, errMethod(r.Method))
	return false
}

// splitBase splits path into its base, under either flavour, and the rest
// ("/messages/users").
func splitBase(path string) (base, string, bool) {
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
		return base{}, "", false
	}
	b := base{prefix: "/" + parts[0] + "/" + parts[1], app: parts[1]}
	if parts[0] != "app-id" {
		b.org = parts[0]
	}
	return b, "/" + parts[2], true
}

// origin is the scheme and host of r, as the answers' uri start.
func origin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// serveCall handles one message call: auth, validation, quota and faults
// as it arrives, then delivery, and the answer once its latency is over.
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, ep *endpoint, b base) {
	s.mu.Lock()
	s.stats.Calls++
	s.kinds[ep.kind].Calls++
	delay := s.latency(ep)
	s.mu.Unlock()

	o := s.admitCall(w, r, ep, b)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The client gave up or the emulator is closing: what was
			// decided stands, and nothing is answered.
			t.Stop()
			s.count(ep, o)
			resetConn(w)
			return
		}
	}
	s.count(ep, o)
	switch {
	case o.reset:
		resetConn(w)
	case o.stall:
		<-r.Context().Done()
		resetConn(w)
	default:
		o.write(w)
	}
}

// latency draws the delay of a message call and counts it; s.mu is held.
func (s *Server) latency(ep *endpoint) time.Duration {
	f := s.faults
	if f.Latency <= 0 && f.LatencyJitter <= 0 {
		return 0
	}
	s.countFault(ep, FaultLatency)
	d := max(f.Latency, 0)
	if f.LatencyJitter > 0 {
		j := time.Duration(s.rng.Int64N(int64(f.LatencyJitter)))
		if d > math.MaxInt64-j {
			return math.MaxInt64
		}
		d += j
	}
	return d
}

// admitCall checks, admits and decides a message call, and returns its
// answer, not yet counted.
func (s *Server) admitCall(w http.ResponseWriter, r *http.Request, ep *endpoint, b base) outcome {
	if e := s.authorize(r); e != nil {
		return s.refuse(e)
	}
	if ep.recall && s.noRecall {
		return s.refuse(errRecall(http.StatusForbidden, reasonUnopened))
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		return s.refuse(errInvalidBody())
	}
	var req *request
	var e *apiError
	switch {
	case ep.legacy:
		req, e = parseLegacy(raw)
	case ep.recall:
		req, e = parseRecall(ep, raw)
	default:
		req, e = parseSend(ep, raw)
	}
	if e != nil {
		return s.refuse(e)
	}
	if ep.legacy {
		for _, id := range req.to {
			if s.unknown[id] {
				return s.refuse(errNotFound("Service resource not found: " + req.scope + " " + id + " does not exist"))
			}
		}
	}
	return s.decide(ep, req, b, origin(r), r.URL.EscapedPath())
}

// outcome is the answer decided for a call.
type outcome struct {
	status     int
	body       any    // nil: no body
	location   string // the Location header, if not ""
	retryAfter string // the Retry-After header, if not ""
	reset      bool   // reset the connection instead of answering
	stall      bool   // answer nothing until the call ends, then reset
}

// write sends the answer o.
func (o outcome) write(w http.ResponseWriter) {
	if o.retryAfter != "" {
		w.Header().Set("Retry-After", o.retryAfter)
	}
	if o.location != "" {
		w.Header().Set("Location", o.location)
	}
	if o.body == nil {
		w.WriteHeader(o.status)
		return
	}
	writeJSON(w, o.status, o.body)
}

// count counts the answer o, unless it is none (reset or stall).
func (s *Server) count(ep *endpoint, o outcome) {
	if o.reset || o.stall {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countResponse(ep, o.status)
}

// faultStatus is the answer of the faults that deliver nothing.
var faultStatus = map[string]int{
	FaultTooManyRequests: http.StatusTooManyRequests,
	FaultQuotaForbidden:  http.StatusForbidden,
	FaultUnavailable:     http.StatusServiceUnavailable,
	FaultErrorBefore:     http.StatusInternalServerError,
}

// faultSuccess is the status of the faults that deliver and answer a
// success other than 200.
var faultSuccess = map[string]int{
	FaultCreated:   http.StatusCreated,
	FaultAccepted:  http.StatusAccepted,
	FaultNoContent: http.StatusNoContent,
}

// decide runs quota admission, fault injection and delivery for a valid
// call, all under the lock, and returns its answer, not yet counted. path
// is the call's path, for the redirect fault.
func (s *Server) decide(ep *endpoint, req *request, b base, origin, path string) outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := len(req.recipients(ep))
	if q := ep.admit(now, n); q != nil {
		return s.refusal(errStatus(q.Status), now)
	}
	fault := ""
	if s.faults.any() {
		fault = s.faults.pick(s.rng.Float64())
	}
	if fault != "" {
		s.countFault(ep, fault)
	}
	if st, ok := faultStatus[fault]; ok {
		return s.refusal(errStatus(st), now)
	}
	if fault == FaultRedirect {
		return s.redirect(redirectStatuses[s.rng.IntN(len(redirectStatuses))], path, now)
	}

	ep.charge(now, n)
	s.kinds[ep.kind].admitted(ep, now, n)
	if ep.recall {
		return s.recall(ep, req, fault, now, b, origin)
	}
	var skip map[string]bool
	if fault == FaultPartialDeliver && !ep.directed {
		skip = s.undelivered(req.to)
	}
	data := s.deliver(ep, req, now, skip)
	s.stats.Accepted++
	s.kinds[ep.kind].Accepted++
	o, answered := s.afterFault(fault, now)
	if answered {
		return o
	}
	status := o.status
	switch fault {
	case FaultPartial:
		s.leaveOut(data, req.to)
	case FaultPartialDeliver:
		if ep.directed {
			clear(data)
		}
	}

	if ep.legacy {
		return outcome{status: status, body: legacyAnswer{
			Action: "post", Application: applicationUUID, Params: map[string]any{},
			URI: origin + b.prefix, Entities: []any{}, Data: data,
			Timestamp: now.UnixMilli(), Organization: b.org, ApplicationName: b.appName(),
		}}
	}
	return outcome{status: status, body: sendAnswer{
		Path: ep.path, URI: origin + b.prefix + ep.path, Timestamp: now.UnixMilli(),
		Organization: b.org, Application: applicationUUID, Action: "post", Data: data,
		ApplicationName: b.appName(),
	}}
}

// afterFault is the answer of a call that was admitted and acted on, for
// the faults that decide it (500, reset, stall, 204): answered is true
// then; else the answer's status is set (201 and 202 for theirs, else
// 200) for the call to fill in. s.mu is held.
func (s *Server) afterFault(fault string, now time.Time) (o outcome, answered bool) {
	switch fault {
	case FaultErrorAfter:
		return s.refusal(errInternal(), now), true
	case FaultResetAfter:
		return outcome{reset: true}, true
	case FaultStallAfter:
		return outcome{stall: true}, true
	case FaultNoContent:
		return outcome{status: http.StatusNoContent}, true
	case FaultCreated, FaultAccepted:
		return outcome{status: faultSuccess[fault]}, false
	}
	return outcome{status: http.StatusOK}, false
}

// redirectAnswer is the body of a redirect fault's answer.
type redirectAnswer struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Location    string `json:"location"`
	Timestamp   int64  `json:"timestamp"`
}

// redirect is the answer of a redirect fault to the trap: Location is the
// trap URL and path, or noTrapURL without a trap. s.mu is held.
func (s *Server) redirect(status int, path string, now time.Time) outcome {
	loc := noTrapURL
	if s.trapURL != "" {
		loc = s.trapURL + path
	}
	return outcome{status: status, location: loc, body: redirectAnswer{
		Error: "moved", Description: "The resource has moved", Location: loc, Timestamp: now.UnixMilli(),
	}}
}

// distinct returns ids without repeats, in the order they first appear.
func distinct(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// undelivered draws the recipients that a partial_deliver fault leaves
// out: a random non-empty subset of the distinct IDs in to that spares a
// non-empty one, or all of them when there is one. s.mu is held.
func (s *Server) undelivered(to []string) map[string]bool {
	ids := distinct(to)
	skip := make(map[string]bool, len(ids))
	keep := 0
	if len(ids) > 1 {
		keep = 1 + s.rng.IntN(len(ids)-1)
	}
	for i, p := range s.rng.Perm(len(ids)) {
		if i >= keep {
			skip[ids[p]] = true
		}
	}
	return skip
}

// leaveOut deletes a random non-empty subset of the keys of data, which
// are the distinct IDs of to (or the scope of a directed call), for a
// partial fault; s.mu is held.
func (s *Server) leaveOut(data map[string]string, to []string) {
	if len(data) <= 1 {
		clear(data)
		return
	}
	keys := slices.DeleteFunc(distinct(to), func(k string) bool { _, ok := data[k]; return !ok })
	drop := 1 + s.rng.IntN(len(keys))
	for _, p := range s.rng.Perm(len(keys))[:drop] {
		delete(data, keys[p])
	}
}

// appName is the applicationName of an answer: none in the /app-id/
// flavour, whose answers (seed 003) carry neither it nor organization.
func (b base) appName() string {
	if b.org == "" {
		return ""
	}
	return b.app
}

// deliver records the deliveries of an admitted call, but to the IDs in
// skip, and returns the data of its answer: a new message ID per ID in to
// that was delivered, or "success" per legacy target. A directed call
// issues one ID for its group or room, which all its members get.
func (s *Server) deliver(ep *endpoint, req *request, now time.Time, skip map[string]bool) map[string]string {
	ks := s.kinds[ep.kind]
	msg, ok := s.messages[req.digest]
	if !ok {
		msg = uint32(len(s.messages))
		s.messages[req.digest] = msg
	}
	receive := func(recipient, id string) {
		k := deliveryKey{ep.kind, req.scope, recipient}
		if s.receive(k, msg) {
			s.stats.Duplicates++
			ks.Duplicates++
		}
		if s.keepIDs {
			s.ids[k] = append(s.ids[k], id)
		}
		s.stats.Delivered++
		ks.Delivered++
		if ep.kind == KindRooms {
			s.roomReceive(ks, recipient, now)
		}
	}
	data := make(map[string]string, len(req.to))
	for _, to := range req.to {
		if skip[to] {
			continue
		}
		id := "success"
		if !ep.legacy {
			s.lastID++
			id = strconv.FormatUint(s.lastID, 10)
			s.remember(ep, s.lastID, to, req.cmd, now)
		}
		data[to] = id
		if !ep.directed {
			receive(to, id)
		}
	}
	if ep.directed {
		id := data[req.scope]
		for _, u := range req.users {
			receive(u, id)
		}
	}
	return data
}

// receive records a delivery of msg to k and reports whether k already had
// that message.
func (s *Server) receive(k deliveryKey, msg uint32) (dup bool) {
	r := s.receipts[k]
	switch {
	case r.n == 0:
		r.first = msg
	case r.first == msg:
		dup = true
	case slices.Contains(s.more[k], msg):
		dup = true
	default:
		s.more[k] = append(s.more[k], msg)
	}
	r.n++
	s.receipts[k] = r
	return dup
}

// roomReceive counts a drop when room already kept roomDropLimit messages
// within the last second; dropped messages do not count toward the limit.
func (s *Server) roomReceive(ks *KindStats, room string, now time.Time) {
	w := s.rooms[room]
	if w == nil {
		w = newWindow(roomDropLimit, time.Second)
		s.rooms[room] = w
	}
	if w.fits(now, 1) {
		w.add(now, 1)
		return
	}
	s.stats.RoomDrops++
	ks.RoomDrops++
}

// refusal builds the answer of a failed call, not yet counted, with the
// Retry-After of the faults; s.mu is held.
func (s *Server) refusal(e *apiError, now time.Time) outcome {
	e.body.Timestamp = now.UnixMilli()
	o := outcome{status: e.status, body: e.body}
	if e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable {
		o.retryAfter = s.faults.retryAfter()
	}
	return o
}

// refuse is refusal with the lock taken.
func (s *Server) refuse(e *apiError) outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusal(e, s.now())
}

// failed counts and builds the answer of a failed call; s.mu is held.
func (s *Server) failed(ep *endpoint, e *apiError, now time.Time) outcome {
	s.countResponse(ep, e.status)
	return s.refusal(e, now)
}

// fail counts and sends the answer of a failed call; ep may be nil.
func (s *Server) fail(w http.ResponseWriter, ep *endpoint, e *apiError) {
	s.mu.Lock()
	o := s.failed(ep, e, s.now())
	s.mu.Unlock()
	o.write(w)
}

// countResponse counts an answer; s.mu is held and ep may be nil.
func (s *Server) countResponse(ep *endpoint, status int) {
	s.stats.Responses[status]++
	if ep != nil {
		s.kinds[ep.kind].Responses[status]++
	}
}

// countFault counts an injected fault; s.mu is held and ep may be nil.
func (s *Server) countFault(ep *endpoint, name string) {
	s.stats.Faults[name]++
	if ep != nil {
		s.kinds[ep.kind].Faults[name]++
	}
}

// resetConn drops the connection with a TCP reset and no answer.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // not hijackable: abort without an answer
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// sendAnswer is the 200 answer of the newer API.
type sendAnswer struct {
	Path            string            `json:"path"`
	URI             string            `json:"uri"`
	Timestamp       int64             `json:"timestamp"`
	Organization    string            `json:"organization,omitempty"`
	Application     string            `json:"application"`
	Action          string            `json:"action"`
	Data            map[string]string `json:"data"`
	Duration        int               `json:"duration"`
	ApplicationName string            `json:"applicationName,omitempty"`
}

// legacyAnswer is the 200 answer of the legacy API.
type legacyAnswer struct {
	Action          string            `json:"action"`
	Application     string            `json:"application"`
	Params          map[string]any    `json:"params"`
	URI             string            `json:"uri"`
	Entities        []any             `json:"entities"`
	Data            map[string]string `json:"data"`
	Timestamp       int64             `json:"timestamp"`
	Duration        int               `json:"duration"`
	Organization    string            `json:"organization,omitempty"`
	ApplicationName string            `json:"applicationName,omitempty"`
}

// serveControl answers the /_emulator/ endpoints, which need no token and
// are not counted in Stats.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_emulator/stats":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeControlError(w, errMethod(r.Method))
			return
		}
		writeJSON(w, http.StatusOK, s.Stats())
	case "/_emulator/faults":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, http.StatusOK, s.Faults())
		case http.MethodPost, http.MethodPut:
			var f Faults
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
			err := dec.Decode(&f)
			if err == nil {
				err = f.Validate()
			}
			if err != nil {
				e := errInvalidBody()
				e.body.Description = err.Error()
				writeControlError(w, e)
				return
			}
			s.SetFaults(f)
			writeJSON(w, http.StatusOK, f)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST, PUT")
			writeControlError(w, errMethod(r.Method))
		}
	default:
		writeControlError(w, errNotFound("Service resource not found"))
	}
}

func writeControlError(w http.ResponseWriter, e *apiError) {
	e.body.Timestamp = time.Now().UnixMilli()
	writeJSON(w, e.status, e.body)
}
