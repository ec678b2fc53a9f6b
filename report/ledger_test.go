package report

import (
	"imcast/checkpoint"
	"path/filepath"
	"testing"
)

// TestEveryDeliveryColumnHasAValue checks that the report can write each
// delivery column the campaign table names, and only those.
func TestEveryDeliveryColumnHasAValue(t *testing.T) {
	for _, c := range deliveryColumns {
		if deliveryValue[c] == nil {
			t.Errorf("delivery column %q: no value", c)
		}
	}
	if len(deliveryValue) != len(deliveryColumns) {
		t.Errorf("%d delivery values for %d columns", len(deliveryValue), len(deliveryColumns))
	}
}

// TestLegacyDeliveriesHaveNoMessageID: the legacy API answers "success"
// for each recipient, which is no message ID.
func TestLegacyDeliveriesHaveNoMessageID(t *testing.T) {
	id := deliveryValue["message_id"]
	if got := id("c", checkpoint.Delivery{Kind: "legacy_users", State: checkpoint.Sent, MessageID: "success"}); got != "" {
		t.Errorf("legacy delivery: message_id %q, want none", got)
	}
	if got := id("c", checkpoint.Delivery{Kind: "users", State: checkpoint.Sent, MessageID: "123"}); got != "123" {
		t.Errorf("users delivery: message_id %q, want 123", got)
	}
}

// TestStatusPlannedCoversTheLedger checks that a campaign's planned count
// is never below the deliveries its ledger holds: a plan counts its files,
// and a report fed back holds a part of its campaign only.
func TestStatusPlannedCoversTheLedger(t *testing.T) {
	store, err := checkpoint.Open(filepath.Join(t.TempDir(), "l.db"), checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c := store.Campaign("a")
	r := &checkpoint.Record{Kind: "users", To: []string{"u1", "u2", "u3"}}
	if err := c.Begin(r); err != nil {
		t.Fatal(err)
	}
	r.State, r.IDs = checkpoint.Sent, []string{"1", "2", "3"}
	if err := c.Finish(r); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPlanned(2); err != nil {
		t.Fatal(err)
	}
	st, err := Status(store)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Planned != 3 || st[0].Sent != 3 || st[0].Pending != 0 {
		t.Errorf("status: %+v, want planned 3, sent 3, pending 0", st)
	}
}
