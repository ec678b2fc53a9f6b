package job

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/planner"
)

// Sender makes one call for a batch.
type Sender interface {
	Send(ctx context.Context, b chatapi.Batch) (chatapi.Result, error)
}

// Ledger records each batch durably before and after its call, in the
// campaign the record names. Finish writes r's outcome and, in the same
// transaction, parts: shares of r's recipients that had another outcome.
type Ledger interface {
	Begin(r *checkpoint.Record) error
	Finish(r *checkpoint.Record, parts ...*checkpoint.Record) error
}

// Source emits the batches still to send of some kinds, in order. Run calls
// it once per endpoint, concurrently, so that a slow kind never holds up a
// fast one.
type Source func(ctx context.Context, kinds []chatapi.Kind, emit func(planner.Batch) error) error

// Preparer turns a planned message into the message sent, e.g. by
// uploading its file and filling the body's url and secret. It is called
// once per message.
type Preparer func(ctx context.Context, m *planner.Message) (chatapi.Message, error)

// Config says how to run.
type Config struct {
	Workers     int // calls at once; 0: 8
	Quotas      chatapi.Quotas
	Kinds       []chatapi.Kind // the kinds with work; every endpoint among them gets a queue
	Pacing      Pacing         // zero: DefaultPacing
	MaxAttempts int            // calls per batch refused without delivery before it is recorded failed; 0: 10
	Backoff     time.Duration  // first pause after a refusal; 0: 500 ms
	MaxBackoff  time.Duration  // 0: 30 s
	DedupExt    bool           // add ext.imcast_dedup, stable per message
	Prepare     Preparer       // nil: messages with a file fail the run with ErrNoUploader
	Progress    *Progress      // counters updated as the run goes; nil: Run makes its own
	// Campaign is the ledger campaign of messages whose rows name none;
	// with Named, of every message (the user gave it).
	Campaign string
	Named    bool
	// Host names the API host in errors; "" asks the sender (Host()).
	Host string
	// Unreachable is how long a run that has had no answer at all goes on
	// failing to reach the host before it stops; 0: 10 s.
	Unreachable time.Duration
	// StallTimeout is how long a run that has had answers goes on with none
	// before it stops; 0: 5 min.
	StallTimeout time.Duration
	// Recent are calls made just before the run (by a run that stopped a
	// moment ago): the windows start with them.
	Recent []Call
	// Shared, if set, keeps the app's windows in Redis, where every
	// process pacing against the app books from them.
	Shared *SharedQuota

	// MaxFailureRate, if above 0, is the failure breaker: when more than
	// this share of the last BreakerWindow answered deliveries failed or
	// became uncertain, the run stops with a *BreakerError.
	MaxFailureRate float64
	// Until, if set, is the close of the send window (Window): nothing is
	// sent at or after it, and the run stops with a *WindowClosedError.
	Until  time.Time
	Window planner.Window
	// canary, if set, is the budget of a canary run (CampaignConfig.Canary).
	canary *canary
}

// Call is a call made at a time, of some messages, into some chat rooms.
type Call struct {
	Kind     chatapi.Kind
	Messages int
	Rooms    []string // with Rooms and RoomMembers
	At       time.Time
}

// recentSpan is how far back calls still count: the longest window of any
// quota and the widest margin.
const recentSpan = time.Minute + time.Second

// campaignOf is the ledger campaign of m's deliveries.
func (c *Config) campaignOf(m *planner.Message) string {
	if m.Campaign == "" || c.Named {
		return c.Campaign
	}
	return m.Campaign
}

// DedupKey is the ext key --dedup-ext adds. Its value is the same for every
// send of a message, so a client app that sees it twice can drop the copy.
const DedupKey = "imcast_dedup"

// endpoint is one API path: its queue, its pacer and its retries.
type endpoint struct {
	kinds  []chatapi.Kind
	pacer  *pacer
	quotas chatapi.Quotas // for the recipients a call takes

	mu          sync.Mutex
	retries     []item // refused batches and split parts, waiting for their time
	carried     *item  // split parts of one message, joining up to a call (see carry)
	outstanding int    // calls running for this endpoint
	wake        chan struct{}
}

