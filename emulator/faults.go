package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Fault names, as used in Stats.Faults and in the JSON form of Faults.
const (
	FaultTooManyRequests = "too_many_requests"
	FaultQuotaForbidden  = "quota_forbidden"
	FaultUnavailable     = "unavailable"
	FaultErrorBefore     = "error_before"
	FaultErrorAfter      = "error_after"
	FaultResetAfter      = "reset_after"
	FaultCreated         = "created"
	FaultAccepted        = "accepted"
	FaultNoContent       = "no_content"
	FaultPartial         = "partial"
	FaultPartialDeliver  = "partial_deliver"
	FaultRedirect        = "redirect"
	FaultStallAfter      = "stall_after"
	FaultTokenRedirect   = "token_redirect"
	FaultLatency         = "latency"
)

// noTrapURL is where the redirect faults point when there is no trap (a
// Server built by New): nothing listens on port 9 (discard).
const noTrapURL = "http://127.0.0.1:9/trap"

// redirectStatuses are the statuses the redirect fault draws from.
var redirectStatuses = [...]int{301, 302, 303, 307, 308}

// Faults sets the faults injected into message calls. Each probability is
// drawn after a call passed validation and quota admission, with one uniform
// draw per call from the seeded source: the faults are tried in the order of
// the fields below, from TooManyRequests to StallAfter, so each gets its own
// probability as long as they add up to at most 1 (beyond that, the later
// ones get what is left). The faults that deliver nothing use no quota;
// the others are charged in full, whatever they deliver.
//
// The success faults (Created, Accepted202, NoContent) deliver and answer
// a success status other than 200. Partial delivers to every recipient but
// its answer names only some of them; PartialDeliver delivers to some of
// them only, and its answer names those. Redirect delivers nothing and
// answers a redirect to the trap (see Running.TrapURL), where a client that
// follows it is told it succeeded; StallAfter delivers and never answers.
//
// TokenRedirect applies to POST /token only, with a draw of its own per
// token call: it answers 307 to the trap and issues nothing.
//
// Every message call, whatever its answer, is answered Latency plus a
// uniform draw in [0, LatencyJitter) after its admission. RetryAfter and
// NoRetryAfter set the Retry-After header of every 429 and 503 answer.
//
// In JSON, latency, latency_jitter and retry_after are each either an
// integer of nanoseconds or a string that time.ParseDuration accepts
// ("20ms"); they are always written as nanoseconds.
type Faults struct {
	TooManyRequests float64 `json:"too_many_requests"` // answer 429 without delivering
	QuotaForbidden  float64 `json:"quota_forbidden"`   // answer 403 "message send reach limit" without delivering
	Unavailable     float64 `json:"unavailable"`       // answer 503 without delivering
	ErrorBefore     float64 `json:"error_before"`      // answer 500 without delivering
	ErrorAfter      float64 `json:"error_after"`       // deliver, then answer 500
	ResetAfter      float64 `json:"reset_after"`       // deliver, then reset the TCP connection with no answer
	Created         float64 `json:"created"`           // deliver, then answer 201 with the usual success body
	Accepted202     float64 `json:"accepted"`          // deliver, then answer 202 with the usual success body
	NoContent       float64 `json:"no_content"`        // deliver, then answer 204 with no body
	// Partial delivers to every recipient, then answers 200 with a data
	// that leaves out a random non-empty subset of its keys (all of them
	// when it has one, as for the directed kinds).
	Partial float64 `json:"partial"`
	// PartialDeliver delivers to a random non-empty proper subset of the
	// recipients (none when there is one), then answers 200 with a data
	// that names only those. The directed kinds deliver to every member
	// and answer a data of {}, as Partial does.
	PartialDeliver float64 `json:"partial_deliver"`
	// Redirect delivers nothing and answers 301, 302, 303, 307 or 308
	// (drawn) with Location: the trap URL and the call's path.
	Redirect float64 `json:"redirect"`
	// StallAfter delivers, then holds the call with no answer until the
	// client gives up or the emulator closes, and resets the connection.
	StallAfter float64 `json:"stall_after"`
	// TokenRedirect answers a POST /token 307 with Location: the trap URL
	// and /token, issuing nothing.
	TokenRedirect float64       `json:"token_redirect"`
	Latency       time.Duration `json:"latency"`        // wait this long after admitting each message call before answering it
	LatencyJitter time.Duration `json:"latency_jitter"` // add a uniform draw in [0, LatencyJitter) to each call's latency
	// RetryAfter is the Retry-After of the 429 and 503 answers, in whole
	// seconds rounded up; 0 means 1 s, enough for the one-second quotas.
	RetryAfter   time.Duration `json:"retry_after"`
	NoRetryAfter bool          `json:"no_retry_after"` // send no Retry-After at all
}

