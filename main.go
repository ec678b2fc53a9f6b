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
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/emulator"
	"imcast/job"
	"imcast/planner"
	"imcast/report"
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
	go func() {
		// The first signal stops dispatching and lets calls in flight be
		// recorded; a second one exits at once.
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		fmt.Fprintln(os.Stderr, "imcast: interrupted again, exiting now")
		os.Exit(exitInterrupted)
	}()
	os.Exit(run(ctx, os.Args, os.Stdout, os.Stderr))
}

// run executes the CLI with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "imcast: %s\n", redact(err.Error()))
	return exitCode(err)
}

// exitCode maps an error to the exit code SPEC.md gives it.
func exitCode(err error) int {
	var invalid *planner.InvalidError
	var elsewhere *job.SentElsewhereError
	switch {
	case errors.As(err, &invalid), errors.As(err, &elsewhere):
		return exitInvalid
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, errIncomplete):
		return exitIncomplete
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
			runCommand(),
			checkCommand(),
			statusCommand(),
			reportCommand(),
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
			"Any non-empty bearer token is accepted, and POST /token issues tokens for any client credentials. " +
			"Statistics: GET /_emulator/stats.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8765", Usage: "loopback `ADDRESS` to listen on"},
			&cli.Float64Flag{Name: "quota-scale", Value: 1, Usage: "multiply every default quota by `F`"},
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
			&cli.DurationFlag{Name: "token-ttl", Usage: "lifetime of the app tokens POST /token issues (default 24h)"},
		},
		Action: func(c *cli.Context) error {
			latency, jitter, err := parseLatency(c.String("latency"))
			if err != nil {
				return err
			}
			cfg := emulator.Config{
				QuotaScale: c.Float64("quota-scale"),
				Seed:       c.Int64("seed"),
				TokenTTL:   c.Duration("token-ttl"),
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
			}
			if err := cfg.Faults.Validate(); err != nil {
				return err
			}
			srv, err := emulator.Listen(c.String("addr"), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "fake-server listening on %s\n  base URLs: %s/{org}/{app} and %s/app-id/{app_id}\n  stats: %s/_emulator/stats\n  redirects point to the trap %s\n  stop with Ctrl-C\n",
				srv.URL, srv.URL, srv.URL, srv.URL, srv.TrapURL)
			<-c.Context.Done()
			return srv.Close()
		},
	}
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

// campaignFlags are the flags that say how to read a campaign.
func campaignFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "message", Usage: "JSON `FILE` of default fields for every row"},
		&cli.StringFlag{Name: "files", Usage: "the `DIR` the file and thumb of rows are named in and must stay inside (default: each campaign file's folder)"},
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
		FilesDir: c.String("files"),
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

// errIncomplete ends a run that finished with deliveries failed or
// uncertain (exit code 3).
var errIncomplete = errors.New("finished, but some deliveries failed or are uncertain")

// connectionFlags say where the API is and how to authenticate. The
// credentials come from the environment or a file, never from a flag.
func connectionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "host", EnvVars: []string{"EASEMOB_HOST"}, Usage: "API base `URL`, e.g. https://a1.easemob.com (http:// only to loopback)"},
		&cli.StringFlag{Name: "org", EnvVars: []string{"EASEMOB_ORG"}, Usage: "org `NAME` of the /{org}/{app} URL flavour"},
		&cli.StringFlag{Name: "app", EnvVars: []string{"EASEMOB_APP"}, Usage: "app `NAME` of the /{org}/{app} URL flavour"},
		&cli.StringFlag{Name: "app-id", EnvVars: []string{"EASEMOB_APP_ID"}, Usage: "`ID` of the /app-id/{app_id} URL flavour"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"EASEMOB_TOKEN_FILE"}, Usage: "read the app token from `FILE` (else EASEMOB_TOKEN, else EASEMOB_CLIENT_ID and EASEMOB_CLIENT_SECRET)"},
		&cli.BoolFlag{Name: "fake", Usage: "use an emulator started in-process on 127.0.0.1, not the service"},
	}
}

func stateFlag() cli.Flag {
	return &cli.StringFlag{Name: "state", Value: "imcast.db", EnvVars: []string{"IMCAST_STATE"}, Usage: "the ledger `FILE`"}
}

