package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"imcast/chatapi"
	"imcast/job"
	"imcast/report"
)

// runOpts are the options of imcast run.
type runOpts struct {
	Campaign        campaignOptions
	Conn            connOptions
	Name            string // --campaign: the ledger name; "": the first file's base name
	State           string // the ledger file
	Workers         int
	ResendUncertain bool
	StallTimeout    time.Duration
	JSON, Quiet     bool
	Redis           string // a redis:// URL the app's quotas are shared through; "": none
	MetricsAddr     string // where to serve Prometheus metrics; "": nowhere
	Guards          guardOptions
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "send what the ledger has not yet recorded as sent; safe to run again at any time",
		ArgsUsage: "CAMPAIGN...",
		Description: `Sends a campaign: CSV (.csv) or JSON Lines (.jsonl) files, one or more recipients a row,
with the columns kind, to, scope, type, msg, body, file, from, ext... (the README's "Campaign
files"). A plain list of IDs under a "to" header is a campaign with --message. Flags may come
before or after the files.

Examples:
   imcast run --fake samples/mixed.jsonl                          # on the built-in emulator
   EASEMOB_TOKEN=... imcast run --host https://a1.easemob.com --org ORG --app APP \
       --state spring.db --message welcome.json ids.csv
   imcast run --state spring.db ids.csv                           # again: sends only what is left

Exit codes: 0 every delivery sent; 1 a fatal error (configuration, credentials, I/O, ledger in
use, Redis gone); 2 invalid campaign, nothing sent; 3 finished, some deliveries failed or are
uncertain (imcast report --only failed,uncertain); 4 stopped on purpose (the canary sent, the
send window closed): run again to go on; 130 interrupted: run again to go on.

Guards: --canary 20 sends 20 deliveries and stops (exit 4), to check them before the rest;
--max-failure-rate stops a run whose deliveries fail (exit 1); --window 09:00-18:00 --timezone
Europe/Paris sends only inside the window, waiting for it to open and stopping at its close.`,
		Flags: append(append(campaignFlags(), connectionFlags()...),
			&cli.StringFlag{Name: "campaign", Usage: "ledger `NAME` of the campaign (default: the first file's base name)"},
			stateFlag(),
			&cli.IntFlag{Name: "workers", Value: 8, Usage: "`N` calls at once (1 to 256)", Action: func(_ *cli.Context, n int) error {
				if n < 1 || n > 256 {
					return fmt.Errorf("--workers %d: want 1 to 256 calls at once", n)
				}
				return nil
			}},
			&cli.BoolFlag{Name: "resend-uncertain", Usage: "send again deliveries the ledger holds as uncertain (they may arrive twice)"},
			&cli.DurationFlag{Name: "stall-timeout", Value: 5 * time.Minute, Usage: "stop (exit 1) when no call has been answered, or every call refused, for `DURATION`", Action: func(_ *cli.Context, d time.Duration) error {
				if d < time.Second {
					return fmt.Errorf("--stall-timeout %v: want 1s or more (the run never hangs: there is no off)", d)
				}
				return nil
			}},
			&cli.BoolFlag{Name: "json", Usage: "print JSON events and summary instead of text"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress output"},
			&cli.StringFlag{Name: "metrics-addr", EnvVars: []string{"IMCAST_METRICS_ADDR"}, Usage: "serve Prometheus metrics of the run at http://`ADDRESS`/metrics (host:port; port 0 picks one, named in the start line)"},
			&cli.Int64Flag{Name: "canary", Action: func(_ *cli.Context, n int64) error {
				if n <= 0 {
					return fmt.Errorf("--canary %d: want a number of deliveries above 0", n)
				}
				return nil
			}, Usage: "send `N` deliveries (the first in plan order), then stop with exit 4; the next run without --canary sends the rest"},
			&cli.Float64Flag{Name: "max-failure-rate", Value: defaultMaxFailureRate, Action: func(_ *cli.Context, f float64) error {
				if !(f > 0 && f <= 1) {
					return fmt.Errorf("--max-failure-rate %v: want a fraction above 0, at most 1 (1: never stop)", f)
				}
				return nil
			}, Usage: "stop (exit 1) when more than this `FRACTION` of the last 200 answered deliveries failed or are uncertain (1: never)"},
			windowFlag(), timezoneFlag(),
			&cli.StringFlag{Name: "redis", EnvVars: []string{"IMCAST_REDIS"}, Usage: "share the app's quotas with every imcast process that names this Redis `URL` (redis://host:port/db), on any host; a URL with a password belongs in IMCAST_REDIS, which other users cannot read"},
		),
		Action: func(c *cli.Context) error {
			return runCampaign(c.Context, runOpts{
				Campaign:        campaignOptionsFrom(c),
				Conn:            connOptionsFrom(c),
				Name:            c.String("campaign"),
				State:           c.String("state"),
				Workers:         c.Int("workers"),
				ResendUncertain: c.Bool("resend-uncertain"),
				StallTimeout:    c.Duration("stall-timeout"),
				JSON:            c.Bool("json"),
				Quiet:           c.Bool("quiet"),
				Redis:           c.String("redis"),
				MetricsAddr:     c.String("metrics-addr"),
				Guards:          guardOptionsFrom(c),
			}, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// runCampaign sends what the ledger has not recorded as sent, showing its
// progress on stderr (stdout with JSON) and its summary on stdout.
func runCampaign(ctx context.Context, o runOpts, stdout, stderr io.Writer) (err error) {
	window, err := o.Guards.window()
	if err != nil {
		return err
	}
	if err := o.Guards.check(); err != nil {
		return err
	}
	store, err := openLedger(o.State)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			store.CloseUnused() // a run refused before it began leaves no ledger
		} else {
			store.Close()
		}
	}()
	camp, quotas, err := o.Campaign.open()
	if err != nil {
		return err
	}
	sender, closeSender, err := o.Conn.client(o.Campaign.Quotas.Scale)
	if err != nil {
		return err
	}
	defer closeSender()
	shared, closeShared, err := sharedQuota(ctx, o.Redis, appOf(sender.BaseURL()))
	if err != nil {
		return err
	}
	defer closeShared()
	name := o.Name
	if name == "" {
		name = camp.Name()
	}
	mode, progressOut := report.Lines, stderr
	switch {
	case o.Quiet:
		mode = report.Quiet
	case o.JSON:
		mode, progressOut = report.JSON, stdout
	case isTerminal(stderr):
		mode = report.Bar
	}
	progress := job.NewProgress(chatapi.Kinds)
	// listening before the campaign is read, a taken address fails fast
	var metrics *report.Metrics
	var metricsURL string
	if o.MetricsAddr != "" {
		metrics = &report.Metrics{Progress: progress, Quotas: quotas}
		addr, stop, err := metrics.Serve(o.MetricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		defer stop()
		metricsURL = "http://" + addr + "/metrics"
	}
	prep, err := job.PrepareCampaign(ctx, camp, store, sender, job.CampaignConfig{
		Config: job.Config{
			Workers:        o.Workers,
			Quotas:         quotas,
			DedupExt:       o.Campaign.DedupExt,
			Progress:       progress,
			Campaign:       name,
			Named:          o.Name != "",
			StallTimeout:   o.StallTimeout,
			Shared:         shared,
			MaxFailureRate: o.Guards.MaxFailureRate,
		},
		ResendUncertain: o.ResendUncertain,
		SpoolDir:        filepath.Dir(store.Path()),
		Canary:          o.Guards.Canary,
		SendWindow:      window,
		Waiting: func(until time.Time) {
			report.WriteWaiting(progressOut, mode, window.String(), until.In(window.Zone()))
		},
	})
	if err != nil {
		return err
	}
	start := report.Start{Host: sender.BaseURL(), App: appOf(sender.BaseURL()), Campaign: name,
		Ledger: store.Path(), ToSend: prep.Plan.Total.Pending, Shared: shared != nil, SharedNew: shared != nil && shared.New()}
	if metrics != nil {
		toSend := map[chatapi.Kind]int64{}
		for _, k := range prep.Plan.Kinds {
			toSend[k.Kind] = k.Pending
		}
		metrics.SetToSend(toSend)
		start.Metrics = metricsURL
	}
	report.WriteStart(progressOut, mode, start)
	stopLive := report.KeepLive(store.Path(), name, progress, prep.Plan.Kinds, time.Second)
	defer stopLive()
	stopWatch := report.Watch(progressOut, report.Watching{Mode: mode, Progress: progress, Total: prep.Plan.Total.Pending, Kinds: prep.Plan.Kinds,
		Estimate: prep.Plan.Total.Estimate, Every: 10 * time.Second})
	res, err := prep.Send(ctx)
	stopWatch()
	if err != nil && o.JSON {
		report.WriteError(stdout, errorText(err), exitCode(err) == exitFatal)
	}
	sum := report.NewSummary(name, store.Path(), res)
	write := sum.WriteText
	if o.JSON {
		write = sum.WriteJSON
	}
	if werr := write(stdout); werr != nil && err == nil {
		err = werr
	}
	if err == nil && !sum.Complete {
		err = errIncomplete
	}
	return err
}

// sharedQuota connects to the Redis at url, if any, and checks it answers:
// a run that was told to share its quotas never runs unshared.
func sharedQuota(ctx context.Context, url, app string) (*job.SharedQuota, func(), error) {
	if url == "" {
		return nil, func() {}, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		// the parser's errors quote the URL, password and all
		return nil, nil, errors.New("--redis: not a valid Redis URL: want redis://[:PASSWORD@]HOST:PORT[/DB], the password percent-encoded")
	}
	redis.SetLogger(quietRedis{})
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("--redis %s: %w", opts.Addr, err)
	}
	shared, err := job.NewSharedQuota(pctx, rdb, app)
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return shared, func() { rdb.Close() }, nil
}

// appOf names the app of a base URL for the shared windows: its org and
// app, or its app ID, whichever host name reaches it (localhost or
// 127.0.0.1, one cluster's two names), so every job on the app shares.
func appOf(base string) string {
	if u, err := neturl.Parse(base); err == nil && u.Path != "" {
		return strings.ToLower(strings.TrimSuffix(u.Path, "/"))
	}
	return base
}

// quietRedis keeps go-redis's own log lines (every failed dial) off the
// run's output: its errors reach the run, which says them once.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
