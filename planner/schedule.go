package planner

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"imcast/chatapi"
)

// Quotas are the quotas in force per kind: the documented defaults, scaled
// and overridden. The two legacy kinds share one endpoint and one quota.
type Quotas map[chatapi.Kind]chatapi.Quota

// NewQuotas scales every default quota by scale (the --quota-scale of an app
// whose quotas were raised; the call and message quotas of an endpoint move
// together) and then applies overrides, each "KIND.calls=N" or
// "KIND.messages=N" with N counted over the limit's own window (a second;
// a minute for users.messages). An override of a legacy kind applies to both.
func NewQuotas(scale float64, overrides []string) (Quotas, error) {
	if !(scale > 0) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("quota scale %v: want a positive number", scale)
	}
	q := Quotas{}
	for _, k := range chatapi.Kinds {
		d := k.DefaultQuota()
		q[k] = chatapi.Quota{Calls: d.Calls.Scale(scale), Messages: d.Messages.Scale(scale)}
	}
	for _, o := range overrides {
		name, val, ok := strings.Cut(o, "=")
		kindName, limit, ok2 := strings.Cut(strings.TrimSpace(name), ".")
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if !ok || !ok2 || err != nil || n <= 0 {
			return nil, fmt.Errorf("quota override %q: want KIND.calls=N or KIND.messages=N with N > 0", o)
		}
		k, err := chatapi.ParseKind(kindName)
		if err != nil {
			return nil, fmt.Errorf("quota override %q: %w", o, err)
		}
		kinds := []chatapi.Kind{k}
		if k.Legacy() {
			kinds = []chatapi.Kind{chatapi.LegacyUsers, chatapi.LegacyGroups}
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

// load is the work of one endpoint, for its duration estimate.
type load struct {
	calls, messages int64
	busiestRoom     int64 // messages into the one room that gets the most
}

// estimate is the time l takes when every limit is paced evenly at its
// rate over its window widened by the pacing margin (what a run reaches),
// and no more than RoomMessagesPerSecond go into one room: the time from
// the first call to the last, which goes when the calls before it have
// taken their share.
func estimate(q chatapi.Quota, l load) time.Duration {
	if l.calls == 0 {
		return 0
	}
	before := float64(l.calls-1) / float64(l.calls) // of the load, what goes before the last call
	secs := 0.0
	if r := q.Calls.PacedPerSecond(); r > 0 {
		secs = max(secs, float64(l.calls-1)/r)
	}
	if r := q.Messages.PacedPerSecond(); r > 0 {
		secs = max(secs, float64(l.messages)*before/r)
	}
	room := chatapi.Limit{N: chatapi.RoomMessagesPerSecond, Window: time.Second}
	secs = max(secs, float64(max(l.busiestRoom-1, 0))/room.PacedPerSecond())
	return time.Duration(secs * float64(time.Second)).Round(time.Millisecond)
}

// PerCall is how many recipients one call of kind k takes: its cap, or
// what its message quota allows in one second where that is less (6000 a
// minute is 100 a second), so that the calls go evenly and no server that
// counts per second sees a burst. At least 1.
func (q Quotas) PerCall(k chatapi.Kind) int {
	n := k.MaxPerCall()
	if m := q[k].Messages; m.N > 0 {
		n = min(n, max(1, int(m.PerSecond())))
	}
	return n
}
