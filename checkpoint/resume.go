package checkpoint

import (
	"strings"
	"time"
)

// Deliveries are the latest state of every delivery a campaign's ledger
// holds, by their Identity keys.
type Deliveries struct {
	id     Identity
	states map[uint64]State
	count  [Uncertain + 1]int64 // by state
}

func (d *Deliveries) key(kind, scope string, digest [32]byte, to string) uint64 {
	return d.id.Key("", kind, scope, &digest, to)
}

// State returns the delivery's latest state; Pending if the ledger never
// saw it.
func (d *Deliveries) State(kind, scope string, digest [32]byte, to string) State {
	return d.states[d.key(kind, scope, digest, to)]
}

// Count returns how many deliveries are in state s.
func (d *Deliveries) Count(s State) int64 { return d.count[s] }

// Len is how many distinct deliveries the ledger holds.
func (d *Deliveries) Len() int { return len(d.states) }

func (d *Deliveries) set(r *Record) {
	for _, to := range r.To {
		k := d.key(r.Kind, r.Scope, r.Digest, to)
		if old, ok := d.states[k]; ok {
			d.count[old]--
		}
		d.states[k] = r.State
		d.count[r.State]++
	}
}

// InterruptedError is the error recorded on a batch found in flight when
// a run starts: the process that sent it died before the answer was
// recorded.
const InterruptedError = "the run stopped while this batch was in flight; the server may have delivered it"

// Load returns the latest state of every delivery. A batch still in flight
// counts as uncertain: no run is sending while this process holds the
// ledger, so the run that sent it died before the answer was recorded.
func (c *Campaign) Load() (*Deliveries, error) {
	d, _, err := c.load()
	return d, err
}

func (c *Campaign) load() (*Deliveries, []Record, error) {
	d := &Deliveries{id: NewIdentity(), states: map[uint64]State{}}
	var stale []Record
	err := c.records(false, func(r Record) error {
		if r.State == InFlight {
			stale = append(stale, r)
			r.State = Uncertain
		}
		d.set(&r)
		return nil
	})
	return d, stale, err
}

// Resume readies the campaign for a new run: it loads the deliveries as
// Load does and durably marks uncertain every batch left in flight.
func (c *Campaign) Resume() (*Deliveries, error) {
	d, stale, err := c.load()
	if err != nil {
		return nil, err
	}
	for _, r := range stale {
		// The record was read without its IDs, error and host; an
		// in-flight record has only the host.
		if err := c.reread(&r); err != nil {
			return nil, err
		}
		r.State, r.Error, r.Time = Uncertain, InterruptedError, time.Now()
		if err := c.Finish(&r); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Delivery is one delivery as the ledger last recorded it.
type Delivery struct {
	Kind, Scope string
	Digest      [32]byte
	To          string
	State       State // InFlight reads as Uncertain, as in Load
	MessageID   string
	Error       string
	Time        time.Time
	// Via is the API base its latest call went through; "" in ledgers
	// from before it was recorded
	Via string
	// CopiedBefore says a call of it before the latest may have delivered
	// it: it was uncertain, then sent again (--resend-uncertain), and the
	// operator did not resolve it as failed in between. That copy has no
	// message ID to recall it by.
	CopiedBefore bool
	// Recall is the recall of its message, if one was asked (imcast
	// recall); the zero mark if none
	Recall RecallMark
}

// EachDelivery calls fn with the latest record of every delivery, in the
// sequence order of those latest records: each delivery appears once,
// with the recall mark of its message ID.
func (c *Campaign) EachDelivery(fn func(Delivery) error) error {
	marks, err := c.Recalls()
	if err != nil {
		return err
	}
	id := NewIdentity()
	key := func(r *Record, to string) uint64 { return id.Key("", r.Kind, r.Scope, &r.Digest, to) }
	// each delivery's latest record, and whether a call of it before that
	// one may have delivered it
	type seen struct {
		seq                     uint64
		uncertain, copiedBefore bool
	}
	latest := map[uint64]seen{}
	err = c.records(true, func(r Record) error {
		for _, to := range r.To {
			k := key(&r, to)
			was, ok := latest[k]
			now := seen{seq: r.Seq, uncertain: r.State == InFlight || r.State == Uncertain}
			// the operator's word that it did not arrive settles those
			now.copiedBefore = ok && (was.copiedBefore || was.uncertain) && !(r.State == Failed && strings.HasPrefix(r.Error, resolvedPrefix))
			latest[k] = now
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.Records(func(r Record) error {
		state := r.State
		if state == InFlight {
			state = Uncertain
		}
		for i, to := range r.To {
			l := latest[key(&r, to)]
			if l.seq != r.Seq {
				continue
			}
			d := Delivery{Kind: r.Kind, Scope: r.Scope, Digest: r.Digest, To: to, State: state, Error: r.Error, Time: r.Time, Via: r.Via,
				CopiedBefore: l.copiedBefore}
			if i < len(r.IDs) {
				d.MessageID = r.IDs[i]
				d.Recall = marks[markKey(d.Via, d.MessageID)]
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	})
}
