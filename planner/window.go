package planner

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	// the IANA zones are in the binary: --timezone works on a host
	// without a zoneinfo database
	_ "time/tzdata"
)

// Window is a daily send window, HH:MM-HH:MM (seconds may be given,
// HH:MM:SS) in a time zone: a run sends only inside it. A window whose
// end comes before its start wraps midnight (22:00-06:00). The zero
// Window is none: any time.
type Window struct {
	start, end int // seconds after midnight, local time
	zone       *time.Location
	spec       string
}

// ParseWindow reads a window spec in the named IANA zone ("" is the
// machine's).
func ParseWindow(spec, zone string) (Window, error) {
	loc := time.Local
	if zone != "" {
		var err error
		if loc, err = time.LoadLocation(zone); err != nil {
			return Window{}, fmt.Errorf("--timezone %q: not an IANA time zone name (such as Europe/Paris or Asia/Shanghai)", zone)
		}
	}
	from, to, ok := strings.Cut(spec, "-")
	if !ok {
		return Window{}, fmt.Errorf("--window %q: want HH:MM-HH:MM, such as 09:00-18:00", spec)
	}
	w := Window{zone: loc, spec: strings.TrimSpace(spec)}
	var err error
	if w.start, err = clock(from); err != nil {
		return Window{}, fmt.Errorf("--window %q: %w", spec, err)
	}
	if w.end, err = clock(to); err != nil {
		return Window{}, fmt.Errorf("--window %q: %w", spec, err)
	}
	if w.start == w.end {
		return Window{}, fmt.Errorf("--window %q: it opens and closes at the same time", spec)
	}
	return w, nil
}

// clock reads HH:MM or HH:MM:SS as seconds after midnight.
func clock(s string) (int, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("%q is not HH:MM or HH:MM:SS", s)
	}
	limits := []int{24, 60, 60}
	secs := 0
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) != 2 || n < 0 || n >= limits[i] {
			return 0, fmt.Errorf("%q is not HH:MM or HH:MM:SS (00:00 to 23:59:59)", s)
		}
		secs += n * []int{3600, 60, 1}[i]
	}
	return secs, nil
}

// IsZero reports whether w is no window.
func (w Window) IsZero() bool { return w.zone == nil }

// String is the spec and its zone: "09:00-18:00 Europe/Paris".
func (w Window) String() string { return w.spec + " " + w.zone.String() }

// Zone is the window's time zone.
func (w Window) Zone() *time.Location { return w.zone }

// Length is how long the window stays open each day.
func (w Window) Length() time.Duration {
	d := w.end - w.start
	if d < 0 {
		d += 24 * 3600
	}
	return time.Duration(d) * time.Second
}

// at is the instant of secs after midnight on the day of t, in the zone.
func (w Window) at(t time.Time, days, secs int) time.Time {
	l := t.In(w.zone)
	return time.Date(l.Year(), l.Month(), l.Day()+days, secs/3600, secs/60%60, secs%60, 0, w.zone)
}

// Open reports whether t is inside the window.
func (w Window) Open(t time.Time) bool {
	if w.IsZero() {
		return true
	}
	l := t.In(w.zone)
	s := l.Hour()*3600 + l.Minute()*60 + l.Second()
	if w.start < w.end {
		return s >= w.start && s < w.end
	}
	return s >= w.start || s < w.end
}

// NextOpen is t if the window is open at t, else when it next opens.
func (w Window) NextOpen(t time.Time) time.Time {
	if w.Open(t) {
		return t
	}
	if open := w.at(t, 0, w.start); open.After(t) {
		return open
	}
	return w.at(t, 1, w.start)
}

// CloseAfter is when the window open at t closes (t must be inside it);
// the zero time for no window.
func (w Window) CloseAfter(t time.Time) time.Time {
	if w.IsZero() {
		return time.Time{}
	}
	if end := w.at(t, 0, w.end); end.After(t) {
		return end
	}
	return w.at(t, 1, w.end)
}

// Needed is how many openings of the window a campaign that takes
// estimate needs, started at its opening.
func (w Window) Needed(estimate time.Duration) int {
	if w.IsZero() || estimate <= 0 {
		return 1
	}
	return int(math.Ceil(float64(estimate) / float64(w.Length())))
}
