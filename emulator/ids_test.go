package emulator

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

func TestKeepIDs(t *testing.T) {
	h := start(t, Config{KeepIDs: true})
	t.Run("users", func(t *testing.T) {
		a := h.send(KindUsers, txt("u1", "u2"))
		b := h.send(KindUsers, txt("u1"))
		if a.status != http.StatusOK || b.status != http.StatusOK {
			t.Fatalf("got statuses %d and %d, want 200", a.status, b.status)
		}
		if got, want := h.run.IDs(KindUsers, "", "u1"), []string{a.data()["u1"].(string), b.data()["u1"].(string)}; !slices.Equal(got, want) {
			t.Errorf("got IDs %v for u1, want %v", got, want)
		}
		if got, want := h.run.IDs(KindUsers, "", "u2"), []string{a.data()["u2"].(string)}; !slices.Equal(got, want) {
			t.Errorf("got IDs %v for u2, want %v", got, want)
		}
		first, _ := strconv.ParseUint(h.run.IDs(KindUsers, "", "u1")[0], 10, 64)
		second, _ := strconv.ParseUint(h.run.IDs(KindUsers, "", "u1")[1], 10, 64)
		if first == 0 || second <= first {
			t.Errorf("got IDs %d then %d, want increasing numbers", first, second)
		}
		if got := h.run.IDs(KindUsers, "", "u3"); got != nil {
			t.Errorf("got IDs %v for u3, never sent to, want none", got)
		}
		if got := h.run.IDs(KindGroups, "", "u1"); got != nil {
			t.Errorf("got IDs %v for group u1, want none", got)
		}
	})
	t.Run("a directed call's members share its ID", func(t *testing.T) {
		a := h.send(KindGroupMembers, directed("g1", "m1", "m2"))
		id, _ := a.data()["g1"].(string)
		if a.status != http.StatusOK || id == "" {
			t.Fatalf("got %d %v, want 200 and an ID for g1", a.status, a.body)
		}
		for _, m := range []string{"m1", "m2"} {
			if got := h.run.IDs(KindGroupMembers, "g1", m); !slices.Equal(got, []string{id}) {
				t.Errorf("got IDs %v for %s, want [%s]", got, m, id)
			}
		}
		if got := h.run.IDs(KindGroupMembers, "g2", "m1"); got != nil {
			t.Errorf("got IDs %v for m1 in g2, want none", got)
		}
	})
	t.Run("legacy", func(t *testing.T) {
		if a := h.send(KindLegacy, legacy("chatgroups", "g9")); a.status != http.StatusOK {
			t.Fatalf("got status %d, want 200", a.status)
		}
		for _, k := range [][2]string{{"legacy_groups", ""}, {KindLegacy, "chatgroups"}} {
			if got := h.run.IDs(k[0], k[1], "g9"); !slices.Equal(got, []string{"success"}) {
				t.Errorf("IDs(%q, %q): got %v, want [success]", k[0], k[1], got)
			}
		}
		if got := h.run.IDs("legacy_users", "", "g9"); got != nil {
			t.Errorf("got IDs %v for user g9, want none", got)
		}
	})
}

func TestKeepIDsOff(t *testing.T) {
	h := start(t, Config{})
	if a := h.send(KindUsers, txt("u1")); a.status != http.StatusOK {
		t.Fatalf("got status %d, want 200", a.status)
	}
	if got := h.run.IDs(KindUsers, "", "u1"); got != nil {
		t.Errorf("got IDs %v without KeepIDs, want none", got)
	}
}

func TestKeepIDsWithFaults(t *testing.T) {
	cases := []struct {
		name   string
		faults Faults
		stall  bool // the call gets no answer until it is given up
		ids    int  // IDs kept for the recipient
	}{
		{FaultPartial, Faults{Partial: 1}, false, 1},
		{FaultNoContent, Faults{NoContent: 1}, false, 1},
		{FaultErrorAfter, Faults{ErrorAfter: 1}, false, 1},
		{FaultResetAfter, Faults{ResetAfter: 1}, false, 1},
		{FaultStallAfter, Faults{StallAfter: 1}, true, 1},
		{FaultPartialDeliver, Faults{PartialDeliver: 1}, false, 0},
		{FaultErrorBefore, Faults{ErrorBefore: 1}, false, 0},
		{FaultRedirect, Faults{Redirect: 1}, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, Config{KeepIDs: true, Faults: c.faults})
			h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			if c.stall {
				ctx, cancel := context.WithCancel(context.Background())
				done := h.async(ctx, KindUsers, txt("u1"))
				waitFor(t, "the stalled call to deliver", func() bool { return h.run.Delivered(KindUsers, "", "u1") == 1 })
				cancel()
				<-done
			} else {
				h.send(KindUsers, txt("u1"))
			}
			got := h.run.IDs(KindUsers, "", "u1")
			if len(got) != c.ids || h.run.Delivered(KindUsers, "", "u1") != c.ids {
				t.Errorf("got IDs %v and %d deliveries, want %d of each", got, h.run.Delivered(KindUsers, "", "u1"), c.ids)
			}
			if c.ids > 0 && got[0] != strconv.Itoa(firstMessageID) {
				t.Errorf("got ID %s, want the first one issued, %d", got[0], firstMessageID)
			}
		})
	}
}
