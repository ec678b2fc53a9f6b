package chatapi

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{header: "", want: 0},
		{header: "3", want: 3 * time.Second},
		{header: " 120 ", want: MaxRetryAfter},
		{header: "-5", want: 0},
		{header: now.Add(7 * time.Second).Format(http.TimeFormat), want: 7 * time.Second},
		{header: now.Add(-7 * time.Second).Format(http.TimeFormat), want: 0},
		{header: "soon", want: 0},
		{header: "60", want: time.Minute},
		{header: "100000", want: MaxRetryAfter},
		{header: "99999999999999999999", want: 0},
		{header: now.Add(27 * time.Hour).Format(http.TimeFormat), want: MaxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			if got := retryAfter(tt.header, now); got != tt.want {
				t.Errorf("retryAfter(%q): got %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		want   Outcome
	}{
		{400, Permanent}, {401, NotDelivered}, {403, NotDelivered}, {404, Permanent}, {413, Permanent},
		{429, NotDelivered}, {500, Ambiguous}, {502, Ambiguous}, {503, NotDelivered}, {504, Ambiguous},
		{405, Ambiguous}, {409, Ambiguous}, {418, Ambiguous}, {505, Ambiguous}, {599, Ambiguous},
	}
	for _, tt := range tests {
		if got := classify(tt.status); got != tt.want {
			t.Errorf("classify(%d): got %v, want %v", tt.status, got, tt.want)
		}
	}
}
