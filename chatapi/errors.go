package chatapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Outcome sorts a failed call by what the runner must do about it.
type Outcome int

const (
	// NotDelivered means the server refused the call without delivering
	// anything (429, 403 quota, 503, 401, a connection that never opened):
	// send it again after a pause.
	NotDelivered Outcome = iota + 1
	// Permanent means the server rejected the call (400, 404, 413) or
	// redirected it, which is never followed: sending it again would fail
	// the same way.
	Permanent
	// Ambiguous means the server may have delivered (500, 502, 504, any
	// status the API does not document, a 2xx without data, a timeout or
	// a reset after the request was written): resending could deliver
	// twice.
	Ambiguous
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case NotDelivered:
		return "not delivered"
	case Permanent:
		return "permanent"
	case Ambiguous:
		return "ambiguous"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Error is a failed call: its outcome, the HTTP status (0 when no answer
// came), the server's error and error_description, and the pause the server
// asked for in Retry-After.
type Error struct {
	Op          string // the call, when not the message call: "app token", "upload"
	Outcome     Outcome
	Status      int
	Code        string // the answer's "error", e.g. message_send_error
	Description string // the answer's "error_description"
	RetryAfter  time.Duration
	Err         error // the transport error, when no answer came
}

// Error describes the failure without the request's URL or headers.
func (e *Error) Error() string {
	if e.Op != "" {
		op := *e
		op.Op = ""
		return e.Op + ": " + op.Error()
	}
	parts := []string{e.Outcome.String()}
	if e.Status != 0 {
		parts = append(parts, fmt.Sprintf("status %d", e.Status))
	}
	switch {
	case e.Description != "" && e.Code != "":
		parts = append(parts, e.Code, e.Description)
	case e.Description != "" || e.Code != "":
		parts = append(parts, e.Code+e.Description)
	}
	if e.Err != nil {
		parts = append(parts, e.Err.Error())
	}
	return strings.Join(parts, ": ")
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// OutcomeOf returns the outcome of an error returned by Client.Send. An
// error that is not an *Error was raised before any request was written (a
// batch that cannot be encoded): it is Permanent.
func OutcomeOf(err error) Outcome {
	var e *Error
	if errors.As(err, &e) {
		return e.Outcome
	}
	return Permanent
}

// Refused reports whether err is the server refusing a call for quota
// (429, 403 or 503, nothing delivered): another job on the app, or a pace
// too fast for the server.
func Refused(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Outcome != NotDelivered {
		return false
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusForbidden, http.StatusServiceUnavailable:
		return true
	}
	return false
}

// RefusedCalls reports whether err is the server refusing a call for its
// call quota (429, nothing delivered), not its message quota.
func RefusedCalls(err error) bool {
	var e *Error
	return Refused(err) && errors.As(err, &e) && e.Status == http.StatusTooManyRequests
}

// ErrCredentials marks a refusal of the credentials that trying again will
// not mend: the server refused the client ID or secret, or the app token
// even after a refresh. It stops a run.
var ErrCredentials = errors.New("the server refused the credentials")

// CredentialsRefused reports whether err is the server refusing the
// credentials: ErrCredentials, or a 401 the client's refresh did not mend.
func CredentialsRefused(err error) bool {
	var e *Error
	return errors.Is(err, ErrCredentials) || (errors.As(err, &e) && e.Status == http.StatusUnauthorized)
}

// ErrRedirect is the error of a call answered with a redirect (3xx). No
// redirect is followed, so the message or the credentials never go to
// another URL; the error names the Location.
var ErrRedirect = errors.New("the server answered with a redirect, which imcast never follows")

// ErrInsecureHost is returned by New for a plain http:// host that is not a
// loopback address: a token must not cross a network in clear text.
var ErrInsecureHost = errors.New("plain http is allowed only to a loopback address; use https")
