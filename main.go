// Command imcast broadcasts IM messages through the Easemob / Agora Chat
// message-send REST API. This file only turns flags and environment into
// config structs, calls the packages, and picks the exit code.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"

	"imcast/emulator"
	"imcast/planner"
)

// Exit codes, as in SPEC.md.
const (
	exitOK          = 0
	exitFatal       = 1
	exitInvalid     = 2
	exitIncomplete  = 3
	exitInterrupted = 130
)

func main() {
	if os.Getenv("GOGC") == "" {
		// plan and run hold one large pointer-free set of delivery hashes;
		// a lower GC target keeps the heap near it (10 million deliveries:
		// 408 MB peak at the default, 257 MB at 25) at no measured cost in
		// speed.
		debug.SetGCPercent(25)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "imcast: %v\n", err)
	return exitCode(err)
}

// exitCode maps an error to the exit code SPEC.md gives it.
func exitCode(err error) int {
	var invalid *planner.InvalidError
	switch {
	case errors.As(err, &invalid):
		return exitInvalid
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFatal
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "imcast",
		Usage:     "broadcast IM messages to users, groups and chat rooms, once each",
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once, by run, and mapped to exit codes there.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			planCommand(),
			fakeServerCommand(),
		},
	}
}

func fakeServerCommand() *cli.Command {
	return &cli.Command{
		Name:  "fake-server",
		Usage: "serve an emulator of the message-send API on loopback",
		Description: "Enforces the documented per-call caps, request validation and quotas " +
			"(sliding 1 s and 60 s windows), records every delivery and counts duplicates. " +
			"Any non-empty bearer token is accepted. Statistics: GET /_emulator/stats.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8765", Usage: "loopback `ADDRESS` to listen on"},
			&cli.Float64Flag{Name: "quota-scale", Value: 1, Usage: "multiply every default quota by `F`"},
			&cli.Float64Flag{Name: "fail-429", Usage: "answer this `FRACTION` of calls 429 without delivering"},
			&cli.Float64Flag{Name: "fail-403", Usage: "answer this `FRACTION` of calls 403 \"message send reach limit\" without delivering"},
			&cli.Float64Flag{Name: "fail-503", Usage: "answer this `FRACTION` of calls 503 without delivering"},
			&cli.Float64Flag{Name: "fail-500-before", Usage: "answer this `FRACTION` of calls 500 without delivering"},
			&cli.Float64Flag{Name: "fail-500-after", Usage: "deliver, then answer this `FRACTION` of calls 500"},
			&cli.Float64Flag{Name: "reset-after", Usage: "deliver, then reset the connection of this `FRACTION` of calls"},
			&cli.DurationFlag{Name: "latency", Usage: "add `DURATION` before handling each call"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the fault draws"},
		},
		Action: func(c *cli.Context) error {
			cfg := emulator.Config{
				QuotaScale: c.Float64("quota-scale"),
				Seed:       c.Int64("seed"),
				Faults: emulator.Faults{
					TooManyRequests: c.Float64("fail-429"),
					QuotaForbidden:  c.Float64("fail-403"),
					Unavailable:     c.Float64("fail-503"),
					ErrorBefore:     c.Float64("fail-500-before"),
					ErrorAfter:      c.Float64("fail-500-after"),
					ResetAfter:      c.Float64("reset-after"),
					Latency:         c.Duration("latency"),
				},
			}
			srv, err := emulator.Listen(c.String("addr"), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "fake-server listening on %s\n  base URLs: %s/{org}/{app} and %s/app-id/{app_id}\n  stats: %s/_emulator/stats\n  stop with Ctrl-C\n",
				srv.URL, srv.URL, srv.URL, srv.URL)
			<-c.Context.Done()
			return srv.Close()
		},
	}
}

// campaignFlags are the flags that say how to read a campaign.
func campaignFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "message", Usage: "JSON `FILE` of default fields for every row"},
		&cli.StringFlag{Name: "encoding", Value: planner.UTF8, Usage: "`ENCODING` of CSV files: utf-8 or gbk"},
		&cli.Float64Flag{Name: "quota-scale", Value: 1, Usage: "multiply every default quota by `F` (for apps whose quotas were raised)"},
		&cli.StringSliceFlag{Name: "limit", Usage: "override one quota, `KIND.calls=N` or KIND.messages=N (N per the limit's window: a second, a minute for users.messages)"},
		&cli.BoolFlag{Name: "dedup-ext", Usage: "add a stable ext key per delivery, so that client apps can drop a resent duplicate"},
	}
}

// dedupExtReserve is the room --dedup-ext takes in ext: a key and a
// 32-character value.
const dedupExtReserve = 64

func openCampaign(c *cli.Context) (*planner.Campaign, planner.Quotas, error) {
	if c.NArg() == 0 {
		return nil, nil, errors.New("no campaign files: give one or more .csv or .jsonl files")
	}
	opts := planner.Options{
		Files:    c.Args().Slice(),
		Message:  c.String("message"),
		Encoding: c.String("encoding"),
	}
	if c.Bool("dedup-ext") {
		opts.ExtReserve = dedupExtReserve
	}
	quotas, err := planner.NewQuotas(c.Float64("quota-scale"), c.StringSlice("limit"))
	if err != nil {
		return nil, nil, err
	}
	camp, err := planner.Open(opts)
	return camp, quotas, err
}

func planCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "read and validate a campaign and print its plan; sends nothing",
		ArgsUsage: "CAMPAIGN...",
		Flags: append(campaignFlags(),
			&cli.BoolFlag{Name: "json", Usage: "print the plan as JSON"},
		),
		Action: func(c *cli.Context) error {
			camp, quotas, err := openCampaign(c)
			if err != nil {
				return err
			}
			plan, err := camp.Plan(c.Context, quotas)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(plan)
			}
			return plan.WriteText(c.App.Writer)
		},
	}
}
