package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/urfave/cli/v2"

	"imcast/planner"
)

// planOpts are the options of imcast plan.
type planOpts struct {
	Campaign campaignOptions
	JSON     bool
	Window   guardOptions // --window and --timezone: how many windows the campaign needs
}

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "read and validate a campaign and print its plan; sends nothing",
		ArgsUsage: "CAMPAIGN...",
		Description: `Reads CSV (.csv) or JSON Lines (.jsonl) campaign files (the README's "Campaign files"),
reports every problem as FILE:LINE: what is wrong, and prints the deliveries, batches, calls and
the time they take under the quotas.

Examples:
   imcast plan samples/mixed.jsonl
   imcast plan --message welcome.json --quota-scale 10 ids.csv

Exit codes: 0 valid; 2 invalid (every problem listed); 1 another error.`,
		Flags: append(campaignFlags(),
			&cli.BoolFlag{Name: "json", Usage: "print the plan as JSON"},
			windowFlag(), timezoneFlag(),
		),
		Action: func(c *cli.Context) error {
			return plan(c.Context, planOpts{Campaign: campaignOptionsFrom(c), JSON: c.Bool("json"), Window: guardOptionsFrom(c)}, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// plan reads and validates the campaign and prints its plan.
func plan(ctx context.Context, o planOpts, stdout, _ io.Writer) error {
	window, err := o.Window.window()
	if err != nil {
		return err
	}
	camp, quotas, err := o.Campaign.open()
	if err != nil {
		return err
	}
	p, err := camp.Plan(ctx, quotas)
	if err != nil {
		return err
	}
	if !window.IsZero() {
		p.Window = &planner.WindowPlan{Window: window.String(), Hours: window.Length().Hours(), Needed: window.Needed(p.Total.Estimate)}
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	return p.WriteText(stdout)
}
