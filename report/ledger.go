package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"imcast/chatapi"
	"imcast/checkpoint"
	"imcast/job"
	"imcast/planner"
)

// CampaignStatus counts one campaign's deliveries by state.
type CampaignStatus struct {
	Campaign  string `json:"campaign"`
	Planned   int64  `json:"planned"` // deliveries in the campaign's latest run plan
	Sent      int64  `json:"sent"`
	Failed    int64  `json:"failed"`
	Uncertain int64  `json:"uncertain"`
	Pending   int64  `json:"pending"` // not sent yet: never tried, or refused and waiting
	// Resolved are the sent and failed ones the operator settled from
	// uncertain (imcast resolve)
	Resolved int64 `json:"resolved"`
	// after imcast recall: the sent ones recalled, and those not
	// (imcast report says why)
	Recalled    int64 `json:"recalled"`
	NotRecalled int64 `json:"not_recalled"`
	// asked in a recall that stopped before its answer (killed, or a
	// call refused as a whole): the next recall asks again
	RecallInFlight int64 `json:"recall_in_flight"`
}

// Status counts the deliveries of every campaign in the ledger.
func Status(store *checkpoint.Store) ([]CampaignStatus, error) {
	names, err := store.Campaigns()
	if err != nil {
		return nil, err
	}
	var out []CampaignStatus
	for _, name := range names {
		c := store.Campaign(name)
		// one look at each delivery's latest record: its state, and
		// whether the operator settled it
		var count [checkpoint.Uncertain + 1]int64
		var held, resolved, recalled, notRecalled, inFlight, noID int64
		err := c.EachDelivery(func(d checkpoint.Delivery) error {
			count[d.State]++
			held++
			if d.Resolved() {
				resolved++
			}
			switch d.Recall.State {
			case checkpoint.Recalled:
				recalled++
			case checkpoint.NotRecalled:
				notRecalled++
			case checkpoint.RecallInFlight:
				inFlight++
			case checkpoint.RecallNone:
				if d.State == checkpoint.Sent && !job.HasRecallID(d) {
					noID++ // no recall can name it
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("campaign %s: %w", name, err)
		}
		planned, err := c.Planned()
		if err != nil {
			return nil, fmt.Errorf("campaign %s: %w", name, err)
		}
		// the plan counts the files' deliveries; the ledger may hold more
		// (an earlier version of the files, a report fed back)
		planned = max(planned, held)
		if recalled+notRecalled+inFlight > 0 {
			// recalled: what it could not recall is not
			notRecalled += noID
		}
		s := CampaignStatus{Campaign: name, Planned: planned, Resolved: resolved, Recalled: recalled, NotRecalled: notRecalled, RecallInFlight: inFlight,
			Sent: count[checkpoint.Sent], Failed: count[checkpoint.Failed], Uncertain: count[checkpoint.Uncertain]}
		// never tried, plus refused and waiting for another call
		s.Pending = max(0, planned-s.Sent-s.Failed-s.Uncertain-count[checkpoint.Pending]) + count[checkpoint.Pending]
		out = append(out, s)
	}
	return out, nil
}

// WriteStatus prints statuses as a table, or as JSON lines.
func WriteStatus(w io.Writer, statuses []CampaignStatus, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, s := range statuses {
			if err := enc.Encode(s); err != nil {
				return err
			}
		}
		return nil
	}
	if len(statuses) == 0 {
		_, err := fmt.Fprintln(w, "the ledger holds no campaign")
		return err
	}
	recalls := slices.ContainsFunc(statuses, func(s CampaignStatus) bool { return s.Recalled+s.NotRecalled+s.RecallInFlight > 0 })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "campaign\tplanned\tsent\tfailed\tuncertain\tpending\tresolved\t"
	if recalls {
		head += "recalled\tnot recalled\trecall in flight\t"
	}
	fmt.Fprintln(tw, head)
	for _, s := range statuses {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t", s.Campaign, s.Planned, s.Sent, s.Failed, s.Uncertain, s.Pending, s.Resolved)
		if recalls {
			fmt.Fprintf(tw, "%d\t%d\t%d\t", s.Recalled, s.NotRecalled, s.RecallInFlight)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// Formats of a deliveries report.
const (
	CSV   = "csv"
	JSONL = "jsonl"
)

// Columns of a deliveries report: the delivery, then its message, in the
// keys of a campaign file (planner's table of them), so that the report
// can be fed back to run. deliveryValues gives the delivery's, in order.
var deliveryColumns, messageColumns = planner.ReportColumns()

// DeliveriesOptions choose what a deliveries report holds.
type DeliveriesOptions struct {
	Campaigns []string           // nil: every campaign
	Only      []checkpoint.State // nil: every state
	Format    string             // CSV (default) or JSONL
}

// WriteDeliveries writes one row per delivery the ledger holds.
func WriteDeliveries(w io.Writer, store *checkpoint.Store, opts DeliveriesOptions) error {
	names := opts.Campaigns
	if names == nil {
		var err error
		if names, err = store.Campaigns(); err != nil {
			return err
		}
	}
	var out rowWriter
	switch opts.Format {
	case "", CSV:
		out = newCSVRows(w)
	case JSONL:
		out = &jsonRows{enc: json.NewEncoder(w)}
	default:
		return fmt.Errorf("report format %q: want csv or jsonl", opts.Format)
	}
	for _, name := range names {
		c := store.Campaign(name)
		marks, err := c.Recalls()
		if err != nil {
			return err
		}
		messages := map[[32]byte]map[string]json.RawMessage{}
		err = c.EachDelivery(func(d checkpoint.Delivery) error {
			if opts.Only != nil && !slices.Contains(opts.Only, d.State) {
				return nil
			}
			if len(marks) > 0 && d.State == checkpoint.Sent && d.Recall.State == checkpoint.RecallNone && !job.HasRecallID(d) {
				// recalled, but for what no recall can name
				d.Recall = checkpoint.RecallMark{State: checkpoint.NotRecalled, Reason: job.ReasonNoID}
			}
			msg, ok := messages[d.Digest]
			if !ok {
				raw, err := c.Message(d.Digest)
				if err != nil {
					return err
				}
				msg = map[string]json.RawMessage{}
				if raw != nil {
					if err := json.Unmarshal(raw, &msg); err != nil {
						return fmt.Errorf("campaign %s: message %x: %w", name, d.Digest[:8], err)
					}
				}
				messages[d.Digest] = msg
			}
			return out.write(name, d, msg)
		})
		if err != nil {
			return err
		}
	}
	return out.flush()
}

type rowWriter interface {
	write(campaign string, d checkpoint.Delivery, msg map[string]json.RawMessage) error
	flush() error
}

// deliveryValue is a delivery's value of each delivery column.
var deliveryValue = map[string]func(campaign string, d checkpoint.Delivery) string{
	"campaign":  func(campaign string, d checkpoint.Delivery) string { return campaign },
	"kind":      func(_ string, d checkpoint.Delivery) string { return d.Kind },
	"scope":     func(_ string, d checkpoint.Delivery) string { return d.Scope },
	"recipient": func(_ string, d checkpoint.Delivery) string { return d.To },
	"state":     func(_ string, d checkpoint.Delivery) string { return d.State.String() },
	"message_id": func(_ string, d checkpoint.Delivery) string {
		if chatapi.Kind(d.Kind).Legacy() {
			return "" // the legacy API answers "success", no ID
		}
		return d.MessageID
	},
	"error": func(_ string, d checkpoint.Delivery) string { return d.Error },
	"time":  func(_ string, d checkpoint.Delivery) string { return d.Time.UTC().Format(time.RFC3339Nano) },
	"recall": func(_ string, d checkpoint.Delivery) string {
		if d.Recall.State == checkpoint.NotRecalled {
			return "not recalled: " + d.Recall.Reason
		}
		return d.Recall.State.String()
	},
}

func deliveryValues(campaign string, d checkpoint.Delivery) []string {
	out := make([]string, len(deliveryColumns))
	for i, c := range deliveryColumns {
		out[i] = deliveryValue[c](campaign, d)
	}
	return out
}

type csvRows struct {
	w   *csv.Writer
	row []string
}

func newCSVRows(w io.Writer) *csvRows {
	c := &csvRows{w: csv.NewWriter(w)}
	_ = c.w.Write(append(slices.Clone(deliveryColumns), messageColumns...))
	return c
}

func (c *csvRows) write(campaign string, d checkpoint.Delivery, msg map[string]json.RawMessage) error {
	c.row = append(c.row[:0], deliveryValues(campaign, d)...)
	for _, k := range messageColumns {
		c.row = append(c.row, csvCell(msg[k]))
	}
	return c.w.Write(c.row)
}

// csvCell writes a JSON value as a campaign CSV cell: strings as they are,
// objects, arrays and booleans as JSON text.
func csvCell(raw json.RawMessage) string {
	if raw == nil {
		return ""
	}
	var s string
	if strings.HasPrefix(string(raw), `"`) && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func (c *csvRows) flush() error {
	c.w.Flush()
	return c.w.Error()
}

type jsonRows struct{ enc *json.Encoder }

func (j *jsonRows) write(campaign string, d checkpoint.Delivery, msg map[string]json.RawMessage) error {
	row := map[string]any{}
	for k, v := range msg {
		if slices.Contains(messageColumns, k) {
			row[k] = v
		}
	}
	for i, v := range deliveryValues(campaign, d) {
		row[deliveryColumns[i]] = v
	}
	return j.enc.Encode(row)
}

func (j *jsonRows) flush() error { return nil }