// item is a batch waiting to be sent.
type item struct {
	batch     planner.Batch
	attempts  int
	notBefore time.Time
}

func (e *endpoint) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *endpoint) requeue(it item) {
	e.mu.Lock()
	e.retries = append(e.retries, it)
	e.mu.Unlock()
	e.signal()
}

// ready pops a retry whose time has come; otherwise it returns the time the
// next one is due (zero if none).
func (e *endpoint) ready(now time.Time) (item, bool, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var due time.Time
	for i, it := range e.retries {
		if !it.notBefore.After(now) {
			e.retries = append(e.retries[:i], e.retries[i+1:]...)
			return it, true, time.Time{}
		}
		if due.IsZero() || it.notBefore.Before(due) {
			due = it.notBefore
		}
	}
	return item{}, false, due
}

func (e *endpoint) idle() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.outstanding == 0 && len(e.retries) == 0 && e.carried == nil
}

// runner is one Run.
type runner struct {
	cfg      Config
	sender   Sender
	ledger   Ledger
	progress *Progress
	sem      chan struct{}
	via      string // the sender's API base, recorded with each batch, if it has one

	prepMu   sync.Mutex
	prepared map[[32]byte]*preparedMsg
	stored   sync.Map // campaign and digest (storedKey) of each message the ledger was given
	health   health
	breaker  *breaker                // nil: no breaker
	halt     context.CancelCauseFunc // stops dispatching, with the guard's error
}

// storedKey names a message stored in one campaign of the ledger.
type storedKey struct {
	campaign string
	digest   [32]byte
}

type preparedMsg struct {
	once sync.Once
	msg  chatapi.Message
	err  error
}

// Run sends every batch src emits, paced under cfg.Quotas, recording each in
// the ledger, and returns when all are recorded. When ctx is cancelled it
// stops dispatching, lets the calls in flight finish and be recorded, and
// returns ctx's error. A ledger write that fails, or a token the server
// refuses, stops the run with that error.
func Run(ctx context.Context, cfg Config, src Source, sender Sender, ledger Ledger) (*Progress, error) {
	cfg.withDefaults()
	if h, ok := sender.(interface{ Host() string }); ok && cfg.Host == "" {
		cfg.Host = h.Host()
	}
	r := &runner{cfg: cfg, sender: sender, ledger: ledger, progress: cfg.Progress, via: baseURLOf(sender),
		sem: make(chan struct{}, cfg.Workers), prepared: map[[32]byte]*preparedMsg{}}

	order := endpoints(cfg)
	// The watchdog stops the run, and cuts short the calls in flight, when
	// the host gives no answer; a signal (ctx) stops dispatching only and
	// lets the calls in flight finish.
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	r.halt = stop
	if cfg.MaxFailureRate > 0 {
		r.breaker = &breaker{max: cfg.MaxFailureRate}
	}
	if !cfg.Until.IsZero() {
		closing := time.AfterFunc(time.Until(cfg.Until.Add(-closeLead)), func() { stop(&WindowClosedError{Window: cfg.Window, At: cfg.Until}) })
		defer closing.Stop()
	}
	sendCtx, abort := context.WithCancelCause(context.WithoutCancel(ctx))
	defer abort(nil)
	watched := make(chan struct{})
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		if err := r.watch(runCtx, watched); err != nil {
			stop(err)
			abort(err)
		}
	}()
	g, gctx := errgroup.WithContext(runCtx)
	for _, e := range order {
		queue := make(chan planner.Batch, cfg.Workers)
		g.Go(func() error {
			defer close(queue)
			err := src(gctx, e.kinds, func(b planner.Batch) error {
				b, ok := cfg.canary.take(b)
				switch {
				case !ok && cfg.canary.spent():
					return errCanarySpent
				case !ok:
					return nil
				}
				select {
				case queue <- b:
					return nil
				case <-gctx.Done():
					return gctx.Err()
				}
			})
			if errors.Is(err, context.Canceled) && gctx.Err() != nil {
				return nil // stopping: the dispatcher says why
			}
			if errors.Is(err, errCanarySpent) {
				return nil // the rest is for the next run
			}
			return err
		})
		g.Go(func() error { return r.dispatch(gctx, sendCtx, g, e, queue) })
	}
	err := g.Wait()
	close(watched)
	<-watching
	if cause := context.Cause(runCtx); err == nil && (errors.Is(cause, ErrUnreachable) || errors.Is(cause, ErrStopped) || errors.Is(cause, ErrTooManyFailures)) {
		err = cause
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return r.progress, err
}

