package job

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"imcast/chatapi"
)

// simServer is a strict server in simulated time: one message quota over a
// true sliding window, each call counted at its arrival, refused calls not
// counted; other senders on the app and random refusals can be added.
type simServer struct {
	limit  int
	span   time.Duration
	events []time.Time // one per message admitted, in arrival order
	noise  float64     // share of calls refused at random, not counted
	// noiseCalls has the random refusals name the call quota (429), not
	// the message quota (403)
	noiseCalls bool
	rnd        *rand.Rand
	forCalls   bool // the last refusal named the call quota
}

// arrive admits or refuses a call of n messages at t.
func (s *simServer) arrive(t time.Time, n int) bool {
	s.forCalls = false
	if s.noise > 0 && s.rnd.Float64() < s.noise {
		s.forCalls = s.noiseCalls
		return false
	}
	i := 0
	for i < len(s.events) && t.Sub(s.events[i]) >= s.span {
		i++
	}
	s.events = s.events[i:]
	if len(s.events)+n > s.limit {
		return false
	}
	for range n {
		s.events = append(s.events, t)
	}
	return true
}

// simCall is a call of p on its way: it arrives at the server at arrive
// and is answered back after.
type simCall struct {
	b            booking
	sent, arrive time.Time
	back         time.Duration
	n            int
	refused      bool
	forCalls     bool
	answered     time.Time
}

// simulate books calls of batch messages on p back to back for d, sends
// each at its booked time to s, where it arrives after up and is answered
// back after down, and lets other take its share of the quota as an even
// sender of calls of batch messages. It returns the arrival times and
// sizes of p's admitted calls, and the times of p's refusals.
func simulate(p *pacer, s *simServer, start time.Time, d time.Duration, batch int, other float64, up, down func() time.Duration) (admitted []time.Time, sizes []int, refusals []time.Time) {
	var flying, back []simCall
	var otherNext time.Time
	if other > 0 {
		otherNext = start
	}
	// the other sender is a job like this one: calls of batch messages
	otherGap := time.Duration(float64(batch) * float64(s.span) / (other * float64(s.limit)))
	// until runs the server and the answers up to now, in time order.
	until := func(now time.Time) {
		slices.SortFunc(flying, func(a, b simCall) int { return a.arrive.Compare(b.arrive) })
		for len(flying) > 0 && !flying[0].arrive.After(now) {
			c := flying[0]
			flying = flying[1:]
			for !otherNext.IsZero() && otherNext.Before(c.arrive) {
				s.arrive(otherNext, batch)
				otherNext = otherNext.Add(otherGap)
			}
			c.refused = !s.arrive(c.arrive, c.n)
			c.forCalls = s.forCalls
			if c.refused {
				refusals = append(refusals, c.arrive)
			} else {
				admitted, sizes = append(admitted, c.arrive), append(sizes, c.n)
			}
			c.answered = c.arrive.Add(c.back)
			back = append(back, c)
		}
		slices.SortFunc(back, func(a, b simCall) int { return a.answered.Compare(b.answered) })
		for len(back) > 0 && !back[0].answered.After(now) {
			c := back[0]
			back = back[1:]
			p.answered(c.b, c.sent, c.sent, c.answered, c.refused, c.forCalls)
		}
	}
	now := start
	for now.Before(start.Add(d)) {
		b := bookLocal(p, now, batch, true, func(int) []string { return nil })
		now = b.at
		until(now)
		if _, ok := sendLocal(p, b, now); !ok {
			continue // a later booking finds the room
		}
		flying = append(flying, simCall{b: b, sent: now, arrive: now.Add(up()), back: down(), n: b.n})
	}
	return admitted, sizes, refusals
}

// shareOf is the messages admitted per second over their span, as a share
// of rate.
func shareOf(admitted []time.Time, sizes []int, from time.Time, rate float64) float64 {
	total := 0
	for i, t := range admitted {
		if !t.Before(from) && i < len(admitted)-1 {
			total += sizes[i]
		}
	}
	var first time.Time
	for _, t := range admitted {
		if !t.Before(from) {
			first = t
			break
		}
	}
	return float64(total) / admitted[len(admitted)-1].Sub(first).Seconds() / rate
}

func simPacer() (*pacer, *simServer, chatapi.Quota) {
	q := chatapi.Rooms.DefaultQuota()
	return newPacer(chatapi.Rooms, q, DefaultPacing, newRoomWindows(DefaultPacing)),
		&simServer{limit: q.Messages.N, span: q.Messages.Window, rnd: rand.New(rand.NewPCG(1, 2))}, q
}

var simStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func steady(d time.Duration) func() time.Duration { return func() time.Duration { return d } }

