package chatapi

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestNewQuotas checks the scaled and overridden quotas.
func TestNewQuotas(t *testing.T) {
	sec, minute := time.Second, time.Minute
	quota := func(calls int, msgs int, window time.Duration) Quota {
		q := Quota{Calls: Limit{N: calls, Window: sec}, Messages: Limit{N: msgs, Window: window}}
		if msgs == 0 {
			q.Messages = Limit{}
		}
		return q
	}
	tests := []struct {
		name      string
		scale     float64
		overrides []string
		want      map[Kind]Quota // kinds not listed are not checked
	}{
		{
			name:  "defaults",
			scale: 1,
			want: map[Kind]Quota{
				Users:        quota(100, 6000, minute),
				Groups:       quota(20, 20, sec),
				Rooms:        quota(100, 100, sec),
				GroupMembers: quota(100, 100, sec),
				RoomMembers:  quota(100, 100, sec),
				LegacyUsers:  quota(30, 0, 0),
				LegacyGroups: quota(30, 0, 0),
			},
		},
		{
			name:  "scale 2",
			scale: 2,
			want: map[Kind]Quota{
				Users:       quota(200, 12000, minute),
				Groups:      quota(40, 40, sec),
				LegacyUsers: quota(60, 0, 0),
			},
		},
		{
			name:  "scale 0.01 keeps at least 1",
			scale: 0.01,
			want: map[Kind]Quota{
				Users:  quota(1, 60, minute),
				Groups: quota(1, 1, sec),
			},
		},
		{
			name:      "users.messages=12000",
			scale:     1,
			overrides: []string{"users.messages=12000"},
			want: map[Kind]Quota{
				Users:  quota(100, 12000, minute),
				Groups: quota(20, 20, sec),
			},
		},
		{
			name:      "overrides win over the scale",
			scale:     3,
			overrides: []string{"groups.calls=25", " rooms.messages = 150 "},
			want: map[Kind]Quota{
				Groups: quota(25, 60, sec),
				Rooms:  quota(300, 150, sec),
				Users:  quota(300, 18000, minute),
			},
		},
		{
			name:      "a legacy override applies to both legacy kinds",
			scale:     1,
			overrides: []string{"legacy_groups.calls=50"},
			want: map[Kind]Quota{
				LegacyUsers:  quota(50, 0, 0),
				LegacyGroups: quota(50, 0, 0),
			},
		},
		{
			name:      "the last override of a limit wins",
			scale:     1,
			overrides: []string{"users.calls=10", "users.calls=20"},
			want:      map[Kind]Quota{Users: quota(20, 6000, minute)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := NewQuotas(tt.scale, tt.overrides)
			if err != nil {
				t.Fatalf("NewQuotas(%v, %q): %v", tt.scale, tt.overrides, err)
			}
			if len(q) != len(Kinds) {
				t.Errorf("got quotas for %d kinds, want %d", len(q), len(Kinds))
			}
			for k, want := range tt.want {
				if got := q[k]; got != want {
					t.Errorf("%s: got %+v, want %+v", k, got, want)
				}
			}
		})
	}
}

// TestNewQuotasInvalid checks that a bad scale or override is refused, with
// an error that quotes it.
func TestNewQuotasInvalid(t *testing.T) {
	tests := []struct {
		name      string
		scale     float64
		overrides []string
		want      string // in the error
	}{
		{name: "scale 0", scale: 0, want: "quota scale 0"},
		{name: "negative scale", scale: -1, want: "quota scale -1"},
		{name: "scale NaN", scale: math.NaN(), want: "quota scale NaN"},
		{name: "scale +Inf", scale: math.Inf(1), want: "quota scale +Inf"},
		{name: "no value", scale: 1, overrides: []string{"users.messages"}, want: `"users.messages"`},
		{name: "no limit", scale: 1, overrides: []string{"users=5"}, want: `"users=5"`},
		{name: "zero", scale: 1, overrides: []string{"users.calls=0"}, want: `"users.calls=0"`},
		{name: "negative", scale: 1, overrides: []string{"users.calls=-3"}, want: `"users.calls=-3"`},
		{name: "not a number", scale: 1, overrides: []string{"users.calls=many"}, want: `"users.calls=many"`},
		{name: "fraction", scale: 1, overrides: []string{"users.calls=1.5"}, want: `"users.calls=1.5"`},
		{name: "unknown kind", scale: 1, overrides: []string{"usr.calls=5"}, want: `"usr.calls=5"`},
		{name: "unknown limit", scale: 1, overrides: []string{"users.speed=5"}, want: `"users.speed=5"`},
		{name: "no message quota", scale: 1, overrides: []string{"legacy_users.messages=5"}, want: `"legacy_users.messages=5"`},
		{name: "empty", scale: 1, overrides: []string{""}, want: `""`},
		{name: "bad after good", scale: 1, overrides: []string{"users.calls=5", "groups.calls="}, want: `"groups.calls="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := NewQuotas(tt.scale, tt.overrides)
			if err == nil {
				t.Fatalf("NewQuotas(%v, %q): got %v, want an error", tt.scale, tt.overrides, q[Users])
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error: got %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
