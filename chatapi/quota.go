package chatapi

import "time"

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
