package report

import (
	"encoding/json"
	"imcast/chatapi"
	"imcast/job"
	"imcast/planner"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	v := &watcher{Watching: Watching{Total: 1000}}
	got := progressLine(250, 1000, 240, 5, 5, 10*time.Second, v.left(250, 10*time.Second))
	want := "progress: 250/1000 (25.0%) sent 240, failed 5, uncertain 5; 25.0/s, 30s left"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	v.Total = 10
	if got := v.left(0, time.Second); got != "unknown" {
		t.Errorf("no progress yet: got %q, want the time left unknown", got)
	}
	// a first burst ran ahead of the pace: the plan's estimate of the rest
	// holds
	v.Total, v.Estimate = 1000, 100*time.Second
	if got := v.left(100, time.Second); got != "1m30s" {
		t.Errorf("ahead of the plan: got %q, want the plan's 1m30s left", got)
	}
}

// TestTimeLeftOfMixedKinds: kinds go side by side, so a fast kind done
// early says nothing of a slow one: the time left is the slowest kind's.
func TestTimeLeftOfMixedKinds(t *testing.T) {
	p := job.NewProgress(chatapi.Kinds)
	p.Kind(chatapi.Users).Sent.Store(1000)
	p.Kind(chatapi.Groups).Sent.Store(60)
	v := &watcher{Watching: Watching{Progress: p, Total: 1600, Estimate: 30 * time.Second, Kinds: []planner.KindPlan{
		{Kind: chatapi.Users, Pending: 1000, Estimate: time.Second},
		{Kind: chatapi.Groups, Pending: 600, Estimate: 30 * time.Second},
	}}}
	if got := v.left(1060, 3*time.Second); got != "27s" {
		t.Errorf("users all sent, 60 of 600 groups after 3 s at 20/s: %s left, want 27s", got)
	}
}

func TestCSVCell(t *testing.T) {
	tests := []struct{ raw, want string }{
		{``, ``},
		{`"shop"`, `shop`},
		{`"say \"hi\""`, `say "hi"`},
		{`{"msg":"hi"}`, `{"msg":"hi"}`},
		{`["a","b"]`, `["a","b"]`},
		{`true`, `true`},
	}
	for _, tt := range tests {
		var raw json.RawMessage
		if tt.raw != "" {
			raw = json.RawMessage(tt.raw)
		}
		if got := csvCell(raw); got != tt.want {
			t.Errorf("csvCell(%s): got %q, want %q", tt.raw, got, tt.want)
		}
	}
}
