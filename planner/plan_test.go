package planner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"imcast/chatapi"
)

// TestPlan checks the plan of known campaigns: per kind, the recipients,
// repeats, messages, batches, calls, what the message quota counts, and the
// least time the quotas allow.
// paced is how long n events take at limit a window, paced as a run paces
// them: over the window widened by the pacing margin. An estimate counts
// the events that go before the last call.
func paced(n, limit float64, window time.Duration) time.Duration {
	return time.Duration(n / limit * (window + chatapi.PaceMargin).Seconds() * float64(time.Second)).Round(time.Millisecond)
}

func TestPlan(t *testing.T) {
	manyMessages := func(kind, to string, n int) string {
		var b strings.Builder
		b.WriteString("kind,to,msg\n")
		for i := range n {
			fmt.Fprintf(&b, "%s,%s,message %d\n", kind, to, i)
		}
		return b.String()
	}
	tests := []struct {
		name      string
		files     map[string]string // name to content, read in name order
		overrides []string
		scale     float64
		want      []KindPlan // EstimatedSeconds is filled from Estimate, Pending from Recipients
		wantTotal time.Duration
	}{
		{
			// 1200 messages at 6000/min, paced as 100/s: 12 calls of 100,
			// the last 11 s after the first.
			name:  "1200 users of one message",
			files: map[string]string{"a.csv": idCSV("users", "", "hi", ids("u", 1200))},
			want:  []KindPlan{{Kind: "users", Recipients: 1200, Messages: 1, Batches: 12, Calls: 12, QuotaMessages: 1200, Estimate: paced(1100, 6000, time.Minute)}},
		},
		{
			name:  "1200 users at twice the quotas",
			files: map[string]string{"a.csv": idCSV("users", "", "hi", ids("u", 1200))},
			scale: 2,
			want:  []KindPlan{{Kind: "users", Recipients: 1200, Messages: 1, Batches: 6, Calls: 6, QuotaMessages: 1200, Estimate: paced(1000, 12000, time.Minute)}},
		},
		{
			name:      "1200 users, users.messages=12000",
			files:     map[string]string{"a.csv": idCSV("users", "", "hi", ids("u", 1200))},
			overrides: []string{"users.messages=12000"},
			want:      []KindPlan{{Kind: "users", Recipients: 1200, Messages: 1, Batches: 6, Calls: 6, QuotaMessages: 1200, Estimate: paced(1000, 12000, time.Minute)}},
		},
		{
			// The call quota rules when it is the slower: 2 calls at 1/s.
			name:      "1200 users, users.calls=1, users.messages=600000",
			files:     map[string]string{"a.csv": idCSV("users", "", "hi", ids("u", 1200))},
			overrides: []string{"users.calls=1", "users.messages=600000"},
			want:      []KindPlan{{Kind: "users", Recipients: 1200, Messages: 1, Batches: 2, Calls: 2, QuotaMessages: 1200, Estimate: paced(1, 1, time.Second)}},
		},
		{
			// 14 calls at 20/s take 0.7 s, 40 messages at 20/s take 2 s.
			name:  "40 groups of one message",
			files: map[string]string{"a.csv": idCSV("groups", "", "hi", ids("g", 40))},
			want:  []KindPlan{{Kind: "groups", Recipients: 40, Messages: 1, Batches: 14, Calls: 14, QuotaMessages: 40, Estimate: paced(40*13/14.0, 20, time.Second)}},
		},
		{
			// 50 calls and messages at 100/s take 0.5 s, but one room takes
			// no more than 20 messages a second.
			name:  "50 messages into one room",
			files: map[string]string{"a.csv": manyMessages("rooms", "185145305923585", 50)},
			want:  []KindPlan{{Kind: "rooms", Recipients: 50, Messages: 50, Batches: 50, Calls: 50, QuotaMessages: 50, Estimate: paced(49, 20, time.Second)}},
		},
		{
			name:  "50 messages into 50 rooms",
			files: map[string]string{"a.csv": idCSV("rooms", "", "hi", ids("r", 50))},
			want:  []KindPlan{{Kind: "rooms", Recipients: 50, Messages: 1, Batches: 5, Calls: 5, QuotaMessages: 50, Estimate: paced(40, 100, time.Second)}},
		},
		{
			// 3 directed calls are 3 messages into the room: 0.15 s; 45
			// directed messages at 100/s: 0.45 s.
			name:  "45 members of one room",
			files: map[string]string{"a.csv": idCSV("room_members", "185145305923585", "hi", ids("m", 45))},
			want:  []KindPlan{{Kind: "room_members", Recipients: 45, Messages: 1, Batches: 3, Calls: 3, QuotaMessages: 45, Estimate: paced(30, 100, time.Second)}},
		},
		{
			// 30 messages into one room by both endpoints: 20 as rooms, 10
			// directed calls as room_members; at 20/s: 1.5 s for both.
			name: "one room by both endpoints",
			files: map[string]string{
				"a.csv": manyMessages("rooms", "185145305923585", 20),
				"b.csv": func() string {
					var b strings.Builder
					b.WriteString("kind,scope,to,msg\n")
					for i := range 10 {
						fmt.Fprintf(&b, "room_members,185145305923585,alice,message %d\n", i)
					}
					return b.String()
				}(),
			},
			want: []KindPlan{
				{Kind: "rooms", Recipients: 20, Messages: 20, Batches: 20, Calls: 20, QuotaMessages: 20, Estimate: paced(29, 20, time.Second)},
				{Kind: "room_members", Recipients: 10, Messages: 10, Batches: 10, Calls: 10, QuotaMessages: 10, Estimate: paced(29, 20, time.Second)},
			},
		},
		{
			// The two legacy kinds share one endpoint and its 30 calls/s: 4
			// calls in all; the legacy API has no message quota.
			name: "legacy users and groups",
			files: map[string]string{
				"a.csv": idCSV("legacy_users", "", "hi", ids("u", 45)),
				"b.csv": idCSV("legacy_groups", "", "hi", ids("g", 5)),
			},
			want: []KindPlan{
				{Kind: "legacy_users", Recipients: 45, Messages: 1, Batches: 3, Calls: 3, Estimate: paced(3, 30, time.Second)},
				{Kind: "legacy_groups", Recipients: 5, Messages: 1, Batches: 1, Calls: 1, Estimate: paced(3, 30, time.Second)},
			},
		},
		{
			name: "kinds side by side, repeats",
			files: map[string]string{
				"a.csv":   idCSV("users", "", "hi", append(ids("u", 1200), "u0001", "u0002")),
				"b.csv":   idCSV("groups", "", "hi", ids("g", 40)),
				"c.jsonl": `{"kind":"group_members","scope":"g1","to":["a","b","a"],"msg":"hi"}` + "\n" + `{"to":"u0001","msg":"bye"}` + "\n",
			},
			want: []KindPlan{
				{Kind: "users", Recipients: 1201, Repeated: 2, Messages: 2, Batches: 13, Calls: 13, QuotaMessages: 1201, Estimate: paced(1201*12/13.0, 6000, time.Minute)},
				{Kind: "groups", Recipients: 40, Messages: 1, Batches: 14, Calls: 14, QuotaMessages: 40, Estimate: paced(40*13/14.0, 20, time.Second)},
				{Kind: "group_members", Recipients: 2, Repeated: 1, Messages: 1, Batches: 1, Calls: 1, QuotaMessages: 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var files []string
			for _, name := range sortedNames(tt.files) {
				files = append(files, writeFile(t, dir, name, tt.files[name]))
			}
			scale := tt.scale
			if scale == 0 {
				scale = 1
			}
			q, err := chatapi.NewQuotas(scale, tt.overrides)
			if err != nil {
				t.Fatalf("NewQuotas: %v", err)
			}
			p, err := planQuotas(t, Options{Files: files}, q)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			want := slices.Clone(tt.want)
			total := KindPlan{Kind: "total"}
			for i := range want {
				want[i].EstimatedSeconds = want[i].Estimate.Seconds()
				want[i].Pending = want[i].Recipients // no ledger: all pending
				k := want[i]
				total.Recipients += k.Recipients
				total.Pending += k.Pending
				total.Repeated += k.Repeated
				total.Messages += k.Messages
				total.Batches += k.Batches
				total.Calls += k.Calls
				total.QuotaMessages += k.QuotaMessages
				total.Estimate = max(total.Estimate, k.Estimate)
			}
			total.EstimatedSeconds = total.Estimate.Seconds()
			if len(p.Kinds) != len(want) {
				t.Errorf("kinds: got %+v\nwant %+v", p.Kinds, want)
			}
			for i := range min(len(p.Kinds), len(want)) {
				if p.Kinds[i] != want[i] {
					t.Errorf("kind %d:\ngot  %+v\nwant %+v", i, p.Kinds[i], want[i])
				}
			}
			if p.Total != total {
				t.Errorf("total:\ngot  %+v\nwant %+v", p.Total, total)
			}
			if !slices.Equal(p.Files, files) {
				t.Errorf("files: got %v, want %v", p.Files, files)
			}
			if got, want := p.Rows, total.Recipients+total.Repeated; got != want {
				t.Errorf("deliveries read: got %d, want %d", got, want)
			}
		})
	}
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// TestPlanQuotaRows checks the quotas the plan shows, one row per kind.
func TestPlanQuotaRows(t *testing.T) {
	p := mustPlan(t, Options{Files: []string{"testdata/read/ids.csv"}, Message: "testdata/read/welcome.json"})
	var got []string
	for _, r := range p.Quotas {
		got = append(got, fmt.Sprintf("%s %g %g", r.Kind, r.CallsPerSecond, r.MessagesPerSecond))
	}
	checkLines(t, "quota rows", got, []string{
		"users 100 100",
		"groups 20 20",
		"rooms 100 100",
		"group_members 100 100",
		"room_members 100 100",
		"legacy_users 30 0",
		"legacy_groups 30 0",
	})
}

// TestPlanCanceled checks that planning stops when its context is done.
func TestPlanCanceled(t *testing.T) {
	file := writeFile(t, t.TempDir(), "big.csv", idCSV("users", "", "hi", ids("u", 10000)))
	c, err := Open(Options{Files: []string{file}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Plan(ctx, defaultQuotas(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("Plan: got error %v, want %v", err, context.Canceled)
	}
	err = c.Batches(ctx, defaultQuotas(t), nil, func(Batch) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Batches: got error %v, want %v", err, context.Canceled)
	}
}

// TestCampaignName checks the default campaign name: the first file's base
// name without its extension.
func TestCampaignName(t *testing.T) {
	c, err := Open(Options{Files: []string{"testdata/read/part1.csv", "testdata/read/part2.jsonl"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Name(); got != "part1" {
		t.Errorf("Name: got %q, want %q", got, "part1")
	}
}

// TestPlanWriteText checks the plan's table: a header, a line per kind with
// its numbers, and the total.
func TestPlanWriteText(t *testing.T) {
	dir := t.TempDir()
	files := []string{
		writeFile(t, dir, "a.csv", idCSV("users", "", "hi", ids("u", 1200))),
		writeFile(t, dir, "b.csv", idCSV("groups", "", "hi", ids("g", 40))),
		writeFile(t, dir, "c.csv", idCSV("room_members", "185145305923585", "hi", ids("m", 45))),
	}
	p := mustPlan(t, Options{Files: files})
	var buf bytes.Buffer
	if err := p.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	var got []string
	for line := range strings.Lines(buf.String()) {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	checkLines(t, "text", got, []string{
		"kind recipients repeated messages batches calls estimate",
		"users 1200 0 1 12 12 11s",
		"groups 40 0 1 14 14 1.88s",
		"room_members 45 0 1 3 3 303ms",
		"total 1285 0 3 29 29 11s",
		"",
		"1285 deliveries read from 3 file(s); kinds are sent side by side, so the total takes as long as the slowest.",
	})
}

// TestPlanJSON checks the keys of the plan's JSON encoding (plan --json).
func TestPlanJSON(t *testing.T) {
	p := mustPlan(t, Options{Files: []string{"../samples/mixed.jsonl", "../samples/legacy.jsonl"}})
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Top    map[string]json.RawMessage
		Kinds  []map[string]json.RawMessage `json:"kinds"`
		Total  map[string]json.RawMessage   `json:"total"`
		Quotas []map[string]json.RawMessage `json:"quotas"`
	}
	if err := json.Unmarshal(data, &doc.Top); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]json.RawMessage) string {
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return strings.Join(ks, " ")
	}
	const kindKeys = "batches calls estimated_seconds kind messages pending quota_messages recipients repeated"
	if got, want := keys(doc.Top), "attachments deliveries_read files kinds quotas total"; got != want {
		t.Errorf("plan keys: got %q, want %q", got, want)
	}
	if len(doc.Kinds) == 0 {
		t.Fatal("no kinds")
	}
	for _, k := range append(doc.Kinds, doc.Total) {
		if got := keys(k); got != kindKeys {
			t.Errorf("kind %s keys: got %q, want %q", k["kind"], got, kindKeys)
		}
	}
	for _, q := range doc.Quotas {
		want := "calls_per_second kind messages_per_second"
		if string(q["kind"]) == `"legacy_users"` || string(q["kind"]) == `"legacy_groups"` {
			want = "calls_per_second kind" // no message quota
		}
		if got := keys(q); got != want {
			t.Errorf("quota %s keys: got %q, want %q", q["kind"], got, want)
		}
	}
	if got, want := string(doc.Total["kind"]), `"total"`; got != want {
		t.Errorf("total kind: got %s, want %s", got, want)
	}
}

// TestPlanPending checks the plan of a campaign partly sent: recipients and
// repeats count the whole campaign, while pending, batches, calls, quota
// messages and the duration count only what pending accepts, as Batches
// sends it.
func TestPlanPending(t *testing.T) {
	odd := func(_ *Message, id string) (bool, error) {
		var n int
		fmt.Sscanf(id, "u%d", &n)
		return n%2 == 1, nil
	}
	tests := []struct {
		name    string
		content string
		pending PendingFunc
		want    KindPlan // EstimatedSeconds is filled from Estimate
		batches []int
	}{
		{
			name:    "half of 1200 users, one listed twice",
			content: idCSV("users", "", "hi", append(ids("u", 1200), "u0001", "u0002")),
			pending: odd,
			want:    KindPlan{Kind: "users", Recipients: 1200, Pending: 600, Repeated: 2, Messages: 1, Batches: 6, Calls: 6, QuotaMessages: 600, Estimate: paced(500, 6000, time.Minute)},
			batches: []int{100, 100, 100, 100, 100, 100},
		},
		{
			name:    "all sent",
			content: idCSV("users", "", "hi", ids("u", 10)),
			pending: func(*Message, string) (bool, error) { return false, nil },
			want:    KindPlan{Kind: "users", Recipients: 10, Messages: 1},
		},
		{
			name:    "nil is all pending",
			content: idCSV("users", "", "hi", ids("u", 10)),
			want:    KindPlan{Kind: "users", Recipients: 10, Pending: 10, Messages: 1, Batches: 1, Calls: 1, QuotaMessages: 10},
			batches: []int{10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, t.TempDir(), "p.csv", tt.content)
			c, err := Open(Options{Files: []string{file}})
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.PlanPending(context.Background(), defaultQuotas(t), tt.pending, nil)
			if err != nil {
				t.Fatalf("PlanPending: %v", err)
			}
			want := tt.want
			want.EstimatedSeconds = want.Estimate.Seconds()
			if got := kindPlan(p, "users"); got != want {
				t.Errorf("users:\ngot  %+v\nwant %+v", got, want)
			}
			if got := sizes(batchesOf(t, Options{Files: []string{file}}, tt.pending)); !slices.Equal(got, tt.batches) {
				t.Errorf("Batches with the same pending: got sizes %v, want %v", got, tt.batches)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		file := writeFile(t, t.TempDir(), "p.csv", idCSV("users", "", "hi", ids("u", 10)))
		c, err := Open(Options{Files: []string{file}})
		if err != nil {
			t.Fatal(err)
		}
		errLedger := errors.New("ledger closed")
		_, err = c.PlanPending(context.Background(), defaultQuotas(t), func(*Message, string) (bool, error) { return false, errLedger }, nil)
		if !errors.Is(err, errLedger) {
			t.Errorf("got error %v, want %v", err, errLedger)
		}
	})
}
