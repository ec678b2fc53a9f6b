package job

import (
	"math"
	"slices"
	"time"

	"imcast/chatapi"
)

// A governor learns, from the calls its pacer stamped, the two things the
// pacer cannot know in advance: how much margin its windows need, and how
// much of the quota is left to this run.
//
// The margin is the least margin, plus twice the 99th percentile of the
// time a request took from its stamp to being written (a busy machine, a
// new connection), plus what refusals showed was needed.
//
// A refusal is evidence, not a verdict. The governor counts refused calls
// over epochs (the endpoint's longest window, at most 5 s, and at least
// minCalls answered calls), counting only calls stamped after its last
// move, and tries one remedy at a time, keeping it only if the calls after
// it show that it worked (a sequential test: the share refused fell to an
// eighth of what it was, against it did not fall; undecided after 3 epochs'
// worth of calls, the likelier of the two):
//
//  1. widen the margin by the spread of round-trip times: the server
//     counted calls the pacer had apart in one window;
//  2. cut the pace to what is left of the quota: another job is using
//     the app's quota (see tally.rest). When the refusals fell, surely,
//     but go on, the other job's calls get through now that this one
//     makes room: cut again from there;
//  3. neither worked: the refusals do not depend on the pace (a server
//     refusing a share of calls at random). Undo the cut and take that
//     share as noise, acted on only when refusals rise well above it.
//
// A kept cut holds for Memory, on probation: if the calls since show the
// share refused did not fall after all, it is undone as in 3. It does not
// probe upwards meanwhile, since each probe is a refusal for both jobs;
// after Memory without a refusal, the pace climbs back towards the quota
// by a twentieth an epoch.
type governor struct {
	cfg      Pacing
	quota    chatapi.Quota
	epochLen time.Duration

	late, rtt samples
	learned   time.Duration // margin from lateness
	widened   time.Duration // margin added after refusals it cured
	factor    float64       // pace in force, a fraction of the quota
	noise     float64       // share of calls refused whatever the pace

	epoch  tally     // calls stamped since the epoch began
	since  time.Time // when the epoch began
	recent outcomes  // the last calls answered, refused or not

	trial       remedy  // the remedy on trial, none if no trial
	test        tally   // calls since the trial began
	llr         float64 // log-likelihood ratio: it worked, against it did not
	before      float64 // share refused before the remedy on trial
	beforeTally tally   // the calls that share is of
	undoFactor  float64 // factor before the cut on trial or on probation
	undoWiden   time.Duration
	triedWiden  bool // the widening was tried since the last quiet epoch

	probation tally     // calls since the last kept cut, while on probation
	cutAt     time.Time // when the pace was last cut
	cutBefore float64   // share refused before that cut
}

// tally counts answered calls and, of them, refused ones, and the calls
// and messages the server took, stamped from first to last.
type tally struct {
	calls, refused int
	took, tookMsgs int
	refusedMsgs    int
	first, last    time.Time
}

func (t *tally) add(sent time.Time, n int, refused bool) {
	t.calls++
	if refused {
		t.refused++
		t.refusedMsgs += n
	} else {
		t.took++
		t.tookMsgs += n
	}
	if t.first.IsZero() || sent.Before(t.first) {
		t.first = sent
	}
	t.last = later(t.last, sent)
}

// pace is the share of q the server took, or ok false when the tally is
// too short to say.
func (t tally) pace(q chatapi.Quota) (float64, bool) {
	secs := t.last.Sub(t.first).Seconds()
	if t.calls < minTest || secs <= 0 {
		return 0, false
	}
	f := float64(t.took) / secs / q.Calls.PerSecond()
	if r := q.Messages.PerSecond(); r > 0 {
		f = max(f, float64(t.tookMsgs)/secs/r)
	}
	return f, true
}

// rest is the share of q left to this job by another on the same app,
// judged from the calls of t, made at pace f of which a share r was
// refused, while the server was full: what this job and the other took
// add up to the quota. The other job was refused too, as often as this
// one, so it asks for what it took over 1-r; the rest is what it does not
// ask for. This is the least the rest may be: what the server took of this
// job is the most, were the other never refused. The governor takes the
// least, because above the rest it may crowd the other job out and see
// few refusals of its own, for a long time, while the other sees many;
// but never under what this job took less half the share refused.
// Too few calls to measure a pace: f(1-r).
func (t tally) rest(q chatapi.Quota, f, r float64) float64 {
	took, ok := t.pace(q)
	if !ok {
		return f * (1 - r)
	}
	if q.Messages.N > 0 && t.tookMsgs+t.refusedMsgs > 0 {
		r = float64(t.refusedMsgs) / float64(t.tookMsgs+t.refusedMsgs)
	}
	took = min(1, took)
	least := 0.0
	if r < 1 {
		least = max(0, 1-(1-took)/(1-r))
	}
	// When the refusals are many, the other job was surely not refused as
	// often as this one (least goes to 0 as r nears a half): no less than
	// what this job took, less half the share refused.
	return max(least, took*(1-r/2))
}

