package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/planner"
)

// Store is the ledger file as a campaign run needs it: the records of
// every campaign it holds, and the uploads.
type Store interface {
	Ledger
	UploadLedger
	Campaigns() ([]string, error)
	Campaign(name string) *checkpoint.Campaign
	Recent(since time.Time, toOf func(kind string) bool, fn func(checkpoint.Call) error) error
	Find(*checkpoint.Lookup) error
}

// CampaignConfig says how to run a campaign.
type CampaignConfig struct {
	Config
	ResendUncertain bool // send again deliveries the ledger holds as uncertain
	// SpoolDir is the folder the run keeps its plan in while it sends
	// (beside the ledger, say); "": the system's temporary folder.
	SpoolDir string
	// Canary, if above 0, sends that many deliveries, the first in plan
	// order (batches cut to fit), and stops with a *CanaryError if any
	// are left.
	Canary int64
	// SendWindow, if set, is the daily window the run sends in: started
	// outside it, Send waits for it to open (telling Waiting first), and
	// stops at its close with a *WindowClosedError.
	SendWindow planner.Window
	Waiting    func(until time.Time)
}

// Result is what a campaign run did, and where the campaign stands.
type Result struct {
	Plan     *planner.Plan // Pending counts what was left to send when the run started
	Progress *Progress     // what the run sent
	// Of the campaign's deliveries, those the ledger already held as sent,
	// and as uncertain and left alone (no ResendUncertain), at the start.
	AlreadySent, HeldUncertain int64
	Elapsed                    time.Duration
	// Unchanged says the files were not read: they are as they were when
	// every delivery of the campaign was found sent.
	Unchanged bool
}

// Complete reports whether every delivery of the campaign is now sent.
func (r *Result) Complete() bool {
	sent, _, _ := r.Progress.Done()
	return r.HeldUncertain == 0 && sent == r.Plan.Total.Pending
}

// known is what a run knows of the deliveries the ledger holds.
type known interface {
	// state is the delivery's state in campaign name.
	state(name string, m *planner.Message, to string) (checkpoint.State, error)
	// elsewhere calls fn with each campaign but own that holds the
	// delivery as sent, or possibly sent.
	elsewhere(m *planner.Message, to, own string, fn func(name string))
}

// ledgerState is all the ledger holds of the campaigns a run touches,
// read as each is first met.
type ledgerState struct {
	store  Store
	mu     sync.Mutex
	byName map[string]*checkpoint.Deliveries
	// every campaign of the ledger, read when others is
	names  []string
	states []*checkpoint.Deliveries
}

// of returns the deliveries of campaign name, readied for a new run:
// batches a dead run left in flight are marked uncertain first.
func (l *ledgerState) of(name string) (*checkpoint.Deliveries, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.byName[name]; d != nil {
		return d, nil
	}
	d, err := l.store.Campaign(name).Resume()
	if err != nil {
		return nil, fmt.Errorf("campaign %s: %w", name, err)
	}
	l.byName[name] = d
	return d, nil
}

func (l *ledgerState) state(name string, m *planner.Message, to string) (checkpoint.State, error) {
	d, err := l.of(name)
	if err != nil {
		return 0, err
	}
	return d.State(string(m.Kind), m.Scope, m.Digest, to), nil
}

// others reads every campaign of the ledger, each once, to find
// deliveries a renamed or copied file, or a report's campaign column
// edited, would send again under another campaign.
func (l *ledgerState) others() error {
	names, err := l.store.Campaigns()
	if err != nil {
		return err
	}
	for _, name := range names {
		d, err := l.of(name)
		if err != nil {
			return err
		}
		l.names = append(l.names, name)
		l.states = append(l.states, d)
	}
	return nil
}

func (l *ledgerState) elsewhere(m *planner.Message, to, own string, fn func(string)) {
	for i, d := range l.states {
		if l.names[i] != own && mayBeSent(d.State(string(m.Kind), m.Scope, m.Digest, to)) {
			fn(l.names[i])
		}
	}
}

// mayBeSent says whether a delivery in state st reached its recipient, or
// may have: another campaign holding it so means the run would send it
// again.
func mayBeSent(st checkpoint.State) bool {
	return st == checkpoint.Sent || st == checkpoint.Uncertain
}

// lookupState is what the ledger holds of chosen deliveries: those of the
// rows appended to a campaign's files since it was complete.
type lookupState struct{ l *checkpoint.Lookup }

func (k lookupState) state(name string, m *planner.Message, to string) (checkpoint.State, error) {
	return k.l.State(name, string(m.Kind), m.Scope, m.Digest, to), nil
}

