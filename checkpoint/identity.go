package checkpoint

import "hash/maphash"

// Identity is the one definition of what makes two deliveries the same:
// their campaign, kind, scope, message digest and recipient (SPEC.md).
// Deliveries are keyed by a 64-bit hash of these under a seed drawn per
// process, so a key is never written to the ledger or compared across
// processes.
//
// The collision policy is decided here: two deliveries whose keys collide
// count as one. The odds are about 3 in a million for a campaign of 10
// million deliveries (n²/2⁶⁵), and a collision can only leave a delivery
// unsent, taken for one sent or planned already: never send one twice.
// The planner's dedup and every reading of the ledger (Load, Lookup,
// EachDelivery) go through it.
type Identity struct{ seed maphash.Seed }

// NewIdentity draws a seed.
func NewIdentity() Identity { return Identity{seed: maphash.MakeSeed()} }

// Key is the delivery's key. campaign may be "" where every key compared
// is of one campaign, or of any (a campaign's own ledger, a Lookup).
func (id Identity) Key(campaign, kind, scope string, digest *[32]byte, to string) uint64 {
	var h maphash.Hash
	h.SetSeed(id.seed)
	h.WriteString(campaign)
	h.WriteByte(0)
	h.WriteString(kind)
	h.WriteByte(0)
	h.WriteString(scope)
	h.WriteByte(0)
	h.Write(digest[:])
	h.WriteString(to)
	return h.Sum64()
}
