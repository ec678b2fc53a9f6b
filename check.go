package main

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"imcast/report"
)

// checkOpts are the options of imcast check.
type checkOpts struct {
	Conn   connOptions
	Quotas quotaOptions
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check the connection: fetch the app token (with client credentials), make one harmless authenticated call (a recall naming no message), and print the base URL and the quotas in force; sends no message, exits 1 if the host, the app or the token is wrong",
		Description: `Examples:
   EASEMOB_TOKEN=... imcast check --host https://a1.easemob.com --org ORG --app APP
   EASEMOB_CLIENT_ID=... EASEMOB_CLIENT_SECRET=... imcast check --host https://a1.easemob.com --app-id ID

Exit codes: 0 the host accepted the app and the token; 1 it did not (unreachable, token refused,
app unknown, not the API), or a flag is wrong.`,
		Flags: append(connectionFlags(), quotaFlags()...),
		Action: func(c *cli.Context) error {
			return check(c.Context, checkOpts{Conn: connOptionsFrom(c), Quotas: quotaOptionsFrom(c)}, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// check fetches the app token (if it is fetched), has the host accept it
// in a call that changes nothing, and prints where the run would go and
// under which quotas.
func check(ctx context.Context, o checkOpts, stdout, _ io.Writer) error {
	quotas, err := o.Quotas.quotas()
	if err != nil {
		return err
	}
	client, closeClient, err := o.Conn.client(o.Quotas.Scale)
	if err != nil {
		return err
	}
	defer closeClient()
	fetched, info, err := client.CheckToken(ctx)
	if err != nil {
		return err
	}
	recall, err := client.Probe(ctx)
	if err != nil {
		return fmt.Errorf("check %s: %w", client.BaseURL(), err)
	}
	return report.WriteCheck(stdout, report.Check{BaseURL: client.BaseURL(), Fetched: fetched, Token: info, Recall: recall, Quotas: quotas})
}
