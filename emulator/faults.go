package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
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
	FaultLatency         = "latency"
)

// Faults sets the faults injected into message calls. Each probability is
// drawn after a call passed validation and quota admission, with one uniform
// draw per call from the seeded source: the faults are tried in the order of
// the fields below, so each gets its own probability as long as they add up
// to at most 1 (beyond that, the later ones get what is left).
//
// In JSON, latency is either an integer of nanoseconds or a string that
// time.ParseDuration accepts ("20ms"); it is always written as nanoseconds.
type Faults struct {
	TooManyRequests float64       `json:"too_many_requests"` // answer 429 without delivering
	QuotaForbidden  float64       `json:"quota_forbidden"`   // answer 403 "message send reach limit" without delivering
	Unavailable     float64       `json:"unavailable"`       // answer 503 without delivering
	ErrorBefore     float64       `json:"error_before"`      // answer 500 without delivering
	ErrorAfter      float64       `json:"error_after"`       // deliver, then answer 500
	ResetAfter      float64       `json:"reset_after"`       // deliver, then reset the TCP connection with no answer
	Latency         time.Duration `json:"latency"`           // wait this long before handling each message call
}

// Validate reports an error wrapping ErrInvalidFaults if a probability is
// outside [0, 1] or the latency is negative.
func (f Faults) Validate() error {
	for _, p := range f.draws() {
		if math.IsNaN(p.p) || p.p < 0 || p.p > 1 {
			return fmt.Errorf("%s %v is not a probability in [0, 1]: %w", p.name, p.p, ErrInvalidFaults)
		}
	}
	if f.Latency < 0 {
		return fmt.Errorf("latency %v is negative: %w", f.Latency, ErrInvalidFaults)
	}
	return nil
}

type draw struct {
	name string
	p    float64
}

// draws lists the probabilistic faults in the order they are tried.
func (f Faults) draws() [6]draw {
	return [6]draw{
		{FaultTooManyRequests, f.TooManyRequests},
		{FaultQuotaForbidden, f.QuotaForbidden},
		{FaultUnavailable, f.Unavailable},
		{FaultErrorBefore, f.ErrorBefore},
		{FaultErrorAfter, f.ErrorAfter},
		{FaultResetAfter, f.ResetAfter},
	}
}

// any reports whether a probabilistic fault is set.
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

// UnmarshalJSON decodes Faults, with the latency as nanoseconds or as a
// duration string. Unknown fields are an error, so that a misspelt fault is
// not silently ignored.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	var aux struct {
		plain
		Latency json.RawMessage `json:"latency"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	out := Faults(aux.plain)
	out.Latency = 0
	if len(aux.Latency) > 0 && !bytes.Equal(aux.Latency, []byte("null")) {
		var s string
		if err := json.Unmarshal(aux.Latency, &s); err == nil {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("latency: %w", err)
			}
			out.Latency = d
		} else {
			var ns int64
			if err := json.Unmarshal(aux.Latency, &ns); err != nil {
				return fmt.Errorf("latency is neither nanoseconds nor a duration string: %w", err)
			}
			out.Latency = time.Duration(ns)
		}
	}
	*f = out
	return nil
}
