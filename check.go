package main

import (
	"context"
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
		Usage: "check the connection: fetch the app token and print the base URL and the quotas in force; sends no message",
		Flags: append(connectionFlags(), quotaFlags()...),
		Action: func(c *cli.Context) error {
			return check(c.Context, checkOpts{Conn: connOptionsFrom(c), Quotas: quotaOptionsFrom(c)}, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// check fetches the app token (if it is fetched) and prints where the run
// would go and under which quotas.
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
	return report.WriteCheck(stdout, report.Check{BaseURL: client.BaseURL(), Fetched: fetched, Token: info, Quotas: quotas})
}
