package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst moves the flags of a command that come after its files to
// before them, as SPEC.md has it (`imcast run a.csv --state x.db` is
// `imcast run --state x.db a.csv`): urfave/cli, like Go's flag package,
// takes everything after the first file as files. A flag's value goes
// with it; `--` ends the flags, and what follows stays files, in order.
// A flag that takes a value and has none is an error: one that comes
// last (the reordered words would give it the `--`), one followed by
// another flag or a dash (`--state --quiet` would name a ledger
// "--quiet"; a number such as -3 is a value, and `--state=-x` says so),
// and an empty one (`--window=` would run with no window). Help asked
// anywhere is help.
func flagsFirst(app *cli.App, args []string) ([]string, error) {
	if len(args) > 0 && args[len(args)-1] == completionFlag {
		return args, nil // asked what may come next: the words as typed
	}
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++ // the app's own flags (--help, --version)
	}
	if i >= len(args) {
		return args, nil
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args, nil
	}
	head := args[:i+1]
	var flags, files []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			files = append(files, rest[j+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			files = append(files, a)
			continue
		}
		flags = append(flags, a)
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			return append(append([]string{}, head...), "--help"), nil
		}
		if !takesValue(cmd, name) {
			continue
		}
		value, explicit := "", inline
		if explicit {
			_, value, _ = strings.Cut(a, "=")
		} else if j+1 < len(rest) && !looksLikeFlag(rest[j+1]) {
			j++
			value = rest[j]
			explicit = true
		}
		flag := strings.TrimSuffix(a, "=")
		if !explicit || value == "" {
			what := "needs a value"
			if !explicit && j+1 < len(rest) {
				what += fmt.Sprintf(" (it is followed by %s; write %s=%s if that is its value)", rest[j+1], a, rest[j+1])
			}
			return nil, fmt.Errorf("%s %s: flag %s %s", app.Name, cmd.Name, flag, what)
		}
		if isInt(cmd, name) {
			// Go's flag package reads 010 as octal 8 and 0x10 as 16:
			// a count is written in decimal
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s %s: flag %s %s: want a whole number", app.Name, cmd.Name, flag, value)
			}
			value = strconv.FormatInt(n, 10)
		}
		if inline {
			flags[len(flags)-1], _, _ = strings.Cut(a, "=")
			flags[len(flags)-1] += "=" + value
		} else {
			flags = append(flags, value)
		}
	}
	out := append(append([]string{}, head...), flags...)
	if len(files) > 0 {
		out = append(append(out, "--"), files...)
	}
	return out, nil
}

// looksLikeFlag reports whether a word after a value flag is a flag (or
// the `--` or `-` of a shell line) rather than the flag's value: it
// starts with a dash and is not a number.
func looksLikeFlag(w string) bool {
	if !strings.HasPrefix(w, "-") {
		return false
	}
	_, err := strconv.ParseFloat(w, 64)
	return err != nil
}

// isInt reports whether the command's flag name takes a whole number.
func isInt(cmd *cli.Command, name string) bool {
	f := flagNamed(cmd, name)
	switch f.(type) {
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		return true
	}
	return false
}

// takesValue reports whether the command's flag name takes a value (all
// but the boolean ones do).
func takesValue(cmd *cli.Command, name string) bool {
	v, ok := flagNamed(cmd, name).(cli.DocGenerationFlag)
	return ok && v.TakesValue()
}

// flagNamed is the command's flag called name, or nil.
func flagNamed(cmd *cli.Command, name string) cli.Flag {
	for _, f := range cmd.Flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}