// withDefaults fills what cfg leaves unset.
func (cfg *Config) withDefaults() {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Pacing == (Pacing{}) {
		cfg.Pacing = DefaultPacing
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Progress == nil {
		cfg.Progress = NewProgress(cfg.Kinds)
	}
	if cfg.Unreachable <= 0 {
		cfg.Unreachable = 10 * time.Second
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 5 * time.Minute
	}
}

// endpoints gives each endpoint of cfg's kinds its pacer, the room
// windows shared among them, all seeded with the calls just made.
func endpoints(cfg Config) []*endpoint {
	rooms := newRoomWindows(cfg.Pacing)
	byPath := map[string]*endpoint{}
	var order []*endpoint
	for _, k := range cfg.Kinds {
		e := byPath[k.Path()]
		if e == nil {
			e = &endpoint{pacer: newPacer(k, cfg.Quotas[k], cfg.Pacing, rooms), quotas: cfg.Quotas, wake: make(chan struct{}, 1)}
			if cfg.Shared != nil {
				e.pacer.shared = &sharedPacer{w: cfg.Shared.w, endpoint: k.Path()}
			}
			byPath[k.Path()] = e
			order = append(order, e)
		}
		e.kinds = append(e.kinds, k)
		if cfg.Progress != nil {
			e.pacer.report = append(e.pacer.report, cfg.Progress.Kind(k))
		}
	}
	for _, e := range order {
		e.pacer.publish()
	}
	// In time order, each seed lands at the end of its logs.
	slices.SortStableFunc(cfg.Recent, func(a, b Call) int { return a.At.Compare(b.At) })
	for _, c := range cfg.Recent {
		if e := byPath[c.Kind.Path()]; e != nil {
			e.pacer.seed(c)
		}
		// Every run shares the room windows, whatever its kinds.
		rooms.add(c.At, c.Rooms, bookingIDs.Add(1))
	}
	return order
}

// health tracks whether the host answers, and whether its answers take
// any call: a refusal (429, 403 quota, 503) shows the host is there, but
// a run whose every call is refused makes no progress, and stops after
// the stall timeout as one the host does not answer.
type health struct {
	mu       sync.Mutex
	answered bool      // some call of the run was answered, a refusal included
	waiting  time.Time // since when calls have gone untaken; zero: none started since the last taken
	last     error     // the last failure since the last call taken
	refused  bool      // some call since then was answered with a refusal
}

// sending notes a call going out.
func (h *health) sending(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiting.IsZero() {
		h.waiting = now
	}
}

// done notes what came of a call: any HTTP answer shows the host is
// there; any but a refusal is progress.
func (h *health) done(err error) {
	var e *chatapi.Error
	answered := err == nil || (errors.As(err, &e) && e.Status != 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case answered && chatapi.Refused(err):
		h.answered, h.last = true, err
		h.refused = true
	case answered:
		h.answered, h.waiting, h.last, h.refused = true, time.Time{}, nil, false
	default:
		h.last = err
	}
}

// watch is health.watch with the run's host and limits.
func (r *runner) watch(ctx context.Context, done <-chan struct{}) error {
	return r.health.watch(ctx, done, r.cfg.Host, r.cfg.Unreachable, r.cfg.StallTimeout)
}

// watch returns an *UnreachableError naming host once calls have gone
// unanswered (or only refused) for unreachable, when no call was
// answered yet, or stall after; or nil when ctx ends or done is closed.
func (h *health) watch(ctx context.Context, done <-chan struct{}, host string, unreachable, stall time.Duration) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case now := <-tick.C:
			h.mu.Lock()
			limit := unreachable
			if h.answered {
				limit = stall
			}
			var err error
			if !h.waiting.IsZero() && now.Sub(h.waiting) >= limit {
				err = &UnreachableError{Host: host, For: now.Sub(h.waiting), Answered: h.answered, Refused: h.refused, Last: h.last}
			}
			h.mu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

// dispatch feeds one endpoint's batches to the workers: retries whose time
// has come first, then the queue. It returns when both are empty and no
// call of the endpoint is running, or when ctx is cancelled.
//
// Calls are sent with sendCtx, which a signal does not cancel: a call that
// went out is let finish and be recorded.
func (r *runner) dispatch(ctx, sendCtx context.Context, g *errgroup.Group, e *endpoint, queue <-chan planner.Batch) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		it, ok := e.next(ctx, &queue, timer)
		if !ok {
			return nil
		}
		// Uploads and the like happen before booking, so that they never
		// make a call late for its time.
		if _, err := r.prepare(ctx, it.batch.Message); err != nil {
			return err
		}
		if ok, err := r.launch(ctx, sendCtx, g, e, it); !ok {
			return err
		}
	}
}

