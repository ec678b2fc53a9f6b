package checkpoint

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestFindAgreesWithLoad checks, over random ledgers, that the states a
// Lookup finds for its chosen deliveries are those Load gives, in every
// campaign, and that a delivery no campaign holds is pending everywhere.
func TestFindAgreesWithLoad(t *testing.T) {
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 1))
		s, _ := openTemp(t)
		names := []string{"a", "b", "c"}
		kinds := []string{"users", "groups"}
		for range 200 {
			r := &Record{Campaign: names[rng.IntN(3)], Kind: kinds[rng.IntN(2)], Digest: digestOf(fmt.Sprint(rng.IntN(3)))}
			for range 1 + rng.IntN(4) {
				r.To = append(r.To, fmt.Sprintf("u%d", rng.IntN(60)))
			}
			if err := s.Begin(r); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(5) == 0 {
				continue // left in flight
			}
			r.State = []State{Sent, Failed, Uncertain, Pending}[rng.IntN(4)]
			if err := s.Finish(r); err != nil {
				t.Fatal(err)
			}
		}
		l := NewLookup()
		type key struct {
			kind, digest, to string
		}
		var chosen []key
		for i := range 80 { // u60..u79 are in no campaign
			k := key{kinds[i%2], fmt.Sprint(i % 3), fmt.Sprintf("u%d", i)}
			chosen = append(chosen, k)
			l.Add(k.kind, "", digestOf(k.digest), k.to)
		}
		if err := s.Find(l); err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			d, err := s.Campaign(name).Load()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range chosen {
				want := d.State(k.kind, "", digestOf(k.digest), k.to)
				if got := l.State(name, k.kind, "", digestOf(k.digest), k.to); got != want {
					t.Fatalf("seed %d: %s %v: Find %v, Load %v", seed, name, k, got, want)
				}
			}
		}
	}
}

func TestCompleteIsKeptUntilCleared(t *testing.T) {
	s, _ := openTemp(t)
	c := s.Campaign("a")
	if got, err := c.Complete(); err != nil || got != nil {
		t.Fatalf("Complete of a new campaign: %q, %v; want nil", got, err)
	}
	if err := c.SetComplete([]byte("files x")); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Complete(); string(got) != "files x" {
		t.Errorf("Complete: got %q, want %q", got, "files x")
	}
	if got, _ := s.Campaign("b").Complete(); got != nil {
		t.Errorf("Complete of another campaign: got %q, want nil", got)
	}
	if err := c.SetComplete(nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Complete(); got != nil {
		t.Errorf("Complete after clearing: got %q, want nil", got)
	}
}