// share is the share refused, counting at least n calls.
func (t tally) share(n int) float64 { return float64(t.refused) / float64(max(t.calls, n, 1)) }

type remedy int

const (
	none remedy = iota
	widen
	cut
)

const (
	minCalls = 20   // calls an epoch needs before its share is judged
	minTest  = 20   // calls a trial needs before it is decided, and a pace is measured over
	yield    = 0.05 // how far under the rest of the quota a cut goes: room for the other job's bursts
	climb    = 0.05 // how much of the quota a quiet epoch gives back
	decisive = 2.94 // |llr| that decides a trial: odds of 19 to 1
)

func newGovernor(cfg Pacing, q chatapi.Quota) governor {
	longest := max(q.Calls.Window, q.Messages.Window)
	return governor{cfg: cfg, quota: q, epochLen: min(longest, 5*time.Second) + cfg.MaxMargin, factor: 1,
		late: samples{size: 128}, rtt: samples{size: 128}}
}

// margin is the margin in force.
func (g *governor) margin() time.Duration {
	return min(g.cfg.MaxMargin, g.cfg.Margin+g.learned+g.widened)
}

// answered takes the outcome of a call of n messages stamped at sent, and
// reports whether the margin changed. A call that is no evidence about the
// pace tells only its times.
func (g *governor) answered(sent, wrote, now time.Time, n int, refused, noEvidence bool) bool {
	before := g.margin()
	if !wrote.IsZero() && !wrote.Before(sent) {
		g.late.add(wrote.Sub(sent))
		if g.late.n%16 == 0 {
			g.learned = 2 * g.late.quantile(0.99)
		}
	}
	g.rtt.add(now.Sub(sent))
	if g.since.IsZero() {
		g.since = sent
	}
	if sent.Before(g.since) || noEvidence {
		// sent before the last move: no evidence about it
		return g.margin() != before
	}
	g.recent.add(refused)
	g.epoch.add(sent, n, refused)
	if !g.cutAt.IsZero() {
		g.probation.add(sent, n, refused)
	}
	if g.trial != none {
		g.weigh(now, sent, n, refused)
	} else if refused && !g.triedWiden && g.epoch.share(minCalls) > g.threshold(max(g.epoch.calls, minCalls)) {
		// refusals out of a quiet state: widen at once
		g.act(now, g.epoch.share(minCalls), g.epoch)
	}
	if g.trial == none && now.Sub(g.since) >= g.epochLen && g.epoch.calls >= minCalls {
		g.judge(now)
	}
	return g.margin() != before
}

// noisy reports whether refusals are taken for noise now: noise was
// found, and no remedy is on trial or probation.
func (g *governor) noisy() bool { return g.noise > 0 && g.trial == none && g.cutAt.IsZero() }

// threshold is the share refused of n calls that calls for a remedy: well
// above the noise, by three standard deviations of a share of n calls.
func (g *governor) threshold(n int) float64 {
	return g.noise + 3*math.Sqrt(g.noise*(1-g.noise)/float64(n)) + 0.02
}

// weigh adds a call to the trial of a remedy and decides it once the
// evidence is strong enough.
func (g *governor) weigh(now, sent time.Time, n int, refused bool) {
	g.test.add(sent, n, refused)
	// it did not work: refusals go on as before; it worked: they fell to
	// an eighth, or to the noise
	p0 := min(0.99, max(g.before, 0.01))
	p1 := min(max(p0/8, g.noise), p0/2)
	if refused {
		g.llr += math.Log(p1 / p0)
	} else {
		g.llr += math.Log((1 - p1) / (1 - p0))
	}
	long := g.test.calls >= 3*minCalls
	switch {
	case g.test.calls < minTest && (g.trial == widen || g.test.calls < minTest/2):
		// a cut is judged on fewer calls; a widening's calls also tell
		// the pace the server took, if it comes to a cut
	case g.llr >= decisive || (long && g.llr > 0):
		if g.trial == cut {
			g.probation, g.cutBefore = tally{}, g.before
		}
		g.trial = none
		g.restart(now)
	case g.llr <= -decisive || long:
		r := g.test.share(0)
		switch g.trial {
		case widen:
			g.widened = g.undoWiden
			g.trial = none
			g.act(now, r, g.test)
		case cut:
			g.trial = none
			if fell(g.beforeTally, g.test) {
				// fewer refusals, not few enough: the other job's
				// calls now get through; cut again from here
				g.act(now, r, g.test)
				return
			}
			g.factor, g.noise = g.undoFactor, g.recent.share()
			g.cutAt = time.Time{}
			g.restart(now)
		}
	}
}

