package planner

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"imcast/chatapi"
)

// TotalRow is the Kind of a plan's total.
const TotalRow chatapi.Kind = "total"

// KindPlan is the work of one kind.
type KindPlan struct {
	Kind       chatapi.Kind `json:"kind"`       // TotalRow in a plan's total
	Recipients int64        `json:"recipients"` // deliveries: one message to one recipient
	Pending    int64        `json:"pending"`    // of them, still to send (all, for a plan without a ledger)
	Repeated   int64        `json:"repeated"`   // recipients listed again for the same message, dropped
	Messages   int          `json:"messages"`   // distinct messages
	Batches    int64        `json:"batches"`
	Calls      int64        `json:"calls"` // API calls: one per batch
	// QuotaMessages is what the endpoint's message quota counts: every
	// recipient of a call (0 for the legacy API, which has none).
	QuotaMessages int64 `json:"quota_messages"`
	// Estimate is how long sending takes, paced as a run paces it.
	Estimate         time.Duration `json:"-"`
	EstimatedSeconds float64       `json:"estimated_seconds"`
}

// add counts k into a total; the total takes as long as its slowest kind.
func (t *KindPlan) add(k *KindPlan) {
	t.Recipients += k.Recipients
	t.Pending += k.Pending
	t.Repeated += k.Repeated
	t.Messages += k.Messages
	t.Batches += k.Batches
	t.Calls += k.Calls
	t.QuotaMessages += k.QuotaMessages
	t.Estimate = max(t.Estimate, k.Estimate)
	t.EstimatedSeconds = t.Estimate.Seconds()
}

// Plan is what a campaign will take: the work per kind and in total, and
// how long it takes paced under the quotas. Kinds go through separate endpoints with
// separate quotas and are sent side by side, so the total takes as long as
// the slowest kind.
type Plan struct {
	Files       []string      `json:"files"`
	Rows        int64         `json:"deliveries_read"`
	Kinds       []KindPlan    `json:"kinds"`
	Total       KindPlan      `json:"total"`
	Quotas      []QuotaRow    `json:"quotas"`
	Attachments []PlannedFile `json:"attachments"` // the local files the run uploads, each once
	// Source is what the read that made the plan read.
	Source *Source `json:"-"`
	// Window, with a send window, is how many of its openings the
	// campaign needs.
	Window *WindowPlan `json:"window,omitempty"`
}

// WindowPlan is a plan's send window: its spec and zone, how long it is
// open a day, and how many openings the estimate needs.
type WindowPlan struct {
	Window string  `json:"window"`
	Hours  float64 `json:"hours_a_day"`
	Needed int     `json:"windows_needed"`
}

// PlannedFile is a local file a campaign uploads.
type PlannedFile struct {
	Path  string `json:"path"` // absolute, symlinks resolved
	Bytes int64  `json:"bytes"`
}

// QuotaRow is one kind's quotas in force, for the plan's reader.
type QuotaRow struct {
	Kind              string  `json:"kind"`
	CallsPerSecond    float64 `json:"calls_per_second"`
	MessagesPerSecond float64 `json:"messages_per_second,omitempty"`
}

// group is one distinct message and what it goes to.
type group struct {
	msg  *Message
	n    int64 // distinct recipients
	todo int64 // of them, pending
	dups int64
}

// Plan reads and validates the whole campaign and returns its plan. Any
// problem makes it return an *InvalidError listing them.
func (c *Campaign) Plan(ctx context.Context, q chatapi.Quotas) (*Plan, error) {
	return c.PlanPending(ctx, q, nil, nil)
}

// PlanPending is Plan for a campaign partly sent: batches, calls and the
// duration count only the deliveries pending accepts, and Pending says how
// many those are. With a spool, it also batches those deliveries into it,
// in the same read: a run sends from the spool, never from a second read
// of the files. The spool is complete only if PlanPending returns no
// error.
func (c *Campaign) PlanPending(ctx context.Context, q chatapi.Quotas, pending PendingFunc, spool *Spool) (*Plan, error) {
	r, err := c.read(ctx, q, pending, spool)
	if err != nil {
		return nil, err
	}
	byKind, loads := r.work(q)
	p := &Plan{Files: c.opts.Files, Rows: r.rows, Total: KindPlan{Kind: TotalRow}, Attachments: attachments(r.groups),
		Source: c.sourceOf(r.files, r.groups)}
	for _, k := range chatapi.Kinds {
		kp := byKind[k]
		qk := q[k]
		p.Quotas = append(p.Quotas, QuotaRow{Kind: string(k), CallsPerSecond: qk.Calls.PerSecond(), MessagesPerSecond: qk.Messages.PerSecond()})
		if kp == nil {
			continue
		}
		kp.Estimate = estimate(qk, *loads[k.Path()])
		kp.EstimatedSeconds = kp.Estimate.Seconds()
		p.Kinds = append(p.Kinds, *kp)
		p.Total.add(kp)
	}
	return p, nil
}