func (k lookupState) elsewhere(m *planner.Message, to, own string, fn func(string)) {
	for _, name := range k.l.Campaigns() {
		if name != own && mayBeSent(k.l.State(name, string(m.Kind), m.Scope, m.Digest, to)) {
			fn(name)
		}
	}
}

// completion is what the ledger keeps of a campaign every delivery of
// which is sent: the files as the run that found it so read them.
type completion struct {
	Named  bool            `json:"named"`
	Source *planner.Source `json:"source"`
}

// completed returns the completion the ledger holds for the campaign, if
// it was recorded by a run like this one; nil if none.
func completed(store Store, cfg CampaignConfig) (*completion, error) {
	b, err := store.Campaign(cfg.Campaign).Complete()
	if err != nil || b == nil {
		return nil, err
	}
	var c completion
	if json.Unmarshal(b, &c) != nil || c.Source == nil || c.Named != cfg.Named {
		return nil, nil // read all again: never worse than slower
	}
	return &c, nil
}

// RunCampaign runs what the ledger has not yet recorded as sent: it marks
// batches left in flight by a dead run uncertain, skips deliveries sent
// (and uncertain ones unless ResendUncertain), and sends the rest. Failed
// deliveries are sent again: the server refused them, so none of them was
// delivered.
//
// Deliveries go to the campaign cfg.Campaign, or to the one their rows name
// (a report fed back) unless cfg.Named. Without cfg.Named, a run whose
// deliveries another campaign of the ledger already holds as sent (a
// renamed or copied file) sends nothing and returns a *SentElsewhereError.
//
// When a run leaves every delivery sent, the ledger keeps what it read of
// the files. The next run then reads no row if they are unchanged, and only
// the rows appended if that is all that changed, looking those up in the
// ledger without reading all it holds.
func RunCampaign(ctx context.Context, camp *planner.Campaign, store Store, sender Sender, cfg CampaignConfig) (*Result, error) {
	p, err := PrepareCampaign(ctx, camp, store, sender, cfg)
	if err != nil {
		return nil, err
	}
	return p.Send(ctx)
}

// Prepared is a campaign run read, validated and planned against the
// ledger, and not yet sending: its Plan says what Send sends (its Pending
// counts).
type Prepared struct {
	Plan   *planner.Plan
	res    *Result
	spool  *planner.Spool // nil: nothing to send
	cfg    CampaignConfig
	store  Store
	sender Sender
}

