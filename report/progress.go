package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"imcast/job"
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

// Watch shows p's progress towards total on w until the returned stop is
// called; stop prints the last state and waits for the watcher to end.
func Watch(w io.Writer, mode Mode, p *job.Progress, total int64, every time.Duration) (stop func()) {
	if mode == Quiet || total == 0 {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var bar *progressbar.ProgressBar
	if mode == Bar {
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("sending"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msg"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
		every = 200 * time.Millisecond
	}
	show := func() {
		sent, failed, uncertain := p.Done()
		n := sent + failed + uncertain
		switch mode {
		case Bar:
			_ = bar.Set64(n)
		case Lines:
			fmt.Fprintln(w, progressLine(n, total, sent, failed, uncertain, time.Since(start)))
		case JSON:
			_ = json.NewEncoder(w).Encode(struct {
				Event     string  `json:"event"`
				ToSend    int64   `json:"to_send"`
				Sent      int64   `json:"sent"`
				Failed    int64   `json:"failed"`
				Uncertain int64   `json:"uncertain"`
				Elapsed   float64 `json:"elapsed_seconds"`
			}{"progress", total, sent, failed, uncertain, time.Since(start).Seconds()})
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				show()
			case <-done:
				show()
				if bar != nil {
					_ = bar.Exit()
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

// progressLine is one line of progress: done of total, the rate so far and
// the time left at that rate.
func progressLine(n, total, sent, failed, uncertain int64, elapsed time.Duration) string {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(n) / elapsed.Seconds()
	}
	eta := "unknown"
	if rate > 0 {
		eta = (time.Duration(float64(total-n)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("progress: %d/%d (%.1f%%) sent %d, failed %d, uncertain %d; %.1f/s, %s left",
		n, total, 100*float64(n)/float64(max(total, 1)), sent, failed, uncertain, rate, eta)
}
