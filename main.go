// Command imcast broadcasts IM messages through the Easemob / Agora Chat
// message-send REST API. This file only turns flags and environment into
// config structs, calls the packages, and picks the exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"imcast/emulator"
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
	switch {
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
