package main

import (
	"errors"
	"fmt"
	"imcast/job"
	"imcast/planner"
	"strings"
)

// errIncomplete ends a run that finished with deliveries failed or
// uncertain (exit code 3).
var errIncomplete = errors.New("finished, but some deliveries failed or are uncertain")

// notRecalled ends a recall that left sent deliveries not recalled, or
// uncertain ones that may have arrived with no ID to recall them by
// (exit code 3, as errIncomplete), saying which.
func notRecalled(res *job.RecallResult) error {
	var what []string
	if res.NotRecalled > 0 {
		what = append(what, planner.Count(res.NotRecalled, "sent delivery is", "sent deliveries are")+" not recalled")
	}
	if res.Unknown > 0 {
		what = append(what, planner.Count(res.Unknown, "sent delivery has", "sent deliveries have")+" no outcome yet (run recall again)")
	}
	if res.Uncertain > 0 {
		what = append(what, planner.Count(res.Uncertain, "uncertain delivery", "uncertain deliveries")+" may have arrived, with no message ID to recall")
	}
	if res.CopiedBefore > 0 {
		what = append(what, planner.Count(res.CopiedBefore, "delivery sent again may have arrived", "deliveries sent again may have arrived")+" twice, the first copy with no message ID to recall")
	}
	if elsewhere := res.SentElsewhere(); elsewhere > 0 {
		what = append(what, planner.Count(elsewhere, "sent delivery went", "sent deliveries went")+" through another host, which alone can recall them")
	}
	return fmt.Errorf("%w: %s (the summary says why)", errRecallIncomplete, strings.Join(what, "; "))
}

// errRecallIncomplete is errIncomplete worded for a recall.
var errRecallIncomplete = &wording{errIncomplete, "finished"}

// wording is an error that says text but is err for errors.Is.
type wording struct {
	err  error
	text string
}

func (w *wording) Error() string { return w.text }
func (w *wording) Unwrap() error { return w.err }
