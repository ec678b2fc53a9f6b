package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"imcast/emulator"
)

func fakeServerCommand() *cli.Command {
	return &cli.Command{
		Name:  "fake-server",
		Usage: "serve an emulator of the message-send API on loopback",
		Description: "Enforces the documented per-call caps, request validation and quotas " +
			"(sliding 1 s and 60 s windows), records every delivery and counts duplicates. " +
			"Any non-empty bearer token is accepted, and POST /token issues tokens for any client credentials. " +
			"Statistics: GET /_emulator/stats.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8765", Usage: "loopback `ADDRESS` to listen on"},
			quotaScaleFlag(),
			&cli.Float64Flag{Name: "fail-429", Usage: "answer this `FRACTION` of calls 429 without delivering"},
			&cli.Float64Flag{Name: "fail-403", Usage: "answer this `FRACTION` of calls 403 \"message send reach limit\" without delivering"},
			&cli.Float64Flag{Name: "fail-503", Usage: "answer this `FRACTION` of calls 503 without delivering"},
			&cli.Float64Flag{Name: "fail-500-before", Usage: "answer this `FRACTION` of calls 500 without delivering"},
			&cli.Float64Flag{Name: "fail-500-after", Usage: "deliver, then answer this `FRACTION` of calls 500"},
			&cli.Float64Flag{Name: "reset-after", Usage: "deliver, then reset the connection of this `FRACTION` of calls"},
			&cli.Float64Flag{Name: "answer-201", Usage: "deliver, then answer this `FRACTION` of calls 201"},
			&cli.Float64Flag{Name: "answer-202", Usage: "deliver, then answer this `FRACTION` of calls 202"},
			&cli.Float64Flag{Name: "answer-204", Usage: "deliver, then answer this `FRACTION` of calls 204 with no body"},
			&cli.Float64Flag{Name: "partial", Usage: "deliver, then leave some recipients out of the data of this `FRACTION` of answers"},
			&cli.Float64Flag{Name: "partial-deliver", Usage: "deliver to only some recipients of this `FRACTION` of calls, naming those"},
			&cli.Float64Flag{Name: "redirect", Usage: "answer this `FRACTION` of calls with a redirect to a trap listener"},
			&cli.Float64Flag{Name: "token-redirect", Usage: "answer this `FRACTION` of POST /token with a redirect to a trap listener"},
			&cli.Float64Flag{Name: "stall-after", Usage: "deliver, then never answer this `FRACTION` of calls"},
			&cli.StringFlag{Name: "latency", Usage: "answer each call `DURATION` after it arrived (it is counted on arrival), or a range drawn per call: 5ms-60ms"},
			&cli.DurationFlag{Name: "latency-jitter", Usage: "add a random delay of up to `DURATION`, drawn per call, to the latency"},
			&cli.DurationFlag{Name: "retry-after", Usage: "the Retry-After of 429 and 503 answers, `DURATION` in whole seconds (default 1s)"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the fault draws"},
			&cli.DurationFlag{Name: "recall-window", Usage: "how long after its sending a message may be recalled without force (default 2m)"},
			&cli.Float64Flag{Name: "recall-quota-scale", Usage: "multiply the recall quota (100 calls/s) by `F` instead of --quota-scale"},
			&cli.BoolFlag{Name: "no-recall", Usage: "answer every recall 403: the app's recall service is not enabled"},
			&cli.BoolFlag{Name: "recall-refuses-whole", Usage: "answer a batch_recall naming a message it may not recall with that message's 403, recalling none, as msg_recall answers"},
			&cli.DurationFlag{Name: "token-ttl", Usage: "lifetime of the app tokens POST /token issues (default 24h)"},
		},
		Action: func(c *cli.Context) error {
			latency, jitter, err := parseLatency(c.String("latency"))
			if err != nil {
				return err
			}
			return fakeServer(c.Context, fakeServerOpts{Addr: c.String("addr"), Config: emulator.Config{
				QuotaScale:         c.Float64("quota-scale"),
				Seed:               c.Int64("seed"),
				TokenTTL:           c.Duration("token-ttl"),
				RecallWindow:       c.Duration("recall-window"),
				RecallQuotaScale:   c.Float64("recall-quota-scale"),
				NoRecall:           c.Bool("no-recall"),
				RecallRefusesWhole: c.Bool("recall-refuses-whole"),
				Faults: emulator.Faults{
					TooManyRequests: c.Float64("fail-429"),
					QuotaForbidden:  c.Float64("fail-403"),
					Unavailable:     c.Float64("fail-503"),
					ErrorBefore:     c.Float64("fail-500-before"),
					ErrorAfter:      c.Float64("fail-500-after"),
					ResetAfter:      c.Float64("reset-after"),
					Created:         c.Float64("answer-201"),
					Accepted202:     c.Float64("answer-202"),
					NoContent:       c.Float64("answer-204"),
					Partial:         c.Float64("partial"),
					PartialDeliver:  c.Float64("partial-deliver"),
					Redirect:        c.Float64("redirect"),
					TokenRedirect:   c.Float64("token-redirect"),
					StallAfter:      c.Float64("stall-after"),
					Latency:         latency,
					LatencyJitter:   jitter + c.Duration("latency-jitter"),
					RetryAfter:      c.Duration("retry-after"),
				},
			}}, c.App.ErrWriter)
		},
	}
}

// fakeServerOpts are the options of imcast fake-server.
type fakeServerOpts struct {
	Addr   string // a loopback address
	Config emulator.Config
}

// fakeServer serves the emulator until ctx ends.
func fakeServer(ctx context.Context, o fakeServerOpts, stderr io.Writer) error {
	if err := o.Config.Faults.Validate(); err != nil {
		return err
	}
	srv, err := emulator.Listen(o.Addr, o.Config)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "fake-server listening on %s\n  base URLs: %s/{org}/{app} and %s/app-id/{app_id}\n  stats: %s/_emulator/stats\n  redirects point to the trap %s\n  stop with Ctrl-C\n",
		srv.URL, srv.URL, srv.URL, srv.URL, srv.TrapURL)
	<-ctx.Done()
	return srv.Close()
}

// parseLatency reads --latency: a duration, or a range LOW-HIGH whose
// draws are uniform.
func parseLatency(s string) (base, jitter time.Duration, err error) {
	if s == "" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if base, err = time.ParseDuration(lo); err != nil {
		return 0, 0, fmt.Errorf("--latency %q: %w", s, err)
	}
	if isRange {
		top, err := time.ParseDuration(hi)
		if err != nil || top < base {
			return 0, 0, fmt.Errorf("--latency %q: want DURATION or LOW-HIGH with LOW <= HIGH", s)
		}
		jitter = top - base
	}
	return base, jitter, nil
}
