package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"imcast/job"
	"imcast/planner"
)

// Mode is how progress is shown.
type Mode int

// The progress modes.
const (
	Quiet Mode = iota // nothing
	Bar               // a progress bar, for a terminal
	Lines             // a line at a steady interval, for logs
	JSON              // a JSON event at a steady interval
)

// Stamp is the timestamp log lines start with.
func Stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Start is what a run names as it starts.
type Start struct {
	Event    string `json:"event"` // "start"
	Time     string `json:"time"`
	Host     string `json:"host"` // the API base URL
	App      string `json:"app"`
	Campaign string `json:"campaign"`
	Ledger   string `json:"ledger"`
	ToSend   int64  `json:"to_send"`
	Shared   bool   `json:"shared_quota"` // through Redis
	// SharedNew: the shared windows are new (Redis restarted, flushed, or
	// first used): calls wait a window's length for those made before
	SharedNew bool   `json:"shared_windows_new,omitempty"`
	Metrics   string `json:"metrics,omitempty"` // the URL of the run's metrics
}

// WriteStart prints the start line (or event) of a run on w.
func WriteStart(w io.Writer, mode Mode, s Start) {
	now := time.Now()
	s.Event, s.Time = "start", Stamp(now)
	switch mode {
	case Quiet:
	case JSON:
		_ = json.NewEncoder(w).Encode(s)
	default:
		extra := ""
		if s.Shared {
			extra += ", quotas shared through Redis"
		}
		if s.SharedNew {
			extra += " (its windows are new, so calls first wait a window's length, up to a minute, for the calls made before to leave it)"
		}
		if s.Metrics != "" {
			extra += ", metrics at " + s.Metrics
		}
		fmt.Fprintf(w, "%s imcast run: host %s, app %s, campaign %s, ledger %s: %s to send%s\n",
			s.Time, s.Host, s.App, s.Campaign, s.Ledger, planner.Count(s.ToSend, "delivery", "deliveries"), extra)
	}
}

// WriteWaiting says the run waits for its send window to open at until
// (in the window's zone): a "pause" event in JSON.
func WriteWaiting(w io.Writer, mode Mode, window string, until time.Time) {
	now := time.Now()
	switch mode {
	case Quiet:
	case JSON:
		_ = json.NewEncoder(w).Encode(struct {
			Event  string `json:"event"`
			Time   string `json:"time"`
			Reason string `json:"reason"`
			Window string `json:"window"`
			Until  string `json:"until"`
		}{"pause", Stamp(now), "outside the send window " + window, window, until.Format(time.RFC3339)})
	default:
		fmt.Fprintf(w, "%s imcast run: outside the send window %s: waiting until %s (%s from now)\n",
			Stamp(now), window, until.Format("2006-01-02 15:04:05 MST"), until.Sub(now).Round(time.Second))
	}
}

// WriteError prints the error that stopped a run as a JSON event; fatal
// says it was an error, not a stop (an interrupt, a guard).
func WriteError(w io.Writer, msg string, fatal bool) {
	_ = json.NewEncoder(w).Encode(struct {
		Event string `json:"event"`
		Time  string `json:"time"`
		Fatal bool   `json:"fatal"`
		Error string `json:"error"`
	}{"error", Stamp(time.Now()), fatal, msg})
}

// Watching is what Watch shows: the progress of a run towards Total
// deliveries, which the plan estimated to take Estimate.
type Watching struct {
	Mode     Mode
	Progress *job.Progress
	Total    int64
	Estimate time.Duration
	Every    time.Duration // between lines (Lines and JSON)
	// Kinds, if set, are the plan's kinds: they are sent side by side, so
	// the time left is that of the kind with the most left, each kind at
	// its own pace (a fast kind done early says nothing of a slow one)
	Kinds []planner.KindPlan
}

