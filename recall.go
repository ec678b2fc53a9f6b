package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"imcast/chatapi"
	"imcast/job"
	"imcast/planner"
	"imcast/report"
)

// recallOpts are the options of imcast recall.
type recallOpts struct {
	Conn     connOptions
	Scale    float64 // --quota-scale: the recall quota's too
	State    string
	Campaign string
	Only     string // kinds, comma-separated
	Force    bool
	Workers  int
	Quiet    bool
}

func recallCommand() *cli.Command {
	return &cli.Command{
		Name:  "recall",
		Usage: "withdraw what a campaign sent: every delivery the ledger holds as sent, by its message ID; resumable, and a second recall makes no call",
		Description: `Recalls the campaign's sent messages through the recall API (batch_recall, 30 a call), paced
under the recall quota (100 calls a second, times --quota-scale). Each outcome is recorded in the
ledger: recalled, or not recalled with the server's reason (exceed recall time limit: sent more
than the app's recall window ago, 2 minutes by default; --force withdraws the recipient's copy even
then). cmd messages cannot be recalled, nor deliveries without a message ID (the legacy API, or
resolved as sent). status and report show the recall states.

Examples:
   imcast recall --state spring.db --campaign spring
   imcast recall --state spring.db --campaign spring --only groups,rooms --force

Exit codes: 0 every sent delivery recalled; 1 a fatal error (credentials, the recall service not
enabled, the ledger); 3 some not recalled (imcast status, imcast report show why); 130 interrupted:
run again to go on.`,
		Flags: append(connectionFlags(),
			quotaScaleFlag(),
			stateFlag(),
			&cli.StringFlag{Name: "campaign", Usage: "the campaign `NAME` in the ledger (required)"},
			&cli.StringFlag{Name: "only", Usage: "only deliveries of these `KINDS`, comma-separated"},
			&cli.BoolFlag{Name: "force", Usage: "recall past the app's recall window too (only the recipient's copy is withdrawn), and ask again for those found too late before"},
			&cli.IntFlag{Name: "workers", Value: 8, Usage: "`N` calls at once (1 to 256)"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
		),
		Action: func(c *cli.Context) error {
			return recall(c.Context, recallOpts{Conn: connOptionsFrom(c), Scale: c.Float64("quota-scale"), State: c.String("state"),
				Campaign: c.String("campaign"), Only: c.String("only"), Force: c.Bool("force"), Workers: c.Int("workers"), Quiet: c.Bool("quiet")},
				c.App.Writer, c.App.ErrWriter)
		},
	}
}

// recall withdraws a campaign's sent messages.
func recall(ctx context.Context, o recallOpts, stdout, stderr io.Writer) error {
	kinds, err := parseKinds(o.Only)
	if err != nil {
		return err
	}
	if o.Workers < 1 || o.Workers > 256 {
		return fmt.Errorf("--workers %d: want 1 to 256 calls at once", o.Workers)
	}
	if chatapi.CheckScale(o.Scale) != nil {
		return fmt.Errorf("--quota-scale %v: want a positive number", o.Scale)
	}
	store, err := readLedger(o.State)
	if err != nil {
		return err
	}
	defer store.Close()
	camp, err := store.Existing(o.Campaign)
	if err != nil {
		return err // before a word to the host
	}
	hosts, err := camp.Hosts()
	if err != nil {
		return err
	}
	client, closeClient, err := o.Conn.client(o.Scale)
	if err != nil {
		return err
	}
	defer closeClient()
	if len(hosts) > 0 && !slices.Contains(hosts, client.BaseURL()) {
		fmt.Fprintf(stderr, "%s imcast recall: warning: campaign %s was sent through %s, not %s: only the host that sent a message can recall it\n",
			report.Stamp(time.Now()), o.Campaign, strings.Join(hosts, ", "), client.BaseURL())
	}
	if !o.Quiet {
		fmt.Fprintf(stderr, "%s imcast recall: host %s, campaign %s, ledger %s\n", report.Stamp(time.Now()), client.BaseURL(), o.Campaign, store.Path())
	}
	last := time.Now()
	res, err := job.Recall(ctx, store, client, job.RecallConfig{
		Campaign: o.Campaign, Kinds: kinds, Force: o.Force, Calls: chatapi.RecallQuota(o.Scale), Workers: o.Workers,
		Progress: func(p job.RecallProgress) {
			if o.Quiet || time.Since(last) < 10*time.Second {
				return
			}
			last = time.Now()
			fmt.Fprintf(stderr, "%s imcast recall: %d of %d messages answered (%d recalled, %d not), %s\n",
				report.Stamp(last), p.Recalled+p.NotRecalled, p.Total, p.Recalled, p.NotRecalled, planner.Count(p.Calls, "call", "calls"))
		},
	})
	if res != nil {
		report.WriteRecall(stdout, o.Campaign, store.Path(), res)
	}
	if err == nil && !res.Complete() {
		err = notRecalled(res)
	}
	return err
}
