package main

import (
	"context"
	"io"

	"github.com/urfave/cli/v2"

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
		Usage: "count each campaign's deliveries in the ledger: sent, failed, uncertain, pending",
		Flags: []cli.Flag{stateFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON lines"}},
		Action: func(c *cli.Context) error {
			return status(c.Context, statusOpts{State: c.String("state"), JSON: c.Bool("json")}, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// status prints each campaign's counts of deliveries by state.
func status(_ context.Context, o statusOpts, stdout, _ io.Writer) error {
	store, err := readLedger(o.State)
	if err != nil {
		return err
	}
	defer store.Close()
	statuses, err := report.Status(store)
	if err != nil {
		return err
	}
	return report.WriteStatus(stdout, statuses, o.JSON)
}
