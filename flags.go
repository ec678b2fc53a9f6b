package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/planner"
)

// campaignOptions say which files make a campaign, how to read them, and
// the quotas it is planned under (plan and run).
type campaignOptions struct {
	Files    []string
	Message  string // --message
	FilesDir string // --files
	Encoding string
	DedupExt bool
	Quotas   quotaOptions
}

// campaignFlags are the flags of campaignOptions.
func campaignFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "message", Usage: "JSON `FILE` of default fields for every row"},
		&cli.StringFlag{Name: "files", Usage: "the `DIR` the file and thumb of rows are named in and must stay inside (default: each campaign file's folder)"},
		&cli.StringFlag{Name: "encoding", Value: planner.UTF8, Usage: "`ENCODING` of CSV files: utf-8 or gbk"},
		&cli.BoolFlag{Name: "dedup-ext", Usage: "add a stable ext key per delivery, so that client apps can drop a resent duplicate"},
	}, quotaFlags()...)
}

func campaignOptionsFrom(c *cli.Context) campaignOptions {
	return campaignOptions{
		Files:    c.Args().Slice(),
		Message:  c.String("message"),
		FilesDir: c.String("files"),
		Encoding: c.String("encoding"),
		DedupExt: c.Bool("dedup-ext"),
		Quotas:   quotaOptionsFrom(c),
	}
}

// dedupExtReserve is the room --dedup-ext takes in ext: a key and a
// 32-character value.
const dedupExtReserve = 64

// open reads the --message defaults and the quotas; the campaign files are
// read by its plan.
func (o campaignOptions) open() (*planner.Campaign, chatapi.Quotas, error) {
	if len(o.Files) == 0 {
		return nil, nil, errors.New("no campaign files: give one or more .csv or .jsonl files")
	}
	opts := planner.Options{Files: o.Files, Message: o.Message, Encoding: o.Encoding, FilesDir: o.FilesDir}
	if o.DedupExt {
		opts.ExtReserve = dedupExtReserve
	}
	quotas, err := o.Quotas.quotas()
	if err != nil {
		return nil, nil, err
	}
	camp, err := planner.Open(opts)
	return camp, quotas, err
}

// quotaOptions are the app's quotas as the flags give them.
type quotaOptions struct {
	Scale  float64  // --quota-scale
	Limits []string // --limit KIND.calls=N, KIND.messages=N
}

// quotaFlags are the flags of quotaOptions.
func quotaFlags() []cli.Flag {
	return []cli.Flag{
		quotaScaleFlag(),
		&cli.StringSliceFlag{Name: "limit", Usage: "override one quota, `KIND.calls=N` or KIND.messages=N (N per the limit's window: a second, a minute for users.messages)"},
	}
}

// quotaScaleFlag is --quota-scale, of the app (run, plan, check) or of the
// emulator's app (fake-server).
func quotaScaleFlag() cli.Flag {
	return &cli.Float64Flag{Name: "quota-scale", Value: 1, Usage: "multiply every default quota by `F` (for apps whose quotas were raised)"}
}

func quotaOptionsFrom(c *cli.Context) quotaOptions {
	return quotaOptions{Scale: c.Float64("quota-scale"), Limits: c.StringSlice("limit")}
}

func (o quotaOptions) quotas() (chatapi.Quotas, error) {
	return chatapi.NewQuotas(o.Scale, o.Limits)
}

// stateFlag names the ledger file.
func stateFlag() cli.Flag {
	return &cli.StringFlag{Name: "state", Value: "imcast.db", EnvVars: []string{"IMCAST_STATE"}, Usage: "the ledger `FILE`"}
}

func openLedger(path string) (*checkpoint.Store, error) {
	if path == "" {
		return nil, errNoLedgerPath
	}
	return checkpoint.Open(path, checkpoint.Options{})
}

// readLedger opens the ledger a read command reads: one that exists.
func readLedger(path string) (*checkpoint.Store, error) {
	if path == "" {
		return nil, errNoLedgerPath
	}
	return checkpoint.Open(path, checkpoint.Options{MustExist: true})
}

var errNoLedgerPath = errors.New("no ledger: --state (or IMCAST_STATE) is empty")

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// guardOptions are the guards of a run (SPEC.md, "Guards for large
// campaigns").
type guardOptions struct {
	Canary           int64
	MaxFailureRate   float64
	Window, Timezone string
}

func guardOptionsFrom(c *cli.Context) guardOptions {
	return guardOptions{Canary: c.Int64("canary"), MaxFailureRate: c.Float64("max-failure-rate"),
		Window: c.String("window"), Timezone: c.String("timezone")}
}

// defaultMaxFailureRate is --max-failure-rate's default (SPEC.md).
const defaultMaxFailureRate = 0.2

// check refuses guards out of range; a MaxFailureRate of 0 (not given)
// is the default.
func (g *guardOptions) check() error {
	if g.Canary < 0 {
		return fmt.Errorf("--canary %d: want a number of deliveries above 0", g.Canary)
	}
	if g.MaxFailureRate == 0 {
		g.MaxFailureRate = defaultMaxFailureRate
	}
	if !(g.MaxFailureRate > 0 && g.MaxFailureRate <= 1) {
		return fmt.Errorf("--max-failure-rate %v: want a fraction above 0, at most 1 (1: never stop)", g.MaxFailureRate)
	}
	return nil
}

// window parses --window in --timezone; the zero Window without one.
func (g guardOptions) window() (planner.Window, error) {
	if g.Window == "" {
		if g.Timezone != "" {
			return planner.Window{}, fmt.Errorf("--timezone %s without --window: it is the window's time zone", g.Timezone)
		}
		return planner.Window{}, nil
	}
	return planner.ParseWindow(g.Window, g.Timezone)
}

func windowFlag() cli.Flag {
	return &cli.StringFlag{Name: "window", Usage: "send only inside the daily window `HH:MM-HH:MM` (it may wrap midnight: 22:00-06:00); started outside it, wait for it; at its close stop with exit 4"}
}

func timezoneFlag() cli.Flag {
	return &cli.StringFlag{Name: "timezone", Usage: "the IANA time `ZONE` of --window, such as Europe/Paris (default: the machine's)"}
}

// parseKinds reads --only KINDS, comma-separated; nil for none.
func parseKinds(only string) ([]chatapi.Kind, error) {
	if only == "" {
		return nil, nil
	}
	var kinds []chatapi.Kind
	for _, name := range strings.Split(only, ",") {
		k, err := chatapi.ParseKind(strings.TrimSpace(name))
		if err != nil {
			return nil, fmt.Errorf("--only: %w", err)
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}
