package job

import (
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"imcast/chatapi"
)

// stamp is events taken from a limit at a time by booking id: a call
// booked for that time, or sent then.
type stamp struct {
	at     time.Time
	n      int
	id     uint64
	booked bool // held for a booking, not yet sent
}

// window is the log of what one limit has given out: the events of the last
// span, in time order. The span is the limit's window (base) widened by the
// margin in force; the log keeps what the widest margin would count.
type window struct {
	limit int
	base  time.Duration
	span  time.Duration
	keep  time.Duration
	log   []stamp
}

// trim forgets events that can no longer count at or after t, whatever
// the margin becomes.
func (w *window) trim(t time.Time) {
	i := 0
	for i < len(w.log) && !w.log[i].at.After(t.Add(-max(w.keep, w.span))) {
		i++
	}
	if i > 0 {
		w.log = append(w.log[:0], w.log[i:]...)
	}
}

// used is how many events count in the window ending at t: those after
// t - span, up to t.
func (w *window) used(t time.Time) int {
	cut := t.Add(-w.span)
	n := 0
	for i := len(w.log) - 1; i >= 0 && w.log[i].at.After(cut); i-- {
		if !w.log[i].at.After(t) {
			n += w.log[i].n
		}
	}
	return n
}

// last is the time of the latest event, zero if none.
func (w *window) last() time.Time {
	if len(w.log) == 0 {
		return time.Time{}
	}
	return w.log[len(w.log)-1].at
}

// insert adds s in time order.
func (w *window) insert(s stamp) {
	if s.n <= 0 {
		return
	}
	i := len(w.log)
	for i > 0 && w.log[i-1].at.After(s.at) {
		i--
	}
	w.log = slices.Insert(w.log, i, s)
}

// remove drops the events of booking id.
func (w *window) remove(id uint64) {
	w.log = slices.DeleteFunc(w.log, func(s stamp) bool { return s.id == id })
}

// holds reports whether n more events at t, of booking id, keep every
// window that counts them within limit: the one ending at t, and those
// ending at the later events already in the log (calls booked ahead).
// Bookings made after id are left out of the later windows: they were
// placed after id's booked time, and if id leaves late, it is they that
// must wait when their time comes, or a call as large as its window would
// wait for the booking behind it forever.
func (w *window) holds(t time.Time, n, limit int, id uint64) bool {
	if w.used(t)+n > limit {
		return false
	}
	end := t.Add(w.span)
	for _, s := range w.log {
		if s.at.After(t) && s.at.Before(end) && !(s.booked && s.id > id) && w.used(s.at)+n > limit {
			return false
		}
	}
	return true
}

// nextHold is the earliest time after t at which holds may turn true: when
// the next event counting at t leaves the window.
func (w *window) nextHold(t time.Time) time.Time {
	cut := t.Add(-w.span)
	for _, s := range w.log {
		if s.at.After(cut) {
			return s.at.Add(w.span + time.Nanosecond)
		}
	}
	return t.Add(time.Millisecond)
}

// fitsAt returns the earliest time at or after t when n more events fit
// under limit.
func (w *window) fitsAt(t time.Time, n, limit int) time.Time {
	used := w.used(t)
	if used+n <= limit {
		return t
	}
	cut := t.Add(-w.span)
	for _, s := range w.log {
		if !s.at.After(cut) {
			continue
		}
		if s.at.After(t) {
			break // held for later: not counted at t
		}
		used -= s.n
		if used+n <= limit {
			// s leaves the window just after s.at + span
			return s.at.Add(w.span + time.Nanosecond)
		}
	}
	return t.Add(w.span) // n alone exceeds the limit: never happens with limit >= n
}

// Pacing tunes a pacer.
type Pacing struct {
	// Margin is the least time every window is widened by (a 1 s window
	// counted over 1.01 s), so that the few milliseconds between the
	// moment a call is stamped here and the moment the server counts it
	// never put two calls inside one server window that were outside one
	// here. It is time, not a fraction: the same few milliseconds cover a
	// 1 s and a 60 s window, and the pace reached is Window/(Window+margin)
	// of the quota. The margin in force adds what the run measures (see
	// governor) and stays at most MaxMargin.
	Margin    time.Duration
	MaxMargin time.Duration
	// Lead is how far ahead of now a call is booked, to leave time for the
	// ledger write before it; the call then goes out at its booked time.
	Lead time.Duration
	// Memory is how long a pace found after refusals (another job sharing
	// the app) is kept before the pacer climbs back towards the quota.
	Memory time.Duration
	// Floor is the lowest fraction of the quota the pace drops to.
	Floor float64
}

