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

// reading is what one read of a campaign found: its distinct messages,
// the messages into each room (rooms kind), and the deliveries read.
type reading struct {
	groups map[Key]*group
	rooms  map[string]int64
	rows   int64
	files  []SourceFile
}

// read reads and validates the campaign once, counting its deliveries by
// message and, with a spool, batching those pending accepts into it: rows
// with the same message grouped, a recipient listed twice for a message
// kept once, each batch filled up to its endpoint's cap, or to its message
// quota where that is less (q may be nil: the caps alone). A batch is
// spooled as soon as it is full; the partial ones follow at the end in the
// order their messages first appeared, so the same input always gives the
// same batches.
func (c *Campaign) read(ctx context.Context, q chatapi.Quotas, pending PendingFunc, spool *Spool) (*reading, error) {
	r := &reading{groups: map[Key]*group{}, rooms: map[string]int64{}}
	var bt *batcher
	dir := ""
	if spool != nil {
		bt = &batcher{q: q, spool: spool, opened: map[Key]*openBatch{}}
		dir = spool.dir
	}
	var prog progress
	set := newDeliverySet(func() int { return prog.expect(int(r.rows)) }, dir)
	defer set.close()
	add := (&counter{r: r, pending: pending, bt: bt}).add
	// Deliveries are deduplicated a few hundred at a time: the lookups
	// of a set far larger than the CPU's caches then overlap, instead of
	// each waiting for memory in turn.
	var batch []delivery
	flush := func() error {
		if err := set.addAll(batch); err != nil {
			return err
		}
		for _, d := range batch {
			if d.spilled {
				continue // its verdict comes once the read ends
			}
			if err := add(d.m, d.to, d.new); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	files, err := c.scan(ctx, &prog, func(m *Message, to string) error {
		batch = append(batch, delivery{m: m, to: to})
		if len(batch) == 256 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = set.replay(ctx, add)
	}
	if err != nil {
		return nil, err
	}
	r.files = files
	if bt == nil {
		return r, nil
	}
	return r, bt.finish()
}

// counter counts a read's deliveries by message, asks pending about each
// new one, and hands those it accepts to the batcher, if any.
type counter struct {
	r       *reading
	pending PendingFunc
	bt      *batcher
}

// add counts one delivery; new says whether it is the first of its
// message and recipient.
func (c *counter) add(m *Message, to string, new bool) error {
	c.r.rows++
	key := m.Key()
	g := c.r.groups[key]
	if g == nil {
		g = &group{msg: m}
		c.r.groups[key] = g
	}
	if !new {
		g.dups++
		return nil
	}
	g.n++
	if c.pending != nil {
		ok, err := c.pending(m, to)
		if err != nil || !ok {
			return err
		}
	}
	g.todo++
	if m.Kind == chatapi.Rooms {
		c.r.rooms[to]++
	}
	if c.bt == nil {
		return nil
	}
	return c.bt.add(m, to)
}

// batcher fills batches into a spool: the deliveries of one message up to
// what a call of its kind takes, each spooled as soon as it is full, the
// partial ones at the end in the order their messages first appeared.
type batcher struct {
	q      chatapi.Quotas
	spool  *Spool
	opened map[Key]*openBatch
}

// openBatch is a batch being filled.
type openBatch struct {
	order int // among the messages
	msg   *Message
	to    []string
}

func (bt *batcher) add(m *Message, to string) error {
	key := m.Key()
	b := bt.opened[key]
	if b == nil {
		b = &openBatch{order: len(bt.opened), msg: m}
		bt.opened[key] = b
	}
	b.to = append(b.to, to)
	if len(b.to) < bt.q.PerCall(m.Kind) {
		return nil
	}
	full := b.to
	b.to = b.to[:0]
	return bt.spool.add(Batch{Message: m, To: full})
}

// finish spools the partial batches and readies the spool to be read.
func (bt *batcher) finish() error {
	rest := make([]*openBatch, 0, len(bt.opened))
	for _, b := range bt.opened {
		if len(b.to) > 0 {
			rest = append(rest, b)
		}
	}
	slices.SortFunc(rest, func(a, b *openBatch) int { return a.order - b.order })
	for _, b := range rest {
		if err := bt.spool.add(Batch{Message: b.msg, To: b.to}); err != nil {
			return err
		}
	}
	return bt.spool.finish()
}

// Batches reads the campaign and hands emit its batches as a run under q
// sends them (see read), deliveries that pending rejects left out.
func (c *Campaign) Batches(ctx context.Context, q chatapi.Quotas, pending PendingFunc, emit func(Batch) error) error {
	spool, err := NewSpool("")
	if err != nil {
		return err
	}
	defer spool.Close()
	if _, err := c.read(ctx, q, pending, spool); err != nil {
		return err
	}
	return spool.Batches(ctx, nil, emit)
}
