package planner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"imcast/chatapi"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// errPanicked stands for the result of a planner call that panicked; the
// panic itself is reported as a test failure by the helper that caught it,
// so that one bad input fails its own test and not the whole binary.
var errPanicked = errors.New("planner panicked")

// defaultQuotas are the documented default quotas.
func defaultQuotas(t testing.TB) chatapi.Quotas {
	t.Helper()
	q, err := chatapi.NewQuotas(1, nil)
	if err != nil {
		t.Fatalf("NewQuotas(1, nil): %v", err)
	}
	return q
}

// planOpts opens and plans a campaign at the default quotas. An error from
// Open is returned as Plan's would be.
func planOpts(t testing.TB, opts Options) (p *Plan, err error) {
	t.Helper()
	return planQuotas(t, opts, defaultQuotas(t))
}

func planQuotas(t testing.TB, opts Options, q chatapi.Quotas) (p *Plan, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("planning %v panicked: %v\n%s", opts.Files, r, debug.Stack())
			p, err = nil, errPanicked
		}
	}()
	c, err := Open(opts)
	if err != nil {
		return nil, err
	}
	return c.Plan(context.Background(), q)
}

// mustPlan plans a campaign that must be valid.
func mustPlan(t testing.TB, opts Options) *Plan {
	t.Helper()
	p, err := planOpts(t, opts)
	if err != nil {
		t.Fatalf("Plan(%v): got error %v, want none", opts.Files, err)
	}
	return p
}

// batchesOf opens a campaign that must be valid and returns its batches.
func batchesOf(t testing.TB, opts Options, pending PendingFunc) []Batch {
	t.Helper()
	bs, err := tryBatches(t, opts, pending)
	if err != nil {
		t.Fatalf("Batches(%v): got error %v, want none", opts.Files, err)
	}
	return bs
}

func tryBatches(t testing.TB, opts Options, pending PendingFunc) (bs []Batch, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("batching %v panicked: %v\n%s", opts.Files, r, debug.Stack())
			bs, err = nil, errPanicked
		}
	}()
	c, err := Open(opts)
	if err != nil {
		return nil, err
	}
	err = c.Batches(context.Background(), defaultQuotas(t), pending, func(b Batch) error {
		bs = append(bs, b)
		return nil
	})
	return bs, err
}

// problemStrings returns the Problem.String() values of an *InvalidError;
// nil for a nil error. Any other error fails the test.
func problemStrings(t testing.TB, err error) []string {
	t.Helper()
	if err == nil || errors.Is(err, errPanicked) {
		return nil
	}
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("got error %T %v, want an *InvalidError", err, err)
	}
	out := make([]string, len(inv.Problems))
	for i, p := range inv.Problems {
		out[i] = p.String()
	}
	return out
}

// checkLines compares two lists of lines and reports both in full when they
// differ.
func checkLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s:\ngot  %d:\n\t%s\nwant %d:\n\t%s", what, len(got), strings.Join(got, "\n\t"), len(want), strings.Join(want, "\n\t"))
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// jsonLines encodes rows as JSON Lines.
func jsonLines(t testing.TB, rows ...any) string {
	t.Helper()
	var b strings.Builder
	for _, r := range rows {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// ids returns n recipient IDs: prefix0000, prefix0001, ...
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// idCSV is a CSV file with one row per ID of one message.
func idCSV(kind, scope, msg string, to []string) string {
	var b strings.Builder
	b.WriteString("kind,scope,to,msg\n")
	for _, id := range to {
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", kind, scope, id, msg)
	}
	return b.String()
}

// sizes returns the number of recipients of each batch.
func sizes(bs []Batch) []int {
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = len(b.To)
	}
	return out
}

// kindPlan returns the plan of one kind, or a zero KindPlan.
func kindPlan(p *Plan, kind string) KindPlan {
	for _, kp := range p.Kinds {
		if string(kp.Kind) == kind {
			return kp
		}
	}
	return KindPlan{}
}

// bodyMsg returns body.msg of a batch's message.
func bodyMsg(t testing.TB, b Batch) string {
	t.Helper()
	var body struct {
		Msg string `json:"msg"`
	}
	if err := json.Unmarshal(b.Message.Message.Body, &body); err != nil {
		t.Fatalf("body %s: %v", b.Message.Message.Body, err)
	}
	return body.Msg
}
