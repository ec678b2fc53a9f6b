// Command imcast broadcasts IM messages through the Easemob / Agora Chat
// message-send REST API. This file holds the app: its commands (one file
// each, each an options struct filled from the flags and a plain function
// of them), the signals, and the one switch from errors to exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

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
	exitStopped     = 4
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
	os.Exit(run(signalContext(os.Stderr), os.Args, os.Stdout, os.Stderr))
}

// signalContext is canceled by the first SIGINT or SIGTERM, which stops
// dispatching and lets the calls in flight be recorded; a second one
// exits at once. One channel takes both, so no signal between them falls
// to Go's default handling.
func signalContext(stderr io.Writer) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(stderr, report.Stamp(time.Now())+" imcast: interrupted: stopping once the calls in flight are answered and recorded; interrupt again to exit at once")
		cancel()
		<-sigs
		fmt.Fprintln(stderr, report.Stamp(time.Now())+" imcast: interrupted again, exiting now")
		os.Exit(exitInterrupted)
	}()
	return ctx
}

// run executes the CLI with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	words, err := flagsFirst(app, args)
	if err == nil {
		err = app.RunContext(ctx, words)
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "%s imcast: %s\n", report.Stamp(time.Now()), errorText(err))
	return exitCode(err)
}

// errorText is what the user is told of the error that ended a command,
// secrets scrubbed.
func errorText(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted: the calls in flight were answered and recorded; run again to go on"
	}
	return redact(err.Error())
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
	case errors.Is(err, job.ErrStopped):
		return exitStopped
	}
	return exitFatal
}

// version is the module's version and the commit it was built from, as
// the Go toolchain recorded them in the binary.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev != "" {
		v += " (commit " + rev + dirty + ")"
	}
	return v
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "imcast",
		Usage:     "broadcast IM messages to users, groups and chat rooms, once each",
		Version:   version(),
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
			resolveCommand(),
			recallCommand(),
			fakeServerCommand(),
			completionCommand(),
			manCommand(),
		},
		EnableBashCompletion: true,
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = usageError
		if cmd.ArgsUsage == "" {
			cmd.Before = noWords
		}
	}
	return app
}

// usageError words a flag the command could not parse in one line,
// naming it as it is written (--canary, where Go's flag package says
// -canary), instead of the command's whole help.
func usageError(c *cli.Context, err error, _ bool) error {
	msg := singleDash.ReplaceAllString(err.Error(), "$1 --$2")
	return fmt.Errorf("%s %s: %s (imcast %s --help lists the flags)", c.App.Name, c.Command.Name, msg, c.Command.Name)
}

// singleDash finds a flag as Go's flag package names it in its errors
// ("flag -canary", "not defined: -nope").
var singleDash = regexp.MustCompile(`(flag|:) -([a-zA-Z][\w-]*)`)

// noWords refuses words after a command that takes no files: a value
// meant for a boolean flag (recall --force false) or a file given to the
// wrong command would be dropped unseen.
func noWords(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("%s %s takes no files or words, but was given %q (a boolean flag takes no value; write --force=false)", c.App.Name, c.Command.Name, c.Args().Slice())
	}
	return nil
}