// judge closes an epoch with no trial: it acts if refusals go on, and
// otherwise lets the pace climb back.
func (g *governor) judge(now time.Time) {
	undo := g.cutBefore / 2
	if g.noise > 0 {
		// a cut cures quota refusals only: with noise about, refusals
		// going on near its level leave the cut unproven
		undo = min(undo, g.noise/2)
	}
	if !g.cutAt.IsZero() && g.probation.calls >= minCalls && g.probation.share(0) > undo {
		// the cut did not stop the refusals after all
		g.factor, g.noise, g.cutAt = g.undoFactor, g.recent.share(), time.Time{}
		g.restart(now)
		return
	}
	if r := g.epoch.share(0); r > g.threshold(g.epoch.calls) {
		g.act(now, r, g.epoch)
		return
	}
	g.triedWiden = false
	if g.noise > 0 && g.cutAt.IsZero() {
		g.noise = g.recent.share() // the noise, known better with every call
	}
	if !g.cutAt.IsZero() && now.Sub(g.cutAt) >= g.cfg.Memory {
		g.cutAt = time.Time{} // off probation
	}
	if g.cutAt.IsZero() {
		g.factor = min(1, g.factor+climb)
	}
	g.restart(now)
}

// act tries the next remedy for a share r of calls refused, over the
// calls of t.
func (g *governor) act(now time.Time, r float64, t tally) {
	g.before, g.beforeTally, g.test, g.llr = r, t, tally{}, 0
	if !g.triedWiden && g.margin() < g.cfg.MaxMargin && g.cutAt.IsZero() {
		// (with a cut in force, another job is about: refusals are
		// its, and a cut answers them)
		g.triedWiden = true
		g.trial, g.undoWiden = widen, g.widened
		step := max(10*time.Millisecond, g.rtt.quantile(0.95)-g.rtt.quantile(0.05))
		g.widened = min(g.cfg.MaxMargin, g.widened+step)
	} else {
		if g.cutAt.IsZero() {
			g.undoFactor = g.factor // a cut on a kept cut undoes to before both
		}
		g.trial = cut
		if g.cutAt.IsZero() {
			g.factor = max(g.cfg.Floor, min(g.factor, t.rest(g.quota, g.factor, r))*(1-yield))
		} else {
			// refusals on a kept cut, few and late: the server is not
			// full, and the rest is a step below the pace
			g.factor = max(g.cfg.Floor, g.factor*(1-max(r, yield)))
		}
		g.cutAt = now
	}
	g.restart(now)
}

// fell reports whether the share refused of b is surely (by a z-test of
// two shares at 2.5 standard deviations) above that of a, which followed.
func fell(b, a tally) bool {
	if b.calls == 0 || a.calls == 0 {
		return false
	}
	pb, pa := b.share(0), a.share(0)
	p := float64(b.refused+a.refused) / float64(b.calls+a.calls)
	sd := math.Sqrt(p * (1 - p) * (1/float64(b.calls) + 1/float64(a.calls)))
	return sd > 0 && (pb-pa)/sd > 2.5
}

func (g *governor) restart(now time.Time) {
	g.since, g.epoch = now, tally{}
}

// outcomes keeps whether each of the last 128 calls was refused.
type outcomes struct {
	n    int
	ring [128]bool
}

func (o *outcomes) add(refused bool) {
	o.ring[o.n%len(o.ring)] = refused
	o.n++
}

// share is the share of the kept calls refused.
func (o *outcomes) share() float64 {
	k := min(o.n, len(o.ring))
	refused := 0
	for _, r := range o.ring[:k] {
		if r {
			refused++
		}
	}
	return float64(refused) / float64(max(k, 1))
}

// samples keeps the last size durations.
type samples struct {
	size int
	n    int
	ring []time.Duration
}

func (s *samples) add(d time.Duration) {
	if len(s.ring) < s.size {
		s.ring = append(s.ring, d)
	} else {
		s.ring[s.n%s.size] = d
	}
	s.n++
}

// quantile is the q-quantile of the samples, 0 if there are none.
func (s *samples) quantile(q float64) time.Duration {
	if len(s.ring) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(s.ring))
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}
