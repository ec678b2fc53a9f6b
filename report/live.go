package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"imcast/chatapi"
	"imcast/job"
	"imcast/planner"
)

// Live is what a run shares of itself while it holds its ledger, which no
// other process may open then: its own counts, kind by kind, written to
// a file beside the ledger (LivePath) every second and removed at its end,
// for imcast status to show.
type Live struct {
	Campaign string     `json:"campaign"`
	PID      int        `json:"pid"`
	Time     time.Time  `json:"time"` // when these counts were taken
	Kinds    []LiveKind `json:"kinds"`
}

// LiveKind is one kind's counts in a Live: what the run set out to send,
// what it recorded, and what is left.
type LiveKind struct {
	Kind      chatapi.Kind `json:"kind"`
	ToSend    int64        `json:"to_send"`
	Sent      int64        `json:"sent"`
	Failed    int64        `json:"failed"`
	Uncertain int64        `json:"uncertain"`
	Left      int64        `json:"left"`
}

// LivePath is the file beside the ledger where its run's Live is kept.
func LivePath(ledger string) string { return ledger + ".live" }

// KeepLive writes the run's Live beside the ledger now and every `every`
// until stop is called, which removes it. A file left by a run that was
// killed is replaced at once.
func KeepLive(ledger, campaign string, p *job.Progress, kinds []planner.KindPlan, every time.Duration) (stop func()) {
	write := func() {
		l := Live{Campaign: campaign, PID: os.Getpid(), Time: time.Now().UTC()}
		for _, kp := range kinds {
			c := p.Kind(kp.Kind)
			if c == nil {
				continue
			}
			k := LiveKind{Kind: kp.Kind, ToSend: kp.Pending, Sent: c.Sent.Load(), Failed: c.Failed.Load(), Uncertain: c.Uncertain.Load()}
			k.Left = max(0, k.ToSend-k.Sent-k.Failed-k.Uncertain)
			l.Kinds = append(l.Kinds, k)
		}
		raw, err := json.Marshal(l)
		if err != nil {
			return
		}
		// written whole, then renamed: a reader never sees half of it
		tmp := LivePath(ledger) + ".tmp"
		if os.WriteFile(tmp, raw, 0o600) == nil {
			_ = os.Rename(tmp, LivePath(ledger))
		}
	}
	write()
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				write()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		os.Remove(LivePath(ledger))
	}
}

// ReadLive reads the Live kept beside the ledger.
func ReadLive(ledger string) (Live, error) {
	var l Live
	raw, err := os.ReadFile(LivePath(ledger))
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		return l, fmt.Errorf("%s: %w", LivePath(ledger), err)
	}
	return l, nil
}

// WriteLive prints a run's Live, as a table with its age at now, or as
// one JSON line.
func WriteLive(w io.Writer, l Live, now time.Time, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]any{"live": l})
	}
	fmt.Fprintf(w, "campaign %s, the run's own counts as of %s (%s ago):\n", l.Campaign, l.Time.Local().Format("15:04:05"), now.Sub(l.Time).Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tto send\tsent\tfailed\tuncertain\tleft\t")
	for _, k := range l.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", k.Kind, k.ToSend, k.Sent, k.Failed, k.Uncertain, k.Left)
	}
	return tw.Flush()
}
