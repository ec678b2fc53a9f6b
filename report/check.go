package report

import (
	"fmt"
	"io"
	"text/tabwriter"

	"imcast/chatapi"
)

// Check is what imcast check found.
type Check struct {
	BaseURL string
	Fetched bool // the token was fetched with client credentials; else it was given
	Token   chatapi.TokenInfo
	Recall  bool // the app's recall service is enabled
	Quotas  chatapi.Quotas
}

// WriteCheck prints a check: the base URL, the token, the quotas in force.
func WriteCheck(w io.Writer, c Check) error {
	fmt.Fprintf(w, "base URL: %s\n", c.BaseURL)
	switch {
	case !c.Fetched:
		fmt.Fprintln(w, "app token: given (EASEMOB_TOKEN or --token-file)")
	case c.Token.ExpiresIn > 0:
		fmt.Fprintf(w, "app token: fetched with the client credentials, valid for %s (renewed at half of that)\n", c.Token.ExpiresIn)
	default:
		fmt.Fprintln(w, "app token: fetched with the client credentials, with no expiry")
	}
	fmt.Fprintln(w, "host: accepted the app and the token (a recall naming no message, which changes nothing)")
	if !c.Recall {
		fmt.Fprintln(w, "recall: the app's recall service is not enabled (imcast recall will be refused; enable it in the console)")
	}
	fmt.Fprintln(w, "\nquotas in force (the defaults of the docs, times --quota-scale, with --limit overrides):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tcalls\tmessages\tper call\t")
	for _, k := range chatapi.Kinds {
		q := c.Quotas[k]
		msgs := "-"
		if q.Messages.N > 0 {
			msgs = fmt.Sprintf("%d/%s", q.Messages.N, q.Messages.Window)
		}
		fmt.Fprintf(tw, "%s\t%d/%s\t%s\t%d\t\n", k, q.Calls.N, q.Calls.Window, msgs, k.MaxPerCall())
	}
	return tw.Flush()
}
