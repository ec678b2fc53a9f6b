package job

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"imcast/chatapi"
	"imcast/planner"
)

// worstWindow checks a schedule of calls against a limit the way a server
// counting over a true sliding window would (an event at t counts while
// now-t < window): it returns the worst count found in any window.
func worstWindow(times []time.Time, counts []int, l chatapi.Limit) int {
	worst, sum, lo := 0, 0, 0
	for hi := range times {
		sum += counts[hi]
		for times[hi].Sub(times[lo]) >= l.Window {
			sum -= counts[lo]
			lo++
		}
		worst = max(worst, sum)
	}
	return worst
}

func TestPacerKeepsEveryWindowUnderQuotaAndCloseToIt(t *testing.T) {
	tests := []struct {
		kind  chatapi.Kind
		batch int
		calls int
		scale float64
	}{
		{kind: chatapi.Users, batch: 600, calls: 120},
		{kind: chatapi.Users, batch: 250, calls: 400},
		{kind: chatapi.Groups, batch: 3, calls: 1500},
		{kind: chatapi.Groups, batch: 3, calls: 6000, scale: 10},
		{kind: chatapi.Groups, batch: 1, calls: 1500},
		{kind: chatapi.Rooms, batch: 10, calls: 2000},
		{kind: chatapi.GroupMembers, batch: 20, calls: 2000},
		{kind: chatapi.RoomMembers, batch: 7, calls: 2000},
		{kind: chatapi.LegacyUsers, batch: 20, calls: 2000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s of %d at scale %g", tt.kind, tt.batch, max(tt.scale, 1)), func(t *testing.T) {
			q := tt.kind.DefaultQuota()
			if tt.scale > 0 {
				q = chatapi.Quota{Calls: q.Calls.Scale(tt.scale), Messages: q.Messages.Scale(tt.scale)}
			}
			// the dispatcher's order: split parts and refusals first, then
			// fresh batches of distinct recipients (and rooms)
			e := &endpoint{pacer: newPacer(tt.kind, q, DefaultPacing, newRoomWindows(DefaultPacing)), wake: make(chan struct{}, 1)}
			msg := &planner.Message{Kind: tt.kind, Scope: "the-room"}
			now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
			start := now
			var times []time.Time
			var msgs, ones []int
			id := 0
			for len(times) < tt.calls {
				it, ok, _ := e.ready(now)
				if !ok {
					to := make([]string, tt.batch)
					for i := range to {
						id++
						to[i] = fmt.Sprint("id", id)
					}
					it = item{batch: planner.Batch{Message: msg, To: to}}
				}
				size := len(it.batch.To)
				b, bk := bookEndpoint(e, now, it)
				at := bk.at
				if _, ok := sendLocal(e.pacer, bk, at); !ok {
					t.Fatalf("a call sent at its booked time %v found no room", at)
				}
				n := len(b.batch.To)
				if at.Before(now) {
					t.Fatalf("booked %v, before now %v", at, now)
				}
				if n < 1 || n > size {
					t.Fatalf("booked %d of %d", n, size)
				}
				times, msgs, ones = append(times, at), append(msgs, n), append(ones, 1)
				now = at // the dispatcher books the next call once this one is due
			}
			if got := worstWindow(times, ones, q.Calls); got > q.Calls.N {
				t.Errorf("calls: %d in one %v window, quota %d", got, q.Calls.Window, q.Calls.N)
			}
			total := 0
			for _, n := range msgs {
				total += n
			}
			elapsed := times[len(times)-1].Sub(start)
			if q.Messages.N > 0 {
				if got := worstWindow(times, msgs, q.Messages); got > q.Messages.N {
					t.Errorf("messages: %d in one %v window, quota %d", got, q.Messages.Window, q.Messages.N)
				}
				// the last call's messages are sent at its time: count the
				// rate over the span they needed
				ratio := float64(total-msgs[len(msgs)-1]) / elapsed.Seconds() / q.Messages.PerSecond()
				if ratio < 0.97 {
					t.Errorf("messages: %.3f of the quota, want at least 0.97", ratio)
				}
				// splitting to fill the window must not decay into calls
				// of one or two recipients
				avg := float64(total) / float64(len(msgs))
				if avg < 0.8*float64(tt.batch) {
					t.Errorf("%.2f recipients a call on average, batches of %d", avg, tt.batch)
				}
				t.Logf("%.4f of the message quota, %.2f recipients a call", ratio, avg)
			} else {
				ratio := float64(len(times)-1) / elapsed.Seconds() / q.Calls.PerSecond()
				if ratio < 0.97 {
					t.Errorf("calls: %.3f of the quota, want at least 0.97", ratio)
				}
			}
		})
	}
}

