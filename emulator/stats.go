package emulator

import (
	"maps"
	"time"
)

// Stats is a snapshot of what the server has seen and done. Its JSON form is
// what GET /_emulator/stats answers.
type Stats struct {
	Requests   int                   `json:"requests"`   // every HTTP request but those to /_emulator/
	Calls      int                   `json:"calls"`      // POSTs to a message path, whatever the answer
	Accepted   int                   `json:"accepted"`   // calls admitted and charged to the quotas: all but those refused by a quota or by a fault that delivers nothing (redirect included)
	Delivered  int                   `json:"delivered"`  // deliveries recorded, one per recipient
	Duplicates int                   `json:"duplicates"` // deliveries of a message to a recipient that already had it
	RoomDrops  int                   `json:"room_drops"` // room messages beyond 20 per room per second (answered 200)
	Responses  map[int]int           `json:"responses"`  // answers by HTTP status, of every endpoint, counted as they are sent (a message call's once its latency is over or the client gave up); a reset or stalled connection sends none
	Faults     map[string]int        `json:"faults"`     // injected faults by name (latency included)
	Kinds      map[string]KindStats  `json:"kinds"`      // per message endpoint kind
	Limits     map[string]KindLimits `json:"limits"`     // the effective caps and quotas per kind, KindToken and KindUpload included

	TokenRequests    int `json:"token_requests"`    // POSTs to /token, whatever the answer
	TokensIssued     int `json:"tokens_issued"`     // tokens issued (answered 200)
	Uploads          int `json:"uploads"`           // files stored by POST /chatfiles (answered 200)
	DuplicateUploads int `json:"duplicate_uploads"` // uploads of content that an earlier upload stored already
	TrapRequests     int `json:"trap_requests"`     // requests received by the trap (see Running.TrapURL)
	Recalled         int `json:"recalled"`          // messages recalled (each message at most once)
	RecallRepeats    int `json:"recall_repeats"`    // recalls of a message already recalled (answered not_found msg)
}

// KindStats counts the calls of one endpoint kind.
type KindStats struct {
	Calls      int            `json:"calls"`
	Accepted   int            `json:"accepted"`
	Delivered  int            `json:"delivered"`
	Duplicates int            `json:"duplicates"`
	RoomDrops  int            `json:"room_drops"`
	Responses  map[int]int    `json:"responses"`
	Faults     map[string]int `json:"faults"`
	// Peaks is the most each quota's sliding window ever held, by
	// "unit/span" ("messages/1s", "calls/1m0s"): what a pacing run is
	// judged by.
	Peaks map[string]int `json:"peaks"`
	// First and Last are the arrivals of the first and the last call
	// admitted, and LastMessages the messages of that last call: the
	// span a pacing run took, for its share of the quota.
	First        time.Time `json:"first"`
	Last         time.Time `json:"last"`
	LastMessages int       `json:"last_messages"`
}

// admitted records a call of n messages admitted at now.
func (k *KindStats) admitted(ep *endpoint, now time.Time, n int) {
	for _, q := range ep.quotas {
		key := q.Unit + "/" + q.Span.String()
		k.Peaks[key] = max(k.Peaks[key], q.w.sum)
	}
	now = now.Round(0).UTC() // as the JSON form keeps it
	if k.First.IsZero() {
		k.First = now
	}
	k.Last, k.LastMessages = now, n
}

// KindLimits holds the per-call caps and the quotas of one endpoint kind.
type KindLimits struct {
	MaxTo    int     `json:"max_to"`    // IDs per call in to (legacy: 0, no cap)
	MaxUsers int     `json:"max_users"` // IDs per call in users (directed kinds; else 0)
	Quotas   []Quota `json:"quotas"`    // checked in this order; the first full one answers
}

// Quota is one sliding-window quota: at most Limit units within any Span.
type Quota struct {
	Unit   string        `json:"unit"`   // "calls" or "messages" (recipients in to, or users for directed kinds)
	Limit  int           `json:"limit"`  // default times Config.QuotaScale, rounded, at least 1
	Span   time.Duration `json:"span"`   // in JSON, nanoseconds
	Status int           `json:"status"` // the answer to a call that does not fit
}

func newKindStats() *KindStats {
	return &KindStats{Responses: map[int]int{}, Faults: map[string]int{}, Peaks: map[string]int{}}
}

func (k *KindStats) clone() KindStats {
	c := *k
	c.Responses = maps.Clone(k.Responses)
	c.Faults = maps.Clone(k.Faults)
	c.Peaks = maps.Clone(k.Peaks)
	return c
}
