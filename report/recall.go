package report

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"

	"imcast/job"
)

// WriteRecall prints what a recall did and where the campaign's recall
// stands.
func WriteRecall(w io.Writer, campaign, ledger string, r *job.RecallResult) {
	fmt.Fprintf(w, "campaign %s: %d sent deliveries; %d recalled, %d not recalled", campaign, r.Sent, r.Recalled, r.NotRecalled)
	if r.Unknown > 0 {
		fmt.Fprintf(w, ", %d still unknown (run recall again)", r.Unknown)
	}
	fmt.Fprintln(w)
	if r.Uncertain > 0 {
		fmt.Fprintf(w, "%d deliveries are uncertain: they may have arrived, and have no message ID to recall them by (imcast report --state %s --only uncertain)\n", r.Uncertain, ledger)
	}
	fmt.Fprintf(w, "this recall: %d messages to recall, %d calls in %s\n", r.Messages, r.Calls, r.Elapsed.Round(10*1e6))
	if len(r.Reasons) == 0 {
		return
	}
	fmt.Fprintln(w, "not recalled:")
	reasons := slices.SortedFunc(maps.Keys(r.Reasons), func(a, b string) int {
		return cmp.Or(cmp.Compare(r.Reasons[b], r.Reasons[a]), cmp.Compare(a, b))
	})
	for _, reason := range reasons {
		fmt.Fprintf(w, "  %d: %s\n", r.Reasons[reason], reason)
	}
	fmt.Fprintf(w, "see imcast report --state %s --campaign %s\n", ledger, campaign)
}