// work counts what the read found per kind, under q, and the load of
// each endpoint (by path) for its estimate.
func (r *reading) work(q chatapi.Quotas) (map[chatapi.Kind]*KindPlan, map[string]*load) {
	byKind := map[chatapi.Kind]*KindPlan{}
	for _, g := range r.groups {
		k := g.msg.Kind
		kp := byKind[k]
		if kp == nil {
			kp = &KindPlan{Kind: k}
			byKind[k] = kp
		}
		per := int64(q.PerCall(k))
		batches := (g.todo + per - 1) / per
		kp.Recipients += g.n
		kp.Pending += g.todo
		kp.Repeated += g.dups
		kp.Messages++
		kp.Batches += batches
		kp.Calls += batches
		if q[k].Messages.N > 0 {
			kp.QuotaMessages += g.todo
		}
		if k == chatapi.RoomMembers {
			// each directed call is one message into its room
			r.rooms[g.msg.Scope] += batches
		}
	}
	busiest := int64(0)
	for _, n := range r.rooms {
		busiest = max(busiest, n)
	}
	loads := map[string]*load{}
	for k, kp := range byKind {
		l := loads[k.Path()]
		if l == nil {
			l = &load{}
			loads[k.Path()] = l
		}
		l.calls += kp.Calls
		l.messages += kp.QuotaMessages
		if k == chatapi.Rooms || k == chatapi.RoomMembers {
			l.busiestRoom = busiest
		}
	}
	return byKind, loads
}

// attachments are the local files the messages upload, each once, in
// path order.
func attachments(groups map[Key]*group) []PlannedFile {
	out := []PlannedFile{}
	seen := map[string]bool{}
	eachAttachment(groups, func(a Attachment) {
		if !seen[a.Path] {
			seen[a.Path] = true
			out = append(out, PlannedFile{Path: a.Path, Bytes: a.Size})
		}
	})
	slices.SortFunc(out, func(a, b PlannedFile) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// eachAttachment calls fn with the file and the thumbnail of each message
// that has them.
func eachAttachment(groups map[Key]*group, fn func(Attachment)) {
	for _, g := range groups {
		for _, a := range []Attachment{g.msg.File, g.msg.Thumb} {
			if a.Path != "" {
				fn(a)
			}
		}
	}
}

// Unread is the plan of a campaign Since found unchanged, whose files are
// not read: nothing to send.
func (c *Campaign) Unread() *Plan {
	return &Plan{Files: c.opts.Files, Total: KindPlan{Kind: TotalRow}, Attachments: []PlannedFile{}, Source: c.since}
}

// roundForShow rounds d to what a reader can use: seconds past a minute,
// hundredths past a second.
func roundForShow(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d
}

// WriteText prints the plan as a table.
func (p *Plan) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trecipients\trepeated\tmessages\tbatches\tcalls\testimate\t")
	for _, kp := range append(slices.Clip(p.Kinds), p.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", kp.Kind, kp.Recipients, kp.Repeated, kp.Messages, kp.Batches, kp.Calls, roundForShow(kp.Estimate))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "\n%d deliveries read from %d file(s); kinds are sent side by side, so the total takes as long as the slowest.\n", p.Rows, len(p.Files)); err != nil {
		return err
	}
	if p.Window != nil {
		fmt.Fprintf(w, "\nsend window %s (%s a day): the campaign needs %d window(s)", p.Window.Window,
			roundForShow(time.Duration(p.Window.Hours*float64(time.Hour))), p.Window.Needed)
		if p.Window.Needed > 1 {
			fmt.Fprint(w, "; each run stops at the close (exit 4), and the next one waits for the window and goes on")
		}
		fmt.Fprintln(w)
	}
	if len(p.Attachments) > 0 {
		fmt.Fprintf(w, "\nfiles to upload (%d):\n", len(p.Attachments))
		for _, a := range p.Attachments {
			if _, err := fmt.Fprintf(w, "  %s  %d bytes\n", a.Path, a.Bytes); err != nil {
				return err
			}
		}
	}
	return nil
}