func TestPacerLimitsMessagesIntoOneRoom(t *testing.T) {
	q := chatapi.RoomMembers.DefaultQuota()
	p := newPacer(chatapi.RoomMembers, q, DefaultPacing, newRoomWindows(DefaultPacing))
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var times []time.Time
	var ones []int
	for range 100 {
		b := bookLocal(p, now, 20, true, func(int) []string { return []string{"the-room"} })
		at := b.at
		sendLocal(p, b, at)
		times, ones = append(times, at), append(ones, 1)
		now = at
	}
	limit := chatapi.Limit{N: chatapi.RoomMessagesPerSecond, Window: time.Second}
	if got := worstWindow(times, ones, limit); got > limit.N {
		t.Errorf("%d messages into one room within a second, limit %d", got, limit.N)
	}
}

// TestPacerStampsLateCallsWhenTheyLeave books calls ahead and lets some
// leave late, as a slow ledger write or a busy machine makes them: the
// windows count each call when it really left, so that no window of the
// server, which counts calls as they arrive, holds more than the quota.
func TestPacerStampsLateCallsWhenTheyLeave(t *testing.T) {
	q := chatapi.Groups.DefaultQuota()
	p := newPacer(chatapi.Groups, q, DefaultPacing, newRoomWindows(DefaultPacing))
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var times []time.Time
	var msgs []int
	for i := range 400 {
		b := bookLocal(p, now, 3, false, func(int) []string { return nil })
		leave := b.at
		if i%7 == 3 {
			leave = leave.Add(35 * time.Millisecond) // late
		}
		for range 100 {
			at, ok := sendLocal(p, b, leave)
			if ok {
				break
			}
			if !at.After(leave) {
				t.Fatalf("send: no room at %v, but try again at %v", leave, at)
			}
			leave = at
		}
		times, msgs = append(times, leave), append(msgs, b.n)
		now = b.at
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	if got := worstWindow(times, msgs, q.Messages); got > q.Messages.N {
		t.Errorf("messages: %d in one %v window, quota %d", got, q.Messages.Window, q.Messages.N)
	}
}

// TestPacerSendsACallBookedBeforeACut books a call of three messages, then
// the pace is cut to one message a window: the call still goes out, once
// the window has room for it.
func TestPacerSendsACallBookedBeforeACut(t *testing.T) {
	p := newPacer(chatapi.Groups, chatapi.Groups.DefaultQuota(), DefaultPacing, newRoomWindows(DefaultPacing))
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	first := bookLocal(p, now, 3, false, func(int) []string { return nil })
	if _, ok := sendLocal(p, first, first.at); !ok {
		t.Fatal("the first call found no room")
	}
	b := bookLocal(p, first.at, 3, false, func(int) []string { return nil })
	p.gov.factor = 0.05 // 1 message a second
	at := b.at
	for range 100 {
		next, ok := sendLocal(p, b, at)
		if ok {
			if at.Sub(first.at) < time.Second {
				t.Errorf("sent %v after the first call, inside its window", at.Sub(first.at))
			}
			return
		}
		at = next
	}
	t.Fatal("a call booked before the cut never found room")
}

// TestPacerSendsALateCallBeforeTheBookingsBehindIt books a call that fills
// its message window and one behind it, booked a window later, then sends
// the first a little late: it must go (the one behind waits at its turn),
// not wait for the one behind to leave, which waits for it.
func TestPacerSendsALateCallBeforeTheBookingsBehindIt(t *testing.T) {
	q := chatapi.Users.DefaultQuota()
	q.Messages.N = 500
	p := newPacer(chatapi.Users, q, DefaultPacing, newRoomWindows(DefaultPacing))
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	first := bookLocal(p, now, 500, true, func(int) []string { return nil })
	behind := bookLocal(p, now, 100, true, func(int) []string { return nil })
	if behind.at.Sub(first.at) < q.Messages.Window {
		t.Fatalf("booked %v after a full window, want a window later", behind.at.Sub(first.at))
	}
	late := first.at.Add(5 * time.Millisecond)
	if at, ok := sendLocal(p, first, late); !ok {
		t.Fatalf("the full call, 5 ms late, is held until %v", at.Sub(late))
	}
	at, ok := sendLocal(p, behind, behind.at)
	if ok || at.Sub(late) < q.Messages.Window {
		t.Errorf("the call behind may go %v after the full one, want a window later", at.Sub(late))
	}
}

// bookLocal, sendLocal and bookEndpoint are the pacer's calls for a pacer
// with no shared windows, which cannot fail.
func bookLocal(p *pacer, now time.Time, size int, split bool, rooms func(int) []string) booking {
	b, err := p.book(now, size, split, rooms)
	if err != nil {
		panic(err)
	}
	return b
}

func sendLocal(p *pacer, b booking, now time.Time) (time.Time, bool) {
	t, ok, err := p.send(b, now)
	if err != nil {
		panic(err)
	}
	return t, ok
}

func bookEndpoint(e *endpoint, now time.Time, it item) (item, booking) {
	it, b, err := e.book(now, it)
	if err != nil {
		panic(err)
	}
	return it, b
}
