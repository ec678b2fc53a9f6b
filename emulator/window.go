package emulator

import "time"

// window counts events over a true sliding window: an event at time t counts
// while now-t < span. It keeps one entry per distinct timestamp (with a count)
// and trims from the front, so it holds at most limit entries. Times must not
// go backwards.
type window struct {
	limit  int
	span   time.Duration
	events []event
	head   int // events[head:] are live
	sum    int // total count of events[head:]
}

type event struct {
	at time.Time
	n  int
}

func newWindow(limit int, span time.Duration) *window {
	return &window{limit: limit, span: span}
}

// trim drops the events that have left the window at now.
func (w *window) trim(now time.Time) {
	for w.head < len(w.events) && now.Sub(w.events[w.head].at) >= w.span {
		w.sum -= w.events[w.head].n
		w.events[w.head] = event{}
		w.head++
	}
	switch {
	case w.head == len(w.events):
		w.events, w.head = w.events[:0], 0
	case w.head >= 64 && 2*w.head >= len(w.events):
		n := copy(w.events, w.events[w.head:])
		w.events, w.head = w.events[:n], 0
	}
}

// used reports how much of the window is taken at now.
func (w *window) used(now time.Time) int {
	w.trim(now)
	return w.sum
}

// fits reports whether n more events fit in the window at now.
func (w *window) fits(now time.Time, n int) bool {
	return w.used(now)+n <= w.limit
}

// add records n events at now; it does not check the limit.
func (w *window) add(now time.Time, n int) {
	if n <= 0 {
		return
	}
	if k := len(w.events); k > w.head && w.events[k-1].at.Equal(now) {
		w.events[k-1].n += n
	} else {
		w.events = append(w.events, event{at: now, n: n})
	}
	w.sum += n
}