// next waits for the endpoint's next batch: a retry or a carried part
// whose time has come, or a new batch from queue (nil once it is closed).
// It reports false when ctx ends, or when nothing is left to send.
func (e *endpoint) next(ctx context.Context, queue *<-chan planner.Batch, timer *time.Timer) (item, bool) {
	for ctx.Err() == nil {
		it, ok, due := e.ready(time.Now())
		if !ok && *queue == nil {
			// no more batches to join the carried parts
			e.flushCarry()
			it, ok, due = e.ready(time.Now())
		}
		if ok {
			return it, true
		}
		if *queue == nil && e.idle() {
			return item{}, false
		}
		wait := time.Hour
		if !due.IsZero() {
			wait = max(time.Until(due), 0)
		}
		timer.Reset(wait)
		select {
		case b, open := <-*queue:
			if open {
				return item{batch: b}, true
			}
			*queue = nil
		case <-e.wake:
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	return item{}, false
}

// launch books the call of it once a worker is free, sleeps here until
// just before its time, and starts it: a batch is marked in flight for no
// longer than the ledger write takes, and a slot is held asleep by at most
// one booking per endpoint. It reports false if ctx ended first, or the
// booking failed (the error: the shared quota's store is away).
func (r *runner) launch(ctx, sendCtx context.Context, g *errgroup.Group, e *endpoint, it item) (bool, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return false, nil
	}
	b, bk, err := e.book(time.Now(), it)
	if err != nil {
		<-r.sem
		return false, err
	}
	if !r.cfg.Until.IsZero() && !bk.at.Before(r.cfg.Until.Add(-closeLead)) {
		// its time is past the window's close: the next run sends it.
		// The endpoint dispatches no more; the calls booked before go
		// out at their times, and the close (the timer Run set) stops
		// the run.
		e.pacer.cancel(bk)
		<-r.sem
		<-ctx.Done()
		return false, nil
	}
	if !sleepUntil(ctx, bk.at.Add(-r.cfg.Pacing.Lead)) {
		e.pacer.cancel(bk)
		<-r.sem
		return false, nil
	}
	e.mu.Lock()
	e.outstanding++
	e.mu.Unlock()
	g.Go(func() error {
		defer func() {
			<-r.sem
			e.mu.Lock()
			e.outstanding--
			e.mu.Unlock()
			e.signal()
		}()
		return r.call(ctx, sendCtx, e, b, bk)
	})
	return true, nil
}

// book reserves the next call of e for it at now or later, splitting off
// what the message window has no room for yet.
func (e *endpoint) book(now time.Time, it item) (item, booking, error) {
	m := it.batch.Message
	to := it.batch.To
	rooms := func(n int) []string {
		if m.Kind == chatapi.RoomMembers {
			return []string{m.Scope}
		}
		return to[:n]
	}
	bk, err := e.pacer.book(now, len(to), m.Kind.MaxPerCall() > 1, rooms)
	if err != nil {
		return it, bk, err
	}
	if n := bk.n; n < len(to) {
		// Each part owns its recipients: the carried part grows by
		// append, and must never write into the part booked here.
		e.carry(item{batch: planner.Batch{Message: m, To: slices.Clone(to[n:])}, attempts: it.attempts})
		it.batch.To = slices.Clone(to[:n])
	}
	return it, bk, nil
}

// carry keeps the part of a batch split off by book, and joins it with the
// next parts split off the same message until they fill a call: sent on
// their own, parts would fill the window with small calls, each freeing as
// little room when it leaves. A carry that cannot join goes to the queue.
func (e *endpoint) carry(rest item) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.carried
	if c == nil || c.batch.Message.Key() != rest.batch.Message.Key() {
		if c != nil {
			e.retries = append(e.retries, *c)
		}
		e.carried = &rest
		return
	}
	c.batch.To = append(c.batch.To, rest.batch.To...)
	if limit := e.quotas.PerCall(c.batch.Message.Kind); len(c.batch.To) >= limit {
		e.retries = append(e.retries, item{batch: planner.Batch{Message: c.batch.Message, To: slices.Clone(c.batch.To[:limit])}, attempts: c.attempts})
		if len(c.batch.To) > limit {
			c.batch.To = slices.Clone(c.batch.To[limit:])
		} else {
			e.carried = nil
		}
	}
}