// DefaultPacing is what Run uses when Config.Pacing is zero.
var DefaultPacing = Pacing{Margin: chatapi.PaceMargin, MaxMargin: 250 * time.Millisecond, Lead: 10 * time.Millisecond, Memory: time.Minute, Floor: 0.05}

// pacer books calls of one endpoint under its quotas: the call limit, the
// message limit, and the limit of messages into one chat room. It paces
// evenly (no burst faster than the quota's rate) and, in each window, never
// gives out more than the limit. Bookings are made in time order, so the
// logs stay sorted.
type pacer struct {
	mu       sync.Mutex
	cfg      Pacing
	calls    window
	messages window // limit 0: no message quota
	rooms    *roomWindows
	next     time.Time // earliest time of the next booking (even pacing)
	gov      governor
	// shared, if set, books every call in the app's windows in Redis as
	// well: the local windows hold this process's calls, Redis every
	// process's.
	shared *sharedPacer
	// report are the counters of the endpoint's kinds, which show its pace
	// and margin
	report []*Counters
}

// publish shows the pace and margin in force in p's counters; p.mu is
// held, or p is not yet in use.
func (p *pacer) publish() {
	for _, c := range p.report {
		if c != nil {
			c.setPacing(p.gov.factor, p.margin())
		}
	}
}

// bookingIDs numbers the stamps of every pacer: the rooms and room_members
// pacers share the room windows, where an ID must name one call.
var bookingIDs atomic.Uint64

// booking is a call booked by book and not yet stamped by send.
type booking struct {
	id    uint64
	seq   int64 // the booking's number in the shared windows, if any
	at    time.Time
	n     int      // messages
	rooms []string // chat rooms the call posts into
}

func newPacer(kind chatapi.Kind, q chatapi.Quota, cfg Pacing, rooms *roomWindows) *pacer {
	cfg.MaxMargin = max(cfg.MaxMargin, cfg.Margin)
	widen := func(l chatapi.Limit) window {
		return window{limit: l.N, base: l.Window, span: l.Window + cfg.Margin, keep: l.Window + cfg.MaxMargin}
	}
	p := &pacer{cfg: cfg, calls: widen(q.Calls)}
	if q.Messages.N > 0 {
		p.messages = widen(q.Messages)
	}
	if kind == chatapi.Rooms || kind == chatapi.RoomMembers {
		p.rooms = rooms
	}
	p.gov = newGovernor(cfg, q)
	return p
}

// seed counts call c, made before the run, in the call and message
// windows (its rooms are the room windows' to count). Seeds come
// before any booking; the logs are kept in time order.
func (p *pacer) seed(c Call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := bookingIDs.Add(1)
	p.calls.insert(stamp{at: c.At, n: 1, id: id})
	spacing := p.spacing(p.calls, 1)
	if p.messages.limit > 0 {
		p.messages.insert(stamp{at: c.At, n: c.Messages, id: id})
		spacing = max(spacing, p.spacing(p.messages, c.Messages))
	}
	p.next = later(p.next, c.At.Add(spacing))
}

// scale returns limit n under the pace in force, at least 1.
func (p *pacer) scale(n int) int {
	if f := p.gov.factor; f < 1 {
		return max(1, int(math.Floor(float64(n)*f)))
	}
	return n
}

// answered tells the pacer what came of call b it stamped at sent: when
// its request was written (zero if unknown), when its answer came, and
// whether the server refused it for quota, and for the call quota. The
// pacer learns its margin and its pace from these.
//
// A refusal for the call quota while this job uses under 4/5 of what the
// pace in force lets it (so a cut does not make it so), where
// messages are the quota that binds (users, groups, rooms), is none of this
// job's doing, and no cut of its pace would make room: it is not evidence
// for the governor, and gives its stamps and turn back as noise does.
//
// A call refused while the governor holds refusals for noise delivered
// nothing and took nothing from the quota: its messages leave the message
// and room windows, and the next call may take its turn. Where messages
// are counted, the call itself stays counted, as a server may count it;
// where only calls are (the legacy API), it leaves the call window too:
// were the server to count it, the refusals would rise above the noise,
// and the governor would cut the pace. Refusals that may be the quota's
// keep what they took: the pace is cut instead.
func (p *pacer) answered(b booking, sent, wrote, now time.Time, refused, forCalls bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	notOurs := refused && forCalls && p.messages.limit > 0 && 5*p.calls.used(now) < 4*p.scale(p.calls.limit)
	if p.gov.answered(sent, wrote, now, b.n, refused, notOurs) {
		p.setMargin(p.gov.margin())
	}
	p.publish()
	if !refused || !notOurs && !p.gov.noisy() {
		return
	}
	if p.messages.limit == 0 {
		p.calls.remove(b.id)
		p.next = later(now, p.next.Add(-p.spacing(p.calls, 1)))
		return
	}
	p.messages.remove(b.id)
	if p.rooms != nil {
		p.rooms.remove(b.rooms, b.id)
	}
	p.next = later(now, p.next.Add(-p.spacing(p.messages, b.n)))
}

