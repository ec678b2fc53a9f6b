package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"imcast/checkpoint"
	"imcast/report"
)

// reportOpts are the options of imcast report.
type reportOpts struct {
	State    string // the ledger file
	Campaign string // "": every campaign
	Format   string // report.CSV or report.JSONL
	Only     string // states, comma-separated; "": all
	Out      string // a file to write; "": stdout
}

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "one row per delivery in the ledger; run accepts the file back as a campaign",
		Description: `Columns: campaign, kind, scope, recipient, state (sent, failed, uncertain, pending, in_flight),
message_id, error, time, recall (after imcast recall), then the message's columns.

Examples:
   imcast report --state spring.db --only failed,uncertain --out retry.csv
   imcast report --state spring.db --campaign spring --format jsonl

Exit codes: 0 written; 1 no such ledger, a damaged one, one a run holds, or a bad flag.`,
		Flags: []cli.Flag{
			stateFlag(),
			&cli.StringFlag{Name: "campaign", Usage: "only this campaign `NAME`"},
			&cli.StringFlag{Name: "format", Value: report.CSV, Usage: "`FORMAT`: csv or jsonl"},
			&cli.StringFlag{Name: "only", Usage: "only these `STATES`, comma-separated: sent, failed, uncertain, pending, in_flight (a run died mid-call; the next run makes them uncertain)"},
			&cli.StringFlag{Name: "out", Usage: "write to `FILE` instead of stdout"},
		},
		Action: func(c *cli.Context) error {
			return writeReport(c.Context, reportOpts{State: c.String("state"), Campaign: c.String("campaign"),
				Format: c.String("format"), Only: c.String("only"), Out: c.String("out")}, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// writeReport writes one row per delivery of the ledger.
func writeReport(_ context.Context, o reportOpts, stdout, _ io.Writer) error {
	opts := report.DeliveriesOptions{Format: o.Format}
	if o.Campaign != "" {
		opts.Campaigns = []string{o.Campaign}
	}
	if o.Only != "" {
		for _, name := range strings.Split(o.Only, ",") {
			st, err := checkpoint.ParseState(strings.TrimSpace(name))
			if err != nil {
				return err
			}
			opts.Only = append(opts.Only, st)
		}
	}
	store, err := readLedger(o.State)
	if errors.Is(err, checkpoint.ErrLocked) {
		return fmt.Errorf("%w; imcast status --state %s shows the run's counts while it runs", err, o.State)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	if o.Campaign != "" {
		if _, err := store.Existing(o.Campaign); err != nil {
			return err
		}
	}
	if o.Out == "" {
		return report.WriteDeliveries(stdout, store, opts)
	}
	f, err := os.OpenFile(o.Out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := report.WriteDeliveries(f, store, opts); err != nil {
		return err
	}
	return f.Close()
}