func openLedger(c *cli.Context) (*checkpoint.Store, error) {
	return checkpoint.Open(c.String("state"), checkpoint.Options{})
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "send what the ledger has not yet recorded as sent; safe to run again at any time",
		ArgsUsage: "CAMPAIGN...",
		Flags: append(append(campaignFlags(), connectionFlags()...),
			&cli.StringFlag{Name: "campaign", Usage: "ledger `NAME` of the campaign (default: the first file's base name)"},
			stateFlag(),
			&cli.IntFlag{Name: "workers", Value: 8, Usage: "`N` calls at once"},
			&cli.BoolFlag{Name: "resend-uncertain", Usage: "send again deliveries the ledger holds as uncertain (they may arrive twice)"},
			&cli.DurationFlag{Name: "stall-timeout", Value: 5 * time.Minute, Usage: "stop (exit 1) when no call has been answered for `DURATION`"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON events and summary instead of text"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
		),
		Action: func(c *cli.Context) error {
			store, err := openLedger(c)
			if err != nil {
				return err
			}
			defer store.Close()
			camp, quotas, err := openCampaign(c)
			if err != nil {
				return err
			}
			sender, closeSender, err := newSender(c)
			if err != nil {
				return err
			}
			defer closeSender()
			name := c.String("campaign")
			if name == "" {
				name = camp.Name()
			}
			mode := report.Lines
			switch {
			case c.Bool("quiet"):
				mode = report.Quiet
			case c.Bool("json"):
				mode = report.JSON
			case isTerminal(c.App.ErrWriter):
				mode = report.Bar
			}
			progressOut := c.App.ErrWriter
			if mode == report.JSON {
				progressOut = c.App.Writer
			}
			progress := job.NewProgress(chatapi.Kinds)
			var stopWatch func()
			res, err := job.RunCampaign(c.Context, camp, store, sender, job.CampaignConfig{
				Config: job.Config{
					Workers:      c.Int("workers"),
					Quotas:       quotas,
					DedupExt:     c.Bool("dedup-ext"),
					Progress:     progress,
					Campaign:     name,
					Named:        c.String("campaign") != "",
					StallTimeout: c.Duration("stall-timeout"),
				},
				ResendUncertain: c.Bool("resend-uncertain"),
				SpoolDir:        filepath.Dir(store.Path()),
				Started: func(p *planner.Plan) {
					stopWatch = report.Watch(progressOut, mode, progress, p.Total.Pending, 10*time.Second)
				},
			})
			if stopWatch != nil {
				stopWatch()
			}
			if res == nil {
				return err
			}
			sum := report.NewSummary(name, res)
			if c.Bool("json") {
				if werr := sum.WriteJSON(c.App.Writer); werr != nil && err == nil {
					err = werr
				}
			} else if werr := sum.WriteText(c.App.Writer); werr != nil && err == nil {
				err = werr
			}
			if err == nil && !sum.Complete {
				err = errIncomplete
			}
			return err
		},
	}
}

// newSender builds the API client from the connection flags, or starts the
// in-process emulator for --fake.
func newSender(c *cli.Context) (*chatapi.Client, func(), error) {
	cfg := chatapi.Config{Host: c.String("host"), Org: c.String("org"), App: c.String("app"), AppID: c.String("app-id")}
	closer := func() {}
	if c.Bool("fake") {
		srv, err := emulator.Listen("127.0.0.1:0", emulator.Config{QuotaScale: c.Float64("quota-scale")})
		if err != nil {
			return nil, nil, err
		}
		cfg = chatapi.Config{Host: srv.URL, Org: "fake", App: "imcast", Tokens: chatapi.StaticToken("fake")}
		closer = func() { srv.Close() }
	} else if err := credentials(c.String("token-file"), &cfg); err != nil {
		return nil, nil, err
	}
	client, err := chatapi.New(cfg)
	if err != nil {
		closer()
		return nil, nil, err
	}
	return client, func() {
		// Idle keep-alive connections would hold up the emulator's
		// shutdown.
		client.CloseIdleConnections()
		closer()
	}, nil
}

