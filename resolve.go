package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/planner"
)

// resolveOpts are the options of imcast resolve.
type resolveOpts struct {
	State    string
	Campaign string
	As       string   // sent or failed
	Only     string   // kinds, comma-separated
	Files    []string // a report listing the deliveries to settle
	Encoding string
}

func resolveCommand() *cli.Command {
	return &cli.Command{
		Name:      "resolve",
		Usage:     "settle uncertain deliveries you checked by other means, as sent (no run sends them again) or failed (the next run sends them)",
		ArgsUsage: "[REPORT]",
		Description: `Settles the campaign's uncertain deliveries: all of them, those of --only kinds, or those a
report FILE lists (imcast report --only uncertain, trimmed to the ones you checked). Each is
recorded with the time and what made it uncertain; status counts them as resolved, and report
shows it in the error column.

Examples:
   imcast resolve --state spring.db --campaign spring --as sent
   imcast report --state spring.db --only uncertain --out u.csv   # check, keep the rows that did not arrive
   imcast resolve --state spring.db --campaign spring --as failed u.csv
   imcast run --state spring.db spring.csv                        # sends the failed ones again`,
		Flags: []cli.Flag{
			stateFlag(),
			&cli.StringFlag{Name: "campaign", Usage: "the campaign `NAME` in the ledger (required)"},
			&cli.StringFlag{Name: "as", Usage: "`OUTCOME`: sent (it arrived) or failed (it did not)"},
			&cli.StringFlag{Name: "only", Usage: "only deliveries of these `KINDS`, comma-separated"},
			&cli.StringFlag{Name: "encoding", Value: planner.UTF8, Usage: "`ENCODING` of a CSV report: utf-8 or gbk"},
		},
		Action: func(c *cli.Context) error {
			return resolve(c.Context, resolveOpts{State: c.String("state"), Campaign: c.String("campaign"), As: c.String("as"),
				Only: c.String("only"), Files: c.Args().Slice(), Encoding: c.String("encoding")}, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// resolve settles uncertain deliveries of a campaign in the ledger.
func resolve(ctx context.Context, o resolveOpts, stdout, _ io.Writer) error {
	if o.As == "" {
		return errors.New("say what became of them: --as sent (they arrived) or --as failed (they did not)")
	}
	as, err := checkpoint.ParseState(o.As)
	if err != nil || as != checkpoint.Sent && as != checkpoint.Failed {
		return fmt.Errorf("--as %q: want sent or failed", o.As)
	}
	only, err := parseKinds(o.Only)
	if err != nil {
		return err
	}
	var kinds []string
	for _, k := range only {
		kinds = append(kinds, string(k))
	}
	id := checkpoint.NewIdentity()
	listed, err := listedDeliveries(ctx, o, id)
	if err != nil {
		return err
	}
	store, err := readLedger(o.State)
	if err != nil {
		return err
	}
	defer store.Close()
	camp, err := store.Existing(o.Campaign)
	if err != nil {
		return err
	}
	n, err := camp.Resolve(as, func(d checkpoint.Delivery) bool {
		if kinds != nil && !slices.Contains(kinds, d.Kind) {
			return false
		}
		if listed == nil {
			return true
		}
		_, ok := listed[id.Key("", d.Kind, d.Scope, &d.Digest, d.To)]
		return ok
	}, time.Now())
	if err != nil {
		return err
	}
	if n == 0 {
		_, err = fmt.Fprintf(stdout, "campaign %s: no uncertain delivery to resolve\n", o.Campaign)
		return err
	}
	_, err = fmt.Fprintf(stdout, "campaign %s: %d uncertain deliveries resolved as %s\n", o.Campaign, n, as)
	return err
}

// listedDeliveries reads the report o names, if any, and returns its
// deliveries of o's campaign by their key under id (nil: no report given).
func listedDeliveries(ctx context.Context, o resolveOpts, id checkpoint.Identity) (map[uint64]struct{}, error) {
	switch len(o.Files) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, errors.New("resolve takes one report file")
	}
	camp, err := planner.Open(planner.Options{Files: o.Files, Encoding: o.Encoding})
	if err != nil {
		return nil, err
	}
	quotas, err := chatapi.NewQuotas(1, nil)
	if err != nil {
		return nil, err
	}
	listed := map[uint64]struct{}{}
	err = camp.Batches(ctx, quotas, nil, func(b planner.Batch) error {
		m := b.Message
		if m.Campaign != "" && m.Campaign != o.Campaign {
			return nil
		}
		for _, to := range b.To {
			listed[id.Key("", string(m.Kind), m.Scope, &m.Digest, to)] = struct{}{}
		}
		return nil
	})
	return listed, err
}
