package job

import (
	"context"
	"slices"
	"time"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/planner"
)

// CampaignLedger is the ledger of one campaign as a run needs it.
type CampaignLedger interface {
	Ledger
	Resume() (*checkpoint.Deliveries, error)
	SetPlanned(n int64) error
}

// CampaignConfig says how to run a campaign.
type CampaignConfig struct {
	Config
	ResendUncertain bool // send again deliveries the ledger holds as uncertain
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

// RunCampaign runs what the ledger has not yet recorded as sent: it marks
// batches left in flight by a dead run uncertain, skips deliveries sent
// (and uncertain ones unless ResendUncertain), and sends the rest. Failed
// deliveries are sent again: the server refused them, so none of them was
// delivered.
func RunCampaign(ctx context.Context, camp *planner.Campaign, ledger CampaignLedger, sender Sender, cfg CampaignConfig) (*Result, error) {
	done, err := ledger.Resume()
	if err != nil {
		return nil, err
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
	pending := func(m *planner.Message, to string) (bool, error) {
		return toSend(done.State(string(m.Kind), m.Scope, m.Digest, to)), nil
	}
	res := &Result{}
	plan, err := camp.PlanPending(ctx, cfg.Quotas, func(m *planner.Message, to string) (bool, error) {
		st := done.State(string(m.Kind), m.Scope, m.Digest, to)
		switch {
		case st == checkpoint.Sent:
			res.AlreadySent++
		case st == checkpoint.Uncertain && !cfg.ResendUncertain:
			res.HeldUncertain++
		}
		return toSend(st), nil
	})
	if err != nil {
		return nil, err
	}
	res.Plan = plan
	if err := ledger.SetPlanned(plan.Total.Recipients); err != nil {
		return nil, err
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
		up, ok1 := sender.(Uploader)
		ul, ok2 := ledger.(UploadLedger)
		if ok1 && ok2 {
			cfg.Prepare = Uploads(up, ul)
		}
	}
	if cfg.Started != nil {
		cfg.Started(plan)
	}
	src := func(ctx context.Context, kinds []chatapi.Kind, emit func(planner.Batch) error) error {
		return camp.Batches(ctx, func(m *planner.Message, to string) (bool, error) {
			if !slices.Contains(kinds, m.Kind) {
				return false, nil
			}
			return pending(m, to)
		}, emit)
	}
	start := time.Now()
	res.Progress, err = Run(ctx, cfg.Config, src, sender, ledger)
	res.Elapsed = time.Since(start)
	return res, err
}

// The ledger and the API client are what a run needs.
var (
	_ CampaignLedger = (*checkpoint.Campaign)(nil)
	_ UploadLedger   = (*checkpoint.Campaign)(nil)
	_ Sender         = (*chatapi.Client)(nil)
	_ Uploader       = (*chatapi.Client)(nil)
)