// TestGovernorYieldsToAnotherSender runs next to another job like this one
// taking 30 % of the quota, for 20 seeds of calls arriving 0 to 5 ms after
// they leave and answered 5 to 60 ms later: the pace settles under the
// rest, and the refusals stop within 10 s.
func TestGovernorYieldsToAnotherSender(t *testing.T) {
	var shares []float64
	for seed := range uint64(20) {
		p, s, q := simPacer()
		rnd := rand.New(rand.NewPCG(seed, 9))
		down := func() time.Duration {
			return 5*time.Millisecond + time.Duration(rnd.Int64N(int64(55*time.Millisecond)))
		}
		up := func() time.Duration { return time.Duration(rnd.Int64N(int64(5 * time.Millisecond))) }
		admitted, sizes, refusals := simulate(p, s, simStart, 40*time.Second, 10, 0.3, up, down)
		if len(refusals) == 0 {
			t.Fatalf("seed %d: no refusals: the other sender took nothing", seed)
		}
		if last := refusals[len(refusals)-1].Sub(refusals[0]); last > 10*time.Second {
			t.Errorf("seed %d: refused until %v after the first refusal (%d refusals), want within 10 s", seed, last, len(refusals))
		}
		share := shareOf(admitted, sizes, simStart, 0.7*q.Messages.PerSecond())
		if share < 0.9 {
			t.Errorf("seed %d: %.3f of the rest of the quota, want at least 0.9 (pace %.3f)", seed, share, p.gov.factor)
		}
		shares = append(shares, share)
	}
	slices.Sort(shares)
	t.Logf("%.3f of the rest at worst, %.3f at the median", shares[0], shares[len(shares)/2])
}

// TestGovernorIgnoresRandomRefusals faces a server that refuses a fifth of
// the calls at random, whatever the pace, and does not count them: the pace
// must not collapse, and the turns of refused calls are taken again. Half
// the seeds name the call quota in the refusals, half the message quota;
// half send calls of 10 messages, half of one.
func TestGovernorIgnoresRandomRefusals(t *testing.T) {
	var shares []float64
	for seed := range uint64(20) {
		p, s, q := simPacer()
		s.noise, s.noiseCalls, s.rnd = 0.2, seed%2 == 0, rand.New(rand.NewPCG(seed, 7))
		batch := 10
		if seed%4 >= 2 {
			batch = 1 // calls of one message: the call quota binds as much as the message quota
		}
		admitted, sizes, _ := simulate(p, s, simStart, 60*time.Second, batch, 0, steady(time.Millisecond), steady(20*time.Millisecond))
		share := shareOf(admitted, sizes, simStart, q.Messages.PerSecond())
		if share < 0.75 {
			t.Errorf("seed %d: %.3f of the quota with a fifth refused at random, want at least 0.75 (pace %.3f, noise %.3f)", seed, share, p.gov.factor, p.gov.noise)
		}
		shares = append(shares, share)
	}
	slices.Sort(shares)
	if median := shares[len(shares)/2]; median < 0.85 {
		t.Errorf("median of 20 seeds: %.3f of the quota, want at least 0.85", median)
	}
	t.Logf("%.3f of the quota at worst, %.3f at the median", shares[0], shares[len(shares)/2])
}

// TestGovernorWidensTheMarginForLateArrivals faces a server where calls
// arrive 0 to 60 ms after they leave: the refusals the pacer could not see
// widen its margin, and stop.
func TestGovernorWidensTheMarginForLateArrivals(t *testing.T) {
	for seed := range uint64(20) {
		p, s, q := simPacer()
		rnd := rand.New(rand.NewPCG(seed, 4))
		up := func() time.Duration { return time.Duration(rnd.Int64N(int64(60 * time.Millisecond))) }
		down := func() time.Duration {
			return 5*time.Millisecond + time.Duration(rnd.Int64N(int64(55*time.Millisecond)))
		}
		admitted, sizes, refusals := simulate(p, s, simStart, 60*time.Second, 10, 0, up, down)
		if len(refusals) == 0 {
			t.Fatalf("seed %d: no refusals: arrivals were never late enough to matter", seed)
		}
		if last := refusals[len(refusals)-1].Sub(refusals[0]); last > 10*time.Second {
			t.Errorf("seed %d: refused until %v after the first refusal (%d refusals), want within 10 s", seed, last, len(refusals))
		}
		if p.gov.factor < 1 {
			t.Errorf("seed %d: pace cut to %.3f: lateness is not another sender", seed, p.gov.factor)
		}
		if share := shareOf(admitted, sizes, simStart.Add(15*time.Second), q.Messages.PerSecond()); share < 0.85 {
			t.Errorf("seed %d: %.3f of the quota, want at least 0.85 (margin %v)", seed, share, p.gov.margin())
		}
	}
}