// setMargin widens every window of p by m.
func (p *pacer) setMargin(m time.Duration) {
	p.calls.span = p.calls.base + m
	p.messages.span = p.messages.base + m
	if p.rooms != nil {
		p.rooms.setMargin(m)
	}
}

// book reserves a call for a batch of size recipients going to rooms (the
// rooms it posts into, for the per-room limit) and returns when it may be
// sent and how many of the recipients it may carry: fewer than asked when
// the message window has room for part of the batch only and split allows
// it. Events are held for the booking at its time, until send stamps them
// at the time the call really leaves.
func (p *pacer) book(now time.Time, size int, split bool, rooms func(n int) []string) (booking, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := now.Add(p.cfg.Lead)
	// bookings go in time order, after every event held or stamped
	t = later(later(t, p.next), later(p.calls.last(), p.messages.last()))
	n := size
	for range 64 {
		callLimit := p.scale(p.calls.limit)
		at := p.calls.fitsAt(t, 1, callLimit)
		if p.messages.limit > 0 {
			msgLimit := p.scale(p.messages.limit)
			room := msgLimit - p.messages.used(at)
			n = min(n, msgLimit)
			switch {
			case room >= n:
			case room >= 1 && split:
				// Send the part that fits now: room left unused in a
				// sliding window is lost. The caller joins the parts it
				// splits off, so that calls stay large.
				n = room
			default:
				at = later(at, p.messages.fitsAt(at, n, msgLimit))
			}
		}
		if p.rooms != nil {
			at = later(at, p.rooms.fitsAt(at, rooms(n)))
		}
		if at.Equal(t) {
			break
		}
		t = at
	}
	b := booking{id: bookingIDs.Add(1), at: t, n: n}
	p.calls.trim(t)
	p.messages.trim(t)
	p.hold(&b, rooms)
	if p.shared == nil {
		return b, nil
	}
	at, seq, n, err := p.shared.book(b, p.sharedLimits(b, split), p.margin())
	b.seq = seq
	if err != nil {
		p.release(b)
		return b, err
	}
	if at.After(b.at) || n < b.n {
		// another process holds the slot, or part of the room: hold this
		// one's later, or smaller
		p.release(b)
		b.at, b.n = at, n
		p.hold(&b, rooms)
	}
	return b, nil
}

// hold holds b's events in the windows at its time, its chat rooms those
// of its first b.n recipients, and spaces the next booking after it;
// p.mu is held.
func (p *pacer) hold(b *booking, rooms func(n int) []string) {
	p.calls.insert(stamp{at: b.at, n: 1, id: b.id, booked: true})
	spacing := p.spacing(p.calls, 1)
	if p.messages.limit > 0 {
		p.messages.insert(stamp{at: b.at, n: b.n, id: b.id, booked: true})
		spacing = max(spacing, p.spacing(p.messages, b.n))
	}
	if p.rooms != nil {
		b.rooms = slices.Clone(rooms(b.n))
		p.rooms.add(b.at, b.rooms, b.id)
	}
	p.next = b.at.Add(spacing)
}

// sharedLimits are the limits booking b takes from in the shared windows:
// calls, messages (split: the call may carry the part that fits), and
// each chat room it posts into.
func (p *pacer) sharedLimits(b booking, split bool) []sharedLimit {
	ls := []sharedLimit{{name: "calls", limit: p.scale(p.calls.limit), base: p.calls.base, amount: 1, spaced: true}}
	if p.messages.limit > 0 {
		ls = append(ls, sharedLimit{name: "messages", limit: max(b.n, p.scale(p.messages.limit)), base: p.messages.base, amount: b.n, spaced: true, split: split})
	}
	if p.rooms != nil {
		first := map[string]int{} // the room's first recipient
		counts := map[string]int{}
		for i, r := range b.rooms {
			if _, ok := first[r]; !ok {
				first[r] = i
			}
			counts[r]++
		}
		for _, r := range slices.Sorted(maps.Keys(counts)) {
			ls = append(ls, sharedLimit{name: "room:" + r, global: true, limit: chatapi.RoomMessagesPerSecond, base: time.Second, amount: counts[r], from: first[r]})
		}
	}
	return ls
}

