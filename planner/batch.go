package planner

import (
	"context"
	"slices"

	"imcast/chatapi"
)

// Batch is one call's worth of deliveries: a message and up to its
// endpoint's cap of recipients.
type Batch struct {
	Message *Message
	To      []string
}

// API returns the batch as the API client takes it.
func (b Batch) API() chatapi.Batch {
	return chatapi.Batch{Kind: b.Message.Kind, Scope: b.Message.Scope, To: b.To, Message: b.Message.Message}
}

// PendingFunc tells whether a delivery still has to be sent; nil means all.
type PendingFunc func(m *Message, to string) (bool, error)

// Batches reads the campaign again and hands emit its batches: rows with
// the same message grouped, a recipient listed twice for a message kept
// once, each batch filled up to its endpoint's cap, deliveries that pending
// rejects left out. A batch is emitted as soon as it is full; the partial
// ones follow at the end in the order their messages first appeared, so
// the same input always gives the same batches. Call it after Plan found the
// campaign valid.
func (c *Campaign) Batches(ctx context.Context, pending PendingFunc, emit func(Batch) error) error {
	type open struct {
		msg   *Message
		order int
		to    []string
	}
	opened := map[Key]*open{}
	set := newDeliverySet()
	err := c.scan(ctx, func(m *Message, to string) error {
		// pending first: deliveries it leaves out never enter the set
		if pending != nil {
			ok, err := pending(m, to)
			if err != nil || !ok {
				return err
			}
		}
		if !set.add(m, to) {
			return nil
		}
		b := opened[m.Key()]
		if b == nil {
			b = &open{msg: m, order: len(opened)}
			opened[m.Key()] = b
		}
		b.to = append(b.to, to)
		if len(b.to) == m.Kind.MaxPerCall() {
			full := b.to
			b.to = nil
			return emit(Batch{Message: m, To: full})
		}
		return nil
	})
	if err != nil {
		return err
	}
	rest := make([]Key, 0, len(opened))
	for d, b := range opened {
		if len(b.to) > 0 {
			rest = append(rest, d)
		}
	}
	slices.SortFunc(rest, func(a, b Key) int { return opened[a].order - opened[b].order })
	for _, d := range rest {
		if err := emit(Batch{Message: opened[d].msg, To: opened[d].to}); err != nil {
			return err
		}
	}
	return nil
}
