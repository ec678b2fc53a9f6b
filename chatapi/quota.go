package chatapi

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limit is one quota: at most N events in any Window.
type Limit struct {
	N      int
	Window time.Duration
}

// PerSecond is the limit's even rate.
func (l Limit) PerSecond() float64 {
	if l.N <= 0 || l.Window <= 0 {
		return 0
	}
	return float64(l.N) / l.Window.Seconds()
}

// Scale returns the limit with N multiplied by f, rounded down but at least 1.
func (l Limit) Scale(f float64) Limit {
	if l.N == 0 {
		return l
	}
	return Limit{N: max(1, int(float64(l.N)*f)), Window: l.Window}
}

// Quota is an endpoint's default quotas per app: calls, and messages (each
// recipient of a call counts as one message). Messages.N is 0 where the API
// has no message quota (the legacy API).
type Quota struct {
	Calls    Limit
	Messages Limit
}

// PaceMargin is the least time a client pacing under a Limit widens its
// window by (1 s counted over 1.01 s), for the moments between stamping a
// call and the server counting it; a run may learn a wider one. At the
// margin, a Limit is reached at N per Window+PaceMargin.
const PaceMargin = 10 * time.Millisecond

// PacedPerSecond is the limit's even rate when its window is widened by
// PaceMargin: what a run reaches, and what its estimate counts on.
func (l Limit) PacedPerSecond() float64 {
	if l.N <= 0 || l.Window <= 0 {
		return 0
	}
	return float64(l.N) / (l.Window + PaceMargin).Seconds()
}

// RoomMessagesPerSecond is how many messages one chat room takes in a second
// before the service starts dropping them silently.
const RoomMessagesPerSecond = 20

var quotas = map[Kind]Quota{
	Users:        {Calls: Limit{100, time.Second}, Messages: Limit{6000, time.Minute}},
	Groups:       {Calls: Limit{20, time.Second}, Messages: Limit{20, time.Second}},
	Rooms:        {Calls: Limit{100, time.Second}, Messages: Limit{100, time.Second}},
	GroupMembers: {Calls: Limit{100, time.Second}, Messages: Limit{100, time.Second}},
	RoomMembers:  {Calls: Limit{100, time.Second}, Messages: Limit{100, time.Second}},
	LegacyUsers:  {Calls: Limit{30, time.Second}},
	LegacyGroups: {Calls: Limit{30, time.Second}},
}

// DefaultQuota is the kind's documented default quota.
func (k Kind) DefaultQuota() Quota { return quotas[k] }

// Quotas are the quotas in force per kind: the documented defaults, scaled
// and overridden. The two legacy kinds share one endpoint and one quota.
type Quotas map[Kind]Quota

// CheckScale refuses a quota scale that is not a finite positive number.
func CheckScale(scale float64) error {
	if !(scale > 0) || math.IsInf(scale, 0) {
		return fmt.Errorf("quota scale %v: want a positive number", scale)
	}
	return nil
}

// NewQuotas scales every default quota by scale (the --quota-scale of an app
// whose quotas were raised; the call and message quotas of an endpoint move
// together) and then applies overrides, each "KIND.calls=N" or
// "KIND.messages=N" with N counted over the limit's own window (a second;
// a minute for users.messages). An override of a legacy kind applies to both.
func NewQuotas(scale float64, overrides []string) (Quotas, error) {
	if err := CheckScale(scale); err != nil {
		return nil, err
	}
	q := Quotas{}
	for _, k := range Kinds {
		d := k.DefaultQuota()
		q[k] = Quota{Calls: d.Calls.Scale(scale), Messages: d.Messages.Scale(scale)}
	}
	for _, o := range overrides {
		name, val, ok := strings.Cut(o, "=")
		kindName, limit, ok2 := strings.Cut(strings.TrimSpace(name), ".")
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if !ok || !ok2 || err != nil || n <= 0 {
			return nil, fmt.Errorf("quota override %q: want KIND.calls=N or KIND.messages=N with N > 0", o)
		}
		k, err := ParseKind(kindName)
		if err != nil {
			return nil, fmt.Errorf("quota override %q: %w", o, err)
		}
		kinds := []Kind{k}
		if k.Legacy() {
			kinds = []Kind{LegacyUsers, LegacyGroups}
		}
		for _, k := range kinds {
			qk := q[k]
			switch limit {
			case "calls":
				qk.Calls.N = n
			case "messages":
				if qk.Messages.N == 0 {
					return nil, fmt.Errorf("quota override %q: %s has no message quota", o, k)
				}
				qk.Messages.N = n
			default:
				return nil, fmt.Errorf("quota override %q: want calls or messages after the kind", o)
			}
			q[k] = qk
		}
	}
	return q, nil
}

// PerCall is how many recipients one call of kind k takes: its cap, or
// what its message quota allows in one second where that is less (6000 a
// minute is 100 a second), so that the calls go evenly and no server that
// counts per second sees a burst. At least 1.
func (q Quotas) PerCall(k Kind) int {
	n := k.MaxPerCall()
	if m := q[k].Messages; m.N > 0 {
		n = min(n, max(1, int(m.PerSecond())))
	}
	return n
}

// RecallQuota is the call quota of the recall endpoints (API.md,
// "Recall"): 100 calls a second per app, times scale as the app's other
// quotas.
func RecallQuota(scale float64) Limit {
	return Limit{N: 100, Window: time.Second}.Scale(scale)
}
