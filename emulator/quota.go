package emulator

import (
	"math"
	"net/http"
	"slices"
	"time"
)

// endpoint is one message-send path and its caps and quotas.
type endpoint struct {
	kind     string
	path     string // under the base: "/messages/users"
	maxTo    int    // IDs per call in to; 0: no cap (legacy)
	maxUsers int    // IDs per call in users (directed kinds)
	directed bool   // to holds one group or room; users the members
	legacy   bool   // seed 000: target_type, target, msg
	recall   bool   // a recall endpoint: maxTo caps its msgs
	quotas   []*quota
}

// quota is a Quota and its window.
type quota struct {
	Quota
	w *window
}

// cost is what a call with n messages takes from q.
func (q *quota) cost(n int) int {
	if q.Unit == unitCalls {
		return 1
	}
	return n
}

const (
	unitCalls    = "calls"
	unitMessages = "messages"
)

// newEndpoints builds the endpoints with their quotas scaled by scale,
// the recall ones' by recallScale.
func newEndpoints(scale, recallScale float64) []*endpoint {
	q := func(unit string, def int, span time.Duration, status int) *quota {
		return newQuota(unit, def, span, status, scale)
	}
	rq := func(unit string, def int, span time.Duration, status int) *quota {
		return newQuota(unit, def, span, status, recallScale)
	}
	const (
		s        = time.Second
		tooMany  = http.StatusTooManyRequests
		reach    = http.StatusForbidden
		throttle = http.StatusServiceUnavailable
	)
	return []*endpoint{
		{kind: KindUsers, path: "/messages/users", maxTo: 600,
			quotas: []*quota{q(unitCalls, 100, s, tooMany), q(unitMessages, 6000, time.Minute, reach)}},
		{kind: KindGroups, path: "/messages/chatgroups", maxTo: 3,
			quotas: []*quota{q(unitCalls, 20, s, tooMany), q(unitMessages, 20, s, reach)}},
		{kind: KindRooms, path: "/messages/chatrooms", maxTo: 10,
			quotas: []*quota{q(unitCalls, 100, s, tooMany), q(unitMessages, 100, s, reach)}},
		{kind: KindGroupMembers, path: "/messages/chatgroups/users", maxTo: 1, maxUsers: 20, directed: true,
			quotas: []*quota{q(unitCalls, 100, s, reach), q(unitMessages, 100, s, reach)}},
		{kind: KindRoomMembers, path: "/messages/chatrooms/users", maxTo: 1, maxUsers: 20, directed: true,
			quotas: []*quota{q(unitCalls, 100, s, reach), q(unitMessages, 100, s, reach)}},
		{kind: KindLegacy, path: "/messages", legacy: true,
			quotas: []*quota{q(unitCalls, 30, s, throttle)}},
		{kind: KindRecall, path: "/messages/msg_recall", maxTo: 1, recall: true,
			quotas: []*quota{rq(unitCalls, 100, s, tooMany)}},
		{kind: KindBatchRecall, path: "/messages/batch_recall", maxTo: maxBatchRecall, recall: true,
			quotas: []*quota{rq(unitCalls, 100, s, tooMany)}},
	}
}

// newQuota returns a quota of def units per span, scaled by scale (rounded,
// at least 1), answered by status when full.
func newQuota(unit string, def int, span time.Duration, status int, scale float64) *quota {
	limit := max(1, int(math.Round(float64(def)*scale)))
	return &quota{Quota: Quota{Unit: unit, Limit: limit, Span: span, Status: status}, w: newWindow(limit, span)}
}

// admit returns the first quota that a call of n messages does not fit in
// at now, or nil if it fits in all of them. It takes nothing.
func (e *endpoint) admit(now time.Time, n int) *quota {
	for _, q := range e.quotas {
		if !q.w.fits(now, q.cost(n)) {
			return q
		}
	}
	return nil
}

// charge takes a call of n messages from every quota at now.
func (e *endpoint) charge(now time.Time, n int) {
	for _, q := range e.quotas {
		q.w.add(now, q.cost(n))
	}
}

// limits describes the endpoint's caps and quotas.
func (e *endpoint) limits() KindLimits {
	l := KindLimits{MaxTo: e.maxTo, MaxUsers: e.maxUsers}
	for _, q := range e.quotas {
		l.Quotas = append(l.Quotas, q.Quota)
	}
	return l
}

func (l KindLimits) clone() KindLimits {
	l.Quotas = slices.Clone(l.Quotas)
	return l
}