// flushCarry queues what carry holds, when no more batches come to join it.
func (e *endpoint) flushCarry() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.carried != nil {
		e.retries = append(e.retries, *e.carried)
		e.carried = nil
	}
}

// sleepUntil waits until t and reports whether ctx was still live then.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// call records, sends at its booked time (with sendCtx), and records one
// batch.
func (r *runner) call(ctx, sendCtx context.Context, e *endpoint, it item, bk booking) error {
	m := it.batch.Message
	msg, err := r.prepare(ctx, m)
	if err != nil {
		return err
	}
	rec, err := r.begin(m, it)
	if err != nil {
		return err
	}
	// Sleep to the booked time, then have the pacer stamp the call as it
	// leaves; a call late enough to find its windows full waits for room.
	wait := bk.at
	for {
		if !sleepUntil(ctx, wait) {
			e.pacer.cancel(bk)
			rec.State, rec.Error, rec.Time = checkpoint.Pending, "interrupted before sending", time.Time{}
			return r.finish(rec)
		}
		var ok bool
		if wait, ok, err = e.pacer.send(bk, time.Now()); err != nil {
			e.pacer.cancel(bk)
			rec.State, rec.Error, rec.Time = checkpoint.Pending, "not sent: "+err.Error(), time.Time{}
			return errors.Join(err, r.finish(rec))
		}
		if ok {
			break
		}
	}
	sent := wait // stamped
	r.progress.kind(m.Kind).Calls.Add(1)
	r.health.sending(sent)
	res, wrote, err := r.send(sendCtx, chatapi.Batch{Kind: m.Kind, Scope: m.Scope, To: rec.To, Message: msg})
	rec.Time = time.Now()
	e.pacer.answered(bk, sent, wrote, rec.Time, chatapi.Refused(err), chatapi.RefusedCalls(err))
	if err == nil {
		return r.delivered(rec, res)
	}
	return r.failed(e, rec, m, err)
}

// baseURLOf is the API base (host and app) a sender or recaller sends
// to, "" if it does not say.
func baseURLOf(client any) string {
	if b, ok := client.(interface{ BaseURL() string }); ok {
		return b.BaseURL()
	}
	return ""
}

// begin durably records the batch in flight, with its message the first
// time the campaign has it.
func (r *runner) begin(m *planner.Message, it item) (*checkpoint.Record, error) {
	campaign := r.cfg.campaignOf(m)
	rec := &checkpoint.Record{Campaign: campaign, Kind: string(m.Kind), Scope: m.Scope, Digest: m.Digest, To: it.batch.To, Attempts: it.attempts + 1, Via: r.via}
	sk := storedKey{campaign, m.Digest}
	if _, done := r.stored.Load(sk); !done {
		rec.Message = m.RowJSON()
	}
	if err := r.ledger.Begin(rec); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	r.stored.Store(sk, true)
	return rec, nil
}