// Validate reports an error wrapping ErrInvalidFaults if a probability is
// outside [0, 1] or a duration is negative.
func (f Faults) Validate() error {
	draws := f.draws()
	for _, p := range append(draws[:], draw{FaultTokenRedirect, f.TokenRedirect}) {
		if math.IsNaN(p.p) || p.p < 0 || p.p > 1 {
			return fmt.Errorf("%s %v is not a probability in [0, 1]: %w", p.name, p.p, ErrInvalidFaults)
		}
	}
	for _, d := range f.durations() {
		if *d.d < 0 {
			return fmt.Errorf("%s %v is negative: %w", d.name, *d.d, ErrInvalidFaults)
		}
	}
	return nil
}

type draw struct {
	name string
	p    float64
}

// draws lists the probabilistic faults of message calls in the order they
// are tried.
func (f Faults) draws() [13]draw {
	return [13]draw{
		{FaultTooManyRequests, f.TooManyRequests},
		{FaultQuotaForbidden, f.QuotaForbidden},
		{FaultUnavailable, f.Unavailable},
		{FaultErrorBefore, f.ErrorBefore},
		{FaultErrorAfter, f.ErrorAfter},
		{FaultResetAfter, f.ResetAfter},
		{FaultCreated, f.Created},
		{FaultAccepted, f.Accepted202},
		{FaultNoContent, f.NoContent},
		{FaultPartial, f.Partial},
		{FaultPartialDeliver, f.PartialDeliver},
		{FaultRedirect, f.Redirect},
		{FaultStallAfter, f.StallAfter},
	}
}

type namedDuration struct {
	name string
	d    *time.Duration
}

// durations lists the duration fields by their JSON names.
func (f *Faults) durations() [3]namedDuration {
	return [3]namedDuration{
		{"latency", &f.Latency},
		{"latency_jitter", &f.LatencyJitter},
		{"retry_after", &f.RetryAfter},
	}
}

// any reports whether a probabilistic fault of message calls is set.
func (f Faults) any() bool {
	for _, d := range f.draws() {
		if d.p > 0 {
			return true
		}
	}
	return false
}

// pick maps a uniform draw u in [0, 1) to a fault name, or "" for none.
func (f Faults) pick(u float64) string {
	acc := 0.0
	for _, d := range f.draws() {
		if d.p <= 0 {
			continue
		}
		acc += d.p
		if u < acc {
			return d.name
		}
	}
	return ""
}

// retryAfter is the Retry-After header of a 429 or 503 answer, or "" for
// none.
func (f Faults) retryAfter() string {
	switch {
	case f.NoRetryAfter:
		return ""
	case f.RetryAfter <= 0:
		return "1"
	}
	secs := int64(f.RetryAfter / time.Second)
	if f.RetryAfter%time.Second != 0 {
		secs++
	}
	return strconv.FormatInt(secs, 10)
}

// UnmarshalJSON decodes Faults, with each duration as nanoseconds or as a
// duration string. Unknown fields are an error, so that a misspelt fault is
// not silently ignored.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	var aux struct {
		plain
		Latency       json.RawMessage `json:"latency"`
		LatencyJitter json.RawMessage `json:"latency_jitter"`
		RetryAfter    json.RawMessage `json:"retry_after"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	out := Faults(aux.plain)
	raws := [3]json.RawMessage{aux.Latency, aux.LatencyJitter, aux.RetryAfter}
	for i, d := range out.durations() {
		v, err := parseDuration(raws[i])
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		*d.d = v
	}
	*f = out
	return nil
}

// parseDuration decodes a JSON duration: nanoseconds, a duration string,
// or absent or null for 0.
func parseDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return time.ParseDuration(s)
	}
	var ns int64
	if err := json.Unmarshal(raw, &ns); err != nil {
		return 0, fmt.Errorf("neither nanoseconds nor a duration string: %w", err)
	}
	return time.Duration(ns), nil
}