// credentials sets how cfg gets the app token: from --token-file, else
// EASEMOB_TOKEN, else by fetching it with EASEMOB_CLIENT_ID and
// EASEMOB_CLIENT_SECRET. A secret is never a flag's value, which other
// users of the machine can read.
func credentials(tokenFile string, cfg *chatapi.Config) error {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return fmt.Errorf("token file %s is empty", tokenFile)
		}
		if !tokenText(t) {
			return fmt.Errorf("token file %s holds more than one token: spaces, new lines or control characters", tokenFile)
		}
		cfg.Tokens = chatapi.StaticToken(t)
		return nil
	}
	if t := strings.TrimSpace(os.Getenv("EASEMOB_TOKEN")); t != "" {
		if !tokenText(t) {
			return errors.New("EASEMOB_TOKEN holds spaces, new lines or control characters: not a token")
		}
		cfg.Tokens = chatapi.StaticToken(t)
		return nil
	}
	id, secret := os.Getenv("EASEMOB_CLIENT_ID"), os.Getenv("EASEMOB_CLIENT_SECRET")
	switch {
	case id != "" && secret != "":
		cfg.ClientID, cfg.ClientSecret = id, secret
		return nil
	case id != "" || secret != "":
		return errors.New("client credentials need both EASEMOB_CLIENT_ID and EASEMOB_CLIENT_SECRET")
	}
	return errors.New("no credentials: set EASEMOB_TOKEN, or EASEMOB_CLIENT_ID and EASEMOB_CLIENT_SECRET, or give --token-file (or use --fake)")
}

// tokenText reports whether t can be a bearer token: printable ASCII
// without spaces, as an Authorization header carries it.
func tokenText(t string) bool {
	for _, r := range t {
		if r <= ' ' || r >= 0x7f {
			return false
		}
	}
	return true
}

// redact blots the secrets of the environment out of a message, should one
// have slipped into an error.
func redact(msg string) string {
	for _, name := range []string{"EASEMOB_TOKEN", "EASEMOB_CLIENT_SECRET"} {
		if v := strings.TrimSpace(os.Getenv(name)); len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	return msg
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "count each campaign's deliveries in the ledger: sent, failed, uncertain, pending",
		Flags: []cli.Flag{stateFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON lines"}},
		Action: func(c *cli.Context) error {
			store, err := openLedger(c)
			if err != nil {
				return err
			}
			defer store.Close()
			statuses, err := report.Status(store)
			if err != nil {
				return err
			}
			return report.WriteStatus(c.App.Writer, statuses, c.Bool("json"))
		},
	}
}

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "one row per delivery in the ledger; run accepts the file back as a campaign",
		Flags: []cli.Flag{
			stateFlag(),
			&cli.StringFlag{Name: "campaign", Usage: "only this campaign `NAME`"},
			&cli.StringFlag{Name: "format", Value: report.CSV, Usage: "`FORMAT`: csv or jsonl"},
			&cli.StringFlag{Name: "only", Usage: "only these `STATES`, comma-separated: sent, failed, uncertain, pending"},
			&cli.StringFlag{Name: "out", Usage: "write to `FILE` instead of stdout"},
		},
		Action: func(c *cli.Context) error {
			opts := report.DeliveriesOptions{Format: c.String("format")}
			if name := c.String("campaign"); name != "" {
				opts.Campaigns = []string{name}
			}
			if only := c.String("only"); only != "" {
				for _, name := range strings.Split(only, ",") {
					st, err := checkpoint.ParseState(strings.TrimSpace(name))
					if err != nil {
						return err
					}
					opts.Only = append(opts.Only, st)
				}
			}
			store, err := openLedger(c)
			if err != nil {
				return err
			}
			defer store.Close()
			out := c.App.Writer
			if path := c.String("out"); path != "" {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				out = f
				if err := report.WriteDeliveries(out, store, opts); err != nil {
					return err
				}
				return f.Close()
			}
			return report.WriteDeliveries(out, store, opts)
		},
	}
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check the connection: fetch the app token and print the base URL and the quotas in force; sends no message",
		Flags: append(connectionFlags(),
			&cli.Float64Flag{Name: "quota-scale", Value: 1, Usage: "multiply every default quota by `F`"},
			&cli.StringSliceFlag{Name: "limit", Usage: "override one quota, `KIND.calls=N` or KIND.messages=N"},
		),
		Action: func(c *cli.Context) error {
			quotas, err := planner.NewQuotas(c.Float64("quota-scale"), c.StringSlice("limit"))
			if err != nil {
				return err
			}
			client, closeClient, err := newSender(c)
			if err != nil {
				return err
			}
			defer closeClient()
			fetched, info, err := client.CheckToken(c.Context)
			if err != nil {
				return err
			}
			return report.WriteCheck(c.App.Writer, report.Check{BaseURL: client.BaseURL(), Fetched: fetched, Token: info, Quotas: quotas})
		},
	}
}