// PrepareCampaign is the first half of RunCampaign: everything but
// sending. Send, or Close, the Prepared it returns.
func PrepareCampaign(ctx context.Context, camp *planner.Campaign, store Store, sender Sender, cfg CampaignConfig) (*Prepared, error) {
	if cfg.Campaign == "" {
		return nil, errors.New("no campaign name")
	}
	// The calls of a run that stopped a moment ago still count in the
	// server's windows: read them before Resume rewrites the time of those
	// left in flight.
	recent, err := recentCalls(store)
	if err != nil {
		return nil, err
	}
	cfg.Recent = append(cfg.Recent, recent...)
	v, err := viewLedger(ctx, camp, store, cfg)
	if err != nil {
		return nil, err
	}
	if v.unchanged != nil {
		return v.unchanged, nil
	}
	t := &sorting{cfg: &cfg, view: v, state: cfg.stateIn(v.ledger), res: &Result{},
		counts: map[string]int64{}, found: map[string]int64{}}
	res, counts, found := t.res, t.counts, t.found
	// One read of the files validates the campaign and spools what is to
	// be sent: the run sends exactly that, whatever the files hold later.
	spool, err := planner.NewSpool(cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	prepared := false
	defer func() {
		if !prepared {
			spool.Close()
		}
	}()
	plan, err := v.read.PlanPending(ctx, cfg.Quotas, t.pending, spool)
	if err != nil {
		return nil, err
	}
	if v.check != nil && !plan.Source.Equal(v.check) {
		return nil, errors.New("the campaign files changed while they were read: nothing was sent; run again")
	}
	if len(found) > 0 {
		return nil, &SentElsewhereError{Campaign: cfg.Campaign, Found: found}
	}
	if v.check != nil {
		// the rows before were all sent, and the ledger holds their count
		counts[cfg.Campaign] += v.planned
		res.AlreadySent = max(res.AlreadySent, v.planned)
	}
	res.Plan = plan
	if err := recordPlanned(store, cfg.Campaign, counts, plan.Total.Pending > 0, baseURLOf(sender)); err != nil {
		return nil, err
	}
	if cfg.Canary > 0 {
		cfg.canary = newCanary(cfg.Canary, plan.Kinds)
	}
	cfg.Kinds = nil
	for _, kp := range plan.Kinds {
		if kp.Pending > 0 {
			cfg.Kinds = append(cfg.Kinds, kp.Kind)
		}
	}
	if cfg.Progress == nil {
		cfg.Progress = NewProgress(chatapi.Kinds)
	}
	if cfg.Prepare == nil {
		if up, ok := sender.(Uploader); ok {
			cfg.Prepare = Uploads(up, store)
		}
	}
	prepared = true
	return &Prepared{Plan: plan, res: res, spool: spool, cfg: cfg, store: store, sender: sender}, nil
}

// sorting decides, delivery by delivery of a run's read, what the run
// sends, and counts what the ledger already holds.
type sorting struct {
	cfg    *CampaignConfig
	view   *view
	state  func(m *planner.Message, to string) (checkpoint.State, error)
	res    *Result
	counts map[string]int64 // deliveries read, by campaign
	found  map[string]int64 // of those to send, held by another campaign
}

// pending is the run's PendingFunc.
func (t *sorting) pending(m *planner.Message, to string) (bool, error) {
	name := t.cfg.campaignOf(m)
	st, err := t.state(m, to)
	if err != nil {
		return false, err
	}
	switch {
	case t.view.check == nil || name != t.cfg.Campaign:
		t.counts[name]++
	case st == checkpoint.Pending || st == checkpoint.Failed:
		t.counts[name]++ // new to the campaign, most likely
	}
	switch {
	case st == checkpoint.Sent:
		t.res.AlreadySent++
	case st == checkpoint.Uncertain && !t.cfg.ResendUncertain:
		t.res.HeldUncertain++
	}
	send := t.cfg.toSend(st)
	if send && !t.cfg.Named {
		t.view.ledger.elsewhere(m, to, name, func(other string) { t.found[other]++ })
	}
	return send, nil
}

// recentCalls are the calls of every campaign the server's windows may
// still count.
func recentCalls(store Store) ([]Call, error) {
	var calls []Call
	rooms := func(kind string) bool { return chatapi.Kind(kind) == chatapi.Rooms }
	err := store.Recent(time.Now().Add(-recentSpan), rooms, func(r checkpoint.Call) error {
		c := Call{Kind: chatapi.Kind(r.Kind), Messages: r.Recipients, At: r.Time}
		switch c.Kind {
		case chatapi.Rooms:
			c.Rooms = r.To
		case chatapi.RoomMembers:
			c.Rooms = []string{r.Scope}
		}
		calls = append(calls, c)
		return nil
	})
	return calls, err
}

// view is how a run sees the ledger and the files.
type view struct {
	ledger known
	read   *planner.Campaign // what the run reads of the files
	// With read of the rows appended since the campaign was complete:
	// what a first read of them read, and the deliveries the campaign
	// held before.
	check   *planner.Source
	planned int64
	// unchanged, if set, is the run of files as they were then: nothing
	// to read, nothing to send
	unchanged *Prepared
}

// viewLedger compares the files with what the ledger kept of them when the
// campaign was last complete. Unchanged, nothing is read. Only appended
// to, the run reads the new rows and looks their deliveries up in the
// ledger. Else it reads the whole ledger of the campaign, and of every
// other unless cfg.Named, to find the deliveries they hold.
func viewLedger(ctx context.Context, camp *planner.Campaign, store Store, cfg CampaignConfig) (*view, error) {
	prior, err := completed(store, cfg)
	if err != nil {
		return nil, err
	}
	tc := camp.Since(prior.source())
	if tc == nil {
		ls := &ledgerState{store: store, byName: map[string]*checkpoint.Deliveries{}}
		if _, err := ls.of(cfg.Campaign); err != nil {
			return nil, err
		}
		if !cfg.Named {
			if err := ls.others(); err != nil {
				return nil, err
			}
		}
		return &view{ledger: ls, read: camp}, nil
	}
	planned, err := store.Campaign(cfg.Campaign).Planned()
	if err != nil {
		return nil, err
	}
	if tc.Unchanged() {
		return &view{unchanged: unchanged(camp, planned, cfg)}, nil
	}
	// Read the appended rows once to learn which deliveries to look up;
	// the read that plans them then reads the same bytes, no further (rows
	// appended meanwhile are the next run's), and must find them unchanged.
	look := checkpoint.NewLookup()
	first, err := tc.PlanPending(ctx, cfg.Quotas, func(m *planner.Message, to string) (bool, error) {
		look.Add(string(m.Kind), m.Scope, m.Digest, to)
		return true, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	if err := store.Find(look); err != nil {
		return nil, err
	}
	return &view{ledger: lookupState{look}, read: tc.Upto(first.Source), check: first.Source, planned: planned}, nil
}

// toSend says whether a delivery in state st is sent by this run.
func (cfg *CampaignConfig) toSend(st checkpoint.State) bool {
	switch st {
	case checkpoint.Sent:
		return false
	case checkpoint.Uncertain:
		return cfg.ResendUncertain
	}
	return true
}

// stateIn returns the state of a delivery in what the ledger holds, or,
// for a report fed back to a ledger that does not know it, what the report
// says it was.
func (cfg *CampaignConfig) stateIn(ledger known) func(m *planner.Message, to string) (checkpoint.State, error) {
	return func(m *planner.Message, to string) (checkpoint.State, error) {
		st, err := ledger.state(cfg.campaignOf(m), m, to)
		if err != nil || st != checkpoint.Pending || cfg.Named {
			return st, err
		}
		switch m.Reported {
		case checkpoint.Sent, checkpoint.Uncertain:
			st = m.Reported
		case checkpoint.InFlight:
			st = checkpoint.Uncertain
		}
		return st, nil
	}
}

// recordPlanned records how many deliveries each campaign the run read
// holds (own is the run's; a report fed back holds a part of the others
// only), and, when the run is to send, that none is complete until it
// ends and that via (the sender's API base, if it has one) may hold their
// messages, for recall.
func recordPlanned(store Store, own string, counts map[string]int64, sending bool, via string) error {
	touched := slices.Sorted(maps.Keys(counts))
	for _, name := range touched {
		c := store.Campaign(name)
		n := counts[name]
		if name != own {
			old, err := c.Planned()
			if err != nil {
				return err
			}
			n = max(n, old)
		}
		if err := c.SetPlanned(n); err != nil {
			return err
		}
	}
	if !sending {
		return nil
	}
	for _, name := range touched {
		if err := store.Campaign(name).SetComplete(nil); err != nil {
			return err
		}
		if via == "" {
			continue
		}
		if err := store.Campaign(name).AddHost(via); err != nil {
			return err
		}
	}
	return nil
}

// Send sends what was prepared and ends the run. When it leaves every
// delivery of the campaign sent, the ledger keeps what the run read of
// the files (see RunCampaign).
func (p *Prepared) Send(ctx context.Context) (*Result, error) {
	res := p.res
	if p.spool == nil {
		return res, nil
	}
	defer p.Close()
	src := func(ctx context.Context, kinds []chatapi.Kind, emit func(planner.Batch) error) error {
		return p.spool.Batches(ctx, kinds, emit)
	}
	cfg := p.cfg.Config
	if w := p.cfg.SendWindow; !w.IsZero() {
		now := time.Now()
		if open := w.NextOpen(now); open.After(now) {
			if p.cfg.Waiting != nil {
				p.cfg.Waiting(open)
			}
			if !sleepUntil(ctx, open) {
				res.Progress = cfg.Progress
				return res, ctx.Err()
			}
			now = open
		}
		cfg.Until, cfg.Window = w.CloseAfter(now), w
	}
	start := time.Now()
	var err error
	res.Progress, err = Run(ctx, cfg, src, p.sender, p.store)
	res.Elapsed = time.Since(start)
	sent, failed, uncertain := res.Progress.Done()
	left := res.Plan.Total.Pending - sent - failed - uncertain
	var closed *WindowClosedError
	switch {
	case errors.As(err, &closed):
		closed.Left = left
	case err == nil && p.cfg.Canary > 0 && left > 0:
		err = &CanaryError{Sent: sent, Bad: failed + uncertain, Left: left}
	}
	if err == nil && res.Complete() {
		b, merr := json.Marshal(completion{Named: p.cfg.Named, Source: p.Plan.Source})
		if merr == nil {
			merr = p.store.Campaign(p.cfg.Campaign).SetComplete(b)
		}
		if merr != nil {
			return res, fmt.Errorf("ledger: %w", merr)
		}
	}
	return res, err
}

// Close removes the plan's spool; Send closes it too.
func (p *Prepared) Close() {
	if p.spool != nil {
		p.spool.Close()
		p.spool = nil
	}
}

func (c *completion) source() *planner.Source {
	if c == nil {
		return nil
	}
	return c.Source
}

// unchanged is the result of a run of files unchanged since every delivery
// of the campaign was sent: nothing read, nothing to send.
func unchanged(camp *planner.Campaign, planned int64, cfg CampaignConfig) *Prepared {
	plan := camp.Unread()
	if cfg.Progress == nil {
		cfg.Progress = NewProgress(chatapi.Kinds)
	}
	return &Prepared{Plan: plan, res: &Result{Plan: plan, Progress: cfg.Progress, AlreadySent: planned, Unchanged: true}}
}

// The ledger and the API client are what a run needs.
var (
	_ Store    = (*checkpoint.Store)(nil)
	_ Sender   = (*chatapi.Client)(nil)
	_ Uploader = (*chatapi.Client)(nil)
)
