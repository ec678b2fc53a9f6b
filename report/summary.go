package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"imcast/job"
	"imcast/planner"
)

// KindSummary is what a run did for one kind.
type KindSummary struct {
	Kind      string `json:"kind"`
	Planned   int64  `json:"planned"`        // deliveries in the campaign
	ToSend    int64  `json:"to_send"`        // of them, pending when the run started
	Sent      int64  `json:"sent"`           // by this run
	Failed    int64  `json:"failed"`         // by this run
	Uncertain int64  `json:"uncertain"`      // by this run
	Left      int64  `json:"left"`           // still pending: not sent because the run stopped
	Calls     int64  `json:"calls"`          // calls made
	Refused   int64  `json:"quota_refusals"` // 429, 403 and 503 answers
	Retries   int64  `json:"retries"`
}

func (t *KindSummary) add(k KindSummary) {
	t.Planned += k.Planned
	t.ToSend += k.ToSend
	t.Sent += k.Sent
	t.Failed += k.Failed
	t.Uncertain += k.Uncertain
	t.Left += k.Left
	t.Calls += k.Calls
	t.Refused += k.Refused
	t.Retries += k.Retries
}

// Summary is what a run did, per kind and in total.
type Summary struct {
	Event         string        `json:"event"` // "summary"
	Time          string        `json:"time"`
	Campaign      string        `json:"campaign"`
	Ledger        string        `json:"ledger"`
	Kinds         []KindSummary `json:"kinds"`
	Total         KindSummary   `json:"total"`
	AlreadySent   int64         `json:"already_sent"`   // before this run
	HeldUncertain int64         `json:"held_uncertain"` // uncertain before this run and not resent
	Seconds       float64       `json:"elapsed_seconds"`
	Complete      bool          `json:"complete"` // every delivery of the campaign is sent
	// Unchanged: the files are as they were when every delivery was found
	// sent, and no row was read.
	Unchanged bool `json:"files_unchanged"`
	// Reasons are why deliveries failed or became uncertain and calls were
	// retried, the most counted first.
	Reasons []job.Reason `json:"reasons"`
}

// shownReasons is how many reasons the text summary names.
const shownReasons = 5

// NewSummary sums up a run of campaign into ledger.
func NewSummary(campaign, ledger string, res *job.Result) Summary {
	s := Summary{Event: "summary", Time: Stamp(time.Now()), Campaign: campaign, Ledger: ledger, Total: KindSummary{Kind: "total"},
		AlreadySent: res.AlreadySent, HeldUncertain: res.HeldUncertain,
		Seconds: res.Elapsed.Seconds(), Complete: res.Complete(), Unchanged: res.Unchanged,
		Reasons: res.Progress.Reasons()}
	for _, kp := range res.Plan.Kinds {
		ks := KindSummary{Kind: string(kp.Kind), Planned: kp.Recipients, ToSend: kp.Pending}
		if c := res.Progress.Kind(kp.Kind); c != nil {
			ks.Sent, ks.Failed, ks.Uncertain = c.Sent.Load(), c.Failed.Load(), c.Uncertain.Load()
			ks.Calls, ks.Refused, ks.Retries = c.Calls.Load(), c.Refused.Load(), c.Retries.Load()
		}
		ks.Left = ks.ToSend - ks.Sent - ks.Failed - ks.Uncertain
		s.Kinds = append(s.Kinds, ks)
		s.Total.add(ks)
	}
	return s
}

// WriteJSON prints the summary as one JSON object on a line.
func (s Summary) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(s)
}

// WriteText prints the summary as a table and a verdict.
func (s Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tplanned\tto send\tsent\tfailed\tuncertain\tleft\tcalls\trefused\tretries\t")
	for _, k := range append(s.Kinds, s.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", k.Kind, k.Planned, k.ToSend, k.Sent, k.Failed,
			k.Uncertain, k.Left, k.Calls, k.Refused, k.Retries)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	elapsed := time.Duration(s.Seconds * float64(time.Second)).Round(time.Millisecond)
	fmt.Fprintf(w, "\ncampaign %s: %d sent in %s", s.Campaign, s.Total.Sent, elapsed)
	if s.AlreadySent > 0 {
		fmt.Fprintf(w, "; %d were sent before", s.AlreadySent)
	}
	fmt.Fprintln(w)
	switch {
	case s.Complete && s.Unchanged:
		_, err := fmt.Fprintln(w, "every delivery is sent: the files are unchanged since, and no row was read")
		return err
	case s.Complete:
		fmt.Fprintln(w, "every delivery is sent")
		return s.writeReasons(w)
	case s.Total.Left > 0:
		fmt.Fprintf(w, "%s still to send: run again to go on\n", planner.Count(s.Total.Left, "delivery", "deliveries"))
	}
	if s.HeldUncertain > 0 {
		fmt.Fprintf(w, "%s uncertain before this run and not resent (--resend-uncertain sends them again)\n", planner.Count(s.HeldUncertain, "delivery was", "deliveries were"))
	}
	if s.Total.Failed+s.Total.Uncertain > 0 {
		fmt.Fprintf(w, "%d failed and %d uncertain in this run: see imcast report --state %s --only failed,uncertain\n",
			s.Total.Failed, s.Total.Uncertain, shellQuote(s.Ledger))
	}
	return s.writeReasons(w)
}

// writeReasons names the most counted reasons of the run.
func (s Summary) writeReasons(w io.Writer) error {
	if len(s.Reasons) == 0 {
		return nil
	}
	fmt.Fprintln(w, "why:")
	for i, r := range s.Reasons {
		if i == shownReasons {
			fmt.Fprintf(w, "  and %d more reasons (imcast report --state %s --only failed,uncertain lists every delivery's)\n", len(s.Reasons)-i, shellQuote(s.Ledger))
			break
		}
		fmt.Fprintf(w, "  %s\n", reasonLine(r.Outcome, r.Count, r.Reason))
	}
	return nil
}

// shellQuote quotes a path for a command line a user copies, when it needs it.
func shellQuote(p string) string {
	if p != "" && strings.IndexFunc(p, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
