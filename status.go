package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"imcast/checkpoint"
	"imcast/report"
)

// statusOpts are the options of imcast status.
type statusOpts struct {
	State string // the ledger file
	JSON  bool
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "count each campaign's deliveries in the ledger: sent, failed, uncertain, pending; while a run holds the ledger, the run's own counts, which it shares beside it",
		Description: `Examples:
   imcast status --state spring.db
   imcast status --state spring.db --json    # one JSON object a campaign

Exit codes: 0 printed (also while a run holds the ledger: the run's own counts); 1 no such
ledger, a damaged one, or one a run holds that shares no counts.`,
		Flags: []cli.Flag{stateFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON lines"}},
		Action: func(c *cli.Context) error {
			return status(c.Context, statusOpts{State: c.String("state"), JSON: c.Bool("json")}, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// status prints each campaign's counts of deliveries by state, or, while
// a run holds the ledger, names the run and prints the counts it shares.
func status(_ context.Context, o statusOpts, stdout, _ io.Writer) error {
	store, err := readLedger(o.State)
	if errors.Is(err, checkpoint.ErrLocked) {
		// the run holding it shares its own counts beside it
		live, lerr := report.ReadLive(o.State)
		if lerr != nil {
			return err
		}
		if !o.JSON {
			fmt.Fprintf(stdout, "%s\n", err)
		}
		return report.WriteLive(stdout, live, time.Now(), o.JSON)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	// no run holds the ledger: counts it shared are a killed run's
	os.Remove(report.LivePath(o.State))
	statuses, err := report.Status(store)
	if err != nil {
		return err
	}
	return report.WriteStatus(stdout, statuses, o.JSON)
}
