package job

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"imcast/chatapi"
)

// Counters are one kind's progress. Deliveries count recipients; Calls,
// Refused and Retries count calls.
type Counters struct {
	Sent, Failed, Uncertain atomic.Int64
	Calls, Refused, Retries atomic.Int64

	refusedMu sync.Mutex
	refusedBy map[int]int64 // Refused by HTTP status

	// the pacing of the kind's endpoint: the pace in force (a fraction of
	// the quota, as float64 bits) and the margin its windows are widened by
	pace, margin atomic.Int64
}

// refused counts a refusal answered with status.
func (c *Counters) refused(status int) {
	c.Refused.Add(1)
	c.refusedMu.Lock()
	defer c.refusedMu.Unlock()
	if c.refusedBy == nil {
		c.refusedBy = map[int]int64{}
	}
	c.refusedBy[status]++
}

// RefusedBy is Refused by the HTTP status of the refusals (0: none given).
func (c *Counters) RefusedBy() map[int]int64 {
	c.refusedMu.Lock()
	defer c.refusedMu.Unlock()
	return maps.Clone(c.refusedBy)
}

// Pacing is the pace in force on the kind's endpoint, a fraction of its
// quota, and the margin its windows are widened by.
func (c *Counters) Pacing() (pace float64, margin time.Duration) {
	return math.Float64frombits(uint64(c.pace.Load())), time.Duration(c.margin.Load())
}

func (c *Counters) setPacing(pace float64, margin time.Duration) {
	c.pace.Store(int64(math.Float64bits(pace)))
	c.margin.Store(int64(margin))
}

// Progress holds the counters of every kind of a run; read them while it
// runs.
type Progress struct {
	kinds   map[chatapi.Kind]*Counters
	reasons reasons
}

// NewProgress makes counters for kinds.
func NewProgress(kinds []chatapi.Kind) *Progress {
	p := &Progress{kinds: map[chatapi.Kind]*Counters{}}
	for _, k := range kinds {
		p.kinds[k] = &Counters{}
	}
	return p
}

// Kind returns the counters of k (nil if Run has none for it).
func (p *Progress) Kind(k chatapi.Kind) *Counters { return p.kinds[k] }

func (p *Progress) kind(k chatapi.Kind) *Counters {
	if c := p.kinds[k]; c != nil {
		return c
	}
	panic(fmt.Sprintf("job: no counters for kind %s", k))
}

// Done is the deliveries recorded so far, sent, failed or uncertain.
func (p *Progress) Done() (sent, failed, uncertain int64) {
	for _, c := range p.kinds {
		sent += c.Sent.Load()
		failed += c.Failed.Load()
		uncertain += c.Uncertain.Load()
	}
	return sent, failed, uncertain
}

// The outcomes a Reason counts.
const (
	OutcomeFailed    = "failed"    // deliveries failed for good
	OutcomeUncertain = "uncertain" // deliveries whose outcome is unknown
	OutcomeRetried   = "retried"   // calls not delivered (refused, throttled, unreachable), sent again
)

// Reason is why deliveries failed or became uncertain, or calls were
// retried: the error, and how many (deliveries, or calls for retried).
type Reason struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	Count   int64  `json:"count"`
}

// maxReasons bounds the distinct reasons a run keeps; more are "other".
const maxReasons = 64

// reasons tallies Reasons.
type reasons struct {
	mu sync.Mutex
	m  map[[2]string]int64
}

// connection matches the local and remote addresses of a network error.
var connection = regexp.MustCompile(` [^ ]+:[0-9]+->[^ ]+:[0-9]+`)

// note counts n more of outcome for reason.
func (p *Progress) note(outcome, reason string, n int64) {
	// one reason, whatever connection it came on: "read tcp
	// 127.0.0.1:49392->127.0.0.1:8765: connection reset" is "read tcp:
	// connection reset"
	reason = connection.ReplaceAllString(reason, "")
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	r := &p.reasons
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[[2]string]int64{}
	}
	k := [2]string{outcome, reason}
	if _, ok := r.m[k]; !ok && len(r.m) >= maxReasons {
		k[1] = "other"
	}
	r.m[k] += n
}

// Reasons are the reasons noted so far, the most counted first.
func (p *Progress) Reasons() []Reason {
	r := &p.reasons
	r.mu.Lock()
	out := make([]Reason, 0, len(r.m))
	for k, n := range r.m {
		out = append(out, Reason{Outcome: k[0], Reason: k[1], Count: n})
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Reason) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Outcome, b.Outcome), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}