// margin is the margin in force: what every window of p is widened by.
func (p *pacer) margin() time.Duration { return p.calls.span - p.calls.base }

// spacing is the time n events take from w at its even rate under the
// pace in force.
func (p *pacer) spacing(w window, n int) time.Duration {
	rate := float64(w.limit) * p.gov.factor / float64(w.span)
	return time.Duration(float64(n) / rate)
}

// cancel drops what booking b holds, for a call that will not be sent.
func (p *pacer) cancel(b booking) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.release(b)
	if p.shared != nil {
		// a hold left behind only delays other calls for a window
		_ = p.shared.cancel(b, p.sharedLimits(b, false))
	}
}

// release drops b's held events; p.mu is held.
func (p *pacer) release(b booking) {
	p.calls.remove(b.id)
	p.messages.remove(b.id)
	if p.rooms != nil {
		p.rooms.remove(b.rooms, b.id)
	}
}

// send stamps booking b at now, the moment its request leaves: the
// windows then count what the server counts, the call as it arrives, not
// as it was planned. A call that leaves late is checked again at its real
// time; when its windows have no room then, send returns the time to try
// again (b's hold is gone by then), and false. A call booked before the
// pace was cut may hold more messages than the cut limit: it fits once the
// window is empty of others.
func (p *pacer) send(b booking, now time.Time) (time.Time, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.release(b)
	t := now
	for range 64 {
		next := t
		if !p.calls.holds(t, 1, p.scale(p.calls.limit), b.id) {
			next = later(next, p.calls.nextHold(t))
		}
		if p.messages.limit > 0 && !p.messages.holds(t, b.n, max(b.n, p.scale(p.messages.limit)), b.id) {
			next = later(next, p.messages.nextHold(t))
		}
		if p.rooms != nil {
			next = later(next, p.rooms.fitsAt(t, b.rooms))
		}
		if next.Equal(t) {
			break
		}
		t = next
	}
	if t.After(now) {
		return t, false, nil
	}
	if p.shared != nil {
		ok, at, err := p.shared.stamp(b, p.sharedLimits(b, false), p.margin())
		if err != nil {
			return now, false, err
		}
		if !ok {
			return at, false, nil
		}
		now = at // the moment the shared windows counted it
	}
	p.calls.insert(stamp{at: now, n: 1, id: b.id})
	if p.messages.limit > 0 {
		p.messages.insert(stamp{at: now, n: b.n, id: b.id})
	}
	if p.rooms != nil {
		p.rooms.add(now, b.rooms, b.id)
	}
	return now, true, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// roomWindows enforces the service's limit of messages into one chat room
// a second (above it, rooms drop messages silently), across the rooms and
// room_members endpoints.
type roomWindows struct {
	mu    sync.Mutex
	span  time.Duration // a second and the margin in force
	keep  time.Duration // a second and the widest margin
	rooms map[string]*window
	adds  int
}

func newRoomWindows(cfg Pacing) *roomWindows {
	return &roomWindows{span: time.Second + cfg.Margin, keep: time.Second + max(cfg.MaxMargin, cfg.Margin), rooms: map[string]*window{}}
}

// setMargin widens every room's window by m.
func (r *roomWindows) setMargin(m time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.span = time.Second + m
	for _, w := range r.rooms {
		w.span = r.span
	}
}

func (r *roomWindows) fitsAt(t time.Time, rooms []string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := t
	for _, id := range rooms {
		if w := r.rooms[id]; w != nil {
			at = later(at, w.fitsAt(t, 1, chatapi.RoomMessagesPerSecond))
		}
	}
	return at
}

// remove drops booking id from rooms.
func (r *roomWindows) remove(rooms []string, id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, room := range rooms {
		if w := r.rooms[room]; w != nil {
			w.remove(id)
		}
	}
}

func (r *roomWindows) add(t time.Time, rooms []string, id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, room := range rooms {
		w := r.rooms[room]
		if w == nil {
			w = &window{limit: chatapi.RoomMessagesPerSecond, base: time.Second, span: r.span, keep: r.keep}
			r.rooms[room] = w
		}
		w.trim(t)
		w.insert(stamp{at: t, n: 1, id: id})
	}
	// Forget rooms that went quiet, so that a campaign to a million rooms
	// does not keep a million logs.
	if r.adds += len(rooms); r.adds >= 4096 {
		r.adds = 0
		for id, w := range r.rooms {
			if w.trim(t); len(w.log) == 0 {
				delete(r.rooms, id)
			}
		}
	}
}
