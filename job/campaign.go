package job

import (
	"context"
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
	Recent(since time.Time, fn func(checkpoint.Record) error) error
}

// CampaignConfig says how to run a campaign.
type CampaignConfig struct {
	Config
	ResendUncertain bool // send again deliveries the ledger holds as uncertain
	// SpoolDir is the folder the run keeps its plan in while it sends
	// (beside the ledger, say); "": the system's temporary folder.
	SpoolDir string
	// Started, if set, is called with the plan of what is left to send
	// (its Pending counts) once the ledger is read and before any call.
	Started func(*planner.Plan)
}

// Result is what a campaign run did, and where the campaign stands.
type Result struct {
	Plan     *planner.Plan // Pending counts what was left to send when the run started
	Progress *Progress     // what the run sent
	// Of the campaign's deliveries, those the ledger already held as sent,
	// and as uncertain and left alone (no ResendUncertain), at the start.
	AlreadySent, HeldUncertain int64
	Elapsed                    time.Duration
}

// Complete reports whether every delivery of the campaign is now sent.
func (r *Result) Complete() bool {
	sent, _, _ := r.Progress.Done()
	return r.HeldUncertain == 0 && sent == r.Plan.Total.Pending
}

// ledgerState is what the ledger holds of the campaigns a run touches,
// read as each is first met.
type ledgerState struct {
	store  Store
	mu     sync.Mutex
	byName map[string]*checkpoint.Deliveries
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

// elsewhere is every campaign of the ledger, to find deliveries a renamed
// or copied file, or a report's campaign column edited, would send again
// under another campaign.
type elsewhere struct {
	names  []string
	states []*checkpoint.Deliveries
	found  map[string]int64 // deliveries of this run each campaign already holds
}

// elsewhere reads every campaign of the ledger, each once: the run's own
// and those rows name are then read already.
func (l *ledgerState) elsewhere() (*elsewhere, error) {
	names, err := l.store.Campaigns()
	if err != nil {
		return nil, err
	}
	e := &elsewhere{found: map[string]int64{}}
	for _, name := range names {
		d, err := l.of(name)
		if err != nil {
			return nil, err
		}
		e.names = append(e.names, name)
		e.states = append(e.states, d)
	}
	return e, nil
}

// check counts the delivery against each campaign but its own that holds
// it as sent, or possibly sent.
func (e *elsewhere) check(m *planner.Message, to, own string) {
	for i, d := range e.states {
		if e.names[i] == own {
			continue
		}
		switch d.State(string(m.Kind), m.Scope, m.Digest, to) {
		case checkpoint.Sent, checkpoint.Uncertain:
			e.found[e.names[i]]++
		}
	}
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
func RunCampaign(ctx context.Context, camp *planner.Campaign, store Store, sender Sender, cfg CampaignConfig) (*Result, error) {
	if cfg.Campaign == "" {
		return nil, fmt.Errorf("no campaign name")
	}
	// The calls of a run that stopped a moment ago still count in the
	// server's windows: read them before Resume rewrites the time of those
	// left in flight.
	if err := store.Recent(time.Now().Add(-recentSpan), func(r checkpoint.Record) error {
		c := Call{Kind: chatapi.Kind(r.Kind), Messages: len(r.To), At: r.Time}
		switch c.Kind {
		case chatapi.Rooms:
			c.Rooms = r.To
		case chatapi.RoomMembers:
			c.Rooms = []string{r.Scope}
		}
		cfg.Recent = append(cfg.Recent, c)
		return nil
	}); err != nil {
		return nil, err
	}
	ledger := &ledgerState{store: store, byName: map[string]*checkpoint.Deliveries{}}
	own, err := ledger.of(cfg.Campaign)
	if err != nil {
		return nil, err
	}
	var others *elsewhere
	if !cfg.Named {
		if others, err = ledger.elsewhere(); err != nil {
			return nil, err
		}
	}
	// toSend says whether a delivery in state st is sent by this run.
	toSend := func(st checkpoint.State) bool {
		switch st {
		case checkpoint.Sent:
			return false
		case checkpoint.Uncertain:
			return cfg.ResendUncertain
		}
		return true
	}
	state := func(m *planner.Message, to string) (checkpoint.State, error) {
		d := own
		if name := cfg.campaignOf(m); name != cfg.Campaign {
			var err error
			if d, err = ledger.of(name); err != nil {
				return 0, err
			}
		}
		st := d.State(string(m.Kind), m.Scope, m.Digest, to)
		if st == checkpoint.Pending && !cfg.Named {
			// a report fed back to a ledger that does not know the
			// delivery: what the report says it was stands
			switch m.Reported {
			case checkpoint.Sent, checkpoint.Uncertain:
				st = m.Reported
			case checkpoint.InFlight:
				st = checkpoint.Uncertain
			}
		}
		return st, nil
	}
	res := &Result{}
	planned := map[string]int64{}
	// One read of the files validates the campaign and spools what is to
	// be sent: the run sends exactly that, whatever the files hold later.
	spool, err := planner.NewSpool(cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	defer spool.Close()
	plan, err := camp.PlanPending(ctx, cfg.Quotas, func(m *planner.Message, to string) (bool, error) {
		planned[cfg.campaignOf(m)]++
		st, err := state(m, to)
		if err != nil {
			return false, err
		}
		switch {
		case st == checkpoint.Sent:
			res.AlreadySent++
		case st == checkpoint.Uncertain && !cfg.ResendUncertain:
			res.HeldUncertain++
		}
		send := toSend(st)
		if send && others != nil {
			others.check(m, to, cfg.campaignOf(m))
		}
		return send, nil
	}, spool)
	if err != nil {
		return nil, err
	}
	if others != nil && len(others.found) > 0 {
		return nil, &SentElsewhereError{Campaign: cfg.Campaign, Found: others.found}
	}
	res.Plan = plan
	for _, name := range slices.Sorted(maps.Keys(planned)) {
		c := store.Campaign(name)
		n := planned[name]
		if name != cfg.Campaign {
			// a report fed back holds a part of its campaign only
			old, err := c.Planned()
			if err != nil {
				return nil, err
			}
			n = max(n, old)
		}
		if err := c.SetPlanned(n); err != nil {
			return nil, err
		}
	}
	cfg.Kinds = nil
	for _, kp := range plan.Kinds {
		if kp.Pending > 0 {
			cfg.Kinds = append(cfg.Kinds, chatapi.Kind(kp.Kind))
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
	if cfg.Started != nil {
		cfg.Started(plan)
	}
	src := func(ctx context.Context, kinds []chatapi.Kind, emit func(planner.Batch) error) error {
		return spool.Batches(ctx, kinds, emit)
	}
	start := time.Now()
	res.Progress, err = Run(ctx, cfg.Config, src, sender, store)
	res.Elapsed = time.Since(start)
	return res, err
}

// The ledger and the API client are what a run needs.
var (
	_ Store    = (*checkpoint.Store)(nil)
	_ Sender   = (*chatapi.Client)(nil)
	_ Uploader = (*chatapi.Client)(nil)
)
