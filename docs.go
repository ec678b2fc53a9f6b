package main

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// completionFlag is what urfave/cli answers with the words that may come
// next (EnableBashCompletion); the scripts completion prints call it.
const completionFlag = "--generate-bash-completion"

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash or zsh (e.g. source <(imcast completion bash))",
		ArgsUsage: "bash|zsh",
		Action: func(c *cli.Context) error {
			return completion(c.Context, c.Args().First(), c.App.Writer)
		},
	}
}

// bashCompletion completes commands and flags by asking imcast itself,
// and file names otherwise.
const bashCompletion = `_imcast_complete() {
    local cur ask words
    cur="${COMP_WORDS[COMP_CWORD]}"
    # a flag begun: ask for them all (a part of one does not parse), and
    # let compgen pick
    ask=()
    [[ "$cur" == -* ]] && ask=(-)
    words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "${ask[@]}" ` + completionFlag + ` 2>/dev/null)
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -o bashdefault -F _imcast_complete imcast
`

func completion(_ context.Context, shell string, stdout io.Writer) error {
	switch shell {
	case "bash":
		_, err := io.WriteString(stdout, bashCompletion)
		return err
	case "zsh":
		_, err := io.WriteString(stdout, "autoload -U +X bashcompinit && bashcompinit\n"+bashCompletion)
		return err
	}
	return fmt.Errorf("completion %q: want bash or zsh", shell)
}

func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page, from the commands and flags (e.g. imcast man > imcast.1; man ./imcast.1)",
		Action: func(c *cli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			_, err = io.WriteString(c.App.Writer, page)
			return err
		},
	}
}