// send makes the call, and says when its request was written (zero if it
// never was): the last write on this context is the call's own, after any
// token request. The pacer learns from that moment.
func (r *runner) send(sendCtx context.Context, b chatapi.Batch) (chatapi.Result, time.Time, error) {
	traced, wrote := traceWrote(sendCtx)
	res, err := r.sender.Send(traced, b)
	if sendCtx.Err() == nil {
		r.health.done(err)
	}
	return res, wrote(), err
}

// traceWrote returns ctx traced for the moment its last request was
// written, and a func that says when that was (zero if never).
func traceWrote(ctx context.Context) (context.Context, func() time.Time) {
	var wrote atomic.Int64
	traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(time.Now().UnixNano()) },
	})
	return traced, func() time.Time {
		if ns := wrote.Load(); ns != 0 {
			return time.Unix(0, ns)
		}
		return time.Time{}
	}
}

// failed records a call that err ended: failed for good, uncertain, or
// not delivered and queued to be sent again (or given up on after
// MaxAttempts). Refused credentials stop the run.
func (r *runner) failed(e *endpoint, rec *checkpoint.Record, m *planner.Message, err error) error {
	var apiErr *chatapi.Error
	errors.As(err, &apiErr)
	rec.Error = err.Error()
	pc := r.progress.kind(m.Kind)
	switch chatapi.OutcomeOf(err) {
	case chatapi.Permanent:
		rec.State = checkpoint.Failed
		pc.Failed.Add(int64(len(rec.To)))
		r.progress.note(OutcomeFailed, rec.Error, int64(len(rec.To)))
		return r.judged(r.finish(rec), int64(len(rec.To)), 0, rec.Error)
	case chatapi.Ambiguous:
		rec.State = checkpoint.Uncertain
		pc.Uncertain.Add(int64(len(rec.To)))
		r.progress.note(OutcomeUncertain, rec.Error, int64(len(rec.To)))
		return r.judged(r.finish(rec), int64(len(rec.To)), 0, rec.Error)
	}
	// Not delivered: send again later, or give up.
	rec.State = checkpoint.Pending
	if chatapi.CredentialsRefused(err) {
		// no call can succeed until the credentials are fixed
		if ferr := r.finish(rec); ferr != nil {
			return ferr
		}
		if errors.Is(err, chatapi.ErrCredentials) {
			return err
		}
		return fmt.Errorf("%w: %v", chatapi.ErrCredentials, err)
	}
	if chatapi.Refused(err) {
		status := 0
		if apiErr != nil {
			status = apiErr.Status
		}
		pc.refused(status)
	}
	if rec.Attempts >= r.cfg.MaxAttempts {
		rec.State = checkpoint.Failed
		rec.Error = fmt.Sprintf("gave up after %d attempts: %s", rec.Attempts, rec.Error)
		pc.Failed.Add(int64(len(rec.To)))
		r.progress.note(OutcomeFailed, rec.Error, int64(len(rec.To)))
		// the retries did not count, but a delivery given up on failed
		return r.judged(r.finish(rec), int64(len(rec.To)), 0, rec.Error)
	}
	if err := r.finish(rec); err != nil {
		return err
	}
	pc.Retries.Add(1)
	r.progress.note(OutcomeRetried, rec.Error, 1)
	// A refusal that says when to come back is taken at its word: the
	// pacer slows the endpoint if the refusals call for it, and a batch
	// held longer only lengthens the run's tail. Anything else backs off.
	pause := r.backoff(rec.Attempts)
	if apiErr != nil && apiErr.RetryAfter > 0 && chatapi.Refused(err) {
		pause = apiErr.RetryAfter
	} else if apiErr != nil && apiErr.RetryAfter > pause {
		pause = apiErr.RetryAfter
	}
	e.requeue(item{batch: planner.Batch{Message: m, To: rec.To}, attempts: rec.Attempts, notBefore: time.Now().Add(pause)})
	return nil
}

