package job

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"imcast/chatapi"
	"imcast/checkpoint"
)

// Recaller is the recall API, as *chatapi.Client speaks it.
type Recaller interface {
	RecallBatch(ctx context.Context, msgs []chatapi.Recall) (chatapi.RecallResult, error)
}

// RecallConfig says what to recall and how fast.
type RecallConfig struct {
	Campaign string
	Kinds    []chatapi.Kind // nil: every kind
	// Force recalls past the recall window (only the recipient's copy is
	// withdrawn then), and asks again for the messages a recall before
	// found too late.
	Force bool
	// Calls is the recall quota: calls per window (100 a second).
	Calls       chatapi.Limit
	Workers     int           // calls at once; 0: 8
	MaxAttempts int           // calls per message whose outcome stayed unknown, or that were refused; 0: 10
	Backoff     time.Duration // the first pause before asking again; 0: 200 ms
	// Via is the API base (host and app) the recall asks at; "" asks the
	// recaller (BaseURL()). An outcome, or a call in flight, another base
	// gave is not this one's: a message not found at a wrong host is
	// asked again at the right one.
	Via string
	// Host, Unreachable and StallTimeout stop a recall the host does not
	// answer, as they do a run (Config).
	Host                      string
	Unreachable, StallTimeout time.Duration
	// Progress, if set, is told of each call's outcome, one call at a
	// time (the workers wait while it runs, so it must be quick).
	Progress func(RecallProgress)
}

// RecallProgress counts a recall as it goes, in messages (message IDs).
type RecallProgress struct {
	Total, Recalled, NotRecalled, Calls int64
}

// RecallResult is what a recall did and where the campaign's recall
// stands, counted in deliveries (the members of a directed message share
// its one message ID) and in calls.
type RecallResult struct {
	Sent        int64            // deliveries the ledger holds as sent, of the kinds asked
	Recalled    int64            // of them, recalled (by this run or one before)
	NotRecalled int64            // not recalled, for the Reasons
	Unknown     int64            // with no outcome yet (in flight, given up on, or not asked before a stop): run again
	Reasons     map[string]int64 // deliveries not recalled, by reason
	Calls       int64            // recall calls this run made
	Messages    int64            // message IDs this run set out to recall
	// Uncertain deliveries may have arrived, and have no message ID to
	// recall them by
	Uncertain int64
	// CopiedBefore counts sent deliveries an earlier, uncertain call may
	// have delivered too (sent again with --resend-uncertain): that copy
	// has no message ID to recall it by
	CopiedBefore int64
	// Elsewhere counts the sent deliveries, not recalled yet, that went
	// through other API bases, by base: only the host that sent a message
	// can recall it, so they are not asked here
	Elsewhere map[string]int64
	Elapsed   time.Duration
}

// Complete reports whether every sent delivery is recalled, and none
// may have arrived unrecalled.
func (r *RecallResult) Complete() bool {
	return r.Recalled == r.Sent && r.Uncertain == 0 && r.CopiedBefore == 0
}

// Reasons a delivery is not recalled that the server does not give.
const (
	reasonCmd = "cmd messages cannot be recalled"
	// ReasonNoID is why a sent delivery that HasRecallID denies is not
	// recalled.
	ReasonNoID = "no message ID: the legacy API answers none, and a delivery resolved as sent or left out of its answer has none"
	// ReasonTooLate is the server's reason for a message sent longer
	// ago than the app's recall window: --force recalls it.
	ReasonTooLate = "exceed recall time limit"
)

// HasRecallID reports whether a delivery has a message ID a recall can
// name: the legacy API answers "success", not an ID, and a delivery
// resolved as sent has none.
func HasRecallID(d checkpoint.Delivery) bool {
	return d.MessageID != "" && chatapi.Kind(d.Kind).ChatType() != ""
}