// Watch shows a run's progress on w until the returned stop is called;
// stop prints the last state and waits for the watcher to end. Besides
// the progress, every reason that grew since the last look (a wave of
// retries, refusals, failures) is printed with how many more it counts.
func Watch(w io.Writer, o Watching) (stop func()) {
	if o.Mode == Quiet || o.Total == 0 {
		return func() {}
	}
	v := &watcher{w: w, Watching: o, start: time.Now(), seen: map[[2]string]int64{}}
	every := o.Every
	if o.Mode == Bar {
		v.bar = progressbar.NewOptions64(o.Total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("sending"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msg"),
			progressbar.OptionSetPredictTime(false), // the description says what is left
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
		every = 200 * time.Millisecond
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				v.show()
			case <-done:
				v.show()
				if v.bar != nil {
					_ = v.bar.Exit()
				}
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

type watcher struct {
	Watching
	w     io.Writer
	start time.Time
	bar   *progressbar.ProgressBar
	seen  map[[2]string]int64 // each reason's count at the last look
}

func (v *watcher) show() {
	now := time.Now()
	v.reasons(now)
	sent, failed, uncertain := v.Progress.Done()
	n := sent + failed + uncertain
	elapsed := now.Sub(v.start)
	switch v.Mode {
	case Bar:
		v.bar.Describe(fmt.Sprintf("sending: failed %d, uncertain %d, %s left", failed, uncertain, v.left(n, elapsed)))
		_ = v.bar.Set64(n)
	case Lines:
		fmt.Fprintln(v.w, Stamp(now)+" "+progressLine(n, v.Total, sent, failed, uncertain, elapsed, v.left(n, elapsed)))
	case JSON:
		_ = json.NewEncoder(v.w).Encode(struct {
			Event     string  `json:"event"`
			Time      string  `json:"time"`
			ToSend    int64   `json:"to_send"`
			Sent      int64   `json:"sent"`
			Failed    int64   `json:"failed"`
			Uncertain int64   `json:"uncertain"`
			Elapsed   float64 `json:"elapsed_seconds"`
		}{"progress", Stamp(now), v.Total, sent, failed, uncertain, elapsed.Seconds()})
	}
}

// reasons prints each reason that grew since the last look: a "retry"
// event for calls sent again, an "error" event for deliveries that failed
// or became uncertain.
func (v *watcher) reasons(now time.Time) {
	for _, r := range v.Progress.Reasons() {
		k := [2]string{r.Outcome, r.Reason}
		more := r.Count - v.seen[k]
		if more <= 0 {
			continue
		}
		v.seen[k] = r.Count
		switch v.Mode {
		case JSON:
			event := "error"
			if r.Outcome == job.OutcomeRetried {
				event = "retry"
			}
			_ = json.NewEncoder(v.w).Encode(struct {
				Event   string `json:"event"`
				Time    string `json:"time"`
				Outcome string `json:"outcome"`
				Count   int64  `json:"count"` // since the last event of this reason
				Total   int64  `json:"total"` // in the run so far
				Reason  string `json:"reason"`
			}{event, Stamp(now), r.Outcome, more, r.Count, r.Reason})
		default:
			if v.bar != nil {
				_ = v.bar.Clear()
			}
			fmt.Fprintf(v.w, "%s %s\n", Stamp(now), reasonLine(r.Outcome, more, r.Reason))
		}
	}
}

// reasonLine words n of an outcome for a reason.
func reasonLine(outcome string, n int64, reason string) string {
	if outcome == job.OutcomeRetried {
		return fmt.Sprintf("%s retried: %s", planner.Count(n, "call", "calls"), reason)
	}
	return fmt.Sprintf("%d %s: %s", n, outcome, reason)
}

// left is the time the run has left: at the rate so far, but never less
// than the plan's estimate of what is left (a first burst runs ahead of
// the pace the quotas hold the rest to).
func left(n, total int64, elapsed, estimate time.Duration) (time.Duration, bool) {
	if n >= total {
		return 0, true
	}
	byPlan := time.Duration(float64(estimate) * float64(total-n) / float64(max(total, 1)))
	if n == 0 || elapsed <= 0 {
		if elapsed < estimate {
			return estimate - elapsed, true
		}
		return 0, false // nothing done in the time the plan gave it all
	}
	byRate := time.Duration(float64(elapsed) * float64(total-n) / float64(n))
	return max(byRate, byPlan), true
}

// left words the time the run has left, n of its deliveries done after
// elapsed: the longest of its kinds' when it knows them.
func (v *watcher) left(n int64, elapsed time.Duration) string {
	most, known := left(n, v.Total, elapsed, v.Estimate)
	if len(v.Kinds) > 0 {
		most, known = 0, true
		for _, kp := range v.Kinds {
			c := v.Progress.Kind(kp.Kind)
			if c == nil || kp.Pending == 0 {
				continue
			}
			d, ok := left(c.Sent.Load()+c.Failed.Load()+c.Uncertain.Load(), kp.Pending, elapsed, kp.Estimate)
			most, known = max(most, d), known && ok
		}
	}
	if !known {
		return "unknown"
	}
	return most.Round(time.Second).String()
}

// progressLine is one line of progress: done of total, the rate so far and
// the time left.
func progressLine(n, total, sent, failed, uncertain int64, elapsed time.Duration, left string) string {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(n) / elapsed.Seconds()
	}
	return fmt.Sprintf("progress: %d/%d (%.1f%%) sent %d, failed %d, uncertain %d; %.1f/s, %s left",
		n, total, 100*float64(n)/float64(max(total, 1)), sent, failed, uncertain, rate, left)
}
