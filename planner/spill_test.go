package planner

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestSpillAgreesWithMemory checks, over random campaigns far larger than
// a tiny in-memory set, that a read that spills gives the plan and the
// batches, in order, of one that holds every delivery in memory, and asks
// pending about the same deliveries.
func TestSpillAgreesWithMemory(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var b strings.Builder
		b.WriteString("kind,to,msg\n")
		kinds := []string{"users", "groups", "rooms"}
		for range 20000 + rng.IntN(10000) {
			fmt.Fprintf(&b, "%s,r%d,m%d\n", kinds[rng.IntN(3)], rng.IntN(9000), rng.IntN(3))
		}
		file := writeFile(t, t.TempDir(), fmt.Sprintf("c%d.csv", seed), b.String())
		c, err := Open(Options{Files: []string{file}})
		if err != nil {
			t.Fatal(err)
		}
		read := func(slots int) (*Plan, []string, []string) {
			old := dedupSlots
			dedupSlots = slots
			defer func() { dedupSlots = old }()
			var asked []string
			pending := func(m *Message, to string) (bool, error) {
				asked = append(asked, fmt.Sprintf("%s %x %s", m.Kind, m.Digest[:4], to))
				return len(to)%3 != 0, nil
			}
			spool, err := NewSpool(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer spool.Close()
			p, err := c.PlanPending(context.Background(), defaultQuotas(t), pending, spool)
			if err != nil {
				t.Fatal(err)
			}
			var batches []string
			err = spool.Batches(context.Background(), nil, func(bt Batch) error {
				batches = append(batches, batchKey(bt))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return p, asked, batches
		}
		mp, masked, mbatches := read(1 << 22)
		sp, sasked, sbatches := read(1 << 12)
		p1, p2 := *mp, *sp
		p1.Source, p2.Source = nil, nil
		if !slices.Equal(p1.Kinds, p2.Kinds) || p1.Total != p2.Total || p1.Rows != p2.Rows {
			t.Fatalf("seed %d: plan spilled %+v\nin memory %+v", seed, p2.Kinds, p1.Kinds)
		}
		if p1.Total.Repeated == 0 {
			t.Fatalf("seed %d: no repeats: the test tests nothing", seed)
		}
		slices.Sort(masked)
		slices.Sort(sasked)
		if !slices.Equal(masked, sasked) {
			t.Fatalf("seed %d: pending asked about %d deliveries spilled, %d in memory", seed, len(sasked), len(masked))
		}
		if !slices.Equal(mbatches, sbatches) {
			t.Fatalf("seed %d: %d batches spilled, %d in memory, or in another order", seed, len(sbatches), len(mbatches))
		}
	}
}