// recallTarget is one message to recall: its ID, the host it was sent
// through ("" in ledgers from before that was recorded), where it went,
// and the deliveries it covers; holds says the host asked may hold the
// message (it sent it, or, for a message of an older ledger, sent some of
// the campaign). inDoubt says a recall of it may have gone out already
// here (in flight when a run died, or unanswered), so that the server's
// not_found then means recalled, if the host holds the message. doubt is
// the API base of such a recall at another host that may hold it, kept
// in the marks written here; prev is the mark before this recall, put
// back when a call of it does nothing; marked says the ledger holds it in
// flight here.
type recallTarget struct {
	id, host, to, chatType string
	deliveries             int64
	holds, inDoubt, marked bool
	doubt                  string
	prev                   checkpoint.RecallMark
}

// mark is a mark of t's message.
func (t recallTarget) mark(state checkpoint.RecallState) checkpoint.RecallMark {
	return checkpoint.RecallMark{MsgID: t.id, Host: t.host, State: state}
}

type recallBatch struct {
	msgs     []recallTarget
	attempts int
	// alone sends the messages one a call: the server refused them
	// together for a reason of a message (exceed recall time limit,
	// not_found msg), without saying which
	alone bool
}

// Recall withdraws what the campaign sent: every delivery the ledger holds
// as sent, by its message ID, at most chatapi.MaxRecallPerCall a call,
// paced under cfg.Calls. Each outcome is recorded in the ledger before the
// next call needs it, a message durably marked in flight before its call
// goes out, so a recall killed at any moment and run again recalls none
// twice and leaves none. A second recall makes no call.
func Recall(ctx context.Context, store *checkpoint.Store, rc Recaller, cfg RecallConfig) (*RecallResult, error) {
	start := time.Now()
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 200 * time.Millisecond
	}
	if h, ok := rc.(interface{ Host() string }); ok && cfg.Host == "" {
		cfg.Host = h.Host()
	}
	cfg.Via = cmp.Or(cfg.Via, baseURLOf(rc))
	cfg.Unreachable = cmp.Or(cfg.Unreachable, 10*time.Second)
	cfg.StallTimeout = cmp.Or(cfg.StallTimeout, 5*time.Minute)
	camp, err := store.Existing(cfg.Campaign)
	if err != nil {
		return nil, err
	}
	hosts, err := camp.Hosts()
	if err != nil {
		return nil, err
	}
	// a message of a ledger from before the hosts of its batches were
	// recorded, from before the campaign's were too: any host may hold it
	holds := func(via string) bool { return len(hosts) == 0 || slices.Contains(hosts, via) }
	res := &RecallResult{Reasons: map[string]int64{}, Elsewhere: map[string]int64{}}
	todo, err := recallTargets(camp, cfg, holds, res)
	if err != nil {
		return res, err
	}
	// the calls of a recall that ended (or was killed) a moment ago, of
	// any campaign, still fill the server's window, which this process's
	// pacer knows nothing of: wait it out first, as long as a call
	// written just before its mark may take to arrive too
	last, err := store.LastRecall()
	if err != nil {
		return res, err
	}
	if len(todo) > 0 && !sleepUntil(ctx, last.Add(cfg.Calls.Window+recallArrival)) {
		res.countUnknown()
		return res, ctx.Err()
	}
	rr := &recaller{cfg: cfg, camp: camp, rc: rc, res: res,
		pacer: newPacer("recall", chatapi.Quota{Calls: cfg.Calls}, DefaultPacing, nil)}
	err = rr.run(ctx, todo)
	res.countUnknown()
	res.Elapsed = time.Since(start)
	return res, err
}

// countUnknown sets Unknown: the sent deliveries asked here with no
// outcome yet.
func (r *RecallResult) countUnknown() {
	r.Unknown = r.Sent - r.Recalled - r.NotRecalled - r.SentElsewhere()
}

