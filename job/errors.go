package job

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ErrNoUploader is returned for a message with a file to upload when the
// run has no way to upload it.
var ErrNoUploader = errors.New("a message has a file to upload, but no uploader is configured")

// ErrUnreachable stops a run when no call was answered for too long: the
// host refuses connections, cannot be found, does not answer, or answers
// every call with a refusal (429, 403 quota, 503). It comes
// wrapped in an *UnreachableError naming the host.
var ErrUnreachable = errors.New("no answer from the host")

// UnreachableError says which host gave no answer, for how long, and the
// last error seen.
type UnreachableError struct {
	Host     string
	For      time.Duration
	Answered bool  // whether any call of the run was answered before
	Refused  bool  // whether the host answered meanwhile, refusing every call (quota)
	Last     error // the last failure, nil if none came back yet
}

func (e *UnreachableError) Error() string {
	what := "no call of this run was answered"
	switch {
	case e.Refused:
		what = "every call was refused (the app's quota taken by something else, or used up)"
	case e.Answered:
		what = "no call was answered"
	}
	msg := fmt.Sprintf("%s: %s for %s", e.Host, what, e.For.Round(time.Second))
	if e.Last != nil {
		msg += "; last error: " + e.Last.Error()
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrUnreachable) hold.
func (e *UnreachableError) Unwrap() error { return ErrUnreachable }

// SentElsewhereError refuses a run, before anything is sent, whose
// deliveries other campaigns of the ledger already hold as sent (or as
// possibly sent): the campaign file was renamed or copied. Naming the
// campaign with --campaign sends them again on purpose.
type SentElsewhereError struct {
	Campaign string           // the run's
	Found    map[string]int64 // by other campaign: how many of the run's deliveries it holds
}

func (e *SentElsewhereError) Error() string {
	names := slices.Sorted(maps.Keys(e.Found))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("campaign %q already holds %d of them as sent or uncertain", n, e.Found[n])
	}
	goOn := fmt.Sprintf("To go on with campaign %s (what it sent stays sent), run with --campaign %s", names[0], names[0])
	if len(names) > 1 {
		goOn = "To go on with one of them (what it sent stays sent), run with --campaign and its name"
	}
	return fmt.Sprintf("%s; nothing was sent (a renamed or copied file?). %s; to send them again on purpose, name this campaign: --campaign %s",
		strings.Join(parts, ", "), goOn, e.Campaign)
}
