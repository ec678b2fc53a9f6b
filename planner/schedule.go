package planner

import (
	"time"

	"imcast/chatapi"
)

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
