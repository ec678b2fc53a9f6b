package main

import (
	"errors"
	"fmt"
)

// errIncomplete ends a run that finished with deliveries failed or
// uncertain (exit code 3).
var errIncomplete = errors.New("finished, but some deliveries failed or are uncertain")

// errNotRecalled ends a recall that left sent deliveries not recalled
// (exit code 3, as errIncomplete).
var errNotRecalled = fmt.Errorf("%w: some sent deliveries are not recalled (the summary says why)", errRecallIncomplete)

// errRecallIncomplete is errIncomplete worded for a recall.
var errRecallIncomplete = &wording{errIncomplete, "finished"}

// wording is an error that says text but is err for errors.Is.
type wording struct {
	err  error
	text string
}

func (w *wording) Error() string { return w.text }
func (w *wording) Unwrap() error { return w.err }
