package report

import "testing"

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
