package report

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"

	"imcast/job"
	"imcast/planner"
)

// WriteRecall prints what a recall did and where the campaign's recall
// stands.
func WriteRecall(w io.Writer, campaign, ledger string, r *job.RecallResult) {
	fmt.Fprintf(w, "campaign %s: %s; %d recalled, %d not recalled", campaign, planner.Count(r.Sent, "sent delivery", "sent deliveries"), r.Recalled, r.NotRecalled)
	if r.Unknown > 0 {
		fmt.Fprintf(w, ", %d still unknown (run recall again)", r.Unknown)
	}
	fmt.Fprintln(w)
	if r.Uncertain > 0 {
		fmt.Fprintf(w, "%s uncertain: they may have arrived, and have no message ID to recall them by (imcast report --state %s --only uncertain)\n", planner.Count(r.Uncertain, "delivery is", "deliveries are"), ledger)
	}
	if r.CopiedBefore > 0 {
		fmt.Fprintf(w, "%s sent again after an uncertain call (--resend-uncertain): the copy that call may have delivered has no message ID to recall it by\n", planner.Count(r.CopiedBefore, "delivery was", "deliveries were"))
	}
	for _, via := range slices.Sorted(maps.Keys(r.Elsewhere)) {
		fmt.Fprintf(w, "%s sent through %s, not this host: only that host can recall them; run recall with the --host and app of that address\n", planner.Count(r.Elsewhere[via], "delivery was", "deliveries were"), via)
	}
	fmt.Fprintf(w, "this recall: %s to recall, %s in %s\n", planner.Count(r.Messages, "message", "messages"), planner.Count(r.Calls, "call", "calls"), r.Elapsed.Round(10*1e6))
	if len(r.Reasons) == 0 {
		return
	}
	fmt.Fprintln(w, "not recalled:")
	reasons := slices.SortedFunc(maps.Keys(r.Reasons), func(a, b string) int {
		return cmp.Or(cmp.Compare(r.Reasons[b], r.Reasons[a]), cmp.Compare(a, b))
	})
	for _, reason := range reasons {
		hint := ""
		if reason == job.ReasonTooLate {
			hint = " (past the app's recall window: recall --force withdraws the recipients' copies)"
		}
		fmt.Fprintf(w, "  %d: %s%s\n", r.Reasons[reason], reason, hint)
	}
	fmt.Fprintf(w, "see imcast report --state %s --campaign %s\n", ledger, campaign)
}
