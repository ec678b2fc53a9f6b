package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	got := progressLine(250, 1000, 240, 5, 5, 10*time.Second, 0)
	want := "progress: 250/1000 (25.0%) sent 240, failed 5, uncertain 5; 25.0/s, 30s left"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := progressLine(0, 10, 0, 0, 0, time.Second, 0); !strings.HasSuffix(got, "unknown left") {
		t.Errorf("no progress yet: got %q, want the time left unknown", got)
	}
	// a first burst ran ahead of the pace: the plan's estimate of the rest
	// holds
	if got := progressLine(100, 1000, 100, 0, 0, time.Second, 100*time.Second); !strings.HasSuffix(got, "1m30s left") {
		t.Errorf("ahead of the plan: got %q, want the plan's 1m30s left", got)
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