// SentElsewhere is how many sent deliveries Elsewhere counts in all.
func (r *RecallResult) SentElsewhere() int64 {
	var n int64
	for _, e := range r.Elsewhere {
		n += e
	}
	return n
}

// recallArrival bounds how long after its in-flight mark a recall call
// reaches the server.
const recallArrival = 200 * time.Millisecond

// recallTargets reads the campaign's sent deliveries and their recall
// marks into res, and returns the messages to recall; holds says whether
// an API base may hold the campaign's messages.
func recallTargets(camp *checkpoint.Campaign, cfg RecallConfig, holds func(string) bool, res *RecallResult) ([]recallTarget, error) {
	types := map[[32]byte]string{}
	typeOf := func(digest [32]byte) (string, error) {
		if t, ok := types[digest]; ok {
			return t, nil
		}
		raw, err := camp.Message(digest)
		if err != nil {
			return "", err
		}
		var m struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(raw, &m) // a message stored without its JSON is no cmd
		types[digest] = m.Type
		return m.Type, nil
	}
	byID := map[[2]string]*recallTarget{} // by host and message ID
	var order []*recallTarget
	var cmds []checkpoint.RecallMark
	err := camp.EachDelivery(func(d checkpoint.Delivery) error {
		kind := chatapi.Kind(d.Kind)
		if cfg.Kinds != nil && !slices.Contains(cfg.Kinds, kind) {
			return nil
		}
		if d.State == checkpoint.Uncertain {
			res.Uncertain++
		}
		if d.State != checkpoint.Sent {
			return nil
		}
		res.Sent++
		if d.CopiedBefore {
			res.CopiedBefore++
		}
		if !HasRecallID(d) {
			res.not(1, ReasonNoID)
			return nil
		}
		ct := kind.ChatType()
		switch d.Recall.State {
		case checkpoint.Recalled:
			res.Recalled++
			return nil
		case checkpoint.NotRecalled:
			// asked again: too late, with --force; or answered by another
			// host or app, which may not hold the message; an answer of
			// the host that sent it stands anywhere else
			again := cfg.Force && d.Recall.Reason == ReasonTooLate || d.Recall.Via != "" && d.Recall.Via != cfg.Via
			if d.Via != "" && d.Via != cfg.Via && (d.Recall.Via == "" || d.Recall.Via == d.Via) {
				again = false
			}
			if !again {
				res.not(1, d.Recall.Reason)
				return nil
			}
		}
		if d.Via != "" && d.Via != cfg.Via {
			res.Elsewhere[d.Via]++
			return nil
		}
		typ, err := typeOf(d.Digest)
		if err != nil {
			return err
		}
		if typ == "cmd" {
			if d.Recall.State == checkpoint.RecallNone {
				cmds = append(cmds, checkpoint.RecallMark{MsgID: d.MessageID, Host: d.Via, State: checkpoint.NotRecalled, Reason: reasonCmd})
			}
			res.not(1, reasonCmd)
			return nil
		}
		key := [2]string{d.Via, d.MessageID}
		t := byID[key]
		if t == nil {
			to := d.To
			if kind.Scoped() {
				to = d.Scope
			}
			// in doubt: asked here by a recall that stopped before the
			// answer (a mark of an older ledger names no host), or so
			// asked at a host a recall since has left for another
			p := d.Recall
			marked := p.State == checkpoint.RecallInFlight && (p.Via == "" || p.Via == cfg.Via)
			doubt := p.Doubt
			if p.State == checkpoint.RecallInFlight && !marked && holds(p.Via) {
				doubt = p.Via // the newer, at a host that may hold it
			}
			inDoubt := marked || p.Doubt == cfg.Via
			if doubt == cfg.Via {
				doubt = ""
			}
			t = &recallTarget{id: d.MessageID, host: d.Via, to: to, chatType: ct, holds: d.Via != "" || holds(cfg.Via),
				inDoubt: inDoubt, marked: marked, doubt: doubt, prev: p}
			byID[key] = t
			order = append(order, t)
		}
		t.deliveries++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(cmds) > 0 {
		if err := camp.MarkRecalls(dedupMarks(cmds)...); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	}
	out := make([]recallTarget, len(order))
	for i, t := range order {
		out[i] = *t
	}
	return out, nil
}

// dedupMarks keeps one mark per message (the members of a directed
// message share theirs).
func dedupMarks(marks []checkpoint.RecallMark) []checkpoint.RecallMark {
	seen := map[[2]string]bool{}
	return slices.DeleteFunc(marks, func(m checkpoint.RecallMark) bool {
		k := [2]string{m.Host, m.MsgID}
		dup := seen[k]
		seen[k] = true
		return dup
	})
}

// not counts n deliveries not recalled for reason.
func (r *RecallResult) not(n int64, reason string) {
	r.NotRecalled += n
	r.Reasons[reason] += n
}

// recaller is one Recall's run.
type recaller struct {
	cfg   RecallConfig
	camp  *checkpoint.Campaign
	rc    Recaller
	pacer *pacer

	health   health
	mu       sync.Mutex // guards res and progress
	res      *RecallResult
	progress RecallProgress
}

// run recalls todo, paced, with cfg.Workers calls at once, and retries
// what has no outcome yet. A signal (ctx) stops dispatching; the calls in
// flight are answered and recorded.
func (r *recaller) run(ctx context.Context, todo []recallTarget) error {
	r.res.Messages = int64(len(todo))
	r.progress.Total = int64(len(todo))
	var batches []recallBatch
	for msgs := range slices.Chunk(todo, chatapi.MaxRecallPerCall) {
		batches = append(batches, recallBatch{msgs: msgs})
	}
	if len(batches) == 0 {
		return nil
	}
	// each batch, or what is left of it to send again, is in the queue or
	// in a call: never more than there were at first
	queue := make(chan recallBatch, len(batches))
	for _, b := range batches {
		queue <- b
	}
	var live atomic.Int64
	live.Store(int64(len(batches)))
	done := make(chan struct{})
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	sendCtx, abort := context.WithCancelCause(context.WithoutCancel(ctx))
	defer abort(nil)
	watched := make(chan struct{})
	defer close(watched)
	go func() {
		// a host that does not answer stops the recall, its calls too
		if err := r.health.watch(runCtx, watched, r.cfg.Host, r.cfg.Unreachable, r.cfg.StallTimeout); err != nil {
			stop(err)
			abort(err)
		}
	}()
	sem := make(chan struct{}, r.cfg.Workers)
	var calls sync.WaitGroup
	finished := func() {
		if live.Add(-1) == 0 {
			close(done)
		}
	}
	requeue := func(b recallBatch, pause time.Duration) {
		time.AfterFunc(pause, func() { queue <- b })
	}
dispatch:
	for {
		var b recallBatch
		select {
		case <-done:
			break dispatch
		case <-runCtx.Done():
			break dispatch
		case b = <-queue:
		}
		select {
		case sem <- struct{}{}:
		case <-runCtx.Done():
			break dispatch
		}
		bk, err := r.pacer.book(time.Now(), 1, false, nil)
		if err != nil {
			<-sem
			stop(err)
			break dispatch
		}
		calls.Add(1)
		go func() {
			defer calls.Done()
			defer func() { <-sem }()
			again, pause, err := r.call(runCtx, sendCtx, b, bk)
			switch {
			case err != nil:
				stop(err)
			case again != nil:
				requeue(*again, pause)
			default:
				finished()
			}
		}()
	}
	calls.Wait()
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return ctx.Err()
}

// call makes one recall call for b at its booking, and records what came
// of it. It returns what is to be sent again (nil if nothing) after
// pause, or the error that stops the recall.
func (r *recaller) call(ctx, sendCtx context.Context, b recallBatch, bk booking) (*recallBatch, time.Duration, error) {
	wait := bk.at
	for {
		if !sleepUntil(ctx, wait) {
			r.pacer.cancel(bk)
			return nil, 0, nil
		}
		var ok bool
		var err error
		if wait, ok, err = r.pacer.send(bk, time.Now()); err != nil {
			return nil, 0, err
		}
		if ok {
			break
		}
	}
	sent := wait
	send, rest := b.msgs, []recallTarget(nil)
	if b.alone {
		send, rest = b.msgs[:1], b.msgs[1:]
	}
	var inFlight []checkpoint.RecallMark
	msgs := make([]chatapi.Recall, len(send))
	for i, t := range send {
		msgs[i] = chatapi.Recall{MsgID: t.id, To: t.to, ChatType: t.chatType, Force: r.cfg.Force}
		if !t.marked {
			m := t.mark(checkpoint.RecallInFlight)
			m.Via, m.Doubt = r.cfg.Via, t.doubt
			inFlight = append(inFlight, m)
			send[i].marked = true
		}
	}
	if len(inFlight) > 0 {
		if err := r.camp.MarkRecalls(inFlight...); err != nil {
			r.pacer.cancel(bk)
			return nil, 0, fmt.Errorf("ledger: %w", err)
		}
	}
	traced, wrote := traceWrote(sendCtx)
	r.health.sending(time.Now())
	res, err := r.rc.RecallBatch(traced, msgs)
	if sendCtx.Err() == nil {
		r.health.done(err)
	}
	r.pacer.answered(bk, sent, wrote(), time.Now(), chatapi.Refused(err), chatapi.RefusedCalls(err))
	r.count(func(p *RecallProgress) { p.Calls++ })
	b.attempts++
	if err != nil {
		return r.failed(b, len(send), err)
	}
	var marks []checkpoint.RecallMark
	var left []recallTarget
	for _, t := range send {
		reason, answered := res[t.id]
		switch {
		case !answered:
			t.inDoubt = true
			left = append(left, t)
		default:
			marks = append(marks, r.outcome(t, reason))
		}
	}
	if err := r.record(send, marks); err != nil {
		return nil, 0, err
	}
	return r.rest(b, left, rest)
}

// rest is what is left of b after a call of its messages one at a time:
// the message sent again if unanswered (after a backoff), else the next
// one at once. Without b.alone, rest is empty.
func (r *recaller) rest(b recallBatch, left, rest []recallTarget) (*recallBatch, time.Duration, error) {
	switch {
	case len(left) > 0:
		return r.again(recallBatch{msgs: append(left, rest...), attempts: b.attempts, alone: b.alone})
	case len(rest) > 0:
		return &recallBatch{msgs: rest, alone: true}, 0, nil
	}
	return nil, 0, nil
}

// failed handles a recall call of b's first sent messages that err ended.
func (r *recaller) failed(b recallBatch, sent int, err error) (*recallBatch, time.Duration, error) {
	var e *chatapi.Error
	errors.As(err, &e)
	switch {
	case chatapi.CredentialsRefused(err):
		return nil, 0, err
	case e != nil && e.Status == http.StatusForbidden && e.Code == "message_recall_error" && sent > 1:
		// a reason of a message given to the whole call: ask them one
		// at a time to learn whose (the server recalled none of them)
		return &recallBatch{msgs: b.msgs, alone: true}, 0, nil
	case e != nil && e.Status == http.StatusForbidden && e.Code == "message_recall_error":
		// the one message's outcome, given as the call's
		t := b.msgs[0]
		mark := r.outcome(t, cmp.Or(e.Description, e.Code))
		if err := r.record(b.msgs[:1], []checkpoint.RecallMark{mark}); err != nil {
			return nil, 0, err
		}
		return r.rest(b, nil, b.msgs[1:])
	case chatapi.OutcomeOf(err) == chatapi.Permanent:
		// a refusal of the whole call (the service not enabled, a wrong
		// app, a redirect), not of its messages, which answer in the
		// data: every call would get it. Nothing was recalled; the next
		// recall asks again.
		if err := r.unmark(b.msgs[:sent]); err != nil {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("recall refused: %w", err)
	case chatapi.OutcomeOf(err) == chatapi.Ambiguous:
		for i := range b.msgs[:sent] {
			b.msgs[i].inDoubt = true
		}
	default:
		// refused (429, 503), or the request never went out: the
		// server did nothing
		if err := r.unmark(b.msgs[:sent]); err != nil {
			return nil, 0, err
		}
	}
	again, pause, aerr := r.again(b)
	if e != nil && e.RetryAfter > pause && again != nil {
		pause = e.RetryAfter
	}
	return again, pause, aerr
}

// outcome is the mark of the server's answer for t: "" recalled; not
// found after a recall in doubt here, at a host that may hold the
// message, recalled by that recall; else not recalled for the reason,
// keeping what is in doubt (here too, when the host may hold it).
func (r *recaller) outcome(t recallTarget, reason string) checkpoint.RecallMark {
	if reason == "" || reason == chatapi.ReasonNotFound && t.inDoubt && t.holds {
		return t.mark(checkpoint.Recalled)
	}
	m := t.mark(checkpoint.NotRecalled)
	m.Reason, m.Via, m.Doubt = reason, r.cfg.Via, t.doubt
	if t.inDoubt && t.holds {
		m.Doubt = r.cfg.Via
	}
	return m
}

// unmark puts back the marks of msgs from before this recall's call
// wrote them in flight (those not in doubt before it) when the server did
// nothing with the call: they are as if never asked here, so no later
// answer of not found here is read as recalled, and a doubt at another
// host stays.
func (r *recaller) unmark(msgs []recallTarget) error {
	var marks []checkpoint.RecallMark
	for i, t := range msgs {
		if !t.inDoubt {
			prev := t.prev
			prev.MsgID, prev.Host = t.id, t.host
			marks = append(marks, prev)
			msgs[i].marked = false
		}
	}
	if len(marks) == 0 {
		return nil
	}
	if err := r.camp.MarkRecalls(marks...); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// again sends b once more after a backoff, or, past MaxAttempts, leaves
// its messages in flight (unknown: the next recall asks again).
func (r *recaller) again(b recallBatch) (*recallBatch, time.Duration, error) {
	if b.attempts >= r.cfg.MaxAttempts {
		return nil, 0, nil // Unknown counts them
	}
	// asking again is safe (a message recalled already answers not
	// found), so the pauses stay short
	d := min(r.cfg.Backoff<<min(b.attempts-1, 6), 5*time.Second)
	d = d/2 + rand.N(d/2+1)
	return &b, d, nil
}

// record writes the outcomes marks of some of msgs, and counts them.
func (r *recaller) record(msgs []recallTarget, marks []checkpoint.RecallMark) error {
	if len(marks) == 0 {
		return nil
	}
	if err := r.camp.MarkRecalls(marks...); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	deliveries := map[string]int64{}
	for _, t := range msgs {
		deliveries[t.id] = t.deliveries
	}
	r.count(func(p *RecallProgress) {
		for _, m := range marks {
			if m.State == checkpoint.Recalled {
				r.res.Recalled += deliveries[m.MsgID]
				p.Recalled++
			} else {
				r.res.not(deliveries[m.MsgID], m.Reason)
				p.NotRecalled++
			}
		}
	})
	return nil
}

// count updates the progress and tells cfg.Progress, both under the
// lock, so the workers never call Progress at once.
func (r *recaller) count(fn func(*RecallProgress)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(&r.progress)
	r.res.Calls = r.progress.Calls
	if r.cfg.Progress != nil {
		r.cfg.Progress(r.progress)
	}
}
