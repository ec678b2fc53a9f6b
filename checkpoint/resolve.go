package checkpoint

import (
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// resolvedPrefix begins the error of a record that settles uncertain
// deliveries as the operator found them (see Resolve).
const resolvedPrefix = "resolved as "

// Resolved reports whether d's state was settled by the operator.
func (d Delivery) Resolved() bool { return strings.HasPrefix(d.Error, resolvedPrefix) }

// resolvedPerRecord bounds the recipients of one resolving record.
const resolvedPerRecord = 1000

// Resolve settles the campaign's uncertain deliveries that match accepts
// as state as (Sent: they arrived, and no run sends them again; Failed:
// they did not, and the next run sends them), found so by the operator
// at at. Each is recorded anew, its error saying so and what made it
// uncertain; all in one transaction. It returns how many it settled.
func (c *Campaign) Resolve(as State, match func(Delivery) bool, at time.Time) (int, error) {
	if as != Sent && as != Failed {
		return 0, fmt.Errorf("resolve as %s: want sent or failed", as)
	}
	type group struct {
		kind, scope string
		digest      [32]byte
		was, via    string
	}
	var order []group
	groups := map[group][]string{}
	err := c.EachDelivery(func(d Delivery) error {
		if d.State != Uncertain || !match(d) {
			return nil
		}
		g := group{d.Kind, d.Scope, d.Digest, d.Error, d.Via}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], d.To)
		return nil
	})
	if err != nil || len(order) == 0 {
		return 0, err
	}
	n := 0
	err = c.s.write(func(tx *bolt.Tx) error {
		b, err := c.bucket(tx, bucketBatches)
		if err != nil {
			return err
		}
		n = 0
		for _, g := range order {
			note := fmt.Sprintf("%s%s by the operator at %s; it was uncertain: %s", resolvedPrefix, as, at.UTC().Format(time.RFC3339), g.was)
			for to := groups[g]; len(to) > 0; {
				part := to[:min(len(to), resolvedPerRecord)]
				to = to[len(part):]
				seq, err := b.NextSequence()
				if err != nil {
					return err
				}
				r := Record{Seq: seq, Kind: g.kind, Scope: g.scope, Digest: g.digest, To: part, State: as, Error: note, Time: at, Via: g.via}
				if err := b.Put(seqKey(seq), r.encode()); err != nil {
					return err
				}
				n += len(part)
			}
		}
		return nil
	})
	return n, err
}
