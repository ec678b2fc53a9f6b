package checkpoint

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Lookup finds the states of chosen deliveries in every campaign of the
// ledger, with one read of its records and without holding them all:
// what a run of the rows appended to a file needs, when the ledger holds
// millions of deliveries of the rows before them. Deliveries are matched
// by a 64-bit hash, as Deliveries are, with the same odds of a collision.
type Lookup struct {
	id    Identity
	want  map[uint64]struct{}
	found map[string]map[uint64]State // by campaign
	names []string                    // the campaigns found holding any
}

// NewLookup makes a Lookup of no delivery.
func NewLookup() *Lookup {
	return &Lookup{id: NewIdentity(), want: map[uint64]struct{}{}, found: map[string]map[uint64]State{}}
}

// Add chooses a delivery to look up.
func (l *Lookup) Add(kind, scope string, digest [32]byte, to string) {
	l.want[l.id.Key("", kind, scope, &digest, to)] = struct{}{}
}

// State returns the latest state of a chosen delivery in campaign name
// (InFlight reads as Uncertain, as in Load); Pending if the campaign
// never saw it. Call it after Find.
func (l *Lookup) State(name, kind, scope string, digest [32]byte, to string) State {
	return l.found[name][l.id.Key("", kind, scope, &digest, to)]
}

// Campaigns are the campaigns Find found holding a chosen delivery, in
// the ledger's order.
func (l *Lookup) Campaigns() []string { return l.names }

// Find reads every record of every campaign and keeps the latest state of
// each chosen delivery.
func (s *Store) Find(l *Lookup) error {
	if len(l.want) == 0 {
		return nil
	}
	return s.view(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketCampaigns)
		return root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name).Bucket(bucketBatches)
			if b == nil {
				return nil
			}
			var states map[uint64]State
			return b.ForEach(func(k, v []byte) error {
				r, err := decodeRecord(binary.BigEndian.Uint64(k), v, false)
				if err != nil {
					return err
				}
				st := r.State
				if st == InFlight {
					st = Uncertain
				}
				for _, to := range r.To {
					key := l.id.Key("", r.Kind, r.Scope, &r.Digest, to)
					if _, ok := l.want[key]; !ok {
						continue
					}
					if states == nil {
						states = map[uint64]State{}
						l.found[string(name)] = states
						l.names = append(l.names, string(name))
					}
					states[key] = st
				}
				return nil
			})
		})
	})
}