// delivered records a 2xx answer: recipients the answer names are sent;
// any it leaves out are uncertain, in a record of their own written in the
// same transaction.
func (r *runner) delivered(rec *checkpoint.Record, res chatapi.Result) error {
	pc := r.progress.kind(chatapi.Kind(rec.Kind))
	var sent, missing []string
	var ids []string
	for _, to := range rec.To {
		if id, ok := res.IDs[to]; ok {
			sent = append(sent, to)
			ids = append(ids, id)
		} else {
			missing = append(missing, to)
		}
	}
	const noID = "the server answered but gave no message ID for these recipients"
	var parts []*checkpoint.Record
	switch {
	case len(sent) == 0:
		rec.State, rec.Error = checkpoint.Uncertain, noID
	case len(missing) > 0:
		rec.State, rec.To, rec.IDs = checkpoint.Sent, sent, ids
		parts = append(parts, &checkpoint.Record{Campaign: rec.Campaign, Kind: rec.Kind, Scope: rec.Scope, Digest: rec.Digest, Via: rec.Via,
			To: missing, Attempts: rec.Attempts, State: checkpoint.Uncertain, Error: noID, Time: rec.Time})
	default:
		rec.State, rec.IDs = checkpoint.Sent, ids
	}
	if err := r.finish(rec, parts...); err != nil {
		return err
	}
	pc.Sent.Add(int64(len(sent)))
	pc.Uncertain.Add(int64(len(missing)))
	if len(missing) > 0 {
		r.progress.note(OutcomeUncertain, noID, int64(len(missing)))
	}
	return r.judged(nil, int64(len(missing)), int64(len(sent)), noID)
}

// judged gives the breaker the outcome of a call once it is recorded
// (err is the recording's): bad deliveries failed or uncertain, good ones
// sent. A breaker that trips stops dispatching.
func (r *runner) judged(err error, bad, good int64, reason string) error {
	if err != nil {
		return err
	}
	trip := r.breaker.record(good, false, "")
	if e := r.breaker.record(bad, true, reason); e != nil {
		trip = e
	}
	if trip != nil {
		r.halt(trip)
	}
	return nil
}

func (r *runner) finish(rec *checkpoint.Record, parts ...*checkpoint.Record) error {
	if err := r.ledger.Finish(rec, parts...); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// backoff is the pause before attempt n+1: exponential, capped, with
// jitter so that refused workers do not come back in step.
func (r *runner) backoff(attempts int) time.Duration {
	d := r.cfg.Backoff << min(attempts-1, 16)
	if d > r.cfg.MaxBackoff || d <= 0 {
		d = r.cfg.MaxBackoff
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// prepare returns the message to send for m, once per message.
func (r *runner) prepare(ctx context.Context, m *planner.Message) (chatapi.Message, error) {
	r.prepMu.Lock()
	p := r.prepared[m.Digest]
	if p == nil {
		p = &preparedMsg{}
		r.prepared[m.Digest] = p
	}
	r.prepMu.Unlock()
	p.once.Do(func() {
		msg := m.Message
		if m.File.Path != "" || m.Thumb.Path != "" {
			if r.cfg.Prepare == nil {
				p.err = ErrNoUploader
				return
			}
			if msg, p.err = r.cfg.Prepare(ctx, m); p.err != nil {
				return
			}
		}
		if r.cfg.DedupExt {
			msg.Ext, p.err = withDedupKey(msg.Ext, m.Digest)
		}
		p.msg = msg
	})
	return p.msg, p.err
}

// withDedupKey adds DedupKey to ext, its value the message digest's first
// 16 bytes in hex.
func withDedupKey(ext json.RawMessage, digest [32]byte) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(ext) > 0 {
		if err := json.Unmarshal(ext, &obj); err != nil {
			return nil, fmt.Errorf("ext: %w", err)
		}
	}
	v, _ := json.Marshal(hex.EncodeToString(digest[:16]))
	obj[DedupKey] = v
	return json.Marshal(obj)
}
