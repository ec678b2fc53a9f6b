package job

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"imcast/chatapi"
	"imcast/planner"
)

// The guards of a large campaign (SPEC.md, "Guards for large
// campaigns"): a canary that sends a few deliveries and stops, a breaker
// that stops a run whose deliveries fail, and a send window whose close
// stops dispatching. Each stops the run the same way a signal does:
// nothing new is dispatched, the calls in flight finish and are recorded.

// ErrStopped marks a run stopped on purpose before its end (the canary
// sent, the send window closed): running again goes on.
var ErrStopped = errors.New("stopped on purpose")

// CanaryError is the end of a canary run: of the deliveries it tried,
// Sent were sent and Bad failed or are uncertain; Left were not tried.
type CanaryError struct {
	Sent, Bad, Left int64
}

func (e *CanaryError) Error() string {
	if e.Bad > 0 {
		return fmt.Sprintf("canary: %s tried, %d sent, %d failed or uncertain, %d left: find out why before you go on (imcast report --only failed,uncertain), then run again without --canary to send the rest", planner.Count(e.Sent+e.Bad, "delivery", "deliveries"), e.Sent, e.Bad, e.Left)
	}
	return fmt.Sprintf("canary: %s sent, %d left: check what arrived, then run again without --canary to send the rest", planner.Count(e.Sent, "delivery", "deliveries"), e.Left)
}

// Unwrap makes errors.Is(err, ErrStopped) hold.
func (e *CanaryError) Unwrap() error { return ErrStopped }

// WindowClosedError stops a run at the close of its send window.
type WindowClosedError struct {
	Window planner.Window
	At     time.Time // the close
	Left   int64     // deliveries not tried
}

func (e *WindowClosedError) Error() string {
	return fmt.Sprintf("the send window %s closed at %s; %s left: run again to go on (it waits for the window to open, at %s)",
		e.Window, e.At.In(e.Window.Zone()).Format("15:04:05 MST"), planner.Count(e.Left, "delivery", "deliveries"), e.Window.NextOpen(e.At).Format("2006-01-02 15:04:05 MST"))
}

// Unwrap makes errors.Is(err, ErrStopped) hold.
func (e *WindowClosedError) Unwrap() error { return ErrStopped }

// closeLead is how long before the send window's close the last call is
// sent: a call leaving just before the close would reach the server after
// it.
const closeLead = 200 * time.Millisecond

// ErrTooManyFailures marks a run the failure breaker stopped; it comes
// wrapped in a *BreakerError.
var ErrTooManyFailures = errors.New("too many deliveries failed")

// percent writes a share as a percentage, to the tenth where a whole
// number would hide it (20.5 %, not 20 %).
func percent(f float64) string {
	p := 100 * f
	if p == math.Trunc(p) {
		return fmt.Sprintf("%.0f%%", p)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", p), "0"), ".") + "%"
}

// BreakerError says what share of the last deliveries answered failed or
// became uncertain, and the last error.
type BreakerError struct {
	Bad, Of int
	Max     float64
	Last    string
}

func (e *BreakerError) Error() string {
	return fmt.Sprintf("stopped: %d of the last %d deliveries answered failed or are uncertain (%s, more than --max-failure-rate %s); last error: %s; the calls in flight were recorded: find the cause (imcast report --only failed,uncertain), then run again",
		e.Bad, e.Of, percent(float64(e.Bad)/float64(e.Of)), percent(e.Max), e.Last)
}

// Unwrap makes errors.Is(err, ErrTooManyFailures) hold.
func (e *BreakerError) Unwrap() error { return ErrTooManyFailures }

// errCanarySpent ends a source once the canary's budget is spent.
var errCanarySpent = errors.New("canary spent")

// BreakerWindow is how many of the last answered deliveries the breaker
// judges.
const BreakerWindow = 200

// breaker keeps the outcomes of the last BreakerWindow answered
// deliveries (a refusal sent again is no outcome) and trips when more than
// max of them are bad, once it holds that many.
type breaker struct {
	max float64

	mu      sync.Mutex
	ring    [BreakerWindow]bool // true: failed or uncertain
	n, next int
	bad     int
	last    string
}

// record adds n deliveries of one outcome, and returns the error to stop
// the run with when the breaker trips.
func (b *breaker) record(n int64, bad bool, reason string) error {
	if b == nil || n <= 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if bad {
		b.last = reason
	}
	for range min(n, BreakerWindow) {
		if b.n == BreakerWindow {
			if b.ring[b.next] {
				b.bad--
			}
		} else {
			b.n++
		}
		b.ring[b.next] = bad
		if bad {
			b.bad++
		}
		b.next = (b.next + 1) % BreakerWindow
	}
	if b.n == BreakerWindow && float64(b.bad) > b.max*float64(b.n) {
		return &BreakerError{Bad: b.bad, Of: b.n, Max: b.max, Last: b.last}
	}
	return nil
}

// canary is the budget of a canary run: how many deliveries of each kind
// it may still send, given in plan order.
type canary struct {
	mu   sync.Mutex
	left map[chatapi.Kind]int64
}

// newCanary shares n deliveries among kinds in plan order: the first kind
// gets as many as it has pending, and so on.
func newCanary(n int64, kinds []planner.KindPlan) *canary {
	c := &canary{left: map[chatapi.Kind]int64{}}
	for _, k := range kinds {
		take := min(n, k.Pending)
		c.left[k.Kind] = take
		n -= take
	}
	return c
}

// take cuts b to what the budget of its kind has left, and takes that
// from it; ok is false when nothing is left.
func (c *canary) take(b planner.Batch) (planner.Batch, bool) {
	if c == nil {
		return b, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := b.Message.Kind
	n := min(int64(len(b.To)), c.left[k])
	if n == 0 {
		return b, false
	}
	c.left[k] -= n
	b.To = b.To[:n:n]
	return b, true
}

// spent reports whether no kind has budget left.
func (c *canary) spent() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.left {
		if n > 0 {
			return false
		}
	}
	return true
}
